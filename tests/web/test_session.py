"""Journey 1: signing in and out; a session the server ends brings the login
page back with a message, never a blank screen; deep links survive a reload;
the language is remembered per user; a phone's width and a keyboard work."""

import re
from datetime import UTC, datetime, timedelta

import jwt
from playwright.sync_api import expect

from tests.stack_fixtures import E2E_SECRET
from tests.web.conftest import PHONE, login, ok, shot


def test_sign_in_wrong_password_then_right_then_out(page, fresh_rep):
    rep = fresh_rep("周丽")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?redirect=/customers$"))  # strangers sign in first
    page.get_by_label("用户名").fill(rep.username)
    page.get_by_label("密码").fill("wrong-password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_have_text("用户名或密码错误")
    shot(page, "01-login-wrong-password")
    page.get_by_label("密码").fill(rep.password)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name="我的客户", exact=True)).to_be_visible()
    expect(page.get_by_text("周丽")).to_be_visible()
    page.get_by_role("button", name="退出登录").click()
    expect(page.get_by_role("button", name="登录")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("您已退出登录")
    # the token is gone: a screen's URL asks for the login again
    page.goto("/schedule")
    expect(page.get_by_role("button", name="登录")).to_be_visible()


def test_the_keyboard_alone_signs_in(page, fresh_rep):
    rep = fresh_rep()
    page.goto("/login")
    page.get_by_label("用户名").focus()
    page.keyboard.type(rep.username)
    page.keyboard.press("Tab")
    page.keyboard.type(rep.password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="我的客户", exact=True)).to_be_visible()


def _signed(rep, secret, **changes):
    now = datetime.now(UTC)
    claims = {"iss": "salescrm", "sub": rep.id, "username": rep.username, "name": rep.name, "role": rep.role,
              "team_id": rep.team_id, "iat": int(now.timestamp()),
              "exp": int((now + timedelta(hours=1)).timestamp()), **changes}
    return jwt.encode(claims, secret, algorithm="HS256")


def _plant(page, token, rep):
    page.goto("/login")
    page.evaluate("""([token, user]) => {
        localStorage.setItem('crm.token', token)
        localStorage.setItem('crm.user', JSON.stringify(user))
    }""", [token, {"id": rep.id, "username": rep.username, "name": rep.name, "role": rep.role,
                   "team_id": rep.team_id, "phone": None, "timezone": "Asia/Shanghai"}])


def test_a_token_the_server_refuses_brings_the_login_back_with_a_message(page, fresh_rep):
    rep = fresh_rep()
    # signed with another key: the server answers 401 invalid_token
    _plant(page, _signed(rep, "another-secret-" + "x" * 40), rep)
    page.goto("/customers")
    expect(page.get_by_role("status")).to_contain_text("登录状态已失效，请重新登录")
    expect(page.get_by_label("用户名")).to_be_visible()
    shot(page, "01-login-refused-token")


def test_an_expired_session_says_so_and_returns_to_the_screen_after_login(page, fresh_rep, api):
    rep = fresh_rep()
    past = datetime.now(UTC) - timedelta(hours=13)
    _plant(page, _signed(rep, E2E_SECRET, iat=int(past.timestamp()),
                         exp=int((past + timedelta(hours=12)).timestamp())), rep)
    page.goto("/schedule")
    expect(page.get_by_role("status")).to_contain_text("登录已过期，请重新登录")
    page.get_by_label("用户名").fill(rep.username)
    page.get_by_label("密码").fill(rep.password)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("button", name="新建提醒")).to_be_visible()


def test_a_token_that_expires_while_the_page_is_open_ends_the_session(page, fresh_rep):
    rep = fresh_rep()
    soon = datetime.now(UTC) + timedelta(seconds=4)
    _plant(page, _signed(rep, E2E_SECRET, exp=int(soon.timestamp())), rep)
    page.goto("/customers")
    expect(page.get_by_role("heading", name="我的客户", exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("登录已过期", timeout=15_000)


def test_a_deep_link_reloads_into_the_app(page, fresh_rep, api):
    rep = fresh_rep()
    c = ok(api.post("/api/customers", rep.token, json={"company_name": "佛山市顺德区美嘉电器有限公司"
                                                       + rep.id[-4:]}), 201)
    login(page, rep)
    page.goto(f"/customers/{c['id']}")
    expect(page.get_by_role("heading", name=c["company_name"], exact=True)).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name=c["company_name"], exact=True)).to_be_visible()
    page.goto("/no/such/screen")
    expect(page.get_by_text("页面不存在")).to_be_visible()


def test_english_on_switch_remembered_for_that_user_only(new_page, fresh_rep):
    rep, other = fresh_rep("吴强"), fresh_rep("郑敏")
    page = new_page()
    login(page, rep)
    page.get_by_role("button", name="语言").click()
    page.get_by_role("menuitem", name="English").click()
    expect(page.get_by_role("link", name="Customers", exact=True)).to_be_visible()
    expect(page.get_by_role("columnheader", name="Company")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="New customer")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    # another user on the same browser starts in Chinese...
    page.get_by_label("Username").fill(other.username)
    page.get_by_label("Password").fill(other.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="客户", exact=True)).to_be_visible()
    page.get_by_role("button", name="退出登录").click()
    # ... and the first one finds English again
    login(page, rep, landing="Company")


def test_at_a_phone_width_the_navigation_folds_behind_the_menu(new_page, fresh_rep):
    page = new_page(viewport=PHONE)
    login(page, fresh_rep())
    nav_link = page.get_by_role("link", name="日程", exact=True)
    expect(nav_link).to_be_hidden()
    page.get_by_role("button", name="菜单").click()
    expect(nav_link).to_be_visible()
    page.wait_for_timeout(400)  # the drawer slides in
    shot(page, "01-phone-menu")
    nav_link.click()
    expect(page.get_by_role("button", name="新建提醒")).to_be_visible()
    # no screen is wider than the phone: tables and charts fit or scroll inside
    # (waited for by what each screen shows last: Playwright's "networkidle"
    # never comes under eventlet's patching, see conftest.py)
    for path, ready in (("/customers", page.get_by_role("button", name="新建客户")),
                        ("/schedule", page.locator(".el-calendar-table")),
                        ("/pool", page.get_by_role("heading", name="公海客户", exact=True)),
                        ("/knowledge", page.get_by_role("tab", name="热门问题")),
                        ("/forecast", page.locator(".funnel svg"))):
        page.goto(path)
        expect(ready).to_be_visible()
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
