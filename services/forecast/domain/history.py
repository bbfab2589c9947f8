"""Stage history and the forecast calibrated on it.

P(eventually won | the deal was in stage s) is estimated from resolved deals
and shrunk towards the configured probability p0 with a Beta prior of weight
w (``p = (wins + w*p0) / (n + w)``, method ``"beta-shrinkage"``).

- Won: the deal reached stage 100 (sticky). Lost: abandoned to the pool, or
  moved back to stage 0 from a higher stage; a later claim, an owner, or a
  move to a stage above 0 reopens it. Open: neither.
- Censoring: open deals are left out (right-censored); only resolved deals
  are the sample, each counted once per stage it occupied while open (the
  stage it was created in, every stage it moved to; not the stage 0 it was
  lost to; stage 100 when won). A deal that skipped a stage is not in that
  stage's sample. Leaving open deals out biases the estimate toward the
  outcome that resolves faster (usually the loss); the prior keeps small
  samples near p0, and the backtest shows whether it helps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from services.forecast.domain.deals import (
    _MISSING,
    DEAL_EVENTS,
    _deal_writes,
    _event_type,
    _require_id,
    _stage_write,
    _to_utc,
    event_clock,
)
from services.forecast.domain.errors import (
    DEFAULT_PRIOR_WEIGHT,
    LOST_STAGE,
    METHOD,
    WON_STAGE,
    ForecastError,
    _check_fen,
    _number_out,
    _parse_stage,
    _ratio,
)
from services.forecast.domain.stages import _StageIndex

# --------------------------------------------------------------------------
# stage history


def history_entry(event: Mapping[str, Any], event_type: str | None = None) -> dict[str, Any] | None:
    """The history entry an event adds, or ``None``.

    ``{event_id, customer_id, at, version, kind, from_stage, to_stage,
    value_fen, owner_id}`` with kind ``"stage"`` (created in / moved to a stage),
    ``"value"`` (amended value), ``"owner"`` (owner changed; ``None`` = pool) or
    ``"abandoned"``. Store with a unique index on ``event_id`` (idempotent)."""
    etype = _event_type(event, event_type)
    if etype not in DEAL_EVENTS:
        return None
    key = event_clock(event)
    entry: dict[str, Any] = {
        "event_id": key["event_id"],
        "customer_id": _require_id(event, "customer_id"),
        "at": key["at"],
        "version": key["version"],
        "kind": None,
        "from_stage": None,
        "to_stage": None,
        "value_fen": None,
        "owner_id": None,
    }
    if etype == "CustomerAbandoned":
        entry["kind"] = "abandoned"
        return entry
    if etype == "OwnerChanged":
        writes = _deal_writes(etype, event)
        entry["kind"] = "owner"
        entry["owner_id"] = writes["owner"]["owner_id"]
        return entry
    writes = _deal_writes(etype, event)
    if "value" in writes:
        entry["value_fen"] = writes["value"]["value_fen"]
    if "owner" in writes:
        entry["owner_id"] = writes["owner"]["owner_id"]
    if "stage" in writes:
        entry["kind"] = "stage"
        entry["to_stage"] = writes["stage"]["stage"]
        if etype == "StageChanged":
            src, keys = event, ("from", "from_stage")
        else:
            before = event.get("before")
            src, keys = (before if isinstance(before, Mapping) else {}), ("stage",)
        from_stage = _stage_write(src, keys)
        entry["from_stage"] = None if from_stage is _MISSING else from_stage
        return entry
    if "value" in writes:
        entry["kind"] = "value"
        return entry
    return None


def _history_sort_key(entry: Mapping[str, Any]) -> tuple:
    version = entry.get("version")
    return (str(entry.get("at")), -1 if version is None else version, str(entry.get("event_id")))


def merge_history(
    entries: Iterable[Mapping[str, Any]], entry: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """``entries`` plus ``entry``, sorted; a known ``event_id`` changes nothing."""
    out = [dict(e) for e in entries]
    if entry is not None and all(e.get("event_id") != entry.get("event_id") for e in out):
        out.append(dict(entry))
    out.sort(key=_history_sort_key)
    return out


def group_history(entries: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Flat history documents -> ``{customer_id: [entry, ...]}``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        out.setdefault(str(e["customer_id"]), []).append(dict(e))
    return out


@dataclass(frozen=True)
class _Entry:
    at: datetime
    kind: str
    from_stage: int | None
    to_stage: int | None
    value_fen: int | None
    owner_id: str | None
    event_id: str | None
    version: int | None
    seq: int


_KINDS = ("stage", "value", "owner", "abandoned")


def _opt_stage(value: Any, field: str) -> int | None:
    return None if value is None else _parse_stage(value, field, ForecastError)


def _parse_entry(raw: Any, seq: int, where: str) -> _Entry:
    if isinstance(raw, Mapping):
        at = raw.get("at", raw.get("occurred_at"))
        from_stage = raw.get("from_stage", raw.get("from"))
        to_stage = raw.get("to_stage", raw.get("to"))
        kind = raw.get("kind") or "stage"
        value = raw.get("value_fen")
        owner = raw.get("owner_id")
        event_id = raw.get("event_id")
        version = raw.get("version")
    elif isinstance(raw, (tuple, list)) and len(raw) in (3, 4):
        at, from_stage, to_stage = raw[0], raw[1], raw[2]
        value = raw[3] if len(raw) == 4 else None
        kind, owner, event_id, version = "stage", None, None, None
    else:
        raise ForecastError("must be (at, from_stage, to_stage[, value_fen]) or an object", where)
    if kind not in _KINDS:
        raise ForecastError(f"kind must be one of {', '.join(_KINDS)}", where)
    if kind == "stage" and to_stage is None:
        raise ForecastError("a stage entry needs to_stage", where)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise ForecastError("version must be an integer", where)
    return _Entry(
        at=_to_utc(at, f"{where}.at", ForecastError),
        kind=kind,
        from_stage=_opt_stage(from_stage, f"{where}.from_stage"),
        to_stage=_opt_stage(to_stage, f"{where}.to_stage"),
        value_fen=None if value is None else _check_fen(value, f"{where}.value_fen"),
        owner_id=None if owner is None else str(owner),
        event_id=None if event_id is None else str(event_id),
        version=version,
        seq=seq,
    )


def _sorted_entries(entries: list[_Entry]) -> list[_Entry]:
    seen: set[str] = set()
    unique = []
    for e in entries:
        if e.event_id is not None:
            if e.event_id in seen:
                continue
            seen.add(e.event_id)
        unique.append(e)
    if unique and all(e.version is not None for e in unique):
        return sorted(unique, key=lambda e: (e.version, e.at, e.event_id or "", e.seq))
    return sorted(unique, key=lambda e: (e.at, e.event_id or "", e.seq))


_History = dict[str, tuple[list[_Entry], int]]


def _normalize_history(history: Any) -> _History:
    """Accepts ``{customer_id: [entry, ...]}``, ``{customer_id: {"transitions":
    [...], "abandoned_at": t?, "value_fen": n?}}`` or flat entries with
    ``customer_id``. Entries: ``(at, from_stage, to_stage[, value_fen])`` tuples
    or ``history_entry`` mappings."""
    if history is None:
        return {}
    if not isinstance(history, Mapping):
        history = group_history(history)
    out: _History = {}
    for cid, deal in history.items():
        where = f"history[{cid}]"
        default_value = 0
        if isinstance(deal, Mapping):
            raws = list(deal.get("transitions", ()))
            if deal.get("value_fen") is not None:
                default_value = _check_fen(deal["value_fen"], f"{where}.value_fen")
            if deal.get("abandoned_at") is not None:
                raws.append({"at": deal["abandoned_at"], "kind": "abandoned"})
        else:
            raws = list(deal)
        entries = [_parse_entry(r, i, f"{where}[{i}]") for i, r in enumerate(raws)]
        out[str(cid)] = (_sorted_entries(entries), default_value)
    return out


@dataclass(frozen=True)
class _Replay:
    stage: int | None
    value_fen: int
    outcome: str  # "open" | "won" | "lost"
    visited: frozenset[int]
    won_at: datetime | None
    won_value: int


def _replay(
    entries: list[_Entry], default_value: int, index: _StageIndex, cutoff: datetime | None
) -> _Replay:
    """A deal as of ``cutoff`` (entries strictly before it; all when ``None``)."""
    stage: int | None = None
    value = default_value
    pooled = dropped = False
    won_at: datetime | None = None
    won_value = 0
    visited: set[int] = set()

    def visit(raw: int) -> None:
        mapped = index.resolve(raw)
        if mapped is not None:
            visited.add(mapped)

    for e in entries:
        if cutoff is not None and e.at >= cutoff:
            continue
        if won_at is not None:
            break
        if e.value_fen is not None:
            value = e.value_fen
        if e.kind == "abandoned":
            pooled = True
        elif e.kind == "owner":
            pooled = e.owner_id is None
        elif e.kind == "stage":
            if stage is None and e.from_stage is not None:
                stage = e.from_stage
                visit(stage)
            previous, stage = stage, e.to_stage
            assert stage is not None
            if stage >= WON_STAGE:
                won_at, won_value = e.at, value
                visit(stage)
            elif stage == LOST_STAGE and previous is not None and previous > LOST_STAGE:
                dropped = True
            else:
                dropped = False
                if stage > LOST_STAGE:
                    pooled = False
                visit(stage)
    if won_at is not None:
        outcome = "won"
    elif pooled or dropped:
        outcome = "lost"
    else:
        outcome = "open"
    return _Replay(stage, value, outcome, frozenset(visited), won_at, won_value)


def _parse_weight(value: Any) -> Fraction:
    if isinstance(value, bool) or value is None:
        raise ForecastError("must be a non-negative number", "prior_weight")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ForecastError("must be a finite number", "prior_weight")
        value = Decimal(repr(value))
    if isinstance(value, Decimal) and not value.is_finite():
        raise ForecastError("must be a finite number", "prior_weight")
    if not isinstance(value, (int, Decimal, Fraction)):
        raise ForecastError("must be a non-negative number", "prior_weight")
    weight = Fraction(value)
    if weight < 0:
        raise ForecastError("must be a non-negative number", "prior_weight")
    return weight


def _calibrate(
    norm: _History, index: _StageIndex, weight: Fraction, cutoff: datetime | None
) -> tuple[list[dict[str, Any]], int]:
    wins = dict.fromkeys(index.ordered, 0)
    seen = dict.fromkeys(index.ordered, 0)
    sample = 0
    for entries, default_value in norm.values():
        if cutoff is not None and (not entries or min(e.at for e in entries) >= cutoff):
            continue  # nothing known yet
        r = _replay(entries, default_value, index, cutoff)
        if r.outcome == "open" or not r.visited:
            continue
        sample += 1
        for s in r.visited:
            seen[s] += 1
            wins[s] += r.outcome == "won"
    rows = [calibration_row(s, seen[s["stage"]], wins[s["stage"]], weight) for s in index.stages]
    return rows, sample


def calibration_row(stage: Mapping[str, Any], n: int, k: int, weight: Fraction) -> dict[str, Any]:
    """A stage's calibrated probability from `k` wins of `n` resolved deals,
    shrunk towards its configured probability with prior weight `weight`."""
    p0 = Fraction(stage["probability"])
    calibrated = (k + weight * p0) / (n + weight) if n + weight > 0 else p0
    return {
        "stage": stage["stage"],
        "label": stage["label"],
        "configured": stage["probability"],
        "empirical": _ratio(Fraction(k, n)) if n else None,
        "calibrated": _ratio(calibrated),
        "sample_size": n,
        "wins": k,
    }


def calibrate(
    history: Any,
    stages: Iterable[Mapping[str, Any]] | None = None,
    prior_weight: Any = DEFAULT_PRIOR_WEIGHT,
    *,
    as_of: datetime | str | None = None,
    orphans: str = "nearest_lower",
) -> dict[str, Any]:
    """Stage probabilities learned from the stage history, shrunk to the configured ones.

    ``history``: ``{customer_id: [(at, from_stage, to_stage[, value_fen]) | entry,
    ...]}`` (see ``history_entry``), ``{customer_id: {"transitions": [...],
    "abandoned_at": t}}`` or flat entries. ``as_of``: use only entries strictly
    before this time. Returns ``{method: "beta-shrinkage", prior_weight,
    as_of, sample_size (resolved deals used), stages: [{stage, label,
    configured, empirical (None without sample), calibrated, sample_size,
    wins}]}``; probabilities as ``Decimal`` with 4 decimals (half up), and the
    calibrated forecast uses them as shown.
    """
    index = _StageIndex(stages, orphans)
    weight = _parse_weight(prior_weight)
    cutoff = None if as_of is None else _to_utc(as_of, "as_of", ForecastError)
    rows, sample = _calibrate(_normalize_history(history), index, weight, cutoff)
    return {
        "method": METHOD,
        "prior_weight": _number_out(weight),
        "as_of": None if cutoff is None else cutoff.isoformat(),
        "sample_size": sample,
        "stages": rows,
    }


