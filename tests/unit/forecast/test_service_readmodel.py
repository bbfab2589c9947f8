"""The stored shape of the forecast read model (services/forecast/readmodel.py):
the scope documents kept by increments must say what the domain computes
from the deals themselves."""

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.common.errors import Forbidden
from services.common.principal import Principal
from services.forecast import domain, readmodel
from services.forecast.service import _month_ends
from tests.unit.forecast import oracle

T0 = datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
OWNERS = {"u1": "t1", "u2": "t1", "u3": "t2", "u4": None}


def event(kind, cid, minutes, version, **payload):
    return {"event_id": str(uuid.uuid4()), "occurred_at": (T0 + timedelta(minutes=minutes))
            .isoformat(), "customer_id": cid, "version": version, "type": kind, **payload}


def random_events(rng: random.Random, deals: int = 60) -> list[dict]:
    """Believable lives of deals: created, moved through stages, some won,
    some lost, abandoned, claimed by someone else, re-valued."""
    out = []
    for i in range(deals):
        cid = f"c{i:03d}"
        owner = rng.choice(list(OWNERS))
        stage = rng.choice([0, 10, 25, 50])
        value = rng.randint(1, 500) * 100_000
        minute, version = rng.randint(0, 1000), 1
        out.append(event("CustomerCreated", cid, minute, version, stage=stage,
                         expected_value_fen=value, owner_id=owner, team_id=OWNERS[owner],
                         status="active"))
        for _ in range(rng.randint(0, 8)):
            minute += rng.randint(1, 3000)
            version += 1
            roll = rng.random()
            if owner is None:  # in the pool: someone claims it
                roll = 0.9
            if roll < 0.55:
                to = rng.choice([0, 10, 25, 50, 75, 90, 100])
                out.append(event("StageChanged", cid, minute, version, **{"from": stage},
                                 to=to, expected_value_fen=value, owner_id=owner,
                                 team_id=OWNERS[owner]))
                stage = to
            elif roll < 0.7:
                value = rng.randint(1, 500) * 100_000
                out.append(event("CustomerAmended", cid, minute, version,
                                 changes={"expected_value_fen": {"before": 0, "after": value}},
                                 expected_value_fen=value, owner_id=owner,
                                 team_id=OWNERS[owner], stage=stage, status="active"))
            elif roll < 0.85:
                out.append(event("CustomerAbandoned", cid, minute, version, owner_id=owner,
                                 team_id=OWNERS[owner], stage=stage, expected_value_fen=value,
                                 status="pool"))
                owner = None
            else:
                new = rng.choice(list(OWNERS))
                out.append(event("OwnerChanged", cid, minute, version, old_owner_id=owner,
                                 new_owner_id=new, old_team_id=OWNERS.get(owner),
                                 new_team_id=OWNERS[new], reason="claim", stage=stage,
                                 expected_value_fen=value, status="active"))
                owner = new
    return out


def fold(events):
    """Events into deal documents and scope documents, as the service does
    (without the database): returns ({cid: doc}, {team: {path: value}})."""
    docs: dict = {}
    scopes: dict = {}
    for e in events:
        doc = docs.get(e["customer_id"])
        state = readmodel.state_of(doc)
        history = (doc or {}).get("history", [])
        for_state, for_history = readmodel.as_domain_events(e["type"], e)
        after = domain.apply_deal_event(state, for_state, e["type"])
        entry = readmodel.history_entry(for_history, e["type"])
        merged = domain.merge_history(history, entry) if entry else history
        if after is None and len(merged) == len(history):
            continue
        fields = readmodel.deal_fields(after or state, merged, doc)
        for team, incs in readmodel.increments((doc or {}).get("contrib"),
                                               fields["contrib"]).items():
            cell = scopes.setdefault(team, {})
            for path, delta in incs.items():
                cell[path] = cell.get(path, 0) + delta
        docs[e["customer_id"]] = {"_id": e["customer_id"], **fields}
    return docs, scopes


