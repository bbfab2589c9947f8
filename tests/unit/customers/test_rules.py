from datetime import UTC, datetime, timedelta

import pytest

from services.customers import rules as lc
from services.customers.errors import (
    CustomerError,
    InvalidFields,
    NotAllowed,
    to_rpc,
)
from tests.unit.customers import people
from tests.unit.customers.people import ADMIN, MANAGER, OTHER_MANAGER, REP, REP2

OWNER, OTHER_REP, FAR_REP, FAR_MANAGER = REP, REP2, people.OTHER_REP, OTHER_MANAGER

CUSTOMER = {"_id": "c1", "company_name": "深圳市华强电子有限公司", "owner_id": "rep-zhang",
            "team_id": "team-south", "status": "active", "stage": 25,
            "phones": ["+8675583216666"], "expected_value_fen": 5000000,
            "contacts": [{"name": "陈总", "title": "采购总监", "decision_level": 3}]}
POOLED = {**CUSTOMER, "_id": "c2", "owner_id": None, "team_id": None, "status": "pool"}


def code(fn, *args):
    """What the client gets: the status and code the entrypoint maps to."""
    try:
        fn(*args)
    except CustomerError as exc:
        answer = to_rpc(exc)
        return answer.status, answer.code
    return 200, None


def test_visibility():
    assert lc.may_see(OWNER, CUSTOMER)
    assert lc.may_see(MANAGER, CUSTOMER)
    assert lc.may_see(ADMIN, CUSTOMER)
    assert not lc.may_see(OTHER_REP, CUSTOMER)
    assert not lc.may_see(FAR_MANAGER, CUSTOMER)
    # the public pool is public
    assert all(lc.may_see(p, POOLED) for p in (OTHER_REP, FAR_REP, FAR_MANAGER))


def test_patch_matrix():
    assert code(lc.check_may_patch, OWNER, CUSTOMER) == (403, "records_are_immutable")
    assert code(lc.check_may_patch, OTHER_REP, CUSTOMER) == (403, "records_are_immutable")
    assert code(lc.check_may_patch, MANAGER, CUSTOMER) == (200, None)
    assert code(lc.check_may_patch, FAR_MANAGER, CUSTOMER) == (404, "not_found")
    assert code(lc.check_may_patch, ADMIN, CUSTOMER) == (200, None)
    assert code(lc.check_may_patch, MANAGER, None) == (404, "not_found")
    # nobody's team: only an admin fixes a pool record
    assert code(lc.check_may_patch, MANAGER, POOLED) == (403, "forbidden")
    assert code(lc.check_may_patch, ADMIN, POOLED) == (200, None)


def test_nobody_deletes():
    for who in (OWNER, MANAGER, ADMIN):
        assert code(lc.refuse_delete, who) == (403, "records_are_immutable")


def test_amendment_matrix():
    assert code(lc.check_may_amend, OWNER, CUSTOMER) == (200, None)
    assert code(lc.check_may_amend, OTHER_REP, CUSTOMER) == (404, "not_found")
    assert code(lc.check_may_amend, MANAGER, CUSTOMER) == (403, "forbidden")
    assert code(lc.check_may_decide_amendment, MANAGER, CUSTOMER) == (200, None)
    assert code(lc.check_may_decide_amendment, ADMIN, CUSTOMER) == (200, None)
    assert code(lc.check_may_decide_amendment, OWNER, CUSTOMER) == (403, "forbidden")
    assert code(lc.check_may_decide_amendment, FAR_MANAGER, CUSTOMER) == (403, "forbidden")
    assert code(lc.check_amendment_pending, {"status": "approved"}) == (
        409, "amendment_not_pending")


