"""Reads are records too, over HTTP on the real stack (issue 15): masked
lists, the logged detail, the bulk-read guard and its one notification,
concurrent opens at the limit, the read settings, the pool's hiding, the
export and the reads report.

The guard counts per clock hour: a test that needs its opens in one hour
first waits out an hour that is about to end (`one_hour_ahead`)."""

import csv
import io
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
import requests
from openpyxl import load_workbook

from tests.e2e.test_platform import assert_error
from tests.waiting import wait_for

_BRAND = "鑫源泰丰华盛隆达恒通宏远嘉禾瑞祥永安金鼎银河星辰天宇博雅康泽德信和润"
_rng = random.SystemRandom()
DEFAULTS = {"rep_hourly_limit": 60, "manager_hourly_limit": 300}
SHANGHAI = ZoneInfo("Asia/Shanghai")


def ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


def mobile() -> str:
    return f"13{_rng.randrange(10**9):09d}"


def company() -> str:
    return f"苏州市{''.join(_rng.sample(_BRAND, 5))}精密电子有限公司"


def enter(api, person, **extra) -> dict:
    body = {"company_name": company(), "phones": [mobile()],
            "emails": [f"zhang{_rng.randrange(10**6)}@qq.com"],
            "contacts": [{"name": "陈志强", "title": "采购总监", "phone": mobile(),
                          "decision_level": 4}], **extra}
    return ok(api.post("/api/customers", person.token, json=body), 201)


def masked(phone_e164: str) -> str:
    national = phone_e164[3:]
    return national[:3] + "****" + national[-4:]


def one_hour_ahead(seconds: float) -> None:
    """Wait for the next clock hour when this one ends within `seconds`:
    the opens a test counts must fall in one hour."""
    now = datetime.now(UTC)
    left = (now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1) - now)
    if left.total_seconds() < seconds:
        time.sleep(left.total_seconds() + 1)


@pytest.fixture
def crew(api, admin, make_user):
    """A team of its own: a manager and two reps (the guard counts per user,
    the managers' inbox is this test's alone)."""
    team = ok(api.post("/api/teams", admin.token, json={"name": f"华东销售{uuid.uuid4().hex[:4]}部"}),
              201)
    boss = make_user("manager", team["id"], "钱经理")
    return {"team": team, "manager": boss, "rep": make_user("rep", team["id"], "周强"),
            "rep2": make_user("rep", team["id"], "吴敏")}


@pytest.fixture
def limits(api, admin):
    """Set the company's read limits for a test; the defaults come back after."""
    def put(**values):
        return ok(api.put("/api/settings/reads", admin.token, json={**DEFAULTS, **values}))

    yield put
    ok(api.put("/api/settings/reads", admin.token, json=DEFAULTS))


def read_limit_notes(api, person):
    items = ok(api.get("/api/notifications?page_size=100", person.token))["items"]
    return [n for n in items if n["kind"] == "read_limit"]


# ------------------------------------------------------------ masked lists, the log

def test_a_rep_paging_his_list_sees_masked_phones_the_detail_whole_and_the_log_has_it(
        api, crew, db):
    rep, boss = crew["rep"], crew["manager"]
    made = [enter(api, rep) for _ in range(3)]
    seen, after, pages = {}, None, 0
    while True:
        page = ok(api.get("/api/customers?page_size=2" + (f"&after={after}" if after else ""),
                          rep.token))
        pages += 1
        for item in page["items"]:
            seen[item["id"]] = item
        after = page["next"]
        if after is None:
            break
    assert set(seen) == {c["id"] for c in made} and pages == 2
    for c in made:
        item = seen[c["id"]]
        assert item["phones"] == [masked(c["phones"][0])] and item["masked"] is True
        local = c["emails"][0].split("@")[0]
        assert item["emails"] == [f"{local[:2]}***@qq.com"]
        assert item["contacts"][0]["phone"] == masked(c["contacts"][0]["phone"])
        assert c["phones"][0][3:] not in str(item)
    detail = ok(api.get(f"/api/customers/{made[0]['id']}", rep.token))
    assert detail["phones"] == made[0]["phones"] and detail["emails"] == made[0]["emails"]
    assert detail["contacts"][0]["phone"] == made[0]["contacts"][0]["phone"]
    assert not detail["masked"]
    # the read log: both list pages and the detail, with his address
    report = ok(api.get(f"/api/reports/reads?user_id={rep.id}", boss.token))
    kinds = [(e["kind"], sorted(e["customer_ids"])) for e in report["items"]]
    assert kinds[0] == ("detail", [made[0]["id"]])
    assert sorted(i for k, ids in kinds if k == "list" for i in ids) == sorted(seen)
    newest = report["items"][0]
    assert newest["user"] == {"id": rep.id, "name": "周强"} and newest["address"] == "127.0.0.1"
    assert report["total"] == 3
    stored = db.reads.find_one({"_id": newest["id"]})
    assert stored["team_id"] == crew["team"]["id"] and stored["kind"] == "detail"


