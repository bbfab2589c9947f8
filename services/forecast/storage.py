"""The forecast database: deals, scope aggregates, snapshots, jobs.

Collections
-----------
- ``deals_000`` .. ``deals_255`` (``deals(db, id)`` picks one by a hash of the
  id): one document per customer (``_id`` = customer id): its state
  registers and their clocks (``domain.apply_deal_event``), its stage history,
  ``contrib`` (what it adds to the scope documents), ``gens`` (the aggregate
  generations it is counted in), ``rev`` (bumped by every write) and, while an
  update is being applied, ``pending``.
- ``scopes``: one document per (generation, team): ``pipe.<owner>.<stage>.{c,
  v}`` and ``cal.<stage>.{n, k}`` (``readmodel``), and ``applied``: markers
  of the updates applied to it that are not finished yet.
- ``meta``: ``{_id: "state", gen, building, stages, stages_clock}``.
- ``snapshots``: weekly figures, unique per (scope, week); money in integer
  fen (``forecast_fen``, ``calibrated_fen``, per stage ``value_fen`` and
  ``weighted_fen``; older ones also hold float yuan, read by
  ``snapshots.snapshot_out``).
- ``jobs``: rebuild / reconcile runs, claimed with a lease.
- ``rejected``: events that cannot be applied (malformed payloads).

Why 256 deal collections: on FerretDB 1.24 (SQLite, local runs and CI) every
update, even by ``_id``, reads the whole collection under a collection lock,
so one large collection made every event slow. Split by a hash of the id, an
update reads one small shard; on MongoDB it changes nothing but the names. Queries over all deals (rebuild,
reconcile, backtest, the sweeper) go through every shard; they are admin or
report work, not the event path. The shard count is fixed: changing it
means moving the documents (a rebuild into an empty database does it).

Exactly once without transactions (``update_deal``)
-------------------------------------------------
A deal update is one conditional write of the deal document (``rev`` must be
the one read) that stores the new state *and* the increments it implies as
``pending {op, by, at, cells}``. Then each cell is applied with
``{_id, applied.<op>: {$exists: false}} -> $inc, $set applied.<op>``: the
marker makes it apply at most once. Then ``pending`` is cleared (only by its
writer ``by``); the markers are removed by the process's next write to the
same scope document (``$unset`` in the same update: no write of its own), or
by the sweeper.

- The process dies before the deal write: nothing happened; RabbitMQ
  redelivers the event (it is acked only after the handler returns).
- It dies after it: the deal already shows the event, so the redelivered
  event changes nothing by itself, but whoever next reads the deal finds the
  ``pending`` update and, once it is older than ``LEASE`` (the writer is
  presumably gone), takes it over: applies the cells not yet marked, clears
  it. Nothing is lost, nothing counted twice. A ``@timer`` also sweeps
  pending updates no event comes back for.
- A writer that was only slow and wakes up after a take-over finds its cells
  marked (the taker marks every cell) and its clear refused (``by`` changed).
  Markers of taken-over updates are therefore never removed (a few ids per
  crash), so no late write can count again.
- Two events of one deal at once: the second write fails on ``rev`` and is
  retried; a fresh ``pending`` of someone else is waited for, not taken over.
"""

from __future__ import annotations

import logging
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import eventlet
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.common.ids import new_id
from services.forecast import readmodel

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=15)
WAIT_STEP_SECONDS = 0.02
MAX_WAIT_SECONDS = 20.0  # > LEASE: one delivery can outwait a dead writer
JOB_LEASE = timedelta(seconds=60)
STATE = "state"
SHARDS = 256


def deals(db: Database, customer_id: str) -> Collection:
    """The deal collection that holds this customer (module docstring)."""
    return db[f"deals_{zlib.crc32(customer_id.encode()) % SHARDS:03d}"]


def all_deal_collections(db: Database) -> list[Collection]:
    return [db[f"deals_{i:03d}"] for i in range(SHARDS)]


class Busy(Exception):
    """A deal stayed locked by another writer's fresh update: try again later."""


def ensure_indexes(db: Database) -> None:
    # The deal shards get no secondary index: the event path reads by _id;
    # the rest scans on purpose (module docstring).
    db.scopes.create_index([("gen", ASCENDING), ("team", ASCENDING)], name="gen_team")
    db.snapshots.create_index([("scope", ASCENDING), ("week", ASCENDING)], unique=True,
                              name="scope_week_unique")
    db.jobs.create_index([("state", ASCENDING), ("created_at", ASCENDING)], name="state_created")
    db.jobs.create_index([("kind", ASCENDING), ("created_at", DESCENDING)], name="kind_created")
    try:
        db.meta.insert_one({"_id": STATE, "gen": 0, "building": None, "stages": None,
                            "stages_clock": None})
    except DuplicateKeyError:
        pass


