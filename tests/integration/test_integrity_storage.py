"""The lifecycle's storage guarantees on real FerretDB: each state change is
one conditional write with exactly one winner, however many try at once."""

from datetime import UTC, datetime, timedelta

import eventlet
import pytest

from services.customers import storage as store

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(db_of):
    d = db_of("customers")
    store.ensure_indexes(d)
    return d


def race(n, fn):
    pool = eventlet.GreenPool(n)
    return list(pool.imap(fn, range(n)))


def test_a_pool_customer_is_claimed_once(db):
    db.customers.insert_one({"_id": "c1", "company_name": "佛山市顺德区美达电器有限公司",
                             "status": "pool", "owner_id": None, "version": 4})
    results = race(8, lambda i: store.claim_from_pool(
        db, "c1", {"owner_id": f"rep{i}", "status": "active"}))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0]["version"] == 5
    assert db.customers.find_one({"_id": "c1"})["owner_id"] == winners[0]["owner_id"]


def test_a_versioned_update_has_one_winner(db):
    db.customers.insert_one({"_id": "c2", "stage": 10, "version": 1})
    seen = db.customers.find_one({"_id": "c2"})
    results = race(6, lambda i: store.update_customer(db, seen, {"stage": 25 + i}))
    assert sum(r is not None for r in results) == 1
    assert db.customers.find_one({"_id": "c2"})["version"] == 2


def test_one_open_alarm_per_customer_and_one_use_of_an_abandon(db):
    alarm = store.insert_alarm(db, {"customer_id": "c3", "owner_id": "u1", "team_id": "t1",
                                    "reason": "联系不上", "raised_at": T0})
    with pytest.raises(store.AlarmOpen):
        store.insert_alarm(db, {"customer_id": "c3", "owner_id": "u1", "team_id": "t1",
                                "reason": "还是联系不上", "raised_at": T0})
    resolved = race(4, lambda i: store.resolve_alarm(db, alarm["_id"], {"decision": "abandon"}))
    assert sum(r is not None for r in resolved) == 1
    # resolved: a new alarm may be raised again
    store.insert_alarm(db, {"customer_id": "c3", "owner_id": "u1", "team_id": "t1",
                            "reason": "第二次", "raised_at": T0})
    query = {"_id": alarm["_id"], "status": "resolved", "decision": "abandon", "used_at": None}
    used = race(5, lambda i: store.use_alarm(db, query, T0))
    assert sum(u is not None for u in used) == 1
    assert store.find_alarm(db, alarm["_id"])["used_at"] is not None


def test_a_resolution_is_undone_only_while_no_other_alarm_is_open(db):
    doc = {"customer_id": "c9", "owner_id": "u1", "team_id": "t1", "reason": "失联",
           "raised_at": T0}
    first = store.insert_alarm(db, doc)
    resolved = store.resolve_alarm(db, first["_id"], {"decision": "reassign"})
    assert store.reopen_alarm(db, resolved) is True
    assert store.open_alarm_of(db, "c9")["_id"] == first["_id"]
    resolved = store.resolve_alarm(db, first["_id"], {"decision": "reassign"})
    # meanwhile a new owner raised his own: the old one cannot be open again
    second = store.insert_alarm(db, {**doc, "owner_id": "u2"})
    assert store.reopen_alarm(db, resolved) is False
    assert store.open_alarm_of(db, "c9")["_id"] == second["_id"]
    voided = race(3, lambda i: store.void_alarm(db, first["_id"], "resolved", {"note": "x"}))
    assert sum(v is not None for v in voided) == 1
    assert store.find_alarm(db, first["_id"])["status"] == "void"
    assert store.void_alarm(db, second["_id"], "resolved", {}) is None  # it is open


