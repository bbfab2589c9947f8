"""MongoDB access of the customer lifecycle: amendments, alarms, disputes,
the stage list and stage changes, abandonments, referral queries, the
integrity report's counts and the audit trail's reading side.

Every state transition is one conditional `find_one_and_update` (on a
status, a version or a `used_at`), so two racing requests get exactly one
winner; uniqueness that matters is a unique index, never a read-then-write.
The appending side of the audit trail is `storage.append_audit`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.ids import new_id
from services.common.mongo import after, count, page, update_unless_duplicate
from services.customers import audit, stages

IN_CHUNK = 1000  # ids per `$in`: keeps each query document small
STAGES_ID = "pipeline"

# The fields a tree node or an ancestor needs; a 10,000-node tree must not
# drag every contact and follow-up of every customer along.
NODE_FIELDS = {"_id": 1, "company_name": 1, "owner_id": 1, "owner_name": 1, "status": 1,
               "stage": 1, "referred_by": 1, "team_id": 1}


def _scoped_indexes(coll, prefix: str, scopes: tuple[str, ...]) -> None:
    """A list of `coll` for each scope (its owner, a team, ...), by status or
    not, oldest first; and everyone's by status: every list of the lifecycle
    and its count reads one index range."""
    for field in scopes:
        coll.create_index([(field, ASCENDING), ("status", ASCENDING), ("_id", ASCENDING)],
                          name=f"{prefix}_{field}_status")
    coll.create_index([("status", ASCENDING), ("_id", ASCENDING)], name=f"{prefix}_status_new")


def ensure_indexes(db: Database) -> None:
    # customers.referred_by is indexed by storage.ensure_indexes
    db.amendments.create_index([("customer_id", ASCENDING), ("_id", ASCENDING)],
                               name="amendment_customer")
    db.amendments.create_index([("status", ASCENDING), ("team_id", ASCENDING)],
                               name="amendment_status_team")
    _scoped_indexes(db.amendments, "amendment", ("owner_id", "team_id"))
    _scoped_indexes(db.alarms, "alarm", ("owner_id", "team_id"))
    _scoped_indexes(db.disputes, "dispute", ("owner_id", "team_id", "claimant_id",
                                             "claimant_team_id"))
    db.alarms.create_index([("owner_id", ASCENDING), ("verified", ASCENDING)],
                           name="alarm_owner_verified")
    # `open_for` is the customer id while an alarm is open, the alarm's own
    # id afterwards: at most one open alarm per customer, without a partial
    # index (not in the FerretDB subset)
    db.alarms.create_index([("open_for", ASCENDING)], unique=True, name="alarm_one_open")
    db.alarms.create_index([("customer_id", ASCENDING), ("status", ASCENDING)],
                           name="alarm_customer")
    db.alarms.create_index([("status", ASCENDING), ("team_id", ASCENDING)], name="alarm_status")
    db.disputes.create_index([("open_key", ASCENDING)], unique=True, name="dispute_one_open")
    db.disputes.create_index([("status", ASCENDING), ("team_id", ASCENDING)],
                             name="dispute_status")
    db.stage_changes.create_index([("customer_id", ASCENDING), ("at", ASCENDING)],
                                  name="stage_change_customer")
    db.abandonments.create_index([("owner_id", ASCENDING)], name="abandonment_owner")


# ---------------------------------------------------------------- customers

def find_customer(db: Database, customer_id: str) -> dict | None:
    return db.customers.find_one({"_id": customer_id})


def update_customer(db: Database, customer: dict, fields: dict) -> dict | None:
    """Set `fields` on the customer if it is still at the version read,
    bumping `version`; None when someone else changed it first. Every
    lifecycle change goes through here, so a consumer can order a customer's
    events by `version`."""
    version = customer.get("version")
    query = {"_id": customer["_id"],
             "version": version if version is not None else {"$exists": False}}
    return db.customers.find_one_and_update(
        query, {"$set": fields, "$inc": {"version": 1}}, return_document=ReturnDocument.AFTER)


def claim_from_pool(db: Database, customer_id: str, fields: dict) -> dict | None:
    """Only the first of two racing claims finds the customer in the pool."""
    return db.customers.find_one_and_update(
        {"_id": customer_id, "status": "pool"},
        {"$set": fields, "$inc": {"version": 1}}, return_document=ReturnDocument.AFTER)


def customers_after(db: Database, after_id: str | None, limit: int) -> list[dict]:
    query = {"_id": {"$gt": after_id}} if after_id else {}
    return list(db.customers.find(query).sort("_id", ASCENDING).limit(limit))


# ----------------------------------------------------------------- stages

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


# -------------------------------------------------------------- amendments

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


# ------------------------------------------------------------------ alarms

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
    """Spend one `abandon` resolution (`query`: lifecycle.spend_alarm_filter):
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


# ---------------------------------------------------------------- disputes

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


# --------------------------------------------------------------- referrals

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


class Locked(Exception):
    pass


def acquire_lock(db: Database, name: str, holder: str, now: datetime, ttl: timedelta) -> None:
    """A short lease serializing the rare changes that need it (re-linking a
    referral: two crossing re-links could each pass the cycle check alone)."""
    try:
        doc = db.locks.find_one_and_update(
            {"_id": name, "$or": [{"until": {"$lt": now}}, {"holder": holder}]},
            {"$set": {"holder": holder, "until": now + ttl}},
            upsert=True, return_document=ReturnDocument.AFTER)
    except DuplicateKeyError:  # held by someone else: the upsert collided
        raise Locked(name) from None
    if doc is None or doc["holder"] != holder:
        raise Locked(name)


def release_lock(db: Database, name: str, holder: str) -> None:
    db.locks.delete_one({"_id": name, "holder": holder})


# ------------------------------------------------------------------ report

def integrity_counts(db: Database, user_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per user of `user_ids`: customers owned now, entered, alarms raised,
    customers abandoned, alarms verified fake. Scoped by person rather than
    by the records' team, so a rep's history follows him and a manager sees
    each of his reps in full. Each figure is one count of one equality
    filter, which an index answers (a row of its count table on FerretDB
    here), not a read of his records."""
    out: dict[str, dict[str, int]] = {}
    for uid in dict.fromkeys(user_ids):
        figures = {
            # an owned customer is active (lifecycle)
            "customers": count(db.customers, {"owner_id": uid}),
            # created_by is {id, name}: who entered it, whoever owns it now
            "created": count(db.customers, {"created_by.id": uid}),
            "alarms": count(db.alarms, {"owner_id": uid}),
            "abandoned": count(db.abandonments, {"owner_id": uid}),
            "verified_fake": count(db.alarms, {"owner_id": uid, "verified": "fake"}),
        }
        if any(figures.values()):
            out[uid] = figures
    return out


# ------------------------------------------------------------------- audit

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


# ----------------------------------------------------------------- helpers

OLDEST_FIRST = [("_id", ASCENDING)]


def _page(coll, query: dict, skip: int, limit: int,
          after_id: str | None = None) -> tuple[list[dict], int, bool]:
    """A page of `query`, oldest first (after `after_id`), its total, and
    whether more follow."""
    total = count(coll, query)
    if after_id is not None:
        query = after(query, OLDEST_FIRST, {"_id": after_id})
    docs, more = page(coll, query, OLDEST_FIRST, skip, limit)
    return docs, total, more


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(ids), IN_CHUNK):
        yield ids[i:i + IN_CHUNK]
