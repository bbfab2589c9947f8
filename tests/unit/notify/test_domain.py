"""notify's domain functions: notifications from events, escalation plan,
delivery states after attempts, the inbox view (no broker, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notify import domain
from services.notify.sms import Attempt

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def due(**over):
    return {"reminder_id": "r1", "user_id": "rep1", "kind": "revisit",
            "title": "回访 北京小米科技有限责任公司（雷总）", "content": "问问试用反馈",
            "due_at": "2026-03-02T01:00:00+00:00", "fired_at": "2026-03-02T01:00:02+00:00",
            "late": False, "customer_id": "c1", "escalate_after_minutes": None,
            "escalation_of": None, "contact_name": "雷总", **over}


def test_reminder_notification_is_keyed_by_the_reminder():
    doc = domain.reminder_notification(due(), NOW)
    assert doc["key"] == "reminder:r1" and doc["user_id"] == "rep1"
    assert doc["body"] == "联系人：雷总\n问问试用反馈"
    assert doc["ref"] == {"reminder_id": "r1", "customer_id": "c1",
                          "due_at": "2026-03-02T01:00:00+00:00", "late": False}
    assert not doc["read"] and not doc["acknowledged"]


def test_escalation_plan_reminder_value_then_user_setting_zero_is_never():
    plan = domain.escalation_plan(due(escalate_after_minutes=0.05), {"escalate_after_minutes": 10})
    assert plan["due_at"] == datetime(2026, 3, 2, 1, 0, 5, tzinfo=UTC)  # fired_at + 3 s
    plan = domain.escalation_plan(due(), {"escalate_after_minutes": 30})
    assert plan["due_at"] == datetime(2026, 3, 2, 1, 30, 2, tzinfo=UTC)
    assert domain.escalation_plan(due(), None)["minutes"] == 10  # the default
    assert domain.escalation_plan(due(escalate_after_minutes=0), {}) is None
    assert domain.escalation_plan(due(), {"escalate_after_minutes": 0}) is None


def test_sms_text_uses_the_users_time_zone():
    doc = domain.reminder_notification(due(), NOW)
    assert domain.sms_text(doc, "Asia/Shanghai").startswith("【销售CRM】03-02 09:00 提醒未确认：")
    assert "03-01 20:00" in domain.sms_text(doc, "America/New_York")


def attempt(ok, status, at):
    return Attempt(provider="webhook", ok=ok, status_code=status,
                   error=None if ok else f"HTTP {status}", at=at, duration_ms=3.0)


def test_delivery_retries_with_backoff_from_the_attempt_then_fails():
    doc = {**domain.reminder_notification(due(), NOW), "_id": "n1"}
    d = domain.new_delivery(doc, "+8613800138000", "text", NOW)
    assert d["status"] == "sending"
    d = domain.after_attempt(d, attempt(False, 500, NOW), 3, 2, NOW + timedelta(seconds=1))
    assert d["status"] == "retrying" and d["next_attempt_at"] == NOW + timedelta(seconds=2)
    t2 = NOW + timedelta(seconds=2)
    d = domain.after_attempt(d, attempt(False, 503, t2), 3, 2, t2)
    assert d["next_attempt_at"] == t2 + timedelta(seconds=4)
    d = domain.after_attempt(d, attempt(False, 502, t2), 3, 2, t2)
    assert d["status"] == "failed" and d["error"] == "HTTP 502" and len(d["attempts"]) == 3
    assert [a["n"] for a in d["attempts"]] == [1, 2, 3]


def test_delivery_sent_on_success_and_skipped_without_phone():
    doc = {**domain.reminder_notification(due(), NOW), "_id": "n1"}
    d = domain.new_delivery(doc, "+8613800138000", "text", NOW)
    d = domain.after_attempt(d, attempt(True, 200, NOW), 3, 1, NOW)
    assert d["status"] == "sent" and d["error"] is None
    assert domain.new_delivery(doc, None, "text", NOW)["status"] == "skipped"
    assert domain.stopped(d, NOW)["status"] == "cancelled"


def test_sms_view_states():
    doc = {**domain.reminder_notification(due(), NOW), "_id": "n1",
           "escalation": {"minutes": 10, "due_at": NOW + timedelta(minutes=10)}}
    assert domain.sms_view(doc, None)["status"] == "scheduled"
    assert domain.sms_view({**doc, "acknowledged": True}, None)["status"] == "not_needed"
    assert domain.sms_view({**doc, "escalation": None}, None) is None
    d = domain.after_attempt(domain.new_delivery(doc, "+8613800138000", "t", NOW),
                             attempt(False, 500, NOW), 3, 1, NOW)
    view = domain.view(doc, d)
    assert view["sms"]["status"] == "retrying"
    assert view["sms"]["attempts"] == [{"at": "2026-03-02T01:00:00+00:00", "ok": False,
                                        "provider": "webhook", "status_code": 500,
                                        "error": "HTTP 500"}]


def test_events_reach_the_right_people_once_each():
    raised = domain.alarm_raised({"alarm_id": "a1", "customer_id": "c1",
                                  "company_name": "深圳市大疆创新科技有限公司",
                                  "owner_id": "rep1", "reason": "客户拒接"}, ["m1", "m2"], NOW)
    assert [(d["user_id"], d["key"]) for d in raised] == [
        ("m1", "alarm_raised:a1:m1"), ("m2", "alarm_raised:a1:m2")]
    asked = domain.amendment_requested({"amendment_id": "am1", "customer_id": "c1",
                                        "company_name": "杭州海康威视数字技术股份有限公司",
                                        "owner_id": "rep1", "reason": "地址录错了"}, ["m1"], NOW)
    assert [(d["user_id"], d["key"], d["kind"], d["title"], d["body"]) for d in asked] == [
        ("m1", "amendment_requested:am1:m1", "amendment_requested",
         "修改申请：杭州海康威视数字技术股份有限公司", "地址录错了")]
    limit = {"user_id": "rep1", "user_name": "张伟", "team_id": "t1",
             "hour": "2026-12-07T10:00:00+00:00", "limit": 60, "opened": 60,
             "refused_customer_id": "c61", "address": "203.0.113.7"}
    told = domain.read_limit(limit, ["m1", "rep1"], NOW)  # never told of himself
    assert [(d["user_id"], d["key"], d["kind"], d["title"]) for d in told] == [
        ("m1", "read_limit:rep1:2026-12-07T10:00:00+00:00:m1", "read_limit", "批量查看客户：张伟")]
    assert "60" in told[0]["body"] and "203.0.113.7" in told[0]["body"]
    assert domain.read_limit(limit, ["m1"], NOW)[0]["key"] == told[0]["key"]  # once an hour
    changed = domain.owner_changed({"customer_id": "c1", "version": 4, "old_owner_id": "rep1",
                                    "new_owner_id": "rep2", "reason": "claim",
                                    "company_name": "大疆"}, NOW)
    assert [(d["user_id"], d["title"]) for d in changed] == [
        ("rep1", "客户已转出：大疆"), ("rep2", "客户已转入：大疆")]
    assert domain.owner_changed({"customer_id": "c1", "old_owner_id": None,
                                 "new_owner_id": "rep2"}, NOW)[0]["user_id"] == "rep2"
    assert domain.answer_posted({"answer_id": "x", "asker_id": "rep1", "author_id": "rep1"},
                                NOW) == []  # answering oneself notifies nobody
    assert domain.answer_posted({"answer_id": "x", "asker_id": "rep1", "author_id": "m1",
                                 "title": "压价怎么办"}, NOW)[0]["user_id"] == "rep1"


# --------------------------------------------------------------------------
# customers changing hands; what an SMS says


def test_an_owners_reminder_loses_its_sms_once_the_customer_changed_hands():
    doc = {**domain.reminder_notification(due(owner_version=3), NOW), "_id": "n1"}
    assert doc["owner_version"] == 3
    assert domain.sms_withheld(doc, None) is None  # no change heard of
    assert domain.sms_withheld(doc, {"owner_id": "rep1", "version": 3}) is None
    assert domain.sms_withheld(doc, {"owner_id": "rep2", "version": 2}) is None  # older news
    assert domain.sms_withheld(doc, {"owner_id": "rep2", "version": 4}) == domain.CHANGED_HANDS
    assert domain.sms_withheld(doc, {"owner_id": None, "version": 4}) == domain.CHANGED_HANDS
    # handed back to him: his again
    assert domain.sms_withheld(doc, {"owner_id": "rep1", "version": 6}) is None
    stopped = domain.stopped(domain.new_delivery(doc, "+8613812345678", "t", NOW), NOW,
                             domain.CHANGED_HANDS)
    assert stopped["status"] == "cancelled" and stopped["next_attempt_at"] is None
    assert domain.sms_view(doc, stopped)["error"] == domain.CHANGED_HANDS


def test_a_personal_reminder_keeps_its_sms_whoever_owns_the_customer():
    manager_note = domain.reminder_notification(
        due(kind="event", user_id="mgr", title="跟进华强的合同", contact_name=None), NOW)
    assert manager_note["owner_version"] is None
    assert domain.sms_withheld(manager_note, {"owner_id": "rep2", "version": 9}) is None
    # fired before reminders said whose they were: a revisit is its owner's
    legacy = domain.reminder_notification(due(), NOW)
    assert legacy["owner_version"] == 0
    assert domain.sms_withheld(legacy, {"owner_id": "rep2", "version": 1}) == domain.CHANGED_HANDS
    assert domain.reminder_notification(due(customer_id=None), NOW)["owner_version"] is None
    greeting = domain.reminder_notification(due(kind="birthday", contact_name=None), NOW)
    assert domain.sms_withheld(greeting, {"owner_id": "rep2", "version": 1}) == (
        domain.CHANGED_HANDS)


def test_the_owner_after_each_kind_of_change():
    assert domain.owner_of_event("OwnerChanged", {"new_owner_id": "rep2", "version": 4}) == (
        "rep2", 4)
    assert domain.owner_of_event("OwnerChanged", {"new_owner_id": None, "version": 5}) == (None, 5)
    assert domain.owner_of_event("CustomerAbandoned", {"owner_id": "rep1", "version": 6}) == (
        None, 6)


def test_an_sms_names_the_company_but_no_contact_and_no_phone_number():
    doc = domain.reminder_notification(due(
        title="回访 深圳市华强电子有限公司（陈志强）", contact_name="陈志强",
        content="陈志强 手机 13812345678"), NOW)
    text = domain.sms_text(doc, "Asia/Shanghai")
    assert text == "【销售CRM】03-02 09:00 提醒未确认：回访 深圳市华强电子有限公司。请登录系统确认。"
    typed = domain.reminder_notification(due(
        kind="event", contact_name=None,
        title="给陈总打电话 138 1234 5678，邮件 chen.zq@hq.cn"), NOW)
    text = domain.sms_text(typed, "Asia/Shanghai")
    assert "5678" in text and "1234" not in text and "138****5678" in text
    assert "chen.zq@" not in text and "c***@hq.cn" in text
    assert len(text) <= 70  # one SMS


def test_phone_numbers_in_free_text_are_masked_dates_are_not():
    m = domain.mask_contact_details
    assert m("手机13812345678") == "手机138****5678"
    assert m("+86 138-1234-5678") == "138****5678"
    assert m("座机 0755-83216666") == "座机 075*****6666"
    assert m("2026-03-02 09:30 在深圳开会") == "2026-03-02 09:30 在深圳开会"
    assert m("分机 8321666") == "分机 *****66"


def test_an_sms_of_a_notification_kept_before_subjects_masks_its_title():
    doc = domain.reminder_notification(due(kind="event", title="回电 13900002222"), NOW)
    del doc["sms_subject"]
    assert "139****2222" in domain.sms_text(doc, None)
    long = domain.reminder_notification(due(kind="event", title="拜访" + "华强" * 40), NOW)
    assert long["sms_subject"].endswith("…") and len(long["sms_subject"]) == 36
    assert len(domain.sms_text(long, None)) == 70
