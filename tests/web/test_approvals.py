"""The manager's desk, approvals (审批): amendments, difficulty alarms and
ownership disputes decided in the browser, against the real stack. Each test
has a team of its own, so other tests' pending items do not show."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.web.conftest import choose, login, ok, shot
from tests.web.test_customers import company, phone


@pytest.fixture
def desk(api, admin, make_user):
    """A fresh team: its manager and two reps."""
    def make(manager="韩经理", reps=("杜明", "程琳")):
        team = ok(api.post("/api/teams", admin.token,
                           json={"name": f"华东销售{uuid.uuid4().hex[:4]}部"}), 201)
        boss = make_user("manager", team["id"], manager, phone="13900002222")
        return boss, [make_user("rep", team["id"], name, phone="13912340000") for name in reps]
    return make


def enter(api, rep, **extra):
    body = {"company_name": company(city="苏州市", trade="电子科技有限公司"), "phones": [phone()],
            "address": "苏州工业园区星湖街328号", "expected_value": 180000,
            "contacts": [{"name": "林建华", "title": "采购经理", "decision_level": 3}], **extra}
    return ok(api.post("/api/customers", rep.token, json=body), 201)


def test_manager_approves_an_amendment_from_its_diff_and_rejects_another(page, api, desk):
    boss, (rep, _) = desk()
    c = enter(api, rep)
    ok(api.post(f"/api/customers/{c['id']}/amendments", rep.token, json={
        "changes": {"address": "苏州市吴中区东吴北路88号", "expected_value": 250000},
        "reason": "客户搬迁到吴中区新厂房，预算上调"}), 201)
    other = enter(api, rep)
    ok(api.post(f"/api/customers/{other['id']}/amendments", rep.token, json={
        "changes": {"industry": "医疗器械"}, "reason": "行业录错了"}), 201)

    login(page, boss)
    page.get_by_role("link", name="审批").click()
    expect(page.get_by_role("tab", name="修改申请", exact=True)).to_be_visible()
    item = page.get_by_role("article", name=c["company_name"])
    # the value now beside the value asked for, and why
    expect(item).to_contain_text("苏州工业园区星湖街328号")
    expect(item).to_contain_text("苏州市吴中区东吴北路88号")
    expect(item).to_contain_text("¥180,000")
    expect(item).to_contain_text("¥250,000")
    expect(item).to_contain_text("客户搬迁到吴中区新厂房")
    expect(item).to_contain_text("杜明")
    shot(page, "18-approvals-amendment")
    item.get_by_role("button", name="批准").click()
    expect(page.get_by_text(f"已批准 {c['company_name']} 的修改")).to_be_visible()
    expect(item).to_have_count(0)

    # a new request appears without a reload
    third = enter(api, rep)
    ok(api.post(f"/api/customers/{third['id']}/amendments", rep.token, json={
        "changes": {"industry": "汽车零部件"}, "reason": "行业补充"}), 201)
    expect(page.get_by_role("article", name=third["company_name"])).to_be_visible(timeout=15_000)
    page.get_by_role("article", name=third["company_name"]).get_by_role("button", name="批准").click()
    expect(page.get_by_role("article", name=third["company_name"])).to_have_count(0)

    rejected = page.get_by_role("article", name=other["company_name"])
    rejected.get_by_role("button", name="驳回").click()
    page.get_by_label("驳回原因（会告知业务员）").fill("行业没有录错，维持原值")
    page.get_by_role("button", name="确定").click()
    expect(rejected).to_have_count(0)
    expect(page.get_by_text("没有待审批的修改申请")).to_be_visible()

    # applied and audited
    got = ok(api.get(f"/api/customers/{c['id']}", rep.token))
    assert got["address"] == "苏州市吴中区东吴北路88号" and got["expected_value"] == 250000
    page.goto(f"/customers/{c['id']}")
    page.get_by_role("tab", name="操作日志").click()
    audit = page.get_by_role("tabpanel", name="操作日志")
    expect(audit).to_contain_text("批准修改")
    expect(audit.get_by_text("记录完整")).to_be_visible()
    amendments = ok(api.get("/api/amendments", rep.token, params={"customer_id": other["id"]}))
    assert amendments["items"][0]["status"] == "rejected"
    assert amendments["items"][0]["note"] == "行业没有录错，维持原值"


def test_alarm_resolved_as_fake_counts_in_the_integrity_report_and_arrives_live(page, api, desk):
    boss, (rep, _) = desk()
    c = enter(api, rep)
    ok(api.post(f"/api/customers/{c['id']}/followups", rep.token,
                json={"content": "林经理说预算冻结，下季度再谈"}), 201)
    ok(api.post(f"/api/customers/{c['id']}/alarms", rep.token,
                json={"reason": "客户预算冻结，多次联系无回应"}), 201)

    login(page, boss)
    page.goto("/approvals?tab=alarms")
    item = page.get_by_role("article", name=c["company_name"])
    expect(item).to_contain_text("客户预算冻结，多次联系无回应")
    # a new alarm appears without a reload
    later = enter(api, rep)
    ok(api.post(f"/api/customers/{later['id']}/alarms", rep.token,
                json={"reason": "对方采购换人，新采购不认可"}), 201)
    expect(page.get_by_role("article", name=later["company_name"])).to_be_visible(timeout=15_000)

    item.get_by_role("button", name="处理").click()
    dialog = page.get_by_role("dialog", name=re.compile("处理困难报警"))
    expect(dialog).to_contain_text("林经理说预算冻结")  # the history at hand
    dialog.get_by_role("button", name="确定").click()
    expect(dialog.get_by_text("请选择").first).to_be_visible()  # nothing chosen: said beside
    dialog.get_by_text("放弃", exact=True).click()
    dialog.get_by_text("虚假", exact=True).click()
    dialog.get_by_label("说明：").fill("电话核实，该公司并无此采购需求")
    shot(page, "18-approvals-alarm")
    dialog.get_by_role("button", name="确定").click()
    expect(page.get_by_text(f"{c['company_name']} 的报警已处理")).to_be_visible()
    expect(item).to_have_count(0)

    report = ok(api.get("/api/reports/integrity", boss.token))
    row = next(r for r in report["items"] if r["rep"]["id"] == rep.id)
    assert row["verified_fake"] == 1 and row["alarms"] == 2


def test_alarm_reassigned_to_another_rep_of_the_team(page, api, desk):
    boss, (rep, other) = desk()
    c = enter(api, rep)
    ok(api.post(f"/api/customers/{c['id']}/alarms", rep.token, json={"reason": "离职交接前报警"}), 201)
    login(page, boss)
    page.goto("/approvals?tab=alarms")
    page.get_by_role("article", name=c["company_name"]).get_by_role("button", name="处理").click()
    dialog = page.get_by_role("dialog", name=re.compile("处理困难报警"))
    dialog.get_by_text("转给他人", exact=True).click()
    choose(page, "接手业务员", "程琳")
    dialog.get_by_text("真实", exact=True).click()
    dialog.get_by_label("说明：").fill("客户真实，转给程琳继续跟进")
    dialog.get_by_role("button", name="确定").click()
    expect(page.get_by_text(f"{c['company_name']} 的报警已处理")).to_be_visible()
    assert ok(api.get(f"/api/customers/{c['id']}", other.token))["owner"]["id"] == other.id


def test_dispute_shows_both_contacts_and_follows_decision_power(page, api, desk):
    boss, (owner, claimant) = desk(reps=("邵峰", "江雪"))
    c = enter(api, owner)
    ok(api.post(f"/api/customers/{c['id']}/disputes", claimant.token, json={
        "contact": {"name": "吴国栋", "title": "董事长", "decision_level": 5},
        "note": "董事长亲自约我谈的"}), 201)

    login(page, boss)
    page.get_by_role("link", name="审批").click()
    page.get_by_role("tab", name="归属申诉").click()
    item = page.get_by_role("article", name=c["company_name"])
    expect(item).to_contain_text("江雪")
    item.get_by_role("button", name="处理").click()
    dialog = page.get_by_role("dialog", name=re.compile("处理归属申诉"))
    expect(dialog.get_by_role("region", name="申诉方")).to_contain_text("吴国栋 · 董事长 · 5 · 最终拍板")
    expect(dialog.get_by_role("region", name="负责方")).to_contain_text("林建华 · 采购经理")
    expect(dialog.get_by_role("region", name="负责方")).to_contain_text("3 · 推荐者")
    shot(page, "18-approvals-dispute")
    # the owner cannot win against more decision power: the server's reason shows
    dialog.get_by_text("邵峰", exact=True).click()
    dialog.get_by_label("说明：").fill("先到先得")
    dialog.get_by_role("button", name="确定").click()
    expect(dialog.get_by_text("决策权更高的一方胜出：应归申诉方")).to_be_visible()
    dialog.get_by_text("江雪", exact=True).click()
    dialog.get_by_role("button", name="确定").click()
    expect(page.get_by_text(f"{c['company_name']} 的申诉已处理")).to_be_visible()
    assert ok(api.get(f"/api/customers/{c['id']}", claimant.token))["owner"]["id"] == claimant.id


def test_a_rep_typing_the_approvals_address_is_told_he_may_not(page, fresh_rep):
    rep = fresh_rep("葛亮")
    login(page, rep)
    expect(page.get_by_role("link", name="审批")).to_have_count(0)
    page.goto("/approvals")
    expect(page.get_by_text("您没有权限打开这个页面")).to_be_visible()
    page.get_by_role("link", name="返回客户列表").click()
    expect(page.get_by_role("columnheader", name="公司名称")).to_be_visible()


def test_manager_corrects_a_record_himself_and_reads_its_dispute_history(page, api, desk):
    boss, (owner, claimant) = desk(reps=("严华", "车颖"))
    c = enter(api, owner)
    d = ok(api.post(f"/api/customers/{c['id']}/disputes", claimant.token, json={
        "contact": {"name": "钟总", "title": "总经理", "decision_level": 5}}), 201)
    ok(api.post(f"/api/disputes/{d['id']}/resolve", boss.token, json={
        "winner_id": claimant.id, "note": "总经理拍板，归车颖"}))

    login(page, boss)
    page.goto(f"/customers/{c['id']}")
    page.get_by_role("button", name="修改客户资料").click()
    dialog = page.get_by_role("dialog", name="修改客户资料")
    dialog.get_by_label("地址").fill("苏州市相城区阳澄湖大道1号")
    dialog.get_by_label("修改原因").fill("客户来电告知新地址")
    dialog.get_by_role("button", name="确认修改").click()
    expect(page.get_by_text("客户资料已修改")).to_be_visible()
    expect(page.get_by_role("tabpanel", name="概况")).to_contain_text("苏州市相城区阳澄湖大道1号")
    page.get_by_role("tab", name="操作日志").click()
    audit = page.get_by_role("tabpanel", name="操作日志")
    expect(audit).to_contain_text("经理修改")
    expect(audit).to_contain_text("苏州市相城区阳澄湖大道1号")
    page.get_by_role("tab", name="归属申诉").click()
    history = page.get_by_role("tabpanel", name="归属申诉")
    expect(history).to_contain_text("车颖")
    expect(history).to_contain_text("钟总 · 总经理 · 5 · 最终拍板")
    expect(history).to_contain_text("判给申诉人（韩经理 处理）")
    expect(history).to_contain_text("总经理拍板，归车颖")
