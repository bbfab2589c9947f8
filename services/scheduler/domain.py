"""Scheduler decisions as plain functions (no I/O, "now" passed in).

The pure date rules (birthdays, escalation time, life cycle) are in
`rules.py`; this module turns requests and customer events into reminder
documents, and reminder documents into API views and `ReminderDue` events.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.common.clock import iso
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.scheduler import rules

USER_KINDS = ("event", "revisit", "birthday", "anniversary")
BIRTHDAY_KINDS = ("birthday", "anniversary")
# A reminder "for now" typed a few seconds late is still accepted; one set
# further in the past is a mistake the user should hear about.
PAST_TOLERANCE = timedelta(minutes=1)


# --------------------------------------------------------------------------
# reminders a user creates


def check_due_at(due_at: datetime, now: datetime, field: str = "due_at") -> datetime:
    if due_at < now - PAST_TOLERANCE:
        raise Invalid.fields({field: "is in the past"})
    return due_at


def new_reminder(rid: str, user_id: str, kind: str, data: dict, now: datetime) -> dict:
    """A pending reminder document from validated input."""
    return {
        "_id": rid,
        "user_id": user_id,
        "kind": kind,
        "title": data["title"],
        "content": data.get("content") or "",
        "due_at": data["due_at"],
        "customer_id": data.get("customer_id"),
        "escalate_after_minutes": data.get("escalate_after_minutes"),
        "contact_name": data.get("contact_name"),
        "note": data.get("note"),
        # the customer's version at which `user_id` owned it: the reminder is
        # the owner's and follows the customer (None: a personal one)
        "owner_version": data.get("owner_version"),
        "status": rules.PENDING,
        "created_at": now,
        "updated_at": now,
    }


def revisit_reminder(rid: str, actor_id: str, customer: dict, data: dict, now: datetime) -> dict:
    """A revisit: only the customer's owner plans one (he is the one who calls)."""
    owner = customer.get("owner") or {}
    if owner.get("id") != actor_id:
        raise Forbidden("not_owner", "only the customer's owner plans a revisit")
    company = customer.get("company_name") or ""
    title = f"回访 {company}（{data['contact_name']}）"
    return new_reminder(rid, actor_id, "revisit", {
        "title": title[:200],
        "content": data.get("note") or "",
        "due_at": data["at"],
        "customer_id": customer["id"],
        "escalate_after_minutes": data.get("escalate_after_minutes"),
        "contact_name": data["contact_name"],
        "note": data.get("note"),
        "owner_version": customer_version(customer),
    }, now)


def customer_version(customer: dict) -> int:
    return int(customer.get("version") or 0)


def owner_version_of(customer: dict, actor_id: str) -> int | None:
    """An event reminder about a customer is the owner's (it follows the
    customer to his successor) when its maker owns the customer; a
    manager's note about his rep's customer stays his own."""
    if (customer.get("owner") or {}).get("id") == actor_id:
        return customer_version(customer)
    return None


def check_editable(doc: dict | None, actor_id: str) -> dict:
    """A reminder is personal: only its user sees or changes it, and only
    while it is pending. Escalation checks are internal and never shown."""
    if doc is None or doc["user_id"] != actor_id or doc["kind"] not in USER_KINDS:
        raise NotFound("not_found", "no such reminder")
    if not rules.can_edit(doc):
        raise Conflict("not_pending", f"the reminder is {doc['status']}; only a pending one changes")
    return doc


def apply_patch(doc: dict, changes: dict, now: datetime) -> dict:
    if doc["kind"] in BIRTHDAY_KINDS:
        raise Conflict("managed_reminder",
                       "a birthday reminder follows the customer's birthday; change that instead")
    if "due_at" in changes:
        check_due_at(changes["due_at"], now)
    for key in ("title", "content"):
        if changes.get(key) is None:
            changes.pop(key, None)
    return {**doc, **changes, "updated_at": now}


def cancelled(doc: dict, now: datetime, reason: str | None = None) -> dict:
    rules.transition(doc["status"], rules.CANCELLED)
    out = {**doc, "status": rules.CANCELLED, "updated_at": now}
    if reason:
        out["cancel_reason"] = reason
    return out


def list_filter(user_id: str, query: dict) -> dict:
    flt: dict = {"user_id": user_id, "kind": {"$in": list(USER_KINDS)}}
    due: dict = {}
    if query.get("from"):
        due["$gte"] = query["from"]
    if query.get("to"):
        due["$lte"] = query["to"]
    if due:
        flt["due_at"] = due
    if query.get("status"):
        flt["status"] = query["status"]
    if query.get("kind"):
        flt["kind"] = query["kind"]
    return flt


