"""Difficulty alarms (困难报警), one open per customer (a unique index), and
the abandonments they licence.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.ids import new_id
from services.common.mongo import (
    update_unless_duplicate,
)
from services.customers.storage.paging import _page


class AlarmOpen(Exception):
    pass


def insert_alarm(db: Database, doc: dict) -> dict:
    doc = {"_id": new_id(), **doc, "status": "open", "open_for": doc["customer_id"],
           "used_at": None}
    try:
        db.alarms.insert_one(doc)
    except DuplicateKeyError:
        raise AlarmOpen(doc["customer_id"]) from None
    return doc


def find_alarm(db: Database, alarm_id: str) -> dict | None:
    return db.alarms.find_one({"_id": alarm_id})


def open_alarm_of(db: Database, customer_id: str) -> dict | None:
    return db.alarms.find_one({"open_for": customer_id})


def resolve_alarm(db: Database, alarm_id: str, fields: dict) -> dict | None:
    return db.alarms.find_one_and_update(
        {"_id": alarm_id, "status": "open"},
        {"$set": {**fields, "status": "resolved", "open_for": alarm_id}},
        return_document=ReturnDocument.AFTER)


def reopen_alarm(db: Database, alarm: dict) -> bool:
    """Undo a resolution whose reassignment failed (the customer was busy).
    False if it cannot be open again: another alarm on the customer is open
    (only a new owner could have raised it)."""
    return update_unless_duplicate(
        db.alarms, {"_id": alarm["_id"], "status": "resolved"},
        {"$set": {"status": "open", "open_for": alarm["customer_id"], "decision": None,
                  "verified": None, "note": None, "new_owner_id": None, "resolved_by": None,
                  "resolved_at": None}})


def void_alarm(db: Database, alarm_id: str, status: str, fields: dict) -> dict | None:
    """Close an alarm (open, or resolved by a reassignment that could not be
    made) whose customer changed hands; None if it is no longer in `status`."""
    return db.alarms.find_one_and_update(
        {"_id": alarm_id, "status": status},
        {"$set": {"decision": None, "verified": None, "new_owner_id": None, **fields,
                  "status": "void", "open_for": alarm_id}},
        return_document=ReturnDocument.AFTER)


def latest_alarm(db: Database, customer_id: str) -> dict | None:
    """The customer's most recent alarm, whatever its state. A customer has
    one open alarm at a time, so its alarms were raised one after another."""
    return db.alarms.find_one({"customer_id": customer_id},
                              sort=[("raised_at", DESCENDING), ("_id", DESCENDING)])


def use_alarm(db: Database, query: dict, now: datetime) -> dict | None:
    """Spend one `abandon` resolution (`query`: rules.spend_alarm_filter):
    a second abandon (after a claim back) needs a new alarm."""
    return db.alarms.find_one_and_update(query, {"$set": {"used_at": now}},
                                         sort=[("_id", DESCENDING)],
                                         return_document=ReturnDocument.AFTER)


def release_alarm(db: Database, alarm_id: str) -> None:
    """Give an alarm back when the abandonment it was spent on lost a race."""
    db.alarms.update_one({"_id": alarm_id}, {"$set": {"used_at": None}})


def list_alarms(db: Database, query: dict, skip: int, limit: int,
                      after_id: str | None = None) -> tuple[list[dict], int, bool]:
    return _page(db.alarms, query, skip, limit, after_id)


def insert_abandonment(db: Database, customer: dict, alarm_id: str, now: datetime) -> None:
    db.abandonments.insert_one({"_id": new_id(), "customer_id": customer["_id"],
                                "owner_id": customer["owner_id"],
                                "team_id": customer.get("team_id"), "alarm_id": alarm_id,
                                "at": now})
