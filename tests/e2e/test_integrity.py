"""Customer integrity over HTTP, as a client sees it: who may do what
(a role matrix over every lifecycle endpoint), immutability, the
alarm-before-abandon rule, the public pool, disputes, stages, referrals and
the audit chain."""

import random

import pytest

from tests.e2e.test_platform import assert_error

_BRAND = "鑫源泰丰华盛隆达恒通宏远嘉禾瑞祥永安金鼎银河星辰天宇博雅康泽德信和润"
_rng = random.SystemRandom()
DEFAULT_STAGES = [
    {"stage": 0, "label": "潜在客户", "probability": 0, "active": False},
    {"stage": 10, "label": "意向客户", "probability": 10, "active": False},
    {"stage": 25, "label": "愿意试样", "probability": 25, "active": True},
    {"stage": 50, "label": "认可样品", "probability": 50, "active": True},
    {"stage": 75, "label": "接受报价", "probability": 75, "active": True},
    {"stage": 90, "label": "签订合同", "probability": 90, "active": True},
    {"stage": 100, "label": "稳定客户", "probability": 100, "active": False},
]


def company() -> str:
    """A company no other test of this shared stack enters."""
    return f"东莞市{''.join(_rng.sample(_BRAND, 4))}精密机械有限公司"


def ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


def enter(api, person, **extra):
    body = {"company_name": company(), "expected_value": 80000,
            "contacts": [{"name": "周建华", "title": "采购经理", "decision_level": 3}], **extra}
    return ok(api.post("/api/customers", person.token, json=body), 201)


def to_pool(api, owner, manager, customer_id):
    alarm = ok(api.post(f"/api/customers/{customer_id}/alarms", owner.token,
                        json={"reason": "客户工厂搬迁到越南，不再采购"}), 201)
    ok(api.post(f"/api/alarms/{alarm['id']}/resolve", manager.token,
                json={"decision": "abandon", "note": "已电话核实", "verified": "real"}))
    return ok(api.post(f"/api/customers/{customer_id}/abandon", owner.token))




# ------------------------------------------------------------ role matrix
#
# Each case builds its own fresh state (a customer of `rep`, and what the
# endpoint acts on), then calls the endpoint as one of five people.

ROLES = ("owner", "other_rep", "manager", "other_manager", "admin")


def _customer(api, p):
    return f"/api/customers/{enter(api, p['owner'])['id']}", None


def _patch(api, p):
    path, _ = _customer(api, p)
    return path, {"changes": {"industry": "精密机械"}, "reason": "拜访后补充"}


def _amend(api, p):
    path, _ = _customer(api, p)
    return path + "/amendments", {"changes": {"address": "东莞市长安镇"}, "reason": "补充地址"}


def _amendment(action):
    def build(api, p):
        path, body = _amend(api, p)
        a = ok(api.post(path, p["owner"].token, json=body), 201)
        return f"/api/amendments/{a['id']}/{action}", None
    return build


def _stage(api, p):
    path, _ = _customer(api, p)
    return path + "/stage", {"stage": 25, "note": "同意试样"}


def _alarm(api, p):
    path, _ = _customer(api, p)
    return path + "/alarms", {"reason": "对方压价太狠"}


def _resolve_alarm(api, p):
    path, body = _alarm(api, p)
    a = ok(api.post(path, p["owner"].token, json=body), 201)
    return f"/api/alarms/{a['id']}/resolve", {"decision": "continue", "note": "再谈一轮",
                                              "verified": "real"}


def _abandon(api, p):
    path, body = _alarm(api, p)
    a = ok(api.post(path, p["owner"].token, json=body), 201)
    ok(api.post(f"/api/alarms/{a['id']}/resolve", p["manager"].token,
                json={"decision": "abandon", "note": "同意放弃", "verified": "real"}))
    return path.rsplit("/", 1)[0] + "/abandon", None


def _claim(api, p):
    c = enter(api, p["owner"])
    to_pool(api, p["owner"], p["manager"], c["id"])
    return f"/api/customers/{c['id']}/claim", None


def _dispute(api, p):
    path, _ = _customer(api, p)
    return path + "/disputes", {"contact": {"name": "吴总", "title": "总经理",
                                            "decision_level": 5}, "note": "我先拜访的"}


