"""Reads are records too (防止资料外泄): the read log's entries, the bulk-read
guard's rules, what a rep may see of a pool customer, and the reads report's
scope. Pure: no database, no broker, no clock.

- Every customer detail read, list page and export page is one read-log
  entry: who (id, name, team), which customer ids, when, the kind
  ("detail", "list", "export") and the client's address.
- The bulk-read guard: one user opens at most `hourly_limit` DISTINCT
  customers (detail reads) per clock hour (UTC; Asia/Shanghai's hours are
  the same hours); opening one again within the hour is free. Past the limit
  the read answers 429 `read_limit` until the hour ends. A rep's limit and a
  manager's are the company's settings (`settings` below), an admin has none.
- A pool customer (公海) shows a rep its company, industry, address, stage
  history and why it was abandoned; its phones and e-mails stay masked and
  its follow-ups hidden until he claims it. Managers and admins see all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from services.common.clock import iso
from services.common.principal import Principal
from services.customers.domain import POOL
from services.customers.errors import InvalidFields, NotAllowed, Throttled

DETAIL, LIST, EXPORT = "detail", "list", "export"
KINDS = (DETAIL, LIST, EXPORT)

SETTINGS_ID = "reads"
DEFAULT_SETTINGS = {"rep_hourly_limit": 60, "manager_hourly_limit": 300}
MAX_HOURLY_LIMIT = 100_000
ALERTS_SHOWN = 100  # the newest bulk-read alerts a report carries


# ---------------------------------------------------------------- settings

def settings(stored: Mapping | None) -> dict:
    """The company's read limits: the stored ones over the defaults."""
    out = dict(DEFAULT_SETTINGS)
    for key in DEFAULT_SETTINGS:
        if stored and stored.get(key) is not None:
            out[key] = int(stored[key])
    return out


def limited(actor: Principal) -> bool:
    """Whether the guard counts `actor`'s opens at all (an admin's never)."""
    return actor.role != "admin"


def hourly_limit(actor: Principal, current: Mapping) -> int | None:
    """How many distinct customers `actor` may open per hour (None: no limit)."""
    if not limited(actor):
        return None
    if actor.role == "manager":
        return int(current["manager_hourly_limit"])
    return int(current["rep_hourly_limit"])


# ---------------------------------------------------------------- the guard

def hour_of(now: datetime) -> datetime:
    """The clock hour `now` falls in (UTC)."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def quota_key(user_id: str, now: datetime) -> str:
    """The one document counting a user's distinct opens in an hour."""
    return f"{user_id}@{hour_of(now):%Y%m%d%H}"


def retry_after_seconds(now: datetime) -> int:
    """Whole seconds until the hour ends (at least 1)."""
    left = (hour_of(now) + timedelta(hours=1) - now).total_seconds()
    return max(1, math.ceil(left))


def read_limit_reached(limit: int, now: datetime) -> Throttled:
    wait = retry_after_seconds(now)
    return Throttled(
        "read_limit",
        f"you opened {limit} different customers this hour, the most allowed; "
        f"customers you already opened this hour still open, others again in "
        f"{math.ceil(wait / 60)} min",
        {"retry_after_seconds": wait, "limit": limit})


def new_quota(actor: Principal, customer_id: str, now: datetime) -> dict:
    """The hour's counter as its first open makes it."""
    return {"_id": quota_key(actor.id, now), "user_id": actor.id, "user_name": actor.name,
            "team_id": actor.team_id, "hour": hour_of(now), "opened": [customer_id], "n": 1,
            "alerted_at": None}


def alert_event(quota: Mapping, limit: int, customer_id: str, address: str | None,
                now: datetime) -> dict:
    """The ReadLimitReached payload (without the envelope)."""
    return {"user_id": quota["user_id"], "user_name": quota.get("user_name"),
            "team_id": quota.get("team_id"), "hour": iso(quota["hour"]), "limit": limit,
            "opened": int(quota.get("n") or 0), "refused_customer_id": customer_id,
            "address": address, "refused_at": iso(now)}


# ---------------------------------------------------------------- the log

def read_entry(entry_id: str, actor: Principal, address: str | None, kind: str,
               customer_ids: list[str], now: datetime, export_id: str | None = None) -> dict:
    if kind not in KINDS:
        raise ValueError(f"unknown read kind {kind!r}")
    doc = {"_id": entry_id, "at": now, "user_id": actor.id, "user_name": actor.name,
           "team_id": actor.team_id, "role": actor.role, "customer_ids": list(customer_ids),
           "kind": kind, "address": address}
    if export_id:
        doc["export_id"] = export_id
    return doc


