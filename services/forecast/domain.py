"""Forecast rules as plain functions (problem 6: 销售目标拍脑袋，喊口号).

Pipeline stages and their probabilities, the weighted forecast of next month's
"hidden performance" (隐形业绩), the deal read model that the forecast service
builds from customer events, per-scope aggregates kept up to date by deltas,
a forecast calibrated on the team's own stage history, its backtest, and the
week key of the trend snapshots.

Pure functions of data: no I/O, no database, no broker, no clock (callers pass
every time in). Only the standard library is used.

Numbers
-------
- Money is integer fen (分) in here; ``fen_to_yuan`` makes the ``Decimal`` yuan
  (2 decimals) the HTTP API shows, ``yuan_to_fen`` validates what comes in.
- Probabilities are ``Decimal`` fractions 0..1 when shown (``Decimal("0.25")``)
  and exact ``Fraction`` while computing. No float is ever used for money or
  probabilities. Every total is computed exactly and rounded once, half up
  (四舍五入), at the end; so a stage row's ``weighted`` is rounded on its own
  and the rows may differ from ``forecast`` by a fen.

Stages that are no longer defined (``orphans``)
-----------------------------------------------
An admin may redefine the stage list while customers sit in a stage that is
gone; they keep their stage (their history stays true). Reports never crash
on them. Default policy ``"nearest_lower"``: such a deal is reported in the
row of the nearest *lower* defined stage and takes its probability and
``active`` flag (conservative: a deal is never promoted by a redefinition),
and ``remapped`` lists what was moved where. A deal with no defined stage
below it, a deal without a stage, and a won deal (stage 100) whose stage was
removed are not guessed at: they are counted in ``unstaged`` and left out of
the forecast. Policy ``"exclude"`` puts every orphan in ``unstaged``. The same
mapping is applied to the stage history when calibrating.

Read model: idempotent and order-safe event application
-------------------------------------------------------
A deal's state is a set of last-writer-wins registers (``stage``, ``value``,
``owner``, ``team``, ``status``), each stamped with the clock of the event
that wrote it: ``(version, occurred_at, event_id)``. An event writes only the
registers its payload speaks about, and only where its clock is newer.

- The clock compares by the per-customer ``version`` when both sides carry
  one (clocks of different machines may be skewed; the producer's counter is
  not), else by ``occurred_at``; ``event_id`` breaks ties so the order is
  total and does not depend on arrival. A producer should either always or
  never send ``version`` for a customer.
- A replayed or duplicated event has the same clock as what it wrote: nothing
  is newer, nothing changes, ``apply_deal_event`` returns ``None``.
- An older event arriving after a newer one does not roll anything back. It
  may still fill a register that no newer event wrote (a ``StageChanged`` v2
  delayed behind a ``CustomerAmended`` v3 that changed only the value still
  moves the stage). Dropping the whole late event instead would make the end
  state depend on arrival order and lose the stage change for good.
- The result is a join-semilattice: any order, any number of duplicates give
  the same state (the unit tests check this with random permutations).

Calibration
-----------
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

Backtest
--------
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

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "DEAL_EVENTS",
    "DEFAULT_PRIOR_WEIGHT",
    "DEFAULT_STAGES",
    "DEFAULT_TZ",
    "EventError",
    "ForecastError",
    "LOST_STAGE",
    "MAX_FEN",
    "METHOD",
    "MIN_ACTIVE",
    "MoneyError",
    "StageError",
    "WON_STAGE",
    "aggregate_deals",
    "apply_deal_event",
    "apply_deltas",
    "apply_stages_event",
    "backtest",
    "calibrate",
    "counts_for_scope",
    "deal_delta",
    "default_stages",
    "event_clock",
    "fen_to_yuan",
    "group_history",
    "history_entry",
    "merge_history",
    "new_deal_state",
    "normalize_stages",
    "pipeline",
    "pipeline_from_counts",
    "scope_key",
    "scopes_of",
    "stage_counts",
    "week_key",
    "week_start",
    "yuan_to_fen",
]

DEFAULT_TZ = "Asia/Shanghai"
MIN_ACTIVE = 14
DEFAULT_PRIOR_WEIGHT = 10
METHOD = "beta-shrinkage"
WON_STAGE = 100
LOST_STAGE = 0
#: The largest amount MongoDB stores as an integer (int64), in fen.
MAX_FEN = 2**63 - 1
ORPHAN_POLICIES = ("nearest_lower", "exclude")


# --------------------------------------------------------------------------
# errors


class ForecastError(ValueError):
    """Invalid input. ``field`` names the offending field; ``fields`` is the
    ``{"field": "why"}`` map a 422 carries (``Invalid.fields(e.fields)``)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field

    @property
    def fields(self) -> dict[str, str]:
        return {self.field or "value": self.message}


