"""forecast over real RabbitMQ and FerretDB: customers' events go through the
broker into the read model; the figures come back over RPC."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from kombu import Connection
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_hook

from services.common import clock
from services.common.config import ROOT
from services.common.errors import Forbidden, Invalid
from services.common.events import queue_name
from services.common.standalone import ServiceRpcClient
from services.forecast import domain, readmodel, storage
from services.forecast.service import ForecastService
from tests.unit.forecast import oracle
from tests.unit.forecast.test_service_readmodel import fold, random_events

ADMIN = {"id": "a0", "role": "admin", "team_id": None, "name": "管理员", "username": "admin"}
TEAM, OTHER_TEAM = "team_huanan", "team_huabei"
REP = {"id": "rep_zhangwei", "role": "rep", "team_id": TEAM, "name": "张伟", "username": "zw"}
REP2 = {"id": "rep_lina", "role": "rep", "team_id": TEAM, "name": "李娜", "username": "ln"}
MANAGER = {"id": "mgr_wang", "role": "manager", "team_id": TEAM, "name": "王经理",
           "username": "wang"}
YUAN = 100  # fen
COMPANIES = ["深圳市腾讯计算机系统有限公司", "北京小米科技有限责任公司", "上海恒通贸易有限公司",
             "广州市天河区宏达电子有限公司", "杭州海康威视数字技术股份有限公司"]
EVENT_TYPES = ("CustomerCreated", "CustomerAmended", "StageChanged", "StagesChanged",
               "OwnerChanged", "CustomerAbandoned")


class _Forecast:
    """The forecast RPC client, and the container behind it."""

    def __init__(self, client, container):
        self._client = client
        self.container = container

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.fixture
def forecast(container_factory, service_config):
    container = container_factory(ForecastService, service_config)
    container.start()
    with ServiceRpcClient("forecast") as client:
        yield _Forecast(client, container)


@pytest.fixture
def publish(forecast, service_config):
    dispatch = event_dispatcher()

    def send(event_type, payload):
        dispatch("customers", event_type, payload)

    return send


def drain(container, amqp_uri, timeout=120.0):
    """Wait until every forecast queue is empty and no handler is running
    (twice in a row: a message may be between the queue and a worker)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        while time.monotonic() < deadline:
            waiting = sum(channel.queue_declare(queue_name("customers", t, "forecast"),
                                                passive=True).message_count
                          for t in EVENT_TYPES)
            busy = any(getattr(ctx.entrypoint, "method_name", "").startswith("on_")
                       for ctx in list(container._worker_threads))
            quiet = quiet + 1 if not waiting and not busy else 0
            if quiet >= 3:
                return
            eventlet.sleep(0.05)
    raise AssertionError("the forecast queues did not drain in time")


_clock_minutes = iter(range(10**9))


def ev(customer_id, version, **payload) -> dict:
    at = datetime(2024, 5, 6, 1, 0, tzinfo=UTC) + timedelta(minutes=next(_clock_minutes))
    return {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(),
            "customer_id": customer_id, "version": version, **payload}


def created(customer_id, stage, yuan=10_000, owner=REP, version=1):
    return ev(customer_id, version, company_name=random.choice(COMPANIES),
              owner_id=owner["id"], team_id=owner["team_id"], stage=stage,
              expected_value_fen=yuan * YUAN, status="active", birthday=None,
              birthday_label=None, birthday_kind="birthday", referred_by=None,
              created_by=owner["id"])


def moved(customer_id, version, frm, to, yuan=10_000, owner=REP):
    return ev(customer_id, version, **{"from": frm}, to=to, expected_value_fen=yuan * YUAN,
              owner_id=owner["id"], team_id=owner["team_id"], changed_by=owner["id"], note=None)


def rows(figures):
    return {r["stage"]: r for r in figures["stages"]}


# --------------------------------------------------------------------------
# the API.md example, reliability


