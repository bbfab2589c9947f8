"""Shared pieces of the benchmarks: the stack, a load generator, the figures.

Benchmarks print figures and assert no times. Each later benchmark reports
its throughput also as a ratio of the framework's ceiling measured in the
same run (`Context.ceiling`).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from pymongo import MongoClient

from tests.e2e.stack import Api, Stack


@dataclass
class Figures:
    name: str
    clients: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(repr=False, default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))]

    def line(self, ceiling: Figures | None = None) -> str:
        ratio = f"  {self.rps / ceiling.rps:6.1%} of ceiling" if ceiling and ceiling.rps else ""
        return (f"{self.name:<44} clients={self.clients:<3} req/s={self.rps:8.1f}  "
                f"p50={self.pct(50):7.1f} ms  p99={self.pct(99):7.1f} ms  "
                f"n={self.requests} errors={self.errors}{ratio}")


def measure(name: str, call, clients: int, total: int, warmup: int = 20) -> Figures:
    """Run `call(session, i)` `total` times from `clients` threads; each call
    returns a requests.Response (or raises). Non-2xx counts as an error."""
    sessions = [requests.Session() for _ in range(clients)]
    for i in range(warmup):
        try:
            call(sessions[i % clients], -1 - i)
        except Exception:  # noqa: BLE001
            pass
    counter = iter(range(total))
    lock = threading.Lock()
    lat: list[float] = []
    errors = 0

    def worker(k):
        nonlocal errors
        s = sessions[k]
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            try:
                r = call(s, i)
                ok = 200 <= r.status_code < 300
            except Exception:  # noqa: BLE001
                ok = False
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                lat.append(dt)
                if not ok:
                    errors += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    return Figures(name, clients, total, errors, time.perf_counter() - t0, lat)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def service_pids(stack: Stack) -> dict[str, int]:
    """pid of each `nameko run` process of the stack, by service name."""
    from tests.e2e.stack import descendants

    found = {}
    for pid in descendants(stack.proc.pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if b"run" in cmd and any(b":" in c and b"Service" in c for c in cmd):
            target = next(c for c in cmd if b"Service" in c).decode()
            found[target.split(":")[0].split(".")[-2 if target.startswith("services.") else 0]] = pid
    return found


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mongo_port() -> int:
    """The port the stack's database listens on, as scripts/infra.sh and the
    services are told it (CRM_MONGO_PORT, CRM_MONGO_URI)."""
    if os.environ.get("CRM_MONGO_PORT"):
        return int(os.environ["CRM_MONGO_PORT"])
    uri = os.environ.get("CRM_MONGO_URI", "mongodb://127.0.0.1:27017/")
    return urlsplit(uri).port or 27017


def infra_pids() -> dict[str, int]:
    """FerretDB's and RabbitMQ's pids, found by their command lines. The
    FerretDB is the one listening on the stack's port: another one (another
    clone's, on another port) may run beside it and is not measured."""
    found = {}
    listen = f"--listen-addr=127.0.0.1:{mongo_port()}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if b"ferretdb" in cmd[0] and listen in cmd:
            found["ferretdb"] = int(entry)
        elif b"beam.smp" in cmd[0]:
            found["rabbitmq"] = int(entry)
    return found


class CpuMeter:
    """CPU time each process of the stack (services, FerretDB, RabbitMQ,
    this client) spends over a measurement, per request: where a request's
    cost goes on a machine whose cores they all share."""

    def __init__(self, stack: Stack):
        self.pids = {**service_pids(stack), **infra_pids(), "bench client": os.getpid()}
        self.start = {name: _cpu_seconds(pid) for name, pid in self.pids.items()}

    def total_ms(self, requests: int) -> float:
        """CPU ms per request so far, every process together."""
        spent = sum(_cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items())
        return spent * 1000 / requests

    def line(self, requests: int) -> str:
        spent = {name: _cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}
        total = sum(spent.values())
        parts = ", ".join(f"{name} {sec * 1000 / requests:.1f}"
                          for name, sec in sorted(spent.items(), key=lambda kv: -kv[1])
                          if sec * 1000 / requests >= 0.05)
        return f"CPU ms per request: {total * 1000 / requests:.1f} in all = {parts}"


@dataclass
class Context:
    stack: Stack
    api: Api
    admin_token: str
    ceiling: dict[str, Figures]
    mongo: MongoClient

    def db(self, service: str):
        return self.mongo[self.stack.prefix + service]

    def user(self, role: str, team_id: str | None, name: str = "压测用户") -> tuple[dict, str]:
        username = f"b{role}_{uuid.uuid4().hex[:8]}"
        password = "压测-" + uuid.uuid4().hex[:12]
        r = self.api.post("/api/users", self.admin_token, json={
            "username": username, "password": password, "name": name, "role": role,
            "team_id": team_id})
        r.raise_for_status()
        return r.json(), self.api.login(username, password)

    def team(self, name: str = "压测团队") -> dict:
        r = self.api.post("/api/teams", self.admin_token, json={"name": name})
        r.raise_for_status()
        return r.json()

    def ratio(self, figures: Figures, clients: int = 16) -> str:
        base = self.ceiling.get(f"rpc{clients}")
        return f"{figures.rps / base.rps:.1%}" if base and base.rps else "n/a"


def stats_ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    v = sorted(values)
    return (f"p50={statistics.median(v):.1f} ms p99={v[int(0.99 * (len(v) - 1))]:.1f} ms "
            f"max={v[-1]:.1f} ms")
