"""Handing a leaving rep's book over (issue 15): BENCH_HANDOVER_CUSTOMERS
customers (default 10,000) of one rep, spread over two colleagues by
POST /api/users/{id}/handover. Prints the wall time from the request to the
job's `done`, customers per second, and the CPU each process spent per
customer moved (the move: the record, its audit entry, its events, and what
scheduler, notify and forecast do with OwnerChanged). Asserts no times.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.harness import CpuMeter
from tests.e2e.test_customers import brand, mobile


def run(ctx):
    n = int(os.environ.get("BENCH_HANDOVER_CUSTOMERS", "10000"))
    team = ctx.team("交接压测部")
    leaver, leaver_token = ctx.user("rep", team["id"], "即将离职")
    receivers = [ctx.user("rep", team["id"], name)[0] for name in ("接手甲", "接手乙")]
    manager, manager_token = ctx.user("manager", team["id"], "交接经理")
    url = ctx.stack.url
    headers = {"Authorization": f"Bearer {leaver_token}"}
    print(f"== handover: entering {n} customers of one rep", flush=True)
    t0 = time.perf_counter()

    def enter(i):
        with requests.Session() as s:
            for _ in range(3):
                r = s.post(url + "/api/customers", headers=headers, json={
                    "company_name": f"宁波{brand()}{i}五金制品有限公司", "phones": [mobile()],
                    "expected_value": 50000, "stage": 25 + 25 * (i % 3)})
                if r.status_code == 201:
                    return 1
        return 0

    with ThreadPoolExecutor(8) as pool:
        entered = sum(pool.map(enter, range(n)))
    print(f"entered {entered} in {time.perf_counter() - t0:.0f} s", flush=True)

    cpu = CpuMeter(ctx.stack)
    started = time.perf_counter()
    r = ctx.api.post(f"/api/users/{leaver['id']}/handover", manager_token,
                     json={"to": [u["id"] for u in receivers]})
    r.raise_for_status()
    answered = time.perf_counter() - started
    job_id = r.json()["id"]
    while True:
        job = ctx.api.get(f"/api/handovers/{job_id}", manager_token).json()
        if job["status"] == "done":
            break
        time.sleep(0.5)
    wall = time.perf_counter() - started
    print(f"handover of {job['total']} customers: answered (job planned) in "
          f"{answered * 1000:.0f} ms; done in {wall:.1f} s = {job['moved'] / wall:.0f} customers/s;"
          f" moved {job['moved']}, skipped {job['skipped']}", flush=True)
    print(cpu.line(max(job["moved"], 1)).replace("per request", "per customer moved"), flush=True)
