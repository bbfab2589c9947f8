"""Lifecycle races over HTTP with real concurrent requests: each has exactly
one outcome, and the audit trail agrees with it."""

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.e2e.test_integrity import company, enter, ok, to_pool


def at_once(stack, calls):
    """Fire every (method, path, token, json) at the same moment, each on its
    own connection."""
    start = threading.Barrier(len(calls))

    def go(call):
        method, path, token, body = call
        s = requests.Session()
        start.wait(timeout=30)
        return s.request(method, stack.url + path, json=body, timeout=60,
                         headers={"Authorization": f"Bearer {token}"})

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))


def actions(db, customer_id):
    return [e["action"] for e in db.audit.find({"customer_id": customer_id}).sort("seq", 1)]


def test_reps_claiming_one_pool_customer_at_once_one_wins(stack, api, make_user, team,
                                                          other_team, rep, manager, db):
    claimants = [make_user("rep", (team if i % 2 else other_team)["id"], f"抢单员{i}")
                 for i in range(6)]
    for _ in range(3):
        c = enter(api, rep)
        to_pool(api, rep, manager, c["id"])
        answers = at_once(stack, [("POST", f"/api/customers/{c['id']}/claim", p.token, None)
                                  for p in claimants])
        codes = sorted(r.status_code for r in answers)
        assert codes == [200] + [409] * 5, codes
        [winner] = [claimants[i] for i, r in enumerate(answers) if r.status_code == 200]
        assert all(r.json()["error"] == "not_in_pool" for r in answers if r.status_code == 409)
        now = ok(api.get(f"/api/customers/{c['id']}", winner.token))
        assert now["owner"]["id"] == winner.id and now["status"] == "active"
        assert actions(db, c["id"])[-2:] == ["abandoned", "claimed"]
        trail = ok(api.get(f"/api/customers/{c['id']}/audit?page_size=100", winner.token))
        assert trail["intact"] is True
        [claimed] = [i for i in trail["items"] if i["action"] == "claimed"]
        assert claimed["actor"]["id"] == winner.id
        doc = db.customers.find_one({"_id": c["id"]})
        assert doc["owner_id"] == winner.id and doc["version"] == now["version"]


def test_two_approvals_of_conflicting_amendments_one_applies(stack, api, rep, rep2, manager,
                                                             admin, db):
    for _ in range(3):
        x, y = enter(api, rep), enter(api, rep2)
        wanted = company()  # free while both ask for it
        ax = ok(api.post(f"/api/customers/{x['id']}/amendments", rep.token, json={
            "changes": {"company_name": wanted}, "reason": "工商名称变更"}), 201)
        ay = ok(api.post(f"/api/customers/{y['id']}/amendments", rep2.token, json={
            "changes": {"company_name": wanted}, "reason": "工商名称变更"}), 201)
        answers = at_once(stack, [
            ("POST", f"/api/amendments/{ax['id']}/approve", manager.token, None),
            ("POST", f"/api/amendments/{ay['id']}/approve", admin.token, None)])
        codes = sorted(r.status_code for r in answers)
        assert codes == [200, 409], [r.text for r in answers]
        loser = [r for r in answers if r.status_code == 409][0].json()
        assert loser["error"] == "duplicate_customer"
        won, lost = (x, y) if answers[0].status_code == 200 else (y, x)
        assert loser["matches"][0]["customer_id"] == won["id"]
        assert ok(api.get(f"/api/customers/{won['id']}", manager.token))["company_name"] == wanted
        kept = ok(api.get(f"/api/customers/{lost['id']}", manager.token))
        assert kept["company_name"] == lost["company_name"] and kept["version"] == 1
        # the loser's old name is still claimed by it, the new one by the winner
        check = ok(api.post("/api/customers/check", rep.token,
                            json={"company_name": lost["company_name"]}))
        assert [m["customer_id"] for m in check["matches"]] == [lost["id"]]
        check = ok(api.post("/api/customers/check", rep.token, json={"company_name": wanted}))
        assert [m["customer_id"] for m in check["matches"]] == [won["id"]]
        assert actions(db, won["id"])[-1] == "amendment_approved"
        assert actions(db, lost["id"])[-1] == "amendment_refused"
        for c in (x, y):
            assert ok(api.get(f"/api/customers/{c['id']}/audit", manager.token))["intact"]


def test_one_amendment_approved_twice_at_once_applies_once(stack, api, rep, manager, admin,
                                                           db):
    c = enter(api, rep)
    a = ok(api.post(f"/api/customers/{c['id']}/amendments", rep.token, json={
        "changes": {"expected_value": 150000}, "reason": "客户追加订单"}), 201)
    answers = at_once(stack, [
        ("POST", f"/api/amendments/{a['id']}/approve", manager.token, None),
        ("POST", f"/api/amendments/{a['id']}/approve", admin.token, None),
        ("POST", f"/api/amendments/{a['id']}/reject", manager.token, {"note": "不批"})])
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 409, 409], [r.text for r in answers]
    assert all(r.json()["error"] == "amendment_not_pending"
               for r in answers if r.status_code == 409)
    after = ok(api.get(f"/api/customers/{c['id']}", rep.token))
    decided = [x for x in actions(db, c["id"]) if x.startswith("amendment_")]
    if after["expected_value"] == 150000:
        assert after["version"] == 2 and decided == ["amendment_requested", "amendment_approved"]
    else:
        assert after["version"] == 1 and decided == ["amendment_requested", "amendment_rejected"]
