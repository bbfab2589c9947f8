"""The notify database.

Collections:
- `notifications`: the inbox; `key` (unique) names what a notification is
  about and for whom, so every event handler is idempotent.
- `deliveries`: one SMS delivery per notification, `_id` = the notification
  id. Inserting it is the claim that makes the SMS go out exactly once.
  Every attempt is kept in it (shown on the inbox item) and also appended
  to `sms_attempts`.
- `retries`: `{_id: notification id, due_at}` for deliveries with an
  attempt to make; a worker claims one by moving its `due_at` a lease ahead
  (find_one_and_update), so a crashed attempt is retried after the lease.
- `heads`: `{_id: user id, seq}`, bumped after each new notification of the
  user, so the live stream asks "anything new?" with one `_id` look-up.
- `owners`: `{_id: customer id, owner_id, version}`, the customer's owner
  as last heard of (OwnerChanged, CustomerAbandoned; None: the pool), only
  for customers that changed hands: an owner's reminder escalates to SMS
  only while its user still owns the customer.

As in the scheduler, the per-event path uses inserts and `_id` look-ups only
(on FerretDB 1.24, as patched in scripts/ferretdb, only `_id` lookups, lists
and ranges reach an index).
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.ids import new_id
from services.common.mongo import after, count, page


def ensure_indexes(db: Database) -> None:
    db.notifications.create_index([("key", ASCENDING)], unique=True, name="key_unique")
    db.notifications.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)],
                                  name="user_created")
    # the inbox read and unread: a page, its cursor and its count in one range
    db.notifications.create_index([("user_id", ASCENDING), ("read", ASCENDING),
                                   ("created_at", DESCENDING)], name="user_read_created")
    db.retries.create_index([("due_at", ASCENDING)], name="due")
    db.sms_attempts.create_index([("notification_id", ASCENDING)], name="notification")


def insert_notification(db: Database, doc: dict) -> tuple[dict, bool]:
    """(the notification, whether it is new)."""
    doc = {"_id": new_id(), **doc}
    try:
        db.notifications.insert_one(doc)
        return doc, True
    except DuplicateKeyError:
        return db.notifications.find_one({"key": doc["key"]}), False


def find_notification(db: Database, nid: str) -> dict | None:
    return db.notifications.find_one({"_id": nid})




NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]


class UnknownCursor(Exception):
    pass


def list_notifications(db: Database, user_id: str, unread: bool | None, skip: int,
                       limit: int, after_id: str | None = None) -> tuple[list[dict], int, bool]:
    """A page of the user's inbox, newest first (after his notification
    `after_id`), its total, and whether more follow."""
    flt: dict = {"user_id": user_id}
    if unread is True:
        flt["read"] = False
    elif unread is False:
        flt["read"] = True
    total = count(db.notifications, flt)
    if after_id is not None:
        last = db.notifications.find_one({"_id": after_id, "user_id": user_id},
                                         {"created_at": 1})
        if last is None:
            raise UnknownCursor(after_id)
        flt = after(flt, NEWEST_FIRST, last)
    docs, more = page(db.notifications, flt, NEWEST_FIRST, skip, limit)
    return docs, total, more


def created_since(db: Database, user_id: str, since: datetime) -> list[dict]:
    return list(db.notifications.find({"user_id": user_id, "created_at": {"$gte": since}})
                .sort("created_at", ASCENDING))


def acknowledge(db: Database, nid: str, user_id: str, now: datetime) -> dict | None:
    """The notification if this call acknowledged it; None if it was
    already acknowledged or is not the user's."""
    return db.notifications.find_one_and_update(
        {"_id": nid, "user_id": user_id, "acknowledged": False},
        {"$set": {"acknowledged": True, "acknowledged_at": now, "read": True}},
        return_document=ReturnDocument.AFTER,
    )


def mark_read(db: Database, nid: str, user_id: str) -> dict | None:
    return db.notifications.find_one_and_update(
        {"_id": nid, "user_id": user_id}, {"$set": {"read": True}},
        return_document=ReturnDocument.AFTER,
    )


# --------------------------------------------------------------------------
# customers' owners


def note_owner(db: Database, customer_id: str, owner_id: str | None, version: int,
               now: datetime) -> bool:
    """Keep the owner at `version` unless a later (or the same) version is
    known: events come at least once and in any order. True if it was kept."""
    try:
        result = db.owners.update_one(
            {"_id": customer_id, "version": {"$lt": version}},
            {"$set": {"owner_id": owner_id, "version": version, "at": now}}, upsert=True)
    except DuplicateKeyError:
        return False  # the document is there with this version or a later one
    return bool(result.modified_count or result.upserted_id is not None)


def find_owner(db: Database, customer_id: str | None) -> dict | None:
    return db.owners.find_one({"_id": customer_id}) if customer_id else None


# --------------------------------------------------------------------------
# heads (live stream)


def bump_head(db: Database, user_id: str, now: datetime) -> None:
    db.heads.update_one({"_id": user_id}, {"$inc": {"seq": 1}, "$set": {"at": now}},
                        upsert=True)


def head(db: Database, user_id: str) -> int:
    doc = db.heads.find_one({"_id": user_id})
    return int(doc["seq"]) if doc else 0


# --------------------------------------------------------------------------
# SMS deliveries


def claim_delivery(db: Database, delivery: dict) -> bool:
    """Exactly one caller ever creates a notification's delivery."""
    try:
        db.deliveries.insert_one(delivery)
        return True
    except DuplicateKeyError:
        return False


def find_delivery(db: Database, nid: str) -> dict | None:
    return db.deliveries.find_one({"_id": nid})


def find_deliveries(db: Database, ids: list[str]) -> dict[str, dict]:
    return {d["_id"]: d for d in (find_delivery(db, i) for i in ids) if d}


def save_delivery(db: Database, delivery: dict) -> None:
    """Whole-document write by `_id`: only by the holder of its retry claim."""
    db.deliveries.replace_one({"_id": delivery["_id"]}, delivery)


def record_attempt(db: Database, nid: str, attempt: dict) -> None:
    db.sms_attempts.insert_one({"_id": new_id(), "notification_id": nid, **attempt})


def attempts_of(db: Database, nid: str) -> list[dict]:
    return list(db.sms_attempts.find({"notification_id": nid}).sort("at", ASCENDING))


def schedule_retry(db: Database, nid: str, due_at: datetime) -> None:
    db.retries.replace_one({"_id": nid}, {"_id": nid, "due_at": due_at}, upsert=True)


def ensure_retry(db: Database, nid: str, due_at: datetime) -> None:
    """An attempt entry unless there is one: a running attempt's lease is left
    alone, so no second worker can take the same delivery."""
    db.retries.update_one({"_id": nid}, {"$setOnInsert": {"due_at": due_at}}, upsert=True)


def drop_retry(db: Database, nid: str) -> None:
    db.retries.delete_one({"_id": nid})


def due_retries(db: Database, now: datetime, limit: int = 100) -> list[dict]:
    return list(db.retries.find({"due_at": {"$lte": now}}).limit(limit))


def claim_retry(db: Database, nid: str, now: datetime, lease_until: datetime) -> bool:
    """Take the attempt due now by moving it a lease ahead: another worker
    no longer sees it due, and if this one dies it falls due again."""
    doc = db.retries.find_one_and_update(
        {"_id": nid, "due_at": {"$lte": now}}, {"$set": {"due_at": lease_until}})
    return doc is not None
