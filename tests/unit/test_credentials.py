"""Services verify who calls them: a user's token or a service's, never a
bare actor dict (services/common/credentials.py, service.rpc)."""

from datetime import UTC, datetime, timedelta

import pytest

from services.common.auth import TokenError, issue_token
from services.common.credentials import (
    ADDRESS,
    CREDENTIAL,
    issue_service_token,
    verify_credential,
)
from services.common.errors import Forbidden, Unauthenticated
from services.common.service import _CallerOf, rpc

SECRET = "s" * 40
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
REP = {"id": "u-zhang", "role": "rep", "team_id": "t1", "name": "张伟", "username": "zhang"}
ADMIN = {"id": "u-admin", "role": "admin", "team_id": None, "name": "管理员", "username": "admin"}


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    import nameko

    monkeypatch.setattr(nameko, "config", {"JWT_SECRET": SECRET})
    from services.common import clock

    monkeypatch.setattr(clock, "_clock", clock.FrozenClock(NOW))


def user_token(user, secret=SECRET):
    return issue_token(user, secret, NOW, timedelta(hours=1))


class Worker:
    def __init__(self, context):
        self.caller = _CallerOf(context)

    @rpc
    def whoami(self, actor, note=None):
        return actor

    @rpc
    def for_services(self, ids):
        return ids


def run(method, context, *args):
    worker = Worker(context)
    return getattr(worker, method)(*args)


def test_a_bare_actor_dict_is_refused():
    with pytest.raises(Unauthenticated) as refused:
        run("whoami", {}, ADMIN)
    assert refused.value.code == "unauthenticated_call"


def test_a_users_token_makes_him_the_actor_with_his_address():
    got = run("whoami", {CREDENTIAL: user_token(REP), ADDRESS: "10.1.2.3"}, REP)
    assert got["id"] == "u-zhang" and got["role"] == "rep" and got["address"] == "10.1.2.3"


def test_a_rep_claiming_to_be_admin_is_refused():
    with pytest.raises(Forbidden) as refused:
        run("whoami", {CREDENTIAL: user_token(REP)}, ADMIN)
    assert refused.value.code == "forged_actor"
    with pytest.raises(Forbidden):
        run("whoami", {CREDENTIAL: user_token(REP)}, {**REP, "role": "admin"})


def test_a_token_signed_with_another_secret_is_refused():
    with pytest.raises(Unauthenticated):
        run("whoami", {CREDENTIAL: user_token(ADMIN, "x" * 40)}, ADMIN)
    with pytest.raises(Unauthenticated):
        run("whoami", {CREDENTIAL: issue_service_token("gateway", "x" * 40)}, ADMIN)


def test_a_service_acts_for_the_user_it_names():
    got = run("whoami", {CREDENTIAL: issue_service_token("scheduler", SECRET)}, ADMIN)
    assert got == ADMIN


def test_service_only_entrypoints_refuse_a_users_token():
    with pytest.raises(Forbidden) as refused:
        run("for_services", {CREDENTIAL: user_token(ADMIN)}, ["a"])
    assert refused.value.code == "service_only"
    assert run("for_services", {CREDENTIAL: issue_service_token("gateway", SECRET)},
               ["a"]) == ["a"]


def test_an_expired_service_token_is_refused():
    old = issue_service_token("gateway", SECRET, at=datetime.now(UTC).timestamp() - 3600)
    with pytest.raises(TokenError):
        verify_credential(old, SECRET, NOW)


def test_a_service_token_is_no_user_token():
    from services.common.auth import verify_token

    with pytest.raises(TokenError):
        verify_token(issue_service_token("gateway", SECRET), SECRET, NOW)
