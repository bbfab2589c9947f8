"""The read log (`reads`), the bulk-read guard's hourly counters
(`read_quota`), the company's read settings (`settings`), and the export
runs (`exports`).

`reads`: {_id, at, user_id, user_name, team_id, role, customer_ids[], kind,
address, export_id?, refused?}: one plain insert per detail read, list page
or export page (reads.read_entry); an open refused is marked `refused`. The report lists a team's, a user's or everyone's,
newest first, in a time window: one index range each.

`read_quota`: {_id: "<user id>@<YYYYMMDDHH>", user_id, user_name, team_id,
hour, opened[], n, alerted_at, limit?, alerted_address?}: the distinct
customers a user opened in a clock hour. A new open is one conditional
update ({_id, opened: {$ne: id}, n: {$lt: limit}}): two opens racing for the
last place cannot both pass. `alerted_at` is set once, by the first refusal.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.mongo import after, count, page

NEWEST_FIRST = [("at", DESCENDING), ("_id", DESCENDING)]
ALERTS_FIRST = [("alerted_at", DESCENDING), ("_id", DESCENDING)]
OPEN_ATTEMPTS = 5


def ensure_read_indexes(db: Database) -> None:
    for name, scope in (("read_user", "user_id"), ("read_team", "team_id")):
        db.reads.create_index([(scope, ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)],
                              name=name)
    db.reads.create_index([("at", DESCENDING), ("_id", DESCENDING)], name="read_at")
    for name, scope in (("quota_user_alerts", "user_id"), ("quota_team_alerts", "team_id")):
        db.read_quota.create_index(
            [(scope, ASCENDING), ("alerted_at", DESCENDING), ("_id", DESCENDING)], name=name)
    db.read_quota.create_index([("alerted_at", DESCENDING), ("_id", DESCENDING)],
                               name="quota_alerts")


# ---------------------------------------------------------------- the log

def insert_read(db: Database, doc: dict) -> None:
    db.reads.insert_one(doc)


def mark_refused(db: Database, entry_id: str, code: str) -> None:
    db.reads.update_one({"_id": entry_id}, {"$set": {"refused": code}})


def find_read(db: Database, entry_id: str) -> dict | None:
    return db.reads.find_one({"_id": entry_id})


def list_reads(db: Database, flt: dict, skip: int, limit: int,
               last: dict | None = None) -> tuple[list[dict], int, bool]:
    """A page of the entries of `flt`, newest first (after the entry `last`),
    their total and whether more follow."""
    total = count(db.reads, flt)
    if last is not None:
        flt = after(flt, NEWEST_FIRST, last)
    docs, more = page(db.reads, flt, NEWEST_FIRST, skip, limit)
    return docs, total, more


def list_alerts(db: Database, flt: dict, limit: int) -> list[dict]:
    return list(db.read_quota.find(flt).sort(ALERTS_FIRST).limit(limit))


# ---------------------------------------------------------------- the guard

def open_in_quota(db: Database, quota: dict, customer_id: str,
                  limit: int) -> tuple[bool, dict | None]:
    """Count `customer_id` as opened in the hour of `quota` (reads.new_quota)
    unless `limit` distinct customers are opened already: (allowed, the
    hour's counter). Re-opening a customer of this hour is always allowed."""
    key = quota["_id"]
    for _ in range(OPEN_ATTEMPTS):
        doc = db.read_quota.find_one_and_update(
            {"_id": key, "opened": {"$ne": customer_id}, "n": {"$lt": limit}},
            {"$push": {"opened": customer_id}, "$inc": {"n": 1}},
            return_document=ReturnDocument.AFTER)
        if doc is not None:
            return True, doc
        doc = db.read_quota.find_one({"_id": key})
        if doc is None:
            try:
                db.read_quota.insert_one(quota)
                return True, quota
            except DuplicateKeyError:
                continue  # the hour's first open raced with another: count again
        if customer_id in (doc.get("opened") or []):
            return True, doc
        if int(doc.get("n") or 0) >= limit:
            return False, doc
        # the counter was made (or moved) by another open between the two
        # reads, and has room: count this one in it
    raise RuntimeError(f"could not count an open in {key}")


def mark_alerted(db: Database, key: str, limit: int, address: str | None,
                 now: datetime) -> dict | None:
    """The hour's first refusal (None for the later ones)."""
    return db.read_quota.find_one_and_update(
        {"_id": key, "alerted_at": None},
        {"$set": {"alerted_at": now, "limit": limit, "alerted_address": address}},
        return_document=ReturnDocument.AFTER)


# ---------------------------------------------------------------- settings

def get_settings(db: Database, settings_id: str) -> dict | None:
    return db.settings.find_one({"_id": settings_id})


def put_settings(db: Database, settings_id: str, values: dict, by: dict,
                 now: datetime) -> dict:
    return db.settings.find_one_and_update(
        {"_id": settings_id}, {"$set": {**values, "updated_by": by, "updated_at": now}},
        upsert=True, return_document=ReturnDocument.AFTER)


# ---------------------------------------------------------------- exports

def insert_export(db: Database, doc: dict) -> None:
    db.exports.insert_one(doc)


def find_export(db: Database, export_id: str) -> dict | None:
    return db.exports.find_one({"_id": export_id})


def count_exported(db: Database, export_id: str, n: int) -> None:
    if n:
        db.exports.update_one({"_id": export_id}, {"$inc": {"count": n}})


def finish_export(db: Database, export_id: str, fields: dict) -> dict | None:
    """Close a running export once (None if it was closed already)."""
    return db.exports.find_one_and_update(
        {"_id": export_id, "status": "running"}, {"$set": {**fields, "status": "done"}},
        return_document=ReturnDocument.AFTER)
