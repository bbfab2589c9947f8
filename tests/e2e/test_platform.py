"""The platform over HTTP, as a client sees it."""

import signal
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tests.e2e.stack import Stack, descendants
from tests.stack_fixtures import ADMIN_PASSWORD, E2E_SECRET


def assert_error(r, status, code=None):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert isinstance(body["error"], str) and isinstance(body["message"], str)
    if code:
        assert body["error"] == code, body
    return body


def test_health_names_every_service(api):
    r = api.get("/api/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["services"]["accounts"] == "ok"


def test_openapi_describes_every_endpoint(api):
    doc = api.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path, method in [("/api/auth/login", "post"), ("/api/users", "post"),
                         ("/api/users", "get"), ("/api/teams", "post"),
                         ("/api/users/me", "get"), ("/api/health", "get")]:
        assert method in doc["paths"][path], (path, method)
    login = doc["paths"]["/api/auth/login"]["post"]
    ref = login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(doc["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]) == {
        "username", "password"}
    assert login["requestBody"]["required"] is True
    # approve and reject take an optional note: described, not required
    for verdict in ("approve", "reject"):
        op = doc["paths"][f"/api/amendments/{{id}}/{verdict}"]["post"]
        assert op["requestBody"]["required"] is False
        assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/DecisionIn")


def test_bootstrap_admin_and_wrong_password(api):
    r = api.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    assert r.json()["user"]["role"] == "admin"
    assert "password_hash" not in r.text
    assert_error(api.post("/api/auth/login", json={"username": "admin", "password": "nope-nope"}),
                 401, "invalid_credentials")


def test_chinese_is_returned_unescaped(api, manager):
    r = api.get("/api/users/me", manager.token)
    assert r.json()["name"] == "王经理"
    assert "王经理".encode() in r.content
    assert b"\\u" not in r.content


def test_users_per_role(api, admin, manager, rep, other_manager, team, other_team):
    me = api.get("/api/users/me", rep.token).json()
    assert me["role"] == "rep" and me["team_id"] == team["id"] and me["phone"] == "+8613800138000"
    assert me["timezone"] == "Asia/Shanghai"
    # a manager adds a rep to his own team
    r = api.post("/api/users", manager.token, json={
        "username": "newrep_mgr", "password": "newrep-pass", "name": "陈晨", "role": "rep"})
    assert r.status_code == 201, r.text
    assert r.json()["team_id"] == team["id"]
    # ... but not to another team, and no managers
    assert_error(api.post("/api/users", manager.token, json={
        "username": "x_other", "password": "xother-pass", "name": "某人", "role": "rep",
        "team_id": other_team["id"]}), 403, "forbidden")
    assert_error(api.post("/api/users", manager.token, json={
        "username": "x_mgr", "password": "xmgr-pass1", "name": "某经理", "role": "manager",
        "team_id": team["id"]}), 403)
    # a rep creates nobody and lists nobody
    assert_error(api.post("/api/users", rep.token, json={
        "username": "x_rep", "password": "xrep-pass1", "name": "某", "role": "rep"}), 403)
    assert_error(api.get("/api/users", rep.token), 403)
    # teams are the admin's
    assert_error(api.post("/api/teams", manager.token, json={"name": "自立门户"}), 403)
    assert_error(api.post("/api/teams", rep.token, json={"name": "自立门户"}), 403)
    # a manager lists his team only; an admin everyone
    mine = api.get("/api/users", manager.token).json()
    assert {u["team_id"] for u in mine["items"]} == {team["id"]}
    assert other_manager.id not in {u["id"] for u in mine["items"]}
    everyone = api.get("/api/users?page_size=100", admin.token).json()
    assert other_manager.id in {u["id"] for u in everyone["items"]}
    assert everyone["total"] >= len(everyone["items"])


def test_pagination(api, admin):
    first = api.get("/api/users?page=1&page_size=1", admin.token).json()
    second = api.get("/api/users?page=2&page_size=1", admin.token).json()
    assert len(first["items"]) == 1 and len(second["items"]) == 1
    assert first["items"][0]["id"] != second["items"][0]["id"]
    assert_error(api.get("/api/users?page_size=101", admin.token), 422)
    assert_error(api.get("/api/users?page=abc", admin.token), 422)


def test_username_taken(api, admin, rep):
    body = {"username": rep.username.upper(), "password": "重名-口令-9Qz3w", "name": "重名",
            "role": "rep", "team_id": rep.team_id}
    assert_error(api.post("/api/users", admin.token, json=body), 409, "username_taken")


def test_422_names_each_field(api, admin, team):
    r = api.post("/api/users", admin.token, json={
        "username": "ok_name", "password": "short", "name": "", "role": "boss",
        "team_id": team["id"], "phone": "12", "timezone": "Mars/Base"})
    body = assert_error(r, 422, "invalid_fields")
    assert set(body["fields"]) == {"password", "name", "role", "phone", "timezone"}
    assert "at least 10" in body["fields"]["password"]


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nonsense", "Basic YWRtaW46eA==",
                                    "Bearer a.b.c"])
