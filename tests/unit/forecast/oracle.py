"""A reference model of the per-scope aggregates ({(scope, stage): (count,
value_fen)}) recomputed or updated by deltas from deal states.

Production keeps these counts in MongoDB (forecast/readmodel.py); the tests
use this model as the oracle those stored counts must equal."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.forecast.domain.errors import ForecastError
from services.forecast.domain.pipeline import _deal_stage, _deal_value, scope_key


def scopes_of(deal: Mapping[str, Any]) -> list[str]:
    """The scopes a deal counts in: the company, its owner, its team (when known)."""
    scopes = ["company"]
    if deal.get("owner_id") is not None:
        scopes.append(scope_key("owner", deal["owner_id"]))
    if deal.get("team_id") is not None:
        scopes.append(scope_key("team", deal["team_id"]))
    return scopes


def _contribution(deal: Mapping[str, Any] | None) -> dict[tuple[str, int | None], tuple[int, int]]:
    if deal is None or deal.get("status", "active") != "active":
        return {}
    stage = _deal_stage(deal)
    value = _deal_value(deal)
    return {(scope, stage): (1, value) for scope in scopes_of(deal)}


def _stage_sort(stage: int | None) -> tuple[int, int]:
    return (1, 0) if stage is None else (0, stage)


def deal_delta(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[tuple[str, int | None, int, int]]:
    """What a deal's change does to the aggregates: ``[(scope, stage, dcount,
    dvalue_fen)]``, sorted, zero entries left out. ``before``/``after`` are deal
    states or ``None``; only active deals count. Apply with MongoDB ``$inc``
    (or ``apply_deltas``) in the same step that stores ``after``."""
    old, new = _contribution(before), _contribution(after)
    out = []
    for key in sorted(old.keys() | new.keys(), key=lambda k: (k[0], _stage_sort(k[1]))):
        oc, ov = old.get(key, (0, 0))
        nc, nv = new.get(key, (0, 0))
        if nc - oc or nv - ov:
            out.append((key[0], key[1], nc - oc, nv - ov))
    return out


def apply_deltas(
    aggregates: Mapping[tuple[str, int | None], tuple[int, int]],
    deltas: Iterable[tuple[str, int | None, int, int]],
) -> dict[tuple[str, int | None], tuple[int, int]]:
    """A new ``{(scope, stage): (count, value_fen)}`` with ``deltas`` added; empty
    cells are dropped. A cell going negative means a lost or doubled delta:
    ``ForecastError`` (rebuild with ``aggregate_deals``)."""
    out = dict(aggregates)
    for scope, stage, dcount, dvalue in deltas:
        count, value = out.get((scope, stage), (0, 0))
        count, value = count + dcount, value + dvalue
        if count < 0 or value < 0:
            raise ForecastError(f"aggregate {scope}/{stage} would go negative", "aggregates")
        if count == 0 and value == 0:
            out.pop((scope, stage), None)
        else:
            out[(scope, stage)] = (count, value)
    return out


def aggregate_deals(
    deals: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, int | None], tuple[int, int]]:
    """The aggregates recomputed from scratch (rebuilds, checks)."""
    out: dict[tuple[str, int | None], tuple[int, int]] = {}
    for deal in deals:
        for key, (c, v) in _contribution(deal).items():
            count, value = out.get(key, (0, 0))
            out[key] = (count + c, value + v)
    return out


def counts_for_scope(
    aggregates: Mapping[tuple[str, int | None], tuple[int, int]], *scopes: str
) -> dict[int | None, tuple[int, int]]:
    """``{stage: (count, value_fen)}`` of one scope, or the sum of several (e.g.
    the owner scopes of a team's members) for ``pipeline_from_counts``."""
    wanted = set(scopes)
    out: dict[int | None, tuple[int, int]] = {}
    for (scope, stage), (c, v) in aggregates.items():
        if scope in wanted:
            count, value = out.get(stage, (0, 0))
            out[stage] = (count + c, value + v)
    return out


