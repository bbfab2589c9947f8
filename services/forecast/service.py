"""forecast: a read model of deals built from customers' events; the weighted
pipeline, a calibrated forecast, its backtest and weekly snapshots.

Entrypoints translate and delegate: rules are in ``domain`` (pure), the stored
shape in ``readmodel`` (pure), MongoDB access and the exactly-once update
protocol in ``storage``.

- Events update one deal document and its team's scope document(s) with
  ``$inc`` (``storage.update_deal``): an event delivered twice counts once, an
  older one never rolls a deal back, a crash between the two writes neither
  loses nor doubles anything.
- ``GET /api/forecast`` reads a handful of scope documents: its cost does not
  grow with the number of deals. The calibrated forecast comes from
  calibration counts kept up to date the same way (no timer, no cache).
- Rebuild and reconcile are jobs in the ``jobs`` collection, run by a timer in
  whichever instance claims them (lease), paging through customers'
  ``export_deals`` RPC; ``python -m services.forecast.cli`` starts them.
- The weekly snapshot: a timer in every instance; the first to insert a
  (scope, week) wins, by a unique index.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import date
from fractions import Fraction
from zoneinfo import ZoneInfo

import eventlet
import eventlet.event
from eventlet import tpool
from nameko.timer import timer

from services.common import config
from services.common.clock import iso
from services.common.errors import Forbidden, Invalid, NotFound
from services.common.events import handles
from services.common.mongo import Mongo
from services.common.principal import Principal, require_admin
from services.common.rpc import Rpc
from services.common.service import ServiceBase, rpc
from services.common.validation import parse
from services.forecast import domain, readmodel, schemas, snapshots, storage

log = logging.getLogger(__name__)

EXPORT_PAGE = 200
JOB_KINDS = ("rebuild", "reconcile")
SHOWN_DIFFERENCES = 100
# The backtest replays every deal's history: on a big book it takes a while,
# and the past months it scores do not change within minutes.
BACKTEST_CACHE_SECONDS = 300
_backtests: dict[tuple, tuple[float, dict]] = {}
# One computation per key at a time: at 100,000 deals a backtest reads every
# deal's history (about 30 s on FerretDB) and replays it (about 11 s); callers
# who ask meanwhile wait for that one instead of starting their own.
_backtests_running: dict[tuple, eventlet.event.Event] = {}
META_CACHE_SECONDS = 1.0
_metas: dict[str, tuple[float, dict]] = {}


def min_active() -> int:
    value = int(config.setting("FORECAST_MIN_ACTIVE", domain.MIN_ACTIVE))
    if value < 0:
        raise RuntimeError("FORECAST_MIN_ACTIVE must be a non-negative integer")
    return value


def prior_weight() -> Fraction:
    value = Fraction(str(config.setting("FORECAST_PRIOR_WEIGHT", domain.DEFAULT_PRIOR_WEIGHT)))
    if value < 0:
        raise RuntimeError("FORECAST_PRIOR_WEIGHT must be a non-negative number")
    return value


def timezone() -> str:
    return str(config.setting("FORECAST_TZ", domain.DEFAULT_TZ))


def rpc_timeout() -> float:
    return float(config.setting("RPC_TIMEOUT_SECONDS", 10))


def _setup(db) -> None:
    storage.ensure_indexes(db)


def _stages(meta: dict) -> list[dict] | None:
    return meta.get("stages") or None  # None: the default stages


def _month_ends(today: date, months: int) -> list[date]:
    """The months that end before each of the last ``months`` complete months."""
    index = today.year * 12 + today.month - 1  # this month
    return [date((i - 1) // 12, (i - 1) % 12 + 1, 1)
            for i in range(index - months, index)]


def _job_out(doc: dict) -> dict:
    return {
        "id": doc["_id"], "kind": doc["kind"], "state": doc["state"],
        "created_at": iso(doc["created_at"]),
        "started_at": iso(doc["started_at"]) if doc.get("started_at") else None,
        "finished_at": iso(doc["finished_at"]) if doc.get("finished_at") else None,
        "progress": doc.get("progress") or {}, "result": doc.get("result"),
        "error": doc.get("error"),
    }


class ForecastService(ServiceBase):
    name = "forecast"

    db = Mongo(_setup)
    customers = Rpc("customers")
    accounts = Rpc("accounts")

    # ----------------------------------------------------------- events

    @handles("customers", "CustomerCreated")
    def on_customer_created(self, payload):
        self._ingest("CustomerCreated", payload)

    @handles("customers", "CustomerAmended")
    def on_customer_amended(self, payload):
        self._ingest("CustomerAmended", payload)

    @handles("customers", "StageChanged")
    def on_stage_changed(self, payload):
        self._ingest("StageChanged", payload)

    @handles("customers", "OwnerChanged")
    def on_owner_changed(self, payload):
        self._ingest("OwnerChanged", payload)

    @handles("customers", "CustomerAbandoned")
    def on_customer_abandoned(self, payload):
        self._ingest("CustomerAbandoned", payload)

    @handles("customers", "StagesChanged")
    def on_stages_changed(self, payload):
        while True:
            meta = storage.get_meta(self.db)
            current = None
            if meta.get("stages_clock"):
                current = {"stages": meta["stages"], "clock": meta["stages_clock"]}
            try:
                new = domain.apply_stages_event(current, payload)
            except domain.EventError as exc:
                self._reject("StagesChanged", payload, exc)
                return
            if new is None:
                return  # a duplicate or an older list
            if storage.set_stages(self.db, meta.get("stages_clock"),
                                  readmodel.stored_stages(new["stages"]), new["clock"]):
                return

    def _ingest(self, event_type: str, payload: dict) -> None:
        customer_id = payload.get("customer_id") if isinstance(payload, dict) else None
        if isinstance(customer_id, bool) or not isinstance(customer_id, (str, int)) \
                or customer_id == "":
            self._reject(event_type, payload, domain.EventError("is missing", "customer_id"))
            return
        customer_id = str(customer_id)

        for_state, for_history = readmodel.as_domain_events(event_type, payload)

        def change(doc):
            state = readmodel.state_of(doc)
            history = (doc or {}).get("history", [])
            after = domain.apply_deal_event(state, for_state, event_type)
            entry = readmodel.history_entry(for_history, event_type)
            merged = domain.merge_history(history, entry) if entry else history
            if after is None and len(merged) == len(history):
                return None  # a duplicate, or nothing this read model keeps
            return readmodel.deal_fields(after or state or domain.new_deal_state(customer_id),
                                         merged, doc)

        try:
            storage.update_deal(self.db, customer_id, change, self.clock.now,
                                likely_new=event_type == "CustomerCreated")
        except domain.EventError as exc:
            self._reject(event_type, payload, exc)

    def _reject(self, event_type: str, payload, exc: Exception) -> None:
        # A malformed payload would fail forever: keep it aside, do not requeue.
        log.error("forecast cannot apply %s: %s; kept in 'rejected'", event_type, exc)
        storage.record_rejected(self.db, event_type, payload if isinstance(payload, dict)
                                else {"raw": repr(payload)}, str(exc), self.clock.now())

    # ----------------------------------------------------------- reading

    def _scope(self, actor: Principal, owner_id, team_id) -> readmodel.Scope:
        scope = readmodel.resolve_scope(actor, owner_id, team_id)
        if scope.member_of is not None:
            with eventlet.Timeout(rpc_timeout()):
                users = self.accounts.get_users([scope.id])
            user = users.get(scope.id)
            if user is None or user.get("team_id") != scope.member_of:
                if actor.role == "manager":
                    raise Forbidden("forbidden", "this rep is not in your team")
                raise Invalid.fields({"owner_id": "is not a member of this team"})
        return scope

    def _figures(self, scope: readmodel.Scope, meta: dict, *, exact: bool = False) -> dict:
        """The forecast body (JSON-ready), or with ``exact`` its money still in
        Decimal and fen (what a snapshot stores)."""
        gen = meta["gen"]
        if scope.kind == "owner":
            docs = storage.owner_docs(self.db, gen, scope.id)
            pipe = readmodel.pipe_counts(docs, scope.id)
            cal_docs = docs
            if not docs:
                cal_docs = (storage.team_docs(self.db, gen, scope.fallback_team)
                            if scope.fallback_team else storage.team_docs(self.db, gen))
        else:
            docs = storage.team_docs(self.db, gen, scope.id if scope.kind == "team" else None)
            pipe = readmodel.pipe_counts(docs)
            cal_docs = docs
        cal, resolved = readmodel.cal_counts(cal_docs)
        figures = readmodel.forecast_figures if exact else readmodel.forecast_view
        view = figures(pipe, cal, resolved, _stages(meta), min_active(), prior_weight())
        return {"scope": scope.key, **view}

    def _meta(self) -> dict:
        """The generation and stage list, read at most every META_CACHE_SECONDS
        (one round trip less per GET; a new stage list shows a moment later,
        as any event does; a rebuild keeps the old generation up to date for
        longer than that before it drops it)."""
        cached = _metas.get(self.db.name)
        if cached and time.monotonic() - cached[0] < META_CACHE_SECONDS:
            return cached[1]
        meta = storage.get_meta(self.db)
        _metas[self.db.name] = (time.monotonic(), meta)
        return meta

    @rpc
    def get_forecast(self, actor, query=None):
        actor = Principal.of(actor)
        q = parse(schemas.ForecastQuery, query or {})
        scope = self._scope(actor, q.owner_id, q.team_id)
        return self._figures(scope, self._meta())

    @rpc
    def get_history(self, actor, query=None):
        actor = Principal.of(actor)
        q = parse(schemas.HistoryQuery, query or {})
        scope = self._scope(actor, q.owner_id, q.team_id)
        docs, total = storage.list_snapshots(self.db, scope.key, q.skip, q.page_size)
        return {"scope": scope.key, "items": [snapshots.snapshot_out(d) for d in docs],
                "total": total}

    @rpc
    def get_backtest(self, actor, query=None):
        actor = Principal.of(actor)
        q = parse(schemas.BacktestQuery, query or {})
        scope = self._scope(actor, q.owner_id, q.team_id)
        meta = storage.get_meta(self.db)
        tz = timezone()
        today = self._today(tz)
        key = (self.db.name, scope.key, q.months, today, meta["gen"], repr(meta.get("stages")))
        cached = _backtests.get(key)
        if cached and time.monotonic() - cached[0] < BACKTEST_CACHE_SECONDS:
            return cached[1]
        running = _backtests_running.get(key)
        if running is not None:
            return running.wait()
        done = _backtests_running[key] = eventlet.event.Event()
        try:
            out = self._backtest(scope, meta, today, q.months, tz)
        except BaseException as exc:
            done.send_exception(exc)
            raise
        else:
            done.send(out)
        finally:
            _backtests_running.pop(key, None)
        _backtests[key] = (time.monotonic(), out)
        for k in [k for k, (at, _) in _backtests.items()
                  if time.monotonic() - at >= BACKTEST_CACHE_SECONDS]:
            _backtests.pop(k, None)
        return out

    def _backtest(self, scope, meta, today, months, tz) -> dict:
        history = {d["_id"]: d.get("history", [])
                   for d in storage.deal_histories(self.db, scope.kind, scope.id)}
        # CPU-bound for big histories: off the hub, so other requests go on
        result = tpool.execute(domain.backtest, history, _stages(meta),
                               _month_ends(today, months), prior_weight(), tz=tz)
        return {"scope": scope.key, **readmodel.jsonable(result)}

    def _today(self, tz: str) -> date:
        return self.clock.now().astimezone(ZoneInfo(tz)).date()

    # ----------------------------------------------------------- snapshots

    @timer(interval=float(config.setting("FORECAST_SNAPSHOT_CHECK_SECONDS", 600)), eager=True)
    def take_weekly_snapshots(self):
        return self._snapshot(self.clock.now())

    def _snapshot(self, now) -> int:
        tz = timezone()
        week = domain.week_key(now, tz)
        if storage.snapshot_taken(self.db, "company", week):
            return 0
        meta = storage.get_meta(self.db)
        docs = storage.team_docs(self.db, meta["gen"])
        scopes = [readmodel.Scope("team", d["team"]) for d in docs
                  if d["team"] != readmodel.NO_TEAM]
        owners = sorted({o for d in docs for o in readmodel.owners_in(d)})
        scopes += [readmodel.Scope("owner", o) for o in owners]
        # the company last: it is the "this week is done" mark checked above
        scopes.append(readmodel.Scope("company"))
        start = domain.week_start(now, tz)
        out = [snapshots.snapshot_doc(scope.key, week, start, now,
                                      self._figures(scope, meta, exact=True))
               for scope in scopes]
        return storage.insert_snapshots(self.db, out)

    # ----------------------------------------------------------- upkeep

    @timer(interval=float(config.setting("FORECAST_MARKERS_SECONDS", 30)))
    def remove_finished_markers(self):
        return storage.flush_markers(self.db)

    @timer(interval=float(config.setting("FORECAST_SWEEP_SECONDS", 300)))
    def finish_interrupted_updates(self):
        # reads every deal: rare on purpose (an interrupted update is normally
        # finished by the redelivered event that was being handled)
        return storage.finish_stale(self.db, self.clock.now())

    # ----------------------------------------------------------- jobs

    @rpc
    def start_job(self, actor, kind):
        actor = Principal.of(actor)
        require_admin(actor, "rebuilds or reconciles the forecast")
        if kind not in JOB_KINDS:
            raise Invalid.fields({"kind": f"must be one of {', '.join(JOB_KINDS)}"})
        return _job_out(storage.create_job(self.db, kind, actor.id, self.clock.now()))

    @rpc
    def get_job(self, actor, job_id):
        actor = Principal.of(actor)
        require_admin(actor, "sees forecast jobs")
        doc = storage.find_job(self.db, job_id)
        if doc is None:
            raise NotFound("not_found", "no such job")
        return _job_out(doc)

    @rpc
    def latest_job(self, actor, kind):
        actor = Principal.of(actor)
        require_admin(actor, "sees forecast jobs")
        doc = storage.latest_job(self.db, kind)
        if doc is None:
            raise NotFound("not_found", f"no {kind} has run yet")
        return _job_out(doc)

    @timer(interval=float(config.setting("FORECAST_JOB_POLL_SECONDS", 2)))
    def run_jobs(self):
        token = uuid.uuid4().hex
        job = storage.claim_job(self.db, self.clock.now(), token)
        if job is None:
            return None
        if job.get("started_at") is None:
            self.db.jobs.update_one({"_id": job["_id"]}, {"$set": {"started_at": self.clock.now()}})
        try:
            run = self._rebuild if job["kind"] == "rebuild" else self._reconcile
            result = run(job, token)
        except _JobLost:
            log.warning("forecast job %s was taken over by another instance", job["_id"])
            return None
        except Exception as exc:  # noqa: BLE001 - recorded on the job, for the admin
            log.exception("forecast job %s failed", job["_id"])
            storage.finish_job(self.db, job["_id"], token, self.clock.now(),
                               error=f"{exc.__class__.__name__}: {exc}")
            return None
        storage.finish_job(self.db, job["_id"], token, self.clock.now(), result=result)
        return result

    def _export(self, after_id, limit=EXPORT_PAGE) -> list[dict]:
        with eventlet.Timeout(rpc_timeout() * 3):
            return self.customers.export_deals(after_id=after_id, limit=limit)

    def _renew(self, job, token, progress) -> None:
        if not storage.renew_job(self.db, job["_id"], token, self.clock.now(), progress):
            raise _JobLost()

    def _rebuild(self, job: dict, token: str) -> dict:
        """Customers' truth into the read model, through the same exactly-once
        path the events take, while events keep flowing; the aggregates are
        recounted from scratch into a new generation that replaces the old
        one when every deal is in it."""
        building = storage.start_building(self.db)
        progress = {"phase": "export", "gen": building, **(job.get("progress") or {})}
        after = progress.get("after_id")
        while True:
            rows = self._export(after)
            if not rows:
                break
            for row in rows:
                storage.update_deal(self.db, str(row["customer_id"]), self._from_export(row),
                                    self.clock.now, add_gen=building)
            after = rows[-1]["customer_id"]
            progress.update(after_id=after, exported=progress.get("exported", 0) + len(rows))
            self._renew(job, token, progress)
        progress["phase"] = "recount"
        progress["not_exported"] = progress.get("not_exported", 0) + self._recount(
            building, job, token, progress)
        storage.switch_gen(self.db, building)
        # a deal created by a writer that read the generations before the
        # rebuild began and wrote after the recount
        progress["late"] = self._recount(building, job, token, progress)
        # readers holding the old generation in their meta cache still find it
        # whole; deals keep feeding both until the drop
        eventlet.sleep(META_CACHE_SECONDS * 3)
        storage.drop_old_gens(self.db, building)
        progress["phase"] = "done"
        self._renew(job, token, progress)
        return {"gen": building, "exported": progress.get("exported", 0),
                "not_exported": progress["not_exported"], "late": progress["late"]}

    def _recount(self, building, job, token, progress) -> int:
        count = 0
        while True:
            ids = storage.deals_missing_gen(self.db, building)
            if not ids:
                return count
            for customer_id in ids:
                storage.update_deal(self.db, customer_id, lambda doc: None, self.clock.now,
                                    add_gen=building)
            count += len(ids)
            self._renew(job, token, progress)

    def _from_export(self, row: dict):
        def change(doc):
            state, history = readmodel.export_fields(row, doc, self.clock.now())
            if doc is not None and readmodel.state_of(doc) == state \
                    and doc.get("history") == history:
                return None
            return readmodel.deal_fields(state, history, doc)

        return change

    def _reconcile(self, job: dict, token: str) -> dict:
        """Compare the read model with customers' truth, deal by deal, and the
        aggregates with the deals they are made of."""
        checked = missing = different = 0
        shown: list[dict] = []
        seen: set[str] = set()
        after = None
        while True:
            rows = self._export(after)
            if not rows:
                break
            ids = [str(r["customer_id"]) for r in rows]
            docs = storage.find_deals(self.db, ids)
            for row, cid in zip(rows, ids, strict=True):
                checked += 1
                seen.add(cid)
                doc = docs.get(cid)
                diff = readmodel.differences(doc, row)
                if doc is None:
                    missing += 1
                elif diff:
                    different += 1
                if (doc is None or diff) and len(shown) < SHOWN_DIFFERENCES:
                    shown.append({"customer_id": cid, "missing": doc is None, "fields": diff})
            after = rows[-1]["customer_id"]
            self._renew(job, token, {"phase": "deals", "checked": checked})
        unknown = [d["_id"] for d in storage.iter_deals(self.db, None, {"_id": 1})
                   if d["_id"] not in seen]
        aggregates = self._check_aggregates()
        return readmodel.jsonable({
            "consistent": not (missing or different or unknown) and aggregates["consistent"],
            "checked": checked, "missing_in_forecast": missing, "different": different,
            "unknown_to_customers": len(unknown),
            "unknown_ids": unknown[:SHOWN_DIFFERENCES],
            "differences": shown, "aggregates": aggregates,
        })

    def _check_aggregates(self) -> dict:
        meta = storage.get_meta(self.db)
        gen = meta["gen"]
        expected: dict[str, dict[str, int]] = {}
        in_flight = 0
        for doc in storage.iter_deals(self.db, {"gens": gen}, {"contrib": 1, "pending": 1}):
            if doc.get("pending"):
                in_flight += 1
            for team, incs in readmodel.increments(None, doc.get("contrib")).items():
                cell = expected.setdefault(team, {})
                for path, v in incs.items():
                    cell[path] = cell.get(path, 0) + v
        actual = {d["team"]: readmodel.flatten_scope(d) for d in storage.team_docs(self.db, gen)}
        drift = []
        for team in sorted(expected.keys() | actual.keys()):
            want, have = expected.get(team, {}), actual.get(team, {})
            for path in sorted(want.keys() | have.keys()):
                if want.get(path, 0) != have.get(path, 0):
                    drift.append({"team": team, "path": path, "expected": want.get(path, 0),
                                  "stored": have.get(path, 0)})
        return {"consistent": not drift, "gen": gen, "in_flight": in_flight,
                "drift": drift[:SHOWN_DIFFERENCES], "drifted_cells": len(drift)}


class _JobLost(Exception):
    """Another instance took the job over (this one stopped renewing in time)."""
