"""Every page reads an index: the lists and the writes of a rep's day at
10,000, 100,000 and 1,000,000 customers (issue 13).

A 50-rep company (5 teams of 10 reps and a manager each, an admin). The
customers are loaded straight into the customers database in the stored
shape (domain.new_customer; 5 % in the public pool), with follow-ups and
audit chains (a create entry and follow-up entries, valid hash chains and
their heads) per customer, and each rep's inbox and reminders; the load time
is measured. At each size, through the API:

- writes: adding a follow-up, changing a stage (random customers of one rep);
- pages: a rep's, a manager's and an admin's first page; page
  500 of the admin's list by cursor (and by ?page=500, for comparison); a
  manager's list by stage; a rep's and an admin's search by name (?q=);
  one customer's follow-ups and audit trail; a rep's notifications and
  reminders; the pool.

Each line gives req/s, p50 and p99, and the CPU each process spent per
request (FerretDB's among them). The targets: every page p99 <= 50 ms at
1,000,000 customers, and <= 2x its own p99 at 10,000; the summary prints
the ratios. Prints figures; asserts no times.

Knobs (environment):
  BENCH_LISTS_SIZES       "10000,100000,1000000"  customers stored at each step
  BENCH_LISTS_DETAIL      "10"    follow-ups (and audit entries after the create) per customer
  BENCH_LISTS_REQUESTS    "200"   requests per measurement
  BENCH_LISTS_CLIENTS     "1"     clients at once (1: each figure is one request's latency)
  BENCH_LISTS_MAX_LOAD_S  "3600"  skip a size whose load would take longer
  BENCH_LISTS_KEEP        "0"     "1": leave the loaded data in place
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from datetime import timedelta

from bench.bench_customers import Generator
from bench.harness import CpuMeter, measure
from services.common.clock import now as clock_now
from services.common.ids import new_id
from services.common.principal import Principal
from services.customers import audit, domain
from services.customers import storage as customer_storage
from services.notify import storage as notify_storage
from services.scheduler import storage as scheduler_storage

STAGES = (0, 10, 25, 50, 75, 90)
TEAMS, REPS_PER_TEAM = 5, 10
BATCH = 2000
INBOX, REMINDERS = 500, 200  # per rep, loaded once


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


class Company:
    def __init__(self, ctx):
        self.teams, self.reps, self.managers = [], [], []
        for t in range(TEAMS):
            team = ctx.team(f"压测销售{t + 1}部")
            self.teams.append(team)
            user, token = ctx.user("manager", team["id"], f"压测经理{t + 1}")
            self.managers.append((Principal(user["id"], "manager", team["id"], user["name"]),
                                  token))
            for r in range(REPS_PER_TEAM):
                user, token = ctx.user("rep", team["id"], f"压测业务员{t + 1}-{r + 1}")
                self.reps.append((Principal(user["id"], "rep", team["id"], user["name"]), token))


def _chain(cid: str, doc: dict, owner: Principal, detail: int, at) -> tuple[list, list, dict]:
    """A customer's follow-ups, its audit chain (create + one entry per
    follow-up) and the chain's head."""
    actor = {"id": owner.id, "name": owner.name, "role": "rep"}
    entries = [audit.build_entry(None, cid, actor, "create", None,
                                 domain.audit_snapshot(doc), at)]
    followups = []
    for i in range(detail):
        when = at + timedelta(days=i + 1)
        f = domain.new_followup(new_id(), cid, {"content": f"第{i + 1}次电话沟通，客户关注交期和账期",
                                                "channel": "phone"}, owner, when)
        followups.append(f)
        entries.append(audit.build_entry(entries[-1], cid, actor, "followup", None,
                                         {k: f[k] for k in ("_id", "content", "contact_name",
                                                            "channel")}, when))
    head = {"_id": cid, "seq": entries[-1]["seq"], "hash": entries[-1]["hash"]}
    return followups, entries, head


