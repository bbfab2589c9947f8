"""The forecast: event ingestion through RabbitMQ into the read model, and
GET /api/forecast for a rep, a team and the company at 1,000 and at 100,000
deals.

1. Deals are loaded straight into the forecast database in the stored shape
   (storage.py docstring: deal documents with their history and contribution,
   and the per-team scope documents summing them), first 1,000, then up to
   100,000; GET /api/forecast is measured at each size (the p99 target: the
   company's at 100,000 within 2x its p99 at 1,000).
2. Stage events for those deals are published with nameko's standalone event
   dispatcher on the stack's own vhost, as customers would dispatch them; the
   ingestion rate counts from the first publish until the read model shows
   every event (the scope documents equal the locally computed truth and the
   queue is empty). 1,000,000 events take hours on FerretDB on 2 shared cores,
   so a feasible number is measured and the time for 1,000,000 extrapolated,
   labelled as such.

Knobs (environment):
  BENCH_FORECAST_SIZES     "1000,100000"  deals stored at each step
  BENCH_FORECAST_EVENTS    "3000"          stage events to ingest (measured)
  BENCH_FORECAST_REQUESTS  "600"           GET requests per measurement
  BENCH_FORECAST_CLIENTS   "4"
  BENCH_FORECAST_TEAMS     "10"            teams (one real, with the measured rep/manager)
  BENCH_FORECAST_REPS      "10"            reps per team
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta

from kombu import Connection

from bench.harness import measure, rss_mb, service_pids
from services.common.events import queue_name
from services.forecast import domain, readmodel, storage

T0 = datetime(2024, 1, 8, 1, 0, tzinfo=UTC)
STAGES = (0, 10, 25, 50, 75, 90)
BATCH = 2000


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


class Book:
    """The deals as the benchmark knows them: what it loaded and published,
    so it can tell when the read model caught up."""

    def __init__(self, teams: list[str], reps: dict[str, list[str]], seed: int = 11):
        self.rng = random.Random(seed)
        self.teams = teams
        self.reps = reps
        self.deals: dict[str, dict] = {}  # cid -> {version, stage, value_fen, owner, team}
        self.before: dict = {}  # the read model's counts before the book loaded anything

    def new_deal(self, i: int) -> tuple[dict, dict]:
        """A deal document and its state, as events would have left them."""
        team = self.teams[i % len(self.teams)]
        owner = self.rng.choice(self.reps[team])
        cid = f"bench{i:07d}"
        stage = self.rng.choice(STAGES)
        value = self.rng.randint(10, 5000) * 100_00
        at = T0 + timedelta(minutes=i)
        event = {"event_id": f"load-{cid}", "occurred_at": at.isoformat(), "customer_id": cid,
                 "version": 1, "stage": stage, "expected_value_fen": value, "owner_id": owner,
                 "team_id": team, "status": "active"}
        state = domain.apply_deal_event(None, event, "CustomerCreated")
        history = [readmodel.history_entry(event, "CustomerCreated")]
        roll = self.rng.random()
        if roll < 0.15:  # some history to calibrate on: won ...
            history.append({**history[0], "event_id": f"won-{cid}", "version": None,
                            "at": readmodel.iso_utc(at + timedelta(days=20)),
                            "from_stage": stage, "to_stage": 100})
        elif roll < 0.3:  # ... or lost
            history.append({**history[0], "event_id": f"lost-{cid}", "version": None,
                            "kind": "abandoned", "at": readmodel.iso_utc(at + timedelta(days=9)),
                            "from_stage": None, "to_stage": None})
        fields = readmodel.deal_fields(state, history, None)
        self.deals[cid] = {"version": 1, "stage": stage, "value_fen": value, "owner": owner,
                           "team": team, "at": at}
        return {"_id": cid, **fields, "gens": [0], "rev": 1}, fields["contrib"]

    def stage_events(self, count: int) -> list[dict]:
        ids = list(self.deals)
        return [self._stage_event(n, self.rng.choice(ids)) for n in range(count)]

    def _stage_event(self, n: int, cid: str) -> dict:
        d = self.deals[cid]
        to = self.rng.choice([s for s in STAGES if s != d["stage"]])
        d["version"] += 1
        d["at"] += timedelta(minutes=1)
        event = {"event_id": f"ev-{n}-{cid}", "occurred_at": (d["at"]).isoformat(),
                 "customer_id": cid, "version": d["version"], "from": d["stage"], "to": to,
                 "expected_value_fen": d["value_fen"], "owner_id": d["owner"],
                 "team_id": d["team"], "changed_by": d["owner"], "note": None}
        d["stage"] = to
        return event

    def company_counts(self) -> dict:
        # Deals that earlier benchmarks created through the API are in the read
        # model too: the book's own come on top of what was there before it.
        out: dict = dict(self.before)
        for d in self.deals.values():
            c, v = out.get(d["stage"], (0, 0))
            out[d["stage"]] = (c + 1, v + d["value_fen"])
        return out


def _load(ctx, book: Book, start: int, stop: int) -> float:
    """Deals [start, stop) into the forecast database, scope documents included."""
    db = ctx.db("forecast")
    t0 = time.perf_counter()
    totals: dict[str, dict[str, int]] = {}
    shards: dict[str, list[dict]] = {}
    for i in range(start, stop):
        doc, contrib = book.new_deal(i)
        shard = shards.setdefault(storage.deals(db, doc["_id"]).name, [])
        shard.append(doc)
        for team, incs in readmodel.increments(None, contrib).items():
            cell = totals.setdefault(team, {})
            for path, v in incs.items():
                cell[path] = cell.get(path, 0) + v
        if len(shard) >= BATCH:
            db[storage.deals(db, doc["_id"]).name].insert_many(shard, ordered=False)
            shard.clear()
    for name, docs in shards.items():
        if docs:
            db[name].insert_many(docs, ordered=False)
    for team, incs in totals.items():
        sid = storage.scope_id(0, team)
        db.scopes.update_one({"_id": sid}, {"$setOnInsert": {"gen": 0, "team": team,
                                                             "applied": {}}}, upsert=True)
        db.scopes.update_one({"_id": sid}, {"$inc": incs})
    return time.perf_counter() - t0


def _read_model_counts(ctx) -> dict:
    docs = storage.team_docs(ctx.db("forecast"), storage.get_meta(ctx.db("forecast"))["gen"])
    return readmodel.pipe_counts(docs)


def _measure_reads(ctx, label: str, rep_token: str, manager_token: str, requests_n: int,
                   clients: int) -> dict:
    url = ctx.stack.url + "/api/forecast"
    out = {}
    for who, token in (("rep", rep_token), ("team", manager_token),
                       ("company", ctx.admin_token)):
        headers = {"Authorization": f"Bearer {token}"}
        f = measure(f"GET /api/forecast {who} @ {label}",
                    lambda s, i, h=headers: s.get(url, headers=h), clients, requests_n)
        print(f.line(ctx.ceiling.get(f"rpc{clients}")), flush=True)
        out[who] = f
    return out


def _queue_depth(amqp_uri: str, event_type: str = "StageChanged") -> int:
    with Connection(amqp_uri) as conn:
        ch = conn.channel()
        return ch.queue_declare(queue_name("customers", event_type, "forecast"),
                                passive=True).message_count


def _settled(ctx, seconds: float = 60) -> None:
    """Wait until forecast has taken in what earlier benchmarks made happen."""
    amqp_uri = f"pyamqp://guest:guest@127.0.0.1:5672/{ctx.stack.vhost}"
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline and any(
            _queue_depth(amqp_uri, t) for t in ("CustomerCreated", "StageChanged")):
        time.sleep(0.5)
    time.sleep(1)  # the last ones taken off the queue may still be being applied


def _ingest(ctx, book: Book, events: int) -> None:
    from nameko.standalone.events import event_dispatcher

    amqp_uri = f"pyamqp://guest:guest@127.0.0.1:5672/{ctx.stack.vhost}"
    dispatch = event_dispatcher(uri=amqp_uri)
    batch = book.stage_events(events)
    want = book.company_counts()
    t0 = time.perf_counter()
    for e in batch:
        dispatch("customers", "StageChanged", e)
    published = time.perf_counter() - t0
    print(f"published {events} StageChanged events in {published:.1f} s "
          f"({events / published:.0f} events/s into RabbitMQ)", flush=True)
    deadline = t0 + max(600.0, events * 1.0)
    last_report = 0.0
    while time.perf_counter() < deadline:
        if _read_model_counts(ctx) == want and _queue_depth(amqp_uri) == 0:
            break
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            print(f"  ... {time.perf_counter() - t0:.0f} s, queue {_queue_depth(amqp_uri)}",
                  flush=True)
        time.sleep(0.5)
    else:
        print("!! the read model did not catch up in time", flush=True)
    took = time.perf_counter() - t0
    rate = events / took
    print(f"ingestion: {events} stage events through RabbitMQ into the read model in "
          f"{took:.1f} s = {rate:.1f} events/s (measured, {len(book.deals)} deals stored)",
          flush=True)
    print(f"ingestion: 1,000,000 events at that rate would take {1_000_000 / rate / 3600:.1f} h "
          f"(EXTRAPOLATED, not measured)", flush=True)


def run(ctx) -> None:
    sizes = [int(x) for x in _env("BENCH_FORECAST_SIZES", "1000,100000").split(",")]
    events = int(_env("BENCH_FORECAST_EVENTS", "3000"))
    requests_n = int(_env("BENCH_FORECAST_REQUESTS", "600"))
    clients = int(_env("BENCH_FORECAST_CLIENTS", "4"))
    n_teams = int(_env("BENCH_FORECAST_TEAMS", "10"))
    n_reps = int(_env("BENCH_FORECAST_REPS", "10"))

    team = ctx.team("预测压测一部")
    rep, rep_token = ctx.user("rep", team["id"], "压测业务员")
    _, manager_token = ctx.user("manager", team["id"], "压测经理")
    teams = [team["id"]] + [f"benchteam{i}" for i in range(1, n_teams)]
    reps = {t: [f"{t}-rep{j}" for j in range(n_reps)] for t in teams}
    reps[team["id"]][0] = rep["id"]
    book = Book(teams, reps)
    _settled(ctx)
    book.before = _read_model_counts(ctx)
    print(f"{n_teams} teams x {n_reps} reps; measured: rep {rep['id']}, team {team['id']}, "
          f"company", flush=True)

    figures = {}
    loaded = 0
    for size in sizes:
        took = _load(ctx, book, loaded, size)
        print(f"loaded deals {loaded}..{size} straight into the database in {took:.1f} s",
              flush=True)
        loaded = size
        assert _read_model_counts(ctx) == book.company_counts()
        figures[size] = _measure_reads(ctx, f"{size:,} deals", rep_token, manager_token,
                                       requests_n, clients)
    if len(sizes) >= 2:
        small, big = figures[sizes[0]]["company"], figures[sizes[-1]]["company"]
        ratio = big.pct(99) / small.pct(99) if small.pct(99) else float("nan")
        print(f"company p99 at {sizes[-1]:,} / at {sizes[0]:,} deals = {ratio:.2f} "
              f"(target <= 2)", flush=True)

    if events:
        _ingest(ctx, book, events)
        _measure_reads(ctx, f"{len(book.deals):,} deals, after ingestion", rep_token,
                       manager_token, max(100, requests_n // 3), clients)
    pids = service_pids(ctx.stack)
    if "forecast" in pids:
        print(f"forecast RSS: {rss_mb(pids['forecast']):.0f} MB", flush=True)
