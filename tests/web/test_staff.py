"""People leave, customers stay, in the browser: a manager disables a rep
whose page is open (he is thrown out within seconds), hands his book over
with a preview and a progress bar, and a reset password is replaced before
anything else."""

import re
import uuid

from playwright.sync_api import expect

from tests.web.conftest import choose, login, ok, shot
from tests.web.test_customers import company, phone
from tests.web.test_team_settings import own_team  # noqa: F401 - a fixture


def test_a_disabled_reps_open_page_is_thrown_out(new_page, own_team, make_user):  # noqa: F811
    team, boss = own_team
    rep_page = new_page()
    boss_page = new_page()
    rep = make_user("rep", team["id"], "杜离职")
    login(rep_page, rep)

    login(boss_page, boss)
    boss_page.get_by_role("link", name="团队", exact=True).click()
    row = boss_page.get_by_role("region", name="诚信报表").get_by_role("row", name=re.compile("杜离职"))
    row.get_by_role("button", name="停用").click()
    boss_page.get_by_role("dialog").get_by_role("button", name="确定").click()
    expect(row.get_by_text("已停用")).to_be_visible()

    # his page goes back to the login page, saying why, within seconds
    expect(rep_page.get_by_text("您的账号已停用，请联系经理或管理员")).to_be_visible(timeout=8_000)
    expect(rep_page.get_by_role("button", name="登录")).to_be_visible()
    shot(rep_page, "15-disabled")

    row.get_by_role("button", name="启用").click()
    expect(row.get_by_role("button", name="停用")).to_be_visible()


def test_a_leaving_reps_book_is_handed_over_with_a_preview(page, api, own_team, make_user):  # noqa: F811
    team, boss = own_team
    leaver = make_user("rep", team["id"], "韩要走")
    make_user("rep", team["id"], "魏接手")
    names = [ok(api.post("/api/customers", leaver.token, json={
        "company_name": company(city="长沙市", trade="机械有限公司"), "phones": [phone()]}), 201)
        ["company_name"] for _ in range(3)]

    login(page, boss)
    page.get_by_role("link", name="团队", exact=True).click()
    row = page.get_by_role("region", name="诚信报表").get_by_role("row", name=re.compile("韩要走"))
    row.get_by_role("button", name="交接客户").click()
    dialog = page.get_by_role("dialog", name="交接 韩要走 的客户")
    choose(page, "接手人", "魏接手")
    dialog.get_by_role("button", name="预览").click()
    preview = dialog.get_by_role("region", name="交接预览")
    expect(preview).to_contain_text("共 3 位客户将被交接")
    expect(preview).to_contain_text("魏接手：3 位")
    shot(page, "15-handover-preview")
    dialog.get_by_role("button", name="确定交接").click()
    expect(dialog.get_by_role("region", name="交接进度")).to_contain_text("已交接 3 / 3")
    expect(page.get_by_text("交接完成，共 3 位客户")).to_be_visible()

    # his row now shows no customers; each is the new owner's
    expect(row).to_have_text(re.compile(r"韩要走\s*0"))
    for name in names:
        found = ok(api.get("/api/customers", boss.token, params={"q": name}))["items"]
        assert [c["owner"]["name"] for c in found] == ["魏接手"]


def test_a_reset_password_is_replaced_before_anything_else(page, api, own_team,  # noqa: F811
                                                          make_user):
    team, boss = own_team
    rep = make_user("rep", team["id"], "俞重置")
    temporary = f"临时-{uuid.uuid4().hex[:10]}"
    ok(api.post(f"/api/users/{rep.id}/password", boss.token, json={"new_password": temporary}))
    rep.password = temporary
    _sign_in(page, rep)
    expect(page.get_by_role("heading", name="修改密码", exact=True)).to_be_visible()
    expect(page.get_by_text("您的密码已被重置，请先设置新密码")).to_be_visible()
    page.get_by_role("link", name="客户", exact=True).click()
    expect(page.get_by_role("heading", name="修改密码", exact=True)).to_be_visible()  # not yet
    new = f"新密码-{uuid.uuid4().hex[:10]}"
    page.get_by_label("当前密码").fill(temporary)
    page.get_by_label("新密码", exact=True).fill(new)
    page.get_by_label("确认新密码").fill(new)
    page.get_by_role("button", name="保存新密码").click()
    expect(page.get_by_role("columnheader", name="公司名称")).to_be_visible()
    assert api.login(rep.username, new)


def _sign_in(page, person):
    page.goto("/login")
    page.get_by_label("用户名").fill(person.username)
    page.get_by_label("密码").fill(person.password)
    page.get_by_role("button", name="登录").click()


def test_a_manager_reads_what_a_rep_opened(page, api, own_team, make_user):  # noqa: F811
    team, boss = own_team
    rep = make_user("rep", team["id"], "汤阅读")
    mine = ok(api.post("/api/customers", rep.token, json={
        "company_name": company(city="南京市", trade="软件有限公司"), "phones": [phone()]}), 201)
    ok(api.get(f"/api/customers/{mine['id']}", rep.token))
    ok(api.get("/api/customers", rep.token))

    login(page, boss)
    page.get_by_role("link", name="团队", exact=True).click()
    row = page.get_by_role("region", name="诚信报表").get_by_role("row", name=re.compile("汤阅读"))
    row.get_by_role("button", name="查看记录").click()
    dialog = page.get_by_role("dialog", name="汤阅读 的查看记录")
    expect(dialog.get_by_role("row", name=re.compile("打开客户"))).to_have_count(1)
    expect(dialog.get_by_role("row", name=re.compile("浏览列表"))).to_have_count(1)
    expect(dialog.get_by_role("link", name="查看该客户")).to_have_attribute(
        "href", f"/customers/{mine['id']}")
    shot(page, "15-reads")
