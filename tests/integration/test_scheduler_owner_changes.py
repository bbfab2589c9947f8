"""Reminders follow the customer, over real RabbitMQ and FerretDB: customers,
accounts, scheduler and notify in-process, SMS to a local webhook, the clock
frozen and moved by the tests. After an owner change the old owner gets no
reminder and no SMS about the customer; its new owner gets them."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import eventlet
from nameko.standalone.events import event_dispatcher

from services.accounts.service import AccountsService
from services.common.events import event
from services.common.standalone import ServiceRpcClient
from services.customers.service import CustomersService
from services.notify.service import NotifyService
from services.scheduler.service import SchedulerService
from tests.integration.test_notify import fast, webhook
from tests.integration.test_scheduler import (
    ADMIN,
    T0,
    clock,  # noqa: F401 - fixture
    inbox,
    make_user,
    wait_for,
)

NAMES = ("accounts", "customers", "scheduler", "notify")
ZHANG_PHONE, LI_PHONE = "13812345678", "13987654321"
CONTACT_PHONE = "13800001111"


@contextlib.contextmanager
def running(container_factory, config):
    for cls in (AccountsService, CustomersService, SchedulerService, NotifyService):
        container_factory(cls, config).start()
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(ServiceRpcClient(name)) for name in NAMES}


def team_of_three(rpc):
    acc = rpc["accounts"]
    team = acc.create_team(ADMIN, {"name": "华南销售一部"})["id"]
    boss = make_user(acc, "王经理", role="manager", team_id=team)
    zhang = make_user(acc, "张伟", team_id=team, phone=ZHANG_PHONE)
    li = make_user(acc, "李娜", team_id=team, phone=LI_PHONE)
    return boss, zhang, li


def huaqiang(rpc, owner):
    return rpc["customers"].create(owner, {
        "company_name": "深圳市华强电子有限公司", "phones": ["0755-83216666"],
        "contacts": [{"name": "陈志强", "title": "采购总监", "phone": CONTACT_PHONE,
                      "decision_level": 4}]})


def reminder_items(notify, user, rid):
    return [n for n in inbox(notify, user) if n["ref"].get("reminder_id") == rid]


def sms_to(hook, phone):
    return [body for _, body in hook.received if body["to"] == "+86" + phone]


def sms_state(rpc, user, notification):
    return rpc["notify"].get_notification(user, notification["id"])["sms"]


def told_of_the_change(rpc, user, title):
    """The user's inbox shows the owner change: notify has taken it in."""
    return wait_for(lambda: [n for n in inbox(rpc["notify"], user)
                             if n["kind"] == "owner_changed" and n["title"] == title],
                    what=title)


def test_reassigned_the_revisit_and_reminder_fire_to_the_new_owner_and_the_old_one_gets_no_sms(
        container_factory, service_config, clock):  # noqa: F811
    with webhook(200) as hook, running(container_factory, fast(
            service_config, hook, NOTIFY_USER_CACHE_SECONDS=0)) as rpc:
        s, n = rpc["scheduler"], rpc["notify"]
        boss, zhang, li = team_of_three(rpc)
        c = huaqiang(rpc, zhang)
        # 张伟's revisit that fires now and that he leaves unacknowledged
        fired = s.create_revisit(zhang, c["id"], {
            "at": (T0 + timedelta(minutes=5)).isoformat(), "contact_name": "陈志强",
            "note": f"陈总手机 {CONTACT_PHONE}", "escalate_after_minutes": 10})
        later = s.create_revisit(zhang, c["id"], {
            "at": (T0 + timedelta(hours=1)).isoformat(), "contact_name": "陈志强",
            "note": "问问样品测试结果", "escalate_after_minutes": 1})
        quote = s.create_reminder(zhang, {"title": "给华强报价", "customer_id": c["id"],
                                          "due_at": (T0 + timedelta(hours=2)).isoformat()})
        # his manager's own note about the customer is his, whoever owns it
        note = s.create_reminder(boss, {"title": "检查华强的合同", "customer_id": c["id"],
                                        "due_at": (T0 + timedelta(hours=2)).isoformat(),
                                        "escalate_after_minutes": 0})
        clock.advance(minutes=5)
        [shown] = wait_for(lambda: reminder_items(n, zhang, fired["id"]), what="张伟's revisit")
        assert sms_state(rpc, zhang, shown)["status"] == "scheduled"

        # the manager resolves 张伟's difficulty alarm: the customer goes to 李娜
        alarm = rpc["customers"].raise_alarm(zhang, c["id"], {"reason": "客户要求换人对接"})
        rpc["customers"].resolve_alarm(boss, alarm["id"], {
            "decision": "reassign", "note": "转给李娜", "verified": "real",
            "new_owner_id": li["id"]})
        wait_for(lambda: {x["id"] for x in s.list_reminders(li, {})["items"]} == {
            later["id"], quote["id"]}, what="the reminders moved to 李娜")
        told_of_the_change(rpc, zhang, "客户已转出：深圳市华强电子有限公司")
        assert [x["id"] for x in s.list_reminders(zhang, {})["items"]] == [fired["id"]]
        moved = s.get_reminder(li, later["id"])
        assert moved["due_at"] == later["due_at"] and moved["escalate_after_minutes"] == 1
        assert moved["title"] == "回访 深圳市华强电子有限公司（陈志强）"

        # the SMS of the revisit 张伟 left unacknowledged is not sent
        clock.advance(minutes=10)
        withheld = wait_for(lambda: (x := sms_state(rpc, zhang, shown))["status"] == "cancelled"
                            and x, what="the SMS withheld")
        assert "changed hands" in withheld["error"] and withheld["attempts"] == []

        # the revisit fires to 李娜, who gets the SMS when she leaves it
        clock.advance(minutes=45)
        [hers] = wait_for(lambda: reminder_items(n, li, later["id"]), what="李娜's revisit")
        assert hers["kind"] == "revisit" and "问问样品测试结果" in hers["body"]
        clock.advance(minutes=1)
        [text] = wait_for(lambda: sms_to(hook, LI_PHONE), what="李娜's SMS")
        assert text["text"] == "【销售CRM】03-02 10:00 提醒未确认：回访 深圳市华强电子有限公司。请登录系统确认。"
        clock.advance(hours=1)
        wait_for(lambda: reminder_items(n, li, quote["id"]), what="李娜's quote reminder")
        wait_for(lambda: reminder_items(n, boss, note["id"]), what="王经理's own note")
        eventlet.sleep(0.5)
        for rid in (later["id"], quote["id"]):
            assert reminder_items(n, zhang, rid) == []
        assert sms_to(hook, ZHANG_PHONE) == []
        assert all(CONTACT_PHONE not in body["text"] and "陈志强" not in body["text"]
                   for _, body in hook.received)


