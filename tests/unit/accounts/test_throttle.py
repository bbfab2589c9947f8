"""The login throttle's rules: which counters an attempt meets, how long a lock
lasts, which addresses are the owner's usual ones."""

from datetime import UTC, datetime, timedelta

import pytest

from services.accounts import throttle
from services.accounts.throttle import ADDRESS, PAIR, USERNAME, Limit, Policy

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
POLICY = Policy()


def test_production_defaults():
    assert POLICY.pair == Limit(5, 86400)
    assert POLICY.address == Limit(20, 900)
    assert POLICY.username == Limit(50, 900)
    assert POLICY.max_lock_seconds == 900


def test_locks_double_after_the_free_failures_up_to_the_maximum():
    assert [throttle.lock_seconds(n, 5, 900) for n in range(1, 10)] == [0, 0, 0, 0, 0, 1, 2, 4, 8]
    assert [throttle.lock_seconds(n, 20, 900) for n in (20, 21, 25, 30, 31)] == [0, 1, 16, 512, 900]
    # a counter that ran far past the free ones costs nothing to compute
    assert throttle.lock_seconds(10**9, 5, 900) == 900
    assert throttle.next_lock(3, 5, 900, NOW) is None
    assert throttle.next_lock(8, 5, 900, NOW) == NOW + timedelta(seconds=4)


def test_a_refusal_waits_for_the_longest_running_lock():
    counters = [None, {"locked_until": NOW + timedelta(seconds=3)},
                {"locked_until": NOW + timedelta(seconds=90)},
                {"locked_until": NOW - timedelta(seconds=500)}, {"failures": 30}]
    assert throttle.refusal(counters, NOW) == 90
    assert throttle.refusal([None, {"locked_until": NOW}], NOW) == 0
    assert throttle.refusal([], NOW) == 0
    # a client is told whole seconds, never 0 while a lock runs
    assert throttle.retry_after(0.2) == 1
    assert throttle.retry_after(1.5) == 2
    assert throttle.retry_after(90) == 90


def test_the_owners_usual_address_meets_his_own_counter_only():
    assert throttle.scopes_for(usual=True) == (PAIR,)
    assert throttle.scopes_for(usual=False) == (PAIR, ADDRESS, USERNAME)


def test_counters_are_keyed_by_the_typed_strings_unambiguously():
    assert throttle.normalize_username("  ＺhangWei ") == "zhangwei"
    keys = {throttle.counter_key(s, "a|b", "c") for s in (PAIR, ADDRESS, USERNAME)}
    keys.add(throttle.counter_key(PAIR, "a", "b|c"))
    keys.add(throttle.counter_key(USERNAME, "c", "anywhere"))
    keys.add(throttle.counter_key(ADDRESS, "anyone", "a|b"))
    assert len(keys) == 6
    # an address counter belongs to no username (an unlock leaves it alone)
    assert throttle.counter_fields(ADDRESS, "张伟", "10.0.0.1") == {
        "scope": ADDRESS, "username": None, "address": "10.0.0.1"}
    assert throttle.counter_fields(PAIR, "张伟", "10.0.0.1")["username"] == "张伟"
    assert throttle.counter_fields(USERNAME, "张伟", "10.0.0.1") == {
        "scope": USERNAME, "username": "张伟", "address": None}


def test_usual_addresses_are_the_recent_successes():
    usual = throttle.remember(None, "10.0.0.1", NOW - timedelta(days=40), POLICY)
    assert usual == [{"address": "10.0.0.1", "at": NOW - timedelta(days=40)}]
    # 40 days ago is too long ago
    assert not throttle.is_usual(usual, "10.0.0.1", NOW, POLICY)
    for day, address in enumerate(["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5",
                                   "10.0.0.6", "10.0.0.7"]):
        usual = throttle.remember(usual, address, NOW - timedelta(days=10 - day), POLICY)
    # the stale one is dropped, the newest five kept, newest first
    assert [u["address"] for u in usual] == ["10.0.0.7", "10.0.0.6", "10.0.0.5", "10.0.0.4",
                                             "10.0.0.3"]
    assert throttle.is_usual(usual, "10.0.0.3", NOW, POLICY)
    assert not throttle.is_usual(usual, "10.0.0.2", NOW, POLICY)
    assert not throttle.is_usual(usual, "192.0.2.9", NOW, POLICY)
    # a success again moves it to the front, once
    again = throttle.remember(usual, "10.0.0.3", NOW, POLICY)
    assert [u["address"] for u in again][:2] == ["10.0.0.3", "10.0.0.7"]
    assert len(again) == 5


def test_an_unknown_address_is_nobodys_usual_one():
    usual = throttle.remember([], throttle.UNKNOWN_ADDRESS, NOW, POLICY)
    assert usual == []
    assert not throttle.is_usual([{"address": "unknown", "at": NOW}], "unknown", NOW, POLICY)


def test_policy_from_settings():
    settings = {"LOGIN_FREE_FAILURES": "3", "LOGIN_ADDRESS_FREE_FAILURES": 8,
                "LOGIN_USERNAME_FREE_FAILURES": 12, "LOGIN_WINDOW_SECONDS": "60",
                "LOGIN_MAX_LOCK_SECONDS": 30, "LOGIN_USUAL_ADDRESSES": 2}
    policy = Policy.from_settings(lambda key, default: settings.get(key, default))
    assert policy.pair == Limit(3, 86400)
    assert policy.address == Limit(8, 60)
    assert policy.username == Limit(12, 60)
    assert policy.max_lock_seconds == 30
    assert policy.usual_keep == 2
    assert policy.limit(ADDRESS) is policy.address


@pytest.mark.parametrize("failures,free,expected", [(0, 0, 0), (1, 0, 1), (2, 0, 2)])
def test_no_free_failures_locks_from_the_first(failures, free, expected):
    assert throttle.lock_seconds(failures, free, 900) == expected
