"""Weekly forecast snapshots (services/forecast/readmodel.py): money is stored
as integer fen, and the history shows the same yuan figures as the forecast
it was taken from, also for snapshots stored before that (float yuan)."""

from datetime import UTC, datetime

from services.forecast import readmodel, snapshots

MONDAY = datetime(2024, 5, 5, 16, 0, tzinfo=UTC)  # 00:00 on Monday in Shanghai
TAKEN = datetime(2024, 5, 6, 0, 30, tzinfo=UTC)
# 张伟's pipeline: {stage: (deals, value in fen)}, with cents that a float would blur
PIPE = {25: (3, 1_234_567), 50: (2, 99_999), 75: (1, 3_333_333), 10: (4, 500_000)}
CAL = {25: (4, 1), 50: (2, 1), 75: (3, 2), 90: (1, 1)}
ARGS = (PIPE, CAL, 9, None, 14, 10)


def floats_in(value, path="doc"):
    if isinstance(value, float):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in floats_in(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in floats_in(v, f"{path}[{i}]")]
    return []


def snapshot():
    figures = readmodel.forecast_figures(*ARGS)
    return snapshots.snapshot_doc("owner:u-zhangwei", "2024-W19", MONDAY, TAKEN, figures)


def test_a_snapshot_stores_money_as_integer_fen_only():
    doc = snapshot()
    assert floats_in(doc) == []
    # 1,234,567 x 25 % + 99,999 x 50 % + 3,333,333 x 75 % = 2,858,641 fen
    assert doc["forecast_fen"] == 2_858_641
    assert isinstance(doc["calibrated_fen"], int)
    by_stage = {r["stage"]: r for r in doc["stages"]}
    assert by_stage[25] == {"stage": 25, "count": 3, "value_fen": 1_234_567,
                            "weighted_fen": 308_642}  # 308,641.75 rounded once, half up
    assert by_stage[50]["value_fen"] == 99_999 and by_stage[50]["weighted_fen"] == 50_000
    assert (doc["active_count"], doc["min_active"], doc["reliable"]) == (6, 14, False)


def test_history_shows_the_yuan_of_the_forecast_it_was_taken_from():
    view = readmodel.forecast_view(*ARGS)
    item = snapshots.snapshot_out(snapshot())
    assert item == {
        "week": "2024-W19", "week_start": "2024-05-05T16:00:00+00:00",
        "taken_at": "2024-05-06T00:30:00+00:00",
        "forecast": view["forecast"], "calibrated_forecast": view["calibrated"]["forecast"],
        "active_count": 6, "min_active": 14, "reliable": False,
    }
    assert item["forecast"] == 28_586.41
    whole = snapshots.snapshot_out({**snapshot(), "forecast_fen": 1_000_000})
    assert whole["forecast"] == 10_000 and isinstance(whole["forecast"], int)


def test_snapshots_stored_as_float_yuan_are_read_alike():
    view = readmodel.forecast_view(*ARGS)
    legacy = {  # what the weekly timer stored before money went to fen
        "scope": "owner:u-zhangwei", "week": "2024-W19", "week_start": MONDAY,
        "taken_at": TAKEN, "forecast": view["forecast"], "forecast_fen": view["forecast_fen"],
        "calibrated_forecast": view["calibrated"]["forecast"],
        "active_count": 6, "min_active": 14, "reliable": False,
        "stages": [{k: r[k] for k in ("stage", "count", "value", "weighted")}
                   for r in view["stages"]],
    }
    assert isinstance(legacy["calibrated_forecast"], float)
    assert snapshots.snapshot_out(legacy) == snapshots.snapshot_out(snapshot())
    older = {k: v for k, v in legacy.items() if k != "forecast_fen"}
    assert snapshots.snapshot_out(older)["forecast"] == 28_586.41
    assert snapshots.snapshot_out({**older, "forecast": 0.1 + 0.2})["forecast"] == 0.3
