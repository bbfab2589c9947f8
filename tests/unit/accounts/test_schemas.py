import pytest

from services.accounts.schemas import UserIn
from services.common.errors import BadRequest, Invalid
from services.common.validation import parse

GOOD = {"username": "LiNa", "password": "销售-口令-4kPz8", "name": "李娜", "role": "rep",
        "team_id": "t1", "phone": "138 0013 8000"}


def test_user_is_normalized():
    u = parse(UserIn, GOOD)
    assert u.username == "lina"
    assert u.phone == "+8613800138000"
    assert u.timezone == "Asia/Shanghai"
    assert u.name == "李娜"


@pytest.mark.parametrize("field,value,why", [
    ("role", "boss", "Input should be"),
    ("password", "short", "at least 10"),
    ("password", "长" * 129, "at most 128"),
    ("phone", "12345", "phone"),
    ("timezone", "Mars/Olympus", "unknown time zone"),
    ("name", "", "at least 1"),
    ("name", "张\x00三", "control characters"),
    ("username", "a b", "pattern"),
    ("team_id", 5, "string"),
])
def test_invalid_fields_say_why(field, value, why):
    with pytest.raises(Invalid) as err:
        parse(UserIn, {**GOOD, field: value})
    assert field in err.value.details["fields"]
    assert why in err.value.details["fields"][field]


def test_unknown_field_is_refused():
    with pytest.raises(Invalid) as err:
        parse(UserIn, {**GOOD, "is_admin": True})
    assert err.value.details["fields"] == {"is_admin": "unknown field"}


def test_malformed_json_is_bad_request():
    with pytest.raises(BadRequest):
        parse(UserIn, b'{"username": ')


def test_typed_errors_survive_rpc_serialization():
    from nameko.exceptions import deserialize, serialize

    from services.common.errors import Conflict

    exc = Conflict("duplicate_customer", "已被占用", {"matches": [{"score": 0.93, "n": 1}]})
    back = deserialize(serialize(exc))
    assert isinstance(back, Conflict)
    assert back.details == {"matches": [{"score": 0.93, "n": 1}]}
    assert back.body() == {"error": "duplicate_customer", "message": "已被占用",
                           "matches": [{"score": 0.93, "n": 1}]}
