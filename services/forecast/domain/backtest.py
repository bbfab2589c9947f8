"""The backtest of the plain and the calibrated forecast.

For each past month end the history is replayed to the cut-off (entries
strictly before it); both methods forecast from the deals then open in active
stages, the calibration using only the replayed history (no leakage); the
actual is the value of the deals that first reached 100 inside the following
calendar month (in ``tz``), at their value when they were won. Errors are
``forecast - actual`` in yuan; overall figures per method: ``mae`` (mean
absolute error, yuan), ``bias`` (mean signed error, yuan), ``wape`` (sum of
absolute errors / sum of actuals; defined whenever anything was won) and
``mape`` (mean of |error| / actual over the months with a non-zero actual,
``mape_months`` says how many).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, tzinfo
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from services.common.money import fen_to_yuan
from services.forecast.domain.errors import (
    DEFAULT_PRIOR_WEIGHT,
    DEFAULT_TZ,
    METHOD,
    ForecastError,
    _number_out,
    _ratio,
    _round_half_up,
    _yuan,
)
from services.forecast.domain.history import _calibrate, _normalize_history, _parse_weight, _replay
from services.forecast.domain.stages import _StageIndex

# --------------------------------------------------------------------------
# backtest


def _zone(tz: str | tzinfo) -> tzinfo:
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ValueError, KeyError, OSError):
        raise ForecastError("is not a known time zone", "tz") from None


def _month_start(year: int, month: int, zone: tzinfo) -> datetime:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=zone)


def _month_window(month_end: Any, zone: tzinfo) -> tuple[datetime, datetime]:
    """(cut-off, end) of the month that follows ``month_end``.

    A ``date`` names the month that ends (any day of it); an aware ``datetime``
    at a local month start is the cut-off itself, any other one names the
    month it falls in (naive ones are UTC)."""
    if isinstance(month_end, datetime):
        local = (month_end if month_end.tzinfo else month_end.replace(tzinfo=UTC)).astimezone(zone)
        if local.day == 1 and local.time() == time(0):
            start = _month_start(local.year, local.month, zone)
        else:
            start = _month_start(local.year, local.month + 1, zone)
    elif isinstance(month_end, date):
        start = _month_start(month_end.year, month_end.month + 1, zone)
    else:
        raise ForecastError("must be dates or datetimes", "month_ends")
    return start, _month_start(start.year, start.month + 1, zone)


def _errors(pairs: list[tuple[int, int]]) -> dict[str, Any]:
    """Error figures of one method over months of (forecast_fen, actual_fen)."""
    if not pairs:
        return {"mae": None, "bias": None, "wape": None, "mape": None, "mape_months": 0}
    n = len(pairs)
    abs_sum = sum(abs(f - a) for f, a in pairs)
    actual_sum = sum(a for _, a in pairs)
    ape = [Fraction(abs(f - a), a) for f, a in pairs if a > 0]
    return {
        "mae": _yuan(Fraction(abs_sum, n)),
        "bias": _yuan(Fraction(sum(f - a for f, a in pairs), n), signed=True),
        "wape": _ratio(Fraction(abs_sum, actual_sum)) if actual_sum else None,
        "mape": _ratio(sum(ape, Fraction(0)) / len(ape)) if ape else None,
        "mape_months": len(ape),
    }


def backtest(
    history: Any,
    stages: Iterable[Mapping[str, Any]] | None = None,
    month_ends: Iterable[date | datetime] = (),
    prior_weight: Any = DEFAULT_PRIOR_WEIGHT,
    *,
    tz: str | tzinfo = DEFAULT_TZ,
    orphans: str = "nearest_lower",
) -> dict[str, Any]:
    """Replay the history to each month end and score both forecasts on the next month.

    Returns ``{method, prior_weight, tz, months: [{month ("YYYY-MM" forecast),
    cutoff, end, open_active, configured, calibrated, actual,
    actual_from_pipeline, error: {configured, calibrated}, sample_size,
    calibrated_probabilities: {stage: p}}], overall: {months, configured:
    {mae, bias, wape, mape, mape_months}, calibrated: {...}}}``; money in
    ``Decimal`` yuan, ratios as ``Decimal`` fractions with 4 decimals.
    ``actual_from_pipeline`` is the part of ``actual`` won by deals that were
    open in an active stage at the cut-off (the rest was not in the forecast).
    """
    index = _StageIndex(stages, orphans)
    weight = _parse_weight(prior_weight)
    zone = _zone(tz)
    norm = _normalize_history(history)
    months = []
    pairs: dict[str, list[tuple[int, int]]] = {"configured": [], "calibrated": []}
    for month_end in month_ends:
        cutoff, end = _month_window(month_end, zone)
        rows, sample = _calibrate(norm, index, weight, cutoff)
        cal_p = {r["stage"]: Fraction(r["calibrated"]) for r in rows}
        configured = calibrated = Fraction(0)
        actual = from_pipeline = open_active = 0
        for entries, default_value in norm.values():
            if not entries or min(e.at for e in entries) >= end:
                continue  # the deal does not exist yet
            at_cut = _replay(entries, default_value, index, cutoff)
            in_pipeline = False
            if at_cut.outcome == "open":
                mapped = index.resolve(at_cut.stage)
                if mapped is not None and index.active(mapped):
                    in_pipeline = True
                    open_active += 1
                    configured += at_cut.value_fen * index.prob(mapped)
                    calibrated += at_cut.value_fen * cal_p[mapped]
            at_end = _replay(entries, default_value, index, end)
            if at_end.won_at is not None and cutoff <= at_end.won_at < end:
                actual += at_end.won_value
                if in_pipeline:
                    from_pipeline += at_end.won_value
        conf_fen, cal_fen = _round_half_up(configured), _round_half_up(calibrated)
        pairs["configured"].append((conf_fen, actual))
        pairs["calibrated"].append((cal_fen, actual))
        months.append(
            {
                "month": f"{cutoff.year:04d}-{cutoff.month:02d}",
                "cutoff": cutoff.isoformat(),
                "end": end.isoformat(),
                "open_active": open_active,
                "configured": fen_to_yuan(conf_fen),
                "calibrated": fen_to_yuan(cal_fen),
                "actual": fen_to_yuan(actual),
                "actual_from_pipeline": fen_to_yuan(from_pipeline),
                "error": {
                    "configured": fen_to_yuan(conf_fen - actual, allow_negative=True),
                    "calibrated": fen_to_yuan(cal_fen - actual, allow_negative=True),
                },
                "sample_size": sample,
                "calibrated_probabilities": {r["stage"]: r["calibrated"] for r in rows},
            }
        )
    return {
        "method": METHOD,
        "prior_weight": _number_out(weight),
        "tz": str(zone),
        "months": months,
        "overall": {
            "months": len(months),
            "configured": _errors(pairs["configured"]),
            "calibrated": _errors(pairs["calibrated"]),
        },
    }


