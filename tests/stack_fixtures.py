"""The whole stack as `make run` starts it, and the people in it: one stack
for the session, shared by the HTTP tests (tests/e2e) and the browser tests
(tests/web)."""

import uuid
from dataclasses import dataclass

import pytest

from tests.e2e.stack import Api, Stack

E2E_SECRET = "e2e-secret-" + uuid.uuid4().hex + uuid.uuid4().hex
ADMIN_PASSWORD = "管理员-口令-" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def stack():
    # X-Forwarded-For from 127.0.0.1 is believed: a test plays clients at
    # other addresses (tests/e2e/test_login_throttle.py)
    s = Stack(E2E_SECRET, ADMIN_PASSWORD, CRM_TRUSTED_PROXIES="127.0.0.1").start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def api(stack):
    return Api(stack.url)


@dataclass
class Person:
    id: str
    username: str
    password: str
    token: str
    role: str
    team_id: str | None
    name: str


@pytest.fixture(scope="session")
def admin(api):
    token = api.login("admin", ADMIN_PASSWORD)
    me = api.get("/api/users/me", token).json()
    return Person(me["id"], "admin", ADMIN_PASSWORD, token, "admin", None, me["name"])


@pytest.fixture(scope="session")
def make_user(api, admin):
    def make(role, team_id, name, creator=None, phone=None):
        username = f"{role}_{uuid.uuid4().hex[:8]}"
        password = "pw-" + uuid.uuid4().hex[:16]
        body = {"username": username, "password": password, "name": name, "role": role,
                "team_id": team_id}
        if phone:
            body["phone"] = phone
        r = api.post("/api/users", (creator or admin).token, json=body)
        assert r.status_code == 201, r.text
        user = r.json()
        token = api.login(username, password)
        return Person(user["id"], username, password, token, role, team_id, name)

    return make


@pytest.fixture(scope="session")
def team(api, admin):
    r = api.post("/api/teams", admin.token, json={"name": "华南销售一部"})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="session")
def other_team(api, admin):
    return api.post("/api/teams", admin.token, json={"name": "华北销售二部"}).json()


@pytest.fixture(scope="session")
def manager(make_user, team):
    return make_user("manager", team["id"], "王经理", phone="13900001111")


@pytest.fixture(scope="session")
def rep(make_user, team):
    return make_user("rep", team["id"], "张伟", phone="13800138000")


@pytest.fixture(scope="session")
def rep2(make_user, team):
    return make_user("rep", team["id"], "李娜", phone="13800138001")


@pytest.fixture(scope="session")
def other_rep(make_user, other_team):
    return make_user("rep", other_team["id"], "赵磊", phone="13800138002")


@pytest.fixture(scope="session")
def other_manager(make_user, other_team):
    return make_user("manager", other_team["id"], "孙经理")
