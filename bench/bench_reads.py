"""What the read log costs a customer read (issue 15): GET /api/customers/{id}
with the read log and the bulk-read guard (the product, READ_LOG=on) and
without them (READ_LOG=off, a second stack started for the comparison), at
10,000 customers and 100,000+ read-log entries in each.

Both stacks hold the same data, loaded straight into their databases: a team
of 20 reps and a manager, each rep owning 500 customers (phones, e-mails, a
contact), and 100,000 read-log entries of theirs spread over the last 30
days. The read limits are raised for the measurement (a rep opens up to
1,000 different customers an hour), so every open is counted and none is
refused; the guard's counter of an hour holds what a rep opened in it.

Measured one request at a time (each figure is one request's latency),
alternating the two stacks round by round so that the machine's other load
falls on both alike:

- a rep opening one of his customers: read log + guard, against neither;
- an admin opening any customer: read log only (an admin has no limit);
- a rep's list page (its ids logged), for comparison.

Then the two writes themselves, from this process straight to the database
(no HTTP, no RPC): one read-log insert and one guard count. The target: the
logged read's p50 and p99 at most 20 % above the unlogged one's. Prints
figures; asserts no times.

Knobs (environment):
  BENCH_READS_CUSTOMERS  "10000"   customers in each stack
  BENCH_READS_ENTRIES    "100000"  read-log entries in each stack
  BENCH_READS_REQUESTS   "300"     requests per measurement and round
  BENCH_READS_ROUNDS     "3"       rounds (each measures both stacks)
"""

from __future__ import annotations

import os
import random
import statistics
import time
from datetime import timedelta

from bench.bench_customers import Generator
from bench.harness import CpuMeter, Figures, measure
from services.common.clock import now as clock_now
from services.common.ids import new_id
from services.common.principal import Principal
from services.customers import domain, reads
from services.customers import storage as customer_storage
from tests.e2e.stack import Api, Stack

REPS = 20
BATCH = 5000


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


class Side:
    """One stack and its people: the token of each rep, the admin's, and
    the customers each rep owns."""

    def __init__(self, label: str, stack: Stack, mongo):
        self.label, self.stack = label, stack
        self.api = Api(stack.url)
        self.admin = self.api.login("admin", stack.admin_password)
        self.db = mongo[stack.prefix + "customers"]
        team = self._ok(self.api.post("/api/teams", self.admin, json={"name": "压测读日志部"}))
        self.reps: list[tuple[Principal, str]] = []
        for i in range(REPS):
            user = self._ok(self.api.post("/api/users", self.admin, json={
                "username": f"reads_rep{i}", "password": "bench-pass-123",
                "name": f"读日志业务员{i + 1}", "role": "rep", "team_id": team["id"]}))
            self.reps.append((Principal(user["id"], "rep", team["id"], user["name"]),
                              self.api.login(f"reads_rep{i}", "bench-pass-123")))
        self.owned: dict[str, list[str]] = {}
        self.all: list[str] = []

    @staticmethod
    def _ok(r):
        r.raise_for_status()
        return r.json()

    def load(self, customers: int, entries: int, seed: int) -> tuple[float, float]:
        """The same customers and read log as the other side (same seed)."""
        rng, gen = random.Random(seed), Generator(seed=seed)
        at = clock_now() - timedelta(days=30)
        t0 = time.perf_counter()
        batch = []
        for i in range(customers):
            owner, _ = self.reps[i % REPS]
            name, key = gen.company()
            keys = {"name": key, "phones": [gen.phone()], "credit_code": None,
                    "emails": [f"buyer{i}@example-{i % 97}.cn"]}
            cid = new_id()
            data = {"company_name": name, "stage": rng.choice((0, 10, 25, 50)),
                    "expected_value": rng.randrange(1, 500) * 1000, "industry": "电子制造",
                    "address": "深圳市南山区科技园"}
            contacts = [{"name": "陈志强", "title": "采购总监", "phone": gen.phone("138"),
                         "decision_level": 3}]
            batch.append(domain.new_customer(cid, data, keys, contacts, domain.claim_keys(keys),
                                             owner, at))
            self.owned.setdefault(owner.id, []).append(cid)
            self.all.append(cid)
            if len(batch) >= BATCH:
                self.db.customers.insert_many(batch, ordered=False)
                batch = []
        if batch:
            self.db.customers.insert_many(batch, ordered=False)
        loaded_customers = time.perf_counter() - t0
        t0 = time.perf_counter()
        batch = []
        for i in range(entries):
            rep, _ = self.reps[i % REPS]
            mine = self.owned[rep.id]
            when = at + timedelta(seconds=i * 30 * 86400 / entries)
            if i % 5:
                kind, ids = reads.DETAIL, [mine[rng.randrange(len(mine))]]
            else:
                kind, ids = reads.LIST, rng.sample(mine, 20)
            batch.append(reads.read_entry(new_id(), rep, "10.0.0.8", kind, ids, when))
            if len(batch) >= BATCH:
                self.db.reads.insert_many(batch, ordered=False)
                batch = []
        if batch:
            self.db.reads.insert_many(batch, ordered=False)
        self._ok(self.api.put("/api/settings/reads", self.admin, json={
            "rep_hourly_limit": 1000, "manager_hourly_limit": 1000}))
        return loaded_customers, time.perf_counter() - t0

    def open_mine(self, rng):
        def call(s, i):
            rep, token = self.reps[rng.randrange(REPS)]
            mine = self.owned[rep.id]
            return s.get(f"{self.stack.url}/api/customers/{mine[rng.randrange(len(mine))]}",
                         headers={"Authorization": f"Bearer {token}"}, timeout=60)
        return call

    def open_any(self, rng):
        def call(s, i):
            return s.get(f"{self.stack.url}/api/customers/{self.all[rng.randrange(len(self.all))]}",
                         headers={"Authorization": f"Bearer {self.admin}"}, timeout=60)
        return call

    def list_page(self, rng):
        def call(s, i):
            _, token = self.reps[rng.randrange(REPS)]
            return s.get(f"{self.stack.url}/api/customers?page_size=20",
                         headers={"Authorization": f"Bearer {token}"}, timeout=60)
        return call