# --------------------------------------------------------------------------
# meta: generation and stage definitions


def get_meta(db: Database) -> dict:
    doc = db.meta.find_one({"_id": STATE})
    if doc is None:
        ensure_indexes(db)
        doc = db.meta.find_one({"_id": STATE})
    return doc


def live_gens(meta: dict) -> list[int]:
    gens = [meta["gen"]]
    if meta.get("building") is not None:
        gens.append(meta["building"])
    return gens


def set_stages(db: Database, expected_clock: dict | None, stages: list[dict], clock: dict) -> bool:
    """Replace the stage list if nobody else did since it was read."""
    r = db.meta.update_one({"_id": STATE, "stages_clock": expected_clock},
                           {"$set": {"stages": stages, "stages_clock": clock}})
    return r.matched_count == 1


def start_building(db: Database) -> int:
    """The generation a rebuild fills (an unfinished rebuild's, to resume it)."""
    meta = get_meta(db)
    if meta.get("building") is not None:
        return meta["building"]
    building = meta["gen"] + 1
    db.meta.update_one({"_id": STATE, "building": None}, {"$set": {"building": building}})
    return get_meta(db)["building"]


def switch_gen(db: Database, building: int) -> bool:
    r = db.meta.update_one({"_id": STATE, "building": building},
                           {"$set": {"gen": building, "building": None}})
    return r.matched_count == 1


def drop_old_gens(db: Database, gen: int) -> None:
    """After a switch: deals stop feeding the old generations, which go.
    (``rev`` moves so that a writer holding the old list retries.)"""
    for old in sorted({d["gen"] for d in db.scopes.find({"gen": {"$lt": gen}}, {"gen": 1})}
                      | {gen - 1}):
        for coll in all_deal_collections(db):
            coll.update_many({"gens": old}, {"$pull": {"gens": old}, "$inc": {"rev": 1}})
    db.scopes.delete_many({"gen": {"$lt": gen}})


# --------------------------------------------------------------------------
# scope documents


def scope_id(gen: int, team: str) -> str:
    return f"{gen}|{team}"


def team_docs(db: Database, gen: int, team: str | None = None) -> list[dict]:
    query: dict[str, Any] = {"gen": gen}
    if team is not None:
        query["team"] = team
    return list(db.scopes.find(query, {"pipe": 1, "cal": 1, "team": 1}))


def owner_docs(db: Database, gen: int, owner: str) -> list[dict]:
    return list(db.scopes.find({"gen": gen, f"pipe.{owner}": {"$exists": True}},
                               {"pipe": 1, "cal": 1, "team": 1}))


# Markers of updates finished by their own writer, per scope document, to
# remove with this process's next write to that document (or by the sweeper):
# no write of its own for the clean-up.
_finished: dict[str, set[str]] = {}


def _apply_cell(db: Database, cell: dict, op: str) -> None:
    query = {"_id": cell["id"], f"applied.{op}": {"$exists": False}}
    done = set(_finished.get(cell["id"], ()))
    update: dict[str, Any] = {"$inc": {i["path"]: i["by"] for i in cell["inc"]},
                              "$set": {f"applied.{op}": 1}}
    if done:
        update["$unset"] = {f"applied.{o}": "" for o in done}
    if db.scopes.update_one(query, update).matched_count:
        _forget(cell["id"], done)
        return
    # Either the marker is there (applied already) or the document does not
    # exist yet. (FerretDB refuses an upsert that $inc's dotted paths, hence
    # create first, then increment.)
    try:
        db.scopes.update_one({"_id": cell["id"]},
                             {"$setOnInsert": {"gen": cell["gen"], "team": cell["team"],
                                               "applied": {}}}, upsert=True)
    except DuplicateKeyError:
        pass  # created by another update a moment ago
    if db.scopes.update_one(query, update).matched_count:
        _forget(cell["id"], done)


def _forget(scope: str, done: set[str]) -> None:
    left = _finished.get(scope)
    if left is not None:
        left -= done
        if not left:
            _finished.pop(scope, None)


def flush_markers(db: Database) -> int:
    """Remove the markers of finished updates now (timer, and on stop)."""
    count = 0
    for scope in list(_finished):
        done = set(_finished.get(scope, ()))
        if done:
            db.scopes.update_one({"_id": scope}, {"$unset": {f"applied.{o}": "" for o in done}})
            _forget(scope, done)
            count += len(done)
    return count


