"""The default pipeline stages (跟踪阶段): integer percent, Chinese and
English labels, probability equal to the stage, active from 25 to 90 %.

Customers owns the live list (and starts from this one); forecast keeps a copy
from `StagesChanged` and uses this one until the first event arrives.
"""

from __future__ import annotations

DEFAULT_STAGES: tuple[tuple[int, str, str], ...] = (
    (0, "潜在客户", "Prospect"),
    (10, "意向客户", "Interested"),
    (25, "愿意试样", "Willing to sample"),
    (50, "认可样品", "Sample approved"),
    (75, "接受报价", "Quote accepted"),
    (90, "签订合同", "Contract signed"),
    (100, "稳定客户", "Stable customer"),
)
ACTIVE_FROM, ACTIVE_TO = 25, 90


def default_active(stage: int) -> bool:
    """The stages the forecast counts as active by default."""
    return ACTIVE_FROM <= stage <= ACTIVE_TO
