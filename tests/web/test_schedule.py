"""Journey 5: my reminders (calendar and list; create, change, cancel; SMS
minutes per reminder and in my settings), and journey 6: the bell, the
inbox, 知道了, and notifications arriving live, also after a lost connection."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.web.conftest import login, ok, shot

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _pick_time(dialog, label, wall):
    box = dialog.get_by_label(label)
    box.fill(wall)
    box.press("Enter")


def test_create_change_and_cancel_a_reminder(page, fresh_rep, api):
    rep = fresh_rep("方圆")
    login(page, rep)
    page.get_by_role("link", name="日程", exact=True).click()
    page.get_by_role("button", name="新建提醒").click()
    dialog = page.get_by_role("dialog", name="新建提醒")
    today = datetime.now(SHANGHAI)
    day = (today + timedelta(days=1)).strftime("%Y-%m-%d")
    dialog.get_by_label("标题").fill("拜访华为采购部")
    dialog.get_by_label("内容").fill("带样品和报价单，找王工")
    _pick_time(dialog, "时间", f"{day} 14:30")
    dialog.get_by_label("短信提醒（分钟）").fill("5")
    dialog.get_by_role("button", name="保存").click()
    expect(page.get_by_text("提醒已创建")).to_be_visible()
    item = page.locator(".reminder").filter(has_text="拜访华为采购部")
    if day[:7] != today.strftime("%Y-%m"):  # tomorrow is next month: go there
        page.get_by_role("button", name="下个月").click()
    expect(item).to_contain_text(f"{day} 14:30")
    expect(item).to_contain_text("5 分钟后短信")
    expect(page.locator(".calendar .chip", has_text="拜访华为采购部")).to_be_visible()
    shot(page, "05-schedule")
    [r] = ok(api.get("/api/reminders", rep.token))["items"]
    assert r["escalate_after_minutes"] == 5 and r["due_at"][11:16] == "06:30"

    item.get_by_role("button", name="修改").click()
    dialog = page.get_by_role("dialog", name="修改提醒")
    dialog.get_by_label("标题").fill("拜访华为采购部（改到下午四点）")
    _pick_time(dialog, "时间", f"{day} 16:00")
    dialog.get_by_label("短信提醒（分钟）").fill("0")
    dialog.get_by_role("button", name="保存").click()
    expect(page.get_by_text("提醒已修改")).to_be_visible()
    item = page.locator(".reminder").filter(has_text="改到下午四点")
    expect(item).to_contain_text(f"{day} 16:00")
    expect(item).to_contain_text("不发短信")
    [r] = ok(api.get("/api/reminders", rep.token))["items"]
    assert r["due_at"][11:16] == "08:00" and r["escalate_after_minutes"] == 0

    item.get_by_role("button", name="取消提醒").click()
    page.get_by_role("button", name="确定").click()
    expect(page.get_by_text("提醒已取消")).to_be_visible()
    expect(item).to_contain_text("已取消")
    assert ok(api.get("/api/reminders", rep.token))["items"][0]["status"] == "cancelled"


def test_my_default_sms_minutes_are_set_in_my_settings(page, fresh_rep, api):
    rep = fresh_rep()
    login(page, rep)
    page.get_by_role("button", name="我的设置").click()
    dialog = page.get_by_role("dialog", name="我的设置")
    expect(dialog.get_by_label("默认短信提醒（分钟）")).to_have_value("10.0")
    dialog.get_by_label("默认短信提醒（分钟）").fill("15")
    dialog.get_by_label("生日提前提醒（天）").fill("3")
    dialog.get_by_role("button", name="保存设置").click()
    expect(page.get_by_text("设置已保存")).to_be_visible()
    settings = ok(api.get("/api/settings/me", rep.token))
    assert settings["escalate_after_minutes"] == 15 and settings["birthday_lead_days"] == 3


def _due_in(api, rep, seconds, title):
    at = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
    return ok(api.post("/api/reminders", rep.token,
                       json={"title": title, "content": "提醒内容：" + title, "due_at": at,
                             "escalate_after_minutes": 30}), 201)


def test_a_due_reminder_arrives_live_with_a_toast_and_is_acknowledged(page, fresh_rep, api):
    rep = fresh_rep("叶子")
    login(page, rep)
    expect(page.get_by_role("button", name="通知", exact=True)).to_be_visible()
    _due_in(api, rep, 2, "给深圳市腾讯的马总回电话")
    # no reload: the stream brings it, a toast pops, the bell counts it
    toast = page.locator(".el-notification").filter(has_text="给深圳市腾讯的马总回电话")
    expect(toast).to_be_visible(timeout=20_000)
    bell = page.get_by_role("button", name="通知 1")
    expect(bell).to_be_visible()
    shot(page, "06-toast")
    bell.click()
    inbox = page.get_by_role("list", name="通知")
    item = inbox.get_by_role("listitem").filter(has_text="给深圳市腾讯的马总回电话")
    expect(item).to_be_visible()
    shot(page, "06-inbox")
    item.get_by_role("button", name="知道了").click()
    expect(item.get_by_text("已处理")).to_be_visible()
    [n] = ok(api.get("/api/notifications", rep.token))["items"]
    assert n["acknowledged"] is True
    # acknowledged before its 30 minutes: no SMS is left to send
    assert n["sms"] is None or n["sms"]["status"] in ("cancelled", "not_needed")


def test_what_arrives_while_the_connection_is_down_is_not_missed(page, fresh_rep, api):
    rep = fresh_rep()
    login(page, rep)
    _due_in(api, rep, 1, "第一条：确认合同条款")
    expect(page.locator(".el-notification").filter(has_text="第一条")).to_be_visible(timeout=20_000)
    page.context.set_offline(True)
    _due_in(api, rep, 1, "第二条：断线期间到期")
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while datetime.now(UTC) < deadline:
        if ok(api.get("/api/notifications", rep.token))["total"] == 2:
            break
        page.wait_for_timeout(300)
    page.context.set_offline(False)
    expect(page.locator(".el-notification").filter(has_text="第二条")).to_be_visible(timeout=20_000)
    expect(page.get_by_role("button", name="通知 2")).to_be_visible()
    page.get_by_role("button", name="通知 2").click()
    items = page.get_by_role("list", name="通知").get_by_role("listitem")
    expect(items).to_have_count(2)
