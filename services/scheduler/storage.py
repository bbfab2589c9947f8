"""The scheduler database.

Collections:
- `reminders`: every reminder ever made (the record; nothing is deleted).
- `queue`: one entry per reminder that may still fire, `{_id: reminder id,
  due_at}`; an entry becomes `{_id, done: true}` once the reminder fired or
  was cancelled, and done entries are purged in bulk.
- `locks`: `{_id: key, owner, until}`. Inserting the document takes the lock
  (the unique `_id` lets exactly one inserter win); a lock whose `until`
  passed belongs to a dead process and is taken over.
- `series`: one document per customer: the birthday state last heard of.

Why the hot path uses only inserts and `_id` look-ups: on FerretDB 1.24
(SQLite, the local and CI database) only `_id` equality reaches an index;
any other filter scans the whole collection under a collection lock, so a
per-reminder `find_one_and_update({status, due_at})` costs O(all reminders).
Taking a per-reminder lock by insert and then reading and replacing the
reminder by `_id` is O(1) there, and is just as correct on MongoDB.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, DESCENDING
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
    """The reminder, then its queue entry. A crash in between leaves a
    pending reminder without an entry; `requeue_orphans` repairs that."""
    try:
        db.reminders.insert_one(doc)
    except DuplicateKeyError:
        raise AlreadyExists(doc["_id"]) from None
    enqueue(db, doc["_id"], doc["due_at"])


def find_reminder(db: Database, rid: str) -> dict | None:
    return db.reminders.find_one({"_id": rid})


def save_reminder(db: Database, doc: dict) -> None:
    """Whole-document write by `_id`: only under the reminder's lock."""
    db.reminders.replace_one({"_id": doc["_id"]}, doc)


def list_reminders(db: Database, flt: dict, skip: int, limit: int) -> tuple[list[dict], int]:
    total = db.reminders.count_documents(flt)
    docs = list(db.reminders.find(flt).sort([("due_at", ASCENDING), ("_id", ASCENDING)])
                .skip(skip).limit(limit))
    return docs, total


def pending_of_customer(db: Database, customer_id: str, kinds) -> list[dict]:
    return list(db.reminders.find({"customer_id": customer_id, "status": "pending",
                                   "kind": {"$in": list(kinds)}}))


def pending_due(db: Database, now: datetime) -> list[dict]:
    return list(db.reminders.find({"status": "pending", "due_at": {"$lte": now}},
                                  {"_id": 1, "due_at": 1}))


def count_by_status(db: Database) -> dict:
    rows = db.reminders.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}])
    return {r["_id"]: r["n"] for r in rows}


# --------------------------------------------------------------------------
# the queue of reminders that may fire


def enqueue(db: Database, rid: str, due_at: datetime) -> None:
    db.queue.replace_one({"_id": rid}, {"_id": rid, "due_at": due_at}, upsert=True)


def dequeue(db: Database, rid: str) -> None:
    db.queue.replace_one({"_id": rid}, {"_id": rid, "done": True})


def queue_entry(db: Database, rid: str) -> dict | None:
    return db.queue.find_one({"_id": rid})


def due_entries(db: Database, now: datetime, limit: int) -> list[dict]:
    return list(db.queue.find({"due_at": {"$lte": now}}).limit(limit))


def purge_done(db: Database) -> int:
    return db.queue.delete_many({"done": True}).deleted_count


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


def latest_reminders(db: Database, limit: int = 5) -> list[dict]:
    return list(db.reminders.find().sort("created_at", DESCENDING).limit(limit))
