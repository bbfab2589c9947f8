"""The scheduler service's steps (firing, editing, birthday series) one by one,
on a real FerretDB database of the test's own, with the clock and accounts
injected (no broker: the steps are called directly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import nameko
import pytest
from nameko.exceptions import deserialize, serialize
from nameko.testing.services import worker_factory

from services.common.clock import FrozenClock
from services.common.credentials import Caller
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.rpc import Unavailable
from services.scheduler import service as scheduler_service
from services.scheduler import storage
from services.scheduler.service import SchedulerService

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
ZHANG = {"id": "u-zhangwei", "role": "rep", "team_id": "t1", "name": "张伟"}
LI = {"id": "u-lina", "role": "rep", "team_id": "t1", "name": "李娜"}


class TickingClock(FrozenClock):
    """Moves `step` forward after every reading: a tick that takes time."""

    def __init__(self, at, step):
        super().__init__(at)
        self.step = step

    def now(self):
        at = self._at
        self._at += self.step
        return at


_db = {}


class AS_A_SERVICE:  # noqa: N801 - the verified caller of these direct calls
    address = None

    @staticmethod
    def verify():
        return Caller("service", service="tests")


@pytest.fixture(autouse=True)
def _scheduler_db(db_of):
    db = db_of("scheduler")
    storage.ensure_indexes(db)
    _db["db"] = db
    yield
    _db.clear()


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch):
    monkeypatch.setattr(scheduler_service, "LOCK_RETRY_SECONDS", 0)
    monkeypatch.setattr(SchedulerService, "_last_recovery", {"at": 0.0})


def make_scheduler(clock, settings=None):
    """`settings`: user id -> his stored settings (changed by the test)."""
    settings = {} if settings is None else settings
    svc = worker_factory(SchedulerService, db=_db["db"], clock=clock, caller=AS_A_SERVICE)
    svc.accounts.get_users.side_effect = lambda ids: {
        i: {"id": i, "settings": settings.get(i, {})} for i in ids}
    return svc


def due_events(svc):
    return [call.args[1] for call in svc.dispatch.call_args_list
            if call.args[0] == "ReminderDue"]


# --------------------------------------------------------------------------
# a reminder being fired is busy, and says so with a 409


def test_a_reminder_locked_by_the_firing_loop_answers_busy_as_a_conflict_over_rpc():
    clock = FrozenClock(T0)
    svc = make_scheduler(clock)
    r = svc.create_reminder(ZHANG, {"title": "给华为技术有限公司王经理回电话",
                                    "due_at": (T0 + timedelta(hours=1)).isoformat()})
    svc.db.locks.insert_one({"_id": r["id"], "owner": "other-instance:fire",
                             "until": T0 + timedelta(seconds=30)})
    for attempt in (lambda: svc.update_reminder(ZHANG, r["id"], {"title": "改期"}),
                    lambda: svc.cancel_reminder(ZHANG, r["id"])):
        with pytest.raises(Conflict) as err:
            attempt()
        # what the gateway gets back over RPC: a Conflict (409), not a
        # RemoteError (500) of a class only the scheduler knows
        back = deserialize(serialize(err.value))
        assert type(back) is Conflict
        assert back.code == "busy" and back.status == 409
    assert svc.get_reminder(ZHANG, r["id"])["status"] == "pending"


# --------------------------------------------------------------------------
# PATCH with a null due_at


def test_patch_with_a_null_due_at_is_a_422_naming_the_field():
    clock = FrozenClock(T0)
    svc = make_scheduler(clock)
    r = svc.create_reminder(ZHANG, {"title": "拜访上海浦东发展银行",
                                    "due_at": (T0 + timedelta(hours=2)).isoformat()})
    with pytest.raises(Invalid) as err:
        svc.update_reminder(ZHANG, r["id"], {"due_at": None, "title": "拜访浦发银行"})
    assert "due_at" in err.value.details["fields"]
    kept = svc.get_reminder(ZHANG, r["id"])
    assert kept["due_at"] == r["due_at"] and kept["title"] == "拜访上海浦东发展银行"
    # leaving it out keeps the time
    moved = svc.update_reminder(ZHANG, r["id"], {"title": "拜访浦发银行"})
    assert moved["due_at"] == r["due_at"] and moved["title"] == "拜访浦发银行"


# --------------------------------------------------------------------------
# a long tick: each firing reads the clock


def test_a_long_batch_fires_each_at_its_own_time_and_none_late_in_its_lease(monkeypatch):
    # A backlog of three, due 40 s before T0; every reading of the clock is
    # 6 s after the last (a slow batch). The lease is 30 s.
    clock = TickingClock(T0, timedelta(seconds=6))
    svc = make_scheduler(clock)
    due = T0 - timedelta(seconds=40)
    for i, who in enumerate(("刘洋", "陈静", "杨帆")):
        svc.db.reminders.insert_one({
            "_id": f"r-{i}", "user_id": ZHANG["id"], "kind": "event", "title": f"回访{who}",
            "content": "", "due_at": due, "customer_id": None, "escalate_after_minutes": 0,
            "status": "pending", "created_at": T0 - timedelta(days=1), "updated_at": T0})
        svc.db.queue.insert_one(storage.queue_entry(f"r-{i}", due))
    leases = {}
    real_lock = scheduler_service.storage.try_lock_many

    def try_lock_many(db, keys, owner, until):
        got = real_lock(db, keys, owner, until)
        leases.update({k: until for k in got})
        return got

    monkeypatch.setattr(scheduler_service.storage, "try_lock_many", try_lock_many)
    # locked at T0+6 (until T0+36): firings start at T0+18 and T0+24; the
    # third would start at T0+30, in the lease's last third, so it waits
    assert svc.fire_due() == 2
    assert svc.db.locks.count_documents({}) == 0  # the batch let go of all three
    assert svc.fire_due() == 1  # locked afresh at T0+42, fired at T0+54

    fired = {e["reminder_id"]: e for e in due_events(svc)}
    assert len(fired) == 3
    fired_at = sorted(datetime.fromisoformat(e["fired_at"]) for e in fired.values())
    assert fired_at == [T0 + timedelta(seconds=s) for s in (18, 24, 54)]
    # late (more than 60 s after due) is what the user saw, not the batch's start
    assert sorted(e["late"] for e in fired.values()) == [False, True, True]
    for rid, event in fired.items():
        at = datetime.fromisoformat(event["fired_at"])
        assert at < leases[rid] - timedelta(seconds=10)
        assert svc.get_reminder(ZHANG, rid)["fired_at"] == event["fired_at"]
    assert svc.db.queue.count_documents({}) == 0  # served entries are gone


def test_a_backlog_is_taken_a_few_batches_a_tick_earliest_first():
    clock = FrozenClock(T0)
    svc = make_scheduler(clock)
    for i in range(10):  # r-0 the earliest, due ten minutes ago
        due = T0 - timedelta(minutes=10 - i)
        svc.db.reminders.insert_one({
            "_id": f"r-{i}", "user_id": ZHANG["id"], "kind": "event", "title": f"回访客户{i}",
            "content": "", "due_at": due, "customer_id": None, "escalate_after_minutes": 0,
            "status": "pending", "created_at": T0 - timedelta(days=1), "updated_at": T0})
        svc.db.queue.insert_one(storage.queue_entry(f"r-{i}", due))
    with nameko.config.patch({"SCHEDULER_BATCH": 1}):  # four entries a tick
        assert svc.fire_due() == 4
        assert {e["reminder_id"] for e in due_events(svc)} == {f"r-{i}" for i in range(4)}
        assert svc.fire_due() == 4
        assert svc.fire_due() == 2
        assert svc.fire_due() == 0
    assert sorted(e["reminder_id"] for e in due_events(svc)) == [f"r-{i}" for i in range(10)]


def test_the_queue_of_an_earlier_build_is_converted_once_and_fires():
    clock = FrozenClock(T0)
    svc = make_scheduler(clock)
    db = svc.db
    db.meta.delete_many({})  # a database the earlier build wrote
    due = T0 - timedelta(seconds=30)
    for i, status in enumerate(("pending", "pending", "cancelled")):
        db.reminders.insert_one({
            "_id": f"old-{i}", "user_id": ZHANG["id"], "kind": "event", "title": f"旧提醒{i}",
            "content": "", "due_at": due, "customer_id": None, "escalate_after_minutes": 0,
            "status": status, "created_at": T0 - timedelta(days=1), "updated_at": T0})
    db.queue.insert_many([{"_id": "old-0", "due_at": due, "queued_at": T0},
                          {"_id": "old-1", "due_at": T0 + timedelta(hours=1), "queued_at": T0},
                          {"_id": "old-2", "done": True}])
    db.reminders.update_one({"_id": "old-1"}, {"$set": {"due_at": T0 + timedelta(hours=1)}})
    storage.ensure_indexes(db)
    storage.ensure_indexes(db)  # a second instance starting: nothing more to do
    assert sorted(e["_id"] for e in db.queue.find()) == [
        storage.queue_key("old-0", due), storage.queue_key("old-1", T0 + timedelta(hours=1))]
    assert svc.fire_due() == 1
    assert [e["reminder_id"] for e in due_events(svc)] == ["old-0"]
    clock.advance(hours=1)
    assert svc.fire_due() == 1
    assert db.queue.count_documents({}) == 0


# --------------------------------------------------------------------------
# birthday series


def created(customer_id, owner, birthday, version=1, **over):
    return {"customer_id": customer_id, "version": version, "company_name": "北京小米科技有限责任公司",
            "owner_id": owner["id"], "team_id": owner["team_id"], "status": "active",
            "birthday": birthday, "birthday_label": "雷总生日", "birthday_kind": "birthday",
            **over}


def birthday_docs(svc, customer_id, **flt):
    docs = [svc._current(d["_id"]) for d in svc.db.reminders.find({"customer_id": customer_id})]
    return sorted((d for d in docs if all(d.get(k) == v for k, v in flt.items())),
                  key=lambda d: d["due_at"])


def test_a_customer_created_without_a_birthday_costs_no_write_and_a_later_birthday_counts():
    svc = make_scheduler(FrozenClock(T0))
    svc.on_customer_created(created("c-gree", ZHANG, None))
    assert svc.db.series.count_documents({}) == 0
    assert svc.db.locks.count_documents({}) == 0
    assert svc.db.reminders.count_documents({}) == 0
    svc.on_customer_amended(created("c-gree", ZHANG, "03-15", version=2))
    [first] = birthday_docs(svc, "c-gree")
    assert first["status"] == "pending"
    # the creation, redelivered after the amendment, changes nothing
    svc.on_customer_created(created("c-gree", ZHANG, None))
    assert [d["_id"] for d in birthday_docs(svc, "c-gree", status="pending")] == [first["_id"]]


def test_a_changed_lead_time_and_time_zone_apply_from_the_next_birthday_reminder():
    clock = FrozenClock(T0)
    settings = {ZHANG["id"]: {"birthday_lead_days": 2, "timezone": "Asia/Shanghai"}}
    svc = make_scheduler(clock, settings)
    svc.on_customer_created(created("c-xiaomi", ZHANG, "01-01"))
    [first] = birthday_docs(svc, "c-xiaomi")
    assert first["due_at"] == datetime(2026, 12, 30, 1, 0, tzinfo=UTC)
    # 张伟 moves to New York and wants five days' notice
    settings[ZHANG["id"]] = {"birthday_lead_days": 5, "timezone": "America/New_York"}
    clock.advance(days=33)  # 2026-12-30 01:00 UTC
    assert svc.fire_due() == 1
    [nxt] = birthday_docs(svc, "c-xiaomi", status="pending")
    assert nxt["due_at"] == datetime(2027, 12, 27, 14, 0, tzinfo=UTC)  # 09:00 EST
    assert "1月1日（5 天后）" in nxt["content"]


def test_a_shorter_lead_time_does_not_announce_the_same_birthday_twice():
    clock = FrozenClock(T0)
    settings = {ZHANG["id"]: {"birthday_lead_days": 30}}
    svc = make_scheduler(clock, settings)
    svc.on_customer_created(created("c-xiaomi", ZHANG, "01-01"))
    [first] = birthday_docs(svc, "c-xiaomi")
    assert first["due_at"] == datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # for Jan 1st 2027
    settings[ZHANG["id"]] = {"birthday_lead_days": 0}
    clock.advance(days=5)
    assert svc.fire_due() == 1
    [nxt] = birthday_docs(svc, "c-xiaomi", status="pending")
    # Jan 1st 2027 was announced already: the next one is 2028's, on the day
    assert nxt["due_at"] == datetime(2028, 1, 1, 1, 0, tzinfo=UTC)
    assert "1月1日（今天）" in nxt["content"]


def test_skipping_this_years_greeting_schedules_next_year_with_the_current_settings():
    clock = FrozenClock(T0)
    settings = {ZHANG["id"]: {"birthday_lead_days": 2}}
    svc = make_scheduler(clock, settings)
    svc.on_customer_created(created("c-xiaomi", ZHANG, "01-01"))
    [first] = birthday_docs(svc, "c-xiaomi")
    settings[ZHANG["id"]] = {"birthday_lead_days": 7}
    assert svc.cancel_reminder(ZHANG, first["_id"])["status"] == "cancelled"
    [nxt] = birthday_docs(svc, "c-xiaomi", status="pending")
    assert nxt["due_at"] == datetime(2027, 12, 25, 1, 0, tzinfo=UTC)


def test_accounts_away_when_a_birthday_fires_keeps_the_series_with_its_last_settings():
    clock = FrozenClock(T0)
    svc = make_scheduler(clock, {ZHANG["id"]: {"birthday_lead_days": 3}})
    svc.on_customer_created(created("c-xiaomi", ZHANG, "01-01"))
    svc.accounts.get_users.side_effect = Unavailable("service_unavailable", "accounts is down")
    clock.advance(days=33)
    assert svc.fire_due() == 1
    [nxt] = birthday_docs(svc, "c-xiaomi", status="pending")
    assert nxt["due_at"] == datetime(2027, 12, 29, 1, 0, tzinfo=UTC)


def test_an_owner_change_and_abandonment_leave_fired_birthday_reminders_fired():
    clock = FrozenClock(T0)
    svc = make_scheduler(clock)
    svc.on_customer_created(created("c-xiaomi", ZHANG, "01-01"))
    clock.advance(days=33)  # 2026-12-30 09:00 Shanghai: 张伟's reminder fires
    assert svc.fire_due() == 1
    [fired] = birthday_docs(svc, "c-xiaomi", user_id=ZHANG["id"], status="fired")
    clock.advance(days=1)
    svc.on_owner_changed({**created("c-xiaomi", ZHANG, "01-01", version=2),
                          "new_owner_id": LI["id"], "old_owner_id": ZHANG["id"]})
    # 张伟's list still shows the greeting he got, and his ack counts
    assert svc.get_reminder(ZHANG, fired["_id"])["status"] == "fired"
    # only his next year's reminder, never sent, is cancelled
    listed = svc.list_reminders(ZHANG, {"status": "cancelled"})["items"]
    assert [x["due_at"] for x in listed] == ["2027-12-30T01:00:00+00:00"]
    svc.on_notification_acknowledged({"notification_id": "n-zhang-1",
                                      "reminder_id": fired["_id"]})
    assert svc.get_reminder(ZHANG, fired["_id"])["status"] == "acknowledged"
    # 李娜 now owns him: his birthday is still ahead, so she is told at once
    [hers] = birthday_docs(svc, "c-xiaomi", user_id=LI["id"])
    assert hers["status"] == "pending" and hers["due_at"] == clock.now()
    assert svc.fire_due() == 1
    assert svc.get_reminder(LI, hers["_id"])["status"] == "fired"
    # abandoned to the pool: what fired stays fired, next year's is cancelled
    svc.on_customer_abandoned({"customer_id": "c-xiaomi", "version": 3,
                               "owner_id": LI["id"], "status": "pool"})
    assert svc.get_reminder(LI, hers["_id"])["status"] == "fired"
    assert [d["status"] for d in birthday_docs(svc, "c-xiaomi", user_id=LI["id"])] == [
        "fired", "cancelled"]
    assert birthday_docs(svc, "c-xiaomi", status="pending") == []


def test_a_customer_entered_inside_the_lead_window_is_announced_at_once_and_once_only():
    entered = datetime(2026, 6, 9, 2, 0, tzinfo=UTC)  # June 9th, 10:00 in Shanghai
    clock = FrozenClock(entered)
    svc = make_scheduler(clock)
    svc.on_customer_created(created("c-xiaomi", ZHANG, "06-10"))
    [now] = birthday_docs(svc, "c-xiaomi")
    assert now["due_at"] == entered and "6月10日（1 天后）" in now["content"]
    assert svc.fire_due() == 1
    assert due_events(svc)[0]["late"] is False
    # the same event again adds nothing; the next is next year's, on time
    svc.on_customer_created(created("c-xiaomi", ZHANG, "06-10"))
    clock.advance(hours=1)
    assert svc.fire_due() == 0
    [nxt] = birthday_docs(svc, "c-xiaomi", status="pending")
    assert nxt["due_at"] == datetime(2027, 6, 8, 1, 0, tzinfo=UTC)


# --------------------------------------------------------------------------
# revisits and an owner's event reminders follow the customer

WANG = {"id": "u-wangjl", "role": "manager", "team_id": "t1", "name": "王经理"}
HUAQIANG = "c-huaqiang"


def customers_at(svc, state):
    """customers.get_customer answering the customer as `state` says:
    {"owner": user id or None, "version": n}."""
    def get_customer(actor, customer_id):
        return {"id": customer_id, "company_name": "深圳市华强电子有限公司",
                "owner": {"id": state["owner"]} if state["owner"] else None,
                "version": state["version"]}

    svc.customers.get_customer.side_effect = get_customer


def owner_changed(version, old, new, customer_id=HUAQIANG):
    return {"customer_id": customer_id, "version": version, "old_owner_id": old["id"],
            "new_owner_id": new["id"] if new else None, "reason": "reassign",
            "company_name": "深圳市华强电子有限公司", "status": "active" if new else "pool",
            "birthday": None}


def planned(svc, state):
    """张伟's revisit, his event reminder about 华强, and 王经理's own note
    about the same customer (a manager's reminder is his)."""
    customers_at(svc, state)
    revisit = svc.create_revisit(ZHANG, HUAQIANG, {
        "at": (T0 + timedelta(days=1)).isoformat(), "contact_name": "陈志强",
        "note": "问问样品测试结果", "escalate_after_minutes": 5})
    quote = svc.create_reminder(ZHANG, {"title": "给华强报价", "customer_id": HUAQIANG,
                                        "due_at": (T0 + timedelta(days=2)).isoformat()})
    note = svc.create_reminder(WANG, {"title": "检查华强的合同", "customer_id": HUAQIANG,
                                      "due_at": (T0 + timedelta(days=2)).isoformat()})
    return revisit, quote, note


def reminder_doc(svc, rid):
    return svc._current(rid)


def test_an_owner_change_moves_the_owners_revisits_and_reminders_and_they_fire_to_him():
    clock = FrozenClock(T0)
    svc = make_scheduler(clock)
    revisit, quote, note = planned(svc, {"owner": ZHANG["id"], "version": 3})
    svc.on_owner_changed(owner_changed(4, ZHANG, LI))
    for r in (revisit, quote):
        doc = reminder_doc(svc, r["id"])
        assert doc["user_id"] == LI["id"] and doc["status"] == "pending"
        assert doc["due_at"].isoformat() == r["due_at"].replace("Z", "+00:00")
        assert doc["moved_from"] == [ZHANG["id"]]
    assert reminder_doc(svc, revisit["id"])["escalate_after_minutes"] == 5
    assert reminder_doc(svc, note["id"])["user_id"] == WANG["id"]  # his own note stays
    # 张伟 no longer sees them; 李娜 does, and they fire to her
    assert svc.list_reminders(ZHANG, {})["total"] == 0
    assert {x["id"] for x in svc.list_reminders(LI, {})["items"]} == {revisit["id"], quote["id"]}
    with pytest.raises(NotFound):
        svc.get_reminder(ZHANG, revisit["id"])
    clock.advance(days=2)
    assert svc.fire_due() == 3
    fired = {e["reminder_id"]: e for e in due_events(svc)}
    assert fired[revisit["id"]]["user_id"] == LI["id"]
    assert fired[quote["id"]]["user_id"] == LI["id"]
    assert fired[note["id"]]["user_id"] == WANG["id"]
    assert fired[revisit["id"]]["owner_version"] == 4
    assert fired[revisit["id"]]["title"] == "回访 深圳市华强电子有限公司（陈志强）"


def test_to_the_pool_they_are_cancelled_with_a_reason_and_never_fire():
    clock = FrozenClock(T0)
    svc = make_scheduler(clock)
    revisit, quote, note = planned(svc, {"owner": ZHANG["id"], "version": 3})
    svc.on_customer_abandoned({"customer_id": HUAQIANG, "version": 4, "owner_id": ZHANG["id"],
                               "status": "pool"})
    listed = svc.list_reminders(ZHANG, {"status": "cancelled"})["items"]
    assert {x["id"] for x in listed} == {revisit["id"], quote["id"]}
    assert {x["cancel_reason"] for x in listed} == {"customer_pooled"}
    clock.advance(days=3)
    assert svc.fire_due() == 1
    assert [e["reminder_id"] for e in due_events(svc)] == [note["id"]]
    # a handover to the pool (an OwnerChanged to nobody) does the same
    svc2 = make_scheduler(clock)
    svc2.db = svc.db
    customers_at(svc2, {"owner": LI["id"], "version": 5})
    r = svc2.create_revisit(LI, HUAQIANG, {"at": (clock.now() + timedelta(days=1)).isoformat(),
                                           "contact_name": "陈志强"})
    svc2.on_owner_changed(owner_changed(6, LI, None))
    assert svc2.get_reminder(LI, r["id"])["status"] == "cancelled"


def test_a_redelivered_or_older_owner_change_moves_nothing_back():
    clock = FrozenClock(T0)
    svc = make_scheduler(clock)
    revisit, quote, _ = planned(svc, {"owner": ZHANG["id"], "version": 3})
    to_li = owner_changed(5, ZHANG, LI)
    svc.on_owner_changed(to_li)
    svc.on_owner_changed(to_li)  # at least once: delivered again
    # an older change (v4: 张伟 -> 王经理) arrives after the newer one
    svc.on_owner_changed(owner_changed(4, ZHANG, WANG))
    # and an older amendment still naming 张伟 as owner
    svc.on_customer_amended({"customer_id": HUAQIANG, "version": 4, "owner_id": ZHANG["id"],
                             "status": "active", "birthday": None, "changes": {}})
    for r in (revisit, quote):
        doc = reminder_doc(svc, r["id"])
        assert doc["user_id"] == LI["id"] and doc["moved_from"] == [ZHANG["id"]]
    # a newer amendment that names the new owner (its OwnerChanged still on
    # its way) moves them as the OwnerChanged would
    svc.on_customer_amended({"customer_id": HUAQIANG, "version": 7, "owner_id": WANG["id"],
                             "status": "active", "birthday": None, "changes": {}})
    assert reminder_doc(svc, revisit["id"])["user_id"] == WANG["id"]
    svc.on_owner_changed(owner_changed(6, LI, WANG))  # late: nothing to do
    assert reminder_doc(svc, revisit["id"])["moved_from"] == [ZHANG["id"], LI["id"]]


def test_a_reminder_already_fired_stays_with_the_user_it_fired_for():
    clock = FrozenClock(T0)
    svc = make_scheduler(clock)
    customers_at(svc, {"owner": ZHANG["id"], "version": 3})
    r = svc.create_revisit(ZHANG, HUAQIANG, {"at": (T0 + timedelta(minutes=5)).isoformat(),
                                             "contact_name": "陈志强"})
    clock.advance(minutes=5)
    assert svc.fire_due() == 1
    svc.on_owner_changed(owner_changed(4, ZHANG, LI))
    # fired (its firing record) though stored pending: not moved, not cancelled
    assert svc.get_reminder(ZHANG, r["id"])["status"] == "fired"


def test_a_reminder_made_while_the_customer_changes_hands_is_refused_or_moved():
    clock = FrozenClock(T0)
    svc = make_scheduler(clock)
    state = {"owner": ZHANG["id"], "version": 3}
    customers_at(svc, state)
    # 张伟 read his customer at v3; the scheduler heard of v4 (to 李娜) before
    # his revisit was stored: refused, not left with him
    svc.on_owner_changed(owner_changed(4, ZHANG, LI))
    with pytest.raises(Forbidden) as err:
        svc.create_revisit(ZHANG, HUAQIANG, {"at": (T0 + timedelta(days=1)).isoformat(),
                                             "contact_name": "陈志强"})
    assert err.value.code == "not_owner"
    with pytest.raises(Forbidden):
        svc.create_reminder(ZHANG, {"title": "给华强报价", "customer_id": HUAQIANG,
                                    "due_at": (T0 + timedelta(days=1)).isoformat()})
    assert svc.db.reminders.count_documents({}) == 0
    # stored first, the change after it moves it
    state.update(owner=LI["id"], version=4)
    r = svc.create_revisit(LI, HUAQIANG, {"at": (T0 + timedelta(days=1)).isoformat(),
                                          "contact_name": "陈志强"})
    svc.on_owner_changed(owner_changed(5, LI, ZHANG))
    assert reminder_doc(svc, r["id"])["user_id"] == ZHANG["id"]
    # the customer's lock is let go of
    assert svc.db.locks.count_documents({}) == 0


def test_an_owner_change_waits_for_a_reminder_being_fired_and_comes_back():
    clock = FrozenClock(T0)
    svc = make_scheduler(clock)
    customers_at(svc, {"owner": ZHANG["id"], "version": 3})
    r = svc.create_revisit(ZHANG, HUAQIANG, {"at": (T0 + timedelta(days=1)).isoformat(),
                                             "contact_name": "陈志强"})
    svc.db.locks.insert_one({"_id": r["id"], "owner": "other-host:1:fire",
                             "until": T0 + timedelta(seconds=30)})
    with pytest.raises(Conflict):  # the event goes back to the queue
        svc.on_owner_changed(owner_changed(4, ZHANG, LI))
    assert reminder_doc(svc, r["id"])["user_id"] == ZHANG["id"]
    svc.db.locks.delete_one({"_id": r["id"]})
    svc.on_owner_changed(owner_changed(4, ZHANG, LI))  # redelivered
    assert reminder_doc(svc, r["id"])["user_id"] == LI["id"]
