"""How the forecast read model is stored and read back: pure functions, no I/O.

``domain`` holds the rules (pipeline, order-safe event application,
calibration, backtest). This module turns them into the stored shape the
service keeps up to date with ``$inc`` and reads back in O(teams x stages),
whatever the number of deals:

- one document per deal (its state, its stage history, and what it currently
  contributes to the aggregates: ``contrib``);
- one *scope document* per team (``"~"`` for deals without a team) holding the
  pipeline per owner and stage (``pipe.<owner>.<stage>.{c, v}``: count, fen)
  and the team's calibration counts (``cal.<stage>.{n, k}``: resolved deals
  that were in the stage, of which won; ``cal.all`` the resolved deals).

A rep's figures are his entries in the scope documents, a team's its
document, the company's the sum of all of them; so an event touches one
scope document (two when the deal changes team) and a read touches a handful.

Calibration counts are kept per *raw* stage (the stage numbers the deal
really passed through), so they stay true when an admin redefines the stages;
a read folds a removed stage into the nearest lower defined one, as the
pipeline does. The one approximation: a deal that passed through both a
removed stage and the stage it folds into counts twice in that stage's
sample (the pipeline figures themselves stay exact).

A deal's calibration contribution goes to the team it is with, or was last
with while in the pool ("the team's own history"); its pipeline contribution
to its current team (a deal in the pool is not in any pipeline).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from services.common.errors import Forbidden
from services.forecast import domain

NO_TEAM = "~"  # not a valid id (services.common.schemas.Id), so never queryable
NO_OWNER = "~"
NO_STAGE = "none"
STATE_FIELDS = ("stage", "value_fen", "owner_id", "team_id", "status", "version", "updated_at",
                "clock")
DEFAULT_STAGE_NUMBERS = tuple(s["stage"] for s in domain.DEFAULT_STAGES)


# --------------------------------------------------------------------------
# keys


def stage_key(stage: int | None) -> str:
    return NO_STAGE if stage is None else str(stage)


def parse_stage_key(key: str) -> int | None:
    return None if key == NO_STAGE else int(key)


def iso_utc(value: Any) -> str:
    """A time as the fixed-width UTC text the domain stamps history with."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if not isinstance(value, datetime):
        raise domain.ForecastError("must be an ISO 8601 time", "at")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# --------------------------------------------------------------------------
# a deal's document


