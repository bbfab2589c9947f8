"""The manager's team page (团队) and the admin's settings (设置): the
integrity report with a rep's customers, new users and teams, and the
stage editor moving the forecast."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.test_integrity import DEFAULT_STAGES
from tests.web.conftest import login, ok, shot
from tests.web.test_customers import company, phone
from tests.web.test_forecast_room import _settled


@pytest.fixture
def own_team(api, admin, make_user):
    team = ok(api.post("/api/teams", admin.token, json={"name": f"华中销售{uuid.uuid4().hex[:4]}部"}), 201)
    return team, make_user("manager", team["id"], "邱经理")


def test_manager_reads_the_integrity_report_opens_a_rep_and_adds_one(page, api, own_team, make_user):
    team, boss = own_team
    lu = make_user("rep", team["id"], "陆鸣")
    make_user("rep", team["id"], "方琪")  # nothing yet: a row of zeros
    mine = [ok(api.post("/api/customers", lu.token, json={
        "company_name": company(city="武汉市", trade="光电有限公司"), "phones": [phone()]}), 201)
        for _ in range(2)]
    alarm = ok(api.post(f"/api/customers/{mine[0]['id']}/alarms", lu.token,
                        json={"reason": "客户联系不上"}), 201)
    ok(api.post(f"/api/alarms/{alarm['id']}/resolve", boss.token, json={
        "decision": "abandon", "verified": "fake", "note": "电话核实为空号"}))

    login(page, boss)
    page.get_by_role("link", name="团队", exact=True).click()
    report = page.get_by_role("region", name="诚信报表")
    row = report.get_by_role("row", name=re.compile("陆鸣"))
    # customers 2, entered 2, alarms 1, abandoned 0 (not yet), verified fake 1
    expect(row).to_have_text(re.compile(r"陆鸣\s*2\s*2\s*1\s*0\s*1"))
    expect(report.get_by_role("row", name=re.compile("方琪"))).to_be_visible()
    shot(page, "18-team")

    row.get_by_role("link", name="陆鸣").click()
    his = page.get_by_role("region", name="陆鸣 的客户")
    for c in mine:
        expect(his.get_by_role("link", name=c["company_name"])).to_be_visible()

    page.get_by_role("button", name="新建用户").click()
    dialog = page.get_by_role("dialog", name="新建用户")
    expect(dialog.get_by_label("角色")).to_have_count(0)  # a manager makes reps of his team
    username = f"rep_{uuid.uuid4().hex[:6]}"
    dialog.get_by_label("姓名").fill("柯蓝")
    dialog.get_by_label("登录名").fill(username)
    dialog.get_by_label("初始密码").fill("Xs8-tq4Lm2-pq")
    dialog.get_by_label("手机").fill("13912345679")
    dialog.get_by_role("button", name="创建").click()
    expect(page.get_by_text("用户 柯蓝 已创建")).to_be_visible()
    expect(report.get_by_role("row", name=re.compile("柯蓝"))).to_be_visible()
    assert api.login(username, "Xs8-tq4Lm2-pq")

    # the same username again: said beside the field
    page.get_by_role("button", name="新建用户").click()
    dialog.get_by_label("姓名").fill("柯蓝")
    dialog.get_by_label("登录名").fill(username)
    dialog.get_by_label("初始密码").fill("Xs8-tq4Lm2-pq")
    dialog.get_by_role("button", name="创建").click()
    expect(dialog.get_by_text("该登录名已被使用")).to_be_visible()


def test_admin_changes_a_stage_probability_and_the_forecast_moves(page, api, admin, own_team, make_user):
    team, _ = own_team
    rep = make_user("rep", team["id"], "魏然")
    ok(api.post("/api/customers", rep.token, json={
        "company_name": company(city="长沙市", trade="新材料有限公司"), "stage": 25,
        "expected_value": 10000}), 201)
    _settled(api, admin.token, {"owner_id": rep.id}, 2500)
    try:
        login(page, admin)
        page.get_by_role("link", name="设置", exact=True).click()
        editor = page.get_by_role("region", name="跟踪阶段")
        probability = editor.get_by_label("愿意试样 的成交概率")
        expect(probability).to_have_value("25")
        probability.fill("40")
        shot(page, "18-settings-stages")
        editor.get_by_role("button", name="保存阶段").click()
        expect(page.get_by_text("阶段已保存，预测随之更新")).to_be_visible()
        _settled(api, admin.token, {"owner_id": rep.id}, 4000)
        page.goto(f"/forecast?owner_id={rep.id}&team_id={team['id']}")
        expect(page.get_by_test_id("forecast-total")).to_have_text("¥4,000")

        # removing a stage that holds customers asks first; cancelling keeps it
        page.goto("/settings")
        editor.get_by_role("button", name="删除 愿意试样").click()
        editor.get_by_role("button", name="保存阶段").click()
        expect(page.get_by_text(re.compile("“愿意试样”还有 \\d+ 个客户"))).to_be_visible()
        page.get_by_role("button", name="取消").click()
        assert 25 in [s["stage"] for s in ok(api.get("/api/stages", admin.token))]

        # a stage the server refuses comes back with the row it is on
        page.goto("/settings")
        editor.get_by_label("第 2 行名称").fill("潜在客户")  # row 1's label
        editor.get_by_role("button", name="保存阶段").click()
        expect(editor.get_by_role("alert")).to_contain_text("第 2 行：名称“潜在客户”与第 1 行重复")
    finally:
        ok(api.put("/api/stages", admin.token, json=DEFAULT_STAGES))


def test_admin_adds_a_team_and_a_manager_in_it(page, api, admin):
    name = f"海外事业{uuid.uuid4().hex[:4]}部"
    login(page, admin)
    page.goto("/settings")
    page.get_by_role("tab", name="用户和团队").click()
    page.get_by_label("团队名称").fill(name)
    page.get_by_role("button", name="新建团队").click()
    expect(page.get_by_text(f"团队“{name}”已创建")).to_be_visible()
    page.get_by_role("button", name="新建用户").click()
    dialog = page.get_by_role("dialog", name="新建用户")
    username = f"mgr_{uuid.uuid4().hex[:6]}"
    dialog.get_by_label("姓名").fill("司马经理")
    dialog.get_by_label("登录名").fill(username)
    dialog.get_by_label("初始密码").fill("Vb7-kd2Qw9-zt")
    dialog.get_by_text("经理", exact=True).click()
    dialog.get_by_role("combobox", name="所属团队").click(force=True)
    page.get_by_role("option", name=name, exact=True).click()
    dialog.get_by_role("button", name="创建").click()
    expect(page.get_by_text("用户 司马经理 已创建")).to_be_visible()
    token = api.login(username, "Vb7-kd2Qw9-zt")
    me = ok(api.get("/api/users/me", token))
    assert me["role"] == "manager" and me["team_id"] is not None


def test_a_manager_may_not_open_settings(page, own_team):
    _, boss = own_team
    login(page, boss)
    expect(page.get_by_role("link", name="团队", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="设置", exact=True)).to_have_count(0)
    page.goto("/settings")
    expect(page.get_by_text("您没有权限打开这个页面")).to_be_visible()


def test_the_managers_screens_fit_a_phone(new_page, api, own_team, make_user, admin):
    from tests.web.conftest import PHONE

    team, boss = own_team
    rep = make_user("rep", team["id"], "任飞")
    c = ok(api.post("/api/customers", rep.token, json={
        "company_name": company(city="南昌市", trade="食品有限公司"), "address": "南昌市红谷滩区丰和中大道1号"}), 201)
    ok(api.post(f"/api/customers/{c['id']}/amendments", rep.token, json={
        "changes": {"address": "南昌市青山湖区高新大道999号"}, "reason": "地址变更"}), 201)
    page = new_page(viewport=PHONE)
    login(page, boss)
    page.get_by_role("button", name="菜单").click()
    page.get_by_role("link", name="审批", exact=True).click()
    item = page.get_by_role("article", name=c["company_name"])
    expect(item).to_contain_text("南昌市青山湖区高新大道999号")
    shot(page, "18-phone-approvals")
    item.get_by_role("button", name="批准").click()
    expect(item).to_have_count(0)
    for path, ready in (("/approvals", page.get_by_role("tab", name="困难报警")),
                        ("/team", page.get_by_role("region", name="诚信报表")),
                        ("/forecast", page.locator(".funnel svg"))):
        page.goto(path)
        expect(ready).to_be_visible()
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
    admin_page = new_page(viewport=PHONE)
    login(admin_page, admin)
    admin_page.goto("/settings")
    expect(admin_page.get_by_role("region", name="跟踪阶段")).to_be_visible()
    admin_page.wait_for_timeout(300)
    shot(admin_page, "18-phone-settings")
    assert admin_page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "/settings"
