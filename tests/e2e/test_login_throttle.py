"""Login throttling and the password policy over HTTP, as a client sees them,
with the production thresholds (20 failures per address, 50 per username,
5 per username and address).

Each client's address comes in X-Forwarded-For, which the stack believes from
127.0.0.1 (CRM_TRUSTED_PROXIES in tests/stack_fixtures.py); every test uses
addresses of its own, so the throttle state of one never touches another's.
"""

import math
import time
import uuid

import pytest

from tests.e2e.test_platform import assert_error

RUN = uuid.uuid4().int % 200  # this run's own second octet


def login(api, username, password, address=None):
    headers = {"X-Forwarded-For": address} if address else {}
    return api.post("/api/auth/login", json={"username": username, "password": password},
                    headers=headers)


def lock_until(api, username, addresses, at_least):
    """Guess wrong, each time from the next of `addresses`, until a lock of
    at least `at_least` seconds runs; wait out the shorter ones on the way
    (each lock that runs out lets one more guess through, which doubles it).
    Returns the monotonic time before which that lock certainly runs (the
    answer rounds the time left up to whole seconds, counted from a moment
    after the request was sent)."""
    for address in addresses:
        sent = time.monotonic()
        r = login(api, username, "wrong-guess-" + uuid.uuid4().hex[:6], address)
        if r.status_code == 401:
            continue
        assert r.status_code == 429, r.text
        seconds = r.json()["retry_after_seconds"]
        if seconds >= at_least:
            return sent + seconds - 1
        time.sleep(seconds)
    raise AssertionError("no lock long enough")


def test_spraying_50_usernames_from_one_address_is_slowed(api, make_user, team):
    real = [make_user("rep", team["id"], name) for name in
            ("陈静", "杨帆", "黄磊", "周敏", "吴昊", "徐丽", "孙强", "马超", "朱琳", "胡军")]
    # 50 usernames, one in five a real one, the password one guess for all
    names = [real[i // 5].username if i % 5 == 2 else f"ghost_{uuid.uuid4().hex[:8]}"
             for i in range(50)]
    known = {p.username for p in real}
    attacker = f"198.51.{RUN}.7"
    answers = []
    for name in names:
        sent = time.monotonic()
        answers.append((name in known, login(api, name, "Spring2026!", attacker), sent))
    statuses = [r.status_code for _, r, _ in answers]
    # 20 free failures, and the 21st, which took the address's first lock
    assert statuses[:21] == [401] * 21, statuses
    # from then on each guess that got through had waited out a lock twice as
    # long as the last (1 s, 2 s, 4 s ...): k of them take 2^k - 1 seconds
    # from the 21st guess on
    elapsed = time.monotonic() - answers[20][2]
    late_401 = statuses[21:].count(401)
    assert late_401 <= math.log2(elapsed + 1), (statuses, elapsed)
    assert set(statuses[21:]) == {401, 429} or set(statuses[21:]) == {429}
    # one answer for all: known and unknown usernames cannot be told apart
    refused = [(k, r) for k, r, _ in answers if r.status_code == 429]
    checked = [(k, r) for k, r, _ in answers if r.status_code == 401]
    assert {k for k, _ in refused} == {True, False} == {k for k, _ in checked}
    assert {r.text for _, r in checked} == {
        '{"error":"invalid_credentials","message":"wrong username or password"}'}
    for _, r in refused:
        body = assert_error(r, 429, "too_many_attempts")
        assert set(body) == {"error", "message", "retry_after_seconds"}
        assert body["message"] == "too many wrong passwords; try again later"
        assert r.headers["Retry-After"] == str(body["retry_after_seconds"])
    # the attacker is slowed, the users are not: from their own address
    # they sign in at once
    for person in real[:3]:
        assert login(api, person.username, person.password).status_code == 200


def test_the_owner_gets_in_from_his_usual_address_while_the_attacker_is_locked(
        api, make_user, team):
    owner = make_user("rep", team["id"], "林志强", phone="13812345678")
    office = f"203.0.{RUN}.20"
    assert login(api, owner.username, owner.password, office).status_code == 200
    # a guesser spread over many addresses: one wrong password from each, so
    # no address and no (username, address) counter ever locks; past 50 the
    # username locks at every address but the owner's usual ones
    guessers = (f"10.{RUN}.{i // 250}.{i % 250 + 1}" for i in range(10_000))
    lock_runs_until = lock_until(api, owner.username, guessers, at_least=16)
    # the right password from anywhere else is refused the same way
    r = login(api, owner.username, owner.password, next(guessers))
    assert_error(r, 429, "too_many_attempts")
    # the owner at his office: his own typos cost him a short delay ...
    for _ in range(6):
        assert login(api, owner.username, "林志强的新密码?", office).status_code == 401
    r = login(api, owner.username, owner.password, office)
    if r.status_code == 429:
        assert r.json()["retry_after_seconds"] <= 2
        time.sleep(int(r.headers["Retry-After"]))
        r = login(api, owner.username, owner.password, office)
    # ... and he is in, while the lock on every other address still runs
    assert r.status_code == 200, r.text
    assert time.monotonic() < lock_runs_until
    token = r.json()["token"]
    assert api.get("/api/users/me", token).json()["username"] == owner.username
    if time.monotonic() < lock_runs_until - 1:
        assert login(api, owner.username, owner.password, next(guessers)).status_code == 429


def test_an_unlock_lets_a_locked_user_in_at_once(api, make_user, team, manager, rep,
                                                  other_manager, admin):
    user = make_user("rep", team["id"], "郑凯")
    hotel = f"192.0.{RUN}.44"  # one address: the (username, address) lock
    lock_runs_until = lock_until(api, user.username, [hotel] * 20, at_least=8)
    assert_error(login(api, user.username, user.password, hotel), 429, "too_many_attempts")
    path = f"/api/users/{user.id}/unlock"
    assert_error(api.post(path, rep.token), 403, "forbidden")  # a colleague
    assert_error(api.post(path, other_manager.token), 403, "forbidden")  # not his manager
    assert_error(api.post("/api/users/no-such-user/unlock", admin.token), 404, "not_found")
    r = api.post(path, manager.token)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == user.id and "password_hash" not in r.text
    r = login(api, user.username, user.password, hotel)
    assert r.status_code == 200, r.text
    assert time.monotonic() < lock_runs_until  # the lock had not run out
    assert api.post(path, admin.token).status_code == 200  # an admin unlocks anyone
    history = api.get(f"/api/users/{user.id}/history", manager.token).json()["items"]
    assert [(h["action"], h["actor"]["id"]) for h in history[:2]] == [
        ("unlock", admin.id), ("unlock", manager.id)]


@pytest.mark.parametrize("password,why", [
    ("qwertyuiop", "too easy to guess"),
    ("13812345678", "too easy to guess"),
    ("my-{username}-2026", "must not contain the username"),
    ("深圳华强北电子市场", "at least 10 characters"),
])
def test_a_weak_password_is_refused_naming_the_field(api, admin, team, password, why):
    username = f"weak_{uuid.uuid4().hex[:6]}"
    r = api.post("/api/users", admin.token, json={
        "username": username, "password": password.format(username=username.upper()),
        "name": "何晓", "role": "rep", "team_id": team["id"]})
    body = assert_error(r, 422, "invalid_fields")
    assert set(body["fields"]) == {"password"}
    assert why in body["fields"]["password"]
    r = api.post("/api/users", admin.token, json={
        "username": username, "password": "深圳华强北电子市场-何晓", "name": "何晓",
        "role": "rep", "team_id": team["id"]})
    assert r.status_code == 201, r.text
