"""Disputes (归属申诉), one open per customer (a unique index).
"""

from __future__ import annotations

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.ids import new_id
from services.common.mongo import (
    update_unless_duplicate,
)
from services.customers.storage.paging import _page


class DisputeOpen(Exception):
    pass


def insert_dispute(db: Database, doc: dict) -> dict:
    doc = {"_id": new_id(), **doc, "status": "open",
           "open_key": f"{doc['customer_id']}:{doc['claimant_id']}"}
    try:
        db.disputes.insert_one(doc)
    except DuplicateKeyError:
        raise DisputeOpen(doc["customer_id"]) from None
    return doc


def find_dispute(db: Database, dispute_id: str) -> dict | None:
    return db.disputes.find_one({"_id": dispute_id})


def resolve_dispute(db: Database, dispute_id: str, fields: dict) -> dict | None:
    return db.disputes.find_one_and_update(
        {"_id": dispute_id, "status": "open"},
        {"$set": {**fields, "status": "resolved", "open_key": dispute_id}},
        return_document=ReturnDocument.AFTER)


def void_dispute(db: Database, dispute_id: str, status: str, fields: dict) -> dict | None:
    """open (or resolved for the claimant, the owner change not made) -> void:
    the customer changed hands first. Frees `open_key`, so the claimant may
    file again; None if it is no longer in `status`."""
    return db.disputes.find_one_and_update(
        {"_id": dispute_id, "status": status},
        {"$set": {"winner_id": None, **fields, "status": "void", "open_key": dispute_id}},
        return_document=ReturnDocument.AFTER)


def reopen_dispute(db: Database, dispute: dict) -> bool:
    """Undo a resolution whose owner change failed (the customer was busy).
    False if it cannot be open again: the claimant filed anew meanwhile."""
    return update_unless_duplicate(
        db.disputes, {"_id": dispute["_id"], "status": "resolved"},
        {"$set": {"status": "open", "open_key": dispute["open_key"], "winner_id": None,
                  "resolved_by": None, "resolved_at": None}})


def list_disputes(db: Database, query: dict, skip: int, limit: int,
                        after_id: str | None = None) -> tuple[list[dict], int, bool]:
    return _page(db.disputes, query, skip, limit, after_id)
