"""The forecast over HTTP, on the whole stack: customers entered and moved
through the stages by reps reach the forecast by events."""

from __future__ import annotations

import random
import time
import uuid

import pytest

from tests.e2e.test_platform import assert_error

REGIONS = ["深圳", "广州", "东莞", "佛山", "珠海", "厦门", "苏州", "宁波"]
TRADES = ["电子", "五金", "塑胶", "包装", "纺织", "机电", "照明", "模具"]


def company_name() -> str:
    # unique, so the duplicate guard lets every one in
    return (f"{random.choice(REGIONS)}市{uuid.uuid4().hex[:6].upper()}"
            f"{random.choice(TRADES)}有限公司")


def new_customer(api, person, stage: int, yuan: int) -> dict:
    r = api.post("/api/customers", person.token, json={
        "company_name": company_name(), "stage": stage, "expected_value": yuan,
        "phones": [], "industry": "制造业"})
    assert r.status_code == 201, r.text
    return r.json()


def eventually(fetch, predicate, timeout=60.0):
    """Events are asynchronous: poll until the read model caught up."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fetch()
        if predicate(last):
            return last
        time.sleep(0.25)
    raise AssertionError(f"not caught up in {timeout}s; last: {last}")


def forecast_of(api, person, **params):
    r = api.get("/api/forecast", person.token, params=params)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def seller(make_user, team):
    """A rep of his own for this module, so other modules' customers do not
    move his figures."""
    return make_user("rep", team["id"], "周杰")


def expected_from_customers(api, person) -> tuple[float, int]:
    """The forecast computed from customers' own data (their truth)."""
    stages = {s["stage"]: s for s in api.get("/api/stages", person.token).json()}
    items, page = [], 1
    while True:
        r = api.get("/api/customers", person.token, params={"page": page, "page_size": 100})
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        if len(items) >= r.json()["total"]:
            break
        page += 1
    mine = [c for c in items if c["status"] == "active" and (c.get("owner") or {}).get("id")
            == person.id]
    active = [c for c in mine if stages.get(c["stage"], {}).get("active")]
    # /api/stages gives probabilities as integer percents
    forecast = sum(c["expected_value"] * stages[c["stage"]]["probability"] / 100 for c in active)
    return round(forecast, 2), len(active)


def test_forecast_follows_customers_and_reliability_at_14(api, seller):
    for i in range(13):
        new_customer(api, seller, [25, 50, 75, 90][i % 4], 10_000)
    prospect = new_customer(api, seller, 10, 10_000)
    below = eventually(lambda: forecast_of(api, seller), lambda f: f["active_count"] == 13)
    assert below["reliable"] is False and below["min_active"] == 14
    assert below["scope"] == f"owner:{seller.id}"
    assert below["forecast"] == 4 * 2500 + 3 * 5000 + 3 * 7500 + 3 * 9000
    r = api.post(f"/api/customers/{prospect['id']}/stage", seller.token,
                 json={"stage": 25, "note": "客户同意试样"})
    assert r.status_code == 200, r.text
    at = eventually(lambda: forecast_of(api, seller), lambda f: f["active_count"] == 14)
    assert at["reliable"] is True
    assert at["forecast"] == below["forecast"] + 2500
    assert {r["stage"]: r["count"] for r in at["stages"]}[10] == 0


def test_read_model_equals_customers_truth_after_random_stage_changes(api, make_user, team,
                                                                       admin):
    rep = make_user("rep", team["id"], "吴敏")
    rng = random.Random(2024)
    stages = [s["stage"] for s in api.get("/api/stages", rep.token).json()]
    customers = [new_customer(api, rep, rng.choice(stages[:4]), rng.randint(1, 300) * 1000)
                 for _ in range(12)]
    for _ in range(40):
        c = rng.choice(customers)
        r = api.post(f"/api/customers/{c['id']}/stage", rep.token,
                     json={"stage": rng.choice(stages), "note": "随机推进"})
        assert r.status_code == 200, r.text
    want, active = expected_from_customers(api, rep)
    got = eventually(lambda: forecast_of(api, rep),
                     lambda f: (round(f["forecast"], 2), f["active_count"]) == (want, active))
    assert got["calibrated"]["method"] == "beta-shrinkage"
    # and the admin's reconcile finds nothing different from customers' data
    r = api.post("/api/forecast/reconcile", admin.token)
    assert r.status_code == 202, r.text
    job = eventually(lambda: api.get(f"/api/forecast/jobs/{r.json()['id']}", admin.token).json(),
                     lambda j: j["state"] in ("done", "failed"), timeout=120)
    assert job["state"] == "done", job
    mine = [d for d in job["result"]["differences"]
            if d["customer_id"] in {c["id"] for c in customers}]
    assert mine == []
    assert job["result"]["aggregates"]["consistent"] is True, job["result"]["aggregates"]
    latest = api.get("/api/forecast/reconcile", admin.token)
    assert latest.status_code == 200 and latest.json()["kind"] == "reconcile"


