"""Journey 3: a customer's page, and journey 4: the public pool."""

import os

import pytest
from playwright.sync_api import expect
from pymongo import MongoClient

from tests.web.conftest import login, ok, shot
from tests.web.test_customers import company, phone


@pytest.fixture
def customer_of(api):
    def make(rep, **extra):
        body = {"company_name": company(city="杭州市", trade="智能科技有限公司"),
                "phones": [phone()], "expected_value": 260000, "stage": 10,
                "contacts": [{"name": "钱国栋", "title": "董事长", "decision_level": 5},
                             {"name": "孙倩", "title": "采购专员", "decision_level": 2}],
                **extra}
        return ok(api.post("/api/customers", rep.token, json=body), 201)
    return make


def test_details_contacts_follow_ups_stage_and_no_edit_button(page, fresh_rep, customer_of):
    rep = fresh_rep("冯涛")
    c = customer_of(rep)
    login(page, rep)
    page.get_by_role("link", name=c["company_name"]).click()
    expect(page.get_by_role("heading", name=c["company_name"], exact=True)).to_be_visible()
    contacts = page.get_by_role("tabpanel", name="概况").get_by_role("table").last
    expect(contacts).to_contain_text("钱国栋")
    expect(contacts).to_contain_text("5 · 最终拍板")
    expect(contacts).to_contain_text("2 · 影响者")
    # records are immutable for a rep: nothing offers to edit or delete them
    for name in ("编辑", "修改", "删除"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    shot(page, "03-customer-page", docs="customer-page")

    page.get_by_role("button", name="添加跟进").click()
    page.get_by_label("跟进内容").fill("电话联系钱总，约定下周三到工厂参观，重点介绍新一代控制器。")
    page.get_by_role("button", name="保存").click()
    timeline = page.get_by_role("tabpanel", name="跟进记录")
    expect(timeline).to_contain_text("约定下周三到工厂参观")
    expect(timeline).to_contain_text("冯涛 记录")
    shot(page, "03-follow-up")

    page.get_by_role("button", name="变更阶段").click()
    page.get_by_role("dialog").get_by_text("认可样品 (50%)").click()
    page.get_by_label("说明").fill("样品测试通过")
    page.get_by_role("button", name="确认变更").click()
    expect(page.get_by_text("阶段已变更为 认可样品 (50%)")).to_be_visible()
    expect(page.locator(".head").get_by_text("认可样品 (50%)")).to_be_visible()

    page.get_by_role("tab", name="操作日志").click()
    audit = page.get_by_role("tabpanel", name="操作日志")
    expect(audit.get_by_text("记录完整")).to_be_visible()
    expect(audit).to_contain_text("录入客户")
    expect(audit).to_contain_text("添加跟进")
    expect(audit).to_contain_text("阶段：意向客户 (10%) → 认可样品 (50%)")
    shot(page, "03-audit-intact")


def test_amendment_alarm_and_revisit(page, fresh_rep, customer_of, api):
    rep = fresh_rep("蒋文")
    c = customer_of(rep)
    login(page, rep)
    page.goto(f"/customers/{c['id']}")
    page.get_by_role("button", name="申请修改").click()
    dialog = page.get_by_role("dialog", name="申请修改客户资料")
    dialog.get_by_label("行业").fill("工业自动化")
    dialog.get_by_label("修改原因").fill("拜访后确认主营业务")
    dialog.get_by_role("button", name="提交申请").click()
    expect(page.get_by_text("修改申请已提交，等待经理审批")).to_be_visible()
    pending = ok(api.get("/api/amendments?status=pending", rep.token))["items"]
    assert [(a["customer_id"], a["changes"]) for a in pending] == [(c["id"], {"industry": "工业自动化"})]
    # the record itself is unchanged until a manager approves
    expect(page.get_by_role("tabpanel", name="概况")).not_to_contain_text("工业自动化")

    page.get_by_role("button", name="困难报警").click()
    page.get_by_label("遇到的困难").fill("客户老板长期出差，采购一直拖着不签字")
    page.get_by_role("button", name="提交报警").click()
    expect(page.get_by_text("该客户有一条待经理处理的困难报警")).to_be_visible()
    alarms = ok(api.get(f"/api/alarms?customer_id={c['id']}", rep.token))["items"]
    assert [a["status"] for a in alarms] == ["open"]

    page.get_by_role("button", name="安排回访").click()
    dialog = page.get_by_role("dialog", name="安排回访")
    dialog.get_by_label("回访时间").fill("2030-03-18 10:30")
    dialog.get_by_label("回访时间").press("Enter")
    dialog.get_by_label("备注").fill("带上新报价单")
    dialog.get_by_role("button", name="确认安排").click()
    expect(page.get_by_text("回访已安排，到时会提醒您")).to_be_visible()
    revisits = ok(api.get("/api/reminders?kind=revisit", rep.token))["items"]
    assert [(r["customer_id"], r["contact_name"], r["due_at"][:16]) for r in revisits] == [
        (c["id"], "钱国栋", "2030-03-18T02:30")]  # 10:30 in Shanghai


def test_a_tampered_trail_is_shown_as_tampered(page, fresh_rep, customer_of, api, stack):
    rep = fresh_rep()
    c = customer_of(rep)
    ok(api.post(f"/api/customers/{c['id']}/followups", rep.token, json={"content": "首次拜访"}), 201)
    client = MongoClient(os.environ.get("CRM_MONGO_URI", "mongodb://127.0.0.1:27017/"))
    try:
        client[stack.prefix + "customers"].audit.update_one(
            {"customer_id": c["id"], "seq": 2}, {"$set": {"after.content": "从未拜访"}})
    finally:
        client.close()
    login(page, rep)
    page.goto(f"/customers/{c['id']}")
    page.get_by_role("tab", name="操作日志").click()
    expect(page.get_by_text("记录被篡改")).to_be_visible()
    expect(page.get_by_text("记录完整")).to_have_count(0)


def test_the_referral_tree_opens_the_customer_clicked(page, fresh_rep, customer_of):
    rep = fresh_rep("曹颖")
    root = customer_of(rep)
    child = customer_of(rep, referred_by=root["id"])
    grandchild = customer_of(rep, referred_by=child["id"])
    login(page, rep)
    page.goto(f"/customers/{child['id']}")
    page.get_by_role("tab", name="推荐关系").click()
    chart = page.locator(".referral-chart")
    for c in (root, child, grandchild):
        expect(chart.locator("text", has_text=c["company_name"])).to_be_visible()
    shot(page, "03-referral-tree")
    chart.locator("text", has_text=grandchild["company_name"]).click()
    expect(page.get_by_role("heading", name=grandchild["company_name"], exact=True)).to_be_visible()
    expect(page).to_have_url(f"/customers/{grandchild['id']}")
    # the overview names the referrer as a link
    page.get_by_role("link", name=child["company_name"]).click()
    expect(page.get_by_role("heading", name=child["company_name"], exact=True)).to_be_visible()


def test_a_pool_customer_is_claimed_by_another_rep(new_page, fresh_rep, customer_of, api, manager):
    leaver, taker = fresh_rep("邓超"), fresh_rep("许晴")
    c = customer_of(leaver)
    alarm = ok(api.post(f"/api/customers/{c['id']}/alarms", leaver.token,
                        json={"reason": "客户已转向竞争对手"}), 201)
    ok(api.post(f"/api/alarms/{alarm['id']}/resolve", manager.token,
                json={"decision": "abandon", "note": "核实属实", "verified": "real"}))
    # the owner gives it up on its page
    page = login(new_page(), leaver)
    page.goto(f"/customers/{c['id']}")
    page.get_by_role("button", name="放弃客户").click()
    page.get_by_role("button", name="确定").click()
    expect(page.get_by_text("客户已放入公海")).to_be_visible()

    page = login(new_page(), taker)
    # before he claims it: why it was given up, and no phones or follow-ups
    page.goto(f"/customers/{c['id']}")
    expect(page.get_by_text("客户已转向竞争对手")).to_be_visible()
    expect(page.get_by_text("公海客户的电话和邮箱认领后可见")).to_be_visible()
    expect(page.get_by_text(c["phones"][0][3:])).to_have_count(0)
    page.get_by_role("tab", name="跟进记录").click()
    expect(page.get_by_text("认领后可见跟进记录")).to_be_visible()
    page.get_by_role("link", name="公海", exact=True).click()
    row = page.get_by_role("row").filter(has_text=c["company_name"])
    expect(row).to_be_visible()
    shot(page, "04-pool")
    row.get_by_role("button", name="认领").click()
    expect(page.get_by_role("heading", name=c["company_name"], exact=True)).to_be_visible()
    expect(page.get_by_text("负责人：许晴")).to_be_visible()
    expect(page.get_by_role("button", name="添加跟进")).to_be_visible()
    assert ok(api.get(f"/api/customers/{c['id']}", taker.token))["owner"]["id"] == taker.id


def test_abandoning_without_an_alarm_is_refused_with_the_reason(page, fresh_rep, customer_of):
    rep = fresh_rep()
    c = customer_of(rep)
    login(page, rep)
    page.goto(f"/customers/{c['id']}")
    page.get_by_role("button", name="放弃客户").click()
    page.get_by_role("button", name="确定").click()
    expect(page.get_by_text("放弃客户前需要先困难报警，并由经理同意放弃")).to_be_visible()


def test_markup_in_a_company_name_is_shown_as_text_everywhere(page, fresh_rep, customer_of):
    rep = fresh_rep()
    tag = rep.id[-6:]
    root = customer_of(rep, company_name=f"<img src=x onerror=\"window.__xss='{tag}'\">贸易{tag}有限公司")
    child = customer_of(rep, referred_by=root["id"])
    login(page, rep)
    expect(page.get_by_role("link", name=root["company_name"])).to_be_visible()
    page.goto(f"/customers/{child['id']}")
    page.get_by_role("tab", name="推荐关系").click()
    node = page.locator(".referral-chart text", has_text="贸易")
    expect(node).to_be_visible()
    node.hover()
    # ECharts draws its tooltip as HTML: the name must arrive as text
    tooltip = page.locator(".referral-chart div[style*='z-index: 9999999']")
    expect(tooltip).to_contain_text(root["company_name"])
    expect(tooltip.locator("img")).to_have_count(0)
    page.goto(f"/customers/{root['id']}")
    expect(page.get_by_role("heading", name=root["company_name"], exact=True)).to_be_visible()
    assert page.evaluate("window.__xss") is None
