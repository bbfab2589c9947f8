"""The scheduler database.

Collections:
- `reminders`: every reminder ever made (the record; nothing is deleted).
  Its `status` is written by people (cancel, acknowledge), not by firing.
- `firings`: `{_id: reminder id, fired_at, late, by}`, inserted once a
  reminder's `ReminderDue` went out: a reminder is fired when it has one.
- `queue`: `{_id: reminder id, due_at, queued_at}` for reminders that may
  still fire; entries of fired reminders are purged in bulk below a due-time
  watermark, cancelled ones become `{_id, done: true}`.
- `locks`: `{_id: key, owner, until}`. Inserting the document takes the lock
  (the unique `_id` lets exactly one inserter win); a lock whose `until`
  passed belongs to a dead process and is taken over.
- `series`: one document per customer: the birthday state last heard of.

Why firing uses only inserts and `_id` look-ups: on FerretDB 1.24 (SQLite,
the local and CI database) only an insert and a `find` by `_id` equality
reach an index. Every update, replace or delete, even by `_id`, and every
other filter scans the whole collection (under a collection lock), so a
per-reminder `find_one_and_update` or `replace_one` on `reminders` costs
O(all reminders). Lock by insert, read by `_id`, record by insert: O(1)
there, and just as correct on MongoDB.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError


def ensure_indexes(db: Database) -> None:
    db.reminders.create_index([("user_id", ASCENDING), ("due_at", ASCENDING)], name="user_due")
    db.reminders.create_index([("customer_id", ASCENDING), ("status", ASCENDING)],
                              name="customer_status")
    db.reminders.create_index([("status", ASCENDING), ("due_at", ASCENDING)], name="status_due")
    db.queue.create_index([("due_at", ASCENDING)], name="due")
    db.locks.create_index([("owner", ASCENDING)], name="owner")
    db.locks.create_index([("until", ASCENDING)], name="until")


# --------------------------------------------------------------------------
# reminders


class AlreadyExists(Exception):
    pass


def insert_reminder(db: Database, doc: dict) -> None:
    """The queue entry, then the reminder: a crash in between leaves an
    entry without a reminder, which the firing loop skips (and drops once
    it is long past due), never a reminder that cannot fire."""
    try:
        db.queue.insert_one({"_id": doc["_id"], "due_at": doc["due_at"],
                             "queued_at": datetime.now(UTC)})
    except DuplicateKeyError:
        pass  # the same reminder again (an idempotent retry): its entry is there
    try:
        db.reminders.insert_one(doc)
    except DuplicateKeyError:
        raise AlreadyExists(doc["_id"]) from None


def find_reminder(db: Database, rid: str) -> dict | None:
    return db.reminders.find_one({"_id": rid})


def save_reminder(db: Database, doc: dict) -> None:
    """Whole-document write by `_id`: only under the reminder's lock."""
    db.reminders.replace_one({"_id": doc["_id"]}, doc)


def list_reminders(db: Database, flt: dict, skip: int, limit: int) -> tuple[list[dict], int]:
    """`limit` 0: all of them."""
    total = db.reminders.count_documents(flt)
    docs = list(db.reminders.find(flt).sort([("due_at", ASCENDING), ("_id", ASCENDING)])
                .skip(skip).limit(limit))
    return docs, total


def pending_of_customer(db: Database, customer_id: str, kinds) -> list[dict]:
    return list(db.reminders.find({"customer_id": customer_id, "status": "pending",
                                   "kind": {"$in": list(kinds)}}))


# --------------------------------------------------------------------------
# the queue of reminders that may fire


def enqueue(db: Database, rid: str, due_at: datetime) -> None:
    """(Re)arm an entry: edits and revivals only, not the hot path."""
    db.queue.replace_one({"_id": rid}, {"_id": rid, "due_at": due_at,
                                        "queued_at": datetime.now(UTC)}, upsert=True)


def dequeue(db: Database, rid: str) -> None:
    db.queue.replace_one({"_id": rid}, {"_id": rid, "done": True})


def queue_entry(db: Database, rid: str) -> dict | None:
    return db.queue.find_one({"_id": rid})


def due_entries(db: Database, now: datetime, limit: int = 0) -> list[dict]:
    return list(db.queue.find({"due_at": {"$lte": now}}).limit(limit))


def purge_below(db: Database, watermark: datetime, inclusive: bool, scanned_at: datetime) -> int:
    """Drop the entries due before `watermark` that existed when the queue
    was scanned (all found fired then); a reminder queued since is kept."""
    op = "$lte" if inclusive else "$lt"
    return db.queue.delete_many({"due_at": {op: watermark},
                                 "queued_at": {"$lte": scanned_at}}).deleted_count


def purge_done(db: Database) -> int:
    return db.queue.delete_many({"done": True}).deleted_count


# --------------------------------------------------------------------------
# firings


def record_firing(db: Database, firing: dict) -> bool:
    try:
        db.firings.insert_one(firing)
        return True
    except DuplicateKeyError:
        return False


def find_firing(db: Database, rid: str) -> dict | None:
    return db.firings.find_one({"_id": rid})


def count_firings(db: Database) -> int:
    return db.firings.count_documents({})


# --------------------------------------------------------------------------
# locks


def try_lock(db: Database, key: str, owner: str, until: datetime) -> bool:
    try:
        db.locks.insert_one({"_id": key, "owner": owner, "until": until})
        return True
    except DuplicateKeyError:
        return False


def unlock(db: Database, key: str, owner: str) -> None:
    db.locks.delete_one({"_id": key, "owner": owner})


def unlock_all(db: Database, owner: str) -> None:
    db.locks.delete_many({"owner": owner})


def expired_locks(db: Database, now: datetime, limit: int = 1000) -> list[dict]:
    return list(db.locks.find({"until": {"$lt": now}}).limit(limit))


def break_lock(db: Database, key: str, now: datetime) -> bool:
    """Remove a lock whose holder died (its lease ran out); the work it
    guarded is then redone by whoever takes the lock next."""
    return db.locks.delete_one({"_id": key, "until": {"$lt": now}}).deleted_count == 1


# --------------------------------------------------------------------------
# birthday series


def find_series(db: Database, customer_id: str) -> dict | None:
    return db.series.find_one({"_id": customer_id})


def save_series(db: Database, series: dict) -> None:
    """Only under the customer's series lock."""
    db.series.replace_one({"_id": series["_id"]}, series, upsert=True)