def entry_out(doc: Mapping) -> dict:
    return {"id": doc["_id"], "at": iso(doc["at"]),
            "user": {"id": doc["user_id"], "name": doc.get("user_name")},
            "team_id": doc.get("team_id"), "customer_ids": list(doc.get("customer_ids") or []),
            "kind": doc["kind"], "address": doc.get("address"),
            "export_id": doc.get("export_id"), "refused": doc.get("refused")}


def alert_out(doc: Mapping) -> dict:
    """A bulk-read alert: the hour a user was refused, as the report shows it."""
    return {"at": iso(doc["alerted_at"]), "user": {"id": doc["user_id"],
                                                   "name": doc.get("user_name")},
            "team_id": doc.get("team_id"), "hour": iso(doc["hour"]),
            "limit": doc.get("limit"), "opened": int(doc.get("n") or 0),
            "address": doc.get("alerted_address")}


# ---------------------------------------------------------------- the report

def report_filter(actor: Principal, user_id: str | None, user: Mapping | None,
                  start: datetime | None, end: datetime | None, field: str = "at") -> dict:
    """The read-log entries (or alerts, `field="alerted_at"`) an actor may
    list: an admin all, a manager his team's (the entries made while the
    user was in his team). A manager naming a user of another team is
    refused; a rep never reads the report. `user` is the named user's record."""
    if actor.role not in ("manager", "admin"):
        raise NotAllowed("forbidden", "the reads report is for managers and admins")
    flt: dict = {}
    if actor.role == "manager":
        if actor.team_id is None:
            raise NotAllowed("forbidden", "a manager without a team has no reads to report")
        if user_id is not None and (user is None or user.get("team_id") != actor.team_id):
            raise NotAllowed("not_your_team", "this user is not in your team")
        flt["team_id"] = actor.team_id
    if user_id is not None:
        flt["user_id"] = user_id
    if start is not None and end is not None and end <= start:
        raise InvalidFields.fields({"to": "must be after from"})
    rng = {}
    if start is not None:
        rng["$gte"] = start
    if end is not None:
        rng["$lt"] = end
    if field == "alerted_at" and not rng:
        rng["$gt"] = datetime(1970, 1, 1, tzinfo=UTC)  # alerted at all (null sorts first)
    if rng:
        flt[field] = rng
    return flt


# ---------------------------------------------------------------- the pool

def sees_contacts(actor: Principal, customer: Mapping) -> bool:
    """Whether `actor` sees a visible customer's phones and e-mails whole when
    he opens it: a rep not of a pool customer until he claims it."""
    return not (actor.role == "rep" and customer.get("status") == POOL)


def check_may_read_followups(actor: Principal, customer: Mapping) -> Mapping:
    """A visible customer's follow-ups, except a pool customer's for a rep."""
    if not sees_contacts(actor, customer):
        raise NotAllowed("claim_first", "a pool customer's follow-ups are shown to the rep "
                                        "who claims it")
    return customer


def abandoned_out(customer: Mapping, alarm: Mapping | None) -> dict | None:
    """Why a pool customer was given up: stored on it when it was abandoned,
    else (customers pooled before that was kept) the alarm that licensed it."""
    if customer.get("status") != POOL:
        return None
    stored = customer.get("abandoned")
    if stored:
        return {"at": iso(stored["at"]) if stored.get("at") else None,
                "reason": stored.get("reason"), "note": stored.get("note"),
                "how": stored.get("how") or "abandon"}
    pooled_at = customer.get("pooled_at")
    if alarm is not None and alarm.get("decision") == "abandon":
        return {"at": iso(pooled_at) if pooled_at else None, "reason": alarm.get("reason"),
                "note": alarm.get("note"), "how": "abandon"}
    return {"at": iso(pooled_at) if pooled_at else None, "reason": None, "note": None,
            "how": "abandon"}


def abandoned_fields(alarm: Mapping, actor: Principal, now: datetime) -> dict:
    """What a customer keeps of the alarm that let its owner abandon it."""
    return {"at": now, "reason": alarm.get("reason"), "note": alarm.get("note"),
            "alarm_id": alarm.get("_id"), "by": actor.id, "how": "abandon"}



# ---------------------------------------------------------------- export

EXPORT_FORMATS = ("xlsx", "csv")


def export_scope(actor: Principal) -> str | None:
    """The team whose customers `actor` exports (None: every customer)."""
    if actor.role == "admin":
        return None
    if actor.role == "manager" and actor.team_id is not None:
        return actor.team_id
    raise NotAllowed("forbidden", "only managers (their team's customers) and admins export")


def export_out(doc: Mapping) -> dict:
    return {"id": doc["_id"], "user": dict(doc["user"]), "team_id": doc.get("team_id"),
            "format": doc["format"], "status": doc["status"], "count": int(doc.get("count") or 0),
            "started_at": iso(doc["started_at"]),
            "finished_at": iso(doc["finished_at"]) if doc.get("finished_at") else None}
