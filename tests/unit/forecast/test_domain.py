"""Unit tests of the forecast domain: pure functions, no broker, no database."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from services.common.money import MoneyError, fen_to_yuan, yuan_to_fen
from services.forecast.domain import (
    DEFAULT_STAGES,
    METHOD,
    MIN_ACTIVE,
    EventError,
    ForecastError,
    StageError,
    apply_deal_event,
    apply_stages_event,
    backtest,
    calibrate,
    default_stages,
    group_history,
    history_entry,
    merge_history,
    new_deal_state,
    normalize_stages,
    pipeline,
    pipeline_from_counts,
    scope_key,
    stage_counts,
    week_key,
    week_start,
)
from tests.unit.forecast.oracle import aggregate_deals, apply_deltas, counts_for_scope, deal_delta

SHANGHAI = ZoneInfo("Asia/Shanghai")
YUAN = 100  # fen


def deals_at(stage: int, n: int, yuan: int = 10_000, status: str = "active", **extra) -> list[dict]:
    return [{"stage": stage, "value_fen": yuan * YUAN, "status": status, **extra} for _ in range(n)]


def walk(obj):
    yield obj
    if isinstance(obj, dict):
        for v in obj.values():
            yield from walk(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from walk(v)


def sh(*args) -> datetime:
    """A time in Asia/Shanghai."""
    return datetime(*args, tzinfo=SHANGHAI)


# --------------------------------------------------------------------------
# stages


def test_default_stages_are_the_briefs_seven():
    assert [s["stage"] for s in DEFAULT_STAGES] == [0, 10, 25, 50, 75, 90, 100]
    assert [s["label"] for s in DEFAULT_STAGES] == [
        "潜在客户",
        "意向客户",
        "愿意试样",
        "认可样品",
        "接受报价",
        "签订合同",
        "稳定客户",
    ]
    assert [s["active"] for s in DEFAULT_STAGES] == [False, False, True, True, True, True, False]
    for s in DEFAULT_STAGES:
        assert isinstance(s["probability"], Decimal)
        assert s["probability"] == Decimal(s["stage"]) / 100
    assert normalize_stages(None) == default_stages()
    copy = default_stages()
    copy[0]["label"] = "changed"
    assert DEFAULT_STAGES[0]["label"] == "潜在客户"


def test_normalize_stages_accepts_percent_or_fraction_and_sorts():
    stages = normalize_stages(
        [
            {"stage": 60, "label": "报价", "probability": Decimal("0.55")},
            {"stage": 30, "label": "试样", "probability": 30},
            {"stage": 0, "label": "潜在", "probability": "0"},
            {"stage": 100, "label": "成交", "active": False},
        ]
    )
    assert [s["stage"] for s in stages] == [0, 30, 60, 100]
    assert [s["probability"] for s in stages] == [0, Decimal("0.3"), Decimal("0.55"), 1]
    assert [s["active"] for s in stages] == [False, True, True, False]


@pytest.mark.parametrize(
    "stages, field",
    [
        ([], "stages"),
        ("0,10,25", "stages"),
        ([{"stage": 10, "label": "a"}, {"stage": 10, "label": "b"}], "stages[1].stage"),
        ([{"stage": 101, "label": "a"}], "stages[0].stage"),
        ([{"stage": True, "label": "a"}], "stages[0].stage"),
        ([{"stage": 25.0, "label": "a"}], "stages[0].stage"),
        ([{"stage": 25, "label": " "}], "stages[0].label"),
        ([{"stage": 25, "label": "a", "probability": Decimal("1.5")}], "stages[0].probability"),
        ([{"stage": 25, "label": "a", "probability": 150}], "stages[0].probability"),
        ([{"stage": 25, "label": "a", "probability": True}], "stages[0].probability"),
        ([{"stage": 25, "label": "a", "probability": "NaN"}], "stages[0].probability"),
        ([{"stage": 25, "label": "a", "active": "yes"}], "stages[0].active"),
    ],
)
def test_normalize_stages_rejects_with_the_field(stages, field):
    with pytest.raises(StageError) as info:
        normalize_stages(stages)
    assert info.value.field == field
    assert field in info.value.fields


# --------------------------------------------------------------------------
# money


@pytest.mark.parametrize(
    "value, fen",
    [
        (10_000, 1_000_000),
        (0, 0),
        ("10000", 1_000_000),
        (" 12345.67 ", 1_234_567),
        ("1.230", 123),
        (Decimal("0.01"), 1),
        (Decimal("-0"), 0),
        (10000.5, 1_000_050),
        (0.1, 10),
        ("1e3", 100_000),
        ("92233720368547758.07", 2**63 - 1),
    ],
)
def test_yuan_to_fen_accepts(value, fen):
    result = yuan_to_fen(value)
    assert result == fen and type(result) is int


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        -1,
        "-0.01",
        Decimal("-5"),
        "1.234",
        Decimal("0.001"),
        0.1 + 0.2,
        float("nan"),
        "NaN",
        Decimal("sNaN"),
        "Infinity",
        float("inf"),
        "",
        "abc",
        "10,000",
        [10],
        "92233720368547758.08",
        "1e30",
    ],
)
def test_yuan_to_fen_rejects(value):
    with pytest.raises(MoneyError):
        yuan_to_fen(value)


def test_fen_to_yuan_has_exactly_two_decimals():
    assert fen_to_yuan(1_000_000) == Decimal("10000")
    assert str(fen_to_yuan(1_000_000)) == "10000.00"
    assert str(fen_to_yuan(0)) == "0.00"
    assert str(fen_to_yuan(5)) == "0.05"
    assert str(fen_to_yuan(2**63 - 1)) == "92233720368547758.07"
    assert str(fen_to_yuan(-150, allow_negative=True)) == "-1.50"
    for bad in (True, 1.0, "100", Decimal(100), None):
        with pytest.raises(MoneyError):
            fen_to_yuan(bad)
    with pytest.raises(MoneyError):
        fen_to_yuan(-1)


def test_money_round_trips():
    rng = random.Random(11)
    for _ in range(500):
        fen = rng.randint(0, 2**63 - 1) if rng.random() < 0.5 else rng.randint(0, 10**6)
        yuan = fen_to_yuan(fen)
        assert yuan_to_fen(yuan) == fen
        assert yuan_to_fen(str(yuan)) == fen


# --------------------------------------------------------------------------
# pipeline


def api_example_deals() -> list[dict]:
    deals = []
    for stage, n in zip([0, 10, 25, 50, 75, 90], [60, 50, 40, 30, 20, 10], strict=True):
        deals += deals_at(stage, n)
    return deals


def test_api_example_gives_490000_yuan_reliable():
    result = pipeline(api_example_deals())
    assert result["forecast"] == Decimal("490000")
    assert str(result["forecast"]) == "490000.00"
    assert result["forecast_fen"] == 49_000_000
    assert result["active_count"] == 100
    assert result["min_active"] == MIN_ACTIVE == 14
    assert result["reliable"] is True
    rows = {r["stage"]: r for r in result["stages"]}
    assert [r["stage"] for r in result["stages"]] == [0, 10, 25, 50, 75, 90, 100]
    assert {s: r["count"] for s, r in rows.items()} == {
        0: 60,
        10: 50,
        25: 40,
        50: 30,
        75: 20,
        90: 10,
        100: 0,
    }
    assert rows[25]["value"] == Decimal("400000") and rows[25]["weighted"] == Decimal("100000")
    assert rows[50]["weighted"] == Decimal("150000")
    assert rows[75]["weighted"] == Decimal("150000")
    assert rows[90]["weighted"] == Decimal("90000")
    assert rows[50]["probability"] == Decimal("0.5")
    # without any history, the calibrated forecast is the prior alone
    assert result["calibrated"]["forecast"] == Decimal("490000")
    assert result["calibrated"]["method"] == METHOD == "beta-shrinkage"
    assert result["calibrated"]["sample_size"] == 0
    assert result["unstaged"]["count"] == 0 and result["remapped"] == []
    assert not any(isinstance(x, float) for x in walk(result))


@pytest.mark.parametrize("active, reliable", [(13, False), (14, True), (15, True)])
def test_reliable_from_14_active_customers(active, reliable):
    # many customers in the inactive stages do not make a forecast reliable
    deals = deals_at(0, 50) + deals_at(10, 50) + deals_at(100, 50)
    stages_cycle = [25, 50, 75, 90]
    deals += [d for i in range(active) for d in deals_at(stages_cycle[i % 4], 1)]
    result = pipeline(deals)
    assert result["active_count"] == active
    assert result["reliable"] is reliable


def test_min_active_is_configurable_and_validated():
    assert pipeline(deals_at(50, 3), min_active=3)["reliable"] is True
    assert pipeline(deals_at(50, 3), min_active=4)["reliable"] is False
    for bad in (-1, True, 1.5, "14"):
        with pytest.raises(ForecastError):
            pipeline([], min_active=bad)


def test_only_active_status_counts():
    deals = deals_at(50, 10) + deals_at(50, 7, status="pool") + deals_at(75, 4, status="abandoned")
    result = pipeline(deals)
    assert result["active_count"] == 10
    assert result["forecast"] == Decimal("50000")
    assert {r["stage"]: r["count"] for r in result["stages"]}[75] == 0


def test_arithmetic_is_exact_and_rounded_once():
    # 1 fen at 25 % and 1 fen at 50 %: rows 0.25 and 0.5 fen, total 0.75 fen -> 1 fen
    result = pipeline([{"stage": 25, "value_fen": 1}, {"stage": 50, "value_fen": 1}])
    assert result["forecast_fen"] == 1 and result["forecast"] == Decimal("0.01")
    # large amounts are not spoiled by binary floating point
    big = 123_456_789_012_345_67
    result = pipeline([{"stage": 90, "value_fen": big}])
    assert result["forecast_fen"] == (big * 9 + 5) // 10
    # one fen at 10 % in an inactive stage: shown weighted, not in the forecast
    result = pipeline([{"stage": 10, "value_fen": 3}])
    assert result["forecast_fen"] == 0


def test_pipeline_rejects_bad_deal_values():
    for bad in (
        {"stage": 50, "value_fen": 1.5},
        {"stage": 50, "value_fen": -1},
        {"stage": "50", "value_fen": 1},
        {"stage": 50, "value_fen": True},
    ):
        with pytest.raises(ForecastError):
            pipeline([bad])


# --------------------------------------------------------------------------
# stage redefinition

NEW_STAGES = [
    {"stage": 0, "label": "潜在"},
    {"stage": 20, "label": "意向"},
    {"stage": 40, "label": "试样"},
    {"stage": 60, "label": "认可"},
    {"stage": 80, "label": "签约"},
    {"stage": 100, "label": "稳定"},
]


def test_removed_stages_map_to_the_nearest_lower_stage():
    deals = (
        deals_at(10, 2)
        + deals_at(25, 3)
        + deals_at(50, 4)
        + deals_at(60, 1)
        + deals_at(75, 5)
        + deals_at(90, 6)
        + deals_at(100, 1)
        + [{"stage": None, "value_fen": 500, "status": "active"}]
    )
    result = pipeline(deals, NEW_STAGES)
    counts = {r["stage"]: r["count"] for r in result["stages"]}
    assert counts == {0: 2, 20: 3, 40: 4, 60: 6, 80: 6, 100: 1}
    assert [(m["from_stage"], m["to_stage"], m["count"]) for m in result["remapped"]] == [
        (10, 0, 2),
        (25, 20, 3),
        (50, 40, 4),
        (75, 60, 5),
        (90, 80, 6),
    ]
    assert result["unstaged"] == {"count": 1, "value": Decimal("5.00"), "stages": []}
    # active: 40, 60, 80 (default rule 25..90)
    assert result["active_count"] == 4 + 6 + 6
    expected = Fraction(10_000 * YUAN) * (
        4 * Fraction(40, 100) + 6 * Fraction(60, 100) + 6 * Fraction(80, 100)
    )
    assert result["forecast_fen"] == expected


def test_exclude_policy_and_unmappable_orphans():
    deals = deals_at(25, 3) + deals_at(50, 2)
    result = pipeline(deals, NEW_STAGES, orphans="exclude")
    assert result["unstaged"]["count"] == 5 and result["unstaged"]["stages"] == [25, 50]
    assert result["active_count"] == 0 and result["forecast_fen"] == 0

    # below the lowest stage, and a won deal whose stage 100 was removed
    stages = [
        {"stage": 10, "label": "意向"},
        {"stage": 50, "label": "认可"},
        {"stage": 90, "label": "签约"},
    ]
    result = pipeline(deals_at(0, 2) + deals_at(100, 1) + deals_at(95, 1), stages)
    assert result["unstaged"]["count"] == 3
    assert result["unstaged"]["stages"] == [0, 100]
    assert {r["stage"]: r["count"] for r in result["stages"]}[90] == 1  # 95 -> 90
    with pytest.raises(ForecastError):
        pipeline([], orphans="nearest")


# --------------------------------------------------------------------------
# aggregates


def test_deal_delta_per_scope():
    a = {"stage": 25, "value_fen": 1000, "owner_id": "u1", "team_id": "t1", "status": "active"}
    assert deal_delta(None, a) == [
        ("company", 25, 1, 1000),
        ("owner:u1", 25, 1, 1000),
        ("team:t1", 25, 1, 1000),
    ]
    b = {**a, "stage": 50}
    assert deal_delta(a, b) == [
        ("company", 25, -1, -1000),
        ("company", 50, 1, 1000),
        ("owner:u1", 25, -1, -1000),
        ("owner:u1", 50, 1, 1000),
        ("team:t1", 25, -1, -1000),
        ("team:t1", 50, 1, 1000),
    ]
    c = {**b, "owner_id": "u2"}  # same team
    assert deal_delta(b, c) == [("owner:u1", 50, -1, -1000), ("owner:u2", 50, 1, 1000)]
    d = {**c, "value_fen": 1500}
    assert deal_delta(c, d) == [
        ("company", 50, 0, 500),
        ("owner:u2", 50, 0, 500),
        ("team:t1", 50, 0, 500),
    ]
    pooled = {**d, "owner_id": None, "team_id": None, "status": "pool"}
    assert deal_delta(d, pooled) == [
        ("company", 50, -1, -1500),
        ("owner:u2", 50, -1, -1500),
        ("team:t1", 50, -1, -1500),
    ]
    assert deal_delta(pooled, {**pooled, "stage": 75}) == []
    assert deal_delta(d, d) == []


def test_aggregates_follow_deltas_and_feed_the_pipeline():
    rng = random.Random(5)
    deals = []
    for i in range(200):
        deals.append(
            {
                "stage": rng.choice([0, 10, 25, 50, 75, 90, 100, 33]),
                "value_fen": rng.randint(0, 10**9),
                "owner_id": f"u{i % 7}",
                "team_id": f"t{i % 2}",
                "status": rng.choice(["active"] * 4 + ["pool"]),
            }
        )
    aggregates: dict = {}
    for d in deals:
        aggregates = apply_deltas(aggregates, deal_delta(None, d))
    assert aggregates == aggregate_deals(deals)
    for d in deals:
        aggregates = apply_deltas(aggregates, deal_delta(d, None))
    assert aggregates == {}

    aggregates = aggregate_deals(deals)
    assert pipeline_from_counts(counts_for_scope(aggregates, "company")) == pipeline(deals)
    mine = [d for d in deals if d["owner_id"] == "u3"]
    assert pipeline_from_counts(counts_for_scope(aggregates, scope_key("owner", "u3"))) == pipeline(
        mine
    )
    team = [d for d in deals if d["owner_id"] in ("u1", "u3")]
    assert pipeline_from_counts(counts_for_scope(aggregates, "owner:u1", "owner:u3")) == pipeline(
        team
    )
    assert counts_for_scope(aggregates, "team:t0") == stage_counts(
        d for d in deals if d["team_id"] == "t0"
    )


def test_apply_deltas_refuses_negative_cells():
    with pytest.raises(ForecastError):
        apply_deltas({}, [("company", 50, -1, -100)])
    with pytest.raises(ForecastError):
        scope_key("region", "x")


# --------------------------------------------------------------------------
# read model events

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def ev(type_, customer_id="c1", minutes=0, version=None, event_id=None, **payload) -> dict:
    event = {
        "type": type_,
        "event_id": event_id or str(uuid.uuid4()),
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "customer_id": customer_id,
        **payload,
    }
    if version is not None:
        event["version"] = version
    return event


def fold(events, state=None):
    for e in events:
        state = apply_deal_event(state, e) or state
    return state


def created(**kw):
    payload = {"stage": 25, "expected_value_fen": 1_000_000, "owner_id": "u1", "team_id": "t1"}
    payload.update(kw)
    return ev("CustomerCreated", **payload)


def test_created_stage_changed_and_money_in_yuan():
    s = apply_deal_event(None, created(version=1))
    assert (s["stage"], s["value_fen"], s["owner_id"], s["team_id"], s["status"]) == (
        25,
        1_000_000,
        "u1",
        "t1",
        "active",
    )
    assert s["version"] == 1
    s2 = apply_deal_event(
        s,
        ev(
            "StageChanged",
            minutes=5,
            version=2,
            expected_value="12345.67",
            owner_id="u1",
            **{"from": 25, "to": 50},
        ),
    )
    assert s2["stage"] == 50 and s2["value_fen"] == 1_234_567 and s2["version"] == 2
    assert s["stage"] == 25  # the input is not modified
    assert s2["updated_at"] == "2024-03-01T09:05:00.000000Z"


def test_duplicate_event_leaves_state_unchanged():
    e = created()
    s = apply_deal_event(None, e)
    assert apply_deal_event(s, e) is None
    assert apply_deal_event(s, dict(e)) is None


def test_older_event_after_newer_does_not_roll_back():
    s = fold(
        [created(version=1), ev("StageChanged", minutes=10, version=3, **{"from": 50, "to": 75})]
    )
    late = ev("StageChanged", minutes=5, version=2, **{"from": 25, "to": 50})
    assert apply_deal_event(s, late) is None
    assert s["stage"] == 75


def test_late_event_still_fills_what_no_newer_event_wrote():
    amended = ev("CustomerAmended", minutes=10, version=3, changes={"expected_value_fen": 7})
    moved = ev(
        "StageChanged", minutes=5, version=2, expected_value_fen=1_000_000, **{"from": 25, "to": 50}
    )
    first = created(version=1)
    in_order = fold([first, moved, amended])
    reordered = fold([first, amended, moved])
    assert in_order == reordered
    assert (in_order["stage"], in_order["value_fen"]) == (50, 7)


def test_version_beats_skewed_clocks_and_time_orders_without_version():
    # version 3 was stamped by a machine whose clock is 1 hour behind
    a = ev("StageChanged", minutes=60, version=2, **{"from": 25, "to": 50})
    b = ev("StageChanged", minutes=0, version=3, **{"from": 50, "to": 75})
    assert fold([created(version=1, minutes=-100), a, b])["stage"] == 75
    assert fold([created(version=1, minutes=-100), b, a])["stage"] == 75
    # without a version occurred_at orders; equal times are ordered by event_id
    c = ev("StageChanged", minutes=5, event_id="a" * 8, **{"from": 25, "to": 50})
    d = ev("StageChanged", minutes=5, event_id="b" * 8, **{"from": 25, "to": 90})
    assert fold([created(), c, d])["stage"] == fold([created(), d, c])["stage"] == 90


def test_events_before_creation_and_unknown_types():
    s = apply_deal_event(None, ev("StageChanged", minutes=5, **{"from": 25, "to": 50}))
    assert s["stage"] == 50 and s["owner_id"] is None
    s = apply_deal_event(s, created())  # created arrives late: fills owner and value only
    assert (s["stage"], s["owner_id"], s["value_fen"]) == (50, "u1", 1_000_000)
    assert apply_deal_event(s, ev("AlarmRaised")) is None
    assert apply_deal_event(None, ev("CustomerAmended", changes={"address": "深圳"})) is None


def test_abandon_and_claim_from_the_pool():
    s = fold([created(), ev("CustomerAbandoned", minutes=5)])
    assert (s["status"], s["owner_id"], s["team_id"]) == ("pool", None, None)
    s = fold([ev("OwnerChanged", minutes=9, new_owner_id="u7", new_team_id="t2")], s)
    assert (s["status"], s["owner_id"], s["team_id"]) == ("active", "u7", "t2")
    # a reassignment without a team keeps the team; a null owner is the pool
    s = fold([ev("OwnerChanged", minutes=10, new_owner_id="u8")], s)
    assert (s["owner_id"], s["team_id"]) == ("u8", "t2")
    s = fold([ev("OwnerChanged", minutes=11, new_owner_id=None)], s)
    assert (s["status"], s["owner_id"], s["team_id"]) == ("pool", None, None)


def test_context_owner_null_does_not_clear_the_owner():
    s = fold([created(), ev("StageChanged", minutes=3, owner_id=None, **{"from": 25, "to": 50})])
    assert s["owner_id"] == "u1" and s["stage"] == 50


@pytest.mark.parametrize(
    "event",
    [
        {
            "type": "StageChanged",
            "customer_id": "c1",
            "occurred_at": "2024-03-01T00:00:00Z",
            "to": 50,
        },
        {
            "type": "StageChanged",
            "customer_id": "c1",
            "event_id": "e",
            "occurred_at": "yesterday",
            "to": 50,
        },
        {"type": "StageChanged", "customer_id": "c1", "event_id": "e", "to": 50},
        {"type": "StageChanged", "event_id": "e", "occurred_at": "2024-03-01T00:00:00Z", "to": 50},
        {
            "type": "StageChanged",
            "customer_id": "c1",
            "event_id": "e",
            "occurred_at": "2024-03-01T00:00:00Z",
            "to": 150,
        },
        {
            "type": "StageChanged",
            "customer_id": "c1",
            "event_id": "e",
            "occurred_at": "2024-03-01T00:00:00Z",
        },
        {
            "type": "StageChanged",
            "customer_id": "c1",
            "event_id": "e",
            "occurred_at": "2024-03-01T00:00:00Z",
            "to": 50,
            "version": "2",
        },
        {
            "type": "CustomerCreated",
            "customer_id": "c1",
            "event_id": "e",
            "occurred_at": "2024-03-01T00:00:00Z",
            "stage": 25,
            "expected_value": "1.234",
        },
        {
            "type": "CustomerCreated",
            "customer_id": "c1",
            "event_id": "e",
            "occurred_at": "2024-03-01T00:00:00Z",
            "stage": 25,
            "expected_value_fen": -5,
        },
        {
            "type": "CustomerCreated",
            "customer_id": "c1",
            "event_id": "e",
            "occurred_at": "2024-03-01T00:00:00Z",
            "stage": 25,
            "expected_value_fen": 1.0,
        },
        {
            "type": "OwnerChanged",
            "customer_id": "c1",
            "event_id": "e",
            "occurred_at": "2024-03-01T00:00:00Z",
        },
    ],
)
def test_malformed_events_raise_event_error(event):
    with pytest.raises(EventError):
        apply_deal_event(None, event)


def test_event_of_another_customer_is_refused():
    s = apply_deal_event(None, created())
    with pytest.raises(EventError):
        apply_deal_event(s, ev("StageChanged", customer_id="c2", **{"from": 25, "to": 50}))


def test_new_deal_state_is_empty():
    s = new_deal_state("c9")
    assert s["stage"] is None and s["status"] == "active" and set(s["clock"].values()) == {None}


def test_stages_event_last_writer_wins():
    first = {"event_id": "s1", "occurred_at": "2024-03-01T00:00:00Z", "stages": NEW_STAGES}
    second = {
        "event_id": "s2",
        "occurred_at": "2024-03-02T00:00:00Z",
        "stages": [{"stage": 0, "label": "潜在"}, {"stage": 100, "label": "稳定"}],
    }
    a = apply_stages_event(None, first)
    b = apply_stages_event(a, second)
    assert [s["stage"] for s in b["stages"]] == [0, 100]
    assert apply_stages_event(b, first) is None
    assert apply_stages_event(b, second) is None
    with pytest.raises(EventError):
        apply_stages_event(
            None,
            {
                "event_id": "s3",
                "occurred_at": "2024-03-03T00:00:00Z",
                "stages": [{"stage": 500, "label": "x"}],
            },
        )


# --------------------------------------------------------------------------
# property: duplicated, reordered and replayed events converge

STAGE_CHOICES = [0, 10, 25, 50, 75, 90, 100]
TEAM = {"u1": "t1", "u2": "t1", "u3": "t2", "u4": "t2"}


def scenario(rng: random.Random, mode: str, customers: int = 8):
    """Events of several customers in their true order, and the truth at the end.

    mode: "versioned", "unversioned" or "skewed" (versioned, random occurred_at)."""
    events, truth = [], {}
    for c in range(customers):
        cid = f"c{c}"
        t = T0 + timedelta(days=c)
        version = 0
        stage = rng.choice([0, 10, 25])
        value = rng.randint(0, 10**8)
        owner = rng.choice(list(TEAM))
        status = "active"

        def make(type_, cid=cid, **payload):
            nonlocal t, version
            version += 1
            e = {
                "type": type_,
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "customer_id": cid,
                **payload,
            }
            if mode == "skewed":
                e["occurred_at"] = (T0 + timedelta(minutes=rng.randint(0, 10**5))).isoformat()
            else:
                e["occurred_at"] = t.isoformat()
            if mode != "unversioned":
                e["version"] = version
            t += timedelta(minutes=rng.randint(1, 600))
            events.append(e)

        make(
            "CustomerCreated",
            stage=stage,
            expected_value_fen=value,
            owner_id=owner,
            team_id=TEAM[owner],
        )
        for _ in range(rng.randint(0, 10)):
            roll = rng.random()
            if status == "pool":
                if roll < 0.5:
                    owner, status = rng.choice(list(TEAM)), "active"
                    make("OwnerChanged", new_owner_id=owner, new_team_id=TEAM[owner])
                continue
            if roll < 0.45:
                new = rng.choice(STAGE_CHOICES)
                if rng.random() < 0.3:
                    value = rng.randint(0, 10**8)
                make(
                    "StageChanged",
                    expected_value_fen=value,
                    owner_id=owner,
                    **{"from": stage, "to": new},
                )
                stage = new
            elif roll < 0.65:
                value = rng.randint(0, 10**8)
                make("CustomerAmended", changes={"expected_value": str(fen_to_yuan(value))})
            elif roll < 0.85:
                owner = rng.choice(list(TEAM))
                make("OwnerChanged", new_owner_id=owner, new_team_id=TEAM[owner])
            else:
                status, owner = "pool", None
                make("CustomerAbandoned")
        truth[cid] = {
            "stage": stage,
            "value_fen": value,
            "owner_id": owner,
            "team_id": TEAM.get(owner),
            "status": status,
        }
    if mode == "skewed":
        # the true order is by version; put each customer's events in that order
        events.sort(key=lambda e: (e["customer_id"], e["version"]))
    return events, truth


def replay_all(events):
    states: dict = {}
    aggregates: dict = {}
    for e in events:
        before = states.get(e["customer_id"])
        after = apply_deal_event(before, e)
        if after is None:
            continue
        states[e["customer_id"]] = after
        aggregates = apply_deltas(aggregates, deal_delta(before, after))
    return states, aggregates


@pytest.mark.parametrize("mode", ["versioned", "unversioned", "skewed"])
def test_duplicated_reordered_replayed_events_give_the_same_numbers(mode):
    rng = random.Random(f"forecast-{mode}")
    for _ in range(8):
        events, truth = scenario(rng, mode)
        reference, ref_aggregates = replay_all(events)
        view = {
            cid: {k: s[k] for k in ("stage", "value_fen", "owner_id", "team_id", "status")}
            for cid, s in reference.items()
        }
        assert view == truth
        assert ref_aggregates == aggregate_deals(reference.values())
        ref_pipeline = pipeline(reference.values())
        for _ in range(15):
            noisy = events + rng.sample(events, k=len(events) // 2)  # at-least-once delivery
            rng.shuffle(noisy)
            noisy += rng.sample(events, k=min(5, len(events)))  # a replay after the fact
            states, aggregates = replay_all(noisy)
            assert states == reference
            assert aggregates == ref_aggregates
            assert pipeline_from_counts(counts_for_scope(aggregates, "company")) == ref_pipeline
            for owner in TEAM:
                scope = scope_key("owner", owner)
                assert counts_for_scope(aggregates, scope) == counts_for_scope(
                    ref_aggregates, scope
                )


# --------------------------------------------------------------------------
# history


def test_history_entries_from_events():
    e = ev(
        "StageChanged", version=4, expected_value_fen=500, owner_id="u1", **{"from": 25, "to": 50}
    )
    entry = history_entry(e)
    assert entry == {
        "event_id": e["event_id"],
        "customer_id": "c1",
        "at": "2024-03-01T09:00:00.000000Z",
        "version": 4,
        "kind": "stage",
        "from_stage": 25,
        "to_stage": 50,
        "value_fen": 500,
        "owner_id": "u1",
    }
    assert history_entry(created())["kind"] == "stage"
    assert history_entry(created())["from_stage"] is None
    assert history_entry(ev("CustomerAbandoned"))["kind"] == "abandoned"
    owner = history_entry(ev("OwnerChanged", new_owner_id=None))
    assert owner["kind"] == "owner" and owner["owner_id"] is None
    amended = history_entry(ev("CustomerAmended", changes={"expected_value_fen": 9}))
    assert amended["kind"] == "value" and amended["value_fen"] == 9
    restaged = history_entry(ev("CustomerAmended", changes={"stage": 75}, before={"stage": 50}))
    assert (restaged["kind"], restaged["from_stage"], restaged["to_stage"]) == ("stage", 50, 75)
    assert history_entry(ev("CustomerAmended", changes={"address": "x"})) is None
    assert history_entry(ev("AlarmRaised")) is None


def test_merge_history_is_idempotent_by_event_id():
    rng = random.Random(3)
    entries = [
        history_entry(ev("StageChanged", minutes=i, **{"from": 25, "to": 50})) for i in range(10)
    ]
    merged: list = []
    for e in entries:
        merged = merge_history(merged, e)
    for _ in range(20):
        noisy = entries + rng.sample(entries, 5)
        rng.shuffle(noisy)
        again: list = []
        for e in noisy:
            again = merge_history(again, e)
        assert again == merged
    assert len(merged) == 10
    assert merge_history(merged, None) == merged


def test_calibration_from_event_history_matches_tuples():
    events = [
        ev("CustomerCreated", "a", 0, stage=25, expected_value_fen=100, owner_id="u1"),
        ev("StageChanged", "a", 1, **{"from": 25, "to": 50}),
        ev("StageChanged", "a", 2, **{"from": 50, "to": 100}),
        ev("CustomerCreated", "b", 0, stage=50, expected_value_fen=100, owner_id="u1"),
        ev("CustomerAbandoned", "b", 3),
    ]
    flat = [history_entry(e) for e in events]
    t = T0
    tuples = {
        "a": [
            (t, None, 25, 100),
            (t + timedelta(minutes=1), 25, 50),
            (t + timedelta(minutes=2), 50, 100),
        ],
        "b": {"transitions": [(t, None, 50, 100)], "abandoned_at": t + timedelta(minutes=3)},
    }
    assert calibrate(flat) == calibrate(group_history(flat)) == calibrate(tuples)


# --------------------------------------------------------------------------
# calibration


def cal_row(result: dict, stage: int) -> dict:
    return next(r for r in result["stages"] if r["stage"] == stage)


def synthetic_history(rng: random.Random, n: int, win_rate: float) -> tuple[dict, int]:
    history, wins = {}, 0
    for i in range(n):
        t = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 300))
        entries = [(t, None, 25, 10_000 * YUAN), (t + timedelta(days=3), 25, 50)]
        if rng.random() < win_rate:
            wins += 1
            entries += [(t + timedelta(days=10), 50, 75), (t + timedelta(days=20), 75, 100)]
        elif rng.random() < 0.5:
            entries.append({"at": t + timedelta(days=8), "kind": "abandoned"})
        else:
            entries.append((t + timedelta(days=8), 50, 0))
        history[f"d{i}"] = entries
    return history, wins


def test_calibrated_probability_learns_a_known_win_rate():
    history, wins = synthetic_history(random.Random(30), 2000, 0.30)
    result = calibrate(history, prior_weight=10)
    row = cal_row(result, 50)
    assert row["sample_size"] == 2000 and row["wins"] == wins
    assert row["empirical"] == Decimal(wins) / 2000
    assert row["calibrated"] == Decimal(round((wins + 5) * 10_000 / 2010)) / 10_000
    assert abs(row["calibrated"] - Decimal("0.30")) <= Decimal("0.04")
    assert abs(cal_row(result, 25)["calibrated"] - Decimal("0.30")) <= Decimal("0.04")
    assert cal_row(result, 10)["sample_size"] == 0 and cal_row(result, 10)["empirical"] is None
    assert cal_row(result, 10)["calibrated"] == Decimal("0.1")
    assert result["sample_size"] == 2000 and result["method"] == "beta-shrinkage"


def test_little_history_stays_near_the_configured_probability():
    history = {
        "a": [(T0, None, 50), (T0 + timedelta(days=5), 50, 100)],
        "b": [(T0, None, 50), (T0 + timedelta(days=5), 50, 0)],
        "c": [(T0, None, 50), {"at": T0 + timedelta(days=5), "kind": "abandoned"}],
    }
    row = cal_row(calibrate(history, prior_weight=10), 50)
    assert row["sample_size"] == 3 and row["empirical"] == Decimal("0.3333")
    assert row["calibrated"] == Decimal("0.4615")  # (1 + 10 x 0.5) / (3 + 10)
    assert abs(row["calibrated"] - Decimal("0.5")) <= Decimal("0.1")
    # the worst case with 3 deals moves p0 by at most n / (n + w) x max(p0, 1 - p0)
    for outcome, p0 in ((100, Decimal("0.5")), (0, Decimal("0.5")), (100, Decimal("0.25"))):
        stage = 50 if p0 == Decimal("0.5") else 25
        extreme = {k: [(T0, None, stage), (T0 + timedelta(days=1), stage, outcome)] for k in "abc"}
        p = cal_row(calibrate(extreme, prior_weight=10), stage)["calibrated"]
        assert abs(p - p0) <= Decimal(3) / 13 * max(p0, 1 - p0) + Decimal("0.00005")


def test_censoring_and_stage_passage():
    history = {
        # open deals are not in the sample
        "open": [(T0, None, 50), (T0 + timedelta(days=1), 50, 75)],
        # skipped 50 and 75: only in 25's, 90's and 100's sample
        "jump": [
            (T0, None, 25),
            (T0 + timedelta(days=1), 25, 90),
            (T0 + timedelta(days=2), 90, 100),
        ],
        # lost at 0 after 50, the 0 it fell to is not a stage it was "in"
        "lost": [(T0, None, 10), (T0 + timedelta(days=1), 10, 50), (T0 + timedelta(days=2), 50, 0)],
        # abandoned, then claimed and moved on: open again
        "back": [
            (T0, None, 50),
            {"at": T0 + timedelta(days=1), "kind": "abandoned"},
            {"at": T0 + timedelta(days=2), "kind": "owner", "owner_id": "u2"},
        ],
    }
    result = calibrate(history, prior_weight=0)
    sizes = {r["stage"]: (r["sample_size"], r["wins"]) for r in result["stages"]}
    assert sizes == {
        0: (0, 0),
        10: (1, 0),
        25: (1, 1),
        50: (1, 0),
        75: (0, 0),
        90: (1, 1),
        100: (1, 1),
    }
    assert result["sample_size"] == 2
    # with prior weight 0 the calibrated probability is the empirical one (or p0 without data)
    assert cal_row(result, 50)["calibrated"] == 0 and cal_row(result, 75)["calibrated"] == Decimal(
        "0.75"
    )
    # as_of: only what happened strictly before counts
    early = calibrate(history, prior_weight=0, as_of=T0 + timedelta(days=2))
    assert early["sample_size"] == 1  # "back" is lost then, "jump" and "lost" still open
    assert cal_row(early, 50)["sample_size"] == 1 and cal_row(early, 50)["wins"] == 0


def test_calibration_maps_removed_stages_like_the_pipeline():
    history = {"a": [(T0, None, 30), (T0 + timedelta(days=1), 30, 100)]}
    stages = [{"stage": 0, "label": "a"}, {"stage": 25, "label": "b"}, {"stage": 100, "label": "c"}]
    assert cal_row(calibrate(history, stages), 25)["sample_size"] == 1
    assert cal_row(calibrate(history, stages, orphans="exclude"), 25)["sample_size"] == 0


def test_pipeline_uses_the_calibration_as_shown():
    history, _ = synthetic_history(random.Random(7), 300, 0.2)
    calibration = calibrate(history)
    deals = deals_at(50, 10) + deals_at(75, 4)
    result = pipeline(deals, calibration=calibration)
    p50, p75 = cal_row(calibration, 50)["calibrated"], cal_row(calibration, 75)["calibrated"]
    expected = 10 * 10_000 * p50 + 4 * 10_000 * p75
    assert result["calibrated"]["forecast"] == expected.quantize(Decimal("0.01"))
    assert result["calibrated"]["sample_size"] == 300
    assert result["forecast"] == Decimal("80000")  # configured: 50000 + 30000


@pytest.mark.parametrize("weight", [-1, True, None, "10", float("nan")])
def test_prior_weight_is_validated(weight):
    with pytest.raises(ForecastError):
        calibrate({}, prior_weight=weight)


def test_bad_history_is_refused():
    for bad in (
        {"a": [(T0, None)]},
        {"a": [{"at": T0, "kind": "won"}]},
        {"a": [("not a time", None, 50)]},
        {"a": [(T0, None, 150)]},
    ):
        with pytest.raises(ForecastError):
            calibrate(bad)


# --------------------------------------------------------------------------
# backtest


def base_history() -> dict:
    return {
        # won in January (before the first cut-off): a sample for stage 50
        "D": [(sh(2023, 12, 1), None, 50, 10_000 * YUAN), (sh(2024, 1, 15), 50, 100)],
        # open at the end of January, won in February
        "A": [(sh(2024, 1, 5), None, 50, 100_000 * YUAN), (sh(2024, 2, 10), 50, 100)],
        # open until won in March
        "B": [(sh(2024, 1, 6), None, 75, 20_000 * YUAN), (sh(2024, 3, 5), 75, 100)],
        # abandoned in January
        "C": {
            "transitions": [(sh(2024, 1, 10), None, 25, 40_000 * YUAN)],
            "abandoned_at": sh(2024, 1, 20),
        },
    }


def test_backtest_numbers_and_metrics():
    result = backtest(base_history(), None, [date(2024, 1, 31), date(2024, 2, 29)], 10)
    feb, mar = result["months"]
    assert feb["month"] == "2024-02"
    assert (
        feb["cutoff"] == "2024-02-01T00:00:00+08:00" and feb["end"] == "2024-03-01T00:00:00+08:00"
    )
    assert feb["open_active"] == 2 and feb["sample_size"] == 2
    assert feb["configured"] == Decimal("65000")  # 100000 x 0.5 + 20000 x 0.75
    assert feb["calibrated_probabilities"][50] == Decimal("0.5455")  # (1 + 5) / 11
    assert feb["calibrated_probabilities"][25] == Decimal("0.2273")  # (0 + 2.5) / 11
    assert feb["calibrated"] == Decimal("69550")  # 100000 x 0.5455 + 20000 x 0.75
    assert feb["actual"] == Decimal("100000") and feb["actual_from_pipeline"] == Decimal("100000")
    assert feb["error"] == {"configured": Decimal("-35000"), "calibrated": Decimal("-30450")}
    assert mar["month"] == "2024-03" and mar["sample_size"] == 3
    assert mar["configured"] == mar["calibrated"] == Decimal("15000")
    assert mar["actual"] == Decimal("20000")

    conf, cal = result["overall"]["configured"], result["overall"]["calibrated"]
    assert result["overall"]["months"] == 2
    assert conf == {
        "mae": Decimal("20000"),
        "bias": Decimal("-20000"),
        "wape": Decimal("0.3333"),
        "mape": Decimal("0.3"),
        "mape_months": 2,
    }
    assert cal == {
        "mae": Decimal("17725"),
        "bias": Decimal("-17725"),
        "wape": Decimal("0.2954"),
        "mape": Decimal("0.2773"),
        "mape_months": 2,
    }
    assert not any(isinstance(x, float) for x in walk(result))


def test_backtest_has_no_leakage():
    """A deal resolved after the month end cannot move that month's calibration."""
    won_later = base_history()
    won_later["E"] = [(sh(2024, 1, 8), None, 50, 50_000 * YUAN), (sh(2024, 2, 5), 50, 100)]
    lost_later = base_history()
    lost_later["E"] = {
        "transitions": [(sh(2024, 1, 8), None, 50, 50_000 * YUAN)],
        "abandoned_at": sh(2024, 2, 5),
    }
    months = [date(2024, 1, 31), date(2024, 2, 29)]
    a = backtest(won_later, None, months, 10)["months"]
    b = backtest(lost_later, None, months, 10)["months"]
    same = ("open_active", "configured", "calibrated", "sample_size", "calibrated_probabilities")
    assert {k: a[0][k] for k in same} == {k: b[0][k] for k in same}
    assert a[0]["actual"] == Decimal("150000") and b[0]["actual"] == Decimal("100000")
    # a month later both outcomes are known, and the calibrations differ
    assert a[1]["calibrated_probabilities"][50] != b[1]["calibrated_probabilities"][50]
    cutoff = sh(2024, 2, 1)
    assert calibrate(won_later, as_of=cutoff) == calibrate(lost_later, as_of=cutoff)
    # a win exactly at the cut-off belongs to the new month, not to the history
    at_cut = base_history()
    at_cut["F"] = [(sh(2024, 1, 8), None, 50, 1_000 * YUAN), (cutoff, 50, 100)]
    c = backtest(at_cut, None, months[:1], 10)["months"][0]
    assert c["sample_size"] == 2 and c["actual"] == Decimal("101000")
    assert c["calibrated_probabilities"][50] == a[0]["calibrated_probabilities"][50]