def test_an_amendment_counts_only_in_the_ownership_it_was_asked_in():
    asked = datetime(2026, 3, 9, 10, 30, tzinfo=UTC)
    amendment = {"owner_id": "rep-zhang", "requested_at": asked}
    check = lc.check_amendment_current
    assert code(check, amendment, CUSTOMER) == (200, None)  # never changed hands
    assert code(check, amendment, {**CUSTOMER, "owner_since": asked - timedelta(days=30)}) == (
        200, None)
    assert code(check, amendment, {**CUSTOMER, "owner_id": "rep-li",
                                   "owner_since": asked + timedelta(hours=1)}) == (
        409, "amendment_stale")
    assert code(check, amendment, POOLED) == (409, "amendment_stale")
    # pooled and claimed back by the same rep: a new ownership all the same
    assert code(check, amendment, {**CUSTOMER, "owner_since": asked + timedelta(days=2)}) == (
        409, "amendment_stale")


def test_an_alarm_is_overtaken_once_the_customer_changed_hands():
    raised = datetime(2026, 3, 9, 10, 30, tzinfo=UTC)
    alarm = {"owner_id": "rep-zhang", "raised_at": raised}
    assert not lc.alarm_overtaken(alarm, CUSTOMER)
    assert not lc.alarm_overtaken(alarm, {**CUSTOMER, "owner_since": raised - timedelta(days=1)})
    assert lc.alarm_overtaken(alarm, {**CUSTOMER, "owner_id": "rep-li"})
    assert lc.alarm_overtaken(alarm, POOLED)
    assert lc.alarm_overtaken(alarm, None)
    assert lc.alarm_overtaken(alarm, {**CUSTOMER, "owner_since": raised + timedelta(days=3)})


def test_diff_keeps_only_real_changes():
    changes = lc.diff(CUSTOMER, {"company_name": "深圳市华强电子有限公司",
                                 "phones": ["+8675583216666", "+8613800138000"],
                                 "expected_value_fen": 8000000})
    assert changes == {
        "phones": {"before": ["+8675583216666"], "after": ["+8675583216666", "+8613800138000"]},
        "expected_value_fen": {"before": 5000000, "after": 8000000}}
    assert lc.touches_keys(changes)
    assert not lc.touches_keys({"expected_value_fen": changes["expected_value_fen"]})
    after = lc.apply_changes(CUSTOMER, changes)
    assert after["expected_value_fen"] == 8000000 and CUSTOMER["expected_value_fen"] == 5000000
    assert lc.before_after(changes) == (
        {"phones": ["+8675583216666"], "expected_value_fen": 5000000},
        {"phones": ["+8675583216666", "+8613800138000"], "expected_value_fen": 8000000})
    with pytest.raises(InvalidFields):
        lc.require_changes(lc.diff(CUSTOMER, {"company_name": CUSTOMER["company_name"]}))
    with pytest.raises(InvalidFields) as err:
        lc.diff(CUSTOMER, {"owner_id": "rep-li"})
    assert err.value.details["fields"] == {"changes.owner_id": "cannot be changed here"}


def test_stage_change_is_the_owners():
    assert code(lc.check_may_change_stage, OWNER, CUSTOMER) == (200, None)
    assert code(lc.check_may_change_stage, MANAGER, CUSTOMER) == (403, "forbidden")
    assert code(lc.check_may_change_stage, OTHER_REP, CUSTOMER) == (404, "not_found")
    assert code(lc.check_may_change_stage, OTHER_REP, POOLED) == (403, "forbidden")


ALARM = {"_id": "a1", "customer_id": "c1", "owner_id": "rep-zhang", "team_id": "team-south",
         "status": "open"}


def test_alarm_matrix():
    assert code(lc.check_may_raise_alarm, OWNER, CUSTOMER) == (200, None)
    assert code(lc.check_may_raise_alarm, MANAGER, CUSTOMER) == (403, "forbidden")
    assert code(lc.check_may_raise_alarm, OTHER_REP, CUSTOMER) == (404, "not_found")
    assert code(lc.check_may_resolve_alarm, MANAGER, ALARM) == (200, None)
    assert code(lc.check_may_resolve_alarm, ADMIN, ALARM) == (200, None)
    assert code(lc.check_may_resolve_alarm, OWNER, ALARM) == (403, "forbidden")
    assert code(lc.check_may_resolve_alarm, FAR_MANAGER, ALARM) == (403, "forbidden")
    assert code(lc.check_may_resolve_alarm, MANAGER, {**ALARM, "status": "resolved"}) == (
        409, "alarm_not_open")
    assert code(lc.check_may_resolve_alarm, MANAGER, None) == (404, "not_found")


