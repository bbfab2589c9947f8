"""The audit trail: appending to a customer's hash chain (its head read by
key, so an append costs the same at any length) and reading it back.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.mongo import (
    insert_new,
)
from services.customers import audit

AUDIT_APPEND_ATTEMPTS = 100


def _head(db: Database, customer_id: str) -> dict | None:
    """The chain's head. A chain of an earlier build (or a create that
    stopped between its two writes) has none yet: its last entry is read
    once, through the (customer_id, seq) index, and becomes the head."""
    head = db.audit_heads.find_one({"_id": customer_id})
    if head is not None:
        return head
    last = db.audit.find_one({"customer_id": customer_id}, sort=[("seq", DESCENDING)])
    if last is None:
        return None
    insert_new(db.audit_heads, [{"_id": customer_id, "seq": last["seq"], "hash": last["hash"]}])
    return db.audit_heads.find_one({"_id": customer_id})


def _move_head(db: Database, customer_id: str, seq: int, entry: dict) -> None:
    """head seq -> the entry after it (no-op if someone moved it already)."""
    db.audit_heads.update_one({"_id": customer_id, "seq": seq},
                              {"$set": {"seq": entry["seq"], "hash": entry["hash"]}})


def append_audit(db: Database, customer_id: str, actor: dict | None, action: str,
                 before, after, at: datetime) -> dict:
    """Append one entry to a customer's chain, after its head (read by key).

    Two writers racing for the same customer both read the same head; the
    unique (customer_id, seq) index lets one insert win. The other moves the
    head to the winner's entry (read by that key; the winner may have
    stopped before moving it) and chains after it, so the chain never forks
    and a head left behind is caught up by the next writer.
    """
    for _ in range(AUDIT_APPEND_ATTEMPTS):
        head = _head(db, customer_id)
        last = {"seq": head["seq"], "hash": head["hash"]} if head else None
        entry = audit.build_entry(last, customer_id, actor, action, before, after, at)
        try:
            db.audit.insert_one(entry)
        except DuplicateKeyError:
            taken = db.audit.find_one({"customer_id": customer_id, "seq": entry["seq"]})
            if head and taken:
                _move_head(db, customer_id, head["seq"], taken)
            continue
        if head:
            _move_head(db, customer_id, head["seq"], entry)
        else:
            insert_new(db.audit_heads, [{"_id": customer_id, "seq": entry["seq"],
                                         "hash": entry["hash"]}])
        return entry
    raise RuntimeError(f"could not append to the audit trail of {customer_id}")


def start_audit(db: Database, customer_id: str, actor: dict | None, action: str,
                before, after, at: datetime) -> dict:
    """The first entry of a new customer's chain, and its head, written
    before the customer document exists: nothing to read before it, and
    nobody can append to the chain ahead of it (the unique index still
    refuses a second first entry)."""
    entry = audit.build_entry(None, customer_id, actor, action, before, after, at)
    db.audit.insert_one(entry)
    insert_new(db.audit_heads, [{"_id": customer_id, "seq": entry["seq"], "hash": entry["hash"]}])
    return entry




def audit_entries(db: Database, customer_id: str) -> list[dict]:
    return list(db.audit.find({"customer_id": customer_id}).sort("seq", ASCENDING))


def audit_trail(db: Database, customer_id: str, skip: int, limit: int,
                after_seq: int | None = None) -> tuple[list[dict], int, bool, bool]:
    """(one page of a customer's entries, their total, whether the chain is
    intact, whether more follow). Verifying needs every entry of the chain
    (its length, not the collection's: the (customer_id, seq) index), so it
    is read once and the page cut from it; the head (read by key) tells a
    chain cut short from one that ends there."""
    entries = list(db.audit.find({"customer_id": customer_id}).sort("seq", ASCENDING))
    head = db.audit_heads.find_one({"_id": customer_id})
    intact = audit.verify_chain(entries) and audit.reaches_head(entries, head)
    rest = entries if after_seq is None else [e for e in entries if e["seq"] > after_seq]
    return rest[skip:skip + limit], len(entries), intact, len(rest) > skip + limit
