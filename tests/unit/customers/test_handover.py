"""Who may hand a rep's customers over, to whom, and who gets which."""

import pytest

from services.customers import handover
from services.customers.errors import InvalidFields, NotAllowed, NotVisible
from tests.unit.customers.people import ADMIN, MANAGER, OTHER_MANAGER

LEAVER = {"id": "rep-zhang", "name": "张伟", "role": "rep", "team_id": "team-south",
          "active": False}
LI = {"id": "rep-li", "name": "李娜", "role": "rep", "team_id": "team-south", "active": True}
CHEN = {"id": "rep-chen", "name": "陈晨", "role": "rep", "team_id": "team-south", "active": True}
ZHAO = {"id": "rep-zhao", "name": "赵磊", "role": "rep", "team_id": "team-north", "active": True}
GONE = {"id": "rep-gone", "name": "离职的", "role": "rep", "team_id": "team-south",
        "active": False}
USERS = {u["id"]: u for u in (LEAVER, LI, CHEN, ZHAO, GONE)}


def test_his_manager_and_an_admin_hand_over_a_disabled_reps_customers():
    assert handover.check_may_hand_over(MANAGER, LEAVER) is LEAVER
    assert handover.check_may_hand_over(ADMIN, LEAVER) is LEAVER


def test_another_teams_manager_may_not():
    with pytest.raises(NotAllowed):
        handover.check_may_hand_over(OTHER_MANAGER, LEAVER)


def test_an_unknown_user_is_not_found():
    with pytest.raises(NotVisible):
        handover.check_may_hand_over(ADMIN, None)


def test_round_robin_over_several_new_owners():
    owners = handover.targets(MANAGER, LEAVER, ["rep-li", "rep-chen"], USERS)
    moves = handover.plan(["c1", "c2", "c3", "c4", "c5"], owners)
    assert [to["id"] for _, to in moves] == ["rep-li", "rep-chen", "rep-li", "rep-chen",
                                             "rep-li"]
    shares = handover.summary(moves)
    assert [(s["to"]["name"], s["count"]) for s in shares] == [("李娜", 3), ("陈晨", 2)]


def test_to_the_pool():
    moves = handover.plan(["c1", "c2"], handover.targets(ADMIN, LEAVER, "pool", USERS))
    assert handover.summary(moves) == [{"to": None, "pool": True, "count": 2}]


@pytest.mark.parametrize(("actor", "to", "field", "why"), [
    (MANAGER, "rep-zhao", "to", "within his team"),
    (ADMIN, "rep-gone", "to", "disabled"),
    (ADMIN, "rep-zhang", "to", "already his"),
    (ADMIN, "nobody", "to", "no such user"),
    (ADMIN, ["rep-li", "rep-li"], "to", "twice"),
    (ADMIN, ["rep-li", "pool"], "to.1", "pool"),
])
def test_bad_targets_are_named(actor, to, field, why):
    with pytest.raises(InvalidFields) as refused:
        handover.targets(actor, LEAVER, to, USERS)
    assert why in refused.value.details["fields"][field]


def test_an_admin_may_hand_over_across_teams():
    assert handover.targets(ADMIN, LEAVER, "rep-zhao", USERS)[0]["team_id"] == "team-north"


def test_only_his_own_customers_are_chosen():
    chosen, not_his = handover.selection(["c1", "c2", "c3"], ["c3", "c9", "c1", "c3"])
    assert chosen == ["c3", "c1"] and not_his == ["c9"]
    assert handover.selection(["c1", "c2"], None) == (["c1", "c2"], [])


def test_a_customer_claimed_meanwhile_is_no_longer_his():
    assert handover.still_his({"owner_id": "rep-zhang", "status": "active"}, "rep-zhang")
    assert not handover.still_his({"owner_id": "rep-li", "status": "active"}, "rep-zhang")
    assert not handover.still_his({"owner_id": None, "status": "pool"}, "rep-zhang")