class MoneyError(ForecastError):
    """An amount of money that is not a valid number of yuan or fen."""


class StageError(ForecastError):
    """A stage list or a stage that breaks the rules."""


class EventError(ForecastError):
    """An event payload that cannot be applied (a poison message: dead-letter it)."""


# --------------------------------------------------------------------------
# money

_HUNDRED = Decimal(100)


def yuan_to_fen(value: Any, field: str = "expected_value") -> int:
    """A number of yuan (API input) as integer fen.

    Accepts ``int``, ``Decimal``, ``str`` and, because a JSON number may arrive
    as one, ``float`` (read through its shortest repr, so ``0.1`` is 0.10 yuan
    and ``0.1 + 0.2`` is refused). Refuses booleans, ``None``, NaN and
    infinities, negative amounts, more than 2 decimals (by value: ``"1.230"``
    is fine) and amounts beyond int64 fen.
    """
    if value is None or isinstance(value, bool):
        raise MoneyError("must be a number of yuan", field)
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise MoneyError("must be a finite number", field)
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise MoneyError("is not a number", field) from None
    else:
        raise MoneyError("must be a number of yuan", field)
    if not amount.is_finite():
        raise MoneyError("must be a finite number", field)
    if amount < 0:
        raise MoneyError("must not be negative", field)
    if amount != 0 and amount.adjusted() > 18:
        raise MoneyError("is too large", field)
    with localcontext() as ctx:
        ctx.prec = 60
        fen = amount * _HUNDRED
        if fen != fen.to_integral_value():
            raise MoneyError("has more than 2 decimals", field)
    result = int(fen)
    if result > MAX_FEN:
        raise MoneyError("is too large", field)
    return result


