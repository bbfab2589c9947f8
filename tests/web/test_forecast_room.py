"""The forecast room (预测) of a manager and an admin: the breakdown by rep
and by team, a rep's own forecast a click away, and the table as Excel."""

import re
import time
import uuid
import zipfile

from playwright.sync_api import expect

from tests.web.conftest import choose, login, ok, shot
from tests.web.test_customers import company


def _settled(api, token, params, want, timeout=20.0):
    """The forecast reads its own copy, kept from events: wait until it has
    counted what was just entered."""
    deadline = time.monotonic() + timeout
    while True:
        got = ok(api.get("/api/forecast", token, params=params))["forecast"]
        if got == want or time.monotonic() > deadline:
            assert got == want
            return
        time.sleep(0.3)


def _xlsx_text(path) -> tuple[str, str]:
    """(the workbook's sheet names, every string and number in its sheets)."""
    with zipfile.ZipFile(path) as z:
        names = z.read("xl/workbook.xml").decode()
        cells = "".join(z.read(n).decode() for n in z.namelist()
                        if n.startswith("xl/worksheets/") or n == "xl/sharedStrings.xml")
    return names, cells


def test_manager_reads_his_team_by_rep_opens_one_and_exports(page, api, admin, make_user, tmp_path):
    team = ok(api.post("/api/teams", admin.token, json={"name": f"西南销售{uuid.uuid4().hex[:4]}部"}), 201)
    boss = make_user("manager", team["id"], "蒋经理")
    tang, yao = make_user("rep", team["id"], "唐宁"), make_user("rep", team["id"], "姚远")
    for rep, stage, value, n in ((tang, 25, 10000, 2), (yao, 90, 20000, 1)):
        for _ in range(n):
            ok(api.post("/api/customers", rep.token, json={
                "company_name": company(city="成都市", trade="软件有限公司"), "stage": stage,
                "expected_value": value}), 201)
    _settled(api, boss.token, {}, 23000)  # 2 x 10,000 x .25 + 20,000 x .9

    login(page, boss)
    page.get_by_role("link", name="预测", exact=True).click()
    expect(page.get_by_test_id("forecast-total")).to_have_text("¥23,000")
    by_rep = page.get_by_role("region", name="按业务员")
    expect(by_rep.get_by_role("row", name=re.compile("唐宁"))).to_contain_text("¥5,000")
    expect(by_rep.get_by_role("row", name=re.compile("姚远"))).to_contain_text("¥18,000")
    expect(page.get_by_role("img", name="各阶段客户数量漏斗图")).to_be_visible()
    shot(page, "18-forecast-room")

    with page.expect_download() as download:
        page.get_by_role("button", name="导出 Excel").click()
    saved = tmp_path / "forecast.xlsx"
    download.value.save_as(saved)
    assert download.value.suggested_filename.endswith(".xlsx")
    sheets, cells = _xlsx_text(saved)
    assert "按业务员" in sheets and "阶段" in sheets
    for text in ("唐宁", "姚远", "5000", "18000", "23000", "签订合同 90%"):
        assert text in cells, text

    by_rep.get_by_role("link", name="姚远").click()
    expect(page.get_by_text("业务员：姚远")).to_be_visible()
    expect(page.get_by_test_id("forecast-total")).to_have_text("¥18,000")
    expect(page.get_by_role("region", name="按业务员")).to_have_count(0)
    page.reload()  # the scope is in the address
    expect(page.get_by_test_id("forecast-total")).to_have_text("¥18,000")
    page.get_by_role("link", name="返回团队").click()
    expect(page.get_by_test_id("forecast-total")).to_have_text("¥23,000")


def test_admin_reads_the_company_by_team_and_picks_one(page, api, admin, make_user):
    name = f"东北销售{uuid.uuid4().hex[:4]}部"
    team = ok(api.post("/api/teams", admin.token, json={"name": name}), 201)
    rep = make_user("rep", team["id"], "于洋")
    ok(api.post("/api/customers", rep.token, json={
        "company_name": company(city="沈阳市", trade="机械有限公司"), "stage": 50,
        "expected_value": 30000}), 201)
    _settled(api, admin.token, {"team_id": team["id"]}, 15000)

    login(page, admin)
    page.get_by_role("link", name="预测", exact=True).click()
    by_team = page.get_by_role("region", name="按团队")
    expect(by_team.get_by_role("row", name=re.compile(name))).to_contain_text("¥15,000")
    choose(page, "预测范围", name)
    expect(page.get_by_test_id("forecast-total")).to_have_text("¥15,000")
    expect(page.get_by_role("region", name="按业务员").get_by_role("row", name=re.compile("于洋"))
           ).to_contain_text("¥15,000")