def view(doc: dict) -> dict:
    """The API's `reminder`."""
    out = {
        "id": doc["_id"],
        "title": doc["title"],
        "content": doc.get("content") or "",
        "due_at": iso(doc["due_at"]),
        "kind": doc["kind"],
        "customer_id": doc.get("customer_id"),
        "escalate_after_minutes": doc.get("escalate_after_minutes"),
        "status": doc["status"],
        "created_at": iso(doc["created_at"]),
    }
    for key in ("contact_name", "note", "cancel_reason"):
        if doc.get(key) is not None:
            out[key] = doc[key]
    if doc.get("fired_at"):
        out["fired_at"] = iso(doc["fired_at"])
        out["late"] = bool(doc.get("late"))
    return out


# --------------------------------------------------------------------------
# firing


def fired(doc: dict, fired_at: datetime, late_after_seconds: float) -> dict:
    rules.transition(doc["status"], rules.FIRED)
    late = rules.is_late(doc["due_at"], fired_at, late_after_seconds)
    return {**doc, "status": rules.FIRED, "fired_at": fired_at, "late": late,
            "updated_at": fired_at}


def due_event(doc: dict) -> dict:
    """The `ReminderDue` payload (without the envelope) of a fired reminder."""
    return {
        "reminder_id": doc["_id"],
        "user_id": doc["user_id"],
        "kind": doc["kind"],
        "title": doc["title"],
        "content": doc.get("content") or "",
        "due_at": iso(doc["due_at"]),
        "fired_at": iso(doc["fired_at"]),
        "late": bool(doc.get("late")),
        "customer_id": doc.get("customer_id"),
        "escalate_after_minutes": doc.get("escalate_after_minutes"),
        "escalation_of": doc.get("escalation_of"),
        "contact_name": doc.get("contact_name"),
        "owner_version": doc.get("owner_version"),
    }


def firing(doc: dict, by: str) -> dict:
    """The record that `doc` (as `fired` made it) went out."""
    return {"_id": doc["_id"], "fired_at": doc["fired_at"], "late": doc["late"], "by": by}


def with_firing(doc: dict | None, record: dict | None) -> dict | None:
    """The reminder as people see it: firing is recorded apart (an insert),
    so a stored `pending` with a firing record is `fired`."""
    if doc is None or record is None:
        return doc
    out = {**doc, "fired_at": record["fired_at"], "late": record["late"]}
    if doc["status"] == rules.PENDING:
        out["status"] = rules.FIRED
    return out


def acknowledged(doc: dict, now: datetime) -> dict | None:
    """The reminder once its notification is acknowledged; None when there
    is nothing to change (already acknowledged, cancelled...)."""
    if doc["status"] != rules.FIRED:
        return None
    return {**doc, "status": rules.ACKNOWLEDGED, "updated_at": now}


# --------------------------------------------------------------------------
# escalation checks (asked for by notify)


def escalation_id(notification_id: str) -> str:
    # One check per notification: asking twice finds the first.
    return f"esc_{notification_id}"


def escalation_reminder(data: dict, now: datetime) -> dict:
    doc = new_reminder(escalation_id(data["notification_id"]), data["user_id"], "escalation", {
        "title": data.get("title") or "",
        "due_at": data["due_at"],
        "customer_id": data.get("customer_id"),
    }, now)
    doc["escalation_of"] = data["notification_id"]
    doc["source_reminder_id"] = data.get("reminder_id")
    return doc


# --------------------------------------------------------------------------
# birthdays and anniversaries (from customer events)


def series_from_event(event_type: str, payload: dict) -> dict:
    """What a customer event says about the customer's birthday reminders."""
    if event_type == "OwnerChanged":
        owner_id = payload.get("new_owner_id")
        active = owner_id is not None and payload.get("status", "active") == "active"
    elif event_type == "CustomerAbandoned":
        owner_id, active = None, False
    else:
        owner_id = payload.get("owner_id")
        active = payload.get("status", "active") == "active" and owner_id is not None
    birthday = payload.get("birthday") or None
    kind = payload.get("birthday_kind") or "birthday"
    if kind not in BIRTHDAY_KINDS:
        kind = "birthday"
    return {
        "_id": payload["customer_id"],
        "version": int(payload.get("version") or 0),
        "active": bool(active and birthday),
        "owner_id": owner_id,
        "birthday": birthday,
        "label": payload.get("birthday_label") or "",
        "kind": kind,
        "company_name": payload.get("company_name") or "",
    }


def nothing_to_schedule(event_type: str, series: dict) -> bool:
    """A customer created without a birthday changes nothing: creation is
    its first version (no older event to be ordered against, nothing
    scheduled to cancel), and an event that later gives it a birthday
    carries the birthday. Most customers are such: their creation costs the
    scheduler no lock and no write."""
    return event_type == "CustomerCreated" and not series["birthday"]


