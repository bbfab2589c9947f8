"""Forecast rules as plain functions (problem 6: 销售目标拍脑袋): no I/O, no
clock (callers pass every time in), the standard library only.

`stages` (the stage list and its probabilities), `pipeline` (counts, weighted
value and the forecast of next month's 隐形业绩), `deals` (the read model built
from customer events), `history` (stage history and the calibrated
probabilities), `backtest`, `weeks` (the trend snapshots' week key); `errors`
holds the error types, limits and exact-number helpers they share.
"""

from __future__ import annotations

from services.forecast.domain.backtest import (  # noqa: F401
    backtest,
)
from services.forecast.domain.deals import (  # noqa: F401
    DEAL_EVENTS,
    apply_deal_event,
    event_clock,
    new_deal_state,
)
from services.forecast.domain.errors import (  # noqa: F401
    DEFAULT_PRIOR_WEIGHT,
    DEFAULT_TZ,
    LOST_STAGE,
    METHOD,
    MIN_ACTIVE,
    ORPHAN_POLICIES,
    WON_STAGE,
    EventError,
    ForecastError,
    StageError,
)
from services.forecast.domain.history import (  # noqa: F401
    calibrate,
    calibration_row,
    group_history,
    history_entry,
    merge_history,
)
from services.forecast.domain.pipeline import (  # noqa: F401
    pipeline,
    pipeline_from_counts,
    scope_key,
    stage_counts,
)
from services.forecast.domain.stages import (  # noqa: F401
    DEFAULT_STAGES,
    apply_stages_event,
    default_stages,
    normalize_stages,
)
from services.forecast.domain.weeks import (  # noqa: F401
    week_key,
    week_start,
)

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
    "apply_deal_event",
    "apply_stages_event",
    "backtest",
    "calibrate",
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
    "stage_counts",
    "week_key",
    "week_start",
    "yuan_to_fen",
]