def nested(flat: dict) -> dict:
    """{path: value} back into a stored scope document."""
    doc: dict = {}
    for path, value in flat.items():
        node = doc
        parts = path.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return doc


def scope_docs(scopes):
    return [{"team": team, **nested(flat)} for team, flat in scopes.items()]


@pytest.mark.parametrize("seed", range(5))
def test_scope_documents_equal_the_domain_over_the_deals(seed):
    rng = random.Random(seed)
    events = random_events(rng)
    docs, scopes = fold(events)
    states = [readmodel.state_of(d) for d in docs.values()]
    aggregates = oracle.aggregate_deals(states)
    stored = scope_docs(scopes)
    assert readmodel.pipe_counts(stored) == oracle.counts_for_scope(aggregates, "company")
    for owner in OWNERS:
        assert readmodel.pipe_counts(stored, owner) == oracle.counts_for_scope(
            aggregates, f"owner:{owner}")
    for team in ("t1", "t2"):
        mine = [d for d in stored if d["team"] == team]
        assert readmodel.pipe_counts(mine) == oracle.counts_for_scope(aggregates, f"team:{team}")

    # the calibration from counts is the domain's calibration over the histories
    histories = {cid: d["history"] for cid, d in docs.items()}
    want = domain.calibrate(histories, prior_weight=10)
    counts, resolved = readmodel.cal_counts(stored)
    got = readmodel.calibration_from_counts(counts, resolved, None, 10)
    assert got == want
    assert resolved > 0  # the scenario does resolve deals
    # per team: the deals whose last team it is
    for team in ("t1", "t2"):
        mine = {cid: d["history"] for cid, d in docs.items() if d["last_team_id"] == team}
        counts, resolved = readmodel.cal_counts([d for d in stored if d["team"] == team])
        assert readmodel.calibration_from_counts(counts, resolved, None, 10) == \
            domain.calibrate(mine, prior_weight=10)


