"""The password policy: long enough, not the username, not easy to guess."""

import pytest

from services.accounts import passwords
from services.accounts.passwords import check_password, password_problem
from services.common.errors import Invalid


@pytest.mark.parametrize("password", [
    "销售三部-春天的-约定",  # a Chinese phrase: 11 characters
    "correct horse battery staple",
    "王芳的客户-13812345678-深圳",
    "pw-" + "0a1b2c3d4e",
    "x7#Vq!m2Lp9@",
])
def test_strong_passwords_pass(password):
    assert password_problem(password, "wangfang", "王芳") is None
    check_password(password, "wangfang", "王芳")


def test_length_counts_characters_not_bytes():
    assert password_problem("深圳华强北电子市场", "lina", "李娜") == passwords.TOO_SHORT  # 9
    assert len("深圳华强北电子市场有".encode()) == 30
    assert password_problem("深圳华强北电子市场有", "lina", "李娜") is None  # 10
    assert password_problem("长" * 129, "lina", "李娜") == passwords.TOO_LONG


@pytest.mark.parametrize("password", ["ZhangWei-2026-夏天", "my-zhangwei-pass", "ZHANGWEI!!aa"])
def test_the_username_in_any_case_is_refused(password):
    assert password_problem(password, "zhangwei", "张伟") == passwords.HAS_USERNAME


@pytest.mark.parametrize("password", [
    "password123", "qwertyuiop", "1234567890", "iloveyou123", "admin12345",
    "p@ssw0rd2024", "aaaaaaaaaaaa", "abc123abc123", "woaini1314",
])
def test_common_leaked_and_patterned_passwords_are_refused(password):
    assert password_problem(password, "lina", "李娜").startswith(passwords.TOO_EASY)


def test_the_persons_name_counts_against_the_password():
    # acceptable for someone else, guessable for the person it names
    assert password_problem("liuyang-0523", "zs", "张三") is None
    assert password_problem("liuyang-0523", "ly", "liuyang").startswith(passwords.TOO_EASY)


def test_the_refusal_names_the_field_in_english():
    with pytest.raises(Invalid) as err:
        check_password("qwertyuiop", "lina", "李娜")
    assert err.value.status == 422
    assert err.value.code == "invalid_fields"
    assert err.value.details["fields"]["password"].startswith("is too easy to guess")
    with pytest.raises(Invalid) as err:
        check_password("short", "lina", "李娜", field="new_password")
    assert err.value.details["fields"] == {"new_password": "must be at least 10 characters"}


def test_the_longest_password_allowed_is_checked():
    longest = ("长城-深圳湾-" * 30)[:passwords.MAX_LENGTH]
    assert len(longest) == 128
    assert password_problem(longest, "lina", "李娜") is None


def test_zxcvbn_sees_the_first_characters_only(monkeypatch):
    seen = []

    def spy(password, user_inputs):
        seen.append(password)
        return {"score": 4, "feedback": {}}

    monkeypatch.setattr(passwords, "zxcvbn", spy)
    assert password_problem("长城-" * 40 + "x", "lina", "李娜") is None  # 121 characters
    assert seen == [("长城-" * 40)[:passwords.CHECKED_CHARACTERS]]