def test_who_sees_which_forecast(api, admin, manager, rep, rep2, other_rep, other_manager, team,
                                 other_team):
    assert forecast_of(api, rep)["scope"] == f"owner:{rep.id}"
    assert forecast_of(api, rep, owner_id=rep.id)["scope"] == f"owner:{rep.id}"
    assert_error(api.get("/api/forecast", rep.token, params={"owner_id": rep2.id}), 403,
                 "forbidden")
    assert_error(api.get("/api/forecast", rep.token, params={"team_id": other_team["id"]}), 403)
    assert forecast_of(api, manager)["scope"] == f"team:{team['id']}"
    assert forecast_of(api, manager, owner_id=rep2.id)["scope"] == f"owner:{rep2.id}"
    assert_error(api.get("/api/forecast", manager.token, params={"team_id": other_team["id"]}),
                 403)
    assert_error(api.get("/api/forecast", manager.token, params={"owner_id": other_rep.id}),
                 403)
    assert forecast_of(api, other_manager)["scope"] == f"team:{other_team['id']}"
    assert forecast_of(api, admin)["scope"] == "company"
    assert forecast_of(api, admin, team_id=other_team["id"])["scope"] == \
        f"team:{other_team['id']}"
    assert forecast_of(api, admin, owner_id=other_rep.id)["scope"] == f"owner:{other_rep.id}"
    assert_error(api.get("/api/forecast", admin.token,
                         params={"owner_id": other_rep.id, "team_id": team["id"]}), 422)
    assert_error(api.get("/api/forecast"), 401)
    body = assert_error(api.get("/api/forecast", admin.token, params={"team_id": "华南 一部"}),
                        422)
    assert "team_id" in body["fields"]
    # history and backtest follow the same rules
    assert api.get("/api/forecast/history", rep.token).json()["scope"] == f"owner:{rep.id}"
    assert_error(api.get("/api/forecast/history", rep.token, params={"owner_id": rep2.id}), 403)
    assert_error(api.get("/api/forecast/backtest", manager.token,
                         params={"team_id": other_team["id"]}), 403)
    back = api.get("/api/forecast/backtest", manager.token, params={"months": 3})
    assert back.status_code == 200, back.text
    assert len(back.json()["months"]) == 3
    assert_error(api.get("/api/forecast/backtest", admin.token, params={"months": 99}), 422)
    # rebuild and reconcile are the admin's
    for path in ("/api/forecast/rebuild", "/api/forecast/reconcile"):
        assert_error(api.post(path, manager.token), 403)
        assert_error(api.post(path, rep.token), 403)
    assert_error(api.get("/api/forecast/reconcile", manager.token), 403)
    assert_error(api.get("/api/forecast/jobs/nosuchjob", admin.token), 404)


def test_the_forecast_endpoints_are_documented(api):
    doc = api.get("/api/openapi.json").json()
    for path, method in [("/api/forecast", "get"), ("/api/forecast/history", "get"),
                         ("/api/forecast/backtest", "get"), ("/api/forecast/rebuild", "post"),
                         ("/api/forecast/reconcile", "post"), ("/api/forecast/reconcile", "get"),
                         ("/api/forecast/jobs/{id}", "get")]:
        assert method in doc["paths"][path], (path, method)
    params = {p["name"] for p in doc["paths"]["/api/forecast"]["get"]["parameters"]}
    assert {"owner_id", "team_id"} <= params


def test_rebuild_from_customers_keeps_the_figures(api, admin, seller):
    before = forecast_of(api, seller)
    assert before["active_count"] >= 13  # from the first test of this module
    r = api.post("/api/forecast/rebuild", admin.token)
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "queued" and r.json()["kind"] == "rebuild"
    job = eventually(lambda: api.get(f"/api/forecast/jobs/{r.json()['id']}", admin.token).json(),
                     lambda j: j["state"] in ("done", "failed"), timeout=180)
    assert job["state"] == "done", job
    assert job["result"]["exported"] >= before["active_count"]
    after = forecast_of(api, seller)  # his customers did not move meanwhile
    for key in ("stages", "active_count", "forecast", "reliable"):
        assert after[key] == before[key], key