def customer_lock(customer_id: str) -> str:
    """The lock under which one customer's events are applied (and its
    owner's reminders are stored)."""
    return "series:" + customer_id


def is_newer(series: dict, stored: dict | None) -> bool:
    return stored is None or series["version"] > int(stored.get("version") or 0)


SERIES_KEYS = ("active", "owner_id", "birthday", "kind")


def same_schedule(a: dict | None, b: dict | None) -> bool:
    """Whether two series states give the same reminders (the label and the
    company name only change the text)."""
    if a is None or b is None:
        return False
    return all(a.get(k) == b.get(k) for k in SERIES_KEYS)


def birthday_id(customer_id: str, owner_id: str, due_at: datetime) -> str:
    # One reminder per customer, owner and fire instant: redoing a step after
    # a crash or a redelivered event finds the reminder it made the first time.
    return f"bd_{customer_id}_{owner_id}_{due_at.strftime('%Y%m%d%H%M')}"


def birthday_text(series: dict, occurrence: date, days_ahead: int) -> tuple[str, str]:
    what = "客户生日" if series["kind"] == "birthday" else "企业纪念日"
    title = f"{what}：{series['company_name']}"
    when = f"{occurrence.month}月{occurrence.day}日"
    label = series.get("label") or ""
    ahead = f"{days_ahead} 天后" if days_ahead else "今天"
    content = f"{label + ' ' if label else ''}{when}（{ahead}），记得问候客户。"
    return title[:200], content


def birthday_reminder(series: dict, lead_days: int, tz: str, now: datetime) -> dict:
    """The first reminder of a birthday series: 09:00 in the owner's time
    zone, `lead_days` ahead of the next occurrence (today included). A
    customer entered inside the lead window, whose birthday is still ahead,
    is announced at once instead of only next year."""
    occurrence, planned = rules.upcoming_birthday(series["birthday"], lead_days, tz, now)
    return _birthday_doc(series, lead_days, tz, occurrence, planned, max(planned, now), now,
                         series.get("version"))


def next_in_series(doc: dict, lead_days: int, tz: str, now: datetime) -> dict:
    """The following year's reminder after `doc` fired (or was skipped by its
    user), with the owner's settings as they are now: a changed lead time or
    time zone applies from the next reminder of each series."""
    s = doc["series"]
    year = announced_occurrence(doc).year + 1
    month, day = rules.parse_mmdd(s["birthday"])
    occurrence = rules.occurrence_date(month, day, year)
    planned = rules.birthday_fire_in(s["birthday"], lead_days, tz, year)
    series = {"_id": s["_id"], "owner_id": s["owner_id"], "birthday": s["birthday"],
              "kind": s["kind"], "label": s.get("label", ""),
              "company_name": s.get("company_name", "")}
    # Past already after a long downtime: it stays due then and fires late.
    return _birthday_doc(series, lead_days, tz, occurrence, planned, planned, now,
                         doc.get("owner_version"))


def announced_occurrence(doc: dict) -> date:
    """The birthday (local date) a series reminder announces."""
    s = doc["series"]
    if s.get("occurrence"):
        return date.fromisoformat(s["occurrence"])
    # Made before the occurrence was stored: those were all due at their
    # planned instant, `lead_days` before it.
    return doc["due_at"].astimezone(ZoneInfo(s["tz"])).date() + timedelta(days=s["lead_days"])


def _birthday_doc(series: dict, lead_days: int, tz: str, occurrence: date, planned: datetime,
                  due: datetime, now: datetime, owner_version: int | None) -> dict:
    days_ahead = (occurrence - due.astimezone(ZoneInfo(tz)).date()).days
    title, content = birthday_text(series, occurrence, days_ahead)
    # Keyed by the planned instant, not `due`: a reminder made "now" is the
    # same one when a redelivered event or a redone step makes it again.
    doc = new_reminder(birthday_id(series["_id"], series["owner_id"], planned),
                       series["owner_id"], series["kind"], {
                           "title": title, "content": content, "due_at": due,
                           "customer_id": series["_id"], "owner_version": owner_version}, now)
    doc["series"] = {k: series[k] for k in ("_id", "owner_id", "birthday", "kind")}
    doc["series"]["lead_days"] = lead_days
    doc["series"]["tz"] = tz
    doc["series"]["occurrence"] = occurrence.isoformat()
    doc["series"]["label"] = series.get("label") or ""
    doc["series"]["company_name"] = series.get("company_name") or ""
    return doc


# --------------------------------------------------------------------------
# reminders that follow the customer (owner changes, the pool)