def test_a_dispute_resolution_is_undone_only_while_the_claimant_has_not_filed_again(db):
    doc = {"customer_id": "c10", "claimant_id": "u2", "owner_id": "u1", "filed_at": T0}
    first = store.insert_dispute(db, doc)
    assert store.resolve_dispute(db, first["_id"], {"winner_id": "u2"}) is not None
    second = store.insert_dispute(db, doc)
    assert store.reopen_dispute(db, first) is False
    voided = store.void_dispute(db, first["_id"], "resolved", {"resolution_note": "x"})
    assert voided["status"] == "void" and voided["winner_id"] is None
    assert store.find_dispute(db, second["_id"])["status"] == "open"


def test_the_latest_alarm_is_the_last_raised(db):
    for day, reason in ((1, "联系不上"), (20, "价格谈不拢"), (9, "采购换人")):
        doc = store.insert_alarm(db, {"customer_id": "c8", "owner_id": "u1", "team_id": "t1",
                                      "reason": reason, "raised_at": T0 + timedelta(days=day)})
        store.resolve_alarm(db, doc["_id"], {"decision": "continue"})
    assert store.latest_alarm(db, "c8")["reason"] == "价格谈不拢"
    assert store.latest_alarm(db, "c9") is None


def test_one_open_dispute_per_claimant(db):
    base = {"customer_id": "c4", "claimant_id": "u2", "contact": {"name": "王总",
                                                                  "decision_level": 5}}
    d = store.insert_dispute(db, dict(base))
    with pytest.raises(store.DisputeOpen):
        store.insert_dispute(db, dict(base))
    store.insert_dispute(db, {**base, "claimant_id": "u3"})  # another rep may
    assert store.resolve_dispute(db, d["_id"], {"winner_id": "u2"}) is not None
    assert store.resolve_dispute(db, d["_id"], {"winner_id": "u1"}) is None
    again = store.insert_dispute(db, dict(base))  # settled: he may file again
    # overtaken by an owner change: closed once, and the claimant may file again
    assert store.void_dispute(db, again["_id"], "open", {"resolved_by": "m1"})["status"] == "void"
    assert store.void_dispute(db, again["_id"], "open", {"resolved_by": "m2"}) is None
    assert store.resolve_dispute(db, again["_id"], {"winner_id": "u2"}) is None
    store.insert_dispute(db, dict(base))


def test_amendment_is_applied_by_one_approver_and_a_stale_lease_can_be_taken_over(db):
    a = store.insert_amendment(db, {"customer_id": "c5", "status": "pending"})
    lease = timedelta(seconds=60)
    got = race(5, lambda i: store.start_applying(db, a["_id"], f"m{i}", T0, lease))
    assert sum(g is not None for g in got) == 1
    assert store.start_applying(db, a["_id"], "admin", T0 + timedelta(seconds=30), lease) is None
    # the approver crashed: after its lease another may finish the job
    late = store.start_applying(db, a["_id"], "admin", T0 + timedelta(seconds=61), lease)
    assert late is not None and late["decided_by"] == "admin"


def test_lock_is_exclusive_until_released_or_expired(db):
    ttl = timedelta(seconds=30)
    store.acquire_lock(db, "customer:c6", "h1", T0, ttl)
    store.acquire_lock(db, "customer:c6", "h1", T0, ttl)  # re-entrant for its holder
    with pytest.raises(store.Locked):
        store.acquire_lock(db, "customer:c6", "h2", T0 + timedelta(seconds=5), ttl)
    store.release_lock(db, "customer:c6", "h2")  # not his: nothing happens
    with pytest.raises(store.Locked):
        store.acquire_lock(db, "customer:c6", "h2", T0 + timedelta(seconds=5), ttl)
    store.release_lock(db, "customer:c6", "h1")
    store.acquire_lock(db, "customer:c6", "h2", T0 + timedelta(seconds=5), ttl)
    store.acquire_lock(db, "customer:c6", "h3", T0 + timedelta(seconds=36), ttl)  # expired

    def take(i):
        try:
            store.acquire_lock(db, "customer:c7", f"g{i}", T0, ttl)
            return True
        except store.Locked:
            return False

    assert sum(race(6, take)) == 1
