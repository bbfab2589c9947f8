"""Login throttling and the password policy in the accounts service, over real
RabbitMQ and FerretDB, on a clock that moves only when told (no sleeping)."""

import logging

import eventlet
import pytest

from services.accounts.service import AccountsService
from services.common import clock
from services.common.errors import Forbidden, Invalid, NotFound, TooManyRequests, Unauthenticated
from services.common.standalone import ServiceRpcClient
from tests.waiting import wait_for

ADMIN = {"id": "bootstrap", "role": "admin", "team_id": None, "name": "", "username": "admin"}
START = clock.now().replace(microsecond=0)
OFFICE = "203.0.113.10"  # the owner's usual address
ATTACKER = "198.51.100.66"


@pytest.fixture
def frozen(monkeypatch):
    c = clock.FrozenClock(START)
    monkeypatch.setattr(clock, "_clock", c)
    return c


@pytest.fixture
def accounts(container_factory, service_config, frozen):
    container = container_factory(AccountsService, service_config)
    container.start()
    with ServiceRpcClient("accounts") as client:
        yield client


@pytest.fixture
def people(accounts):
    team = accounts.create_team(ADMIN, {"name": "华南销售一部"})
    manager = accounts.create_user(ADMIN, {
        "username": "wangfang", "password": "华南-经理-7Kq2", "name": "王芳",
        "role": "manager", "team_id": team["id"], "phone": "13900001111"})
    reps = {}
    for username, name in [("zhangwei", "张伟"), ("lina", "李娜"), ("zhaolei", "赵磊")]:
        reps[username] = accounts.create_user(ADMIN, {
            "username": username, "password": f"{name}-深圳-13812345678", "name": name,
            "role": "rep", "team_id": team["id"], "phone": "13812345678"})
    return {"team": team, "manager": manager, **reps}


def attempt(client, username, password, address):
    """What a client sees: ("ok", user), ("401", details) or ("429", details)."""
    try:
        return "ok", client.login({"username": username, "password": password}, address)
    except Unauthenticated as exc:
        return "401", (exc.code, exc.message, exc.details)
    except TooManyRequests as exc:
        return "429", (exc.code, exc.message, exc.details)


def password_of(username, people):
    return f"{people[username]['name']}-深圳-13812345678"


def test_spraying_from_one_address_is_locked_whatever_the_username(accounts, people):
    # 30 usernames, known and unknown mixed, one guess each from one address
    names = [("zhangwei", "lina", "zhaolei")[i % 3] if i % 4 == 0 else f"ghost{i}"
             for i in range(30)]
    outcomes = [attempt(accounts, name, "spring-2026!", ATTACKER) for name in names]
    # 20 free failures, and one more that took the first lock (1 s) ...
    assert [o[0] for o in outcomes[:21]] == ["401"] * 21
    # ... then every guess is refused, its password never looked at
    assert [o[0] for o in outcomes[21:]] == ["429"] * 9
    # known and unknown usernames get one same answer
    answers_401 = {(names[i] in people, repr(outcomes[i][1])) for i in range(21)}
    assert {a[1] for a in answers_401} == {repr(("invalid_credentials",
                                                 "wrong username or password", {}))}
    assert {a[0] for a in answers_401} == {True, False}
    answers_429 = {(names[i] in people, repr(outcomes[i][1])) for i in range(21, 30)}
    assert {a[1] for a in answers_429} == {repr(("too_many_attempts",
                                                 "too many wrong passwords; try again later",
                                                 {"retry_after_seconds": 1}))}
    assert {a[0] for a in answers_429} == {True, False}
    # even the right password is refused from there, while the owner at
    # another address is not slowed at all
    assert attempt(accounts, "lina", password_of("lina", people), ATTACKER)[0] == "429"
    assert attempt(accounts, "lina", password_of("lina", people), OFFICE)[0] == "ok"


def test_an_address_lock_doubles_and_then_is_forgotten(accounts, people, frozen):
    for i in range(21):
        assert attempt(accounts, f"ghost{i}", "spring-2026!", ATTACKER)[0] == "401"
    waits = []
    for _ in range(4):
        kind, (_, _, details) = attempt(accounts, "zhangwei", "spring-2026!", ATTACKER)
        assert kind == "429"
        waits.append(details["retry_after_seconds"])
        frozen.advance(seconds=details["retry_after_seconds"])
        assert attempt(accounts, "zhangwei", "spring-2026!", ATTACKER)[0] == "401"
    assert waits == [1, 2, 4, 8]  # rounded up: whole seconds
    # 15 quiet minutes after the last lock ran out: the address starts afresh
    frozen.advance(seconds=16 + 15 * 60)
    for i in range(20):
        assert attempt(accounts, f"ghost{i}", "spring-2026!", ATTACKER)[0] == "401"