def _merge(parts: list[Figures]) -> Figures:
    out = Figures(parts[0].name.rsplit(" #", 1)[0], parts[0].clients, 0, 0, 0.0)
    for f in parts:
        out.requests += f.requests
        out.errors += f.errors
        out.seconds += f.seconds
        out.latencies_ms += f.latencies_ms
    return out


def _pct(values: list[float], p: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))]


def _direct_writes(db, rep: Principal, n: int) -> None:
    """The two writes a logged, counted open adds, timed from here."""
    inserts, counts = [], []
    quota = reads.new_quota(rep, "bench-first", clock_now())
    quota["_id"] = f"bench-{new_id()}"
    for i in range(n):
        doc = reads.read_entry(new_id(), rep, "10.0.0.8", reads.DETAIL, [new_id()], clock_now())
        t0 = time.perf_counter()
        customer_storage.insert_read(db, doc)
        inserts.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        customer_storage.open_in_quota(db, quota, f"c{i % 300}", 1000)
        counts.append((time.perf_counter() - t0) * 1000)
    for label, values in (("read-log insert (100,000+ entries)", inserts),
                          ("guard count (find_one_and_update)", counts)):
        print(f"  {label:<44} p50={statistics.median(values):6.2f} ms  "
              f"p99={_pct(values, 99):6.2f} ms  n={n}", flush=True)


def run(ctx):
    customers = int(_env("BENCH_READS_CUSTOMERS", "10000"))
    entries = int(_env("BENCH_READS_ENTRIES", "100000"))
    n = int(_env("BENCH_READS_REQUESTS", "300"))
    rounds = int(_env("BENCH_READS_ROUNDS", "3"))
    off_stack = Stack(ctx.stack.secret, ctx.stack.admin_password, CRM_LOG_LEVEL="WARNING",
                      CRM_READ_LOG="off").start()
    try:
        sides = {"on": Side("on", ctx.stack, ctx.mongo), "off": Side("off", off_stack, ctx.mongo)}
        for side in sides.values():
            took_c, took_r = side.load(customers, entries, seed=29)
            print(f"-- READ_LOG={side.label}: loaded {customers:,} customers in {took_c:.1f} s "
                  f"and {entries:,} read-log entries in {took_r:.1f} s", flush=True)
        rng = random.Random(31)
        kinds = (("rep opens one of his", "open_mine"), ("admin opens any", "open_any"),
                 ("rep's list page", "list_page"))
        parts: dict[tuple[str, str], list[Figures]] = {}
        cpu_ms: dict[tuple[str, str], list[float]] = {}
        for r in range(rounds):
            for kind, make in kinds:
                order = ("on", "off") if r % 2 == 0 else ("off", "on")
                for label in order:
                    side = sides[label]
                    cpu = CpuMeter(side.stack)
                    f = measure(f"{kind}, READ_LOG={label} #{r + 1}",
                                getattr(side, make)(rng), 1, n, warmup=10)
                    parts.setdefault((kind, label), []).append(f)
                    cpu_ms.setdefault((kind, label), []).append(cpu.total_ms(n + 10))
                    print(f.line(), flush=True)
                    print("  " + cpu.line(n + 10), flush=True)
        logged_before = sides["on"].db.reads.estimated_document_count()
        print(f"\n== the read log's cost ({customers:,} customers, "
              f"{logged_before:,} read-log entries on the logged side; 1 client)", flush=True)
        for kind, _ in kinds:
            on, off = _merge(parts[(kind, "on")]), _merge(parts[(kind, "off")])
            print(on.line(), flush=True)
            print(off.line(), flush=True)
            print(f"  {kind}: with the read log p50 {on.pct(50) / off.pct(50) - 1:+.1%}, "
                  f"p99 {on.pct(99) / off.pct(99) - 1:+.1%} (target <= +20 %)", flush=True)
            c_on = statistics.median(cpu_ms[(kind, "on")])
            c_off = statistics.median(cpu_ms[(kind, "off")])
            print(f"  {kind}: CPU per request (every process, FerretDB's included) "
                  f"{c_on:.1f} ms against {c_off:.1f} ms ({c_on / c_off - 1:+.1%}; the median "
                  f"of the rounds)", flush=True)
        print("\n== the added writes, from the bench process straight to the database", flush=True)
        rep, _ = sides["on"].reps[0]
        _direct_writes(sides["on"].db, rep, n)
        unrefused = sides["on"].db.read_quota.count_documents({"alerted_at": {"$ne": None}})
        print(f"  hours alerted during the bench: {unrefused} (the raised limits refuse none)",
              flush=True)
    finally:
        off_stack.stop()
