"""The duplicate guard under load: POST /api/customers/check and POST
/api/customers at 16 clients, with 10,000 and with 1,000,000 customers stored.

Customers are loaded straight into the customers database, in the exact
stored shape (storage.py docstring: the customer document, its phone claim
and its name-log entry), with insert_many in batches; the load time is
measured. Prints req/s, p50, p99, create as a ratio of the RPC ceiling, and
the customers service's RSS. Prints figures; asserts no times.

Knobs (environment):
  BENCH_CUSTOMERS_SIZES      "10000,1000000"  stored customers at each step
  BENCH_CUSTOMERS_REQUESTS   "200"            requests per measurement at 16 clients
  BENCH_CUSTOMERS_MAX_LOAD_S "900"            skip a size whose load would take longer
  BENCH_CUSTOMERS_PROBE_S    "8"              skip the 16-client check when one check takes longer
  BENCH_CUSTOMERS_KEEP       "0"              "1": leave the loaded customers in place
"""

from __future__ import annotations

import os
import random
import time

import requests

from bench.harness import CpuMeter, measure, rss_mb, service_pids
from services.common.clock import now as clock_now
from services.common.ids import new_id
from services.common.principal import Principal
from services.customers import domain, storage
from services.customers import normalize as norm

BRAND_CHARS = "".join(dict.fromkeys(
    "鑫源泰丰华盛隆达恒宏远嘉禾瑞祥永金鼎银星辰宇博雅康泽德信润佳美丽新光明正伟业峰锦程创联"
    "合众汇智诚万邦凯旋腾飞卓越骏豪安平昌盈富贵福寿喜乐和顺天地人江河湖海山川云雨风雷雪霜春"
    "夏秋冬东南西北红黄蓝绿青紫白黑木水火土石玉竹松柏梅兰菊荷桃李杏梨龙凤虎豹鹰鹏鹤雁狮象"
    "马牛羊鹿图志航帆舟桥楼阁亭园林森田苗稻麦粟豆茶桑丝绸绣彩虹霞晖晨曦朗耀辉煌灿烁晶莹璀"
    "璨琳琅珍宝玺印章书画墨笔砚纸文武英杰俊秀贤仁义礼忠孝勤俭毅勇强兴旺展协力同心齐聚集融"))
INDUSTRIES = ("智能装备", "电子科技", "精密机械", "新材料", "生物医药", "物流", "食品",
              "建筑工程", "软件", "光电", "环保科技", "包装材料", "汽车配件", "纺织服饰",
              "家居用品", "化工", "医疗器械", "文化传媒", "餐饮管理", "五金制品")
REGIONS = ("深圳市", "北京", "上海市", "广州市", "杭州市", "成都市", "苏州市", "东莞市", "")
BATCH = 5000


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


class Generator:
    """Unique synthetic companies: <region><3-character brand><industry>有限公司,
    one mobile each. Brands of the loaded set have 3 characters and those of
    new entries 4, so a new entry never collides with a stored one."""

    def __init__(self, seed: int = 7):
        self.rng = random.Random(seed)
        self.cores: set[str] = set()
        self.paths = {r: norm.normalize_company_name(f"{r}测试样本有限公司").region_path
                      for r in REGIONS}
        self.phone_seq = 0
        self.terms: dict[str, dict] = {}  # the near-match index of what was loaded

    def company(self, brand_len: int = 3) -> tuple[str, norm.NameKey]:
        while True:
            brand = "".join(self.rng.choices(BRAND_CHARS, k=brand_len))
            core = brand + self.rng.choice(INDUSTRIES)
            if core not in self.cores:
                self.cores.add(core)
                break
        region = self.rng.choice(REGIONS)
        path = self.paths[region]
        return f"{region}{core}有限公司", norm.NameKey(core, path[-1] if path else None, path)

    def phone(self, prefix: str = "139") -> str:
        self.phone_seq += 1
        return f"+86{prefix}{self.phone_seq:08d}"


def load(db, gen: Generator, owners: list[Principal], count: int) -> list[tuple[str, str]]:
    """Insert `count` customers with their claims; returns (name, phone) of a
    sample, for check requests that must find them."""
    sample = []
    at = clock_now()
    customers, claims, names = [], [], []

    def flush():
        for coll, docs in ((db.customers, customers), (db.claims, claims),
                           (db.name_claims, names)):
            if docs:
                coll.insert_many(docs, ordered=False)
                docs.clear()

    for i in range(count):
        name, key = gen.company()
        phone = gen.phone()
        owner = owners[i % len(owners)]
        keys = {"name": key, "phones": [phone], "credit_code": None, "emails": []}
        claimed = domain.claim_keys(keys)
        cid = new_id()
        data = {"company_name": name, "stage": gen.rng.choice((0, 10, 25, 50, 75, 90)),
                "expected_value": gen.rng.randrange(1, 500) * 1000}
        customers.append(domain.new_customer(cid, data, keys, [], claimed, owner, at))
        record = storage.claim_record(cid, {"owner_id": owner.id, "owner_name": owner.name,
                                            "company_name": name}, at)
        claims.append({"_id": norm.phone_key(phone), **record})
        stream, region = domain.split_name_key(domain.name_key(key))
        names.append({**norm.name_claim_entry(stream, 1, region, cid), **record})
        for term in domain.search_grams(key.core):  # as storage.index_name files it
            slots = gen.terms.setdefault(term, {})
            free = [s for s in storage._slots(cid) if s not in slots]  # noqa: SLF001
            if free:
                slots[free[0]] = (cid, key.core, key.region_key)
        if len(sample) < 2000 and i % 7 == 0:
            sample.append((name, phone, domain.name_key(key)))
        if len(customers) >= BATCH:
            flush()
    flush()
    # The near-match index is rebuilt whole from what was loaded.
    docs = [{"_id": f"{term}#{slot}", "c": c, "k": k, "r": r}
            for term, slots in gen.terms.items() for slot, (c, k, r) in slots.items()]
    db.drop_collection("name_terms")
    for i in range(0, len(docs), BATCH):
        db.name_terms.insert_many(docs[i:i + BATCH], ordered=False)
    # Keep only the names the real normalizer files under the same key, so
    # every "existing company" check really is one.
    return [(n, p) for n, p, k in sample if domain.name_key(norm.normalize_company_name(n)) == k]


