"""The pipeline's stage list (one versioned document) and the stage changes.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database

from services.common.ids import new_id
from services.customers import stages
from services.customers.storage.paging import _chunks

STAGES_ID = "pipeline"


def get_stages(db: Database) -> list[dict]:
    doc = db.settings.find_one({"_id": STAGES_ID})
    return doc["stages"] if doc else stages.default_stages()


def put_stages(db: Database, new: list[dict], actor_id: str, now: datetime) -> dict:
    """Replace the list; `version` orders the StagesChanged events."""
    return db.settings.find_one_and_update(
        {"_id": STAGES_ID},
        {"$set": {"stages": new, "updated_by": actor_id, "updated_at": now},
         "$inc": {"version": 1}},
        upsert=True, return_document=ReturnDocument.AFTER)


def insert_stage_change(db: Database, customer_id: str, at: datetime, from_stage, to_stage,
                        actor_id: str, version: int, note: str | None) -> None:
    db.stage_changes.insert_one({"_id": new_id(), "customer_id": customer_id, "at": at,
                                 "from": from_stage, "to": to_stage, "by": actor_id,
                                 "version": version, "note": note})


def stage_changes_of(db: Database, customer_ids: list[str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for chunk in _chunks(customer_ids):
        for doc in db.stage_changes.find({"customer_id": {"$in": chunk}}).sort(
                [("customer_id", ASCENDING), ("at", ASCENDING), ("version", ASCENDING)]):
            out.setdefault(doc["customer_id"], []).append(doc)
    for changes in out.values():
        changes.sort(key=lambda d: (d["at"], d.get("version") or 0))
    return out