# ------------------------------------------------------------ the bulk-read guard

def test_opening_61_customers_in_an_hour_is_refused_and_his_manager_is_told_once(api, crew):
    rep, boss = crew["rep"], crew["manager"]
    made = [enter(api, rep, contacts=[])["id"] for _ in range(62)]
    one_hour_ahead(180)
    for cid in made[:60]:
        ok(api.get(f"/api/customers/{cid}", rep.token))
    r = api.get(f"/api/customers/{made[60]}", rep.token)
    body = assert_error(r, 429, "read_limit")
    assert body["limit"] == 60 and 0 < body["retry_after_seconds"] <= 3600
    assert r.headers["Retry-After"] == str(body["retry_after_seconds"])
    # what he opened this hour still opens; no other does
    assert ok(api.get(f"/api/customers/{made[0]}", rep.token))["id"] == made[0]
    assert_error(api.get(f"/api/customers/{made[61]}", rep.token), 429, "read_limit")
    # his list still answers (masked): the guard counts records opened
    ok(api.get("/api/customers?page_size=5", rep.token))
    [note] = wait_for(lambda: read_limit_notes(api, boss), what="the manager's notification")
    assert "周强" in note["title"] and "60" in note["body"]
    assert note["ref"]["user_id"] == rep.id
    time.sleep(1.5)  # a second refusal, handled meanwhile, would have shown by now
    assert len(read_limit_notes(api, boss)) == 1
    assert read_limit_notes(api, rep) == []
    # another rep of the team is not affected
    other = enter(api, crew["rep2"])
    ok(api.get(f"/api/customers/{other['id']}", crew["rep2"].token))
    # and the report carries the alert
    alerts = ok(api.get(f"/api/reports/reads?user_id={rep.id}", boss.token))["alerts"]
    assert [(a["user"]["id"], a["limit"], a["opened"]) for a in alerts] == [(rep.id, 60, 60)]
    # and the refused opens, as attempts: nothing was shown
    items = ok(api.get(f"/api/reports/reads?user_id={rep.id}&page_size=100", boss.token))["items"]
    assert sorted((e["customer_ids"][0], e["refused"]) for e in items if e["refused"]) == sorted(
        [(made[60], "read_limit"), (made[61], "read_limit")])


def test_concurrent_opens_at_the_limit_let_exactly_one_through(api, stack, crew, limits):
    rep = crew["rep"]
    made = [enter(api, rep, contacts=[])["id"] for _ in range(16)]
    limits(rep_hourly_limit=5)
    one_hour_ahead(120)
    for cid in made[:4]:
        ok(api.get(f"/api/customers/{cid}", rep.token))
    start = threading.Barrier(10)

    def open_one(cid):
        s = requests.Session()
        start.wait(timeout=30)
        return s.get(f"{stack.url}/api/customers/{cid}", timeout=60,
                     headers={"Authorization": f"Bearer {rep.token}"})

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(open_one, made[4:14]))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] + [429] * 9, codes
    # the limit, raised, applies to the next open: no restart, no wait
    limits(rep_hourly_limit=6)
    assert ok(api.get(f"/api/customers/{made[14]}", rep.token))["id"] == made[14]
    assert_error(api.get(f"/api/customers/{made[15]}", rep.token), 429, "read_limit")