def test_backtest_month_windows_and_empty_input():
    history = {"x": [(sh(2024, 12, 5), None, 50, 100), (sh(2025, 1, 31, 23, 59), 50, 100)]}
    for month_end in (
        date(2024, 12, 31),
        date(2024, 12, 1),
        sh(2025, 1, 1),
        datetime(2024, 12, 31, 12, 0, tzinfo=UTC),
    ):
        m = backtest(history, None, [month_end])["months"][0]
        assert (m["month"], m["cutoff"], m["end"]) == (
            "2025-01",
            "2025-01-01T00:00:00+08:00",
            "2025-02-01T00:00:00+08:00",
        )
        assert m["actual"] == Decimal("1.00")
    # 2025-01-31 23:59 in Shanghai is 15:59 UTC: still January there
    empty = backtest({}, None, [])
    assert empty["overall"]["configured"]["mae"] is None and empty["months"] == []
    nothing_won = backtest({"y": [(sh(2024, 1, 2), None, 50, 100)]}, None, [date(2024, 1, 31)])
    assert nothing_won["overall"]["configured"]["mape"] is None
    assert nothing_won["overall"]["configured"]["wape"] is None
    assert nothing_won["overall"]["configured"]["mae"] == Decimal("0.50")
    with pytest.raises(ForecastError):
        backtest({}, None, ["2024-01-31"])
    with pytest.raises(ForecastError):
        backtest({}, None, [], tz="Mars/Olympus")


