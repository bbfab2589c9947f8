"""Amendments (修改申请): pending, applying, approved or rejected, each step
one conditional write.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.database import Database

from services.common.ids import new_id
from services.customers.storage.paging import _page


def insert_amendment(db: Database, doc: dict) -> dict:
    doc = {"_id": new_id(), **doc}
    db.amendments.insert_one(doc)
    return doc


def find_amendment(db: Database, amendment_id: str) -> dict | None:
    return db.amendments.find_one({"_id": amendment_id})


def start_applying(db: Database, amendment_id: str, actor_id: str, now: datetime,
                   lease: timedelta) -> dict | None:
    """pending -> applying, for one approver only. An `applying` left by a
    crashed approver can be taken over once its lease has run out."""
    return db.amendments.find_one_and_update(
        {"_id": amendment_id, "$or": [
            {"status": "pending"},
            {"status": "applying", "lease_until": {"$lt": now}},
        ]},
        {"$set": {"status": "applying", "lease_until": now + lease, "decided_by": actor_id}},
        return_document=ReturnDocument.AFTER)


def finish_amendment(db: Database, amendment_id: str, from_status: str, fields: dict) -> dict | None:
    return db.amendments.find_one_and_update(
        {"_id": amendment_id, "status": from_status}, {"$set": fields},
        return_document=ReturnDocument.AFTER)


def list_amendments(db: Database, query: dict, skip: int, limit: int,
                          after_id: str | None = None) -> tuple[list[dict], int, bool]:
    return _page(db.amendments, query, skip, limit, after_id)
