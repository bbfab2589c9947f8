"""Short leases that serialize the edits of one record (or of the referral links).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError


class Locked(Exception):
    pass


def acquire_lock(db: Database, name: str, holder: str, now: datetime, ttl: timedelta) -> None:
    """A short lease serializing the rare changes that need it (re-linking a
    referral: two crossing re-links could each pass the cycle check alone)."""
    try:
        doc = db.locks.find_one_and_update(
            {"_id": name, "$or": [{"until": {"$lt": now}}, {"holder": holder}]},
            {"$set": {"holder": holder, "until": now + ttl}},
            upsert=True, return_document=ReturnDocument.AFTER)
    except DuplicateKeyError:  # held by someone else: the upsert collided
        raise Locked(name) from None
    if doc is None or doc["holder"] != holder:
        raise Locked(name)


def release_lock(db: Database, name: str, holder: str) -> None:
    db.locks.delete_one({"_id": name, "holder": holder})
