"""The duplicate guard's keys: plain keys are unique documents in `claims`;
names are an append-only log per core in `name_claims` (see
normalize.name_claims); phones a company shares are exempt.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from datetime import datetime

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.errors import Conflict
from services.customers import normalize as norm
from services.customers.domain import is_name_key, split_name_key
from services.customers.storage.customers import log

NAME_CLAIM_ATTEMPTS = 50


MAX_STREAM_ENTRIES = 10000


# A name log is read this many entries a query (most logs have one or two).
STREAM_READ_BATCH = 8


def claim_record(customer_id: str, meta: Mapping, now: datetime) -> dict:
    return {"customer_id": customer_id, "owner_id": meta.get("owner_id"),
            "owner_name": meta.get("owner_name"), "company_name": meta.get("company_name"),
            "claimed_at": now}


def read_stream(db: Database, stream: str) -> list[dict]:
    """Every entry of a name stream, in order. Read by _id (1, 2, ... until
    one is missing): a log is appended only right after its last entry.

    A log longer than MAX_STREAM_ENTRIES is refused with a 409 rather than
    cut short: a decision on part of the log could miss a claim."""
    entries = []
    for first in itertools.count(1, STREAM_READ_BATCH):
        ids = [f"{stream}#{seq}" for seq in range(first, first + STREAM_READ_BATCH)]
        found = {d["_id"]: d for d in db.name_claims.find({"_id": {"$in": ids}})}
        for seq, entry_id in enumerate(ids, start=first):
            doc = found.get(entry_id)
            if doc is None:
                return entries
            if seq > MAX_STREAM_ENTRIES:
                raise Conflict("name_log_full",
                               "this company name has too many claim records to be decided; "
                               "an admin has to look at it")
            entries.append(doc)


def _active_claims(entries: list[dict]) -> list[dict]:
    released = {e["of"] for e in entries if e.get("op") == "release"}
    return [e for e in entries if e.get("op", "claim") == "claim" and e["seq"] not in released]


def _claim_name(db: Database, customer_id: str, key: str, meta: Mapping,
                now: datetime) -> tuple[bool, list[dict]]:
    """(newly taken, conflicting claims) for one name key."""
    stream, region = split_name_key(key)
    record = claim_record(customer_id, meta, now)
    # Most names are new: append entry 1 without reading. If it exists, the
    # insert fails and the log is read; a successful insert of entry 1 means
    # the log was empty, so the claim is allowed.
    try:
        db.name_claims.insert_one({**norm.name_claim_entry(stream, 1, region, customer_id),
                                   **record})
        return True, []
    except DuplicateKeyError:
        pass
    for _ in range(NAME_CLAIM_ATTEMPTS):
        entries = read_stream(db, stream)
        decision = norm.name_claim_decision(entries, region)
        if decision.retry:
            continue
        own = [c for c in decision.conflicts if c["customer_id"] == customer_id]
        others = [c for c in decision.conflicts if c["customer_id"] != customer_id]
        if others:
            return False, others
        if any(c.get("region", "") == region for c in own):
            return False, []  # this customer holds it already
        entry = norm.name_claim_entry(stream, decision.next_seq, region, customer_id)
        try:
            db.name_claims.insert_one({**entry, **record})
            return True, []
        except DuplicateKeyError:
            continue  # someone appended first: decide again on the longer log
    raise Conflict("busy", "the company name is being claimed by others right now; try again")


def _claim_plain(db: Database, customer_id: str, key: str, meta: Mapping,
                 now: datetime) -> tuple[bool, list[dict]]:
    record = claim_record(customer_id, meta, now)
    for _ in range(NAME_CLAIM_ATTEMPTS):
        try:
            db.claims.insert_one({"_id": key, **record})
            return True, []
        except DuplicateKeyError:
            holder = db.claims.find_one({"_id": key})
        if holder is None:
            continue  # released between our insert and our read: try again
        if holder["customer_id"] == customer_id:
            return False, []
        return False, [holder]
    raise Conflict("busy", "a key of this customer is being claimed by others right now; "
                           "try again")


def claim_keys(db: Database, customer_id: str, keys: Iterable[str], now: datetime,
               meta: Mapping | None = None) -> dict[str, list[dict]]:
    """Claim every key for `customer_id`, all or nothing.

    `meta` ({owner_id, owner_name, company_name}) is recorded on each claim so
    that a rival entering the same company at the same moment can be told who
    has it before the customer document is stored. Keys this customer holds
    already are kept as they are (an amendment claims its new keys before it
    releases the old ones).

    Returns {} when every key is held, else {key: [conflicting claim records]}
    for the first key another customer holds, after releasing every key this
    call took. Any error (a lost connection, a log that kept changing) also
    releases what was taken before it is raised: a key left behind would be
    held by a customer that is never stored, and refuse the company for good.
    The key whose write failed is not released here (this customer may have
    held it before the call); a caller for whom every key is new (create)
    releases all of them.
    """
    meta = meta or {}
    taken: list[str] = []
    try:
        for key in sorted(set(keys), key=claim_order):
            claim = _claim_name if is_name_key(key) else _claim_plain
            new, conflicts = claim(db, customer_id, key, meta, now)
            if conflicts:
                release_keys(db, customer_id, taken)
                return {key: conflicts}
            if new:
                taken.append(key)
    except BaseException:
        release_quietly(db, customer_id, taken)
        raise
    return {}


def claim_order(key: str) -> tuple[bool, str]:
    """The one order every claimant takes its keys in: the plain keys
    (sorted), then the name.

    One total order is what makes racing entries safe: two entries that
    share keys meet first on the earliest shared one, where a unique insert
    (or a log append) lets exactly one through, so they cannot each hold a
    key the other needs and both lose. A customer has one name key, and all
    names of a core meet in one log, which sorts after every plain key.

    The name comes last because a plain claim is one insert and a lost one
    writes nothing, while a name claim appends to the name's log and its
    release appends again: most refused entries lose on a phone or an
    e-mail, and taking the name first wrote a claim and a release into the
    log for each of them, until the log grew past MAX_STREAM_ENTRIES and
    the name could no longer be decided.
    """
    return is_name_key(key), key


def release_quietly(db: Database, customer_id: str, keys: Iterable[str]) -> None:
    """release_keys on an error path: a failure here is logged, not raised,
    so the caller re-raises the error that brought it here."""
    keys = list(keys)
    try:
        release_keys(db, customer_id, keys)
    except Exception:
        log.exception("could not release the claims of %s: %s", customer_id, sorted(keys))


def _release_name(db: Database, customer_id: str, key: str) -> None:
    stream, region = split_name_key(key)
    for _ in range(NAME_CLAIM_ATTEMPTS):
        entries = read_stream(db, stream)
        mine = [e for e in _active_claims(entries)
                if e["customer_id"] == customer_id and e.get("region", "") == region]
        if not mine:
            return
        seq = len(entries) + 1
        try:
            db.name_claims.insert_one(norm.name_release_entry(stream, seq, mine[0]["seq"],
                                                              customer_id))
        except DuplicateKeyError:
            continue
    raise RuntimeError(f"could not release {key}")


def release_keys(db: Database, customer_id: str, keys: Iterable[str]) -> None:
    """Give up keys this customer holds (a key someone else holds is left
    alone, so releasing is safe to repeat)."""
    for key in sorted(set(keys), key=claim_order, reverse=True):
        if is_name_key(key):
            _release_name(db, customer_id, key)
        else:
            db.claims.delete_one({"_id": key, "customer_id": customer_id})


def holders(db: Database, keys: Iterable[str]) -> dict[str, list[dict]]:
    """Read-only: who holds each key ({key: [claim records]}), as a new entry
    with those keys would conflict (the region rule included)."""
    out: dict[str, list[dict]] = {}
    for key in keys:
        if is_name_key(key):
            stream, region = split_name_key(key)
            decision = norm.name_claim_decision(read_stream(db, stream), region)
            found = list(decision.conflicts)
        else:
            doc = db.claims.find_one({"_id": key})
            found = [doc] if doc else []
        if found:
            out[key] = found
    return out


def shared_phones(db: Database, phones: Iterable[str]) -> set[str]:
    phones = list(dict.fromkeys(phones))
    if not phones:
        return set()
    return {d["_id"] for d in db.shared_phones.find({"_id": {"$in": phones}}, {"_id": 1})}


def mark_shared_phone(db: Database, phone: str, note: str | None, actor: Mapping,
                      now: datetime) -> tuple[dict, int]:
    """Mark a number as shared and free its claim: from now on it makes no
    two companies the same. Returns (the record, claims released)."""
    doc = {"_id": phone, "note": note, "marked_by": {"id": actor["id"], "name": actor["name"]},
           "marked_at": now}
    try:
        db.shared_phones.insert_one(doc)
    except DuplicateKeyError:
        doc = db.shared_phones.find_one({"_id": phone}) or doc
    released = db.claims.delete_many({"_id": norm.phone_key(phone)}).deleted_count
    return doc, released


def list_shared_phones(db: Database) -> list[dict]:
    return list(db.shared_phones.find().sort("_id", ASCENDING))