def fen_to_yuan(fen: int, *, allow_negative: bool = False) -> Decimal:
    """Integer fen as ``Decimal`` yuan with exactly 2 decimals (1000000 -> 10000.00).

    Negative fen is refused unless ``allow_negative`` (signed errors)."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise MoneyError("fen must be an integer", "fen")
    if fen < 0 and not allow_negative:
        raise MoneyError("must not be negative", "fen")
    with localcontext() as ctx:
        ctx.prec = 60
        return Decimal(fen).scaleb(-2)


def _check_fen(value: Any, field: str, err: type[ForecastError] = ForecastError) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise err("must be an integer number of fen", field)
    if value < 0 or value > MAX_FEN:
        raise err("is out of range", field)
    return value


def _round_half_up(x: Fraction) -> int:
    if x >= 0:
        return math.floor(x + Fraction(1, 2))
    return -math.floor(-x + Fraction(1, 2))


def _yuan(fen_exact: Fraction | int, *, signed: bool = False) -> Decimal:
    return fen_to_yuan(_round_half_up(Fraction(fen_exact)), allow_negative=signed)


def _ratio(x: Fraction, places: int = 4) -> Decimal:
    """A fraction shown with ``places`` decimals, rounded half up."""
    with localcontext() as ctx:
        ctx.prec = 60
        return Decimal(_round_half_up(x * 10**places)).scaleb(-places)


def _number_out(x: Fraction) -> int | Decimal:
    if x.denominator == 1:
        return int(x)
    with localcontext() as ctx:
        ctx.prec = 28
        return Decimal(x.numerator) / Decimal(x.denominator)


# --------------------------------------------------------------------------
# stages


def _default_stage(stage: int, label: str, label_en: str) -> dict[str, Any]:
    return {
        "stage": stage,
        "label": label,
        "label_en": label_en,
        "probability": Decimal(stage) / _HUNDRED,
        "active": 25 <= stage <= 90,
    }


#: The brief's seven stages. ``probability`` is a ``Decimal`` fraction; stage
#: is the integer percent; ``active`` (counted for reliability and in the
#: forecast) for 25..90.
DEFAULT_STAGES: tuple[dict[str, Any], ...] = (
    _default_stage(0, "潜在客户", "Prospect"),
    _default_stage(10, "意向客户", "Interested"),
    _default_stage(25, "愿意试样", "Willing to sample"),
    _default_stage(50, "认可样品", "Sample approved"),
    _default_stage(75, "接受报价", "Quote accepted"),
    _default_stage(90, "签订合同", "Contract signed"),
    _default_stage(100, "稳定客户", "Stable customer"),
)


def default_stages() -> list[dict[str, Any]]:
    """A fresh copy of ``DEFAULT_STAGES`` (safe to modify)."""
    return [dict(s) for s in DEFAULT_STAGES]


def _parse_stage(value: Any, field: str, err: type[ForecastError] = StageError) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise err("must be an integer percent", field)
    if not 0 <= value <= 100:
        raise err("must be between 0 and 100", field)
    return value


def _parse_probability(value: Any, field: str) -> Decimal:
    """An ``int`` is a percent (25 -> 0.25); a ``Decimal``, ``str`` or ``float`` is
    a fraction 0..1."""
    if value is None or isinstance(value, bool):
        raise StageError("must be a probability", field)
    if isinstance(value, int):
        if not 0 <= value <= 100:
            raise StageError("as an integer percent must be between 0 and 100", field)
        return Decimal(value) / _HUNDRED
    if isinstance(value, Decimal):
        prob = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise StageError("must be a finite number", field)
        prob = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            prob = Decimal(value.strip())
        except InvalidOperation:
            raise StageError("is not a number", field) from None
    else:
        raise StageError("must be a probability", field)
    if not prob.is_finite() or not 0 <= prob <= 1:
        raise StageError("as a fraction must be between 0 and 1", field)
    return prob.normalize() if prob != 0 else Decimal(0)


def normalize_stages(stages: Iterable[Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Validate a stage list (``PUT /api/stages``) and return it sorted by stage.

    Each item: ``stage`` (int percent 0..100, unique), ``label`` (non-empty),
    optional ``label_en``, ``probability`` (int percent or fraction; defaults to
    the stage percent), ``active`` (bool; defaults to 25 <= stage <= 90).
    ``None`` gives the default stages. Raises ``StageError`` naming the field.
    """
    if stages is None:
        return default_stages()
    if isinstance(stages, (str, bytes, Mapping)) or not isinstance(stages, Iterable):
        raise StageError("must be a list of stages", "stages")
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, raw in enumerate(stages):
        where = f"stages[{i}]"
        if not isinstance(raw, Mapping):
            raise StageError("must be an object", where)
        stage = _parse_stage(raw.get("stage"), f"{where}.stage")
        if stage in seen:
            raise StageError("is defined twice", f"{where}.stage")
        seen.add(stage)
        label = raw.get("label")
        if not isinstance(label, str) or not label.strip():
            raise StageError("must be a non-empty text", f"{where}.label")
        prob_raw = raw.get("probability")
        probability = _parse_probability(
            stage if prob_raw is None else prob_raw, f"{where}.probability"
        )
        active = raw.get("active")
        if active is None:
            active = 25 <= stage <= 90
        elif not isinstance(active, bool):
            raise StageError("must be true or false", f"{where}.active")
        item: dict[str, Any] = {
            "stage": stage,
            "label": label.strip(),
            "probability": probability,
            "active": active,
        }
        label_en = raw.get("label_en")
        if label_en is not None:
            if not isinstance(label_en, str):
                raise StageError("must be a text", f"{where}.label_en")
            item["label_en"] = label_en.strip()
        out.append(item)
    if not out:
        raise StageError("must define at least one stage", "stages")
    out.sort(key=lambda s: s["stage"])
    return out


