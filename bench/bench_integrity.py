"""Customer integrity: verifying a 10,000-entry audit chain and building a
10,000-descendant referral tree, each beside one GET /api/customers/{id}
measured in the same run.

Data is loaded straight into the stack's database in the stored shape (the
audit entries chained with the real hash function, the customers built by
the core's own `domain.new_customer`), then read through the gateway.
"""

from __future__ import annotations

import time
from datetime import timedelta

from bench.harness import measure
from services.common.ids import new_id
from services.common.principal import Principal
from services.customers import audit, domain

AUDIT_ENTRIES = 10_000
DESCENDANTS = 10_000
FANOUT = 10
BATCH = 1000


def _customer(ctx, token, name):
    r = ctx.api.post("/api/customers", token, json={"company_name": name,
                                                    "expected_value": 50000})
    r.raise_for_status()
    return r.json()


def _load_audit(db, customer_id: str, actor: dict, n: int) -> float:
    """Chain n-1 entries after the customer's first one (its `create`)."""
    last = db.audit.find_one({"customer_id": customer_id, "seq": 1})
    t0 = time.perf_counter()
    batch = []
    for i in range(2, n + 1):
        at = last["at"] + timedelta(minutes=1)
        last = audit.build_entry(last, customer_id, actor, "followup", None,
                                 {"content": f"第{i}次电话回访：客户询问交期与付款方式"}, at)
        batch.append(dict(last))
        if len(batch) == BATCH:
            db.audit.insert_many(batch)
            batch = []
    if batch:
        db.audit.insert_many(batch)
    return time.perf_counter() - t0


def _load_tree(db, root: dict, owner: Principal, n: int) -> int:
    """n descendants under `root`, FANOUT children per node, breadth first."""
    now = db.customers.find_one({"_id": root["id"]})["created_at"]
    parents, made, depth = [root["id"]], 0, 0
    while made < n:
        level = []
        for parent in parents:
            for _ in range(FANOUT):
                if made >= n:
                    break
                made += 1
                name = f"压测转介绍客户{made:05d}号贸易有限公司"
                keys = domain.normalize_keys_input({"company_name": name})
                cid = new_id()
                doc = domain.new_customer(cid, {"company_name": name, "referred_by": parent},
                                          keys, [], [], owner, now)
                level.append(doc)
            if made >= n:
                break
        for i in range(0, len(level), BATCH):
            db.customers.insert_many(level[i:i + BATCH])
        parents = [d["_id"] for d in level]
        depth += 1
    return depth


def run(ctx):
    team = ctx.team("压测诚信团队")
    _, manager_token = ctx.user("manager", team["id"], "压测经理")
    rep, rep_token = ctx.user("rep", team["id"], "压测业务员")
    db = ctx.db("customers")

    busy = _customer(ctx, rep_token, "深圳市压测审计电子有限公司")
    took = _load_audit(db, busy["id"], {"id": rep["id"], "name": rep["name"], "role": "rep"},
                       AUDIT_ENTRIES)
    print(f"loaded {AUDIT_ENTRIES} audit entries in {took:.1f} s", flush=True)

    root = _customer(ctx, rep_token, "广州市压测转介绍总部贸易有限公司")
    t0 = time.perf_counter()
    depth = _load_tree(db, root, Principal.of(rep), DESCENDANTS)
    print(f"loaded {DESCENDANTS} descendants ({depth} levels, {FANOUT} per node) in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)

    url = ctx.stack.url
    auth = {"Authorization": f"Bearer {manager_token}"}

    get_one = measure("GET /api/customers/{id}",
                      lambda s, i: s.get(f"{url}/api/customers/{busy['id']}", headers=auth),
                      1, 200)
    print(get_one.line(ctx.ceiling.get("rpc1")), flush=True)

    def audit_call(s, i):
        r = s.get(f"{url}/api/customers/{busy['id']}/audit", headers=auth)
        assert r.json()["intact"] is True, r.text
        return r

    chain = measure(f"GET .../audit ({AUDIT_ENTRIES} entries, verified)", audit_call, 1, 5,
                    warmup=1)
    print(chain.line(), flush=True)

    # where the time goes: the database read alone, then the hashing alone
    t0 = time.perf_counter()
    entries = list(db.audit.find({"customer_id": busy["id"]}).sort("seq", 1))
    read_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    assert audit.verify_chain(entries)
    pure_ms = (time.perf_counter() - t0) * 1000
    print(f"{'  of which: reading the chain from the DB':<44} {read_ms:8.1f} ms "
          f"({db.audit.estimated_document_count()} entries in the collection)", flush=True)
    print(f"{'  of which: verify_chain (in memory)':<44} {pure_ms:8.1f} ms", flush=True)

    def tree_call(limit):
        def call(s, i):
            r = s.get(f"{url}/api/customers/{root['id']}/referrals?depth=50&limit={limit}",
                      headers=auth)
            body = r.json()
            assert body["tree"]["customer"]["referred_count"] == FANOUT, r.text[:300]
            return r
        return call

    t0 = time.perf_counter()
    links = list(db.customers.find({"referred_by": {"$ne": None}}, {"_id": 1, "referred_by": 1}))
    print(f"{'  one pass over the referral links (DB)':<44} "
          f"{(time.perf_counter() - t0) * 1000:8.1f} ms ({len(links)} links, "
          f"{db.customers.estimated_document_count()} customers)", flush=True)
    full = measure(f"GET .../referrals ({DESCENDANTS} descendants)", tree_call(DESCENDANTS),
                   1, 3, warmup=1)
    print(full.line(), flush=True)
    bounded = measure("GET .../referrals (default bound: 1000 shown)", tree_call(1000), 1, 3,
                      warmup=1)
    print(bounded.line(), flush=True)

    base = get_one.pct(50)
    print(f"\nsummary (p50): GET customer {base:.1f} ms | audit verify of {AUDIT_ENTRIES} "
          f"{chain.pct(50):.1f} ms ({chain.pct(50) / base:.0f}x) | referral tree of "
          f"{DESCENDANTS} {full.pct(50):.1f} ms ({full.pct(50) / base:.0f}x) | tree bounded "
          f"to 1000 {bounded.pct(50):.1f} ms ({bounded.pct(50) / base:.0f}x)", flush=True)
