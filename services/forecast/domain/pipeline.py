"""The pipeline: counts and weighted value per stage, the forecast of next
month's hidden performance (隐形业绩), and the scopes (company, owner, team).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from services.common.money import fen_to_yuan
from services.forecast.domain.errors import (
    METHOD,
    MIN_ACTIVE,
    ForecastError,
    _check_fen,
    _round_half_up,
    _yuan,
)
from services.forecast.domain.history import calibrate
from services.forecast.domain.stages import _StageIndex

# --------------------------------------------------------------------------
# pipeline


def _deal_value(deal: Mapping[str, Any]) -> int:
    value = deal.get("value_fen", deal.get("expected_value_fen"))
    if value is None:
        return 0
    return _check_fen(value, "value_fen")


def _deal_stage(deal: Mapping[str, Any]) -> int | None:
    stage = deal.get("stage")
    if stage is None:
        return None
    if isinstance(stage, bool) or not isinstance(stage, int):
        raise ForecastError("must be an integer percent", "stage")
    return stage


def stage_counts(deals: Iterable[Mapping[str, Any]]) -> dict[int | None, tuple[int, int]]:
    """``{raw stage: (count, value_fen)}`` over the deals whose ``status`` is
    ``"active"`` (a missing status counts as active; pool and abandoned ones
    do not). Deals without a stage are under ``None``."""
    out: dict[int | None, tuple[int, int]] = {}
    for deal in deals:
        if deal.get("status", "active") != "active":
            continue
        stage = _deal_stage(deal)
        count, value = out.get(stage, (0, 0))
        out[stage] = (count + 1, value + _deal_value(deal))
    return out


def _count_value(cv: Any, where: str) -> tuple[int, int]:
    if isinstance(cv, Mapping):
        count, value = cv.get("count", 0), cv.get("value_fen", 0)
    else:
        count, value = cv
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ForecastError("count must be a non-negative integer", where)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ForecastError("value_fen must be a non-negative integer", where)
    return count, value


def pipeline_from_counts(
    counts: Mapping[int | None, Any],
    stages: Iterable[Mapping[str, Any]] | None = None,
    min_active: int = MIN_ACTIVE,
    *,
    calibration: Mapping[str, Any] | None = None,
    orphans: str = "nearest_lower",
) -> dict[str, Any]:
    """The ``GET /api/forecast`` body from per-stage counts.

    ``counts``: ``{raw stage: (count, value_fen)}`` (or ``{"count", "value_fen"}``
    mappings), e.g. ``counts_for_scope(aggregates, "owner:u1")``.
    ``calibration``: the result of ``calibrate``; without it the calibrated
    forecast is the prior alone (equal to the configured one, sample 0).

    Returns ``{stages: [{stage, label, label_en?, probability, active, count,
    value, weighted}], active_count, min_active, reliable, forecast,
    forecast_fen, calibrated: {forecast, forecast_fen, method, sample_size,
    prior_weight, stages}, unstaged: {count, value, stages}, remapped:
    [{from_stage, to_stage, count, value}]}``; money in ``Decimal`` yuan.
    ``weighted`` is ``value x probability`` for every row; ``forecast`` sums the
    active rows only, computed exactly and rounded once.
    """
    if isinstance(min_active, bool) or not isinstance(min_active, int) or min_active < 0:
        raise ForecastError("must be a non-negative integer", "min_active")
    index = _StageIndex(stages, orphans)
    rows = {s: [0, 0] for s in index.ordered}
    remapped: dict[tuple[int, int], list[int]] = {}
    unstaged = [0, 0]
    unstaged_stages: set[int] = set()
    for raw, cv in counts.items():
        count, value = _count_value(cv, f"counts[{raw}]")
        if count == 0 and value == 0:
            continue
        target = index.resolve(raw)
        if target is None:
            unstaged[0] += count
            unstaged[1] += value
            if isinstance(raw, int) and not isinstance(raw, bool):
                unstaged_stages.add(raw)
            continue
        rows[target][0] += count
        rows[target][1] += value
        if raw != target:
            moved = remapped.setdefault((raw, target), [0, 0])
            moved[0] += count
            moved[1] += value

    cal_probs = _calibrated_probs(calibration, index)
    stage_rows = []
    active_count = 0
    total = Fraction(0)
    cal_total = Fraction(0)
    for s in index.stages:
        count, value = rows[s["stage"]]
        weighted = value * Fraction(s["probability"])
        row = {"stage": s["stage"], "label": s["label"]}
        if "label_en" in s:
            row["label_en"] = s["label_en"]
        row.update(
            probability=s["probability"],
            active=s["active"],
            count=count,
            value=fen_to_yuan(value),
            weighted=_yuan(weighted),
        )
        stage_rows.append(row)
        if s["active"]:
            active_count += count
            total += weighted
            cal_total += value * cal_probs[s["stage"]]
    forecast_fen = _round_half_up(total)
    cal_fen = _round_half_up(cal_total)
    cal_meta = calibration or calibrate({}, index.stages)
    return {
        "stages": stage_rows,
        "active_count": active_count,
        "min_active": min_active,
        "reliable": active_count >= min_active,
        "forecast": fen_to_yuan(forecast_fen),
        "forecast_fen": forecast_fen,
        "calibrated": {
            "forecast": fen_to_yuan(cal_fen),
            "forecast_fen": cal_fen,
            "method": cal_meta.get("method", METHOD),
            "sample_size": cal_meta.get("sample_size", 0),
            "prior_weight": cal_meta.get("prior_weight"),
            "stages": cal_meta.get("stages", []),
        },
        "unstaged": {
            "count": unstaged[0],
            "value": fen_to_yuan(unstaged[1]),
            "stages": sorted(unstaged_stages),
        },
        "remapped": [
            {"from_stage": f, "to_stage": t, "count": c, "value": fen_to_yuan(v)}
            for (f, t), (c, v) in sorted(remapped.items())
        ],
    }


def pipeline(
    deals: Iterable[Mapping[str, Any]],
    stages: Iterable[Mapping[str, Any]] | None = None,
    min_active: int = MIN_ACTIVE,
    *,
    calibration: Mapping[str, Any] | None = None,
    orphans: str = "nearest_lower",
) -> dict[str, Any]:
    """The ``GET /api/forecast`` body from deals (``{stage, value_fen, status}``
    mappings, e.g. deal states of the read model). Same result as
    ``pipeline_from_counts(stage_counts(deals), ...)``."""
    return pipeline_from_counts(
        stage_counts(deals), stages, min_active, calibration=calibration, orphans=orphans
    )


def _calibrated_probs(
    calibration: Mapping[str, Any] | None, index: _StageIndex
) -> dict[int, Fraction]:
    probs = {s: index.prob(s) for s in index.ordered}
    if calibration:
        for row in calibration.get("stages", []):
            if row.get("stage") in probs and row.get("calibrated") is not None:
                probs[row["stage"]] = Fraction(row["calibrated"])
    return probs


# --------------------------------------------------------------------------
# incremental aggregates per (scope, stage)


def scope_key(kind: str, ident: Any = None) -> str:
    """``"company"``, ``"owner:<id>"`` or ``"team:<id>"``."""
    if kind == "company":
        return "company"
    if kind not in ("owner", "team") or ident is None or ident == "":
        raise ForecastError("must be company, owner:<id> or team:<id>", "scope")
    return f"{kind}:{ident}"