class _StageIndex:
    """The defined stages and the orphan policy: raw stage -> defined stage."""

    def __init__(self, stages: Iterable[Mapping[str, Any]] | None, orphans: str):
        if orphans not in ORPHAN_POLICIES:
            raise ForecastError(f"must be one of {', '.join(ORPHAN_POLICIES)}", "orphans")
        self.stages = normalize_stages(stages)
        self.by_stage = {s["stage"]: s for s in self.stages}
        self.ordered = [s["stage"] for s in self.stages]
        self.orphans = orphans

    def resolve(self, raw: Any) -> int | None:
        if raw is None or isinstance(raw, bool) or not isinstance(raw, int):
            return None
        if raw in self.by_stage:
            return raw
        if self.orphans == "exclude" or raw >= WON_STAGE:
            return None
        i = bisect_left(self.ordered, raw)
        return self.ordered[i - 1] if i > 0 else None

    def prob(self, stage: int) -> Fraction:
        return Fraction(self.by_stage[stage]["probability"])

    def active(self, stage: int) -> bool:
        return bool(self.by_stage[stage]["active"])


def apply_stages_event(
    current: Mapping[str, Any] | None, event: Mapping[str, Any]
) -> dict[str, Any] | None:
    """``StagesChanged`` -> ``{"stages": [...], "clock": {...}}``, last writer wins.

    Returns ``None`` when the event is a duplicate or older than ``current``."""
    key = event_clock(event)
    if current is not None and not _is_newer(key, current.get("clock")):
        return None
    if event.get("stages") is None:
        raise EventError("is missing", "stages")
    try:
        stages = normalize_stages(event["stages"])
    except StageError as e:
        raise EventError(e.message, e.field) from None
    return {"stages": stages, "clock": key}


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


# --------------------------------------------------------------------------
# the deal read model

DEAL_EVENTS = frozenset(
    {"CustomerCreated", "CustomerAmended", "StageChanged", "OwnerChanged", "CustomerAbandoned"}
)
_REGISTERS = ("stage", "value", "owner", "team", "status")
_MISSING = object()


