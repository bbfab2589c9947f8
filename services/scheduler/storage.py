"""The scheduler database.

Collections:
- `reminders`: every reminder ever made (the record; nothing is deleted).
  Its `status` is written by people (cancel, acknowledge), not by firing.
- `firings`: `{_id: reminder id, fired_at, late, by}`, inserted once a
  reminder's `ReminderDue` went out: a reminder is fired when it has one.
- `queue`: `{_id: "<due_at>|<reminder id>", reminder_id, due_at}`
  for reminders that may still fire. Keyed by due time, "what is due now" is
  a range of `_id`s; the firing loop deletes the entries it is done with
  (fired, cancelled, moved by an edit).
- `locks`: `{_id: key, owner, until}`. Inserting the document takes the lock
  (the unique `_id` lets exactly one inserter win); a lock whose `until`
  passed belongs to a dead process and is taken over.
- `series`: one document per customer: the customer as last heard of
  (version, owner, birthday). It orders the customer's events (an older
  one changes nothing), and its lock (`series:<id>`) is the one under which
  the events are applied and its owner's reminders stored.
- `meta`: `{_id: "queue_format"}` once the queue of an earlier build (keyed
  by reminder id) has been converted.

Why the hot path uses only inserts and `_id` look-ups (one id, a list of
ids, a range of ids): those are what FerretDB 1.24 (SQLite, the local and CI
database; scripts/ferretdb) answers from an index. Any other filter scans the
whole collection, every tick. On MongoDB the same queries use the `_id`
index just as well.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.common.mongo import after, count, delete_by_ids, find_by_ids, insert_new, page


def ensure_indexes(db: Database) -> None:
    db.reminders.create_index([("user_id", ASCENDING), ("due_at", ASCENDING)], name="user_due")
    # a user's list ({user_id, kind: {$in: the user kinds}}, by due time):
    # one range per kind, merged in order; its count from the index
    db.reminders.create_index([("user_id", ASCENDING), ("kind", ASCENDING),
                               ("due_at", ASCENDING)], name="user_kind_due")
    # a customer's pending reminders, on every event about it (birthdays to
    # redo, an owner's reminders to move: a handover is thousands in a burst)
    db.reminders.create_index([("customer_id", ASCENDING), ("status", ASCENDING)],
                              name="customer_status")
    db.reminders.create_index([("status", ASCENDING), ("due_at", ASCENDING)], name="status_due")
    db.locks.create_index([("until", ASCENDING)], name="until")
    _convert_old_queue(db)


QUEUE_FORMAT = {"_id": "queue_format", "keyed_by": "due time"}


def _convert_old_queue(db: Database) -> None:
    """Entries of an earlier build (`_id` = reminder id) are never in a due
    range: re-queue them keyed by due time, once per database."""
    if db.meta.find_one({"_id": QUEUE_FORMAT["_id"]}):
        return
    old = list(db.queue.find({"reminder_id": {"$exists": False}}))
    for entry in old:
        if not entry.get("done") and entry.get("due_at"):
            enqueue(db, entry["_id"], entry["due_at"])
    remove_entries(db, [e["_id"] for e in old])
    try:
        db.meta.insert_one(dict(QUEUE_FORMAT))
    except DuplicateKeyError:
        pass  # another instance converted it at the same time


# --------------------------------------------------------------------------
# reminders


class AlreadyExists(Exception):
    pass


def insert_reminder(db: Database, doc: dict) -> None:
    """The queue entry, then the reminder: a crash in between leaves an
    entry without a reminder, which the firing loop skips (and drops once
    it is long past due), never a reminder that cannot fire."""
    enqueue(db, doc["_id"], doc["due_at"])
    try:
        db.reminders.insert_one(doc)
    except DuplicateKeyError:
        raise AlreadyExists(doc["_id"]) from None


def find_reminder(db: Database, rid: str) -> dict | None:
    return db.reminders.find_one({"_id": rid})


def find_reminders(db: Database, rids: list[str]) -> dict[str, dict]:
    return {d["_id"]: d for d in find_by_ids(db.reminders, rids)}


def save_reminder(db: Database, doc: dict) -> None:
    """Whole-document write by `_id`: only under the reminder's lock."""
    db.reminders.replace_one({"_id": doc["_id"]}, doc)