def test_a_redelivered_or_older_owner_change_moves_nothing_back(
        container_factory, service_config, clock):  # noqa: F811
    with webhook(200) as hook, running(container_factory, fast(service_config, hook)) as rpc:
        s, n = rpc["scheduler"], rpc["notify"]
        boss, zhang, li = team_of_three(rpc)
        c = huaqiang(rpc, zhang)
        r = s.create_revisit(zhang, c["id"], {
            "at": (T0 + timedelta(hours=1)).isoformat(), "contact_name": "陈志强",
            "escalate_after_minutes": 1})
        alarm = rpc["customers"].raise_alarm(zhang, c["id"], {"reason": "客户要求换人对接"})
        rpc["customers"].resolve_alarm(boss, alarm["id"], {
            "decision": "reassign", "note": "转给李娜", "verified": "real",
            "new_owner_id": li["id"]})
        wait_for(lambda: s.list_reminders(li, {})["total"] == 1, what="moved to 李娜")
        told_of_the_change(rpc, zhang, "客户已转出：深圳市华强电子有限公司")
        now_at = rpc["customers"].get_customer(boss, c["id"])["version"]
        dispatch = event_dispatcher()

        def owner_changed(version, old, new):
            return event(customer_id=c["id"], version=version, old_owner_id=old["id"],
                         new_owner_id=new["id"], old_team_id=old["team_id"],
                         new_team_id=new["team_id"], reason="reassign",
                         company_name=c["company_name"], stage=0, expected_value_fen=None,
                         status="active", birthday=None, birthday_label=None,
                         birthday_kind=None, changed_by=boss["id"])

        # the change delivered again, and an older one (back to 张伟) late
        dispatch("customers", "OwnerChanged", owner_changed(now_at, zhang, li))
        dispatch("customers", "OwnerChanged", owner_changed(now_at - 1, li, zhang))
        eventlet.sleep(1)  # both handled (and ignored) by now
        assert s.list_reminders(zhang, {})["total"] == 0
        assert s.get_reminder(li, r["id"])["status"] == "pending"
        clock.advance(hours=1)
        [hers] = wait_for(lambda: reminder_items(n, li, r["id"]), what="李娜's revisit")
        clock.advance(minutes=1)
        wait_for(lambda: sms_to(hook, LI_PHONE), what="李娜's SMS")
        assert sms_to(hook, ZHANG_PHONE) == []
        assert reminder_items(n, zhang, r["id"]) == []


