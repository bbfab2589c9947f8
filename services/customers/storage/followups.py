"""Follow-ups (跟进记录): append and page through a customer's.
"""

from __future__ import annotations

from pymongo.database import Database

from services.common.mongo import (
    after,
    count,
    page,
)
from services.customers.storage.customers import NEWEST_FIRST


def insert_followup(db: Database, doc: dict) -> dict:
    db.followups.insert_one(doc)
    return doc


def list_followups(db: Database, customer_id: str, skip: int, limit: int,
                   after_id: str | None = None) -> tuple[list[dict], int, bool]:
    flt = {"customer_id": customer_id}
    total = count(db.followups, flt)
    if after_id is not None:
        flt = after(flt, NEWEST_FIRST, {"_id": after_id})
    docs, more = page(db.followups, flt, NEWEST_FIRST, skip, limit)
    return docs, total, more