# --------------------------------------------------------------------------
# deals: the exactly-once update protocol (module docstring)


def _cells(doc: dict | None, fields: dict, gens: list[int]) -> list[dict]:
    cells = []
    for gen in gens:
        before = doc.get("contrib") if doc and gen in doc.get("gens", []) else None
        for team, inc in sorted(readmodel.increments(before, fields["contrib"]).items()):
            # as a list: a stored key must not contain "." (the paths do)
            cells.append({"id": scope_id(gen, team), "gen": gen, "team": team,
                          "inc": [{"path": p, "by": v} for p, v in sorted(inc.items())]})
    return cells


def _finish(db: Database, customer_id: str, pending: dict) -> None:
    for cell in pending["cells"]:
        _apply_cell(db, cell, pending["op"])
    cleared = deals(db, customer_id).update_one(
        {"_id": customer_id, "pending.op": pending["op"], "pending.by": pending["by"]},
        {"$unset": {"pending": ""}},
    )
    if cleared.modified_count and not pending.get("taken_over"):
        for cell in pending["cells"]:
            _finished.setdefault(cell["id"], set()).add(pending["op"])


def _take_over(db: Database, doc: dict, now: datetime, token: str) -> bool:
    """Finish someone else's pending update once it is older than LEASE.
    False while it is fresh (its writer is presumably at work)."""
    pending = doc["pending"]
    if pending["at"] + LEASE > now:
        return False
    taken = deals(db, doc["_id"]).update_one(
        {"_id": doc["_id"], "pending.op": pending["op"], "pending.by": pending["by"]},
        {"$set": {"pending.by": token, "pending.taken_over": True, "pending.at": now}},
    )
    if taken.matched_count:
        log.warning("finishing the interrupted update %s of deal %s", pending["op"], doc["_id"])
        _finish(db, doc["_id"], {**pending, "by": token, "taken_over": True})
    return True


Change = Callable[[dict | None], dict | None]


def update_deal(
    db: Database,
    customer_id: str,
    change: Change,
    now: Callable[[], datetime],
    *,
    add_gen: int | None = None,
    max_wait: float = MAX_WAIT_SECONDS,
    likely_new: bool = False,
) -> dict | None:
    """Apply ``change`` to a deal exactly once, with the scope documents.

    ``change(doc or None)`` returns the deal's new fields
    (``readmodel.deal_fields``) or ``None`` for "nothing changes". With
    ``add_gen`` the deal's whole contribution is also added to that
    generation if it is not counted there yet (rebuild). Returns the fields
    written, or ``None``.

    ``likely_new`` (a CustomerCreated): try the insert of a new deal without
    reading first; if the deal exists after all (a redelivery, an event that
    came first), the insert fails and the update goes the usual way. One
    query less for every new customer.
    """
    token = uuid.uuid4().hex
    deadline = time.monotonic() + max_wait
    coll = deals(db, customer_id)
    read = not likely_new
    while True:
        doc = coll.find_one({"_id": customer_id}) if read else None
        read = True
        if doc is not None and doc.get("pending"):
            if not _take_over(db, doc, now(), token):
                if time.monotonic() > deadline:
                    raise Busy(customer_id)
                eventlet.sleep(WAIT_STEP_SECONDS)
            continue
        fields = change(doc)
        gens = list(doc["gens"]) if doc is not None else live_gens(get_meta(db))
        if add_gen is not None and add_gen not in gens:
            gens.append(add_gen)
            if fields is None:
                fields = {"contrib": doc["contrib"]} if doc is not None else None
        if fields is None:
            return None
        cells = _cells(doc, fields, gens)
        rev = (doc or {}).get("rev", 0) + 1
        record = {**fields, "gens": gens, "rev": rev}
        pending = None
        if cells:
            # the op id becomes a field name in the scope documents: no "." nor "$"
            pending = {"op": "o" + uuid.uuid4().hex, "by": token, "at": now(), "cells": cells}
            record["pending"] = pending
        if doc is None:
            try:
                coll.insert_one({"_id": customer_id, **record})
            except DuplicateKeyError:
                continue
        else:
            written = coll.update_one({"_id": customer_id, "rev": doc["rev"]}, {"$set": record})
            if not written.matched_count:
                continue
        if pending:
            _finish(db, customer_id, pending)
        return fields


def stale_pending(db: Database, now: datetime) -> Iterator[dict]:
    for coll in all_deal_collections(db):
        yield from coll.find({"pending.at": {"$lt": now - LEASE}})