def state_of(doc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The domain's deal state from a stored deal document."""
    if doc is None or doc.get("clock") is None:
        return None
    return {"customer_id": doc["_id"], **{k: doc.get(k) for k in STATE_FIELDS}}


_TRACKED = ("stage", "expected_value_fen", "expected_value", "status")


def as_domain_events(
    event_type: str, payload: Mapping[str, Any]
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(payload for the deal state, payload for the history) of an event.

    ``CustomerAmended`` carries ``changes {field: {before, after}}`` and the
    full snapshot; the domain reads ``changes`` as ``{field: new value}``. The
    state takes the snapshot (the whole truth at that version); the history
    records only a real change of stage or value, so amending an address adds
    no stage entry (which would reopen a lost deal in the calibration).
    """
    if event_type != "CustomerAmended":
        return payload, payload
    changes = payload.get("changes")
    if not isinstance(changes, Mapping):
        return payload, payload
    after, before = {}, {}
    for field, change in changes.items():
        if field not in _TRACKED:
            continue
        if isinstance(change, Mapping) and ("after" in change or "before" in change):
            after[field] = change.get("after")
            if field == "stage":
                before["stage"] = change.get("before")
        else:
            after[field] = change
    state = {k: v for k, v in payload.items() if k not in ("changes", "before")}
    history = {**state, "changes": after, "before": before}
    return state, history


def history_entry(event: Mapping[str, Any], event_type: str) -> dict[str, Any] | None:
    """``domain.history_entry`` plus the team the deal was with (who owns the
    history when calibrating per team)."""
    entry = domain.history_entry(event, event_type)
    if entry is None:
        return None
    team = event.get("new_team_id") if event_type == "OwnerChanged" else event.get("team_id")
    entry["team_id"] = None if team is None else str(team)
    return entry


def _calibration_stages(history: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every stage the history mentions is "defined", so the replay keeps raw
    stage numbers (the fold to the defined stages happens when reading)."""
    stages = set(DEFAULT_STAGE_NUMBERS)
    for e in history:
        for key in ("from_stage", "to_stage"):
            if isinstance(e.get(key), int) and not isinstance(e.get(key), bool):
                stages.add(e[key])
    return [{"stage": s, "label": str(s)} for s in sorted(stages)]


def contribution(
    state: Mapping[str, Any] | None, history: list[Mapping[str, Any]], cal_team: str | None
) -> dict[str, Any]:
    """What one deal adds to the scope documents.

    ``{"pipe": {team, owner, stage, value_fen} | None, "cal": {team, stages,
    won} | None}``: ``pipe`` while the deal is active (domain rule), ``cal``
    once it is resolved (won, or lost: abandoned / dropped to stage 0).
    """
    pipe = None
    if state is not None and state.get("status", "active") == "active":
        pipe = {
            "team": state.get("team_id") or NO_TEAM,
            "owner": state.get("owner_id") or NO_OWNER,
            "stage": state.get("stage"),
            "value_fen": int(state.get("value_fen") or 0),
        }
    cal = None
    if history:
        result = domain.calibrate({"deal": list(history)}, _calibration_stages(history),
                                  prior_weight=0)
        if result["sample_size"]:
            rows = [r for r in result["stages"] if r["sample_size"]]
            cal = {
                "team": cal_team or NO_TEAM,
                "stages": [r["stage"] for r in rows],
                "won": any(r["wins"] for r in rows),
            }
    return {"pipe": pipe, "cal": cal}


def _add(out: dict[str, dict[str, int]], team: str, path: str, delta: int) -> None:
    if delta:
        cell = out.setdefault(team, {})
        cell[path] = cell.get(path, 0) + delta
        if cell[path] == 0:
            del cell[path]


def _terms(contrib: Mapping[str, Any] | None, sign: int, out: dict[str, dict[str, int]]) -> None:
    if not contrib:
        return
    pipe = contrib.get("pipe")
    if pipe:
        prefix = f"pipe.{pipe['owner']}.{stage_key(pipe['stage'])}"
        _add(out, pipe["team"], prefix + ".c", sign)
        _add(out, pipe["team"], prefix + ".v", sign * pipe["value_fen"])
    cal = contrib.get("cal")
    if cal:
        won = 1 if cal["won"] else 0
        _add(out, cal["team"], "cal.all.n", sign)
        _add(out, cal["team"], "cal.all.k", sign * won)
        for stage in cal["stages"]:
            _add(out, cal["team"], f"cal.{stage_key(stage)}.n", sign)
            _add(out, cal["team"], f"cal.{stage_key(stage)}.k", sign * won)


def increments(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> dict[str, dict[str, int]]:
    """``{team: {path: delta}}`` taking the scope documents from ``before``'s
    contribution to ``after``'s; unchanged paths are left out."""
    out: dict[str, dict[str, int]] = {}
    _terms(before, -1, out)
    _terms(after, +1, out)
    return {team: incs for team, incs in out.items() if incs}


def deal_fields(
    state: Mapping[str, Any], history: list[dict[str, Any]], previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A deal document's fields (besides its bookkeeping) after a change."""
    previous = previous or {}
    last_team = state.get("team_id") or previous.get("last_team_id")
    last_owner = state.get("owner_id") or previous.get("last_owner_id")
    if last_team is None:
        # a deal first seen in the pool: the team in its history, if any
        last_team = next((e["team_id"] for e in reversed(history) if e.get("team_id")), None)
    return {
        **{k: state.get(k) for k in STATE_FIELDS},
        "history": history,
        "last_team_id": last_team,
        "last_owner_id": last_owner,
        "contrib": contribution(state, history, last_team),
    }


# --------------------------------------------------------------------------
# rebuilding a deal from customers' own data


def _register_newer(clock: Mapping[str, Any] | None, version: int) -> bool:
    """Whether what an event wrote is at least as new as the exported version."""
    return bool(clock) and clock.get("version") is not None and clock["version"] >= version


def export_fields(
    row: Mapping[str, Any], doc: Mapping[str, Any] | None, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(state, history) of a deal from a row of customers' ``export_deals``,
    merged with what the read model already has.

    Per register, the newer of the two wins (an event newer than the export
    that arrived meanwhile is kept). The exported stage transitions replace the
    stage entries at or below the exported version; entries that only events
    know (abandonment, owner changes, amended values) are kept.
    """
    cid = str(row["customer_id"])
    version = row.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise domain.EventError("must be a non-negative integer", "version")
    # a transition without a time cannot be placed in the history
    transitions = [t for t in row.get("stage_history") or [] if t.get("at")]
    at = iso_utc(transitions[-1]["at"]) if transitions else iso_utc(now)
    stamp = {"version": version, "at": at, "event_id": f"export:{cid}:{version}"}
    exported = exported_registers(row)
    registers = {"stage": ("stage",), "value": ("value_fen",), "owner": ("owner_id",),
                 "team": ("team_id",), "status": ("status",)}
    current = state_of(doc) or domain.new_deal_state(cid)
    state = dict(current)
    state["clock"] = dict(current.get("clock") or {})
    for register, fields in registers.items():
        if not _register_newer(state["clock"].get(register), version):
            state["clock"][register] = dict(stamp)
            for f in fields:
                state[f] = exported[f]
    stamps = [c for c in state["clock"].values() if c]
    state["version"] = max((c["version"] for c in stamps if c.get("version") is not None),
                           default=None)
    state["updated_at"] = max(c["at"] for c in stamps)

    history = []
    for i, t in enumerate(transitions):
        history.append({
            "event_id": f"export:{cid}:{i}",
            "customer_id": cid,
            "at": iso_utc(t["at"]),
            "version": None,
            "kind": "stage",
            "from_stage": t.get("from"),
            "to_stage": t.get("to"),
            # the value at the time is not exported: the first entry carries
            # today's, so a won deal is not worth 0 in the backtest
            "value_fen": exported["value_fen"] if i == 0 else None,
            "owner_id": None,
            "team_id": exported["team_id"],
        })
    kept = [
        e for e in (doc or {}).get("history", [])
        if not str(e.get("event_id", "")).startswith("export:")
        and (e.get("kind") != "stage" or (e.get("version") or 0) > version)
    ]
    pooled = any(e.get("kind") == "abandoned" or (e.get("kind") == "owner"
                                                  and e.get("owner_id") is None) for e in kept)
    if exported["status"] == "pool" and not pooled:
        history.append({
            "event_id": f"export:{cid}:pool", "customer_id": cid, "at": at, "version": None,
            "kind": "abandoned", "from_stage": None, "to_stage": None, "value_fen": None,
            "owner_id": None, "team_id": exported["team_id"],
        })
    merged: list[dict[str, Any]] = []
    for e in history + kept:
        merged = domain.merge_history(merged, e)
    return state, merged


def exported_registers(row: Mapping[str, Any]) -> dict[str, Any]:
    """A deal as customers' export states it, in the read model's fields."""
    return {
        "stage": row.get("stage"),
        "value_fen": int(row.get("expected_value_fen") or 0),
        "owner_id": row.get("owner_id"),
        "team_id": row.get("team_id"),
        "status": row.get("status") or "active",
    }


def differences(doc: Mapping[str, Any] | None, row: Mapping[str, Any]) -> dict[str, Any]:
    """Fields where the read model and customers' truth disagree."""
    ours = state_of(doc) or {}
    theirs = exported_registers(row)
    return {
        field: {"forecast": ours.get(field), "customers": value}
        for field, value in theirs.items()
        if ours.get(field) != value
    }


# --------------------------------------------------------------------------
# reading the scope documents back


@dataclass(frozen=True)
class Scope:
    kind: str  # "company" | "team" | "owner"
    id: str | None = None
    # the team whose calibration applies when the owner has no deal yet
    fallback_team: str | None = None
    # check that the owner belongs to this team (by the accounts service)
    member_of: str | None = None

    @property
    def key(self) -> str:
        return domain.scope_key(self.kind, self.id)


def resolve_scope(actor, owner_id: str | None, team_id: str | None) -> Scope:
    """Who may see which forecast: a rep his own, a manager his team's (or one
    of his reps'), an admin any. ``actor`` is a ``Principal``."""
    if actor.role == "rep":
        if owner_id not in (None, actor.id):
            raise Forbidden("forbidden", "a rep sees only his own forecast")
        if team_id not in (None, actor.team_id):
            raise Forbidden("forbidden", "a rep sees only his own forecast")
        return Scope("owner", actor.id, fallback_team=actor.team_id)
    if actor.role == "manager":
        if actor.team_id is None:
            raise Forbidden("forbidden", "a manager without a team has no forecast to see")
        if team_id not in (None, actor.team_id):
            raise Forbidden("forbidden", "a manager sees only his own team")
        if owner_id is not None:
            member = None if owner_id == actor.id else actor.team_id
            return Scope("owner", owner_id, fallback_team=actor.team_id, member_of=member)
        return Scope("team", actor.team_id)
    if actor.role == "admin":
        if owner_id is not None:
            return Scope("owner", owner_id, fallback_team=team_id, member_of=team_id)
        if team_id is not None:
            return Scope("team", team_id)
        return Scope("company")
    raise Forbidden("forbidden", "unknown role")


Counts = dict[int | None, tuple[int, int]]


def _sum_into(out: Counts, key: int | None, a: int, b: int) -> None:
    x, y = out.get(key, (0, 0))
    out[key] = (x + a, y + b)


def pipe_counts(docs: Iterable[Mapping[str, Any]], owner: str | None = None) -> Counts:
    """``{raw stage: (count, value_fen)}`` of every owner in ``docs``, or of one."""
    out: Counts = {}
    for doc in docs:
        for who, stages in (doc.get("pipe") or {}).items():
            if owner is not None and who != owner:
                continue
            for key, cell in stages.items():
                _sum_into(out, parse_stage_key(key), int(cell.get("c", 0)), int(cell.get("v", 0)))
    return {k: v for k, v in out.items() if v != (0, 0)}


def cal_counts(docs: Iterable[Mapping[str, Any]]) -> tuple[Counts, int]:
    """(``{raw stage: (resolved deals in it, of which won)}``, resolved deals)."""
    out: Counts = {}
    resolved = 0
    for doc in docs:
        for key, cell in (doc.get("cal") or {}).items():
            if key == "all":
                resolved += int(cell.get("n", 0))
                continue
            _sum_into(out, parse_stage_key(key), int(cell.get("n", 0)), int(cell.get("k", 0)))
    return out, resolved


def owners_in(doc: Mapping[str, Any]) -> list[str]:
    return [o for o, stages in (doc.get("pipe") or {}).items()
            if o != NO_OWNER and any(int(c.get("c", 0)) for c in stages.values())]


def flatten_scope(doc: Mapping[str, Any]) -> dict[str, int]:
    """A scope document's figures as ``{path: value}`` (as ``increments`` names
    them), zeros left out: for comparing with a recount."""
    out: dict[str, int] = {}
    for owner, stages in (doc.get("pipe") or {}).items():
        for key, cell in stages.items():
            for f in ("c", "v"):
                if cell.get(f):
                    out[f"pipe.{owner}.{key}.{f}"] = int(cell[f])
    for key, cell in (doc.get("cal") or {}).items():
        for f in ("n", "k"):
            if cell.get(f):
                out[f"cal.{key}.{f}"] = int(cell[f])
    return out


def _fold(raw: int | None, defined: list[int]) -> int | None:
    """Nearest lower defined stage (the domain's ``nearest_lower`` policy)."""
    if raw is None:
        return None
    if raw in defined:
        return raw
    if raw >= domain.WON_STAGE:
        return None
    lower = [s for s in defined if s < raw]
    return lower[-1] if lower else None


def calibration_from_counts(
    counts: Mapping[int | None, tuple[int, int]],
    resolved: int,
    stages: Iterable[Mapping[str, Any]] | None,
    prior_weight: Any = domain.DEFAULT_PRIOR_WEIGHT,
) -> dict[str, Any]:
    """What ``domain.calibrate`` returns, from the summed counts of the scope
    documents (same figures, same rounding)."""
    defined = domain.normalize_stages(stages)
    weight = Fraction(Decimal(str(prior_weight)))
    if weight < 0:
        raise domain.ForecastError("must be a non-negative number", "prior_weight")
    order = [s["stage"] for s in defined]
    seen = dict.fromkeys(order, 0)
    wins = dict.fromkeys(order, 0)
    for raw, (n, k) in counts.items():
        target = _fold(raw, order)
        if target is not None:
            seen[target] += n
            wins[target] += k
    rows = [domain.calibration_row(s, seen[s["stage"]], wins[s["stage"]], weight)
            for s in defined]
    prior = int(weight) if weight.denominator == 1 else Decimal(weight.numerator) / weight.denominator
    return {"method": domain.METHOD, "prior_weight": prior, "as_of": None,
            "sample_size": resolved, "stages": rows}


def forecast_view(*figures_args) -> dict[str, Any]:
    """The ``GET /api/forecast`` body: `forecast_figures`, JSON-ready."""
    return jsonable(forecast_figures(*figures_args))


def forecast_figures(
    pipe: Counts,
    cal: Counts,
    resolved: int,
    stages: Iterable[Mapping[str, Any]] | None,
    min_active: int,
    prior_weight: Any,
) -> dict[str, Any]:
    """The same figures with money still in ``Decimal`` yuan and integer fen."""
    stages = domain.normalize_stages(stages)
    calibration = calibration_from_counts(cal, resolved, stages, prior_weight)
    return domain.pipeline_from_counts(pipe, stages, min_active, calibration=calibration)


def jsonable(value: Any) -> Any:
    """Decimals as JSON numbers (whole ones as integers), recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def stored_stages(stages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Stage definitions as stored (probability as text: no float, no Decimal)."""
    return [{**s, "probability": str(s["probability"])} for s in stages]