def _resolve_dispute(api, p):
    path, body = _dispute(api, p)
    d = ok(api.post(path, p["other_rep"].token, json=body), 201)
    return f"/api/disputes/{d['id']}/resolve", {"winner_id": p["other_rep"].id,
                                                "note": "总经理决策权更高"}


def _referrals(api, p):
    path, _ = _customer(api, p)
    return path + "/referrals", None


def _audit(api, p):
    path, _ = _customer(api, p)
    return path + "/audit", None


def _fixed(path, body=None):
    return lambda api, p: (path, body)


A, F, N = 200, 403, 404
MATRIX = [
    # (name, method, build, expected for owner, other_rep, manager, other_manager, admin)
    ("patch", "PATCH", _patch, (F, F, A, N, A)),
    ("delete", "DELETE", _customer, (F, F, F, F, F)),
    ("amend", "POST", _amend, (201, N, F, N, F)),
    ("approve", "POST", _amendment("approve"), (F, F, A, F, A)),
    ("reject", "POST", _amendment("reject"), (F, F, A, F, A)),
    ("stage", "POST", _stage, (A, N, F, N, F)),
    ("alarm", "POST", _alarm, (201, N, F, N, F)),
    ("resolve_alarm", "POST", _resolve_alarm, (F, F, A, F, A)),
    ("abandon", "POST", _abandon, (A, N, F, N, F)),
    ("claim", "POST", _claim, (A, A, F, F, F)),
    ("dispute", "POST", _dispute, (409, 201, F, F, F)),
    ("resolve_dispute", "POST", _resolve_dispute, (F, F, A, F, A)),
    ("referrals", "GET", _referrals, (A, N, A, N, A)),
    ("audit", "GET", _audit, (A, N, A, N, A)),
    ("report", "GET", _fixed("/api/reports/integrity"), (F, F, A, A, A)),
    ("get_stages", "GET", _fixed("/api/stages"), (A, A, A, A, A)),
    ("put_stages", "PUT", _fixed("/api/stages", DEFAULT_STAGES), (F, F, F, F, A)),
    ("amendments", "GET", _fixed("/api/amendments?status=pending"), (A, A, A, A, A)),
    ("alarms", "GET", _fixed("/api/alarms?status=open"), (A, A, A, A, A)),
    ("disputes", "GET", _fixed("/api/disputes"), (A, A, A, A, A)),
]


@pytest.mark.parametrize("method,build,expected", [m[1:] for m in MATRIX],
                         ids=[m[0] for m in MATRIX])
@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(api, rep, rep2, manager, other_manager, admin, method, build, expected,
                     role):
    people = {"owner": rep, "other_rep": rep2, "manager": manager,
              "other_manager": other_manager, "admin": admin}
    path, body = build(api, people)
    want = expected[ROLES.index(role)]
    r = api.request(method, path, people[role].token, json=body)
    assert r.status_code == want, (method, path, role, r.text)
    if want >= 400:
        assert_error(r, want)
    if method == "PATCH" and role in ("owner", "other_rep"):
        assert r.json()["error"] == "records_are_immutable"
    if method == "DELETE":
        assert r.json()["error"] == "records_are_immutable"


def test_nobody_is_unauthenticated(api):
    for method, path in [("PATCH", "/api/customers/x"), ("GET", "/api/stages"),
                         ("POST", "/api/customers/x/claim"), ("GET", "/api/reports/integrity"),
                         ("GET", "/api/customers/x/audit")]:
        assert_error(api.request(method, path, json={}), 401)


def test_list_endpoints_are_scoped(api, rep, rep2, manager, other_manager, admin):
    c = enter(api, rep)
    ok(api.post(f"/api/customers/{c['id']}/alarms", rep.token, json={"reason": "决策链太长"}),
       201)
    a = ok(api.post(f"/api/customers/{c['id']}/amendments", rep.token,
                    json={"changes": {"industry": "模具"}, "reason": "补充"}), 201)
    for who, sees in [(rep, True), (rep2, False), (manager, True), (other_manager, False),
                      (admin, True)]:
        alarms = ok(api.get(f"/api/alarms?status=open&customer_id={c['id']}", who.token))
        assert (alarms["total"] == 1) is sees, who.name
        amendments = ok(api.get(f"/api/amendments?customer_id={c['id']}", who.token))
        assert [x["id"] for x in amendments["items"]] == ([a["id"]] if sees else [])
    assert_error(api.get("/api/alarms?page_size=101", manager.token), 422)