LI = {"id": "rep-li", "role": "rep", "team_id": "team-south"}


@pytest.mark.parametrize("who,decision,new_owner_id,user,field", [
    (MANAGER, "reassign", None, None, "new_owner_id"),
    (MANAGER, "reassign", "ghost", None, "new_owner_id"),
    (MANAGER, "reassign", "mgr-sun", {"id": "mgr-sun", "role": "manager", "team_id": "team-south"},
     "new_owner_id"),
    (MANAGER, "reassign", "rep-zhang", {"id": "rep-zhang", "role": "rep", "team_id": "team-south"},
     "new_owner_id"),
    (MANAGER, "reassign", "rep-zhao", {"id": "rep-zhao", "role": "rep", "team_id": "team-north"},
     "new_owner_id"),
    (MANAGER, "abandon", "rep-li", LI, "new_owner_id"),
    (MANAGER, "give_up", None, None, "decision"),
])
def test_bad_alarm_resolutions_name_the_field(who, decision, new_owner_id, user, field):
    with pytest.raises(InvalidFields) as err:
        lc.check_alarm_resolution(who, ALARM, decision, "real", new_owner_id, user)
    assert list(err.value.details["fields"]) == [field]


def test_good_alarm_resolutions():
    lc.check_alarm_resolution(MANAGER, ALARM, "reassign", "real", "rep-li", LI)
    lc.check_alarm_resolution(MANAGER, ALARM, "abandon", "fake", None, None)
    lc.check_alarm_resolution(MANAGER, ALARM, "continue", "unchecked", None, None)
    # an admin may hand it to any team's rep
    lc.check_alarm_resolution(ADMIN, ALARM, "reassign", "real", "rep-zhao",
                              {"id": "rep-zhao", "role": "rep", "team_id": "team-north"})
    with pytest.raises(InvalidFields):
        lc.check_alarm_resolution(MANAGER, ALARM, "continue", "maybe", None, None)


def test_abandon_needs_an_abandon_alarm():
    assert code(lc.check_may_abandon, OWNER, CUSTOMER, None) == (409, "alarm_required")
    assert code(lc.check_may_abandon, OWNER, CUSTOMER, {"_id": "a1"}) == (200, None)
    assert code(lc.check_may_abandon, MANAGER, CUSTOMER, {"_id": "a1"}) == (403, "forbidden")
    assert code(lc.check_may_abandon, OWNER, POOLED, {"_id": "a1"}) == (403, "forbidden")
    assert lc.spend_alarm_filter({"_id": "a1", "decision": "abandon"}) == {
        "_id": "a1", "status": "resolved", "decision": "abandon", "used_at": None}


OWNED_SINCE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HELD = {**CUSTOMER, "created_at": OWNED_SINCE}
ABANDON = {"_id": "a1", "customer_id": "c1", "owner_id": "rep-zhang", "status": "resolved",
           "decision": "abandon", "used_at": None,
           "raised_at": OWNED_SINCE + timedelta(days=40)}


def test_an_abandon_decision_on_the_latest_alarm_entitles_its_rep():
    assert lc.abandon_alarm(HELD, OWNER, ABANDON) is ABANDON
    assert lc.abandon_alarm(HELD, OWNER, None) is None
    assert lc.abandon_alarm(HELD, OTHER_REP, ABANDON) is None
    # spent once: a second abandon needs a new alarm, except for the re-check
    # of the abandonment that spent it
    spent = {**ABANDON, "used_at": OWNED_SINCE + timedelta(days=41)}
    assert lc.abandon_alarm(HELD, OWNER, spent) is None
    assert lc.abandon_alarm(HELD, OWNER, spent, spending="a1") is spent
    assert lc.abandon_alarm(HELD, OWNER, spent, spending="a0") is None


