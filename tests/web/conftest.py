"""Browser tests: the real stack (as `make run` starts it) driven through
Debian's chromium by Playwright, as a sales rep uses it. Each test gets a
fresh browser context (its own storage: a fresh login) at a laptop's size;
a screenshot of each journey's key moments goes to .data/screenshots/."""

import os
import re
import shutil
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".data" / "screenshots"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
# Without these Chromium keeps calling Google's hosts, refused by this
# machine's closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]

expect.set_options(timeout=10_000)


def chromium_path() -> str:
    path = os.environ.get("CRM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("chromium is not installed: run scripts/browser.sh (make test does)")
    return path


@pytest.fixture(scope="session")
def browser():
    # Not `with sync_playwright()`: its stop() waits for the driver process
    # through asyncio's child watcher, which never wakes under eventlet's
    # monkey patching (tests/conftest.py), and the run hangs at its end. The
    # driver exits by itself when its pipe closes with this process.
    playwright = sync_playwright().start()
    b = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def new_page(browser, stack):
    """new_page(viewport=...) -> a page in a context of its own; uncaught
    script errors in it fail the test."""
    contexts, errors = [], []

    def make(viewport=LAPTOP, locale="zh-CN") -> Page:
        ctx = browser.new_context(base_url=stack.url, viewport=viewport, locale=locale,
                                  timezone_id="Asia/Shanghai")
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(new_page) -> Page:
    return new_page()


def shot(page: Page, name: str, docs: str | None = None) -> Path:
    """A screenshot under .data/screenshots/; with CRM_DOCS_SCREENSHOTS=1 the
    ones the README shows (`docs`) are written to docs/screenshots/ too."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    # Transitions finished: a dialog caught fading in is half transparent.
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    if docs and os.environ.get("CRM_DOCS_SCREENSHOTS") == "1":
        (ROOT / "docs" / "screenshots").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ROOT / "docs" / "screenshots" / f"{docs}.png"),
                        animations="disabled")
    return path


def login(page: Page, person, landing="公司名称") -> Page:
    page.goto("/login")
    page.get_by_label("用户名").fill(person.username)
    page.get_by_label("密码").fill(person.password)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("columnheader", name=landing)).to_be_visible()
    return page


def choose(page: Page, label: str, option: str) -> None:
    """Pick an option of an Element Plus select (its input sits under the
    text of the current choice, which takes the pointer)."""
    page.get_by_role("combobox", name=label).click(force=True)
    page.get_by_role("option", name=option, exact=True).click()


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture
def fresh_rep(make_user, team):
    """A rep of the shared team with nothing of his own yet."""
    return lambda name="陈晓明": make_user("rep", team["id"], name, phone="13912345678")


def exact(text: str) -> re.Pattern:
    return re.compile(f"^{re.escape(text)}$")
