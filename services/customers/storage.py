"""The customers database."""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.customers import audit

AUDIT_APPEND_ATTEMPTS = 100


def ensure_indexes(db: Database) -> None:
    db.audit.create_index([("customer_id", ASCENDING), ("seq", ASCENDING)], unique=True,
                          name="customer_seq_unique")


def append_audit(db: Database, customer_id: str, actor: dict | None, action: str,
                 before, after, at: datetime) -> dict:
    """Append one entry to a customer's chain.

    Two writers racing for the same customer both read the same last entry;
    the unique (customer_id, seq) index lets one insert win and the other
    re-reads and chains after it, so the chain never forks.
    """
    for _ in range(AUDIT_APPEND_ATTEMPTS):
        last = db.audit.find_one({"customer_id": customer_id}, sort=[("seq", DESCENDING)])
        entry = audit.build_entry(last, customer_id, actor, action, before, after, at)
        try:
            db.audit.insert_one(entry)
            return entry
        except DuplicateKeyError:
            continue
    raise RuntimeError(f"could not append to the audit trail of {customer_id}")


def audit_entries(db: Database, customer_id: str) -> list[dict]:
    return list(db.audit.find({"customer_id": customer_id}).sort("seq", ASCENDING))
