"""Handovers (交接客户): a job, and one item per customer it moves.

The plan is written whole before anything moves (the items, each with its
target), so a job resumed after a crash moves the same customers to the
same people. Each item goes `pending` -> `done` (or `skipped`) by one
conditional write; the job's counters are bumped by the write that finishes
an item, so progress is never counted twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from services.common.ids import new_id

PLAN_BATCH = 1000


def ensure_handover_indexes(db: Database) -> None:
    db.handover_items.create_index([("job_id", ASCENDING), ("state", ASCENDING),
                                    ("seq", ASCENDING)], name="job_state_seq")
    db.handovers.create_index([("status", ASCENDING), ("lease_until", ASCENDING)],
                              name="status_lease")
    db.handovers.create_index([("from_id", ASCENDING), ("_id", ASCENDING)], name="from_user")


def insert_job(db: Database, doc: dict) -> dict:
    doc = {"_id": new_id(), **doc}
    db.handovers.insert_one(doc)
    return doc


def insert_items(db: Database, job_id: str, plan: list[tuple[str, dict]]) -> None:
    """(customer_id, target) in order; idempotent (an item's _id is job:customer)."""
    for start in range(0, len(plan), PLAN_BATCH):
        batch = [{"_id": f"{job_id}:{cid}", "job_id": job_id, "seq": start + i,
                  "customer_id": cid, "to": to, "state": "pending"}
                 for i, (cid, to) in enumerate(plan[start:start + PLAN_BATCH])]
        try:
            db.handover_items.insert_many(batch, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise


def find_job(db: Database, job_id: str, counted: bool = False) -> dict | None:
    """The job without its plan; `counted`: with `moved` and `skipped` counted
    from its items (one index range each), not kept by a write per customer."""
    job = db.handovers.find_one({"_id": job_id}, {"plan": 0})
    if job is not None and counted:
        for state, key in (("done", "moved"), ("skipped", "skipped")):
            job[key] = db.handover_items.count_documents({"job_id": job_id, "state": state})
    return job


def items_written(db: Database, job_id: str) -> None:
    db.handovers.update_one({"_id": job_id}, {"$set": {"items_written": True}})


def take_job(db: Database, job_id: str | None, holder: str, now: datetime,
             lease: timedelta) -> dict | None:
    """Lease a running job (this one, or any whose lease ran out): one
    instance works on a job at a time, and a crashed one's job is taken over."""
    query: dict = {"status": {"$in": ["planned", "running"]},
                   "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}]}
    if job_id:
        query["_id"] = job_id
    return db.handovers.find_one_and_update(
        query, {"$set": {"status": "running", "holder": holder, "lease_until": now + lease}},
        return_document=ReturnDocument.AFTER)  # with its plan: the runner writes the items


def renew_job(db: Database, job_id: str, holder: str, now: datetime, lease: timedelta) -> bool:
    return db.handovers.update_one({"_id": job_id, "holder": holder},
                                   {"$set": {"lease_until": now + lease}}).modified_count == 1


def pending_items(db: Database, job_id: str, after_seq: int, limit: int) -> list[dict]:
    return list(db.handover_items.find({"job_id": job_id, "state": "pending",
                                        "seq": {"$gt": after_seq}})
                .sort("seq", ASCENDING).limit(limit))


def finish_item(db: Database, item: dict, state: str, now: datetime, why: str | None = None) -> bool:
    """pending -> done|skipped (the job's counts are counted from these)."""
    return db.handover_items.update_one(
        {"_id": item["_id"], "state": "pending"},
        {"$set": {"state": state, "at": now, "why": why}}).modified_count == 1


def finish_job(db: Database, job_id: str, now: datetime) -> None:
    db.handovers.update_one({"_id": job_id, "status": "running"},
                            {"$set": {"status": "done", "finished_at": now, "lease_until": None}})


def void_pending_amendments(db: Database, customer_id: str, fields: dict) -> list[dict]:
    """A leaving owner's pending requests are his no longer: voided."""
    voided = []
    for doc in db.amendments.find({"customer_id": customer_id, "status": "pending"}):
        got = db.amendments.find_one_and_update(
            {"_id": doc["_id"], "status": "pending"}, {"$set": {"status": "void", **fields}},
            return_document=ReturnDocument.AFTER)
        if got is not None:
            voided.append(got)
    return voided


def handover_audited(db: Database, customer_id: str, job_id: str) -> bool:
    return db.audit.find_one({"customer_id": customer_id, "action": "handover",
                              "after.handover_id": job_id}, {"_id": 1}) is not None


def owned_by(db: Database, owner_id: str, batch: int = 1000) -> list[str]:
    """Every active customer of an owner, oldest first, a page at a time by
    the owner index."""
    ids: list[str] = []
    while True:
        query: dict = {"owner_id": owner_id, "status": "active"}
        if ids:
            query["_id"] = {"$lt": ids[-1]}
        docs = list(db.customers.find(query, {"_id": 1}).sort([("owner_id", ASCENDING),
                                                              ("_id", -1)]).limit(batch))
        ids.extend(d["_id"] for d in docs)
        if len(docs) < batch:
            return ids


def open_work(db: Database, customer_ids: list[str]) -> dict:
    """A preview's count of what the move voids: open alarms, pending amendments."""
    alarms = amendments = 0
    for start in range(0, len(customer_ids), 500):
        chunk = customer_ids[start:start + 500]
        alarms += db.alarms.count_documents({"customer_id": {"$in": chunk}, "status": "open"})
        amendments += db.amendments.count_documents({"customer_id": {"$in": chunk},
                                                     "status": "pending"})
    return {"open_alarms": alarms, "pending_amendments": amendments}


def open_disputes(db: Database, customer_id: str, owner_id: str) -> list[dict]:
    """Disputes against the leaving owner over this customer (his disputes
    are few: the owner's index range)."""
    return list(db.disputes.find({"owner_id": owner_id, "customer_id": customer_id,
                                  "status": "open"}))