# ---------------------------------------------------------- immutability


def test_patch_needs_a_reason_and_valid_fields(api, rep, manager):
    c = enter(api, rep)
    path = f"/api/customers/{c['id']}"
    body = assert_error(api.patch(path, manager.token, json={"changes": {"industry": "模具"}}),
                        422)
    assert "reason" in body["fields"]
    body = assert_error(api.patch(path, manager.token, json={
        "changes": {"owner_id": rep.id}, "reason": "转给自己"}), 422)
    assert "changes.owner_id" in body["fields"]
    body = assert_error(api.patch(path, manager.token, json={
        "changes": {"phones": ["not-a-phone"]}, "reason": "补号码"}), 422)
    assert list(body["fields"]) == ["changes.phones"]
    assert_error(api.patch(path, manager.token, data=b"{nope",
                           headers={"Content-Type": "application/json"}), 400)
    # a rep hears 403 whatever his body says
    assert_error(api.patch(path, rep.token, data=b"{nope"), 403, "records_are_immutable")
    out = ok(api.patch(path, manager.token, json={
        "changes": {"expected_value": 123456.78, "address": "东莞市长安镇振安路"},
        "reason": "合同金额确认"}))
    assert out["expected_value"] == 123456.78 and out["version"] == 2
    assert ok(api.get(path, rep.token))["address"] == "东莞市长安镇振安路"


def test_delete_never_deletes(api, rep, admin):
    c = enter(api, rep)
    assert_error(api.delete(f"/api/customers/{c['id']}", admin.token), 403,
                 "records_are_immutable")
    assert ok(api.get(f"/api/customers/{c['id']}", rep.token))["id"] == c["id"]


# ------------------------------------------------- alarm, abandon, pool


def test_abandon_needs_an_alarm_resolved_with_abandon(api, rep, manager, other_rep, db):
    c = enter(api, rep)
    path = f"/api/customers/{c['id']}"
    assert_error(api.post(path + "/abandon", rep.token), 409, "alarm_required")
    alarm = ok(api.post(path + "/alarms", rep.token, json={"reason": "老板换人，新老板不认"}), 201)
    assert alarm["status"] == "open"
    assert_error(api.post(path + "/abandon", rep.token), 409, "alarm_required")
    ok(api.post(f"/api/alarms/{alarm['id']}/resolve", manager.token,
                json={"decision": "continue", "note": "先拜访新老板", "verified": "real"}))
    assert_error(api.post(path + "/abandon", rep.token), 409, "alarm_required")
    alarm2 = ok(api.post(path + "/alarms", rep.token, json={"reason": "新老板明确拒绝"}), 201)
    ok(api.post(f"/api/alarms/{alarm2['id']}/resolve", manager.token,
                json={"decision": "abandon", "note": "同意放弃", "verified": "real"}))
    out = ok(api.post(path + "/abandon", rep.token))
    assert out["status"] == "pool" and out["owner"] is None
    # the pool is public, and the record still blocks a duplicate
    pool = ok(api.get("/api/customers?status=pool&page_size=100", other_rep.token))
    assert c["id"] in {x["id"] for x in pool["items"]}
    check = ok(api.post("/api/customers/check", other_rep.token,
                        json={"company_name": c["company_name"]}))
    assert check["available"] is False
    [m] = check["matches"]
    assert m["customer_id"] == c["id"] and m["status"] == "pool" and m["owner"] is None
    dup = assert_error(api.post("/api/customers", other_rep.token,
                                json={"company_name": c["company_name"]}), 409,
                       "duplicate_customer")
    assert dup["matches"][0]["status"] == "pool"
    # and any rep can claim it
    got = ok(api.post(path + "/claim", other_rep.token))
    assert got["owner"] == {"id": other_rep.id, "name": other_rep.name}
    assert got["status"] == "active" and got["team_id"] == other_rep.team_id
    assert_error(api.post(path + "/claim", rep.token), 409, "not_in_pool")
    entries = list(db.audit.find({"customer_id": c["id"]}).sort("seq", 1))
    assert [e["action"] for e in entries] == [
        "create", "alarm_raised", "alarm_resolved", "alarm_raised", "alarm_resolved",
        "abandoned", "claimed"]