#: The kinds an owner change moves: a revisit is always its customer's
#: owner's; an event reminder is when its maker owned the customer
#: (`owner_version`). Birthday and anniversary series are remade for the new
#: owner by the series logic above; escalation checks stay where they are:
#: notify, which owns the SMS, withholds the old owner's (notify.domain).
FOLLOWING_KINDS = ("revisit", "event")
MOVE, CANCEL, STAY = "move", "cancel", "stay"
#: `cancel_reason` of a reminder whose customer went to the public pool.
CUSTOMER_POOLED = "customer_pooled"


def follows_owner(doc: dict, former_owner_id: str | None = None) -> bool:
    """Whether `doc` is its customer's owner's reminder rather than a
    personal one. Reminders stored before `owner_version` existed: a
    revisit always is; an event reminder is when its user is the owner the
    change took the customer from (`former_owner_id`)."""
    if doc.get("kind") not in FOLLOWING_KINDS or not doc.get("customer_id"):
        return False
    if doc.get("owner_version") is not None or doc["kind"] == "revisit":
        return True
    return former_owner_id is not None and doc.get("user_id") == former_owner_id


def owner_change_outcome(doc: dict, owner_id: str | None, version: int,
                         former_owner_id: str | None = None) -> tuple[str, str | None]:
    """What it does to a reminder about a customer that the customer, at
    `version`, is owned by `owner_id` (None: the public pool):

    - (MOVE, owner_id): a pending owner's reminder goes to the new owner,
      due when it was (the appointment with the customer stands);
    - (CANCEL, CUSTOMER_POOLED): nobody owns the customer: nobody is to call;
    - (STAY, None): anything else: a personal reminder, one that already
      fired or was cancelled, one already the owner's, or one made or moved
      at this version or a later one (a redelivered or out-of-date event).
    """
    if doc.get("status") != rules.PENDING or not follows_owner(doc, former_owner_id):
        return STAY, None
    made_at = doc.get("owner_version")
    if made_at is not None and int(made_at) >= version:
        return STAY, None
    if owner_id is None:
        return CANCEL, CUSTOMER_POOLED
    if doc["user_id"] == owner_id:
        return STAY, None
    return MOVE, owner_id


def moved(doc: dict, owner_id: str, version: int, now: datetime) -> dict:
    """`doc` handed to the customer's new owner. `escalate_after_minutes`
    is kept: null already means "whoever holds it: his own setting", and a
    value someone typed was chosen for this appointment, not for a person."""
    return {**doc, "user_id": owner_id, "owner_version": version,
            "moved_from": [*doc.get("moved_from", []), doc["user_id"]], "updated_at": now}


def former_owner(event_type: str, payload: dict, stored: dict | None) -> str | None:
    """Who owned the customer before the change an event announces (only
    reminders stored without `owner_version` need it)."""
    if event_type == "OwnerChanged":
        return payload.get("old_owner_id")
    if event_type == "CustomerAbandoned":
        return payload.get("owner_id")
    return (stored or {}).get("owner_id")


def check_still_owner(doc: dict, stored: dict | None) -> dict:
    """A reminder about to be stored for the owner of a customer as read at
    `owner_version`: refused when the scheduler has meanwhile heard of a
    later owner change taking the customer from its user (the change's
    handler would have moved it, had it been there already)."""
    if stored is None or doc.get("owner_version") is None:
        return doc
    action, _ = owner_change_outcome(doc, stored.get("owner_id"), int(stored.get("version") or 0))
    if action != STAY:
        raise Forbidden("not_owner", "the customer has just changed hands")
    return doc


# What a firing loop does with a due queue entry it has locked.
FIRE, DONE, KEEP = "fire", "done", "keep"


def entry_outcome(entry: dict, doc: dict | None, fired: bool, now: datetime,
                  orphan_age: timedelta) -> str:
    """FIRE it; DONE: the entry has served (fired, cancelled, moved by an
    edit, or an orphan); KEEP it for a later tick."""
    if fired:
        return DONE
    if doc is None:
        # being inserted right now (the entry goes first), or its insert
        # crashed half-way: given up only long after it was due
        return DONE if entry["due_at"] < now - orphan_age else KEEP
    if doc["status"] != rules.PENDING:
        return DONE
    if doc["due_at"] != entry["due_at"]:
        return DONE  # moved by an edit, which queued the new time first
    return FIRE


def lease_left(locked_until: datetime, now: datetime, lease: timedelta) -> bool:
    """Whether a firing may still start under a lock taken for `lease`: not
    in its last third, or it could outlast the lock (which another instance
    would then break and fire the reminder again)."""
    return now < locked_until - lease / 3


def still_current(doc: dict, series: dict | None) -> bool:
    """A birthday reminder fires only while it matches the customer as last
    heard of (owner, date, kind, not abandoned); otherwise it is stale."""
    if series is None or not series.get("active"):
        return False
    s = doc.get("series") or {}
    return all(s.get(k) == series.get(k) for k in ("owner_id", "birthday", "kind"))