def _to_utc(value: Any, field: str, err: type[ForecastError] = EventError) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise err("is not an ISO 8601 time", field) from None
    else:
        raise err("must be an ISO 8601 time", field)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _iso_utc(dt: datetime) -> str:
    """Fixed width, so that text order is time order."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _event_type(event: Mapping[str, Any], event_type: str | None) -> Any:
    return event_type or event.get("type") or event.get("event_type")


def _require_id(event: Mapping[str, Any], field: str) -> str:
    value = event.get(field)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise EventError("is missing", field)
    return str(value)


def event_clock(event: Mapping[str, Any]) -> dict[str, Any]:
    """``{"version", "at", "event_id"}``: the order stamp of an event.

    ``at`` is ``occurred_at`` in fixed-width UTC text; ``version`` is the
    optional per-customer counter (non-negative integer or absent)."""
    event_id = _require_id(event, "event_id")
    if event.get("occurred_at") is None:
        raise EventError("is missing", "occurred_at")
    at = _iso_utc(_to_utc(event["occurred_at"], "occurred_at"))
    version = event.get("version")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version < 0
    ):
        raise EventError("must be a non-negative integer", "version")
    return {"version": version, "at": at, "event_id": event_id}


def _is_newer(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    if old is None:
        return True
    nv, ov = new.get("version"), old.get("version")
    if nv is not None and ov is not None:
        return (nv, new["at"], new["event_id"]) > (ov, old["at"], old["event_id"])
    return (new["at"], new["event_id"]) > (old["at"], old["event_id"])


def new_deal_state(customer_id: str) -> dict[str, Any]:
    """An empty deal: no stage, value 0, no owner, active, nothing written."""
    return {
        "customer_id": customer_id,
        "stage": None,
        "value_fen": 0,
        "owner_id": None,
        "team_id": None,
        "status": "active",
        "version": None,
        "updated_at": None,
        "clock": {r: None for r in _REGISTERS},
    }


def _event_value(src: Mapping[str, Any]) -> Any:
    """Money in events: ``expected_value_fen`` (int fen), else ``expected_value``
    (yuan, as the API writes it)."""
    if src.get("expected_value_fen") is not None:
        return _check_fen(src["expected_value_fen"], "expected_value_fen", EventError)
    if src.get("expected_value") is not None:
        try:
            return yuan_to_fen(src["expected_value"], "expected_value")
        except MoneyError as e:
            raise EventError(e.message, e.field) from None
    return _MISSING


def _opt_id(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = value.get("id")
        if value is None:
            return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise EventError("must be an id", field)
    return str(value)


def _first(src: Mapping[str, Any], keys: Sequence[str]) -> tuple[str | None, Any]:
    for key in keys:
        if key in src:
            return key, src[key]
    return None, _MISSING


def _stage_write(src: Mapping[str, Any], keys: Sequence[str]) -> Any:
    key, value = _first(src, keys)
    if key is None or value is None:
        return _MISSING
    return _parse_stage(value, key, EventError)


def _owner_team_writes(
    src: Mapping[str, Any],
    owner_keys: Sequence[str],
    team_keys: Sequence[str],
    *,
    null_clears: bool,
) -> dict[str, dict[str, Any]]:
    """Owner/team registers from a payload. Where the owner is only context
    (created, amended, stage changed) a null means "not said", not "pool"."""
    writes: dict[str, dict[str, Any]] = {}
    key, raw = _first(src, owner_keys)
    if key is not None and (raw is not None or null_clears):
        writes["owner"] = {"owner_id": _opt_id(raw, key)}
        if isinstance(raw, Mapping) and raw.get("team_id") is not None:
            writes["team"] = {"team_id": _opt_id(raw["team_id"], f"{key}.team_id")}
    key, raw = _first(src, team_keys)
    if key is not None and (raw is not None or null_clears):
        writes["team"] = {"team_id": _opt_id(raw, key)}
    return writes


def _status(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise EventError("must be a status text", "status")
    return value


def _deal_writes(etype: str, event: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Which registers an event writes, with what."""
    writes: dict[str, dict[str, Any]] = {}
    if etype == "CustomerAbandoned":
        writes["owner"] = {"owner_id": None}
        writes["team"] = {"team_id": None}
        writes["status"] = {"status": _status(event.get("status") or "pool")}
        return writes
    if etype == "OwnerChanged":
        owner_keys = ("new_owner_id", "to_owner_id", "owner_id", "to", "owner")
        team_keys = ("new_team_id", "to_team_id", "team_id")
        writes = _owner_team_writes(event, owner_keys, team_keys, null_clears=True)
        if "owner" not in writes:
            raise EventError("is missing", "new_owner_id")
        owner = writes["owner"]["owner_id"]
        if owner is None:
            writes["team"] = {"team_id": None}
        writes["status"] = {
            "status": _status(event.get("status") or ("active" if owner else "pool"))
        }
        return writes

    if etype == "CustomerAmended":
        changes = event.get("changes")
        src = changes if isinstance(changes, Mapping) else event
        stage = _stage_write(src, ("stage",))
    elif etype == "StageChanged":
        src = event
        stage = _stage_write(src, ("to", "to_stage", "stage"))
        if stage is _MISSING:
            raise EventError("is missing", "to")
    else:  # CustomerCreated
        src = event
        stage = _stage_write(src, ("stage",))
    if stage is not _MISSING:
        writes["stage"] = {"stage": stage}
    value = _event_value(src)
    if value is not _MISSING:
        writes["value"] = {"value_fen": value}
    writes.update(_owner_team_writes(src, ("owner_id", "owner"), ("team_id",), null_clears=False))
    if etype == "CustomerCreated":
        writes["status"] = {"status": _status(event.get("status") or "active")}
    elif src.get("status") is not None:
        writes["status"] = {"status": _status(src["status"])}
    return writes