def run(ctx):
    sizes = [int(s) for s in _env("BENCH_CUSTOMERS_SIZES", "10000,1000000").split(",")]
    requests_n = int(_env("BENCH_CUSTOMERS_REQUESTS", "200"))
    max_load_s = float(_env("BENCH_CUSTOMERS_MAX_LOAD_S", "900"))
    probe_s = float(_env("BENCH_CUSTOMERS_PROBE_S", "8"))
    url = ctx.stack.url
    db = ctx.db("customers")
    team = ctx.team("压测华南一部")
    reps = [ctx.user("rep", team["id"], f"压测业务员{i}") for i in range(16)]
    owners = [Principal(u["id"], "rep", team["id"], u["name"]) for u, _ in reps]
    tokens = [t for _, t in reps]
    gen = Generator()
    pid = service_pids(ctx.stack).get("customers")
    rss = (lambda: f"{rss_mb(pid):.0f} MB") if pid else (lambda: "n/a")
    ceiling = ctx.ceiling.get("rpc16")
    print(f"customers service RSS before loading: {rss()}", flush=True)

    stored = db.customers.estimated_document_count()
    sample: list[tuple[str, str]] = []
    results = {}
    rate = None
    for size in sizes:
        todo = size - stored
        if todo > 0 and rate and todo / rate > max_load_s:
            print(f"-- {size:,} customers: loading {todo:,} more would take about "
                  f"{todo / rate / 60:.0f} min at the measured {rate:,.0f} customers/s "
                  f"(limit BENCH_CUSTOMERS_MAX_LOAD_S={max_load_s:.0f}); size skipped", flush=True)
            continue
        if todo > 0:
            t0 = time.perf_counter()
            sample.extend(load(db, gen, owners, todo))
            took = time.perf_counter() - t0
            rate = todo / took
            stored = size
            print(f"-- loaded {todo:,} customers (+ {todo:,} phone claims, {todo:,} name-log "
                  f"entries, {len(gen.terms):,} index terms) in {took:.1f} s = {rate:,.0f} customers/s; stored {size:,}",
                  flush=True)
        print(f"customers service RSS with {size:,} stored: {rss()}", flush=True)

        def check_body(i):
            if i % 2 == 0 and sample:
                name, phone = sample[i % len(sample)]
                return {"company_name": name.replace("有限公司", "股份有限公司"),
                        "phones": [phone[3:6] + " " + phone[6:10] + " " + phone[10:]]}
            name, _ = gen.company(4)
            return {"company_name": name, "phones": [gen.phone("137")]}

        def check(s, i, body_of=check_body):
            return s.post(url + "/api/customers/check", json=body_of(i),
                          headers={"Authorization": f"Bearer {tokens[i % 16]}"}, timeout=120)

        def create(s, i):
            name, _ = gen.company(4)
            return s.post(url + "/api/customers", json={
                "company_name": name, "phones": [gen.phone("136")], "stage": 10,
                "expected_value": 88000}, headers={"Authorization": f"Bearer {tokens[i % 16]}"},
                timeout=120)

        cpu = CpuMeter(ctx.stack)
        f_create = measure(f"POST /api/customers @{size:,}", create, 16, requests_n, warmup=4)
        stored += requests_n + 4
        print(f_create.line(ceiling) + f"  (create/ceiling {ctx.ratio(f_create)})", flush=True)
        # the event's subscribers (forecast, scheduler) work on after the answers
        time.sleep(3)
        print("  " + cpu.line(requests_n + 4), flush=True)
        print(f"customers service RSS after the runs at {size:,}: {rss()}", flush=True)
        t0 = time.perf_counter()
        probe = check(requests.Session(), 0)
        one = time.perf_counter() - t0
        print(f"one check alone: {one * 1000:.0f} ms -> {probe.status_code} "
              f"(available={probe.json().get('available') if probe.ok else '-'})", flush=True)
        if one > probe_s:
            print(f"check at {size:,}: one request took {one:.1f} s, more than "
                  f"BENCH_CUSTOMERS_PROBE_S={probe_s:.0f}: 16-client run skipped", flush=True)
            f_check = None
        else:
            cpu = CpuMeter(ctx.stack)
            f_check = measure(f"POST /api/customers/check @{size:,}", check, 16, requests_n,
                              warmup=4)
            print(f_check.line(ceiling), flush=True)
            print("  " + cpu.line(requests_n + 4), flush=True)

        results[size] = (f_check, f_create)

    if len(results) >= 2:
        small, large = min(results), max(results)
        cs, cl = results[small][0], results[large][0]
        if cs and cl:
            print(f"check p99 at {large:,} / at {small:,}: {cl.pct(99) / cs.pct(99):.2f}x "
                  f"(target <= 1.5x)", flush=True)
    if _env("BENCH_CUSTOMERS_KEEP", "0") != "1":
        # Leave the stack as other benchmarks expect it: no bulk-loaded customers.
        for name in ("customers", "claims", "name_claims", "name_terms"):
            db.drop_collection(name)
        storage.ensure_indexes(db)
        print("bulk-loaded customers dropped (BENCH_CUSTOMERS_KEEP=1 keeps them)", flush=True)