def test_the_read_limits_are_an_admin_s_to_set_and_a_manager_s_to_read(api, crew, admin,
                                                                      limits):
    assert ok(api.get("/api/settings/reads", crew["manager"].token)) == DEFAULTS
    assert_error(api.get("/api/settings/reads", crew["rep"].token), 403)
    assert_error(api.put("/api/settings/reads", crew["manager"].token, json=DEFAULTS), 403)
    body = assert_error(api.put("/api/settings/reads", admin.token,
                                json={"rep_hourly_limit": 0, "manager_hourly_limit": 300}), 422)
    assert "rep_hourly_limit" in body["fields"]
    assert limits(rep_hourly_limit=80, manager_hourly_limit=500) == {
        "rep_hourly_limit": 80, "manager_hourly_limit": 500}
    assert ok(api.get("/api/settings/reads", admin.token))["rep_hourly_limit"] == 80


# ------------------------------------------------------------ the public pool

def test_a_pool_customer_hides_phones_and_follow_ups_from_a_rep_until_he_claims_it(
        api, crew, other_rep, admin):
    owner, boss = crew["rep"], crew["manager"]
    c = enter(api, owner, industry="精密电子", address="苏州工业园区星湖街")
    path = f"/api/customers/{c['id']}"
    ok(api.post(path + "/stage", owner.token, json={"stage": 25, "note": "同意试样"}))
    ok(api.post(path + "/followups", owner.token, json={"content": "陈总说预算明年才批"}), 201)
    alarm = ok(api.post(path + "/alarms", owner.token,
                        json={"reason": "客户预算冻结，一年内不采购"}), 201)
    ok(api.post(f"/api/alarms/{alarm['id']}/resolve", boss.token,
                json={"decision": "abandon", "note": "已电话核实，放公海", "verified": "real"}))
    ok(api.post(path + "/abandon", owner.token))

    seen = ok(api.get(path, other_rep.token))
    assert seen["status"] == "pool" and seen["masked"] is True
    assert seen["company_name"] == c["company_name"] and seen["industry"] == "精密电子"
    assert seen["address"] == "苏州工业园区星湖街"
    assert seen["phones"] == [masked(c["phones"][0])]
    assert seen["contacts"][0]["phone"] == masked(c["contacts"][0]["phone"])
    assert c["phones"][0] not in str(seen) and c["emails"][0] not in str(seen)
    assert [(s["from"], s["to"]) for s in seen["stage_history"]] == [(None, 0), (0, 25)]
    assert seen["abandoned"]["reason"] == "客户预算冻结，一年内不采购"
    assert seen["abandoned"]["note"] == "已电话核实，放公海"
    assert_error(api.get(path + "/followups", other_rep.token), 403, "claim_first")
    for person in (boss, admin):  # managers and admins see all
        full = ok(api.get(path, person.token))
        assert full["phones"] == c["phones"] and not full["masked"]
        assert ok(api.get(path + "/followups", person.token))["total"] == 1

    ok(api.post(path + "/claim", other_rep.token))
    mine = ok(api.get(path, other_rep.token))
    assert mine["phones"] == c["phones"] and mine["emails"] == c["emails"]
    assert mine["contacts"][0]["phone"] == c["contacts"][0]["phone"]
    items = ok(api.get(path + "/followups", other_rep.token))["items"]
    assert [f["content"] for f in items] == ["陈总说预算明年才批"]


# ------------------------------------------------------------ the export

def _csv(r):
    text = r.content.decode("utf-8")
    assert text.startswith("\ufeff")
    lines = text[1:].splitlines()
    rows = list(csv.reader(io.StringIO("\n".join(lines[1:]))))
    return lines[0], rows[0], rows[1:]


