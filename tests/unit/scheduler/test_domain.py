"""The scheduler's domain functions: reminder documents, views, events,
birthday series (no broker, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.scheduler import domain, rules

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def reminder(**over):
    doc = domain.new_reminder("r1", "rep1", "event", {
        "title": "拜访深圳市大疆创新科技有限公司", "content": "带样机",
        "due_at": NOW + timedelta(hours=2), "escalate_after_minutes": None}, NOW)
    return {**doc, **over}


def test_a_new_reminder_is_pending_and_viewed_with_offsets():
    view = domain.view(reminder())
    assert view == {
        "id": "r1", "title": "拜访深圳市大疆创新科技有限公司", "content": "带样机",
        "due_at": "2026-12-01T04:00:00+00:00", "kind": "event", "customer_id": None,
        "escalate_after_minutes": None, "status": "pending",
        "created_at": "2026-12-01T02:00:00+00:00"}


def test_due_at_in_the_past_is_refused_but_a_few_seconds_late_is_fine():
    domain.check_due_at(NOW - timedelta(seconds=30), NOW)
    with pytest.raises(Invalid) as err:
        domain.check_due_at(NOW - timedelta(minutes=5), NOW, "at")
    assert err.value.details["fields"] == {"at": "is in the past"}


def test_only_its_user_edits_only_a_pending_reminder():
    with pytest.raises(NotFound):
        domain.check_editable(reminder(), "rep2")
    with pytest.raises(NotFound):
        domain.check_editable(reminder(kind="escalation"), "rep1")
    with pytest.raises(Conflict) as err:
        domain.check_editable(reminder(status="fired"), "rep1")
    assert err.value.code == "not_pending"
    assert domain.check_editable(reminder(), "rep1")["_id"] == "r1"


def test_patch_keeps_what_is_not_sent_and_refuses_birthday_edits():
    new = domain.apply_patch(reminder(), {"title": None, "escalate_after_minutes": 0}, NOW)
    assert new["title"] == "拜访深圳市大疆创新科技有限公司" and new["escalate_after_minutes"] == 0
    with pytest.raises(Conflict):
        domain.apply_patch(reminder(kind="birthday"), {"title": "x"}, NOW)
    with pytest.raises(Invalid):
        domain.apply_patch(reminder(), {"due_at": NOW - timedelta(days=1)}, NOW)


def test_revisit_only_by_the_owner_names_the_contact():
    customer = {"id": "c9", "company_name": "北京小米科技有限责任公司", "owner": {"id": "rep1"}}
    doc = domain.revisit_reminder("r2", "rep1", customer, {
        "at": NOW + timedelta(days=1), "contact_name": "雷总", "note": "问问新品试用"}, NOW)
    assert doc["kind"] == "revisit" and doc["title"] == "回访 北京小米科技有限责任公司（雷总）"
    assert doc["customer_id"] == "c9" and doc["contact_name"] == "雷总"
    with pytest.raises(Forbidden):
        domain.revisit_reminder("r3", "mgr", customer, {
            "at": NOW + timedelta(days=1), "contact_name": "雷总"}, NOW)
    with pytest.raises(Forbidden):  # a pool customer has no owner
        domain.revisit_reminder("r3", "rep1", {**customer, "owner": None}, {
            "at": NOW, "contact_name": "雷总"}, NOW)


def test_firing_late_and_the_event_payload():
    doc = domain.fired(reminder(), NOW + timedelta(hours=5), 60)
    assert doc["status"] == "fired" and doc["late"] is True
    payload = domain.due_event(doc)
    assert payload["reminder_id"] == "r1" and payload["late"] is True
    assert payload["due_at"] == "2026-12-01T04:00:00+00:00"
    assert payload["fired_at"] == "2026-12-01T07:00:00+00:00"
    assert payload["escalate_after_minutes"] is None and payload["escalation_of"] is None
    on_time = domain.fired(reminder(), NOW + timedelta(hours=2, seconds=1), 60)
    assert on_time["late"] is False
    with pytest.raises(rules.InvalidTransition):
        domain.fired(reminder(status="cancelled"), NOW, 60)


def test_a_firing_record_turns_a_stored_pending_into_fired():
    doc = reminder()
    record = domain.firing({**doc, "fired_at": NOW, "late": False}, "host:1:a")
    merged = domain.with_firing(doc, record)
    assert merged["status"] == "fired" and merged["fired_at"] == NOW
    assert domain.with_firing(doc, None)["status"] == "pending"
    acked = domain.with_firing(reminder(status="acknowledged"), record)
    assert acked["status"] == "acknowledged"
    assert domain.acknowledged(merged, NOW)["status"] == "acknowledged"
    assert domain.acknowledged(reminder(status="cancelled"), NOW) is None


def test_escalation_check_is_one_per_notification():
    doc = domain.escalation_reminder({
        "notification_id": "n1", "user_id": "rep1", "reminder_id": "r1",
        "due_at": NOW, "title": "拜访"}, NOW)
    assert doc["_id"] == domain.escalation_id("n1") == "esc_n1"
    assert doc["kind"] == "escalation" and doc["escalation_of"] == "n1"
    assert "escalation" not in domain.USER_KINDS


def test_list_filter_is_his_own_and_hides_escalation_checks():
    flt = domain.list_filter("rep1", {"from": NOW, "to": NOW + timedelta(days=1),
                                      "kind": "revisit"})
    assert flt == {"user_id": "rep1", "kind": "revisit",
                   "due_at": {"$gte": NOW, "$lte": NOW + timedelta(days=1)}}
    assert domain.list_filter("rep1", {})["kind"] == {"$in": list(domain.USER_KINDS)}


# --------------------------------------------------------------------------
# birthday series


def created(**over):
    return {"customer_id": "c1", "version": 1, "company_name": "上海恒通贸易有限公司",
            "owner_id": "rep1", "status": "active", "birthday": "01-01",
            "birthday_label": "王总生日", "birthday_kind": "birthday", **over}


def test_series_from_events():
    s = domain.series_from_event("CustomerCreated", created())
    assert s["active"] and s["owner_id"] == "rep1" and s["kind"] == "birthday"
    assert not domain.series_from_event("CustomerCreated", created(birthday=None))["active"]
    moved = domain.series_from_event("OwnerChanged", {**created(version=2),
                                                      "new_owner_id": "rep2"})
    assert moved["owner_id"] == "rep2" and moved["active"]
    gone = domain.series_from_event("CustomerAbandoned", created(version=3, status="pool"))
    assert not gone["active"]
    assert domain.is_newer(moved, s) and not domain.is_newer(s, moved)
    relabelled = {**s, "label": "王董生日", "version": 5}
    assert domain.same_schedule(relabelled, s)
    assert not domain.same_schedule(moved, s)


def test_birthday_reminder_across_the_year_end_in_two_time_zones():
    s = domain.series_from_event("CustomerCreated", created())
    sh = domain.birthday_reminder(s, 2, "Asia/Shanghai", NOW)
    assert sh["due_at"] == datetime(2026, 12, 30, 1, 0, tzinfo=UTC)
    assert sh["title"] == "客户生日：上海恒通贸易有限公司"
    assert sh["content"].startswith("王总生日 1月1日（2 天后）")
    ny = domain.birthday_reminder({**s, "owner_id": "rep2"}, 2, "America/New_York", NOW)
    assert ny["due_at"] == datetime(2026, 12, 30, 14, 0, tzinfo=UTC)
    assert ny["_id"] != sh["_id"]  # one per owner and instant
    nxt = domain.next_in_series({**sh, "fired_at": sh["due_at"]}, 2, "Asia/Shanghai",
                                sh["due_at"])
    assert nxt["due_at"] == datetime(2027, 12, 30, 1, 0, tzinfo=UTC)
    assert nxt["series"] == {**sh["series"], "occurrence": "2028-01-01"}


def test_feb_29_anniversary_and_staleness():
    s = domain.series_from_event("CustomerCreated", created(
        birthday="02-29", birthday_kind="anniversary", birthday_label="成立纪念日"))
    doc = domain.birthday_reminder(s, 0, "Asia/Shanghai", NOW)
    assert doc["kind"] == "anniversary"
    assert doc["due_at"] == datetime(2027, 2, 28, 1, 0, tzinfo=UTC)
    assert "2月28日（今天）" in doc["content"]
    nxt = domain.next_in_series(doc, 0, "Asia/Shanghai", NOW)
    assert nxt["due_at"] == datetime(2028, 2, 29, 1, 0, tzinfo=UTC)
    assert domain.still_current(doc, s)
    assert not domain.still_current(doc, {**s, "owner_id": "rep9"})
    assert not domain.still_current(doc, {**s, "active": False})
    assert not domain.still_current(doc, None)


def test_next_in_series_takes_the_owners_current_lead_time_and_time_zone():
    s = domain.series_from_event("CustomerCreated", created())
    doc = domain.birthday_reminder(s, 2, "Asia/Shanghai", NOW)  # 2026-12-30, for 2027-01-01
    nxt = domain.next_in_series(doc, 10, "Europe/Berlin", doc["due_at"])
    assert nxt["due_at"] == datetime(2027, 12, 22, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert nxt["series"]["lead_days"] == 10 and nxt["series"]["tz"] == "Europe/Berlin"
    assert "1月1日（10 天后）" in nxt["content"]
    # a lead cut to 0 announces 2028's birthday, never 2027's a second time
    assert domain.next_in_series(doc, 0, "Asia/Shanghai", doc["due_at"])["due_at"] == datetime(
        2028, 1, 1, 1, 0, tzinfo=UTC)


def test_a_birthday_greeting_is_its_owners_at_the_series_version_year_after_year():
    s = domain.series_from_event("OwnerChanged", {**created(), "version": 4,
                                                  "new_owner_id": "rep2"})
    doc = domain.birthday_reminder(s, 2, "Asia/Shanghai", NOW)
    assert doc["user_id"] == "rep2" and doc["owner_version"] == 4
    assert domain.next_in_series(doc, 2, "Asia/Shanghai", doc["due_at"])["owner_version"] == 4
    assert domain.due_event(domain.fired(doc, doc["due_at"], 60))["owner_version"] == 4


def test_next_in_series_of_a_reminder_stored_before_occurrences_were():
    s = domain.series_from_event("CustomerCreated", created())
    doc = domain.birthday_reminder(s, 2, "Asia/Shanghai", NOW)
    del doc["series"]["occurrence"]
    assert domain.announced_occurrence(doc).isoformat() == "2027-01-01"
    nxt = domain.next_in_series(doc, 2, "Asia/Shanghai", doc["due_at"])
    assert nxt["due_at"] == datetime(2027, 12, 30, 1, 0, tzinfo=UTC)


def shanghai(y, m, d, hh=10):
    return datetime(y, m, d, hh - 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(("entered", "birthday", "lead", "text"), [
    (shanghai(2026, 6, 9), "06-10", 2, "6月10日（1 天后）"),
    (shanghai(2026, 6, 10, 15), "06-10", 2, "6月10日（今天）"),
    (shanghai(2026, 12, 31), "01-01", 2, "1月1日（1 天后）"),  # across the year end
    (shanghai(2026, 12, 25), "01-01", 30, "1月1日（7 天后）"),
    (shanghai(2027, 2, 27), "02-29", 2, "2月28日（1 天后）"),  # not a leap year
    (shanghai(2028, 2, 28), "02-29", 2, "2月29日（1 天后）"),  # a leap year
])
def test_a_customer_entered_inside_the_lead_window_is_announced_now(entered, birthday, lead, text):
    s = domain.series_from_event("CustomerCreated", created(birthday=birthday))
    doc = domain.birthday_reminder(s, lead, "Asia/Shanghai", entered)
    assert doc["due_at"] == entered
    assert text in doc["content"]
    # the same reminder if the step is redone a little later (a redelivered event)
    again = domain.birthday_reminder(s, lead, "Asia/Shanghai", entered + timedelta(minutes=3))
    assert again["_id"] == doc["_id"]
    # and after it, the following year's on time
    nxt = domain.next_in_series(doc, lead, "Asia/Shanghai", entered)
    occurrence = domain.announced_occurrence(doc)
    assert domain.announced_occurrence(nxt).year == occurrence.year + 1
    assert nxt["due_at"] > entered + timedelta(days=300)


def test_a_birthday_already_past_this_year_waits_for_next_year():
    s = domain.series_from_event("CustomerCreated", created(birthday="06-10"))
    doc = domain.birthday_reminder(s, 2, "Asia/Shanghai", shanghai(2026, 6, 11, 9))
    assert doc["due_at"] == datetime(2027, 6, 8, 1, 0, tzinfo=UTC)
    assert "6月10日（2 天后）" in doc["content"]
    # in New York it is still June 10th (20:00 on the 10th there)
    ny = domain.birthday_reminder(s, 2, "America/New_York", shanghai(2026, 6, 11, 9))
    assert ny["due_at"] == shanghai(2026, 6, 11, 9) and "（今天）" in ny["content"]


# --------------------------------------------------------------------------
# what the firing loop does with a due queue entry


def test_a_due_entry_fires_its_pending_reminder_once_and_serves_otherwise():
    due = NOW - timedelta(seconds=5)
    doc = reminder(due_at=due)
    entry = {"_id": "k", "reminder_id": "r1", "due_at": due}
    orphan_age = timedelta(minutes=10)
    assert domain.entry_outcome(entry, doc, False, NOW, orphan_age) == domain.FIRE
    assert domain.entry_outcome(entry, doc, True, NOW, orphan_age) == domain.DONE
    cancelled = domain.cancelled(doc, NOW)
    assert domain.entry_outcome(entry, cancelled, False, NOW, orphan_age) == domain.DONE
    # an edit moved the reminder: this entry is the old time's
    moved = {**doc, "due_at": NOW + timedelta(hours=1)}
    assert domain.entry_outcome(entry, moved, False, NOW, orphan_age) == domain.DONE
    # no reminder yet: being inserted (kept), or an insert that died long ago
    assert domain.entry_outcome(entry, None, False, NOW, orphan_age) == domain.KEEP
    old = {**entry, "due_at": NOW - timedelta(minutes=11)}
    assert domain.entry_outcome(old, None, False, NOW, orphan_age) == domain.DONE


def test_no_firing_starts_in_the_last_third_of_its_lease():
    lease = timedelta(seconds=30)
    until = NOW + lease
    assert domain.lease_left(until, NOW, lease)
    assert domain.lease_left(until, NOW + timedelta(seconds=19), lease)
    assert not domain.lease_left(until, NOW + timedelta(seconds=20), lease)
    assert not domain.lease_left(until, NOW + timedelta(seconds=31), lease)


def test_only_a_creation_without_a_birthday_is_nothing_to_schedule():
    assert domain.nothing_to_schedule(
        "CustomerCreated", domain.series_from_event("CustomerCreated", created(birthday=None)))
    assert not domain.nothing_to_schedule(
        "CustomerCreated", domain.series_from_event("CustomerCreated", created()))
    # an amendment without a birthday may be removing one
    assert not domain.nothing_to_schedule(
        "CustomerAmended", domain.series_from_event("CustomerAmended", created(birthday=None)))


def test_queue_keys_sort_as_due_times_and_are_the_same_from_a_stored_time():
    from services.scheduler.storage import queue_key

    at = datetime(2026, 12, 2, 13, 24, 49, 123456, tzinfo=UTC)
    stored = at.replace(microsecond=123000)  # what the database gives back
    assert queue_key("r1", at) == queue_key("r1", stored) == "20261202T132449.123|r1"
    shanghai = at.astimezone(timezone(timedelta(hours=8)))
    assert queue_key("r1", shanghai) == queue_key("r1", at)
    times = [at + timedelta(milliseconds=ms) for ms in (5, -3000, 999, 86_400_000, 0)]
    keys = [queue_key("esc_6b10", t) for t in times]
    assert sorted(keys) == [queue_key("esc_6b10", t) for t in sorted(times)]


# --------------------------------------------------------------------------
# reminders follow the customer


ZHANG, LI = "u-zhangwei", "u-lina"


def owners_reminder(kind="revisit", user=ZHANG, made_at=3, **over):
    title = "回访 深圳市华强电子有限公司（陈志强）" if kind == "revisit" else "给华强报价"
    doc = domain.new_reminder("r1", user, kind, {
        "title": title, "due_at": NOW + timedelta(days=2), "customer_id": "c-huaqiang",
        "contact_name": "陈志强" if kind == "revisit" else None, "owner_version": made_at,
        "escalate_after_minutes": None}, NOW)
    return {**doc, **over}


def test_an_owners_revisit_and_event_reminder_move_to_the_new_owner_at_their_time():
    for kind in ("revisit", "event"):
        doc = owners_reminder(kind)
        assert domain.owner_change_outcome(doc, LI, 4) == (domain.MOVE, LI)
        new = domain.moved(doc, LI, 4, NOW + timedelta(hours=1))
        assert new["user_id"] == LI and new["due_at"] == doc["due_at"]
        assert new["owner_version"] == 4 and new["moved_from"] == [ZHANG]
        assert new["title"] == doc["title"] and new["status"] == "pending"
        assert domain.view(new)["escalate_after_minutes"] is None  # 李娜's own setting


def test_a_typed_escalation_delay_stays_with_the_appointment():
    doc = owners_reminder(escalate_after_minutes=2.5)
    assert domain.moved(doc, LI, 4, NOW)["escalate_after_minutes"] == 2.5


def test_to_the_pool_an_owners_reminder_is_cancelled_with_a_reason():
    for kind in ("revisit", "event"):
        assert domain.owner_change_outcome(owners_reminder(kind), None, 4) == (
            domain.CANCEL, domain.CUSTOMER_POOLED)
    gone = domain.cancelled(owners_reminder(), NOW, domain.CUSTOMER_POOLED)
    assert gone["status"] == "cancelled"
    assert domain.view(gone)["cancel_reason"] == "customer_pooled"


def test_a_repeated_or_out_of_date_change_moves_nothing_back():
    moved_to_li = domain.moved(owners_reminder(), LI, 5, NOW)
    # OwnerChanged v4 (张伟 -> someone) arriving after v5 made it 李娜's
    assert domain.owner_change_outcome(moved_to_li, ZHANG, 4) == (domain.STAY, None)
    assert domain.owner_change_outcome(moved_to_li, None, 4) == (domain.STAY, None)
    # v5 redelivered
    assert domain.owner_change_outcome(moved_to_li, LI, 5) == (domain.STAY, None)
    # a reminder made after the change it would otherwise follow
    assert domain.owner_change_outcome(owners_reminder(made_at=6), LI, 5) == (domain.STAY, None)
    # back to 张伟 at v6: it follows him
    assert domain.owner_change_outcome(moved_to_li, ZHANG, 6) == (domain.MOVE, ZHANG)


def test_what_does_not_follow_the_owner_stays():
    # a manager's note about his rep's customer is his own
    personal = owners_reminder("event", user="u-manager", made_at=None)
    assert domain.owner_change_outcome(personal, LI, 4) == (domain.STAY, None)
    assert domain.owner_change_outcome(personal, None, 4) == (domain.STAY, None)
    # already sent, acknowledged or cancelled
    for status in ("fired", "acknowledged", "cancelled"):
        assert domain.owner_change_outcome(owners_reminder(status=status), LI, 4)[0] == domain.STAY
    # the owner's already; birthday series and escalation checks are not moved here
    assert domain.owner_change_outcome(owners_reminder(user=LI), LI, 4)[0] == domain.STAY
    for kind in ("birthday", "anniversary", "escalation"):
        assert domain.owner_change_outcome(owners_reminder(kind=kind), LI, 4)[0] == domain.STAY
    # no customer: a personal reminder
    assert domain.owner_change_outcome(owners_reminder(customer_id=None), LI, 4)[0] == domain.STAY


def test_reminders_stored_before_owner_versions_follow_as_well_as_can_be_told():
    old_revisit = owners_reminder(made_at=None)
    assert domain.owner_change_outcome(old_revisit, LI, 4) == (domain.MOVE, LI)
    old_event = owners_reminder("event", made_at=None)
    # an event reminder of the owner the change took the customer from
    assert domain.owner_change_outcome(old_event, LI, 4, former_owner_id=ZHANG) == (
        domain.MOVE, LI)
    assert domain.owner_change_outcome(old_event, LI, 4, former_owner_id="u-x")[0] == domain.STAY
    assert domain.former_owner("OwnerChanged", {"old_owner_id": ZHANG}, None) == ZHANG
    assert domain.former_owner("CustomerAbandoned", {"owner_id": ZHANG}, None) == ZHANG
    assert domain.former_owner("CustomerAmended", {"owner_id": LI}, {"owner_id": ZHANG}) == ZHANG


def test_an_event_reminder_is_the_owners_only_when_its_maker_owns_the_customer():
    customer = {"id": "c-huaqiang", "owner": {"id": ZHANG}, "version": 7}
    assert domain.owner_version_of(customer, ZHANG) == 7
    assert domain.owner_version_of(customer, "u-manager") is None
    assert domain.owner_version_of({**customer, "owner": None}, ZHANG) is None
    revisit = domain.revisit_reminder("r2", ZHANG, {**customer, "company_name": "华强电子"}, {
        "at": NOW + timedelta(days=1), "contact_name": "陈志强"}, NOW)
    assert revisit["owner_version"] == 7


def test_a_reminder_for_a_customer_that_changed_hands_meanwhile_is_refused():
    doc = owners_reminder(made_at=3)
    assert domain.check_still_owner(doc, None) is doc
    assert domain.check_still_owner(doc, {"owner_id": ZHANG, "version": 3}) is doc
    assert domain.check_still_owner(doc, {"owner_id": ZHANG, "version": 5}) is doc
    for later in ({"owner_id": LI, "version": 4}, {"owner_id": None, "version": 4}):
        with pytest.raises(Forbidden) as err:
            domain.check_still_owner(doc, later)
        assert err.value.code == "not_owner"
    # a personal reminder is never refused
    personal = owners_reminder("event", user="u-manager", made_at=None)
    assert domain.check_still_owner(personal, {"owner_id": LI, "version": 9}) is personal


def test_the_due_event_says_whose_customer_the_reminder_is_about():
    doc = domain.fired(owners_reminder(), NOW + timedelta(days=2), 60)
    assert domain.due_event(doc)["owner_version"] == 3
    assert domain.due_event(domain.fired(reminder(), NOW + timedelta(hours=2), 60))[
        "owner_version"] is None