def finish_stale(db: Database, now: datetime) -> int:
    """Finish updates whose writer died and no event came back for (timer)."""
    token = uuid.uuid4().hex
    done = 0
    for doc in list(stale_pending(db, now)):
        if _take_over(db, doc, now, token):
            done += 1
    return done


def find_deal(db: Database, customer_id: str) -> dict | None:
    return deals(db, customer_id).find_one({"_id": customer_id})


def find_deals(db: Database, ids: list[str]) -> dict[str, dict]:
    by_shard: dict[str, list[str]] = {}
    for cid in ids:
        by_shard.setdefault(deals(db, cid).name, []).append(cid)
    out = {}
    for name, some in by_shard.items():
        for d in db[name].find({"_id": {"$in": some}}):
            out[d["_id"]] = d
    return out


def deals_missing_gen(db: Database, gen: int, limit: int = 500) -> list[str]:
    out: list[str] = []
    for coll in all_deal_collections(db):
        out += [d["_id"] for d in coll.find({"gens": {"$ne": gen}}, {"_id": 1})]
        if len(out) >= limit:
            break
    return out


def iter_deals(db: Database, query: dict | None = None,
               fields: dict | None = None) -> Iterator[dict]:
    """Every deal matching ``query``, shard by shard (in no particular order)."""
    for coll in all_deal_collections(db):
        yield from coll.find(query or {}, fields)


def deal_histories(db: Database, kind: str, ident: str | None) -> Iterator[dict]:
    query: dict[str, Any] = {}
    if kind == "team":
        query["last_team_id"] = ident
    elif kind == "owner":
        query["last_owner_id"] = ident
    return iter_deals(db, query, {"history": 1})


def record_rejected(db: Database, event_type: str, payload: dict, error: str, now) -> None:
    db.rejected.insert_one({"_id": new_id(), "event_type": event_type, "payload": payload,
                            "error": error, "at": now})


# --------------------------------------------------------------------------
# snapshots


def snapshot_taken(db: Database, scope: str, week: str) -> bool:
    return db.snapshots.count_documents({"scope": scope, "week": week}, limit=1) > 0


def insert_snapshots(db: Database, docs: list[dict]) -> int:
    """Insert what is new; a (scope, week) another instance took is skipped."""
    if not docs:
        return 0
    try:
        return len(db.snapshots.insert_many(docs, ordered=False).inserted_ids)
    except BulkWriteError as exc:
        if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
            raise
        return exc.details.get("nInserted", 0)


def list_snapshots(db: Database, scope: str, skip: int, limit: int) -> tuple[list[dict], int]:
    total = db.snapshots.count_documents({"scope": scope})
    docs = list(db.snapshots.find({"scope": scope}).sort("week", DESCENDING).skip(skip)
                .limit(limit))
    return docs, total


# --------------------------------------------------------------------------
# jobs (rebuild, reconcile)


def create_job(db: Database, kind: str, requested_by: str | None, now: datetime) -> dict:
    doc = {"_id": new_id(), "kind": kind, "state": "queued", "requested_by": requested_by,
           "created_at": now, "started_at": None, "finished_at": None, "lease_until": now,
           "by": None, "progress": {}, "result": None, "error": None}
    db.jobs.insert_one(doc)
    return doc


def claim_job(db: Database, now: datetime, token: str) -> dict | None:
    """A queued job, or a running one whose runner stopped renewing its lease."""
    return db.jobs.find_one_and_update(
        {"state": {"$in": ["queued", "running"]}, "lease_until": {"$lt": now}},
        {"$set": {"state": "running", "by": token, "lease_until": now + JOB_LEASE},
         "$inc": {"attempts": 1}},
        sort=[("created_at", ASCENDING)],
        return_document=ReturnDocument.AFTER,
    )


def renew_job(db: Database, job_id: str, token: str, now: datetime, progress: dict) -> bool:
    r = db.jobs.update_one({"_id": job_id, "by": token},
                           {"$set": {"lease_until": now + JOB_LEASE, "progress": progress}})
    return r.matched_count == 1


def finish_job(db: Database, job_id: str, token: str, now: datetime, *, result=None,
               error: str | None = None) -> None:
    db.jobs.update_one({"_id": job_id, "by": token},
                       {"$set": {"state": "failed" if error else "done", "result": result,
                                 "error": error, "finished_at": now}})


def find_job(db: Database, job_id: str) -> dict | None:
    return db.jobs.find_one({"_id": job_id})


def latest_job(db: Database, kind: str) -> dict | None:
    docs = list(db.jobs.find({"kind": kind}).sort("created_at", DESCENDING).limit(1))
    return docs[0] if docs else None
