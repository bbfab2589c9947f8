"""The pipeline's stage definitions (跟踪阶段), as pure functions.

A stage is an integer percent; its `probability` is an integer percent too
(the default equals the stage) and `active` marks the stages the forecast
counts (25–90 by default). Customers own the list; the forecast service keeps
a copy from `StagesChanged`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services.common.stages import DEFAULT_STAGES, default_active
from services.customers.errors import InvalidFields

MAX_STAGES = 20


def default_stages() -> list[dict]:
    return [{"stage": s, "label": label, "probability": s, "active": default_active(s)}
            for s, label, _ in DEFAULT_STAGES]


def public(stages: Iterable[Mapping]) -> list[dict]:
    """The API and event shape of a stored list (nothing but the four fields)."""
    return [{"stage": s["stage"], "label": s["label"], "probability": s["probability"],
             "active": s["active"]} for s in stages]


def validate(items: list[Mapping]) -> list[dict]:
    """A PUT /api/stages body (already type-checked) -> the list to store,
    sorted by stage, with `probability` and `active` defaulted from the stage.

    Refuses (422, naming the item) an empty list, a stage defined twice, a
    label used twice (a UI picks stages by label) and more than MAX_STAGES.
    """
    if not items:
        raise InvalidFields.fields({"stages": "define at least one stage"})
    if len(items) > MAX_STAGES:
        raise InvalidFields.fields({"stages": f"at most {MAX_STAGES} stages"})
    seen_stage: dict[int, int] = {}
    seen_label: dict[str, int] = {}
    out = []
    for i, item in enumerate(items):
        stage, label = item["stage"], item["label"]
        if stage in seen_stage:
            raise InvalidFields.fields({f"{i}.stage": f"stage {stage} is defined twice "
                                                f"(also item {seen_stage[stage]})"})
        if label in seen_label:
            raise InvalidFields.fields({f"{i}.label": f"label {label} is used twice "
                                                f"(also item {seen_label[label]})"})
        seen_stage[stage] = i
        seen_label[label] = i
        probability = item.get("probability")
        active = item.get("active")
        out.append({
            "stage": stage,
            "label": label,
            "probability": stage if probability is None else probability,
            "active": default_active(stage) if active is None else active,
        })
    out.sort(key=lambda s: s["stage"])
    return out


def stage_numbers(stages: Iterable[Mapping]) -> list[int]:
    return [s["stage"] for s in stages]


def check_stage(stages: Iterable[Mapping], stage: int, field: str = "stage") -> None:
    """A customer's stage must be one of the defined stages (422 otherwise)."""
    numbers = stage_numbers(stages)
    if stage not in numbers:
        listed = ", ".join(str(n) for n in numbers)
        raise InvalidFields.fields({field: f"{stage} is not in the stage list ({listed})"})