def test_to_the_pool_revisits_are_cancelled_and_a_queued_sms_retry_is_dropped(
        container_factory, service_config, clock, db_of):  # noqa: F811
    # the SMS gateway fails: the first attempt leaves a retry queued
    with webhook(500) as hook, running(container_factory, fast(
            service_config, hook, SMS_BASE_DELAY_SECONDS=30)) as rpc:
        s, n = rpc["scheduler"], rpc["notify"]
        boss, zhang, _ = team_of_three(rpc)
        c = huaqiang(rpc, zhang)
        fired = s.create_revisit(zhang, c["id"], {
            "at": (T0 + timedelta(minutes=5)).isoformat(), "contact_name": "陈志强",
            "escalate_after_minutes": 1})
        later = s.create_revisit(zhang, c["id"], {
            "at": (T0 + timedelta(days=1)).isoformat(), "contact_name": "陈志强"})
        clock.advance(minutes=5)
        [shown] = wait_for(lambda: reminder_items(n, zhang, fired["id"]), what="the revisit")
        clock.advance(minutes=1)
        retrying = wait_for(lambda: (x := sms_state(rpc, zhang, shown))["status"] == "retrying"
                            and x, what="a retry queued")
        assert len(retrying["attempts"]) == 1
        # 张伟 gives the customer up to the public pool
        alarm = rpc["customers"].raise_alarm(zhang, c["id"], {"reason": "客户已经倒闭"})
        rpc["customers"].resolve_alarm(boss, alarm["id"], {
            "decision": "abandon", "note": "放弃", "verified": "real"})
        rpc["customers"].abandon_customer(zhang, c["id"])
        gone = wait_for(lambda: (x := s.get_reminder(zhang, later["id"]))["status"] == "cancelled"
                        and x, what="the revisit cancelled")
        assert gone["cancel_reason"] == "customer_pooled"
        wait_for(lambda: db_of("notify").owners.find_one({"_id": c["id"], "owner_id": None}),
                 what="notify hearing of the pool")
        # the retry falls due: dropped, not sent
        clock.advance(minutes=5)
        dropped = wait_for(lambda: (x := sms_state(rpc, zhang, shown))["status"] == "cancelled"
                           and x, what="the retry dropped")
        assert len(dropped["attempts"]) == 1 and "changed hands" in dropped["error"]
        clock.advance(days=1)
        eventlet.sleep(0.6)
        assert len(hook.received) == 1  # the one failed attempt before the change
        assert reminder_items(n, zhang, later["id"]) == []


def test_a_burst_of_owner_changes_moves_every_customers_revisit_once(
        container_factory, service_config, clock, db_of):  # noqa: F811
    """A handover emits one OwnerChanged per customer, in a burst, some
    twice: each revisit ends with the new owner, moved once."""
    with webhook(200) as hook, running(container_factory, fast(service_config, hook)) as rpc:
        s = rpc["scheduler"]
        _, zhang, li = team_of_three(rpc)
        n_customers = 30
        customers, revisits = [], []
        for i in range(n_customers):
            c = rpc["customers"].create(zhang, {"company_name": f"东莞恒通精密机械{i}号厂"})
            customers.append(c)
            revisits.append(s.create_revisit(zhang, c["id"], {
                "at": (T0 + timedelta(days=1, minutes=i)).isoformat(), "contact_name": "刘厂长"}))
        dispatch = event_dispatcher()
        for c in customers + customers[::3]:
            dispatch("customers", "OwnerChanged", event(
                customer_id=c["id"], version=c["version"] + 1, old_owner_id=zhang["id"],
                new_owner_id=li["id"], reason="handover", company_name=c["company_name"],
                status="active", changed_by="u-admin"))
        wait_for(lambda: s.list_reminders(li, {"page_size": 100})["total"] == n_customers,
                 timeout=60, what="every revisit moved")
        docs = list(db_of("scheduler").reminders.find({"kind": "revisit"}))
        assert {d["user_id"] for d in docs} == {li["id"]}
        assert all(d["moved_from"] == [zhang["id"]] for d in docs)
        assert s.list_reminders(zhang, {})["total"] == 0
        assert hook.received == []


def test_the_old_owners_unacknowledged_birthday_greeting_sends_no_sms_the_new_owners_does(
        container_factory, service_config, clock):  # noqa: F811
    with webhook(200) as hook, running(container_factory, fast(
            service_config, hook, NOTIFY_USER_CACHE_SECONDS=0)) as rpc:
        n = rpc["notify"]
        boss, zhang, li = team_of_three(rpc)
        # 陈总's birthday is tomorrow (T0 is 03-02 09:00 in Shanghai): inside
        # the two days' lead, 张伟 is told at once
        c = rpc["customers"].create(zhang, {
            "company_name": "深圳市华强电子有限公司", "birthday": "03-03",
            "birthday_label": "陈总生日"})

        def greetings(user):
            return [x for x in inbox(n, user) if x["kind"] == "birthday"]

        [his] = wait_for(lambda: greetings(zhang), what="张伟's greeting")
        assert sms_state(rpc, zhang, his)["status"] == "scheduled"  # his default, 10 min
        alarm = rpc["customers"].raise_alarm(zhang, c["id"], {"reason": "客户要求换人对接"})
        rpc["customers"].resolve_alarm(boss, alarm["id"], {
            "decision": "reassign", "note": "转给李娜", "verified": "real",
            "new_owner_id": li["id"]})
        told_of_the_change(rpc, zhang, "客户已转出：深圳市华强电子有限公司")
        [hers] = wait_for(lambda: greetings(li), what="李娜's greeting")
        clock.advance(minutes=10)
        wait_for(lambda: sms_to(hook, LI_PHONE), what="李娜's SMS")
        withheld = wait_for(lambda: (x := sms_state(rpc, zhang, his))["status"] == "cancelled"
                            and x, what="张伟's SMS withheld")
        assert "changed hands" in withheld["error"]
        eventlet.sleep(0.5)
        assert sms_to(hook, ZHANG_PHONE) == []
        assert sms_state(rpc, li, hers)["status"] == "sent"
