"""The customers database: customers, the duplicate guard's claims, follow-ups,
shared phones and the audit trail.

Collections and document shapes
-------------------------------

``customers`` (never deleted)::

    {_id: str (ObjectId string), company_name: str (as entered, trimmed),
     credit_code: str|None (normalized, 18 chars), phones: [E.164], emails: [lower case],
     address, industry, contacts: [{name, title, phone (E.164|None), decision_level 1-5}],
     birthday: "MM-DD"|None, birthday_label: str|None, birthday_kind: "birthday"|"anniversary",
     referred_by: customer id|None, expected_value_fen: int, stage: int (percent),
     status: "active"|"pool", owner_id: str|None (None in the pool), owner_name: str|None,
     team_id: str|None, created_by: {id, name}, created_at, updated_at: datetime (UTC),
     owner_since: datetime (the last owner change; absent: since creation),
     version: int (1 at creation; +1 with every change, carried by every event),
     name_core: str, name_region: "广东/深圳"|"" (normalize.NameKey of company_name),
     name_grams: [str] (domain.name_terms(name_core): ?q= search of the list),
     claim_keys: [str] (the keys this customer holds, domain.claim_keys; see below)}

``claims`` — plain keys (phone, credit code, e-mail), one document per key, the
unique ``_id`` is the guard::

    {_id: "phone:+8613800138000" | "credit:<code>" | "email:<address>",
     customer_id, owner_id, owner_name, company_name, claimed_at}

``name_claims`` — company names: an append-only log per name core (the scheme
of normalize.name_claims; ``_id`` uniqueness serializes appends)::

    {_id: "name:<core>#<seq>", stream: "name:<core>", seq: 1.., op: "claim"|"release",
     region: "广东/深圳"|"", customer_id, of: <seq> (releases), owner_id, owner_name,
     company_name, claimed_at}

``followups`` (append-only): {_id, customer_id, content, contact_name, channel,
author: {id, name}, created_at}.

``name_terms`` — the near-match index, derived from name_core/name_region
(index_name / unindex_name keep it in step when a name changes); a term has 8
slots::

    {_id: "<term of domain.search_grams(core)>#<slot 0-7>", c: customer_id, k: core, r: region}

``shared_phones``: {_id: E.164, note, marked_by: {id, name}, marked_at} — numbers
that are no duplicate-guard key (a switchboard many companies share).

``audit``: the hash chain of audit.py, one chain per customer; ``audit_heads``:
the last entry of each chain ({_id: customer_id, seq, hash}).

Claim keys as strings (domain.py): ``phone:…``, ``credit:…``, ``email:…`` and
``name:<core>@<region>``. `claim_keys` takes them in one global order (see
`claim_order`: the plain keys sorted, then the name), inserting one claim at
a time; the first key another customer holds stops it, and it releases what
it took before answering (or before re-raising any error), so a lost race or
a failed write leaves nothing behind. A claim is decided by a
single-document insert under a unique _id, never by a read: a name-log
append reads the log to decide the region rule, but its insert of the next
sequence number fails if anyone appended since.
"""

from __future__ import annotations

import itertools
import logging
import zlib
from collections.abc import Iterable, Mapping
from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.errors import Conflict
from services.common.mongo import after, count, delete_by_ids, find_by_ids, insert_new, page
from services.customers import audit
from services.customers import normalize as norm
from services.customers.domain import is_name_key, split_name_key

AUDIT_APPEND_ATTEMPTS = 100
NAME_CLAIM_ATTEMPTS = 50
MAX_STREAM_ENTRIES = 10000
# A name log is read this many entries a query (most logs have one or two).
STREAM_READ_BATCH = 8
NAME_TERM_SLOTS = 8
# Earlier builds split the index into 8 collections (a lookup by _id was a
# scan on FerretDB then); ensure_indexes folds them into `name_terms`.
OLD_TERM_SHARDS = [f"name_terms_{i}" for i in range(8)]

log = logging.getLogger(__name__)


# The customer list's scopes (an owner, a team, the pool, everyone), each
# alone, by stage and by name grams, newest first: each list and its count
# reads one index range (domain.list_filter), the page and its total cost the
# same at any size. The grams of one name are ~10 keys per index.
CUSTOMER_INDEXES = {
    "owner": [("owner_id", ASCENDING), ("_id", DESCENDING)],
    "owner_stage": [("owner_id", ASCENDING), ("stage", ASCENDING), ("_id", DESCENDING)],
    "owner_grams": [("owner_id", ASCENDING), ("name_grams", ASCENDING), ("_id", DESCENDING)],
    "team": [("team_id", ASCENDING), ("_id", DESCENDING)],
    "team_stage": [("team_id", ASCENDING), ("stage", ASCENDING), ("_id", DESCENDING)],
    "team_grams": [("team_id", ASCENDING), ("name_grams", ASCENDING), ("_id", DESCENDING)],
    "status": [("status", ASCENDING), ("_id", DESCENDING)],
    "status_stage": [("status", ASCENDING), ("stage", ASCENDING), ("_id", DESCENDING)],
    "stage": [("stage", ASCENDING), ("_id", DESCENDING)],
    "grams": [("name_grams", ASCENDING), ("_id", DESCENDING)],
    "phones": [("phones", ASCENDING)],
    "credit_code": [("credit_code", ASCENDING)],
    "referred_by": [("referred_by", ASCENDING)],
    # the integrity report's "entered by him"
    "created_by": [("created_by.id", ASCENDING)],
}
# Replaced by "grams" (ordered by _id too, so a page after a cursor is one range).
OLD_CUSTOMER_INDEXES = ("name_grams",)


