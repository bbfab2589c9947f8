"""The scheduler over real RabbitMQ and FerretDB, with notify and accounts
running beside it; the clock is frozen and moved by the tests."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher

from services.accounts.service import AccountsService
from services.common.clock import FrozenClock, SystemClock, set_clock
from services.common.errors import Conflict, Invalid, NotFound
from services.common.events import event
from services.common.standalone import ServiceRpcClient
from services.notify.service import NotifyService
from services.scheduler import domain, storage
from services.scheduler.service import SchedulerService
from tests.waiting import wait_for

ADMIN = {"id": "bootstrap", "role": "admin", "team_id": None, "name": "", "username": "admin"}
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai


@pytest.fixture
def clock():
    frozen = FrozenClock(T0)
    set_clock(frozen)
    yield frozen
    set_clock(SystemClock())


@pytest.fixture
def fast_config(service_config):
    return {**service_config, "SCHEDULER_TICK_SECONDS": 0.05, "SMS_RETRY_TICK_SECONDS": 0.05,
            "SCHEDULER_LEASE_SECONDS": 5, "NOTIFY_USER_CACHE_SECONDS": 0}


@pytest.fixture
def services(container_factory, fast_config, clock):
    started = {}
    for cls in (AccountsService, SchedulerService, NotifyService):
        c = container_factory(cls, fast_config)
        c.start()
        started[cls.name] = c
    return started


@pytest.fixture
def rpc(services):
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(ServiceRpcClient(name))
               for name in ("accounts", "scheduler", "notify")}


def make_user(accounts, name, timezone="Asia/Shanghai", role="rep", team_id=None, phone=None):
    if team_id is None:
        team_id = accounts.create_team(ADMIN, {"name": f"{name}的团队"})["id"]
    body = {"username": f"u{time.monotonic_ns()}", "password": "日程-提醒-9xQ2v", "name": name,
            "role": role, "team_id": team_id, "timezone": timezone}
    if phone:
        body["phone"] = phone
    user = accounts.create_user(ADMIN, body)
    return {"id": user["id"], "role": role, "team_id": team_id, "name": name,
            "username": user["username"]}


def inbox(notify, actor):
    return notify.list_notifications(actor, {"page_size": 100})["items"]


# --------------------------------------------------------------------------
# reminders of a rep


def test_a_reminder_fires_once_at_its_time_and_lands_in_the_inbox(rpc, clock, db_of):
    rep = make_user(rpc["accounts"], "张伟")
    r = rpc["scheduler"].create_reminder(rep, {
        "title": "拜访深圳市腾讯计算机系统有限公司", "content": "带上报价单，找采购部刘经理",
        "due_at": (T0 + timedelta(minutes=30)).isoformat(), "escalate_after_minutes": 0})
    assert r["status"] == "pending" and r["kind"] == "event"
    assert r["due_at"] == "2026-03-02T01:30:00+00:00"
    eventlet.sleep(0.3)
    assert inbox(rpc["notify"], rep) == []  # not yet due
    clock.advance(minutes=30)
    items = wait_for(lambda: inbox(rpc["notify"], rep), what="the notification")
    assert len(items) == 1
    n = items[0]
    assert n["title"] == "拜访深圳市腾讯计算机系统有限公司"
    assert n["body"] == "带上报价单，找采购部刘经理"
    assert n["kind"] == "event" and not n["read"] and not n["acknowledged"]
    assert n["ref"]["reminder_id"] == r["id"] and n["ref"]["late"] is False
    assert n["sms"] is None  # escalate_after_minutes 0: never an SMS
    fired = rpc["scheduler"].get_reminder(rep, r["id"])
    assert fired["status"] == "fired" and fired["late"] is False
    eventlet.sleep(0.3)
    assert len(inbox(rpc["notify"], rep)) == 1
    assert db_of("scheduler").reminders.count_documents({"kind": "escalation"}) == 0


def test_editing_and_cancelling_only_while_pending_and_only_ones_own(rpc, clock):
    rep, other = make_user(rpc["accounts"], "李娜"), make_user(rpc["accounts"], "赵磊")
    s = rpc["scheduler"]
    r = s.create_reminder(rep, {"title": "给小米科技回电话", "due_at": "2026-03-02T10:00:00+08:00"})
    assert r["escalate_after_minutes"] is None  # follows the user's setting
    with pytest.raises(NotFound):
        s.update_reminder(other, r["id"], {"title": "偷改"})
    with pytest.raises(NotFound):
        s.get_reminder(other, r["id"])
    assert s.list_reminders(other, {})["total"] == 0
    moved = s.update_reminder(rep, r["id"], {"due_at": "2026-03-02T11:00:00+08:00",
                                             "escalate_after_minutes": 2.5})
    assert moved["due_at"] == "2026-03-02T03:00:00+00:00"
    assert moved["escalate_after_minutes"] == 2.5 and moved["title"] == "给小米科技回电话"
    with pytest.raises(Invalid) as err:
        s.update_reminder(rep, r["id"], {"due_at": "2026-03-01T10:00:00+08:00"})
    assert err.value.details["fields"] == {"due_at": "is in the past"}
    # the old time passes: nothing fires
    clock.advance(hours=1, minutes=30)
    eventlet.sleep(0.4)
    assert inbox(rpc["notify"], rep) == []
    gone = s.cancel_reminder(rep, r["id"])
    assert gone["status"] == "cancelled"
    with pytest.raises(Conflict) as err:
        s.update_reminder(rep, r["id"], {"title": "再改"})
    assert err.value.code == "not_pending"
    clock.advance(hours=2)
    eventlet.sleep(0.4)
    assert inbox(rpc["notify"], rep) == []
    listed = s.list_reminders(rep, {"status": "cancelled"})
    assert [x["id"] for x in listed["items"]] == [r["id"]]


def test_bad_input_names_the_field(rpc):
    rep = make_user(rpc["accounts"], "王芳")
    s = rpc["scheduler"]
    cases = [
        ({"title": "", "due_at": "2026-03-03T09:00:00+08:00"}, "title"),
        ({"title": "开会", "due_at": "2026-03-03T09:00:00"}, "due_at"),
        ({"title": "开会", "due_at": "明天上午"}, "due_at"),
        ({"title": "开会", "due_at": "2026-03-03T09:00:00+08:00",
          "escalate_after_minutes": -1}, "escalate_after_minutes"),
        ({"title": "开会", "due_at": "2026-03-03T09:00:00+08:00", "colour": "红"}, "colour"),
        ({"title": "开会", "due_at": "2025-03-03T09:00:00+08:00"}, "due_at"),
    ]
    for body, field in cases:
        with pytest.raises(Invalid) as err:
            s.create_reminder(rep, body)
        assert field in err.value.details["fields"], (body, err.value.details)
    assert s.list_reminders(rep, {})["total"] == 0  # nothing half-written


def test_a_reminder_due_while_the_scheduler_was_down_fires_late_at_start(
        container_factory, fast_config, clock, db_of):
    accounts = container_factory(AccountsService, fast_config)
    accounts.start()
    notify = container_factory(NotifyService, fast_config)
    notify.start()
    scheduler = container_factory(SchedulerService, fast_config)
    scheduler.start()
    with ServiceRpcClient("accounts") as acc, ServiceRpcClient("scheduler") as s, \
            ServiceRpcClient("notify") as n:
        rep = make_user(acc, "陈晨")
        r = s.create_reminder(rep, {"title": "周报", "due_at": "2026-03-02T10:00:00+08:00",
                                    "escalate_after_minutes": 0})
        scheduler.stop()
        clock.advance(hours=3)  # the scheduler is down while it falls due
        eventlet.sleep(0.3)
        assert inbox(n, rep) == []
        again = container_factory(SchedulerService, fast_config)
        again.start()
        item = wait_for(lambda: inbox(n, rep), what="the late notification")[0]
        assert item["ref"]["late"] is True
        assert s.get_reminder(rep, r["id"])["late"] is True


# --------------------------------------------------------------------------
# many instances


class DueProbe:
    """Counts every ReminderDue the broker delivers (a dispatch counter)."""

    name = "due_probe"
    seen: Counter = Counter()

    @event_handler("scheduler", "ReminderDue")
    def on_reminder_due(self, payload):
        DueProbe.seen[payload["reminder_id"]] += 1


def test_two_scheduler_instances_fire_each_of_500_reminders_exactly_once(
        container_factory, fast_config, clock, db_of):
    DueProbe.seen.clear()
    config = {**fast_config, "SCHEDULER_BATCH": 50}
    probe = container_factory(DueProbe, config)
    probe.start()
    notify = container_factory(NotifyService, config)
    notify.start()
    accounts = container_factory(AccountsService, config)
    accounts.start()
    first = container_factory(SchedulerService, config)
    first.start()  # creates the indexes and queues
    first.stop()
    reminders = db_of("scheduler").reminders
    queue = db_of("scheduler").queue
    docs = []
    for i in range(500):
        due = T0 - timedelta(seconds=i % 60)
        docs.append({"_id": f"r{i:04d}", "user_id": f"user{i % 7}", "kind": "event",
                     "title": f"电话回访客户{i}", "content": "", "due_at": due,
                     "customer_id": None, "escalate_after_minutes": 0, "status": "pending",
                     "created_at": T0 - timedelta(hours=1), "updated_at": T0})
    reminders.insert_many(docs)
    queue.insert_many([storage.queue_entry(d["_id"], d["due_at"]) for d in docs])
    a = container_factory(SchedulerService, config)
    b = container_factory(SchedulerService, config)
    pool = eventlet.GreenPool(2)
    pool.spawn(a.start)
    pool.spawn(b.start)
    pool.waitall()
    notifications = db_of("notify").notifications
    wait_for(lambda: notifications.count_documents({}) >= 500, timeout=120,
             what="500 notifications")
    eventlet.sleep(1)
    assert notifications.count_documents({}) == 500
    assert len(DueProbe.seen) == 500
    assert max(DueProbe.seen.values()) == 1  # no reminder was dispatched twice
    assert db_of("scheduler").firings.count_documents({}) == 500


# --------------------------------------------------------------------------
# birthdays and anniversaries from customer events


def customer_event(dispatch, event_type, **payload):
    dispatch("customers", event_type, event(**payload))


def created(customer_id, owner, birthday, version=1, kind="birthday", company="北京小米科技有限责任公司"):
    return dict(customer_id=customer_id, version=version, company_name=company,
                owner_id=owner["id"], team_id=owner["team_id"], stage=25,
                expected_value_fen=5_000_000, status="active", birthday=birthday,
                birthday_label="雷总生日" if kind == "birthday" else "公司成立纪念日",
                birthday_kind=kind, referred_by=None, created_by=owner["id"])


def birthday_reminders(db_of, customer_id, **flt):
    """Stored reminders; a fired one (it has a firing record) counts as
    fired, whatever its stored status."""
    db = db_of("scheduler")
    docs = []
    for d in db.reminders.find({"customer_id": customer_id,
                                "kind": {"$in": ["birthday", "anniversary"]}}):
        if d["status"] == "pending" and db.firings.find_one({"_id": d["_id"]}):
            d["status"] = "fired"
        if all(d.get(k) == v for k, v in flt.items()):
            docs.append(d)
    return sorted(docs, key=lambda d: d["due_at"])


def test_birthday_reminders_follow_the_customer_across_owners_and_time_zones(
        rpc, clock, db_of, fast_config):
    clock.advance(days=270)  # 2026-11-27
    acc = rpc["accounts"]
    rep = make_user(acc, "张伟", timezone="Asia/Shanghai")
    rep2 = make_user(acc, "Linda Wang", timezone="America/New_York", team_id=rep["team_id"])
    acc.update_settings(rep2, {"birthday_lead_days": 3})
    dispatch = event_dispatcher()
    customer_event(dispatch, "CustomerCreated", **created("c-xiaomi", rep, "01-01"))
    due = wait_for(lambda: birthday_reminders(db_of, "c-xiaomi"), what="a birthday reminder")
    assert len(due) == 1
    # 2 days ahead of Jan 1st, 09:00 in Shanghai
    assert due[0]["due_at"] == datetime(2026, 12, 30, 1, 0, tzinfo=UTC)
    assert due[0]["user_id"] == rep["id"] and due[0]["title"] == "客户生日：北京小米科技有限责任公司"
    # the customer goes to rep2 in New York, who wants 3 days' notice
    customer_event(dispatch, "OwnerChanged", customer_id="c-xiaomi", version=3,
                   old_owner_id=rep["id"], new_owner_id=rep2["id"], old_team_id=rep["team_id"],
                   new_team_id=rep["team_id"], reason="reassign",
                   company_name="北京小米科技有限责任公司", stage=25,
                   expected_value_fen=5_000_000, status="active", birthday="01-01",
                   birthday_label="雷总生日", birthday_kind="birthday")
    wait_for(lambda: birthday_reminders(db_of, "c-xiaomi", status="pending", user_id=rep2["id"]),
             what="the new owner's reminder")
    pending = birthday_reminders(db_of, "c-xiaomi", status="pending")
    assert len(pending) == 1
    assert pending[0]["due_at"] == datetime(2026, 12, 29, 14, 0, tzinfo=UTC)  # 09:00 EST
    assert birthday_reminders(db_of, "c-xiaomi", user_id=rep["id"])[0]["status"] == "cancelled"
    # a late, older amendment changes nothing
    customer_event(dispatch, "CustomerAmended", **{**created("c-xiaomi", rep, "06-18", 2),
                   "changes": {"birthday": {"before": "01-01", "after": "06-18"}},
                   "amended_by": "mgr"})
    eventlet.sleep(0.5)
    assert [d["due_at"] for d in birthday_reminders(db_of, "c-xiaomi", status="pending")] == [
        datetime(2026, 12, 29, 14, 0, tzinfo=UTC)]
    # it fires across the year end for rep2, and next year's is scheduled
    clock.advance(days=33)
    def greetings(user):
        return [n for n in inbox(rpc["notify"], user) if n["kind"] == "birthday"]

    item = wait_for(lambda: greetings(rep2), what="rep2's birthday notification")[0]
    assert "1月1日" in item["body"] and item["ref"]["customer_id"] == "c-xiaomi"
    # both reps heard of the owner change; only the new owner gets the greeting
    assert {n["kind"] for n in inbox(rpc["notify"], rep)} == {"owner_changed"}
    nxt = wait_for(lambda: birthday_reminders(db_of, "c-xiaomi", status="pending"),
                   what="next year's reminder")
    assert [d["due_at"] for d in nxt] == [datetime(2027, 12, 29, 14, 0, tzinfo=UTC)]
    # abandoned to the pool: no more greetings
    customer_event(dispatch, "CustomerAbandoned", customer_id="c-xiaomi", version=4,
                   owner_id=rep2["id"], team_id=rep["team_id"],
                   company_name="北京小米科技有限责任公司", stage=25,
                   expected_value_fen=5_000_000, status="pool")
    wait_for(lambda: not birthday_reminders(db_of, "c-xiaomi", status="pending"),
             what="the cancellation")


def test_feb_29_anniversary_falls_on_feb_28_then_feb_29_in_a_leap_year(rpc, clock, db_of):
    clock.advance(days=300)  # 2026-12-27
    rep = make_user(rpc["accounts"], "孙丽", timezone="Asia/Shanghai")
    rpc["accounts"].update_settings(rep, {"birthday_lead_days": 0})
    dispatch = event_dispatcher()
    customer_event(dispatch, "CustomerCreated",
                   **created("c-leap", rep, "02-29", kind="anniversary", company="上海闰年贸易有限公司"))
    first = wait_for(lambda: birthday_reminders(db_of, "c-leap"), what="the anniversary")
    assert [d["due_at"] for d in first] == [datetime(2027, 2, 28, 1, 0, tzinfo=UTC)]
    assert first[0]["kind"] == "anniversary"
    clock.advance(days=63)  # 2027-02-28 09:00 Shanghai has passed
    wait_for(lambda: inbox(rpc["notify"], rep), what="the anniversary notification")
    nxt = wait_for(lambda: birthday_reminders(db_of, "c-leap", status="pending"),
                   what="next year's")
    assert [d["due_at"] for d in nxt] == [datetime(2028, 2, 29, 1, 0, tzinfo=UTC)]
    # the same event again (at-least-once delivery) adds nothing
    customer_event(dispatch, "CustomerCreated",
                   **created("c-leap", rep, "02-29", kind="anniversary", company="上海闰年贸易有限公司"))
    eventlet.sleep(0.5)
    assert len(birthday_reminders(db_of, "c-leap", status="pending")) == 1


def test_a_reminder_being_fired_answers_busy_and_a_null_due_at_is_refused(rpc, clock, db_of):
    rep = make_user(rpc["accounts"], "周杰")
    s = rpc["scheduler"]
    r = s.create_reminder(rep, {"title": "给京东方科技集团回电话",
                                "due_at": "2026-03-02T11:00:00+08:00"})
    with pytest.raises(Invalid) as err:
        s.update_reminder(rep, r["id"], {"due_at": None})
    assert "due_at" in err.value.details["fields"]
    # the firing loop of another instance holds the reminder's lock
    db_of("scheduler").locks.insert_one({"_id": r["id"], "owner": "other-host:1:fire",
                                         "until": T0 + timedelta(hours=1)})
    with pytest.raises(Conflict) as err:
        s.update_reminder(rep, r["id"], {"title": "改成明天"})
    assert type(err.value) is Conflict and err.value.code == "busy"
    with pytest.raises(Conflict) as err:
        s.cancel_reminder(rep, r["id"])
    assert err.value.code == "busy"
    db_of("scheduler").locks.delete_one({"_id": r["id"]})
    assert s.get_reminder(rep, r["id"])["status"] == "pending"


def test_an_owner_change_leaves_the_old_owner_the_greeting_he_already_got(rpc, clock, db_of):
    clock.advance(days=270)  # 2026-11-27
    acc = rpc["accounts"]
    rep = make_user(acc, "黄磊")
    rep2 = make_user(acc, "吴敏", team_id=rep["team_id"])
    dispatch = event_dispatcher()
    customer_event(dispatch, "CustomerCreated", **created("c-gree", rep, "01-01",
                                                          company="珠海格力电器股份有限公司"))
    [first] = wait_for(lambda: birthday_reminders(db_of, "c-gree"), what="a birthday reminder")
    clock.advance(days=33)  # 2026-12-30 09:00 Shanghai: it fires for 黄磊

    def greetings(user):
        return [n for n in inbox(rpc["notify"], user) if n["kind"] == "birthday"]

    [his] = wait_for(lambda: greetings(rep), what="黄磊's greeting")
    clock.advance(days=1)
    customer_event(dispatch, "OwnerChanged", customer_id="c-gree", version=2,
                   old_owner_id=rep["id"], new_owner_id=rep2["id"], old_team_id=rep["team_id"],
                   new_team_id=rep["team_id"], reason="reassign",
                   company_name="珠海格力电器股份有限公司", stage=25,
                   expected_value_fen=5_000_000, status="active", birthday="01-01",
                   birthday_label="雷总生日", birthday_kind="birthday")
    # the birthday is tomorrow: 吴敏 hears of it at once, not next year
    [hers] = wait_for(lambda: greetings(rep2), what="吴敏's greeting")
    assert "1月1日（1 天后）" in hers["body"]
    assert rpc["scheduler"].get_reminder(rep, first["_id"])["status"] == "fired"
    rpc["notify"].acknowledge(rep, his["id"])
    wait_for(lambda: rpc["scheduler"].get_reminder(rep, first["_id"])["status"] == "acknowledged",
             what="黄磊's ack to reach his reminder")


def test_reminders_page_by_cursor_through_reminders_due_at_the_same_time(db_of):
    """Soonest first, by due time then id, over the user kinds: a cursor
    after a reminder that shares its due time with others takes up exactly
    the ones after it; another user's reminder is no cursor."""
    db = db_of("scheduler")
    storage.ensure_indexes(db)
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    kinds = ["event", "revisit", "birthday", "anniversary", "escalation"]
    docs = [{"_id": f"r{i:02d}", "user_id": "u1", "kind": kinds[i % 5], "status": "pending",
             "title": "回访", "due_at": at + timedelta(hours=i // 3)} for i in range(16)]
    docs.append({"_id": "x1", "user_id": "u2", "kind": "event", "status": "pending",
                 "title": "别人的", "due_at": at})
    db.reminders.insert_many(docs)
    flt = domain.list_filter("u1", {})
    want = [d["_id"] for d in sorted(docs[:16], key=lambda d: (d["due_at"], d["_id"]))
            if d["kind"] != "escalation"]
    seen, after = [], None
    while True:
        page, total, more = storage.list_reminders(db, flt, 0, 4, after)
        assert total == len(want)
        seen += [d["_id"] for d in page]
        if not more:
            break
        after = page[-1]["_id"]
    assert seen == want
    with pytest.raises(storage.UnknownCursor):
        storage.list_reminders(db, flt, 0, 4, "x1")
