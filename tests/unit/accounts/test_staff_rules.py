"""Who may change, disable or reset whom (services/accounts/domain.py)."""

import pytest

from services.accounts import domain
from services.common.errors import Forbidden
from services.common.principal import Principal

ADMIN = Principal("u-admin", "admin", None, "管理员")
MANAGER = Principal("u-wang", "manager", "south", "王经理")
REP = Principal("u-zhang", "rep", "south", "张伟")
ZHANG = {"_id": "u-zhang", "role": "rep", "team_id": "south", "name": "张伟"}
ZHAO = {"_id": "u-zhao", "role": "rep", "team_id": "north", "name": "赵磊"}
WANG = {"_id": "u-wang", "role": "manager", "team_id": "south", "name": "王经理"}
ADMIN_DOC = {"_id": "u-admin", "role": "admin", "team_id": None, "name": "管理员"}


def test_a_manager_disables_and_renames_his_reps():
    domain.check_may_change_user(MANAGER, ZHANG, {"active": False, "name": "张伟(离职)"})


@pytest.mark.parametrize(("target", "changes"), [
    (ZHAO, {"active": False}),          # another team's rep
    (WANG, {"active": False}),          # himself, a manager
    (ZHANG, {"role": "manager"}),       # a promotion is an admin's
    (ZHANG, {"team_id": "north"}),      # so is a transfer
])
def test_a_manager_may_not(target, changes):
    with pytest.raises(Forbidden):
        domain.check_may_change_user(MANAGER, target, changes)


def test_a_rep_changes_nobody():
    with pytest.raises(Forbidden):
        domain.check_may_change_user(REP, ZHANG, {"name": "x"})


def test_an_admin_cannot_lock_himself_out():
    with pytest.raises(Forbidden) as refused:
        domain.check_may_change_user(ADMIN, ADMIN_DOC, {"active": False})
    assert refused.value.code == "cannot_lock_self_out"
    with pytest.raises(Forbidden):
        domain.check_may_change_user(ADMIN, ADMIN_DOC, {"role": "manager"})
    domain.check_may_change_user(ADMIN, ADMIN_DOC, {"name": "系统管理员"})


def test_only_real_changes_count_and_role_team_activity_revoke_tokens():
    changes = domain.user_changes({**ZHANG, "phone": "+8613812345678"},
                                  {"name": "张伟", "phone": "+8613900001111", "active": True})
    assert changes == {"phone": "+8613900001111"}
    assert not domain.revokes_sessions(changes)
    assert domain.revokes_sessions({"active": False})
    assert domain.revokes_sessions({"role": "manager"})


def test_password_resets_by_admin_or_his_manager():
    domain.check_may_reset_password(ADMIN, WANG)
    domain.check_may_reset_password(MANAGER, ZHANG)
    for actor, target in ((MANAGER, ZHAO), (MANAGER, ADMIN_DOC), (REP, ZHANG)):
        with pytest.raises(Forbidden):
            domain.check_may_reset_password(actor, target)


def test_session_state_defaults_for_users_stored_before_it_existed():
    assert domain.session_state({"_id": "x"}) == {"active": True, "generation": 0}


def test_a_patch_cannot_clear_a_name_a_role_or_activity():
    assert domain.cleared_required({"name": None, "phone": None, "active": False}) == {
        "name": "a user has a name"}
    assert set(domain.cleared_required({"role": None, "active": None})) == {"role", "active"}
    assert domain.cleared_required({"phone": None, "team_id": None}) == {}