def ensure_indexes(db: Database) -> None:
    db.audit.create_index([("customer_id", ASCENDING), ("seq", ASCENDING)], unique=True,
                          name="customer_seq_unique")
    db.name_claims.create_index([("stream", ASCENDING), ("seq", ASCENDING)], name="stream_seq")
    for name, keys in CUSTOMER_INDEXES.items():
        db.customers.create_index(keys, name=name)
    for name in set(OLD_CUSTOMER_INDEXES) & set(db.customers.index_information()):
        db.customers.drop_index(name)
    db.followups.create_index([("customer_id", ASCENDING), ("_id", DESCENDING)],
                              name="customer_followups")
    _fold_old_term_shards(db)


def _fold_old_term_shards(db: Database) -> None:
    for name in set(OLD_TERM_SHARDS) & set(db.list_collection_names()):
        batch = []
        for doc in db[name].find():
            batch.append(doc)
            if len(batch) >= 1000:
                insert_new(db.name_terms, batch)
                batch = []
        insert_new(db.name_terms, batch)
        db.drop_collection(name)


# ---------------------------------------------------------------- audit


# ``audit_heads``: {_id: customer_id, seq, hash}, the last entry of each
# chain, read by key: an append costs the same with ten entries stored or ten
# million, and a chain whose last entries were removed is told from one that
# ends there (audit.reaches_head).


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


def audit_head(db: Database, customer_id: str) -> dict | None:
    return db.audit_heads.find_one({"_id": customer_id})


def audit_entries(db: Database, customer_id: str) -> list[dict]:
    return list(db.audit.find({"customer_id": customer_id}).sort("seq", ASCENDING))


# ---------------------------------------------------------------- claims


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


# ---------------------------------------------------------------- customers


def insert_customer(db: Database, doc: dict) -> dict:
    db.customers.insert_one(doc)
    return doc


def find_customer(db: Database, customer_id: str) -> dict | None:
    return db.customers.find_one({"_id": customer_id})


def find_customers(db: Database, ids: Iterable[str]) -> dict[str, dict]:
    """By id, in one indexed $in (the few ids of a duplicate check)."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    return {d["_id"]: d for d in db.customers.find({"_id": {"$in": ids}})}


def customer_exists(db: Database, customer_id: str) -> bool:
    return db.customers.find_one({"_id": customer_id}, {"_id": 1}) is not None


NEWEST_FIRST = [("_id", DESCENDING)]


def list_customers(db: Database, flt: dict, skip: int, limit: int,
                   after_id: str | None = None) -> tuple[list[dict], int, bool]:
    """A page of `flt`, newest first (after `after_id`), its total, and
    whether more follow."""
    total = count(db.customers, flt)
    if after_id is not None:
        flt = after(flt, NEWEST_FIRST, {"_id": after_id})
    docs, more = page(db.customers, flt, NEWEST_FIRST, skip, limit)
    return docs, total, more


def _slots(customer_id: str) -> tuple[int, int]:
    first = zlib.crc32(customer_id.encode()) % NAME_TERM_SLOTS
    return first, (first + 1) % NAME_TERM_SLOTS


def index_name(db: Database, customer_id: str, core: str, region: str,
               terms: Iterable[str]) -> None:
    """File a customer under its name's terms in the near-match index.

    A term has NAME_TERM_SLOTS slots, one document each: {_id: "<term>#<slot>",
    c: customer id, k: core, r: region}. A customer takes the first free of
    its two slots (chosen by its id), with plain inserts (all its first
    slots in one, the taken ones' second slots in another): no read, no
    update, nothing that waits for another writer. When both are taken the
    term is busy (many names share it, so it tells little) and the customer
    is not filed under it. A check reads every slot of its terms by _id: a
    bounded number of lookups whatever the number of customers.
    """
    posting = {"c": customer_id, "k": core, "r": region}
    terms = list(dict.fromkeys(terms))
    first, second = _slots(customer_id)
    taken = insert_new(db.name_terms, [{"_id": f"{t}#{first}", **posting} for t in terms])
    insert_new(db.name_terms, [{"_id": f"{terms[i]}#{second}", **posting} for i in taken])


def unindex_name(db: Database, customer_id: str, core: str, region: str,
                 terms: Iterable[str]) -> None:
    """Take a customer out of the near-match index (its name changed): the
    arguments of its index_name (`core` and `region` as filed). A slot
    is written once by one customer and freed only by that customer, so the
    read before the delete cannot race with another writer of the slot."""
    slots = _slots(customer_id)
    ids = [f"{t}#{slot}" for t in dict.fromkeys(terms) for slot in slots]
    delete_by_ids(db.name_terms, [d["_id"] for d in find_by_ids(db.name_terms, ids)
                                  if d.get("c") == customer_id])


def term_postings(db: Database, terms: Iterable[str]) -> list[dict]:
    """Every filed posting of the terms ({c, k, r}), in the terms' order:
    every slot of every term by _id, in one indexed $in (a thousand at a
    time), whatever the number of customers."""
    ids = [f"{t}#{slot}" for t in dict.fromkeys(terms) for slot in range(NAME_TERM_SLOTS)]
    by_id = {d["_id"]: d for d in find_by_ids(db.name_terms, ids)}
    return [by_id[i] for i in ids if i in by_id]


# ---------------------------------------------------------------- follow-ups


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


# ---------------------------------------------------------------- shared phones


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