def test_alarm_resolution_is_validated(api, rep, manager):
    c = enter(api, rep)
    alarm = ok(api.post(f"/api/customers/{c['id']}/alarms", rep.token,
                        json={"reason": "客户要求账期180天"}), 201)
    path = f"/api/alarms/{alarm['id']}/resolve"
    body = assert_error(api.post(path, manager.token, json={
        "decision": "give_up", "note": "x", "verified": "maybe"}), 422)
    assert set(body["fields"]) == {"decision", "verified"}
    body = assert_error(api.post(path, manager.token, json={
        "decision": "reassign", "note": "换人", "verified": "real"}), 422)
    assert "new_owner_id" in body["fields"]
    assert_error(api.post(f"/api/customers/{c['id']}/alarms", rep.token,
                          json={"reason": "再报一次"}), 409, "alarm_open")
    ok(api.post(path, manager.token, json={"decision": "continue", "note": "接受60天",
                                           "verified": "unchecked"}))
    assert_error(api.post(path, manager.token, json={
        "decision": "continue", "note": "again", "verified": "real"}), 409, "alarm_not_open")


def test_integrity_report(api, make_user, team, manager, admin):
    zhou = make_user("rep", team["id"], "周杰")
    wu = make_user("rep", team["id"], "吴敏")
    enter(api, zhou)
    fake = enter(api, zhou)
    enter(api, wu)
    alarm = ok(api.post(f"/api/customers/{fake['id']}/alarms", zhou.token,
                        json={"reason": "联系不上"}), 201)
    ok(api.post(f"/api/alarms/{alarm['id']}/resolve", manager.token,
                json={"decision": "abandon", "note": "工商查无此公司", "verified": "fake"}))
    ok(api.post(f"/api/customers/{fake['id']}/abandon", zhou.token))
    rows = {r["rep"]["id"]: r for r in ok(api.get("/api/reports/integrity",
                                                  manager.token))["items"]}
    assert rows[zhou.id] == {"rep": {"id": zhou.id, "name": "周杰"}, "customers": 1,
                             "created": 2, "alarms": 1, "abandoned": 1, "verified_fake": 1}
    assert rows[wu.id]["customers"] == 1 and rows[wu.id]["verified_fake"] == 0
    everyone = ok(api.get("/api/reports/integrity", admin.token))
    assert zhou.id in {r["rep"]["id"] for r in everyone["items"]}


# -------------------------------------------------------------- disputes


def test_dispute_decided_by_decision_power(api, rep, rep2, manager):
    c = enter(api, rep)  # the owner's contact: 采购经理, level 3
    d = ok(api.post(f"/api/customers/{c['id']}/disputes", rep2.token, json={
        "contact": {"name": "吴国栋", "title": "董事长", "decision_level": 5},
        "note": "董事长亲自约我谈的"}), 201)
    assert d["status"] == "open" and d["claimant"]["id"] == rep2.id
    assert_error(api.post(f"/api/customers/{c['id']}/disputes", rep2.token, json={
        "contact": {"name": "吴国栋", "decision_level": 9}}), 422)
    body = assert_error(api.post(f"/api/disputes/{d['id']}/resolve", manager.token, json={
        "winner_id": rep.id, "note": "先到先得"}), 422)
    assert "claimant wins" in body["fields"]["winner_id"]
    out = ok(api.post(f"/api/disputes/{d['id']}/resolve", manager.token, json={
        "winner_id": rep2.id, "note": "董事长决策权更高"}))
    assert out["winner_id"] == rep2.id
    assert ok(api.get(f"/api/customers/{c['id']}", rep2.token))["owner"]["id"] == rep2.id
    assert_error(api.get(f"/api/customers/{c['id']}", rep.token), 404)
    assert_error(api.post(f"/api/disputes/{d['id']}/resolve", manager.token, json={
        "winner_id": rep2.id, "note": "again"}), 409, "dispute_not_open")


# ---------------------------------------------------------------- stages


