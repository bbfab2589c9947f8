"""`make bench`: start the stack as `make run` does, measure the framework's
ceiling, then every benchmark module `bench/bench_*.py` (each has
`run(ctx)` and prints its figures). `python -m bench customers` runs only
bench_customers.py after the ceiling."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import uuid

import bench
from bench.harness import Context, CpuMeter, measure, rss_mb, service_pids
from tests.e2e.stack import Api, Stack


def main(argv: list[str]) -> int:
    secret = "bench-" + uuid.uuid4().hex + uuid.uuid4().hex
    password = "压测-总部-" + uuid.uuid4().hex[:12]
    stack = Stack(secret, password, CRM_LOG_LEVEL="WARNING").start()
    try:
        from pymongo import MongoClient

        api = Api(stack.url)
        token = api.login("admin", password)
        n = int(os.environ.get("BENCH_CEILING_REQUESTS", "2000"))
        print("== ceiling: the framework through the real gateway", flush=True)
        ceiling = {}
        for clients in (1, 16):
            f = measure("GET /api/echo (HTTP only, no RPC)",
                        lambda s, i: s.get(stack.url + "/api/echo"), clients, n)
            ceiling[f"http{clients}"] = f
            print(f.line(), flush=True)
            cpu = CpuMeter(stack)
            f = measure("GET /api/ping (HTTP -> RPC -> reply)",
                        lambda s, i: s.get(stack.url + "/api/ping"), clients, n)
            ceiling[f"rpc{clients}"] = f
            print(f.line(), flush=True)
            print("  " + cpu.line(n), flush=True)
        pids = service_pids(stack)
        print("RSS after ceiling: " + ", ".join(f"{k}={rss_mb(p):.0f} MB"
                                                for k, p in sorted(pids.items())), flush=True)
        ctx = Context(stack, api, token, ceiling, MongoClient(
            os.environ.get("CRM_MONGO_URI", "mongodb://127.0.0.1:27017/"), tz_aware=True))
        wanted = set(argv)
        for mod in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
            if not mod.startswith("bench_"):
                continue
            if wanted and mod[len("bench_"):] not in wanted:
                continue
            print(f"\n== {mod[len('bench_'):]}", flush=True)
            importlib.import_module(f"bench.{mod}").run(ctx)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
