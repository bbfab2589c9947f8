"""accounts over real RabbitMQ and FerretDB."""

import eventlet
import pytest
from nameko.events import event_handler
from nameko.testing.services import entrypoint_waiter
from pymongo.errors import InvalidOperation

from services.accounts.service import AccountsService
from services.common import clock
from services.common.auth import verify_token
from services.common.clock import now
from services.common.errors import Conflict, Forbidden, Invalid, TooManyRequests, Unauthenticated
from services.common.standalone import ServiceRpcClient

ADMIN = {"id": "bootstrap", "role": "admin", "team_id": None, "name": "", "username": "admin"}


@pytest.fixture
def accounts(container_factory, service_config):
    container = container_factory(AccountsService, service_config)
    container.start()
    with ServiceRpcClient("accounts") as client:
        yield client


def test_bootstrap_admin_logs_in(accounts, service_config):
    out = accounts.login({"username": "admin", "password": service_config["ADMIN_PASSWORD"]})
    assert out["user"]["role"] == "admin"
    assert "password_hash" not in out["user"]
    principal = verify_token(out["token"], service_config["JWT_SECRET"], now())
    assert principal.id == out["user"]["id"]


def test_users_teams_and_roles(accounts):
    team = accounts.create_team(ADMIN, {"name": "华南销售一部"})
    assert team["name"] == "华南销售一部"
    manager = accounts.create_user(ADMIN, {
        "username": "wangfang", "password": "华南-经理-7Kq2", "name": "王芳",
        "role": "manager", "team_id": team["id"], "phone": "+86 139 0000 1111"})
    assert manager["phone"] == "+8613900001111"
    mgr = {**manager, "role": "manager"}
    rep = accounts.create_user(mgr, {
        "username": "zhaolei", "password": "赵磊的-口令-3Vn8", "name": "赵磊", "role": "rep"})
    assert rep["team_id"] == team["id"]  # a manager's rep joins his team
    with pytest.raises(Forbidden):
        accounts.create_user(mgr, {"username": "boss2", "password": "老板-口令-5Ty6u", "name": "老板",
                                   "role": "manager", "team_id": team["id"]})
    with pytest.raises(Conflict) as err:
        accounts.create_user(ADMIN, {"username": "ZhaoLei", "password": "赵磊二-口令-8Hw4",
                                     "name": "赵磊二", "role": "rep", "team_id": team["id"]})
    assert err.value.code == "username_taken"
    with pytest.raises(Invalid) as err:
        accounts.create_user(ADMIN, {"username": "ghost", "password": "鬼-口令-2Jx9r",
                                     "name": "鬼", "role": "rep", "team_id": "nosuchteam"})
    assert err.value.details["fields"] == {"team_id": "no such team"}
    listed = accounts.list_users(mgr)
    assert {u["username"] for u in listed["items"]} == {"wangfang", "zhaolei"}
    assert listed["total"] == 2
    assert accounts.list_users(ADMIN)["total"] == 3
    assert accounts.get_users([rep["id"]])[rep["id"]]["name"] == "赵磊"


def test_wrong_passwords_slow_down_the_account(accounts, service_config):
    service_config_free = 5
    for _ in range(service_config_free):
        with pytest.raises(Unauthenticated):
            accounts.login({"username": "admin", "password": "wrong-password"})
    # the sixth wrong password locks the account for a while ...
    with pytest.raises(Unauthenticated):
        accounts.login({"username": "admin", "password": "wrong-password"})
    # ... during which even the right password is refused, with a retry time
    with pytest.raises(TooManyRequests) as err:
        accounts.login({"username": "admin", "password": service_config["ADMIN_PASSWORD"]})
    assert err.value.details["retry_after_seconds"] >= 1


def test_wrong_passwords_in_parallel_get_no_more_tries_than_in_a_row(accounts, service_config,
                                                                     monkeypatch):
    # time stands still: the first lock cannot run out while the guesses land
    monkeypatch.setattr(clock, "_clock", clock.FrozenClock(now()))
    free = 5
    attempts = 20
    pool = eventlet.GreenPool(attempts)

    def guess(i):
        with ServiceRpcClient("accounts") as client:
            try:
                client.login({"username": "admin", "password": f"guess-{i}"})
            except Unauthenticated:
                return "checked"
            except TooManyRequests:
                return "refused"
        return "logged in"

    outcomes = list(pool.imap(guess, range(attempts)))
    # the free ones, and one more that took the first lock; every other
    # guess was refused before its password was looked at
    assert outcomes.count("checked") == free + 1, outcomes
    assert outcomes.count("refused") == attempts - free - 1
    with pytest.raises(TooManyRequests):
        accounts.login({"username": "admin", "password": service_config["ADMIN_PASSWORD"]})


def test_no_service_holding_the_token_secret_starts_without_a_good_one(container_factory,
                                                                       service_config):
    from gateway.service import GatewayService

    for service in (AccountsService, GatewayService):
        for secret in ("", "short-secret"):
            container = container_factory(service, {**service_config, "JWT_SECRET": secret})
            with pytest.raises((RuntimeError, ValueError), match="JWT_SECRET|secret"):
                container.start()


def test_unknown_user_is_the_same_error(accounts):
    with pytest.raises(Unauthenticated) as err:
        accounts.login({"username": "nobody", "password": "whatever1"})
    assert err.value.code == "invalid_credentials"


class Subscriber:
    name = "test_subscriber"
    received = []

    @event_handler("accounts", "UserCreated")
    def on_user_created(self, payload):
        self.received.append(payload)


def test_user_created_event_reaches_a_subscriber(accounts, container_factory, service_config):
    sub = container_factory(Subscriber, service_config)
    sub.start()
    team = accounts.create_team(ADMIN, {"name": "华东销售部"})
    with entrypoint_waiter(sub, "on_user_created", timeout=10) as result:
        user = accounts.create_user(ADMIN, {"username": "liuyang", "password": "刘洋-口令-6Bm1e",
                                            "name": "刘洋", "role": "rep", "team_id": team["id"]})
    payload = result.get()
    payload = Subscriber.received[-1]
    assert payload["user_id"] == user["id"]
    assert payload["team_id"] == team["id"]
    assert len(payload["event_id"]) == 36
    assert payload["occurred_at"].endswith("+00:00")


def test_mongo_provider_opens_and_closes_its_client(container_factory, service_config, db_of):
    container = container_factory(AccountsService, service_config)
    container.start()
    provider = next(d for d in container.dependencies if d.attr_name == "db")
    client = provider.client
    assert provider.db.name == service_config["MONGO_DB_PREFIX"] + "accounts"
    assert client.admin.command("ping")["ok"] == 1.0
    # the unique index was created before the first request
    assert "username_unique" in db_of("accounts").users.index_information()
    container.stop()
    assert provider.client is None
    with pytest.raises(InvalidOperation):
        client.admin.command("ping")