def test_401_without_a_good_token(api, header):
    headers = {"Authorization": header} if header else {}
    r = api.get("/api/users/me", headers=headers)
    assert_error(r, 401)
    assert r.headers.get("WWW-Authenticate") == "Bearer"


def _token(secret, **overrides):
    now = datetime.now(UTC)
    claims = {"iss": "salescrm", "sub": "x", "role": "admin", "team_id": None,
              "iat": int(now.timestamp()), "exp": int((now + timedelta(hours=1)).timestamp())}
    claims.update(overrides)
    return jwt.encode(claims, secret, algorithm="HS256")


def test_401_for_expired_forged_or_tampered_tokens(api, rep):
    past = datetime.now(UTC) - timedelta(hours=2)
    expired = _token(E2E_SECRET, iat=int(past.timestamp()),
                     exp=int((past + timedelta(hours=1)).timestamp()))
    assert_error(api.get("/api/users/me", expired), 401, "token_expired")
    forged = _token("a-guessed-secret-that-is-long-enough-0123456789")
    assert_error(api.get("/api/users", forged), 401, "invalid_token")
    claims = jwt.decode(rep.token, options={"verify_signature": False})
    head, _, sig = rep.token.split(".")
    claims["role"] = "admin"
    body = jwt.encode(claims, "x" * 40, algorithm="HS256").split(".")[1]
    assert_error(api.get("/api/users", f"{head}.{body}.{sig}"), 401, "invalid_token")


def test_json_404_and_405(api, admin):
    body = assert_error(api.get("/api/no/such/thing", admin.token), 404, "not_found")
    assert "/api/no/such/thing" in body["message"]
    r = api.delete("/api/users/me", admin.token)
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in r.headers["Allow"]


