"""Weekly forecast snapshots (the trend): what is stored (money in integer fen
only) and what GET /api/forecast/history shows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from services.common.clock import iso
from services.common.money import fen_to_yuan, yuan_to_fen
from services.forecast.readmodel import jsonable


def snapshot_doc(scope_key: str, week: str, week_start: datetime, taken_at: datetime,
                 figures: Mapping[str, Any]) -> dict[str, Any]:
    """The stored snapshot of ``forecast_figures``: money in integer fen only."""
    return {
        "scope": scope_key, "week": week, "week_start": week_start, "taken_at": taken_at,
        "forecast_fen": int(figures["forecast_fen"]),
        "calibrated_fen": int(figures["calibrated"]["forecast_fen"]),
        "active_count": figures["active_count"], "min_active": figures["min_active"],
        "reliable": figures["reliable"],
        "stages": [{"stage": r["stage"], "count": r["count"],
                    "value_fen": yuan_to_fen(r["value"], "value"),
                    "weighted_fen": yuan_to_fen(r["weighted"], "weighted")}
                   for r in figures["stages"]],
    }


def _snapshot_fen(doc: Mapping[str, Any], fen_key: str, yuan_key: str) -> int:
    fen = doc.get(fen_key)
    if isinstance(fen, int) and not isinstance(fen, bool):
        return fen
    # snapshots taken before money was stored in fen hold float yuan: read
    # through its shortest repr, the 2-decimal figure it was made from
    yuan = doc[yuan_key]
    amount = Decimal(repr(yuan)) if isinstance(yuan, float) else Decimal(str(yuan))
    return int(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP).scaleb(2))


def snapshot_out(doc: Mapping[str, Any]) -> dict[str, Any]:
    """One item of the forecast history (money as yuan numbers), from a
    snapshot of any age."""
    money = {}
    for out_key, fen_key, yuan_key in (("forecast", "forecast_fen", "forecast"),
                                       ("calibrated_forecast", "calibrated_fen",
                                        "calibrated_forecast")):
        money[out_key] = jsonable(fen_to_yuan(_snapshot_fen(doc, fen_key, yuan_key),
                                                     allow_negative=True))
    return {
        "week": doc["week"], "week_start": iso(doc["week_start"]),
        "taken_at": iso(doc["taken_at"]), **money,
        "active_count": doc["active_count"], "min_active": doc["min_active"],
        "reliable": doc["reliable"],
    }
