"""The stage list: integer percent, a probability, active or not.

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
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from services.common.stages import DEFAULT_STAGES as _KERNEL_STAGES
from services.common.stages import default_active
from services.forecast.domain.deals import _is_newer, event_clock
from services.forecast.domain.errors import (
    _HUNDRED,
    ORPHAN_POLICIES,
    WON_STAGE,
    EventError,
    ForecastError,
    StageError,
    _parse_stage,
)

# --------------------------------------------------------------------------
# stages


def _default_stage(stage: int, label: str, label_en: str) -> dict[str, Any]:
    return {
        "stage": stage,
        "label": label,
        "label_en": label_en,
        "probability": Decimal(stage) / _HUNDRED,
        "active": default_active(stage),
    }


#: The brief's seven stages. ``probability`` is a ``Decimal`` fraction; stage
#: is the integer percent; ``active`` (counted for reliability and in the
#: forecast) for 25..90.
DEFAULT_STAGES: tuple[dict[str, Any], ...] = tuple(
    _default_stage(stage, label, label_en) for stage, label, label_en in _KERNEL_STAGES)


def default_stages() -> list[dict[str, Any]]:
    """A fresh copy of ``DEFAULT_STAGES`` (safe to modify)."""
    return [dict(s) for s in DEFAULT_STAGES]



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
    the stage percent), ``active`` (bool; defaults to common.stages.default_active).
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
            active = default_active(stage)
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