def test_the_web_app_is_served_outside_api(api):
    """/ and every screen's URL load the app (a deep link survives a reload);
    what is under /api stays JSON."""
    for path in ("/", "/customers/anything", "/schedule"):
        r = api.get(path)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"].startswith("text/html")
        assert '<div id="app">' in r.text
        assert r.headers["Cache-Control"] == "no-cache"
    script = next(part.split('"')[0] for part in r.text.split('src="')[1:]
                  if part.startswith("/assets/"))
    r = api.get(script, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == "gzip"
    assert "immutable" in r.headers["Cache-Control"]
    assert api.get("/assets/no-such-chunk.js").status_code == 404


def test_cors_preflight_and_headers(api):
    r = api.request("OPTIONS", "/api/users", headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] in ("*", "http://localhost:5173")
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    r = api.get("/api/health", headers={"Origin": "http://localhost:5173"})
    assert r.headers["Access-Control-Allow-Origin"] in ("*", "http://localhost:5173")


def nested(depth):
    return "[" * depth + "]" * depth


HOSTILE = [
    ("not json", b"username=admin&password=x"),
    ("empty", b""),
    ("truncated", b'{"username": "admin", "pass'),
    ("array", b'["admin", "x"]'),
    ("string", b'"admin"'),
    ("null", b"null"),
    ("wrong types", b'{"username": 123, "password": ["x"]}'),
    ("null values", b'{"username": null, "password": null}'),
    ("huge string", ('{"username": "' + "张" * 200000 + '", "password": "x"}').encode()),
    ("null byte", b'{"username": "ad\\u0000min", "password": "x\\u0000"}'),
    ("raw null byte", b'{"username": "ad\x00min", "password": "x"}'),
    ("deep nesting", ('{"username": ' + nested(100000) + ', "password": "x"}').encode()),
    ("invalid utf-8", b'{"username": "\xff\xfe", "password": "x"}'),
    ("lone surrogate", b'{"username": "\\ud800", "password": "x"}'),
    ("extra field", b'{"username": "a", "password": "x", "admin": true}'),
    ("huge number", b'{"username": 1e999999, "password": "x"}'),
]


@pytest.mark.parametrize("name,raw", HOSTILE, ids=[h[0] for h in HOSTILE])
@pytest.mark.parametrize("path,who", [("/api/auth/login", None), ("/api/users", "admin"),
                                      ("/api/teams", "admin")])
def test_hostile_bodies_are_4xx_never_500(api, admin, name, raw, path, who):
    r = api.post(path, admin.token if who else None, data=raw,
                 headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (name, r.status_code, r.text[:200])
    assert r.headers["Content-Type"].startswith("application/json")
    assert "Traceback" not in r.text


def test_body_is_capped(api, admin):
    r = api.post("/api/teams", admin.token, data=b'{"name": "' + b"a" * 2_000_000 + b'"}',
                 headers={"Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")


def test_a_chunked_body_is_read_and_capped(api, admin):
    # a body of unknown length (Transfer-Encoding: chunked), as streaming
    # clients send it
    def chunks(*parts):
        yield from parts

    r = api.post("/api/teams", admin.token, data=chunks(b'{"name": ',
                                                         '"华东销售三部"}'.encode()),
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "华东销售三部"
    r = api.post("/api/teams", admin.token,
                 data=chunks(b'{"name": "', *([b"a" * 100_000] * 20), b'"}'),
                 headers={"Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")


@pytest.mark.parametrize("sig,group", [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGTERM to make", "Ctrl-C"])
def test_make_run_stops_every_process_within_10s(sig, group):
    s = Stack(E2E_SECRET, ADMIN_PASSWORD).start()
    assert len(descendants(s.proc.pid)) >= 3  # make, the launcher, honcho, the services
    took, left = s.stop(sig, group=group)
    assert not left, f"still running after {sig.name}: {left}"
    assert took < 10, took


def test_settings_defaults_and_changes(api, make_user, team):
    user = make_user("rep", team["id"], "周杰")
    r = api.get("/api/settings/me", user.token)
    assert r.json() == {"escalate_after_minutes": 10, "birthday_lead_days": 2,
                        "timezone": "Asia/Shanghai"}
    r = api.put("/api/settings/me", user.token, json={"escalate_after_minutes": 0.5})
    assert r.status_code == 200, r.text
    assert r.json() == {"escalate_after_minutes": 0.5, "birthday_lead_days": 2,
                        "timezone": "Asia/Shanghai"}
    r = api.put("/api/settings/me", user.token,
                json={"birthday_lead_days": 5, "timezone": "America/New_York"})
    assert r.json()["birthday_lead_days"] == 5
    assert api.get("/api/users/me", user.token).json()["timezone"] == "America/New_York"
    body = assert_error(api.put("/api/settings/me", user.token, json={
        "escalate_after_minutes": -1, "birthday_lead_days": "2", "timezone": "America"}), 422)
    assert set(body["fields"]) == {"escalate_after_minutes", "birthday_lead_days", "timezone"}
    # nothing half-written by the refused request
    assert api.get("/api/settings/me", user.token).json()["escalate_after_minutes"] == 0.5
    assert_error(api.get("/api/settings/me"), 401)