def load(db, gen: Generator, company: Company, count: int, detail: int, rng) -> None:
    """Insert `count` customers with their follow-ups and audit chains. The
    documents are made in a thread of their own while the previous batch is
    written (one core each, on this 2-core machine)."""
    at = clock_now() - timedelta(days=400)
    ready: queue.Queue = queue.Queue(maxsize=2)

    def make():
        batch = {"customers": [], "followups": [], "audit": [], "audit_heads": []}
        for i in range(count):
            owner, _ = company.reps[i % len(company.reps)]
            name, key = gen.company()
            keys = {"name": key, "phones": [gen.phone()], "credit_code": None, "emails": []}
            cid = new_id()
            data = {"company_name": name, "stage": rng.choice(STAGES),
                    "expected_value": rng.randrange(1, 500) * 1000}
            doc = domain.new_customer(cid, data, keys, [], domain.claim_keys(keys), owner, at)
            if rng.random() < 0.05:  # abandoned to the public pool
                doc.update(status="pool", owner_id=None, owner_name=None, team_id=None)
            followups, entries, head = _chain(cid, doc, owner, detail, at)
            batch["customers"].append(doc)
            batch["followups"] += followups
            batch["audit"] += entries
            batch["audit_heads"].append(head)
            if len(batch["customers"]) >= BATCH:
                ready.put(batch)
                batch = {name: [] for name in batch}
        ready.put(batch)
        ready.put(None)

    maker = threading.Thread(target=make, daemon=True)
    maker.start()
    while (batch := ready.get()) is not None:
        for name, docs in batch.items():
            for start in range(0, len(docs), 5000):
                db[name].insert_many(docs[start:start + 5000], ordered=False)
    maker.join()


def load_inboxes(company: Company, notify_db, scheduler_db, rng) -> None:
    now = clock_now()
    notes, reminders = [], []
    for rep, _ in company.reps:
        for i in range(INBOX):
            notes.append({"_id": new_id(), "key": f"bench:{rep.id}:{i}", "user_id": rep.id,
                          "kind": "alarm_resolved", "title": "困难报警已处理",
                          "body": "经理：继续跟进", "ref": {"customer_id": "c"},
                          "created_at": now - timedelta(minutes=i), "read": i % 4 != 0,
                          "acknowledged": False, "acknowledged_at": None, "escalation": None})
        for i in range(REMINDERS):
            # pending, with no queue entry: listed, never fired
            reminders.append({"_id": new_id(), "user_id": rep.id, "kind": "event",
                              "title": f"回访客户{i}", "content": "", "due_at":
                              now + timedelta(days=30, hours=i), "customer_id": None,
                              "escalate_after_minutes": 10, "contact_name": None, "note": None,
                              "status": "pending", "created_at": now, "updated_at": now})
    for coll, docs in ((notify_db.notifications, notes), (scheduler_db.reminders, reminders)):
        for start in range(0, len(docs), BATCH):
            coll.insert_many(docs[start:start + BATCH], ordered=False)


def _ids_of(db, flt: dict, n: int) -> list[str]:
    return [d["_id"] for d in db.customers.find(flt, {"_id": 1}).sort("_id", -1).limit(n)]


def run(ctx):
    sizes = [int(s) for s in _env("BENCH_LISTS_SIZES", "10000,100000,1000000").split(",")]
    detail = int(_env("BENCH_LISTS_DETAIL", "10"))
    n = int(_env("BENCH_LISTS_REQUESTS", "200"))
    clients = int(_env("BENCH_LISTS_CLIENTS", "1"))
    max_load_s = float(_env("BENCH_LISTS_MAX_LOAD_S", "3600"))
    url, rng = ctx.stack.url, random.Random(13)
    db = ctx.db("customers")
    company = Company(ctx)
    gen = Generator(seed=13)
    admin = ctx.admin_token
    t0 = time.perf_counter()
    load_inboxes(company, ctx.db("notify"), ctx.db("scheduler"), rng)
    print(f"-- loaded {len(company.reps) * INBOX:,} notifications and "
          f"{len(company.reps) * REMINDERS:,} reminders in {time.perf_counter() - t0:.1f} s",
          flush=True)
    stored, rate, results = 0, None, {}
    for size in sizes:
        todo = size - stored
        if todo > 0 and rate and todo / rate > max_load_s:
            print(f"-- {size:,} customers: loading {todo:,} more would take about "
                  f"{todo / rate / 60:.0f} min at the measured {rate:,.0f} customers/s "
                  f"(limit BENCH_LISTS_MAX_LOAD_S={max_load_s:.0f}); size skipped", flush=True)
            continue
        if todo > 0:
            t0 = time.perf_counter()
            load(db, gen, company, todo, detail, rng)
            took = time.perf_counter() - t0
            rate, stored = todo / took, size
            print(f"-- loaded {todo:,} customers (+ {todo * detail:,} follow-ups, "
                  f"{todo * (detail + 1):,} audit entries) in {took:.1f} s = {rate:,.0f} "
                  f"customers/s; stored {size:,}", flush=True)
        results[size] = measure_size(ctx, url, db, company, admin, size, n, clients, rng)
    summary(results)
    if _env("BENCH_LISTS_KEEP", "0") != "1":
        for name in ("customers", "followups", "audit", "audit_heads", "stage_changes"):
            db.drop_collection(name)
        customer_storage.ensure_indexes(db)
        ctx.db("notify").drop_collection("notifications")
        notify_storage.ensure_indexes(ctx.db("notify"))
        ctx.db("scheduler").drop_collection("reminders")
        scheduler_storage.ensure_indexes(ctx.db("scheduler"))
        print("bulk-loaded lists dropped (BENCH_LISTS_KEEP=1 keeps them)", flush=True)


