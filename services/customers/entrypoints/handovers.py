"""Handing a leaving rep's customers over (交接客户), as a resumable job.

`start_handover` checks who may, fixes the plan (which customer goes to
whom) and answers at once; the `run_handovers` timer of whichever instance
leases the job moves the customers. Each customer's move is idempotent:
the record carries the job's id once moved, the audit entry is looked for
before it is written, the item is finished by one conditional write, and
the events carry ids derived from job and customer, so a job resumed after
a crash (its lease run out) moves nothing twice and announces nothing twice
to a subscriber (they dedupe by event_id).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import timedelta

import eventlet

from services.common import config
from services.common.errors import NotFound
from services.common.events import event
from services.common.principal import Principal
from services.common.timers import ConfigTimer
from services.common.validation import parse
from services.customers import handover, rules, schemas, storage
from services.customers.entrypoints.base import RecordRpc, rpc
from services.customers.storage import handovers as jobs

log = logging.getLogger(__name__)

HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
BATCH = 100
EVENT_NAMESPACE = uuid.UUID("5b0c3c56-8d1e-4b7a-9a43-3f3e1b0d2c11")


class _NotHis(Exception):
    pass


def _event_id(job_id: str, customer_id: str) -> str:
    return str(uuid.uuid5(EVENT_NAMESPACE, f"handover:{job_id}:{customer_id}"))


def _lease() -> timedelta:
    return timedelta(seconds=float(config.setting("HANDOVER_LEASE_SECONDS", 30)))


def job_out(job: dict, preview: dict | None = None) -> dict:
    out = {"id": job.get("_id"), "status": job["status"] if job.get("_id") else "preview",
           "from": {"id": job["from_id"], "name": job.get("from_name")},
           "total": job["total"], "moved": job.get("moved", 0), "skipped": job.get("skipped", 0),
           "not_his": job.get("not_his", []), "shares": job.get("shares", []),
           "started_by": job.get("started_by"),
           "created_at": job["created_at"].isoformat() if job.get("created_at") else None,
           "finished_at": job["finished_at"].isoformat() if job.get("finished_at") else None}
    if out["status"] == "planned":
        out["status"] = "running"
    return {**out, **(preview or {})}


class HandoverRpc(RecordRpc):
    @rpc
    def start_handover(self, actor, from_user_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.HandoverIn, body)
        named = [] if data.to == handover.POOL else ([data.to] if isinstance(data.to, str)
                                                     else list(data.to))
        users = self.accounts.get_users([from_user_id, *named])
        from_user = handover.check_may_hand_over(actor, users.get(from_user_id))
        new_owners = handover.targets(actor, from_user, data.to, users)
        chosen, not_his = handover.selection(jobs.owned_by(self.db, from_user["id"]),
                                             data.customer_ids)
        moves = handover.plan(chosen, new_owners)
        job = {"from_id": from_user["id"], "from_name": from_user.get("name"),
               "from_team_id": from_user.get("team_id"), "to": new_owners,
               "total": len(moves), "moved": 0, "skipped": 0, "not_his": not_his[:100],
               "shares": handover.summary(moves), "started_by": actor.as_dict()}
        if data.dry_run:
            return job_out(job, jobs.open_work(self.db, chosen))
        now = self.clock.now()
        # The plan is fixed now, in the job itself (one write, so the answer
        # comes at once); the runner writes one item per customer from it.
        job = jobs.insert_job(self.db, {
            **job, "status": "planned", "created_at": now, "lease_until": None, "holder": None,
            "plan": [cid for cid, _ in moves], "items_written": False})
        return job_out(job)

    @rpc
    def get_handover(self, actor, job_id):
        actor = Principal.of(actor)
        job = jobs.find_job(self.db, str(job_id), counted=True)
        if job is None or not (actor.role == "admin" or job["started_by"]["id"] == actor.id
                               or (actor.role == "manager"
                                   and job.get("from_team_id") == actor.team_id)):
            raise NotFound("not_found", "no such handover")
        return job_out(job)

    @ConfigTimer.decorator("HANDOVER_POLL_SECONDS", 1.0, eager=True)
    def run_handovers(self):
        """Take the next job that is waiting or whose runner died, and finish it."""
        while True:
            job = jobs.take_job(self.db, None, HOLDER, self.clock.now(), _lease())
            if job is None:
                return
            self._run(job)

    def _run(self, job: dict) -> None:
        pool = eventlet.GreenPool(int(config.setting("HANDOVER_CONCURRENCY", 4)))
        # A cap on customers per second (0: none): a big handover in office
        # hours then leaves room for everyone else's requests and events.
        rate = float(config.setting("HANDOVER_RATE", 0))
        next_start = [time.monotonic()]

        def paced(item):
            if rate > 0:
                now = time.monotonic()
                start = max(now, next_start[0])
                next_start[0] = start + 1 / rate
                eventlet.sleep(start - now)
            self._move(job, item)

        if not job.get("items_written"):
            owners = job["to"]
            jobs.insert_items(self.db, job["_id"], handover.plan(job["plan"], owners))
            jobs.items_written(self.db, job["_id"])
        seq = -1
        while True:
            items = jobs.pending_items(self.db, job["_id"], seq, BATCH)
            if not items:
                break
            for _ in pool.imap(paced, items):
                pass
            seq = items[-1]["seq"]
            if not jobs.renew_job(self.db, job["_id"], HOLDER, self.clock.now(), _lease()):
                log.warning("handover %s: lease lost to another instance", job["_id"])
                return
        if jobs.pending_items(self.db, job["_id"], -1, 1):
            return  # an item failed (logged): the job runs again after its lease
        jobs.finish_job(self.db, job["_id"], self.clock.now())
        log.info("handover %s done", job["_id"])

    def _move(self, job: dict, item: dict) -> None:
        try:
            self._move_one(job, item)
        except Exception:  # noqa: BLE001 - the item stays pending; the next run retries it
            log.exception("handover %s: customer %s not moved yet", job["_id"],
                          item["customer_id"])

    def _move_one(self, job: dict, item: dict) -> None:
        job_id, customer_id, to = job["_id"], item["customer_id"], item["to"]
        actor = Principal.of(job["started_by"])
        now = self.clock.now()
        to_pool = to == handover.POOL

        def compute(customer):
            if customer.get("handover_id") == job_id:
                return None  # moved by this job before a crash
            if not handover.still_his(customer, job["from_id"]):
                raise _NotHis
            moved = {"handover_id": job_id, "previous_owner_id": customer["owner_id"],
                     "previous_team_id": customer.get("team_id")}
            if to_pool:
                return {**moved, "status": rules.POOL, "owner_id": None, "owner_name": None,
                        "team_id": None, "pooled_at": now, "pool_reason": "handover",
                        "abandoned": {"at": now, "reason": None, "note": None, "how": "handover"}}
            return {**moved, **self._owner_fields(to, now)}

        try:
            _, after = self._editor().update(customer_id, compute)
        except _NotHis:
            jobs.finish_item(self.db, item, "skipped", now, "no longer his")
            return
        except Exception as exc:
            if getattr(exc, "code", None) == "not_found":
                jobs.finish_item(self.db, item, "skipped", now, "no such customer")
                return
            raise
        resumed = after is None  # moved by this job before a crash
        after = after or self._customer(customer_id)
        before = {"owner_id": job["from_id"], "team_id": after.get("previous_team_id"),
                  "status": rules.ACTIVE}
        if not resumed or not jobs.handover_audited(self.db, customer_id, job_id):
            self._audit(customer_id, actor, "handover", before,
                        {"owner_id": after.get("owner_id"), "team_id": after.get("team_id"),
                         "status": after.get("status"), "handover_id": job_id}, now)
        self._void_open_work(actor, customer_id, job["from_id"], now)
        if to_pool:
            self.dispatch("CustomerAbandoned", {**event(
                customer_id=customer_id, version=after["version"], owner_id=job["from_id"],
                team_id=before["team_id"], company_name=after.get("company_name"),
                stage=after.get("stage"), expected_value_fen=after.get("expected_value_fen"),
                status=rules.POOL, reason="handover"), "event_id": _event_id(job_id, customer_id)})
        else:
            self._owner_changed(before, after, "handover", actor,
                                event_id=_event_id(job_id, customer_id))
        jobs.finish_item(self.db, item, "done", now)

    def _void_open_work(self, actor: Principal, customer_id: str, from_id: str, now) -> None:
        """What was pending about the leaving owner is void: his amendments,
        his open alarm (the new owner raises his own), disputes against him
        (`_void_dispute`, shared in base.py)."""
        note = {"decided_by": {"id": actor.id, "name": actor.name}, "decided_at": now,
                "void_reason": "handover"}
        for amendment in jobs.void_pending_amendments(self.db, customer_id, note):
            self._audit(customer_id, actor, "amendment_voided",
                        {"amendment_id": amendment["_id"], "status": "pending"},
                        {"amendment_id": amendment["_id"], "status": "void"}, now)
        disputes = jobs.open_disputes(self.db, customer_id, from_id)
        if disputes:
            # A claim against him is moot: the customer is no longer his. The
            # claimant may file again against the new owner.
            customer = self._customer(customer_id)
            for dispute in disputes:
                self._void_dispute(actor, dispute, customer)
        alarm = storage.open_alarm_of(self.db, customer_id)
        if alarm is not None and alarm.get("owner_id") == from_id:
            voided = storage.void_alarm(self.db, alarm["_id"], rules.ALARM_OPEN, {
                "resolved_by": actor.id, "resolved_by_name": actor.name, "resolved_at": now,
                "note": "the customer was handed over before the alarm was resolved"})
            if voided is not None:
                self._audit(customer_id, actor, "alarm_voided",
                            {"alarm_id": alarm["_id"], "owner_id": from_id},
                            {"alarm_id": alarm["_id"], "status": "void"}, now)
