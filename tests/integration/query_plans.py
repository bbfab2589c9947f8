"""Which queries the services send, and whether an index answers each.

A pymongo command listener, registered when this module is imported (by
tests/integration/conftest.py, before any service's client exists), keeps
what each read or write command selects while `recording()` is on: the
filter, sort and limit of find, count, distinct and findAndModify, the
query of each update and delete statement, the $match (and $sort, $limit)
that starts an aggregation. `unindexed()` asks the server to explain each
as a find and returns the ones no index answers:

- FerretDB (scripts/ferretdb/crm_index.go): an _id lookup (its own
  pushdown), or a plan (queryPlanner.crm) that narrows key ranges, or reads
  an index in the requested order under a limit;
- MongoDB: a winning plan without a collection scan.

A count with no filter is the collection's own count on both (the `count`
command, estimated_document_count); count_documents({}) is not, as MongoDB
scans the collection for it.
"""

from __future__ import annotations

import contextlib
import copy
import threading

from pymongo import monitoring

SELECTING = {"find", "count", "distinct", "aggregate", "findAndModify", "findandmodify",
             "update", "delete"}

# Collections read whole by design, with why their size stays small.
WHOLE = {
    "kb_feed": "one head per knowledge instance, read by each instance's replay timer",
    "teams": "a company's sales teams (GET /api/teams lists them all)",
}


class _Log(monitoring.CommandListener):
    def __init__(self):
        self.lock = threading.Lock()
        self.sink: list | None = None

    def started(self, event):
        if self.sink is None or event.command_name not in SELECTING:
            return
        with self.lock:
            if self.sink is not None:
                self.sink.append((event.database_name, event.command_name,
                                  copy.deepcopy(dict(event.command))))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


LOG = _Log()
monitoring.register(LOG)


@contextlib.contextmanager
def recording(prefix: str | None = None):
    """Keep the commands sent inside the block (to databases whose name
    starts with `prefix`)."""
    sink: list = []
    LOG.sink = sink
    try:
        yield sink
    finally:
        LOG.sink = None
        if prefix:
            sink[:] = [c for c in sink if c[0].startswith(prefix)]


def selections(command_name: str, cmd: dict) -> list[tuple[str, dict, dict | None, int, bool]]:
    """(collection, filter, sort, limit, is_count) of what a command selects."""
    name = command_name.lower()
    coll = cmd.get(command_name)
    if name == "find":
        return [(coll, cmd.get("filter") or {}, cmd.get("sort"), int(cmd.get("limit") or 0),
                 False)]
    if name == "count":
        return [(coll, cmd.get("query") or {}, None, 0, True)]
    if name == "distinct":
        return [(coll, cmd.get("query") or {}, None, 0, False)]
    if name == "findandmodify":
        return [(coll, cmd.get("query") or {}, cmd.get("sort"), 1, False)]
    if name == "update":
        return [(coll, u.get("q") or {}, None, 0 if u.get("multi") else 1, False)
                for u in cmd.get("updates", [])]
    if name == "delete":
        return [(coll, d.get("q") or {}, None, int(d.get("limit") or 0), False)
                for d in cmd.get("deletes", [])]
    if name == "aggregate":
        stages = cmd.get("pipeline") or []
        flt, sort, limit = {}, None, 0
        for st in stages:
            (op, arg), = st.items()
            if op == "$match" and st is stages[0]:
                flt = arg
            elif op == "$sort" and sort is None:
                sort = arg
            elif op == "$limit" and not limit:
                limit = int(arg)
            elif op not in ("$skip",):
                break
        counting = any("$group" in st for st in stages)
        return [(coll, flt, sort, limit, counting)]
    return []


def _is_ferretdb(client) -> bool:
    return "ferretdbVersion" in client.server_info()


def _stages(plan: dict) -> set[str]:
    found = set()
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "stage" in node:
                found.add(node["stage"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def indexed(client, database: str, command_name: str, coll: str, flt: dict, sort,
            limit: int, counting: bool) -> bool:
    if counting and not flt and command_name.lower() == "count":
        return True  # the collection's own count
    if coll in WHOLE:
        return True
    if coll not in client[database].list_collection_names():
        return True  # nothing stored, nothing scanned
    ferretdb = _is_ferretdb(client)
    if counting:
        # FerretDB's explain reads a count's filter from "filter"
        cmd = {"count": coll, "filter" if ferretdb else "query": flt}
    else:
        cmd = {"find": coll, "filter": flt}
        if sort:
            cmd["sort"] = dict(sort)
        if limit:
            cmd["limit"] = limit
    plan = client[database].command("explain", cmd, verbosity="queryPlanner")
    if not ferretdb:
        return "COLLSCAN" not in _stages(plan["queryPlanner"]["winningPlan"])
    planner = plan["queryPlanner"]
    crm = planner.get("crm")
    if crm is None:
        # FerretDB's own _id pushdown (one _id, a list of them)
        return bool(plan.get("filterPushdown")) and all(
            "SCAN" not in step for step in planner.get("Plan", []))
    if crm["empty"]:
        return True
    if counting and crm["count"] == "documents":
        return crm["constrained"] > 0
    return crm["constrained"] > 0 or (crm["sorted"] and limit > 0)


def unindexed(client, commands) -> list[tuple]:
    """The selections of `commands` (as recorded) that no index answers."""
    out = []
    for database, name, cmd in commands:
        for coll, flt, sort, limit, counting in selections(name, cmd):
            if not indexed(client, database, name, coll, flt, sort, limit, counting):
                out.append((database.split("_", 2)[-1], name, coll, flt, sort, limit))
    return out


def not_by_key(commands) -> list[tuple]:
    """The selections of `commands` that are not a lookup of one `_id`."""
    out = []
    for database, name, cmd in commands:
        for coll, flt, _, _, _ in selections(name, cmd):
            if not isinstance(flt.get("_id"), str):
                out.append((database.split("_", 2)[-1], name, coll, flt))
    return out
