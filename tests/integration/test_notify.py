"""notify over real RabbitMQ and FerretDB: the inbox, SMS escalation through
a real local webhook server, retries, and other services' events."""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher

from services.accounts.service import AccountsService
from services.common.errors import NotFound
from services.common.events import event
from services.common.standalone import ServiceRpcClient
from services.notify import storage
from services.notify.service import NotifyService
from services.scheduler.service import SchedulerService
from tests.integration.test_scheduler import (
    ADMIN,
    T0,
    clock,  # noqa: F401 - fixture
    inbox,
    make_user,
    wait_for,
)


class Webhook(ThreadingHTTPServer):
    """A local SMS gateway answering the statuses it is given in turn."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.received = []
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/sms"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server = self.server
        status = server.statuses.pop(0) if len(server.statuses) > 1 else server.statuses[0]
        server.received.append((status, json.loads(body)))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def webhook(*statuses):
    server = Webhook(statuses or (200,))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def fast(service_config, hook, **extra) -> dict:
    """Ticking fast, SMS to the local webhook `hook`."""
    return {**service_config, "SCHEDULER_TICK_SECONDS": 0.05, "SMS_RETRY_TICK_SECONDS": 0.05,
            "SMS_PROVIDER": "webhook", "SMS_WEBHOOK_URL": hook.url, **extra}


def start(container_factory, config):
    for cls in (AccountsService, SchedulerService, NotifyService):
        container_factory(cls, config).start()
    stack = contextlib.ExitStack()
    return stack, {name: stack.enter_context(ServiceRpcClient(name))
                   for name in ("accounts", "scheduler", "notify")}


@pytest.fixture
def hook_and_services(container_factory, service_config, clock):  # noqa: F811
    with webhook(500, 503, 200) as hook:
        config = fast(service_config, hook, SMS_BASE_DELAY_SECONDS=2,
                      NOTIFY_USER_CACHE_SECONDS=0)
        stack, rpc = start(container_factory, config)
        with stack:
            yield hook, rpc


def attempts(rpc, user, notification) -> int:
    sms = rpc["notify"].get_notification(user, notification["id"])["sms"]
    return len(sms["attempts"]) if sms else 0


def reminder_inbox(notify, user):
    return [n for n in inbox(notify, user) if n["ref"].get("reminder_id")]


def test_unacknowledged_reminder_escalates_to_one_sms_after_retries(
        hook_and_services, clock, db_of):  # noqa: F811
    hook, rpc = hook_and_services
    rep = make_user(rpc["accounts"], "张伟", phone="138 0013 8000")
    r = rpc["scheduler"].create_reminder(rep, {
        "title": "拜访华为技术有限公司", "due_at": (T0 + timedelta(minutes=5)).isoformat(),
        "escalate_after_minutes": 10})
    clock.advance(minutes=5)
    n = wait_for(lambda: reminder_inbox(rpc["notify"], rep), what="the notification")[0]
    assert n["sms"]["status"] == "scheduled"
    assert n["sms"]["due_at"] == "2026-03-02T01:15:00+00:00"  # fired_at + 10 min
    clock.advance(minutes=9, seconds=59)
    eventlet.sleep(0.5)
    assert hook.received == []  # not before its time
    clock.advance(seconds=1)
    wait_for(lambda: attempts(rpc, rep, n) == 1, what="the first attempt")
    # the gateway answered 500: the next attempt waits for the backoff (2 s)
    eventlet.sleep(0.3)
    assert len(hook.received) == 1
    item = rpc["notify"].get_notification(rep, n["id"])
    assert item["sms"]["status"] == "retrying"
    assert item["sms"]["attempts"][0]["status_code"] == 500
    clock.advance(seconds=2)
    wait_for(lambda: attempts(rpc, rep, n) == 2, what="the second attempt")
    clock.advance(seconds=4)  # 503, then the backoff doubles
    wait_for(lambda: attempts(rpc, rep, n) == 3, what="the third attempt")
    item = wait_for(lambda: (x := rpc["notify"].get_notification(rep, n["id"]))["sms"]["status"]
                    == "sent" and x, what="sent")
    assert [a["status_code"] for a in item["sms"]["attempts"]] == [500, 503, 200]
    assert item["sms"]["to"] == "+8613800138000"
    stored = rpc["notify"].sms_attempts(n["id"])
    assert [a["ok"] for a in stored] == [False, False, True] and len(stored) == 3
    body = hook.received[-1][1]
    assert body["to"] == "+8613800138000" and "拜访华为技术有限公司" in body["text"]
    # one SMS, whatever happens next
    clock.advance(minutes=30)
    eventlet.sleep(0.5)
    assert [s for s, _ in hook.received] == [500, 503, 200]
    assert rpc["scheduler"].get_reminder(rep, r["id"])["status"] == "fired"


def test_acknowledging_in_time_means_no_sms_and_marks_the_reminder(
        hook_and_services, clock, db_of):  # noqa: F811
    hook, rpc = hook_and_services
    rep = make_user(rpc["accounts"], "李娜", phone="13800138001")
    other = make_user(rpc["accounts"], "赵磊")
    r = rpc["scheduler"].create_reminder(rep, {
        "title": "给格力电器报价", "due_at": (T0 + timedelta(minutes=1)).isoformat()})
    clock.advance(minutes=1)
    n = wait_for(lambda: reminder_inbox(rpc["notify"], rep), what="the notification")[0]
    assert n["sms"]["status"] == "scheduled"  # the user's default: 10 minutes
    with pytest.raises(NotFound):
        rpc["notify"].acknowledge(other, n["id"])
    acked = rpc["notify"].acknowledge(rep, n["id"])
    assert acked["acknowledged"] and acked["read"] and acked["sms"]["status"] == "not_needed"
    assert rpc["notify"].acknowledge(rep, n["id"])["acknowledged"]  # idempotent
    wait_for(lambda: rpc["scheduler"].get_reminder(rep, r["id"])["status"] == "acknowledged",
             what="the reminder acknowledged")
    esc = db_of("scheduler").reminders.find_one({"escalation_of": n["id"]})
    wait_for(lambda: db_of("scheduler").reminders.find_one(
        {"_id": esc["_id"]})["status"] == "cancelled", what="the escalation check cancelled")
    clock.advance(minutes=15)
    eventlet.sleep(0.6)
    assert hook.received == []
    assert rpc["notify"].list_notifications(rep, {"unread": True})["total"] == 0


def test_a_webhook_that_never_answers_well_leaves_a_failed_delivery_in_the_inbox(
        container_factory, service_config, clock, db_of):  # noqa: F811
    with webhook(502) as hook:
        config = fast(service_config, hook, SMS_BASE_DELAY_SECONDS=1, SMS_MAX_ATTEMPTS=4)
        stack, rpc = start(container_factory, config)
        with stack:
            rep = make_user(rpc["accounts"], "王芳", phone="+86 139 0000 1111")
            rpc["scheduler"].create_reminder(rep, {
                "title": "签约美的集团", "due_at": (T0 + timedelta(minutes=1)).isoformat(),
                "escalate_after_minutes": 0.5})
            clock.advance(minutes=1)
            n = wait_for(lambda: reminder_inbox(rpc["notify"], rep), what="notification")[0]
            for k, seconds in enumerate((30, 1, 2, 4), start=1):
                clock.advance(seconds=seconds)
                wait_for(lambda k=k: attempts(rpc, rep, n) == k, what=f"attempt {k}")
            item = wait_for(lambda: (x := rpc["notify"].get_notification(rep, n["id"]))
                            ["sms"]["status"] == "failed" and x, what="failed")
            assert len(item["sms"]["attempts"]) == 4 and item["sms"]["error"] == "HTTP 502"
            assert len(hook.received) == 4
            clock.advance(minutes=5)
            eventlet.sleep(0.3)
            assert len(hook.received) == 4


def left_unacknowledged(rpc, clock, name, phone, title, status="sent",  # noqa: F811
                        minutes=0.5):
    """A rep's reminder left unacknowledged for its `minutes`: (the
    notification, the inbox item once its SMS has `status`)."""
    rep = make_user(rpc["accounts"], name, phone=phone)
    rpc["scheduler"].create_reminder(rep, {
        "title": title, "due_at": (T0 + timedelta(minutes=1)).isoformat(),
        "escalate_after_minutes": minutes})
    clock.advance(minutes=1)
    n = wait_for(lambda: reminder_inbox(rpc["notify"], rep), what="notification")[0]
    clock.advance(minutes=minutes)
    item = wait_for(lambda: (x := rpc["notify"].get_notification(rep, n["id"]))
                    ["sms"]["status"] == status and x, what=f"the SMS {status}")
    return n, item


def test_a_worker_dying_right_after_claiming_the_sms_leaves_it_to_the_retry_loop(
        container_factory, service_config, clock, monkeypatch):  # noqa: F811
    from services.notify import service as notify_service

    real_claim = notify_service.storage.claim_delivery
    crashes = []

    def claim_then_die(db, delivery):
        claimed = real_claim(db, delivery)
        if claimed and not crashes:
            crashes.append(delivery["_id"])
            raise RuntimeError("the worker died after claiming the delivery")
        return claimed

    monkeypatch.setattr(notify_service.storage, "claim_delivery", claim_then_die)
    monkeypatch.setattr("services.common.events.REQUEUE_PAUSE_SECONDS", 0.05)
    with webhook(200) as hook:
        config = fast(service_config, hook)
        stack, rpc = start(container_factory, config)
        with stack:
            n, item = left_unacknowledged(rpc, clock, "陈静", "13800138009", "确认比亚迪样品签收")
            assert crashes == [n["id"]]
            assert len(item["sms"]["attempts"]) == 1
            clock.advance(minutes=5)
            eventlet.sleep(0.3)
            assert [body["to"] for _, body in hook.received] == ["+8613800138009"]


def test_the_retry_loop_ticking_while_the_sms_is_being_claimed_does_not_lose_it(
        container_factory, service_config, clock, monkeypatch):  # noqa: F811
    """The loop must never find an attempt entry whose delivery does not
    exist yet: it took such an entry for a finished one and dropped it, and
    the SMS never went out (1 in 300 in the benchmark)."""
    from services.notify import service as notify_service

    real_claim = notify_service.storage.claim_delivery

    def slow_claim(db, delivery):
        eventlet.sleep(0.3)  # several ticks of the retry loop
        return real_claim(db, delivery)

    monkeypatch.setattr(notify_service.storage, "claim_delivery", slow_claim)
    with webhook(200) as hook:
        stack, rpc = start(container_factory, fast(service_config, hook))
        with stack:
            _, item = left_unacknowledged(rpc, clock, "赵磊", "13800138010", "催收深圳华强北电子城货款")
            assert len(item["sms"]["attempts"]) == 1
            assert [body["to"] for _, body in hook.received] == ["+8613800138010"]


def test_user_without_phone_gets_no_sms_but_a_visible_reason(
        hook_and_services, clock):  # noqa: F811
    hook, rpc = hook_and_services
    _, item = left_unacknowledged(rpc, clock, "刘洋", None, "回访老客户", "skipped", minutes=1)
    assert item["sms"]["error"] == "the user has no phone number"
    assert hook.received == []


# --------------------------------------------------------------------------
# other services' events


def test_alarms_disputes_owner_changes_and_answers_reach_the_right_people(
        container_factory, service_config, clock, db_of):  # noqa: F811
    stack, rpc = start(container_factory, service_config)
    with stack:
        acc = rpc["accounts"]
        team = acc.create_team(ADMIN, {"name": "华南销售一部"})["id"]
        team2 = acc.create_team(ADMIN, {"name": "华北销售二部"})["id"]
        boss = make_user(acc, "王经理", role="manager", team_id=team)
        boss2 = make_user(acc, "孙经理", role="manager", team_id=team2)
        rep = make_user(acc, "张伟", team_id=team)
        rep2 = make_user(acc, "赵磊", team_id=team2)
        dispatch = event_dispatcher()
        alarm = event(alarm_id="al1", customer_id="c1", company_name="深圳市大疆创新科技有限公司",
                      owner_id=rep["id"], team_id=team, reason="客户连续三次拒接电话",
                      raised_by=rep["id"])
        dispatch("customers", "AlarmRaised", alarm)
        dispatch("customers", "AlarmRaised", alarm)  # delivered twice
        got = wait_for(lambda: inbox(rpc["notify"], boss), what="the manager's alarm")
        assert got[0]["kind"] == "alarm_raised"
        assert got[0]["title"] == "困难报警：深圳市大疆创新科技有限公司"
        assert got[0]["body"] == "客户连续三次拒接电话"
        dispatch("customers", "DisputeFiled", event(
            dispute_id="d1", customer_id="c1", company_name="深圳市大疆创新科技有限公司",
            claimant_id=rep2["id"], claimant_team_id=team2, owner_id=rep["id"], team_id=team,
            contact={"name": "李总", "title": "采购总监", "decision_level": 5}, note="我先联系的"))
        wait_for(lambda: len(inbox(rpc["notify"], boss)) == 2, what="the dispute")
        wait_for(lambda: inbox(rpc["notify"], boss2), what="the claimant's manager")
        dispatch("customers", "OwnerChanged", event(
            customer_id="c1", version=7, old_owner_id=rep["id"], new_owner_id=rep2["id"],
            old_team_id=team, new_team_id=team2, reason="dispute",
            company_name="深圳市大疆创新科技有限公司", stage=50, expected_value_fen=100,
            status="active", birthday=None, birthday_label="", birthday_kind="birthday"))
        dispatch("customers", "AlarmResolved", event(
            alarm_id="al1", customer_id="c1", company_name="深圳市大疆创新科技有限公司",
            owner_id=rep["id"], team_id=team, reason="客户连续三次拒接电话",
            decision="continue", note="下周再约", verified="real", resolved_by=boss["id"],
            new_owner_id=None))
        dispatch("knowledge", "AnswerPosted", event(
            question_id="q1", answer_id="a1", asker_id=rep["id"], author_id=boss["id"],
            title="如何应对客户压价？"))
        wait_for(lambda: len(inbox(rpc["notify"], rep)) == 3, what="the rep's three")
        kinds = {n["kind"]: n for n in inbox(rpc["notify"], rep)}
        assert set(kinds) == {"owner_changed", "alarm_resolved", "answer_posted"}
        assert kinds["owner_changed"]["title"] == "客户已转出：深圳市大疆创新科技有限公司"
        assert kinds["alarm_resolved"]["body"] == "处理结果：继续跟进\n下周再约"
        wait_for(lambda: inbox(rpc["notify"], rep2), what="the new owner's")
        assert inbox(rpc["notify"], rep2)[0]["title"] == "客户已转入：深圳市大疆创新科技有限公司"
        eventlet.sleep(0.5)
        assert len(inbox(rpc["notify"], boss)) == 2  # the repeated alarm shows once
        assert [n["kind"] for n in inbox(rpc["notify"], boss2)] == ["dispute_filed"]
        # reading
        first = inbox(rpc["notify"], rep)[0]
        assert rpc["notify"].mark_read(rep, first["id"])["read"] is True
        assert rpc["notify"].list_notifications(rep, {"unread": True})["total"] == 2
        with pytest.raises(NotFound):
            rpc["notify"].mark_read(rep2, first["id"])


def test_the_inbox_pages_by_cursor_through_notifications_of_the_same_moment(db_of):
    """Newest first, by creation time then id: a cursor after a notification
    that shares its time with others takes up exactly the ones after it."""
    db = db_of("notify")
    storage.ensure_indexes(db)
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    docs = [{"_id": f"n{i:02d}", "user_id": "u1", "key": f"k{i}", "read": i % 3 == 0,
             "created_at": at + timedelta(minutes=i // 4)} for i in range(13)]
    docs.append({"_id": "x1", "user_id": "u2", "key": "kx", "read": False, "created_at": at})
    db.notifications.insert_many(docs)
    want = [d["_id"] for d in sorted(docs[:13], key=lambda d: (d["created_at"], d["_id"]),
                                     reverse=True)]
    for unread, expect in ((None, want), (True, [i for i in want if int(i[1:]) % 3])):
        seen, after = [], None
        while True:
            page, total, more = storage.list_notifications(db, "u1", unread, 0, 3, after)
            assert total == len(expect)
            seen += [d["_id"] for d in page]
            if not more:
                break
            after = page[-1]["_id"]
        assert seen == expect
    with pytest.raises(storage.UnknownCursor):
        storage.list_notifications(db, "u1", None, 0, 3, "x1")  # someone else's