def _copy_state(state: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(state)
    clock = state.get("clock") or {}
    out["clock"] = {r: (dict(clock[r]) if clock.get(r) else None) for r in _REGISTERS}
    return out


def apply_deal_event(
    deal_state: Mapping[str, Any] | None,
    event: Mapping[str, Any],
    event_type: str | None = None,
) -> dict[str, Any] | None:
    """Apply one customer event to a deal's state; ``None`` means unchanged.

    ``deal_state``: a state from ``new_deal_state``/an earlier call, or ``None``
    for a customer not seen yet. ``event``: the payload with ``event_id``,
    ``occurred_at``, ``customer_id``, optional ``version``; its type is
    ``event_type`` or ``event["type"]``. Handles ``DEAL_EVENTS``; any other type
    returns ``None``. The state is ``{customer_id, stage, value_fen, owner_id,
    team_id, status, version, updated_at, clock}`` (``version``/``updated_at``
    are the newest written). Raises ``EventError`` for a malformed payload.

    Payloads: ``CustomerCreated {stage, expected_value_fen | expected_value
    (yuan), owner_id | owner {id}, team_id?, status?}``; ``CustomerAmended
    {changes: {stage?, expected_value_fen? | expected_value?, status?}}``;
    ``StageChanged {from, to, expected_value*, owner_id?, team_id?}``;
    ``OwnerChanged {new_owner_id | to_owner_id | owner_id | to (null = pool),
    new_team_id | team_id?, status?}`` (without a team the team is kept);
    ``CustomerAbandoned {}`` (pool: no owner, no team).
    """
    etype = _event_type(event, event_type)
    if etype not in DEAL_EVENTS:
        return None
    customer_id = _require_id(event, "customer_id")
    if deal_state is not None and str(deal_state.get("customer_id")) != customer_id:
        raise EventError("does not match the deal", "customer_id")
    key = event_clock(event)
    writes = _deal_writes(etype, event)
    state = _copy_state(deal_state) if deal_state is not None else new_deal_state(customer_id)
    changed = False
    for register, fields in writes.items():
        if _is_newer(key, state["clock"].get(register)):
            state["clock"][register] = dict(key)
            state.update(fields)
            changed = True
    if not changed:
        return None
    stamps = [c for c in state["clock"].values() if c]
    versions = [c["version"] for c in stamps if c["version"] is not None]
    state["version"] = max(versions) if versions else None
    state["updated_at"] = max(c["at"] for c in stamps)
    return state


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
    rows = []
    for s in index.stages:
        stage = s["stage"]
        n, k = seen[stage], wins[stage]
        p0 = Fraction(s["probability"])
        calibrated = (k + weight * p0) / (n + weight) if n + weight > 0 else p0
        rows.append(
            {
                "stage": stage,
                "label": s["label"],
                "configured": s["probability"],
                "empirical": _ratio(Fraction(k, n)) if n else None,
                "calibrated": _ratio(calibrated),
                "sample_size": n,
                "wins": k,
            }
        )
    return rows, sample


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


# --------------------------------------------------------------------------
# weekly snapshots


def week_start(dt: datetime, tz: str | tzinfo = DEFAULT_TZ) -> datetime:
    """Monday 00:00 of the ISO week containing ``dt``, in ``tz`` (aware, in ``tz``).

    A naive ``dt`` is UTC (as stored)."""
    if not isinstance(dt, datetime):
        raise ForecastError("must be a datetime", "dt")
    zone = _zone(tz)
    local = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    return datetime.combine(monday, time(0), tzinfo=zone)


def week_key(dt: datetime, tz: str | tzinfo = DEFAULT_TZ) -> str:
    """The ISO week of ``dt`` in ``tz`` as ``"2024-W05"`` (snapshot key)."""
    year, week, _ = week_start(dt, tz).date().isocalendar()
    return f"{year:04d}-W{week:02d}"