def test_the_api_example_through_the_broker(forecast, publish, service_config):
    n = 0
    for stage, count in zip([0, 10, 25, 50, 75, 90], [60, 50, 40, 30, 20, 10], strict=True):
        for _ in range(count):
            owner = REP if n % 2 else REP2
            publish("CustomerCreated", created(f"api{n:03d}", stage, owner=owner))
            n += 1
    drain(forecast.container, service_config["AMQP_URI"])
    company = forecast.get_forecast(ADMIN)
    assert company["scope"] == "company"
    assert company["forecast"] == 490000
    assert company["active_count"] == 100
    assert company["min_active"] == 14 and company["reliable"] is True
    assert [r["stage"] for r in company["stages"]] == [0, 10, 25, 50, 75, 90, 100]
    assert {s: (r["count"], r["value"]) for s, r in rows(company).items()} == {
        0: (60, 600000), 10: (50, 500000), 25: (40, 400000), 50: (30, 300000),
        75: (20, 200000), 90: (10, 100000), 100: (0, 0)}
    assert {s: r["weighted"] for s, r in rows(company).items() if r["active"]} == {
        25: 100000, 50: 150000, 75: 150000, 90: 90000}
    assert rows(company)[25]["probability"] == 0.25
    # no history yet: the calibrated forecast is the configured one, sample 0
    assert company["calibrated"]["forecast"] == 490000
    assert company["calibrated"]["method"] == "beta-shrinkage"
    assert company["calibrated"]["sample_size"] == 0
    # the manager's team is the same 210 customers; each rep has half
    assert forecast.get_forecast(MANAGER)["forecast"] == 490000
    mine, theirs = forecast.get_forecast(REP), forecast.get_forecast(REP2)
    assert mine["scope"] == "owner:rep_zhangwei"
    assert mine["active_count"] + theirs["active_count"] == 100
    assert mine["forecast"] + theirs["forecast"] == 490000
    assert forecast.get_forecast(ADMIN, {"team_id": OTHER_TEAM})["active_count"] == 0


def test_reliable_from_14_active_customers(forecast, publish, service_config):
    for i in range(13):
        publish("CustomerCreated", created(f"rel{i}", [25, 50, 75, 90][i % 4]))
    for i in range(20):  # prospects do not make a forecast reliable
        publish("CustomerCreated", created(f"pro{i}", [0, 10, 100][i % 3]))
    drain(forecast.container, service_config["AMQP_URI"])
    below = forecast.get_forecast(REP)
    assert (below["active_count"], below["reliable"]) == (13, False)
    publish("StageChanged", moved("pro1", 2, 10, 25))
    drain(forecast.container, service_config["AMQP_URI"])
    at = forecast.get_forecast(REP)
    assert (at["active_count"], at["reliable"]) == (14, True)
    assert at["forecast"] == below["forecast"] + 2500


# --------------------------------------------------------------------------
# at-least-once delivery


def owner_actor(owner_id):
    return {"id": owner_id, "role": "rep", "team_id": None, "name": "", "username": ""}


def expected_figures(events):
    docs, _ = fold(events)
    states = [readmodel.state_of(d) for d in docs.values()]
    aggregates = oracle.aggregate_deals(states)
    histories = {cid: d["history"] for cid, d in docs.items()}
    calibration = domain.calibrate(histories, prior_weight=10)
    company = readmodel.jsonable(domain.pipeline_from_counts(
        oracle.counts_for_scope(aggregates, "company"), calibration=calibration))
    return docs, aggregates, company