SOONEST_FIRST = [("due_at", ASCENDING), ("_id", ASCENDING)]


class UnknownCursor(Exception):
    pass


def list_reminders(db: Database, flt: dict, skip: int, limit: int,
                   after_id: str | None = None) -> tuple[list[dict], int, bool]:
    """A page of `flt`, soonest first (after the reminder `after_id`, one of
    `flt`'s user's), its total, and whether more follow. `limit` 0: all."""
    total = count(db.reminders, flt)
    if after_id is not None:
        last = db.reminders.find_one({"_id": after_id, "user_id": flt["user_id"]},
                                     {"due_at": 1})
        if last is None:
            raise UnknownCursor(after_id)
        flt = after(flt, SOONEST_FIRST, last)
    if not limit:
        return list(db.reminders.find(flt).sort(SOONEST_FIRST).skip(skip)), total, False
    docs, more = page(db.reminders, flt, SOONEST_FIRST, skip, limit)
    return docs, total, more


def pending_of_customer(db: Database, customer_id: str, kinds) -> list[dict]:
    return list(db.reminders.find({"customer_id": customer_id, "status": "pending",
                                   "kind": {"$in": list(kinds)}}))


# --------------------------------------------------------------------------
# the queue of reminders that may fire


def _time_key(at: datetime) -> str:
    """Fixed width, UTC, to the millisecond (what the database keeps of a
    time): the key made from a stored reminder's due_at is its entry's."""
    at = at.astimezone(UTC)
    return f"{at:%Y%m%dT%H%M%S}.{at.microsecond // 1000:03d}"


def queue_key(rid: str, due_at: datetime) -> str:
    """Time first: keys sort as their due times do."""
    return f"{_time_key(due_at)}|{rid}"


def queue_entry(rid: str, due_at: datetime) -> dict:
    return {"_id": queue_key(rid, due_at), "reminder_id": rid, "due_at": due_at}


def enqueue(db: Database, rid: str, due_at: datetime) -> None:
    """Idempotent: the same reminder at the same time is one entry."""
    try:
        db.queue.insert_one(queue_entry(rid, due_at))
    except DuplicateKeyError:
        pass


def dequeue(db: Database, rid: str, due_at: datetime) -> None:
    db.queue.delete_one({"_id": queue_key(rid, due_at)})


def due_entries(db: Database, now: datetime, limit: int = 0) -> list[dict]:
    """Entries due by `now`, at most `limit` (0: all). No sort: a sort by
    _id is not pushed down on FerretDB (every due entry would be read to
    sort them); the range is read from the _id index in its order there and
    on MongoDB alike, so a limited read takes the earliest."""
    # "~" sorts after the "|" that ends every key's time: all of `now` is in.
    bound = f"{_time_key(now)}~"
    return list(db.queue.find({"_id": {"$lte": bound}}).limit(limit))


def remove_entries(db: Database, keys: list[str]) -> None:
    delete_by_ids(db.queue, keys)


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


def find_firings(db: Database, rids: list[str]) -> dict[str, dict]:
    return {d["_id"]: d for d in find_by_ids(db.firings, rids)}


def fired_among(db: Database, rids: list[str]) -> set[str]:
    return {d["_id"] for d in find_by_ids(db.firings, rids, {"_id": 1})}


# --------------------------------------------------------------------------
# locks


def try_lock(db: Database, key: str, owner: str, until: datetime) -> bool:
    try:
        db.locks.insert_one({"_id": key, "owner": owner, "until": until})
        return True
    except DuplicateKeyError:
        return False


def try_lock_many(db: Database, keys: list[str], owner: str, until: datetime) -> list[str]:
    """The keys this call locked (one insert for all; those already locked
    by someone are refused one by one, as `try_lock` refuses)."""
    try:
        refused = set(insert_new(db.locks, [{"_id": k, "owner": owner, "until": until}
                                            for k in keys]))
    except BulkWriteError:
        unlock_many(db, keys, owner)  # whatever of ours got in
        raise
    return [k for i, k in enumerate(keys) if i not in refused]


def unlock(db: Database, key: str, owner: str) -> None:
    db.locks.delete_one({"_id": key, "owner": owner})


def unlock_many(db: Database, keys: list[str], owner: str) -> None:
    delete_by_ids(db.locks, keys, owner=owner)


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