def test_a_later_alarm_overrides_an_old_abandon_decision():
    # 王经理 allowed the abandon on alarm a1 (April); 张伟 kept the customer,
    # raised a2 in May and was told to continue: a1 licenses nothing any more
    later = {**ABANDON, "_id": "a2", "decision": "continue",
             "raised_at": ABANDON["raised_at"] + timedelta(days=30)}
    assert lc.abandon_alarm(HELD, OWNER, later) is None
    # nor while a2 is still open
    open_alarm = {**later, "status": "open", "decision": None}
    assert lc.abandon_alarm(HELD, OWNER, open_alarm) is None


def test_an_abandon_decision_does_not_survive_a_change_of_owner():
    # the customer went to 李娜 by a dispute and came back to 张伟 in June
    back = {**HELD, "owner_since": ABANDON["raised_at"] + timedelta(days=60)}
    assert lc.abandon_alarm(back, OWNER, ABANDON) is None
    # an alarm raised after he got it back counts
    fresh = {**ABANDON, "_id": "a3", "raised_at": back["owner_since"] + timedelta(days=5)}
    assert lc.abandon_alarm(back, OWNER, fresh) is fresh
    # records from before owner_since was kept: the last pool claim decides
    claimed = {**HELD, "claimed_at": ABANDON["raised_at"] + timedelta(days=1)}
    assert lc.abandon_alarm(claimed, OWNER, ABANDON) is None


def test_claim():
    assert code(lc.check_may_claim, OTHER_REP, POOLED) == (200, None)
    assert code(lc.check_may_claim, FAR_REP, POOLED) == (200, None)
    assert code(lc.check_may_claim, OTHER_REP, CUSTOMER) == (409, "not_in_pool")
    assert code(lc.check_may_claim, MANAGER, POOLED) == (403, "forbidden")
    assert code(lc.check_may_claim, OTHER_REP, None) == (404, "not_found")


DISPUTE = {"_id": "d1", "customer_id": "c1", "claimant_id": "rep-li", "claimant_team_id": "team-south",
           "owner_id": "rep-zhang", "team_id": "team-south", "status": "open"}


def test_dispute_matrix():
    assert code(lc.check_may_file_dispute, OTHER_REP, CUSTOMER) == (200, None)
    assert code(lc.check_may_file_dispute, FAR_REP, CUSTOMER) == (200, None)
    assert code(lc.check_may_file_dispute, OWNER, CUSTOMER) == (409, "already_owner")
    assert code(lc.check_may_file_dispute, MANAGER, CUSTOMER) == (403, "forbidden")
    assert code(lc.check_may_file_dispute, OTHER_REP, POOLED) == (409, "in_pool")
    assert code(lc.check_may_resolve_dispute, MANAGER, DISPUTE) == (200, None)
    assert code(lc.check_may_resolve_dispute, ADMIN, DISPUTE) == (200, None)
    assert code(lc.check_may_resolve_dispute, OWNER, DISPUTE) == (403, "forbidden")
    assert code(lc.check_may_resolve_dispute, FAR_MANAGER, DISPUTE) == (403, "forbidden")
    across = {**DISPUTE, "claimant_id": "rep-zhao", "claimant_team_id": "team-north"}
    assert code(lc.check_may_resolve_dispute, MANAGER, across) == (403, "forbidden")
    assert code(lc.check_may_resolve_dispute, ADMIN, across) == (200, None)
    assert code(lc.check_may_resolve_dispute, ADMIN, {**DISPUTE, "status": "resolved"}) == (
        409, "dispute_not_open")
    assert code(lc.check_may_resolve_dispute, ADMIN, {**DISPUTE, "status": "void"}) == (
        409, "dispute_not_open")


def test_a_dispute_is_stale_once_the_customer_changed_hands():
    assert not lc.is_dispute_stale(DISPUTE, CUSTOMER)
    assert lc.is_dispute_stale(DISPUTE, {**CUSTOMER, "owner_id": "rep-zhao"})
    assert lc.is_dispute_stale(DISPUTE, POOLED)