def test_stages_default_change_and_422(api, rep, admin):
    assert ok(api.get("/api/stages", rep.token)) == DEFAULT_STAGES
    c = enter(api, rep)
    path = f"/api/customers/{c['id']}/stage"
    body = assert_error(api.post(path, rep.token, json={"stage": 30}), 422)
    assert "30 is not in the stage list" in body["fields"]["stage"]
    out = ok(api.post(path, rep.token, json={"stage": 50, "note": "样品测试通过"}))
    assert out["stage"] == 50
    try:
        custom = [{"stage": 0, "label": "线索"}, {"stage": 30, "label": "方案演示"},
                  {"stage": 50, "label": "认可样品"}, {"stage": 100, "label": "成交"}]
        got = ok(api.put("/api/stages", admin.token, json=custom))
        assert [s["stage"] for s in got] == [0, 30, 50, 100]
        assert ok(api.post(path, rep.token, json={"stage": 30}))["stage"] == 30
        assert_error(api.post(path, rep.token, json={"stage": 75}), 422)
        body = assert_error(api.put("/api/stages", admin.token, json=[
            {"stage": 10, "label": "甲"}, {"stage": 10, "label": "乙"}]), 422)
        assert "1.stage" in body["fields"]
        assert_error(api.put("/api/stages", admin.token, json={"stage": 10}), 422)
        assert_error(api.put("/api/stages", admin.token, json=[{"stage": 101, "label": "x"}]),
                     422)
    finally:
        assert ok(api.put("/api/stages", admin.token, json=DEFAULT_STAGES)) == DEFAULT_STAGES


# ------------------------------------------------------------- referrals


def test_referrals_over_http(api, rep, manager):
    root = enter(api, rep)
    kids = [enter(api, rep, referred_by=root["id"]) for _ in range(3)]
    grandkid = enter(api, rep, referred_by=kids[0]["id"])
    out = ok(api.get(f"/api/customers/{kids[0]['id']}/referrals", rep.token))
    assert [a["id"] for a in out["ancestors"]] == [root["id"]]
    assert out["ancestors"][0]["referred_count"] == 3
    assert out["tree"]["customer"]["referred_count"] == 1
    assert out["tree"]["children"][0]["customer"]["id"] == grandkid["id"]
    assert out["tree"]["children"][0]["customer"]["owner"] == {"id": rep.id, "name": rep.name}
    cut = ok(api.get(f"/api/customers/{root['id']}/referrals?limit=2", rep.token))
    assert cut["truncated"] and len(cut["tree"]["children"]) == 2
    assert_error(api.get(f"/api/customers/{root['id']}/referrals?depth=99", rep.token), 422)
    body = assert_error(api.patch(f"/api/customers/{root['id']}", manager.token, json={
        "changes": {"referred_by": grandkid["id"]}, "reason": "录错"}), 422)
    assert body["fields"] == {"changes.referred_by": "would make a referral cycle"}
    assert_error(api.post("/api/customers", rep.token, json={
        "company_name": company(), "referred_by": "000000000000000000000000"}), 422)


# ----------------------------------------------------------------- audit


def test_audit_chain_over_http(api, rep, manager, db):
    c = enter(api, rep)
    path = f"/api/customers/{c['id']}"
    ok(api.post(path + "/followups", rep.token, json={"content": "上门拜访，参观车间"}), 201)
    ok(api.post(path + "/stage", rep.token, json={"stage": 25}))
    a = ok(api.post(path + "/amendments", rep.token,
                    json={"changes": {"industry": "五金模具"}, "reason": "补充行业"}), 201)
    ok(api.post(f"/api/amendments/{a['id']}/approve", manager.token))
    ok(api.patch(path, manager.token, json={"changes": {"expected_value": 99000},
                                            "reason": "报价确认"}))
    trail = ok(api.get(path + "/audit?page_size=100", manager.token))
    assert trail["intact"] is True and trail["total"] == 6
    assert [i["action"] for i in trail["items"]] == [
        "create", "followup", "stage_changed", "amendment_requested", "amendment_approved",
        "patched"]
    item = trail["items"][5]
    assert item["actor"]["id"] == manager.id and item["at"].endswith("+00:00")
    assert item["before"] == {"expected_value_fen": 8000000}
    assert item["after"]["expected_value_fen"] == 9900000
    page2 = ok(api.get(path + "/audit?page=2&page_size=4", rep.token))
    assert [i["seq"] for i in page2["items"]] == [5, 6] and page2["intact"] is True
    # a direct edit of the stored trail is seen
    db.audit.update_one({"customer_id": c["id"], "seq": 2},
                        {"$set": {"after.content": "从未拜访"}})
    assert ok(api.get(path + "/audit", manager.token))["intact"] is False
