"""Reads are records too, without a database: the limits, the hour, the read
log's entries, the report's scope, what a rep sees of the pool."""

from datetime import UTC, datetime, timedelta

import pytest

from services.customers import reads
from services.customers.errors import InvalidFields, NotAllowed, Throttled
from tests.unit.customers.people import ADMIN, MANAGER, OTHER_MANAGER, REP

NOW = datetime(2026, 12, 7, 10, 59, 30, 500000, tzinfo=UTC)  # 18:59:30 in Shanghai


def test_the_limits_default_to_60_for_a_rep_300_for_a_manager_and_none_for_an_admin():
    current = reads.settings(None)
    assert reads.hourly_limit(REP, current) == 60
    assert reads.hourly_limit(MANAGER, current) == 300
    assert reads.hourly_limit(ADMIN, current) is None


def test_the_company_s_settings_replace_the_defaults():
    current = reads.settings({"_id": "reads", "rep_hourly_limit": 20,
                              "manager_hourly_limit": None})
    assert current == {"rep_hourly_limit": 20, "manager_hourly_limit": 300}
    assert reads.hourly_limit(REP, current) == 20


def test_opens_are_counted_per_user_and_clock_hour():
    assert reads.quota_key(REP.id, NOW) == "rep-zhang@2026120710"
    assert reads.quota_key(REP.id, NOW + timedelta(seconds=30)) == "rep-zhang@2026120711"
    assert reads.quota_key(MANAGER.id, NOW) != reads.quota_key(REP.id, NOW)
    assert reads.hour_of(NOW) == datetime(2026, 12, 7, 10, tzinfo=UTC)


def test_a_refusal_says_when_the_hour_ends():
    assert reads.retry_after_seconds(NOW) == 30  # 29.5 s, rounded up
    assert reads.retry_after_seconds(datetime(2026, 12, 7, 10, 0, tzinfo=UTC)) == 3600
    refusal = reads.read_limit_reached(60, NOW)
    assert isinstance(refusal, Throttled) and refusal.code == "read_limit"
    assert refusal.details == {"retry_after_seconds": 30, "limit": 60}
    assert "60" in refusal.message


def test_the_hour_s_first_open_makes_its_counter():
    quota = reads.new_quota(REP, "c1", NOW)
    assert quota == {"_id": "rep-zhang@2026120710", "user_id": "rep-zhang", "user_name": "张伟",
                     "team_id": "team-south", "hour": datetime(2026, 12, 7, 10, tzinfo=UTC),
                     "opened": ["c1"], "n": 1, "alerted_at": None}


def test_the_alert_names_the_user_his_team_the_hour_and_the_address():
    quota = {**reads.new_quota(REP, "c1", NOW), "n": 60}
    event = reads.alert_event(quota, 60, "c61", "203.0.113.7", NOW)
    assert event == {"user_id": "rep-zhang", "user_name": "张伟", "team_id": "team-south",
                     "hour": "2026-12-07T10:00:00+00:00", "limit": 60, "opened": 60,
                     "refused_customer_id": "c61", "address": "203.0.113.7",
                     "refused_at": "2026-12-07T10:59:30.500000+00:00"}


def test_a_read_log_entry_says_who_which_when_what_and_from_where():
    entry = reads.read_entry("r1", REP, "203.0.113.7", reads.LIST, ["c1", "c2"], NOW)
    assert entry == {"_id": "r1", "at": NOW, "user_id": "rep-zhang", "user_name": "张伟",
                     "team_id": "team-south", "role": "rep", "customer_ids": ["c1", "c2"],
                     "kind": "list", "address": "203.0.113.7"}
    assert reads.entry_out(entry) == {
        "id": "r1", "at": "2026-12-07T10:59:30.500000+00:00",
        "user": {"id": "rep-zhang", "name": "张伟"}, "team_id": "team-south",
        "customer_ids": ["c1", "c2"], "kind": "list", "address": "203.0.113.7",
        "export_id": None, "refused": None}
    with pytest.raises(ValueError):
        reads.read_entry("r2", REP, None, "peek", ["c1"], NOW)


def test_the_report_is_a_manager_s_team_or_everything_for_an_admin():
    day = datetime(2026, 12, 7, tzinfo=UTC)
    assert reads.report_filter(ADMIN, None, None, None, None) == {}
    assert reads.report_filter(MANAGER, None, None, day, None) == {
        "team_id": "team-south", "at": {"$gte": day}}
    mine = {"id": REP.id, "team_id": "team-south"}
    assert reads.report_filter(MANAGER, REP.id, mine, day, day + timedelta(days=1)) == {
        "team_id": "team-south", "user_id": REP.id,
        "at": {"$gte": day, "$lt": day + timedelta(days=1)}}
    with pytest.raises(NotAllowed) as other:
        reads.report_filter(OTHER_MANAGER, REP.id, mine, None, None)
    assert other.value.code == "not_your_team"
    with pytest.raises(NotAllowed):
        reads.report_filter(MANAGER, "nobody", None, None, None)
    with pytest.raises(NotAllowed):
        reads.report_filter(REP, REP.id, mine, None, None)
    with pytest.raises(InvalidFields):
        reads.report_filter(ADMIN, None, None, day, day)


def test_the_alerts_of_a_report_are_the_hours_alerted():
    flt = reads.report_filter(MANAGER, None, None, None, None, field="alerted_at")
    assert flt["team_id"] == "team-south" and "$gt" in flt["alerted_at"]


def test_a_rep_sees_a_pool_customer_s_phones_and_follow_ups_only_after_claiming_it():
    pool = {"_id": "c1", "status": "pool", "owner_id": None, "team_id": None}
    mine = {"_id": "c2", "status": "active", "owner_id": REP.id, "team_id": "team-south"}
    assert not reads.sees_contacts(REP, pool)
    assert reads.sees_contacts(MANAGER, pool) and reads.sees_contacts(ADMIN, pool)
    assert reads.sees_contacts(REP, mine)
    with pytest.raises(NotAllowed) as refused:
        reads.check_may_read_followups(REP, pool)
    assert refused.value.code == "claim_first"
    assert reads.check_may_read_followups(MANAGER, pool) is pool
    assert reads.check_may_read_followups(REP, mine) is mine


def test_a_pool_customer_says_why_it_was_abandoned():
    alarm = {"_id": "a1", "reason": "客户公司搬迁，联系不上", "note": "核实属实，放弃到公海",
             "decision": "abandon"}
    stored = {"status": "pool", "abandoned": reads.abandoned_fields(alarm, REP, NOW)}
    assert reads.abandoned_out(stored, None) == {
        "at": "2026-12-07T10:59:30.500000+00:00", "reason": "客户公司搬迁，联系不上",
        "note": "核实属实，放弃到公海", "how": "abandon"}
    # pooled before the reason was kept on the customer: its alarm says it
    older = {"status": "pool", "pooled_at": NOW}
    assert reads.abandoned_out(older, alarm)["reason"] == "客户公司搬迁，联系不上"
    assert reads.abandoned_out({**stored, "status": "active"}, alarm) is None


def test_only_managers_and_admins_export():
    assert reads.export_scope(MANAGER) == "team-south"
    assert reads.export_scope(ADMIN) is None
    with pytest.raises(NotAllowed):
        reads.export_scope(REP)
