"""Reminders at scale: 10,000 reminders due within one minute, loaded straight
into the scheduler's database in its stored shape; the lag from `due_at` to
the in-app notification (p50/p99/max), with one and with two scheduler
instances (the second an extra `nameko run` process against the stack), how
many were dispatched twice or never shown; then the SMS escalation lag after
its deadline. Prints figures, asserts nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange

from bench.harness import stats_ms
from services.scheduler import storage
from tests.e2e.stack import ROOT

N = int(os.environ.get("BENCH_SCHEDULE_REMINDERS", "10000"))
WINDOW_SECONDS = 60
LEAD_SECONDS = 15
N_SMS = int(os.environ.get("BENCH_SCHEDULE_SMS", "300"))


class DueCounter:
    """Counts every ReminderDue on the broker (its own exclusive queue)."""

    def __init__(self, vhost: str):
        self.seen: Counter = Counter()
        self.conn = Connection(f"pyamqp://guest:guest@127.0.0.1:5672/{vhost}")
        exchange = get_event_exchange("scheduler")
        self.queue = Queue(f"bench-due-{uuid.uuid4().hex[:6]}", exchange=exchange,
                           routing_key="ReminderDue", exclusive=True, auto_delete=True)
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _on(self, body, message):
        payload = body if isinstance(body, dict) else json.loads(body)
        self.seen[payload["reminder_id"]] += 1
        message.ack()

    def _run(self):
        with self.conn.Consumer([self.queue], callbacks=[self._on], accept=["json"]):
            self.ready.set()
            while not self.stop.is_set():
                try:
                    self.conn.drain_events(timeout=0.5)
                except TimeoutError:
                    pass
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.conn.release()


def _users(ctx, n: int, phone: bool = False) -> list[str]:
    team = ctx.team("提醒压测团队")
    ids = []
    for i in range(n):
        body = {"username": f"bsched_{uuid.uuid4().hex[:8]}", "password": "压测-日程-" + uuid.uuid4().hex[:8],
                "name": f"压测业务员{i}", "role": "rep", "team_id": team["id"]}
        if phone:
            body["phone"] = f"1380013{i:04d}"
        r = ctx.api.post("/api/users", ctx.admin_token, json=body)
        r.raise_for_status()
        ids.append(r.json()["id"])
    return ids


def _load(ctx, tag: str, n: int, users: list[str], start: datetime, window: float,
          escalate: float = 0) -> list[str]:
    """Reminders and their queue entries, as the scheduler stores them."""
    db = ctx.db("scheduler")
    now = datetime.now(UTC)
    ids, reminders, entries = [], [], []
    for i in range(n):
        rid = f"bench{tag}{i:06d}"
        due = start + timedelta(seconds=window * i / n)
        ids.append(rid)
        reminders.append({
            "_id": rid, "user_id": users[i % len(users)], "kind": "event",
            "title": f"压测提醒 {i}：回访客户", "content": "", "due_at": due,
            "customer_id": None, "escalate_after_minutes": escalate, "contact_name": None,
            "note": None, "status": "pending", "created_at": now, "updated_at": now})
        entries.append(storage.queue_entry(rid, due))
    for k in range(0, n, 1000):
        db.queue.insert_many(entries[k:k + 1000], ordered=False)
        db.reminders.insert_many(reminders[k:k + 1000], ordered=False)
    return ids


def _heads(ctx, users: list[str]) -> int:
    """How many notifications the users have had: their stream heads (one
    look-up by ids; polling the notifications themselves would be a scan on
    FerretDB every time, load the bench put on what it measures)."""
    return sum(d.get("seq", 0) for d in ctx.db("notify").heads.find({"_id": {"$in": users}}))


def _wait_shown(ctx, ids: list[str], users: list[str], before: int,
                deadline: float) -> dict[str, dict]:
    while time.monotonic() < deadline and _heads(ctx, users) < before + len(ids):
        time.sleep(0.5)
    prefix = ids[0][:len("benchX")]
    shown: dict[str, dict] = {}
    for doc in ctx.db("notify").notifications.find(
            {"key": {"$regex": f"^reminder:{prefix}"}},
            {"key": 1, "created_at": 1, "ref": 1, "escalation": 1}):
        shown[doc["key"].split(":", 1)[1]] = doc
    return shown


def _lag_run(ctx, label: str, tag: str, users: list[str], counter: DueCounter):
    start = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)
    t0 = time.monotonic()
    before = _heads(ctx, users)
    ids = _load(ctx, tag, N, users, start, WINDOW_SECONDS)
    print(f"{label}: loaded {N} reminders in {time.monotonic() - t0:.1f} s, due "
          f"{start:%H:%M:%S}..+{WINDOW_SECONDS}s", flush=True)
    shown = _wait_shown(ctx, ids, users, before,
                        time.monotonic() + LEAD_SECONDS + WINDOW_SECONDS + 180)
    lags = [(d["created_at"] - datetime.fromisoformat(d["ref"]["due_at"])).total_seconds() * 1000
            for d in shown.values()]
    dispatched = {rid: counter.seen.get(rid, 0) for rid in ids}
    twice = sum(1 for v in dispatched.values() if v > 1)
    never = sum(1 for rid in ids if rid not in shown)
    wanted = set(ids)
    firings = {f["_id"]: f for f in ctx.db("scheduler").firings.find(
        {}, {"by": 1, "fired_at": 1}) if f["_id"] in wanted}
    by = Counter(f"pid {f['by'].split(':')[1]}" for f in firings.values())
    print(f"{label}: due -> in-app notification lag {stats_ms(lags)}; n={len(lags)}; "
          f"dispatched twice={twice}; never shown={never}; "
          f"fired by: {dict(by)}", flush=True)
    # where the lag is: the firing loop, or the way from it to the inbox
    fire_lags, show_lags = [], []
    for rid, d in shown.items():
        f = firings.get(rid)
        if f:
            due = datetime.fromisoformat(d["ref"]["due_at"])
            fire_lags.append((f["fired_at"] - due).total_seconds() * 1000)
            show_lags.append((d["created_at"] - f["fired_at"]).total_seconds() * 1000)
    print(f"{label}:   due -> fired {stats_ms(fire_lags)}; fired -> shown {stats_ms(show_lags)}",
          flush=True)


def _extra_scheduler(stack):
    env = {**os.environ, "CRM_AMQP_URI": f"pyamqp://guest:guest@127.0.0.1:5672/{stack.vhost}",
           "CRM_MONGO_DB_PREFIX": stack.prefix, "CRM_JWT_SECRET": stack.secret,
           "CRM_LOG_LEVEL": "WARNING", "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    log = open(ROOT / ".data" / "log" / f"bench-scheduler-{stack.port}.log", "wb")
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "nameko"), "run", "--config", "config.yml",
         "services.scheduler.service:SchedulerService"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    time.sleep(6)  # started and consuming
    return proc


def _sms_run(ctx, counter: DueCounter):
    users = _users(ctx, 20, phone=True)
    start = datetime.now(UTC) + timedelta(seconds=10)
    ids = _load(ctx, "s", N_SMS, users, start, 10, escalate=0.1)
    shown = _wait_shown(ctx, ids, users, 0, time.monotonic() + 120)
    deliveries = ctx.db("notify").deliveries
    deadline = time.monotonic() + 120
    lags: list[float] = []
    while time.monotonic() < deadline:
        time.sleep(2)
        lags = []
        found = {d["_id"]: d for d in deliveries.find({"_id": {"$in": [
            doc["_id"] for doc in shown.values()]}})}
        for doc in shown.values():
            d = found.get(doc["_id"])
            if d and d.get("attempts"):
                lags.append((d["attempts"][0]["at"] - doc["escalation"]["due_at"])
                            .total_seconds() * 1000)
        if len(lags) == len(shown):
            break
    print(f"SMS escalation ({N_SMS} unacknowledged, 0.1 min): first attempt after its "
          f"deadline {stats_ms(lags)}; n={len(lags)}", flush=True)


def run(ctx):
    counter = DueCounter(ctx.stack.vhost)
    users = _users(ctx, 50)
    try:
        _lag_run(ctx, "one scheduler", "a", users, counter)
        extra = _extra_scheduler(ctx.stack)
        try:
            _lag_run(ctx, "two schedulers", "b", users, counter)
        finally:
            extra.send_signal(signal.SIGTERM)
            try:
                extra.wait(15)
            except subprocess.TimeoutExpired:
                extra.kill()
        _sms_run(ctx, counter)
    finally:
        counter.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run with: python -m bench schedule")