def test_decision_power_decides_the_dispute():
    assert lc.best_decision_level(CUSTOMER["contacts"]) == 3
    assert lc.best_decision_level([]) == 0
    assert lc.dispute_rule_winner(5, 3) == "claimant"
    assert lc.dispute_rule_winner(2, 3) == "owner"
    assert lc.dispute_rule_winner(3, 3) is None
    # the claimant's 总经理 (5) beats the owner's 采购总监 (3)
    assert lc.check_dispute_decision(DISPUTE, 3, 5, "rep-li") == "claimant"
    with pytest.raises(InvalidFields) as err:
        lc.check_dispute_decision(DISPUTE, 3, 5, "rep-zhang")
    assert "claimant wins" in err.value.details["fields"]["winner_id"]
    # a tie is the manager's call
    assert lc.check_dispute_decision(DISPUTE, 3, 3, "rep-zhang") == "owner"
    assert lc.check_dispute_decision(DISPUTE, 3, 3, "rep-li") == "claimant"
    with pytest.raises(InvalidFields):
        lc.check_dispute_decision(DISPUTE, 3, 3, "rep-zhao")


def test_integrity_rows():
    reps = [{"id": "rep-zhang", "name": "张伟"}, {"id": "rep-li", "name": "李娜"}]
    rows = lc.integrity_rows(reps, {
        "rep-zhang": {"customers": 12, "created": 15, "alarms": 3, "abandoned": 2,
                    "verified_fake": 1},
        "u_gone": {"customers": 1},
    })
    assert [r["rep"] for r in rows] == [
        {"id": "rep-zhang", "name": "张伟"}, {"id": "rep-li", "name": "李娜"},
        {"id": "u_gone", "name": None}]
    assert rows[0] == {"rep": {"id": "rep-zhang", "name": "张伟"}, "customers": 12, "created": 15,
                       "alarms": 3, "abandoned": 2, "verified_fake": 1}
    assert rows[1]["customers"] == 0 and rows[1]["verified_fake"] == 0


def test_report_scope():
    assert lc.report_scope(ADMIN) is None
    assert lc.report_scope(MANAGER) == "team-south"
    with pytest.raises(NotAllowed):
        lc.report_scope(OWNER)


def test_snapshot_has_the_created_fields():
    snap = lc.snapshot(CUSTOMER)
    assert set(snap) == {"company_name", "owner_id", "team_id", "stage", "expected_value_fen",
                         "status", "birthday", "birthday_label", "birthday_kind"}
    assert snap["birthday"] is None


def test_changes_are_normalized_as_create_normalizes():
    out = lc.normalize_changes({"phones": ["0755-8321 6666", "138 0013 8000"],
                                "emails": ["Purchase@HuaQiang-Elec.cn"],
                                "expected_value": 88000.5, "birthday_label": "公司成立纪念日",
                                "contacts": [{"name": "陈志强", "phone": "13800138000",
                                              "decision_level": 4}]})
    assert out["phones"] == ["+8675583216666", "+8613800138000"]
    assert out["emails"] == ["purchase@huaqiang-elec.cn"]
    assert out["expected_value_fen"] == 8800050
    assert out["birthday_kind"] == "anniversary"
    assert out["contacts"][0]["phone"] == "+8613800138000"
    assert "company_name" not in out and "credit_code" not in out


@pytest.mark.parametrize("changes,field", [
    ({"company_name": None}, "changes.company_name"),
    ({"company_name": "  "}, "changes.company_name"),
    ({"phones": ["12"]}, "changes.phones"),
    ({"credit_code": "91440300708461136X"}, "changes.credit_code"),
    ({"birthday": "02-30"}, "changes.birthday"),
    ({"expected_value": 1.234}, "changes.expected_value"),
])
def test_bad_changes_name_the_field(changes, field):
    with pytest.raises(InvalidFields) as err:
        lc.normalize_changes(changes)
    assert list(err.value.details["fields"]) == [field]


def test_a_new_name_brings_its_search_fields():
    got = lc.name_fields("深圳市华强电子有限公司")
    assert got["name_core"] == "华强电子" and got["name_region"] == "广东/深圳"
    assert "华强" in got["name_grams"]