def test_an_export_is_a_manager_s_team_or_an_admin_s_all_and_a_rep_s_never(
        api, crew, other_rep, admin, db):
    rep, boss = crew["rep"], crew["manager"]
    ours = {enter(api, p)["id"] for p in (rep, rep, crew["rep2"])}
    theirs = enter(api, other_rep)["id"]
    assert_error(api.get("/api/customers/export?format=csv", rep.token), 403)
    assert_error(api.get("/api/customers/export?format=pdf", boss.token), 422)
    before = datetime.now(UTC)

    r = api.get("/api/customers/export?format=csv", boss.token)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/csv")
    disposition = r.headers["Content-Disposition"]
    assert unquote(disposition.split("filename*=UTF-8''")[1]).startswith("客户导出-")
    banner, header, rows = _csv(r)
    assert banner.startswith(f"# 导出人：钱经理（{boss.username}） 导出时间：")
    assert banner.endswith("（Asia/Shanghai）")
    stamp = banner.split("导出时间：")[1][:16]
    local = before.astimezone(SHANGHAI)
    assert abs(datetime.strptime(stamp, "%Y-%m-%d %H:%M") - local.replace(tzinfo=None,
               second=0, microsecond=0)) <= timedelta(minutes=2)
    assert header[:4] == ["客户编号", "公司名称", "统一社会信用代码", "电话"]
    assert {row[0] for row in rows} == ours and theirs not in r.text
    assert all(row[3].replace(" ", "").isdigit() for row in rows)  # phones whole

    r = api.get("/api/customers/export?format=xlsx", boss.token)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(r.content))
    sheet = book.active
    first = sheet.cell(1, 1).value
    assert first.startswith(f"# 导出人：钱经理（{boss.username}） 导出时间：")
    assert first.endswith("（Asia/Shanghai）")
    assert sheet.cell(2, 2).value == "公司名称"
    assert {row[0] for row in sheet.iter_rows(min_row=3, values_only=True)} == ours
    assert book.properties.creator == f"钱经理（{boss.username}）"
    assert book.properties.title == "客户导出"
    assert abs(book.properties.created.replace(tzinfo=UTC) - before) <= timedelta(minutes=2)

    everything = api.get("/api/customers/export?format=csv", admin.token)
    assert everything.status_code == 200
    assert ours | {theirs} <= {row[0] for row in _csv(everything)[2]}

    # each page read is in the read log, each export in the company's audit chain
    report = ok(api.get(f"/api/reports/reads?user_id={boss.id}", boss.token))
    exported = [e for e in report["items"] if e["kind"] == "export"]
    assert len(exported) == 2 and all(set(e["customer_ids"]) == ours for e in exported)
    audited = list(db.audit.find({"customer_id": "company", "action": "export",
                                  "actor.id": boss.id}).sort("seq", 1))
    assert [(a["after"]["format"], a["after"]["count"]) for a in audited] == [
        ("csv", 3), ("xlsx", 3)]
    assert audited[0]["after"]["team_id"] == crew["team"]["id"]


# ------------------------------------------------------------ the reads report

def test_the_reads_report_is_for_his_manager_and_admins_only(api, crew, other_manager, admin):
    rep, boss = crew["rep"], crew["manager"]
    c = enter(api, rep)
    ok(api.get(f"/api/customers/{c['id']}", rep.token))
    url = f"/api/reports/reads?user_id={rep.id}"
    assert ok(api.get(url, boss.token))["items"][0]["customer_ids"] == [c["id"]]
    assert ok(api.get(url, admin.token))["items"][0]["customer_ids"] == [c["id"]]
    assert_error(api.get(url, other_manager.token), 403, "not_your_team")
    assert all(e["user"]["id"] != rep.id for e in ok(api.get(
        "/api/reports/reads?page_size=100", other_manager.token))["items"])
    assert_error(api.get(url, rep.token), 403)
    assert_error(api.get("/api/reports/reads", None), 401)
    # a window: nothing before it, everything in it
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert ok(api.get(url, boss.token, params={"from": later}))["total"] == 0
    today = datetime.now(SHANGHAI)
    day = ok(api.get(url, boss.token, params={"from": today.date().isoformat(),
                                               "to": today.date().isoformat()}))
    assert day["total"] >= 1
    assert_error(api.get(url + "&from=yesterday", boss.token), 422)