def test_the_owner_logs_in_from_his_usual_address_while_the_attacker_is_locked(
        accounts, people, frozen):
    owner = password_of("zhangwei", people)
    assert attempt(accounts, "zhangwei", owner, OFFICE)[0] == "ok"  # OFFICE becomes usual
    # a distributed guesser: one guess from each of 51 addresses, so that no
    # address and no (username, address) counter ever locks ...
    for i in range(51):
        assert attempt(accounts, "zhangwei", f"guess-{i}-x", f"10.9.{i // 200}.{i % 200}")[0] \
            == "401"
    # ... locks the username everywhere else, the right password included
    assert attempt(accounts, "zhangwei", owner, "10.9.9.9")[0] == "429"
    assert attempt(accounts, "zhangwei", owner, "192.0.2.1")[0] == "429"
    # the owner at his usual address meets only his own counter: his typos
    # cost him a short delay, then he is in, while the lock on the others runs
    for _ in range(6):
        assert attempt(accounts, "zhangwei", "zhangwei-typo", OFFICE)[0] == "401"
    kind, (_, _, details) = attempt(accounts, "zhangwei", owner, OFFICE)
    assert (kind, details) == ("429", {"retry_after_seconds": 1})
    frozen.advance(seconds=1)
    assert attempt(accounts, "zhangwei", owner, OFFICE)[0] == "ok"
    frozen.advance(seconds=1)
    kind, (_, _, details) = attempt(accounts, "zhangwei", "guess-again", "10.9.9.10")
    assert kind == "401"  # the first lock (1 s) ran out: one more guess ...
    kind, (_, _, details) = attempt(accounts, "zhangwei", owner, "10.9.9.11")
    assert (kind, details) == ("429", {"retry_after_seconds": 2})  # ... and it doubles
    # the owner's typos did not count on the username's lock; nor does an
    # address he left more than 30 days ago stay usual
    frozen.advance(days=31)
    assert attempt(accounts, "zhangwei", owner, "10.9.9.12")[0] == "ok"  # forgotten by now
    for i in range(51):
        attempt(accounts, "zhangwei", f"guess-{i}-y", f"10.8.{i // 200}.{i % 200}")
    assert attempt(accounts, "zhangwei", owner, OFFICE)[0] == "429"


def test_parallel_guesses_from_one_address_get_no_more_tries_than_in_a_row(accounts, people):
    attempts = 40
    pool = eventlet.GreenPool(attempts)

    def guess(i):
        with ServiceRpcClient("accounts") as client:
            return attempt(client, f"user{i}", f"guess-{i}", ATTACKER)[0]

    outcomes = list(pool.imap(guess, range(attempts)))
    # 20 free ones, and one more that took the address's first lock
    assert outcomes.count("401") == 21, outcomes
    assert outcomes.count("429") == attempts - 21


def test_an_unlock_lets_the_user_in_at_once(accounts, people, frozen, service_config):
    rep = people["lina"]
    for i in range(8):
        attempt(accounts, "lina", f"wrong-{i}", ATTACKER)
    for i in range(60):
        attempt(accounts, "lina", f"wrong-{i}", f"10.7.0.{i}")
    assert attempt(accounts, "lina", password_of("lina", people), ATTACKER)[0] == "429"
    assert attempt(accounts, "lina", password_of("lina", people), "10.7.1.1")[0] == "429"
    manager = {**people["manager"], "role": "manager"}
    other_rep = {**people["zhangwei"], "role": "rep"}
    with pytest.raises(Forbidden):
        accounts.unlock_user(other_rep, rep["id"])
    with pytest.raises(NotFound):
        accounts.unlock_user(manager, "no-such-user")
    with pytest.raises(Forbidden):  # a manager unlocks reps, not managers
        accounts.unlock_user(manager, people["manager"]["id"])
    assert accounts.unlock_user(manager, rep["id"])["username"] == "lina"
    # the clock has not moved: every lock would still run
    assert attempt(accounts, "lina", password_of("lina", people), ATTACKER)[0] == "ok"
    assert attempt(accounts, "lina", password_of("lina", people), "10.7.1.1")[0] == "ok"
    assert accounts.unlock_user(ADMIN, rep["id"])["id"] == rep["id"]


def test_spent_counters_are_swept_away(container_factory, service_config, frozen, db_of):
    container = container_factory(AccountsService, {**service_config,
                                                    "LOGIN_FORGET_CHECK_SECONDS": 0.1})
    container.start()
    with ServiceRpcClient("accounts") as client:
        for i in range(3):
            attempt(client, f"ghost{i}", "spring-2026!", ATTACKER)
    counters = db_of("accounts").login_throttle
    assert counters.count_documents({}) == 3 + 3 + 1  # pairs, usernames, the address
    frozen.advance(seconds=15 * 60 + 1)
    wait_for(lambda: counters.count_documents({}) == 3, what="the window's counters swept")
    frozen.advance(days=1)
    wait_for(lambda: counters.count_documents({}) == 0, what="the pairs swept")


def test_a_weak_password_is_refused_naming_the_field(accounts, people):
    team_id = people["team"]["id"]
    for password, why in [("13812345678", "too easy to guess"),
                          ("liuyang-sz-2026", "must not contain the username"),
                          ("刘洋的密码", "at least 10 characters")]:
        with pytest.raises(Invalid) as err:
            accounts.create_user(ADMIN, {"username": "liuyang", "password": password,
                                         "name": "刘洋", "role": "rep", "team_id": team_id})
        assert err.value.code == "invalid_fields"
        assert why in err.value.details["fields"]["password"]
    user = accounts.create_user(ADMIN, {"username": "liuyang", "password": "刘洋在深圳的第一单-2026",
                                        "name": "刘洋", "role": "rep", "team_id": team_id})
    assert user["username"] == "liuyang"


@pytest.mark.parametrize("password,why", [("admin-2026-pass", "must not contain the username"),
                                          ("qwertyuiop", "too easy to guess")])
def test_a_weak_admin_password_stops_the_service(container_factory, service_config, caplog,
                                                 db_of, password, why):
    container = container_factory(AccountsService, {**service_config, "ADMIN_PASSWORD": password})
    with caplog.at_level(logging.CRITICAL, logger="services.accounts.service"):
        with pytest.raises(RuntimeError, match="CRM_ADMIN_PASSWORD"):
            container.start()
    assert any("refuses to start: CRM_ADMIN_PASSWORD" in r.getMessage() and why in r.getMessage()
               for r in caplog.records)
    assert db_of("accounts").users.count_documents({}) == 0  # no admin with it