def measure_size(ctx, url, db, company, admin, size, n, clients, rng) -> dict:
    rep, rep_token = company.reps[0]
    manager, manager_token = company.managers[0]
    mine = _ids_of(db, {"owner_id": rep.id}, 500)
    sample = db.customers.find_one({"owner_id": rep.id}, {"company_name": 1, "name_grams": 1})
    word = sample["name_grams"][0]  # a two-character gram of one of his customers' names
    tokens = {r.id: t for r, t in company.reps}
    # page 500 of the admin's list: the cursor is the last id of page 499
    cursor = db.customers.find({}, {"_id": 1}).sort("_id", -1).skip(499 * 20).limit(1)
    cursor = next(iter(cursor), {"_id": None})["_id"]
    owners = {d["_id"]: d["owner_id"] for d in db.customers.find(
        {"_id": {"$in": mine}}, {"owner_id": 1})}

    def get(path, token):
        return lambda s, i: s.get(url + path, headers={"Authorization": f"Bearer {token}"},
                                  timeout=120)

    pages = {
        "rep, first page": get("/api/customers", rep_token),
        "manager, first page": get("/api/customers", manager_token),
        "admin, first page": get("/api/customers", admin),
        "admin, page 500 by cursor": get(f"/api/customers?after={cursor}", admin),
        "admin, page 500 by ?page=500": get("/api/customers?page=500", admin),
        "manager, by stage": get("/api/customers?stage=25", manager_token),
        f"rep, q={word}": get(f"/api/customers?q={word}", rep_token),
        f"admin, q={sample['company_name'][:6]}":
            get(f"/api/customers?q={sample['company_name'][:6]}", admin),
        "one customer's follow-ups": get(f"/api/customers/{mine[0]}/followups", rep_token),
        "one customer's audit trail": get(f"/api/customers/{mine[1]}/audit", rep_token),
        "rep's notifications": get("/api/notifications", rep_token),
        "rep's reminders": get("/api/reminders", rep_token),
        "the pool": get("/api/customers?status=pool", rep_token),
    }
    figures = {}
    print(f"\n== lists at {size:,} customers", flush=True)

    def write(kind):
        def call(s, i):
            cid = mine[rng.randrange(len(mine))]
            token = tokens[owners[cid]]
            if kind == "followup":
                return s.post(url + f"/api/customers/{cid}/followups", json={
                    "content": "电话回访，客户确认下月下单", "channel": "phone"},
                    headers={"Authorization": f"Bearer {token}"}, timeout=120)
            return s.post(url + f"/api/customers/{cid}/stage", json={
                "stage": rng.choice(STAGES)}, headers={"Authorization": f"Bearer {token}"},
                timeout=120)
        return call

    for label, call in (("POST follow-up", write("followup")), ("POST stage", write("stage"))):
        cpu = CpuMeter(ctx.stack)
        f = measure(f"{label} @{size:,}", call, clients, n, warmup=4)
        print(f.line(), flush=True)
        print("  " + cpu.line(n + 4), flush=True)
        figures[label] = f
    for label, call in pages.items():
        cpu = CpuMeter(ctx.stack)
        f = measure(f"GET {label} @{size:,}", call, clients, n, warmup=4)
        print(f.line(), flush=True)
        print("  " + cpu.line(n + 4), flush=True)
        figures[label.split(", q=")[0] + (", q" if ", q=" in label else "")] = f
    return figures


def summary(results: dict) -> None:
    if not results:
        return
    small, large = min(results), max(results)
    print(f"\n== p99 at {large:,} (target <= 50 ms) and its ratio to p99 at {small:,} "
          "(target <= 2x)", flush=True)
    for label, f in results[large].items():
        base = results[small].get(label)
        ratio = f"{f.pct(99) / base.pct(99):.2f}x" if base and base.pct(99) else "n/a"
        met = "met" if f.pct(99) <= 50 and (not base or f.pct(99) <= 2 * base.pct(99)) else "NOT met"
        print(f"{label:<40} p99 {f.pct(99):7.1f} ms  x{ratio:>6}  errors={f.errors}  {met}",
              flush=True)