# --------------------------------------------------------------------------
# weekly snapshots


@pytest.mark.parametrize(
    "moment, monday",
    [
        (datetime(2024, 3, 3, 16, 30, tzinfo=UTC), sh(2024, 3, 4)),  # Mon 00:30 in Shanghai
        (datetime(2024, 3, 3, 15, 59, 59, tzinfo=UTC), sh(2024, 2, 26)),  # Sun 23:59:59
        (datetime(2024, 3, 3, 16, 0, 0, tzinfo=UTC), sh(2024, 3, 4)),  # Mon 00:00 exactly
        (datetime(2024, 3, 3, 16, 30), sh(2024, 3, 4)),  # naive = UTC
        (sh(2024, 3, 10, 23, 59), sh(2024, 3, 4)),
    ],
)
def test_week_start_is_monday_midnight_in_shanghai(moment, monday):
    start = week_start(moment)
    assert start == monday
    assert start.utcoffset() == timedelta(hours=8)
    assert (start.weekday(), start.hour, start.minute) == (0, 0, 0)


def test_week_key_and_other_zones():
    assert week_key(datetime(2024, 12, 29, 16, 0, tzinfo=UTC)) == "2025-W01"  # Mon 30 Dec
    assert week_key(datetime(2024, 12, 29, 15, 0, tzinfo=UTC)) == "2024-W52"
    assert week_start(datetime(2024, 3, 3, 16, 30, tzinfo=UTC), "UTC") == datetime(
        2024, 2, 26, tzinfo=ZoneInfo("UTC")
    )
    with pytest.raises(ForecastError):
        week_start(date(2024, 3, 3))
