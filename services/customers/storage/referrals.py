"""Referral links (转介绍): a customer's parent, the children of many, their counts.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymongo import ASCENDING
from pymongo.database import Database

from services.common.mongo import (
    count,
)
from services.customers.storage.paging import _chunks

# The fields a tree node or an ancestor needs; a 10,000-node tree must not
# drag every contact and follow-up of every customer along.
NODE_FIELDS = {"_id": 1, "company_name": 1, "owner_id": 1, "owner_name": 1, "status": 1,
               "stage": 1, "referred_by": 1, "team_id": 1}


def referral_parent(db: Database, customer_id: str) -> dict | None:
    return db.customers.find_one({"_id": customer_id}, NODE_FIELDS)


def referral_children(db: Database, parent_ids: list[str], limit: int) -> list[dict]:
    """Customers referred by any of `parent_ids`, at most `limit`, oldest first."""
    out: list[dict] = []
    for chunk in _chunks(parent_ids):
        room = limit - len(out)
        if room <= 0:
            break
        out.extend(db.customers.find({"referred_by": {"$in": chunk}}, NODE_FIELDS)
                   .sort("_id", ASCENDING).limit(room))
    out.sort(key=lambda d: d["_id"])
    return out


def referral_counts(db: Database, parent_ids: Iterable[str]) -> dict[str, int]:
    """How many customers each of `parent_ids` referred: a count per id
    (an index's count, one row each on FerretDB here), not a read of the
    referred customers."""
    counts: dict[str, int] = {}
    for pid in dict.fromkeys(parent_ids):
        n = count(db.customers, {"referred_by": pid})
        if n:
            counts[pid] = n
    return counts
