from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.accounts import domain
from services.common.auth import (
    Principal,
    TokenError,
    hash_password,
    issue_token,
    verify_password,
    verify_token,
)
from services.common.errors import Forbidden, Invalid

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
SECRET = "unit-test-secret-that-is-long-enough-for-hs256"
USER = {"id": "u1", "role": "rep", "team_id": "t1", "name": "张伟", "username": "zhangwei"}


def test_password_hash_is_argon2_and_verifies():
    h = hash_password("正确的密码123")
    assert h.startswith("$argon2id$")
    assert "正确的密码123" not in h
    assert verify_password(h, "正确的密码123")
    assert not verify_password(h, "错误的密码123")


def test_same_password_hashes_differently():
    assert hash_password("samepassword") != hash_password("samepassword")


def test_garbage_hash_never_verifies():
    assert not verify_password("not-a-hash", "anything")


def test_token_round_trip():
    token = issue_token(USER, SECRET, NOW, timedelta(hours=12))
    p = verify_token(token, SECRET, NOW + timedelta(hours=11, minutes=59))
    assert p == Principal("u1", "rep", "t1", "张伟", "zhangwei")


def test_token_expires():
    token = issue_token(USER, SECRET, NOW, timedelta(hours=12))
    with pytest.raises(TokenError, match="expired"):
        verify_token(token, SECRET, NOW + timedelta(hours=12))


def test_tampered_token_is_refused():
    token = issue_token(USER, SECRET, NOW, timedelta(hours=12))
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["role"] = "admin"
    forged = jwt.encode(claims, "guessed-secret-guessed-secret-guessed-secret", algorithm="HS256")
    with pytest.raises(TokenError):
        verify_token(forged, SECRET, NOW)
    header, payload, sig = token.split(".")
    with pytest.raises(TokenError):
        verify_token(f"{header}.{payload}.{sig[::-1]}", SECRET, NOW)


def test_unsigned_token_is_refused():
    claims = jwt.decode(issue_token(USER, SECRET, NOW, timedelta(hours=1)),
                        options={"verify_signature": False})
    none_token = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(TokenError):
        verify_token(none_token, SECRET, NOW)


def test_token_signed_with_other_secret_is_refused():
    token = issue_token(USER, "another-secret-another-secret-another-secret", NOW, timedelta(hours=1))
    with pytest.raises(TokenError):
        verify_token(token, SECRET, NOW)


ADMIN = Principal("a", "admin", None)
MANAGER = Principal("m", "manager", "t1")
REP = Principal("r", "rep", "t1")


@pytest.mark.parametrize("role", ["rep", "manager", "admin"])
def test_admin_creates_anyone(role):
    domain.check_may_create_user(ADMIN, role, "t1")


def test_admin_must_name_a_team_for_reps():
    with pytest.raises(Invalid):
        domain.check_may_create_user(ADMIN, "rep", None)


def test_manager_creates_reps_of_his_team_only():
    domain.check_may_create_user(MANAGER, "rep", "t1")
    with pytest.raises(Forbidden):
        domain.check_may_create_user(MANAGER, "rep", "t2")
    with pytest.raises(Forbidden):
        domain.check_may_create_user(MANAGER, "manager", "t1")
    with pytest.raises(Forbidden):
        domain.check_may_create_user(MANAGER, "admin", None)


def test_rep_creates_nobody():
    with pytest.raises(Forbidden):
        domain.check_may_create_user(REP, "rep", "t1")


def test_list_scope_per_role():
    assert domain.user_list_scope(ADMIN) == {}
    assert domain.user_list_scope(MANAGER) == {"team_id": "t1"}
    with pytest.raises(Forbidden):
        domain.user_list_scope(REP)




def test_unlock_admin_anyone_manager_his_reps():
    rep = {"_id": "u1", "role": "rep", "team_id": "t1"}
    domain.check_may_unlock(ADMIN, rep)
    domain.check_may_unlock(ADMIN, {"_id": "a2", "role": "admin", "team_id": None})
    domain.check_may_unlock(MANAGER, rep)
    for target in ({"_id": "u2", "role": "rep", "team_id": "t2"},
                   {"_id": "m2", "role": "manager", "team_id": "t1"},
                   {"_id": "u3", "role": "rep", "team_id": None}):
        with pytest.raises(Forbidden):
            domain.check_may_unlock(MANAGER, target)
    with pytest.raises(Forbidden):
        domain.check_may_unlock(REP, rep)


def test_short_secret_is_refused():
    with pytest.raises(ValueError):
        issue_token(USER, "short", NOW, timedelta(hours=1))


def test_token_issued_in_the_future_is_refused():
    token = issue_token(USER, SECRET, NOW + timedelta(hours=1), timedelta(hours=12))
    with pytest.raises(TokenError):
        verify_token(token, SECRET, NOW)