def test_duplicates_and_any_order_give_the_same_documents():
    rng = random.Random(42)
    events = random_events(rng, deals=30)
    docs, scopes = fold(events)
    for _ in range(5):
        noisy = events + rng.sample(events, len(events) // 3)
        rng.shuffle(noisy)
        again_docs, again_scopes = fold(noisy)
        clean = {t: {p: v for p, v in f.items() if v} for t, f in again_scopes.items()}
        assert {t: f for t, f in clean.items() if f} == \
            {t: {p: v for p, v in f.items() if v} for t, f in scopes.items() if any(f.values())}
        for cid, doc in docs.items():
            assert readmodel.state_of(again_docs[cid]) == readmodel.state_of(doc)


def test_the_api_example_read_back_from_scope_documents():
    flat = {}
    for stage, n in zip([0, 10, 25, 50, 75, 90], [60, 50, 40, 30, 20, 10], strict=True):
        flat[f"pipe.u1.{stage}.c"] = n
        flat[f"pipe.u1.{stage}.v"] = n * 1_000_000
    docs = [{"team": "t1", **nested(flat)}]
    view = readmodel.forecast_view(readmodel.pipe_counts(docs), {}, 0, None, 14, 10)
    assert view["forecast"] == 490000 and isinstance(view["forecast"], int)
    assert view["reliable"] is True and view["active_count"] == 100
    assert view["calibrated"] == {**view["calibrated"], "forecast": 490000,
                                  "method": "beta-shrinkage", "sample_size": 0}
    row = {r["stage"]: r for r in view["stages"]}[25]
    assert (row["probability"], row["count"], row["value"], row["weighted"]) == \
        (0.25, 40, 400000, 100000)


def test_a_removed_stage_folds_into_the_nearest_lower_one():
    counts = {25: (4, 1), 60: (2, 2), 50: (3, 0)}
    stages = [{"stage": 0, "label": "潜在"}, {"stage": 25, "label": "试样"},
              {"stage": 50, "label": "认可"}, {"stage": 100, "label": "成交"}]
    result = readmodel.calibration_from_counts(counts, 6, stages, 0)
    row = {r["stage"]: r for r in result["stages"]}
    assert (row[50]["sample_size"], row[50]["wins"]) == (5, 2)  # 50 and the removed 60
    assert row[50]["calibrated"] == Decimal("0.4")


def test_who_sees_which_forecast():
    rep = Principal("r1", "rep", "t1")
    manager = Principal("m1", "manager", "t1")
    admin = Principal("a1", "admin", None)
    assert readmodel.resolve_scope(rep, None, None).key == "owner:r1"
    assert readmodel.resolve_scope(rep, "r1", "t1").key == "owner:r1"
    for owner, team in (("r2", None), (None, "t2")):
        with pytest.raises(Forbidden):
            readmodel.resolve_scope(rep, owner, team)
    assert readmodel.resolve_scope(manager, None, None).key == "team:t1"
    scope = readmodel.resolve_scope(manager, "r1", None)
    assert (scope.key, scope.member_of) == ("owner:r1", "t1")  # checked with accounts
    with pytest.raises(Forbidden):
        readmodel.resolve_scope(manager, None, "t2")
    with pytest.raises(Forbidden):
        readmodel.resolve_scope(Principal("m2", "manager", None), None, None)
    assert readmodel.resolve_scope(admin, None, None).key == "company"
    assert readmodel.resolve_scope(admin, None, "t2").key == "team:t2"
    assert readmodel.resolve_scope(admin, "r9", None).member_of is None


def test_export_row_merges_with_newer_events():
    now = T0 + timedelta(days=30)
    created = event("CustomerCreated", "c1", 0, 1, stage=25, expected_value_fen=500_000,
                    owner_id="u1", team_id="t1", status="active")
    moved = event("StageChanged", "c1", 60, 5, **{"from": 25}, to=75,
                  expected_value_fen=500_000, owner_id="u1", team_id="t1")
    docs, _ = fold([created, moved])
    row = {"customer_id": "c1", "version": 4, "owner_id": "u1", "team_id": "t1", "stage": 50,
           "expected_value_fen": 800_000, "status": "active",
           "stage_history": [{"at": T0.isoformat(), "from": None, "to": 25},
                             {"at": (T0 + timedelta(minutes=30)).isoformat(), "from": 25,
                              "to": 50}]}
    state, history = readmodel.export_fields(row, docs["c1"], now)
    # the event (version 5) is newer than the export (4): it stays
    assert (state["stage"], state["value_fen"], state["version"]) == (75, 500_000, 5)
    assert [(e["from_stage"], e["to_stage"]) for e in history] == [(None, 25), (25, 50), (25, 75)]
    # an older read model takes the export
    older, _ = fold([created])
    state, _ = readmodel.export_fields(row, older["c1"], now)
    assert (state["stage"], state["value_fen"], state["version"]) == (50, 800_000, 4)
    # an older read model takes the export
    older, _ = fold([created])
    state, _ = readmodel.export_fields(row, older["c1"], now)
    assert (state["stage"], state["value_fen"], state["version"]) == (50, 800_000, 4)
    # an empty read model takes the export as it is; a pooled deal is lost
    pooled = {**row, "status": "pool", "owner_id": None, "team_id": None}
    state, history = readmodel.export_fields(pooled, None, now)
    assert (state["status"], state["owner_id"], state["stage"]) == ("pool", None, 50)
    assert history[-1]["kind"] == "abandoned"
    assert readmodel.differences({"_id": "c1", **state}, pooled) == {}
    assert readmodel.differences({"_id": "c1", **state}, row)["status"] == {
        "forecast": "pool", "customers": "active"}


def test_backtest_months_are_the_last_complete_ones():
    assert _month_ends(date(2024, 3, 15), 3) == [date(2023, 11, 1), date(2023, 12, 1),
                                                  date(2024, 1, 1)]
    assert _month_ends(date(2024, 1, 1), 1) == [date(2023, 11, 1)]