def test_duplicated_reordered_and_replayed_events_leave_the_same_numbers(
        forecast, publish, service_config, db_of):
    rng = random.Random(20240506)
    events = random_events(rng, deals=25)
    docs, aggregates, company = expected_figures(events)
    noisy = events + rng.sample(events, len(events) // 2)  # delivered twice
    rng.shuffle(noisy)  # in any order
    for e in noisy:
        publish(e["type"], {k: v for k, v in e.items() if k != "type"})
    drain(forecast.container, service_config["AMQP_URI"])

    def check():
        got = forecast.get_forecast(ADMIN)
        for key in ("stages", "active_count", "forecast", "reliable"):
            assert got[key] == company[key], key
        assert got["calibrated"]["forecast"] == company["calibrated"]["forecast"]
        assert got["calibrated"]["sample_size"] == company["calibrated"]["sample_size"] > 0
        for owner in ("u1", "u2", "u3", "u4"):
            mine = forecast.get_forecast(owner_actor(owner))
            want = domain.pipeline_from_counts(oracle.counts_for_scope(aggregates,
                                                                       f"owner:{owner}"))
            assert mine["forecast"] == readmodel.jsonable(want["forecast"])
            assert mine["active_count"] == want["active_count"]
        for team in ("t1", "t2"):
            want = domain.pipeline_from_counts(oracle.counts_for_scope(aggregates,
                                                                       f"team:{team}"))
            got_team = forecast.get_forecast(ADMIN, {"team_id": team})
            assert got_team["forecast"] == readmodel.jsonable(want["forecast"])
        stored = {d["_id"]: readmodel.state_of(d) for d in storage.iter_deals(db_of("forecast"))}
        assert stored == {cid: readmodel.state_of(d) for cid, d in docs.items()}

    check()
    # a replay of the whole stream after the fact changes nothing
    for e in events[::-1]:
        publish(e["type"], {k: v for k, v in e.items() if k != "type"})
    drain(forecast.container, service_config["AMQP_URI"])
    check()
    assert not list(storage.iter_deals(db_of("forecast"), {"pending": {"$exists": True}}))
    assert not list(db_of("forecast").rejected.find())
    # the markers of finished updates go with the next write or the sweeper
    with entrypoint_hook(forecast.container, "finish_interrupted_updates") as sweep:
        assert sweep() == 0  # nothing was interrupted
    with entrypoint_hook(forecast.container, "remove_finished_markers") as flush:
        flush()
    assert [d.get("applied") for d in db_of("forecast").scopes.find()] == [{}, {}, {}]


def test_a_malformed_event_is_set_aside_not_retried_forever(forecast, publish, service_config,
                                                            db_of):
    publish("StageChanged", ev("bad1", 2, **{"from": 25}, to="五十", owner_id=REP["id"]))
    publish("CustomerCreated", created("good1", 50))
    drain(forecast.container, service_config["AMQP_URI"])
    rejected = list(db_of("forecast").rejected.find())
    assert [(r["event_type"], r["payload"]["customer_id"]) for r in rejected] == [
        ("StageChanged", "bad1")]
    assert "to" in rejected[0]["error"]
    assert forecast.get_forecast(REP)["active_count"] == 1


# --------------------------------------------------------------------------
# crash safety of the two-step update (storage.update_deal)


class Crash(Exception):
    pass


def _deal_change(event, event_type):
    def change(doc):
        state = readmodel.state_of(doc)
        after = domain.apply_deal_event(state, event, event_type)
        entry = readmodel.history_entry(event, event_type)
        history = domain.merge_history((doc or {}).get("history", []), entry)
        if after is None and len(history) == len((doc or {}).get("history", [])):
            return None
        return readmodel.deal_fields(after or state, history, doc)

    return change


def _company(db):
    docs = storage.team_docs(db, storage.get_meta(db)["gen"])
    return readmodel.pipe_counts(docs)


def test_a_crash_between_the_deal_and_the_aggregates_neither_loses_nor_doubles(
        forecast, publish, service_config, db_of, monkeypatch):
    db = db_of("forecast")
    publish("CustomerCreated", created("crash1", 25, yuan=80_000))
    publish("CustomerCreated", created("crash2", 25, yuan=20_000, owner=REP2))
    drain(forecast.container, service_config["AMQP_URI"])
    assert _company(db) == {25: (2, 10_000_000)}

    # The process dies after writing the deal, before any aggregate: the
    # broker redelivers the event; once the pending update is older than the
    # lease it is taken over and finished.
    move = moved("crash1", 2, 25, 75, yuan=80_000)
    real_apply = storage._apply_cell
    monkeypatch.setattr(storage, "_apply_cell", lambda *a: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        storage.update_deal(db, "crash1", _deal_change(move, "StageChanged"), clock.now)
    monkeypatch.setattr(storage, "_apply_cell", real_apply)
    assert storage.find_deal(db, "crash1")["stage"] == 75
    assert _company(db) == {25: (2, 10_000_000)}  # not applied yet
    storage.deals(db, "crash1").update_one({"_id": "crash1"},
                        {"$set": {"pending.at": clock.now() - timedelta(minutes=5)}})
    publish("StageChanged", move)  # the redelivery
    drain(forecast.container, service_config["AMQP_URI"])
    assert _company(db) == {25: (1, 2_000_000), 75: (1, 8_000_000)}

    # The process dies after the aggregates, before clearing: the redelivery
    # must not count again.
    move2 = moved("crash2", 2, 25, 90, yuan=20_000, owner=REP2)
    real_finish = storage._finish

    def finish_then_die(db_, cid, pending):
        for cell in pending["cells"]:
            real_apply(db_, cell, pending["op"])
        raise Crash()

    monkeypatch.setattr(storage, "_finish", finish_then_die)
    with pytest.raises(Crash):
        storage.update_deal(db, "crash2", _deal_change(move2, "StageChanged"), clock.now)
    monkeypatch.setattr(storage, "_finish", real_finish)
    stalled = storage.find_deal(db, "crash2")["pending"]
    storage.deals(db, "crash2").update_one({"_id": "crash2"},
                        {"$set": {"pending.at": clock.now() - timedelta(minutes=5)}})
    publish("StageChanged", move2)
    drain(forecast.container, service_config["AMQP_URI"])
    assert _company(db) == {75: (1, 8_000_000), 90: (1, 2_000_000)}
    # the slow writer wakes up and finishes "its" update: nothing more counts
    real_finish(db, "crash2", stalled)
    assert _company(db) == {75: (1, 8_000_000), 90: (1, 2_000_000)}
    assert forecast.get_forecast(ADMIN)["forecast"] == 80_000 * 0.75 + 20_000 * 0.9


def test_a_new_customer_written_without_a_read_is_counted_once_through_crash_and_redelivery(
        forecast, publish, service_config, db_of, monkeypatch):
    # CustomerCreated inserts the deal without reading it first; the
    # redelivery after a crash finds the deal there and must go the usual way.
    db = db_of("forecast")
    real_apply = storage._apply_cell
    monkeypatch.setattr(storage, "_apply_cell", lambda *a: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        storage.update_deal(db, "fresh1", _deal_change(created("fresh1", 50, yuan=40_000),
                                                       "CustomerCreated"),
                            clock.now, likely_new=True)
    monkeypatch.setattr(storage, "_apply_cell", real_apply)
    assert storage.find_deal(db, "fresh1")["pending"]
    assert _company(db) == {}
    storage.deals(db, "fresh1").update_one({"_id": "fresh1"},
                        {"$set": {"pending.at": clock.now() - timedelta(minutes=5)}})
    event = created("fresh1", 50, yuan=40_000)
    publish("CustomerCreated", event)  # the redelivery
    publish("CustomerCreated", event)  # and once more, after it finished
    drain(forecast.container, service_config["AMQP_URI"])
    assert _company(db) == {50: (1, 4_000_000)}
    assert storage.find_deal(db, "fresh1").get("pending") is None
    # A customer whose deal an earlier event made: created comes second.
    publish("StageChanged", moved("late1", 2, 25, 75, yuan=10_000))
    publish("CustomerCreated", created("late1", 25, yuan=10_000))
    drain(forecast.container, service_config["AMQP_URI"])
    assert _company(db) == {50: (1, 4_000_000), 75: (1, 1_000_000)}


def test_the_sweeper_finishes_an_update_no_event_comes_back_for(forecast, publish,
                                                                 service_config, db_of,
                                                                 monkeypatch):
    db = db_of("forecast")
    publish("CustomerCreated", created("lonely", 50, yuan=30_000))
    drain(forecast.container, service_config["AMQP_URI"])
    monkeypatch.setattr(storage, "_apply_cell", lambda *a: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        storage.update_deal(db, "lonely", _deal_change(moved("lonely", 2, 50, 90, 30_000),
                                                       "StageChanged"), clock.now)
    monkeypatch.undo()
    storage.deals(db, "lonely").update_one({"_id": "lonely"},
                        {"$set": {"pending.at": clock.now() - timedelta(minutes=5)}})
    with entrypoint_hook(forecast.container, "finish_interrupted_updates") as sweep:
        assert sweep() == 1
    assert _company(db) == {90: (1, 3_000_000)}
    assert storage.find_deal(db, "lonely").get("pending") is None


# --------------------------------------------------------------------------
# stage definitions, calibration


def test_stage_definitions_follow_stages_changed(forecast, publish, service_config):
    for i, stage in enumerate([25, 50, 75, 75]):
        publish("CustomerCreated", created(f"st{i}", stage, yuan=10_000))
    drain(forecast.container, service_config["AMQP_URI"])
    new = [{"stage": 0, "label": "潜在客户", "probability": 0, "active": False},
           {"stage": 25, "label": "愿意试样", "probability": 20, "active": True},
           {"stage": 50, "label": "认可样品", "probability": 60, "active": True},
           {"stage": 100, "label": "稳定客户", "probability": 100, "active": False}]
    later = {"event_id": str(uuid.uuid4()), "occurred_at": "2024-05-07T01:00:00+00:00",
             "stages": new, "version": 3, "changed_by": ADMIN["id"]}
    older = {**later, "event_id": str(uuid.uuid4()), "version": 2,
             "stages": [{"stage": 0, "label": "旧", "probability": 0, "active": True}]}
    publish("StagesChanged", later)
    publish("StagesChanged", older)  # arrives late: ignored
    drain(forecast.container, service_config["AMQP_URI"])
    figures = forecast.get_forecast(ADMIN)
    assert [r["stage"] for r in figures["stages"]] == [0, 25, 50, 100]
    # the two customers in the removed 75 are counted in 50, at 60 %
    assert rows(figures)[50]["count"] == 3 and rows(figures)[50]["probability"] == 0.6
    assert figures["remapped"] == [{"from_stage": 75, "to_stage": 50, "count": 2,
                                    "value": 20000}]
    assert figures["forecast"] == 10_000 * 0.2 + 30_000 * 0.6


def _publish_history(publish, prefix, owner, deals, win_rate, rng):
    wins = 0
    for i in range(deals):
        cid = f"{prefix}{i:03d}"
        publish("CustomerCreated", created(cid, 25, owner=owner))
        publish("StageChanged", moved(cid, 2, 25, 50, owner=owner))
        if rng.random() < win_rate:
            wins += 1
            publish("StageChanged", moved(cid, 3, 50, 100, owner=owner))
        elif i % 2:
            publish("StageChanged", moved(cid, 3, 50, 0, owner=owner))
        else:
            publish("CustomerAbandoned", ev(cid, 3, owner_id=owner["id"],
                                            team_id=owner["team_id"], stage=50,
                                            expected_value_fen=10_000 * YUAN, status="pool",
                                            company_name="宏达电子"))
    return wins


def test_calibration_learns_the_teams_win_rate_and_stays_near_the_prior_without_history(
        forecast, publish, service_config):
    rng = random.Random(7)
    other = {"id": "rep_zhaolei", "role": "rep", "team_id": OTHER_TEAM, "name": "赵磊",
             "username": "zl"}
    wins = _publish_history(publish, "hist", REP, 120, 0.2, rng)
    few_wins = _publish_history(publish, "few", other, 3, 0.0, rng)
    for i in range(10):  # the open pipeline now
        publish("CustomerCreated", created(f"open{i}", 50, owner=REP))
        publish("CustomerCreated", created(f"other{i}", 50, owner=other))
    drain(forecast.container, service_config["AMQP_URI"], timeout=300)

    team = forecast.get_forecast(MANAGER)
    cal = {r["stage"]: r for r in team["calibrated"]["stages"]}
    assert team["calibrated"]["sample_size"] == 120
    assert cal[50]["sample_size"] == 120 and cal[50]["wins"] == wins
    assert cal[50]["calibrated"] == round((wins + 10 * 0.5) / (120 + 10), 4)
    # a true win rate of 20 %: the calibrated probability lands within 0.07
    assert abs(cal[50]["calibrated"] - 0.2) <= 0.07
    assert team["forecast"] == 10 * 10_000 * 0.5  # the configured method
    assert team["calibrated"]["forecast"] == pytest.approx(
        10 * 10_000 * cal[50]["calibrated"], abs=0.01)
    # a rep sees his team's calibration
    assert forecast.get_forecast(REP)["calibrated"]["stages"] == team["calibrated"]["stages"]

    # a team with 3 lost deals stays near the configured 50 %: at most
    # n / (n + w) x 0.5 = 3/13 x 0.5 away
    small = forecast.get_forecast(ADMIN, {"team_id": OTHER_TEAM})
    p50 = {r["stage"]: r for r in small["calibrated"]["stages"]}[50]
    assert few_wins == 0 and p50["sample_size"] == 3
    assert p50["calibrated"] == round(5 / 13, 4)
    assert abs(p50["calibrated"] - 0.5) <= 3 / 13 * 0.5 + 1e-4

    # the backtest replays the same history (all of it in May 2024: nothing
    # to score in the months before)
    back = forecast.get_backtest(ADMIN, {"months": 2})
    assert back["method"] == "beta-shrinkage" and len(back["months"]) == 2
    assert set(back["overall"]) == {"months", "configured", "calibrated"}


def test_backtest_scores_both_methods_against_what_was_won(forecast, publish, service_config):
    # April: 10 deals in 50 at the end of March; 2 of them won in April
    start = datetime(2024, 3, 10, 2, 0, tzinfo=UTC)
    for i in range(10):
        cid = f"bt{i}"
        e = created(cid, 50)
        e["occurred_at"] = (start + timedelta(hours=i)).isoformat()
        publish("CustomerCreated", e)
        if i < 2:
            w = moved(cid, 2, 50, 100)
            w["occurred_at"] = (start + timedelta(days=30 + i)).isoformat()
            publish("StageChanged", w)
    drain(forecast.container, service_config["AMQP_URI"])
    clock.set_clock(clock.FrozenClock(datetime(2024, 5, 20, 4, 0, tzinfo=UTC)))
    try:
        back = forecast.get_backtest(MANAGER, {"months": 2})
    finally:
        clock.set_clock(clock.SystemClock())
    april = next(m for m in back["months"] if m["month"] == "2024-04")
    assert april["open_active"] == 10
    assert april["configured"] == 50_000  # 10 x 10,000 x 50 %
    assert april["actual"] == 20_000
    assert april["error"]["configured"] == 30_000
    assert back["scope"] == f"team:{TEAM}"


# --------------------------------------------------------------------------
# weekly snapshots


def test_one_snapshot_per_scope_and_week_whoever_takes_it(forecast, publish, service_config, db_of,
                                                         container_factory):
    for i in range(3):
        publish("CustomerCreated", created(f"wk{i}", 50, owner=REP if i else REP2))
    drain(forecast.container, service_config["AMQP_URI"])
    second = container_factory(ForecastService, service_config)  # a second instance
    second.start()
    monday = datetime(2024, 5, 6, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
    clock.set_clock(clock.FrozenClock(monday))
    try:
        with entrypoint_hook(forecast.container, "take_weekly_snapshots") as a, \
                entrypoint_hook(second, "take_weekly_snapshots") as b:
            pool = eventlet.GreenPool()
            taken = list(pool.imap(lambda f: f(), [a, b]))
        # company, the team, two reps: once each, whoever was first
        assert sorted(taken) == [0, 4]
        assert db_of("forecast").snapshots.count_documents({"week": "2024-W19"}) == 4
        with entrypoint_hook(forecast.container, "take_weekly_snapshots") as a:
            assert a() == 0  # later the same week: nothing new
        publish("StageChanged", moved("wk1", 2, 50, 90))
        drain(forecast.container, service_config["AMQP_URI"])
        clock.set_clock(clock.FrozenClock(monday + timedelta(days=7)))
        with entrypoint_hook(second, "take_weekly_snapshots") as b:
            assert b() == 4
    finally:
        clock.set_clock(clock.SystemClock())
    history = forecast.get_history(REP)
    assert history["scope"] == "owner:rep_zhangwei" and history["total"] == 2
    assert [(h["week"], h["forecast"]) for h in history["items"]] == [
        ("2024-W20", 14_000), ("2024-W19", 10_000)]
    assert history["items"][0]["week_start"] == "2024-05-12T16:00:00+00:00"
    team = forecast.get_history(MANAGER, {"page_size": 1})
    assert team["total"] == 2 and len(team["items"]) == 1
    assert team["items"][0]["forecast"] == 19_000


def test_snapshots_keep_money_in_fen_and_history_shows_the_same_yuan(
        forecast, publish, service_config, db_of):
    # 12,345.67 yuan at 25 %, 999.99 yuan at 50 %: cents a float would carry as binary noise
    for cid, stage, fen in (("fen1", 25, 1_234_567), ("fen2", 50, 99_999)):
        publish("CustomerCreated", {**created(cid, stage), "expected_value_fen": fen})
    drain(forecast.container, service_config["AMQP_URI"])
    live = forecast.get_forecast(REP)
    assert live["forecast"] == 3_586.41  # 308,641.75 + 49,999.5 fen, rounded once
    monday = datetime(2024, 5, 13, 0, 30, tzinfo=UTC)
    clock.set_clock(clock.FrozenClock(monday))
    try:
        with entrypoint_hook(forecast.container, "take_weekly_snapshots") as take:
            assert take() == 3  # company, the team, 张伟
    finally:
        clock.set_clock(clock.SystemClock())
    stored = db_of("forecast").snapshots.find_one({"scope": "owner:rep_zhangwei"})
    money = [stored["forecast_fen"], stored["calibrated_fen"],
             *(r[k] for r in stored["stages"] for k in ("value_fen", "weighted_fen"))]
    assert all(type(v) is int for v in money), stored
    assert stored["forecast_fen"] == 358_641
    assert {r["stage"]: r["value_fen"] for r in stored["stages"]}[25] == 1_234_567
    assert not any(isinstance(v, float) for v in stored.values())
    # one stored before money went to fen: float yuan, read all the same
    db_of("forecast").snapshots.insert_one({
        "scope": "owner:rep_zhangwei", "week": "2024-W19", "week_start": monday
        - timedelta(days=7, hours=8, minutes=30), "taken_at": monday - timedelta(days=7),
        "forecast": 1_234.56, "forecast_fen": 123_456, "calibrated_forecast": 999.99,
        "active_count": 1, "min_active": 14, "reliable": False,
        "stages": [{"stage": 25, "count": 1, "value": 4_938.24, "weighted": 1_234.56}]})
    history = forecast.get_history(REP)["items"]
    assert [(h["week"], h["forecast"], h["calibrated_forecast"]) for h in history] == [
        ("2024-W20", 3_586.41, live["calibrated"]["forecast"]), ("2024-W19", 1_234.56, 999.99)]


# --------------------------------------------------------------------------
# who sees what (the HTTP matrix is in the e2e tests)


def test_scope_rules_over_rpc(forecast):
    with pytest.raises(Forbidden):
        forecast.get_forecast(REP, {"owner_id": REP2["id"]})
    with pytest.raises(Forbidden):
        forecast.get_forecast(MANAGER, {"team_id": OTHER_TEAM})
    with pytest.raises(Invalid) as err:
        forecast.get_forecast(ADMIN, {"team_id": "a b"})
    assert "team_id" in err.value.details["fields"]
    with pytest.raises(Forbidden):
        forecast.start_job(MANAGER, "rebuild")


# --------------------------------------------------------------------------
# rebuild and reconcile against customers' own data


class CustomersStandIn:
    """customers' `export_deals` RPC, with a truth the test controls (the
    real service is exercised by the e2e tests)."""

    name = "customers"
    truth: list[dict] = []

    @rpc
    def export_deals(self, after_id=None, limit=500):
        rows = sorted(self.truth, key=lambda r: r["customer_id"])
        if after_id is not None:
            rows = [r for r in rows if r["customer_id"] > after_id]
        return rows[:limit]


def _run_job(forecast, kind, timeout=120):
    job = forecast.start_job(ADMIN, kind)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = forecast.get_job(ADMIN, job["id"])
        if job["state"] in ("done", "failed"):
            return job
        eventlet.sleep(0.2)
    raise AssertionError(f"the {kind} job did not finish: {job}")


def test_reconcile_finds_drift_and_rebuild_repairs_it(forecast, publish, service_config,
                                                     container_factory, db_of):
    db = db_of("forecast")
    t0 = "2024-05-06T02:00:00+00:00"
    truth = []
    for i in range(30):
        stage = [25, 50, 75, 90, 10][i % 5]
        owner = REP if i % 3 else REP2
        truth.append({"customer_id": f"rc{i:02d}", "version": 2, "owner_id": owner["id"],
                      "team_id": TEAM, "stage": stage, "expected_value_fen": 10_000 * YUAN,
                      "status": "active",
                      "stage_history": [{"at": t0, "from": None, "to": 25},
                                        {"at": "2024-05-06T03:00:00+00:00", "from": 25,
                                         "to": stage}]})
    truth[0]["status"], truth[0]["owner_id"], truth[0]["team_id"] = "pool", None, None
    CustomersStandIn.truth = truth
    container_factory(CustomersStandIn, service_config).start()
    # the read model saw only some of it: a lost event, a missed customer
    for row in truth[1:25]:
        publish("CustomerCreated", created(row["customer_id"], 25,
                                           owner=REP if row["owner_id"] == REP["id"] else REP2))
    for row in truth[1:20]:
        if row["stage"] != 25:
            publish("StageChanged", moved(row["customer_id"], 2, 25, row["stage"],
                                          owner=REP if row["owner_id"] == REP["id"] else REP2))
    publish("CustomerCreated", created("ghost", 90))  # not in customers' data
    drain(forecast.container, service_config["AMQP_URI"])
    # and someone broke an aggregate by hand
    gen = storage.get_meta(db)["gen"]
    db.scopes.update_one({"_id": storage.scope_id(gen, TEAM)}, {"$inc": {"pipe.rep_lina.25.c": 7}})

    report = _run_job(forecast, "reconcile")
    assert report["state"] == "done", report
    result = report["result"]
    assert result["consistent"] is False
    assert result["checked"] == 30
    assert result["missing_in_forecast"] == 6  # rc00 (pooled, never seen) and rc25..rc29
    assert result["different"] == sum(1 for r in truth[20:25] if r["stage"] != 25)
    assert result["unknown_to_customers"] == 1 and result["unknown_ids"] == ["ghost"]
    assert result["aggregates"]["consistent"] is False
    assert result["aggregates"]["drift"] == [{"team": TEAM, "path": "pipe.rep_lina.25.c",
                                              "expected": result["aggregates"]["drift"][0][
                                                  "expected"],
                                              "stored": result["aggregates"]["drift"][0][
                                                  "expected"] + 7}]
    assert forecast.latest_job(ADMIN, "reconcile")["id"] == report["id"]

    rebuilt = _run_job(forecast, "rebuild")
    assert rebuilt["state"] == "done", rebuilt
    assert rebuilt["result"]["exported"] == 30 and rebuilt["result"]["not_exported"] == 1
    assert storage.get_meta(db)["gen"] == gen + 1
    again = _run_job(forecast, "reconcile")["result"]
    assert again["missing_in_forecast"] == 0 and again["different"] == 0
    assert again["aggregates"]["consistent"] is True
    assert again["unknown_to_customers"] == 1  # kept, reported: nothing is deleted
    # the figures are customers' truth (plus the ghost, which the admin sees reported)
    active = [r for r in truth if r["status"] == "active"]
    weighted = sum(10_000 * r["stage"] / 100 for r in active if 25 <= r["stage"] <= 90)
    assert forecast.get_forecast(MANAGER)["forecast"] == weighted + 10_000 * 0.9
    assert db.scopes.count_documents({"gen": gen}) == 0  # the old generation is gone
    assert forecast.latest_job(ADMIN, "reconcile")["state"] == "done"

    # the same from the command line, as an operator runs it
    cli = subprocess.run(
        [sys.executable, "-m", "services.forecast.cli", "reconcile"], capture_output=True,
        text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "CRM_AMQP_URI": service_config["AMQP_URI"],
             "CRM_JWT_SECRET": service_config["JWT_SECRET"], "PYTHONWARNINGS": "ignore"})
    assert cli.returncode == 1, cli.stderr  # the ghost customer is reported
    report = json.loads(cli.stdout)
    assert report["result"]["unknown_ids"] == ["ghost"]
    assert report["result"]["aggregates"]["consistent"] is True
