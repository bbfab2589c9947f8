"""The whole stack as `make run` starts it, isolated for a test run: its own
HTTP port, RabbitMQ vhost and database prefix."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
RABBIT_API = "http://127.0.0.1:15672/api"
GUEST = ("guest", "guest")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Stack:
    def __init__(self, secret: str, admin_password: str, **env):
        self.port = free_port()
        self.vhost = f"crm_e2e_{uuid.uuid4().hex[:8]}"
        self.prefix = f"e2e{uuid.uuid4().hex[:6]}_"
        self.secret = secret
        self.admin_password = admin_password
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env
        self.proc: subprocess.Popen | None = None
        self.log_path = ROOT / ".data" / "log" / f"stack-{self.port}.log"

    def start(self, timeout: float = 90) -> Stack:
        requests.put(f"{RABBIT_API}/vhosts/{self.vhost}", auth=GUEST, timeout=10).raise_for_status()
        requests.put(f"{RABBIT_API}/permissions/{self.vhost}/guest", auth=GUEST, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        env = {
            **os.environ,
            "CRM_HTTP_PORT": str(self.port),
            "CRM_AMQP_URI": f"pyamqp://guest:guest@127.0.0.1:5672/{self.vhost}",
            "CRM_MONGO_DB_PREFIX": self.prefix,
            "CRM_JWT_SECRET": self.secret,
            "CRM_ADMIN_PASSWORD": self.admin_password,
            "CRM_KEEP_INFRA": "1",
            **self.extra_env,
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"make run exited early; see {self.log_path}")
            try:
                if requests.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the stack did not become healthy; see {self.log_path}")

    def stop(self, sig=signal.SIGTERM, group=False) -> tuple[float, set[int]]:
        """Signal `make run` (or, with `group`, its whole process group, as
        Ctrl-C in a terminal does) and return (seconds until every process it
        started was gone, the pids still alive after 15 s)."""
        if self.proc is None:
            return 0.0, set()
        tree = descendants(self.proc.pid) | {self.proc.pid}
        started = time.monotonic()
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        remaining = tree
        while time.monotonic() - started < 15:
            self.proc.poll()
            remaining = {p for p in tree if alive(p)}
            if not remaining:
                break
            time.sleep(0.05)
        took = time.monotonic() - started
        for pid in remaining:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.proc.wait(timeout=5)
        self.proc = None
        self.log.close()
        try:
            requests.delete(f"{RABBIT_API}/vhosts/{self.vhost}", auth=GUEST, timeout=10)
        except requests.RequestException:
            pass
        self._drop_databases()
        return took, remaining

    def service_pids(self, service: str) -> list[int]:
        """The processes of one service (its module in the command line: the
        launcher's shell and the service itself)."""
        needle = f"services.{service}.service".encode()
        found = []
        for pid in descendants(self.proc.pid):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if needle in f.read():
                        found.append(pid)
            except OSError:
                continue
        if not found:
            raise LookupError(f"no {service} process")
        return found

    def crash(self, service: str, timeout: float = 20) -> None:
        """SIGKILL one service, as a crash would; when the launcher then
        stops the rest, wait for it; the data and the queues stay."""
        for pid in self.service_pids(service):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.1)
        if self.proc.poll() is None:
            return  # supervised: the service is restarted in place
        for pid in descendants(self.proc.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.proc = None
        self.log.close()

    def ensure_running(self, timeout: float = 90) -> Stack:
        return self if self.proc is not None else self.start(timeout)

    def _drop_databases(self):
        from pymongo import MongoClient

        client = MongoClient(os.environ.get("CRM_MONGO_URI", "mongodb://127.0.0.1:27017/"),
                             serverSelectionTimeoutMS=3000)
        try:
            for name in client.list_database_names():
                if name.startswith(self.prefix):
                    client.drop_database(name)
        finally:
            client.close()


class Api:
    """A tiny client: `api.post("/api/x", token, json=...)`."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def request(self, method, path, token=None, **kw):
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, self.base + path, headers=headers, timeout=30, **kw)

    def get(self, path, token=None, **kw):
        return self.request("GET", path, token, **kw)

    def post(self, path, token=None, **kw):
        return self.request("POST", path, token, **kw)

    def put(self, path, token=None, **kw):
        return self.request("PUT", path, token, **kw)

    def patch(self, path, token=None, **kw):
        return self.request("PATCH", path, token, **kw)

    def delete(self, path, token=None, **kw):
        return self.request("DELETE", path, token, **kw)

    def login(self, username, password) -> str:
        r = self.post("/api/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["token"]
