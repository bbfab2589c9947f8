"""The customer lifecycle over real RabbitMQ and FerretDB: amendments through
the duplicate guard, stages, alarms, the public pool, disputes, referrals,
the audit chain, the integrity report, the deal export, and every event it
emits reaching a subscriber with the documented payload."""

from datetime import UTC, datetime

import pytest

from services.accounts.service import AccountsService
from services.common import events
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.events import handles
from services.common.standalone import ServiceRpcClient
from services.customers import audit
from services.customers.service import CustomersService
from tests.waiting import wait_for

EVENTS = ("CustomerAmended", "StageChanged", "StagesChanged", "OwnerChanged", "AlarmRaised",
          "AlarmResolved", "DisputeFiled", "CustomerAbandoned")
ENVELOPE = {"event_id", "occurred_at"}
SNAPSHOT = {"company_name", "owner_id", "team_id", "stage", "expected_value_fen", "status",
            "birthday", "birthday_label", "birthday_kind"}
CONTRACT = {
    "CustomerAmended": {"customer_id", "version", "changes", "amended_by"} | SNAPSHOT,
    "StageChanged": {"customer_id", "version", "from", "to", "expected_value_fen", "owner_id",
                     "team_id", "changed_by", "note"},
    "StagesChanged": {"stages", "changed_by"},
    "OwnerChanged": {"customer_id", "version", "old_owner_id", "new_owner_id", "old_team_id",
                     "new_team_id", "reason", "company_name", "stage", "expected_value_fen",
                     "status", "birthday", "birthday_label", "birthday_kind"},
    "AlarmRaised": {"alarm_id", "customer_id", "company_name", "owner_id", "team_id", "reason",
                    "raised_by"},
    "AlarmResolved": {"alarm_id", "customer_id", "company_name", "owner_id", "team_id",
                      "reason", "decision", "note", "verified", "resolved_by", "new_owner_id"},
    "DisputeFiled": {"dispute_id", "customer_id", "company_name", "claimant_id",
                     "claimant_team_id", "owner_id", "team_id", "contact", "note"},
    "CustomerAbandoned": {"customer_id", "version", "owner_id", "team_id", "company_name",
                          "stage", "expected_value_fen", "status"},
}


def _handler(event_type):
    def on(self, payload):
        self.seen.setdefault(event_type, []).append(payload)

    on.__name__ = events.handler_name(event_type)
    return handles("customers", event_type)(on)


class Listener:
    name = "integritylisten"
    seen: dict = {}


for _etype in EVENTS:
    setattr(Listener, events.handler_name(_etype), _handler(_etype))


def received(event_type, n=1, **match):
    """Wait until `n` events of a type matching `match` have arrived."""
    def found():
        return [p for p in Listener.seen.get(event_type, [])
                if all(p.get(k) == v for k, v in match.items())]

    wait_for(lambda: len(found()) >= n)
    got = found()
    for p in got:
        assert set(p) >= CONTRACT[event_type] | ENVELOPE, (event_type, set(p))
    return got[-1]


@pytest.fixture
def rpc(container_factory, service_config, monkeypatch):
    for etype in EVENTS:
        subs = events.SUBSCRIPTIONS[("customers", etype)]
        monkeypatch.setitem(events.SUBSCRIPTIONS, ("customers", etype), (*subs, Listener.name))
    Listener.seen = {}
    for cls in (AccountsService, CustomersService, Listener):
        container_factory(cls, service_config).start()
    with ServiceRpcClient("customers") as customers, ServiceRpcClient("accounts") as accounts:
        yield customers, accounts


@pytest.fixture
def db(db_of):
    return db_of("customers")


@pytest.fixture
def people(rpc):
    _, accounts = rpc
    admin = {"id": "boot", "role": "admin", "team_id": None, "name": "管理员", "username": "admin"}
    south = accounts.create_team(admin, {"name": "华南销售一部"})
    north = accounts.create_team(admin, {"name": "华北销售二部"})

    def user(username, name, role, team):
        u = accounts.create_user(admin, {"username": username, "password": "口令-" + username[::-1] + "-7f3Q",
                                         "name": name, "role": role, "team_id": team["id"]})
        return {k: u[k] for k in ("id", "role", "team_id", "name", "username")}

    return {
        "admin": admin,
        "zhang": user("zhangwei", "张伟", "rep", south),
        "li": user("lina", "李娜", "rep", south),
        "zhao": user("zhaolei", "赵磊", "rep", north),
        "wang": user("wangjl", "王经理", "manager", south),
        "sun": user("sunjl", "孙经理", "manager", north),
    }


def huaqiang(**extra):
    return {"company_name": "深圳市华强电子有限公司", "phones": ["0755-83216666"],
            "emails": ["purchase@huaqiang-elec.cn"], "expected_value": 50000,
            "contacts": [{"name": "陈志强", "title": "采购总监", "decision_level": 3}], **extra}


def hongda(**extra):
    return {"company_name": "广州宏达贸易有限公司", "phones": ["020-38886666"],
            "expected_value": 120000.5, **extra}


# ------------------------------------------------------------------ stages


def test_stage_change_emits_and_is_recorded(rpc, people):
    customers, _ = rpc
    zhang = people["zhang"]
    c = customers.create(zhang, huaqiang())
    out = customers.change_stage(zhang, c["id"], {"stage": 25, "note": "客户同意试样"})
    assert out["stage"] == 25 and out["version"] == 2
    payload = received("StageChanged", customer_id=c["id"])
    assert (payload["from"], payload["to"], payload["version"]) == (0, 25, 2)
    assert payload["expected_value_fen"] == 5000000
    assert (payload["owner_id"], payload["team_id"]) == (zhang["id"], zhang["team_id"])
    assert payload["changed_by"] == zhang["id"] and payload["note"] == "客户同意试样"
    # the same stage again changes nothing
    assert customers.change_stage(zhang, c["id"], {"stage": 25})["version"] == 2
    with pytest.raises(Invalid) as err:
        customers.change_stage(zhang, c["id"], {"stage": 30})
    assert "30 is not in the stage list" in err.value.details["fields"]["stage"]
    with pytest.raises(Forbidden):
        customers.change_stage(people["wang"], c["id"], {"stage": 50})
    with pytest.raises(NotFound):
        customers.change_stage(people["li"], c["id"], {"stage": 50})


def test_stage_list_is_owned_here(rpc, people):
    customers, _ = rpc
    assert [s["stage"] for s in customers.get_stages()] == [0, 10, 25, 50, 75, 90, 100]
    with pytest.raises(Forbidden):
        customers.put_stages(people["wang"], [{"stage": 0, "label": "线索"}])
    new = [{"stage": 0, "label": "线索"}, {"stage": 30, "label": "方案演示", "probability": 20},
           {"stage": 60, "label": "商务谈判"}, {"stage": 100, "label": "成交", "active": False}]
    out = customers.put_stages(people["admin"], new)
    assert out[1] == {"stage": 30, "label": "方案演示", "probability": 20, "active": True}
    payload = received("StagesChanged")
    assert payload["stages"] == out and payload["changed_by"] == "boot"
    # create and stage changes now follow the new list
    zhang = people["zhang"]
    c = customers.create(zhang, huaqiang(stage=30))
    assert customers.change_stage(zhang, c["id"], {"stage": 60})["stage"] == 60
    with pytest.raises(Invalid):
        customers.change_stage(zhang, c["id"], {"stage": 25})
    with pytest.raises(Invalid) as err:
        customers.put_stages(people["admin"], [{"stage": 10, "label": "甲"},
                                               {"stage": 10, "label": "乙"}])
    assert "1.stage" in err.value.details["fields"]


# -------------------------------------------------------------- amendments


def test_amendment_approved_is_applied_audited_and_announced(rpc, people, db):
    customers, _ = rpc
    zhang, wang = people["zhang"], people["wang"]
    c = customers.create(zhang, huaqiang())
    a = customers.request_amendment(zhang, c["id"], {
        "changes": {"phones": ["0755-83216666", "13800138000"], "expected_value": 88000},
        "reason": "客户新增了采购经理手机，预算上调"})
    assert a["status"] == "pending"
    assert customers.get_customer(zhang, c["id"])["expected_value"] == 50000  # not yet
    with pytest.raises(Forbidden):
        customers.approve_amendment(zhang, a["id"])
    with pytest.raises(Forbidden):
        customers.approve_amendment(people["sun"], a["id"])
    done = customers.approve_amendment(wang, a["id"], {"note": "核实无误"})
    assert done["status"] == "approved" and done["decided_by"]["id"] == wang["id"]
    got = customers.get_customer(zhang, c["id"])
    assert got["phones"] == ["+8675583216666", "+8613800138000"]
    assert got["expected_value"] == 88000 and got["version"] == 2
    payload = received("CustomerAmended", customer_id=c["id"])
    assert payload["changes"] == {
        "phones": {"before": ["+8675583216666"], "after": ["+8675583216666", "+8613800138000"]},
        "expected_value_fen": {"before": 5000000, "after": 8800000}}
    assert payload["version"] == 2 and payload["amended_by"] == wang["id"]
    assert payload["expected_value_fen"] == 8800000 and payload["owner_id"] == zhang["id"]
    # the new phone is a duplicate-guard key now
    check = customers.check(people["zhao"], {"phones": ["138-0013-8000"]})
    assert [m["customer_id"] for m in check["matches"]] == [c["id"]]
    with pytest.raises(Conflict) as err:
        customers.approve_amendment(wang, a["id"])
    assert err.value.code == "amendment_not_pending"
    actions = [e["action"] for e in db.audit.find({"customer_id": c["id"]}).sort("seq", 1)]
    assert actions == ["create", "amendment_requested", "amendment_approved"]


def test_amendment_rules(rpc, people):
    customers, _ = rpc
    zhang, wang = people["zhang"], people["wang"]
    c = customers.create(zhang, huaqiang())
    with pytest.raises(Forbidden):
        customers.request_amendment(wang, c["id"], {"changes": {"industry": "电子"},
                                                     "reason": "补充行业"})
    with pytest.raises(NotFound):
        customers.request_amendment(people["li"], c["id"], {"changes": {"industry": "电子"},
                                                             "reason": "补充行业"})
    with pytest.raises(Invalid) as err:
        customers.request_amendment(zhang, c["id"], {
            "changes": {"company_name": "深圳市华强电子有限公司"}, "reason": "无变化"})
    assert err.value.details["fields"] == {"changes": "nothing would change"}
    with pytest.raises(Invalid) as err:
        customers.request_amendment(zhang, c["id"], {"changes": {"phones": ["12"]},
                                                     "reason": "号码"})
    assert list(err.value.details["fields"]) == ["changes.phones"]
    with pytest.raises(Invalid):
        customers.request_amendment(zhang, c["id"], {"changes": {"stage": 50}, "reason": "x"})
    a = customers.request_amendment(zhang, c["id"], {"changes": {"industry": "电子元器件"},
                                                     "reason": "补充行业"})
    r = customers.reject_amendment(wang, a["id"], {"note": "行业已有"})
    assert r["status"] == "rejected" and r["note"] == "行业已有"
    assert customers.get_customer(zhang, c["id"])["industry"] is None
    pending = customers.list_amendments(wang, {"status": "pending"})
    assert pending["total"] == 0
    assert customers.list_amendments(zhang, {})["total"] == 1
    assert customers.list_amendments(people["sun"], {})["total"] == 0


def test_a_rename_into_a_taken_name_is_refused_and_the_old_claim_kept(rpc, people, db):
    customers, _ = rpc
    zhang, li, wang = people["zhang"], people["li"], people["wang"]
    c = customers.create(zhang, hongda())
    # asking for a name someone holds is refused at once
    customers.create(li, huaqiang())
    with pytest.raises(Conflict) as err:
        customers.request_amendment(zhang, c["id"], {
            "changes": {"company_name": "华强电子（深圳）有限公司"}, "reason": "改名"})
    assert err.value.code == "duplicate_customer"
    # a name free when asked but taken before the approval is refused then
    a = customers.request_amendment(zhang, c["id"], {
        "changes": {"company_name": "广州宏达国际贸易有限公司"}, "reason": "工商变更"})
    other = customers.create(li, {"company_name": "宏达国际贸易（广州）有限公司"})
    with pytest.raises(Conflict) as err:
        customers.approve_amendment(wang, a["id"])
    assert err.value.code == "duplicate_customer"
    assert err.value.details["matches"][0]["customer_id"] == other["id"]
    assert customers.list_amendments(wang, {"customer_id": c["id"]})["items"][0][
        "rejected_because"] == "duplicate_customer"
    # nothing was lost: the old name still blocks, the record is unchanged
    assert customers.get_customer(zhang, c["id"])["company_name"] == "广州宏达贸易有限公司"
    blocked = customers.check(people["zhao"], {"company_name": "宏达贸易（广州）有限公司"})
    assert [m["customer_id"] for m in blocked["matches"]] == [c["id"]]
    # a free new name: taken first, then the old one released
    b = customers.request_amendment(zhang, c["id"], {
        "changes": {"company_name": "广州宏达供应链有限公司"}, "reason": "工商变更"})
    customers.approve_amendment(wang, b["id"])
    assert customers.check(people["zhao"], {"company_name": "广州宏达贸易有限公司"})["available"]
    taken = customers.check(people["zhao"], {"company_name": "宏达供应链（广州）有限公司"})
    assert [m["customer_id"] for m in taken["matches"]] == [c["id"]]
    doc = db.customers.find_one({"_id": c["id"]})
    assert doc["name_core"] == "宏达供应链" and "name:宏达供应链@广东/广州" in doc["claim_keys"]
    # near matches follow the new name, not the old one
    near = customers.check(people["zhao"], {"company_name": "广州宏达供应链管理有限公司"})
    assert c["id"] in [m["customer_id"] for m in near["similar"]]
    old = customers.check(people["zhao"], {"company_name": "广州宏达贸易发展有限公司"})
    assert c["id"] not in [m["customer_id"] for m in old["similar"] + old["matches"]]


def test_patch_is_for_managers_with_a_reason(rpc, people):
    customers, _ = rpc
    zhang, wang = people["zhang"], people["wang"]
    c = customers.create(zhang, huaqiang())
    with pytest.raises(Forbidden) as err:
        customers.patch_customer(zhang, c["id"], {"changes": {"industry": "电子"},
                                                  "reason": "补充"})
    assert err.value.code == "records_are_immutable"
    with pytest.raises(NotFound):
        customers.patch_customer(people["sun"], c["id"], {"changes": {"industry": "电子"},
                                                          "reason": "补充"})
    out = customers.patch_customer(wang, c["id"], {
        "changes": {"industry": "电子元器件", "birthday": "03-15", "birthday_label": "陈总生日"},
        "reason": "拜访后补充"})
    assert out["industry"] == "电子元器件" and out["birthday"] == "03-15"
    payload = received("CustomerAmended", customer_id=c["id"])
    assert payload["changes"]["industry"] == {"before": None, "after": "电子元器件"}
    assert payload["birthday"] == "03-15" and payload["birthday_kind"] == "birthday"
    with pytest.raises(Forbidden) as err:
        customers.delete_customer(people["admin"], c["id"])
    assert err.value.code == "records_are_immutable"


def test_an_amendment_asked_before_an_owner_change_is_refused_not_applied(rpc, people, db):
    customers, _ = rpc
    zhang, li, wang = people["zhang"], people["li"], people["wang"]
    c = customers.create(zhang, huaqiang())
    old = customers.request_amendment(zhang, c["id"], {
        "changes": {"expected_value": 10000, "industry": "电子元器件"},
        "reason": "客户预算缩减"})
    alarm = customers.raise_alarm(zhang, c["id"], {"reason": "客户在广州，我跑不过来"})
    customers.resolve_alarm(wang, alarm["id"], {"decision": "reassign", "note": "李娜在广州",
                                                "verified": "real", "new_owner_id": li["id"]})
    # the same manager decides for the new owner now: zhang's request is not li's
    with pytest.raises(Conflict) as err:
        customers.approve_amendment(wang, old["id"])
    assert err.value.code == "amendment_stale"
    got = customers.get_customer(li, c["id"])
    assert got["expected_value"] == 50000 and got["industry"] is None
    [decided] = [a for a in customers.list_amendments(wang, {})["items"] if a["id"] == old["id"]]
    assert decided["status"] == "rejected"
    assert customers.list_amendments(wang, {"status": "pending"})["total"] == 0
    # the new owner asks for himself and that one applies
    mine = customers.request_amendment(li, c["id"], {"changes": {"industry": "电子元器件"},
                                                     "reason": "补充行业"})
    assert customers.approve_amendment(wang, mine["id"])["status"] == "approved"
    assert customers.get_customer(li, c["id"])["industry"] == "电子元器件"
    actions = [e["action"] for e in db.audit.find({"customer_id": c["id"]}).sort("seq", 1)]
    assert actions == ["create", "amendment_requested", "alarm_raised", "alarm_resolved",
                       "owner_changed", "amendment_refused", "amendment_requested",
                       "amendment_approved"]


# --------------------------------------------------------- alarms and pool


def test_alarm_abandon_pool_claim(rpc, people, db):
    customers, _ = rpc
    zhang, wang, zhao = people["zhang"], people["wang"], people["zhao"]
    c = customers.create(zhang, huaqiang(stage=25))
    with pytest.raises(Conflict) as err:
        customers.abandon_customer(zhang, c["id"])
    assert err.value.code == "alarm_required"
    alarm = customers.raise_alarm(zhang, c["id"], {"reason": "联系人离职，三个月无回应"})
    assert alarm["status"] == "open"
    payload = received("AlarmRaised", alarm_id=alarm["id"])
    assert (payload["customer_id"], payload["owner_id"], payload["team_id"]) == (
        c["id"], zhang["id"], zhang["team_id"])
    assert payload["company_name"] == "深圳市华强电子有限公司"
    assert payload["reason"] == "联系人离职，三个月无回应" and payload["raised_by"] == zhang["id"]
    with pytest.raises(Conflict) as err:
        customers.raise_alarm(zhang, c["id"], {"reason": "再报一次"})
    assert err.value.code == "alarm_open"
    # an open alarm is not yet a licence to abandon
    with pytest.raises(Conflict):
        customers.abandon_customer(zhang, c["id"])
    with pytest.raises(Forbidden):
        customers.resolve_alarm(people["sun"], alarm["id"], {
            "decision": "abandon", "note": "x", "verified": "real"})
    resolved = customers.resolve_alarm(wang, alarm["id"], {
        "decision": "abandon", "note": "电话核实公司存在，但已转向其他供应商", "verified": "real"})
    assert resolved["status"] == "resolved"
    payload = received("AlarmResolved", alarm_id=alarm["id"])
    assert payload["decision"] == "abandon" and payload["verified"] == "real"
    assert payload["new_owner_id"] is None and payload["resolved_by"] == wang["id"]
    out = customers.abandon_customer(zhang, c["id"])
    assert out["status"] == "pool" and out["owner"] is None
    payload = received("CustomerAbandoned", customer_id=c["id"])
    assert payload["owner_id"] == zhang["id"] and payload["team_id"] == zhang["team_id"]
    assert payload["status"] == "pool" and payload["stage"] == 25
    assert payload["version"] == out["version"]
    # still a duplicate, and the match says it is in the pool
    with pytest.raises(Conflict) as err:
        customers.create(zhao, {"company_name": "华强电子（深圳）有限公司"})
    [m] = err.value.details["matches"]
    assert m["customer_id"] == c["id"] and m["status"] == "pool" and m["owner"] is None
    # any rep of any team may claim it
    with pytest.raises(Forbidden):
        customers.claim_customer(wang, c["id"])
    got = customers.claim_customer(zhao, c["id"])
    assert got["owner"] == {"id": zhao["id"], "name": "赵磊"} and got["status"] == "active"
    payload = received("OwnerChanged", customer_id=c["id"], reason="claim")
    assert (payload["old_owner_id"], payload["new_owner_id"]) == (None, zhao["id"])
    assert payload["new_team_id"] == zhao["team_id"] and payload["status"] == "active"
    with pytest.raises(Conflict) as err:
        customers.claim_customer(people["li"], c["id"])
    assert err.value.code == "not_in_pool"
    # the old owner's abandon decision is spent and no longer his
    with pytest.raises((Conflict, NotFound, Forbidden)):
        customers.abandon_customer(zhang, c["id"])
    actions = [e["action"] for e in db.audit.find({"customer_id": c["id"]}).sort("seq", 1)]
    assert actions == ["create", "alarm_raised", "alarm_resolved", "abandoned", "claimed"]


def test_reassign_moves_the_customer_to_a_named_rep(rpc, people):
    customers, _ = rpc
    zhang, li, wang = people["zhang"], people["li"], people["wang"]
    c = customers.create(zhang, huaqiang())
    alarm = customers.raise_alarm(zhang, c["id"], {"reason": "客户在广州，我跑不过来"})
    with pytest.raises(Invalid) as err:
        customers.resolve_alarm(wang, alarm["id"], {"decision": "reassign", "note": "转给赵磊",
                                                    "verified": "real",
                                                    "new_owner_id": people["zhao"]["id"]})
    assert "own team" in err.value.details["fields"]["new_owner_id"]
    customers.resolve_alarm(wang, alarm["id"], {"decision": "reassign", "note": "李娜在广州",
                                                "verified": "real", "new_owner_id": li["id"]})
    payload = received("OwnerChanged", customer_id=c["id"], reason="reassign")
    assert (payload["old_owner_id"], payload["new_owner_id"]) == (zhang["id"], li["id"])
    assert received("AlarmResolved", alarm_id=alarm["id"])["new_owner_id"] == li["id"]
    assert customers.get_customer(li, c["id"])["owner"]["id"] == li["id"]
    with pytest.raises(NotFound):
        customers.get_customer(zhang, c["id"])


# ---------------------------------------------------------------- disputes


def test_dispute_goes_to_the_stronger_contact(rpc, people):
    customers, _ = rpc
    zhang, li, wang = people["zhang"], people["li"], people["wang"]
    c = customers.create(zhang, huaqiang())  # 采购总监, level 3
    with pytest.raises(Conflict):
        customers.file_dispute(zhang, c["id"], {"contact": {"name": "x", "decision_level": 1}})
    d = customers.file_dispute(li, c["id"], {
        "contact": {"name": "王建国", "title": "总经理", "decision_level": 5},
        "note": "我上周已拜访总经理，他指定由我对接"})
    payload = received("DisputeFiled", dispute_id=d["id"])
    assert payload["claimant_id"] == li["id"] and payload["owner_id"] == zhang["id"]
    assert payload["contact"] == {"name": "王建国", "title": "总经理", "decision_level": 5}
    with pytest.raises(Conflict) as err:
        customers.file_dispute(li, c["id"], {"contact": {"name": "王建国", "decision_level": 5}})
    assert err.value.code == "dispute_open"
    with pytest.raises(Invalid) as err:
        customers.resolve_dispute(wang, d["id"], {"winner_id": zhang["id"], "note": "老客户"})
    assert "claimant wins" in err.value.details["fields"]["winner_id"]
    with pytest.raises(Forbidden):
        customers.resolve_dispute(people["sun"], d["id"], {"winner_id": li["id"], "note": "x"})
    out = customers.resolve_dispute(wang, d["id"], {"winner_id": li["id"],
                                                    "note": "总经理决策权更高"})
    assert out["status"] == "resolved" and out["winner_id"] == li["id"]
    payload = received("OwnerChanged", customer_id=c["id"], reason="dispute")
    assert (payload["old_owner_id"], payload["new_owner_id"]) == (zhang["id"], li["id"])
    # a dispute across teams is the admin's
    d2 = customers.file_dispute(people["zhao"], c["id"], {
        "contact": {"name": "刘秘书", "title": "总经理秘书", "decision_level": 2}})
    with pytest.raises(Forbidden):
        customers.resolve_dispute(wang, d2["id"], {"winner_id": li["id"], "note": "x"})
    # the owner's best contact is 3: the owner keeps it
    kept = customers.resolve_dispute(people["admin"], d2["id"],
                                     {"winner_id": li["id"], "note": "秘书无决策权"})
    assert kept["winner_id"] == li["id"]
    assert customers.get_customer(li, c["id"])["owner"]["id"] == li["id"]


def test_an_alarm_overtaken_by_an_owner_change_is_closed_and_the_new_owner_may_raise_his(
        rpc, people, db):
    customers, _ = rpc
    zhang, li, wang = people["zhang"], people["li"], people["wang"]
    c = customers.create(zhang, huaqiang())
    old = customers.raise_alarm(zhang, c["id"], {"reason": "联系人不接电话"})
    # before 王经理 looks at the alarm, 李娜 wins the customer in a dispute
    d = customers.file_dispute(li, c["id"], {
        "contact": {"name": "王建国", "title": "总经理", "decision_level": 5}})
    customers.resolve_dispute(wang, d["id"], {"winner_id": li["id"], "note": "总经理指定李娜"})
    # the new owner's own alarm is not refused because of the old one
    mine = customers.raise_alarm(li, c["id"], {"reason": "客户要求更换对接人"})
    assert mine["status"] == "open"
    [closed] = [a for a in customers.list_alarms(wang, {"customer_id": c["id"]})["items"]
                if a["id"] == old["id"]]
    assert closed["status"] == "void" and closed["resolved_by"]["id"] == li["id"]
    with pytest.raises(Conflict) as err:
        customers.resolve_alarm(wang, old["id"], {"decision": "abandon", "verified": "real",
                                                  "note": "x"})
    assert err.value.code == "alarm_not_open"
    # the old owner's abandon licence never comes from a closed alarm
    assert customers.resolve_alarm(wang, mine["id"], {"decision": "continue",
                                                      "verified": "real",
                                                      "note": "继续跟进"})["status"] == "resolved"
    actions = [e["action"] for e in db.audit.find({"customer_id": c["id"]}).sort("seq", 1)]
    assert actions == ["create", "alarm_raised", "dispute_filed", "dispute_resolved",
                       "owner_changed", "alarm_voided", "alarm_raised", "alarm_resolved"]


def test_resolving_an_alarm_overtaken_by_an_owner_change_is_refused_and_closes_it(rpc, people):
    customers, _ = rpc
    zhang, li, wang = people["zhang"], people["li"], people["wang"]
    for decision in ("reassign", "continue"):
        c = customers.create(zhang, huaqiang(company_name=f"深圳市华强{decision}电子有限公司",
                                             phones=[], emails=[]))
        old = customers.raise_alarm(zhang, c["id"], {"reason": "客户失联"})
        d = customers.file_dispute(li, c["id"], {
            "contact": {"name": "王建国", "title": "总经理", "decision_level": 5}})
        customers.resolve_dispute(wang, d["id"], {"winner_id": li["id"], "note": "总经理"})
        body = {"decision": decision, "verified": "real", "note": "处理"}
        if decision == "reassign":
            body["new_owner_id"] = li["id"]
        with pytest.raises(Conflict) as err:
            customers.resolve_alarm(wang, old["id"], body)
        assert err.value.code == "alarm_stale"
        [closed] = customers.list_alarms(wang, {"customer_id": c["id"]})["items"]
        assert closed["status"] == "void" and closed["decision"] is None
        assert customers.get_customer(li, c["id"])["owner"]["id"] == li["id"]
        assert customers.raise_alarm(li, c["id"], {"reason": "新的问题"})["status"] == "open"


def test_a_decision_that_finds_the_customer_moved_while_deciding_closes_it(
        rpc, people, monkeypatch):
    # The owner changes between the decision's first read and its write: as
    # if the stale checks had passed a moment before the other change.
    from services.customers import rules as lifecycle

    customers, _ = rpc
    zhang, li, zhao, wang = people["zhang"], people["li"], people["zhao"], people["wang"]
    c = customers.create(zhang, huaqiang())
    alarm = customers.raise_alarm(zhang, c["id"], {"reason": "客户失联"})
    first = customers.file_dispute(li, c["id"], {
        "contact": {"name": "王建国", "title": "总经理", "decision_level": 5}})
    second = customers.file_dispute(zhao, c["id"], {
        "contact": {"name": "刘总", "title": "董事长", "decision_level": 5}})
    customers.resolve_dispute(wang, first["id"], {"winner_id": li["id"], "note": "总经理"})
    monkeypatch.setattr(lifecycle, "alarm_overtaken", lambda *a: False)
    monkeypatch.setattr(lifecycle, "is_dispute_stale", lambda *a: False)
    with pytest.raises(Conflict) as err:
        customers.resolve_alarm(wang, alarm["id"], {"decision": "reassign", "verified": "real",
                                                    "note": "x", "new_owner_id": li["id"]})
    assert err.value.code == "alarm_stale"
    with pytest.raises(Conflict) as err:
        customers.resolve_dispute(people["admin"], second["id"],
                                  {"winner_id": zhao["id"], "note": "x"})
    assert err.value.code == "dispute_stale"
    monkeypatch.undo()
    [closed] = customers.list_alarms(wang, {"customer_id": c["id"]})["items"]
    assert closed["status"] == "void" and closed["decision"] is None
    disputes = {d["id"]: d for d in customers.list_disputes(people["admin"], {
        "customer_id": c["id"]})["items"]}
    assert disputes[second["id"]]["status"] == "void"
    assert disputes[second["id"]]["winner_id"] is None
    assert customers.get_customer(li, c["id"])["owner"]["id"] == li["id"]
    # nothing is left open to block anyone
    assert customers.raise_alarm(li, c["id"], {"reason": "新的问题"})["status"] == "open"
    assert customers.file_dispute(zhao, c["id"], {
        "contact": {"name": "刘总", "title": "董事长", "decision_level": 5}})["status"] == "open"


def test_a_dispute_overtaken_by_an_owner_change_is_closed_and_may_be_filed_again(
        rpc, people, db):
    customers, _ = rpc
    zhang, li, wang, zhao = people["zhang"], people["li"], people["wang"], people["zhao"]
    c = customers.create(zhang, huaqiang())
    d = customers.file_dispute(li, c["id"], {
        "contact": {"name": "王建国", "title": "总经理", "decision_level": 5}})
    # before 王经理 settles it, 张伟 gives the customer up and 赵磊 claims it
    alarm = customers.raise_alarm(zhang, c["id"], {"reason": "客户改用别家供应商"})
    customers.resolve_alarm(wang, alarm["id"], {"decision": "abandon", "verified": "real",
                                                "note": "核实属实"})
    customers.abandon_customer(zhang, c["id"])
    customers.claim_customer(zhao, c["id"])
    with pytest.raises(Conflict) as err:
        customers.resolve_dispute(wang, d["id"], {"winner_id": li["id"], "note": "总经理"})
    assert err.value.code == "dispute_stale"
    [closed] = customers.list_disputes(li, {"customer_id": c["id"]})["items"]
    assert closed["status"] == "void" and closed["resolved_by"]["id"] == wang["id"]
    with pytest.raises(Conflict) as err:
        customers.resolve_dispute(wang, d["id"], {"winner_id": li["id"], "note": "再试"})
    assert err.value.code == "dispute_not_open"
    # 李娜 may take it up against the new owner; it is an admin's across teams
    again = customers.file_dispute(li, c["id"], {
        "contact": {"name": "王建国", "title": "总经理", "decision_level": 5}})
    assert again["owner_id"] == zhao["id"] and again["status"] == "open"
    won = customers.resolve_dispute(people["admin"], again["id"],
                                    {"winner_id": li["id"], "note": "总经理指定李娜"})
    assert won["status"] == "resolved"
    assert customers.get_customer(li, c["id"])["owner"]["id"] == li["id"]
    actions = [e["action"] for e in db.audit.find({"customer_id": c["id"]}).sort("seq", 1)]
    assert "dispute_voided" in actions
    assert customers.audit_trail(people["admin"], c["id"])["intact"] is True


def test_only_the_latest_alarm_of_the_current_owner_licenses_an_abandon(rpc, people):
    customers, _ = rpc
    zhang, wang = people["zhang"], people["wang"]
    c = customers.create(zhang, huaqiang())
    first = customers.raise_alarm(zhang, c["id"], {"reason": "采购总监离职"})
    customers.resolve_alarm(wang, first["id"], {"decision": "abandon", "verified": "real",
                                                "note": "可以放弃"})
    # 张伟 kept it after all; a month later he raises a new alarm
    second = customers.raise_alarm(zhang, c["id"], {"reason": "价格谈不拢"})
    with pytest.raises(Conflict) as err:
        customers.abandon_customer(zhang, c["id"])  # while it is open
    assert err.value.code == "alarm_required"
    customers.resolve_alarm(wang, second["id"], {"decision": "continue", "verified": "real",
                                                 "note": "再跟一个月"})
    with pytest.raises(Conflict) as err:
        customers.abandon_customer(zhang, c["id"])  # the manager's last word is continue
    assert err.value.code == "alarm_required"
    assert customers.get_customer(zhang, c["id"])["status"] == "active"


def test_an_abandon_decision_does_not_come_back_with_the_customer(rpc, people):
    customers, _ = rpc
    zhang, li, wang = people["zhang"], people["li"], people["wang"]
    c = customers.create(zhang, huaqiang())  # 采购总监, level 3
    alarm = customers.raise_alarm(zhang, c["id"], {"reason": "联系不上"})
    customers.resolve_alarm(wang, alarm["id"], {"decision": "abandon", "verified": "real",
                                                "note": "可以放弃"})
    # the customer goes to 李娜 by a dispute, then back to 张伟 by another
    d = customers.file_dispute(li, c["id"], {"contact": {"name": "王建国", "decision_level": 5}})
    customers.resolve_dispute(wang, d["id"], {"winner_id": li["id"], "note": "总经理"})
    back = customers.file_dispute(zhang, c["id"], {"contact": {"name": "刘董",
                                                               "decision_level": 5}})
    customers.resolve_dispute(wang, back["id"], {"winner_id": zhang["id"], "note": "董事长"})
    assert customers.get_customer(zhang, c["id"])["owner"]["id"] == zhang["id"]
    with pytest.raises(Conflict) as err:
        customers.abandon_customer(zhang, c["id"])
    assert err.value.code == "alarm_required"
    # a new alarm during this ownership, resolved abandon, does license it
    fresh = customers.raise_alarm(zhang, c["id"], {"reason": "还是联系不上"})
    customers.resolve_alarm(wang, fresh["id"], {"decision": "abandon", "verified": "real",
                                                "note": "放弃"})
    assert customers.abandon_customer(zhang, c["id"])["status"] == "pool"


# --------------------------------------------------------------- referrals


def test_referral_tree_ancestors_counts_and_no_cycle(rpc, people):
    customers, _ = rpc
    zhang, wang = people["zhang"], people["wang"]
    a = customers.create(zhang, {"company_name": "美的集团股份有限公司"})
    b = customers.create(zhang, {"company_name": "佛山市顺德区惠而浦家电制品有限公司",
                                 "referred_by": a["id"]})
    c = customers.create(zhang, {"company_name": "广东格兰仕集团有限公司", "referred_by": a["id"]})
    d = customers.create(zhang, {"company_name": "中山市小榄镇华艺灯饰有限公司",
                                 "referred_by": b["id"]})
    out = customers.referrals(zhang, b["id"])
    assert [x["id"] for x in out["ancestors"]] == [a["id"]]
    assert out["ancestors"][0]["referred_count"] == 2
    assert out["tree"]["customer"]["id"] == b["id"]
    assert out["tree"]["customer"]["referred_count"] == 1
    assert [n["customer"]["id"] for n in out["tree"]["children"]] == [d["id"]]
    whole = customers.referrals(zhang, a["id"])
    assert {n["customer"]["id"] for n in whole["tree"]["children"]} == {b["id"], c["id"]}
    assert not whole["truncated"]
    shallow = customers.referrals(zhang, a["id"], 1, 1000)
    assert shallow["truncated"]
    assert [n["customer"]["referred_count"] for n in shallow["tree"]["children"]] == [1, 0]
    small = customers.referrals(zhang, a["id"], 10, 2)
    assert small["truncated"] and [n["customer"]["id"] for n in small["tree"]["children"]] == [
        b["id"], c["id"]]
    # a cycle is impossible: a cannot be referred by its grandchild
    with pytest.raises(Invalid) as err:
        customers.patch_customer(wang, a["id"], {"changes": {"referred_by": d["id"]},
                                                 "reason": "录错了"})
    assert err.value.details["fields"] == {"changes.referred_by": "would make a referral cycle"}
    with pytest.raises(Invalid):
        customers.patch_customer(wang, a["id"], {"changes": {"referred_by": a["id"]},
                                                 "reason": "录错了"})
    moved = customers.patch_customer(wang, d["id"], {"changes": {"referred_by": c["id"]},
                                                     "reason": "其实是格兰仕介绍的"})
    assert moved["referred_by"] == c["id"]
    assert customers.referrals(zhang, c["id"])["tree"]["customer"]["referred_count"] == 1


def test_a_referral_tree_shows_other_reps_customers_as_a_match_does(rpc, people):
    customers, _ = rpc
    zhang, zhao = people["zhang"], people["zhao"]
    root = customers.create(zhang, {"company_name": "珠海格力电器股份有限公司", "stage": 50})
    theirs = customers.create(zhao, {"company_name": "天津海尔洗衣机有限公司",
                                     "referred_by": root["id"], "stage": 75})
    mine = customers.create(zhang, {"company_name": "宁波方太厨具有限公司",
                                    "referred_by": root["id"], "stage": 25})
    kids = {n["customer"]["id"]: n["customer"]
            for n in customers.referrals(zhang, root["id"])["tree"]["children"]}
    assert kids[mine["id"]]["stage"] == 25 and kids[mine["id"]]["visible"]
    other = kids[theirs["id"]]
    assert other["company_name"] == "天津海尔洗衣机有限公司" and other["owner"]["name"] == "赵磊"
    assert other["stage"] is None and other["visible"] is False
    up = customers.referrals(zhao, theirs["id"])["ancestors"][0]
    assert up["id"] == root["id"] and up["stage"] is None and not up["visible"]
    admin_view = customers.referrals(people["admin"], root["id"])["tree"]["children"]
    assert {n["customer"]["stage"] for n in admin_view} == {25, 75}


# ------------------------------------------------------------------- audit


def test_audit_chain_intact_after_a_history_and_broken_by_a_direct_edit(rpc, people, db):
    customers, _ = rpc
    zhang, wang = people["zhang"], people["wang"]
    c = customers.create(zhang, huaqiang())
    customers.add_followup(zhang, c["id"], {"content": "电话沟通样品需求", "channel": "电话"})
    customers.change_stage(zhang, c["id"], {"stage": 25})
    a = customers.request_amendment(zhang, c["id"], {"changes": {"address": "深圳市福田区华强北路1号"},
                                                     "reason": "补充地址"})
    customers.approve_amendment(wang, a["id"])
    customers.patch_customer(wang, c["id"], {"changes": {"industry": "电子"}, "reason": "补充"})
    alarm = customers.raise_alarm(zhang, c["id"], {"reason": "价格谈不拢"})
    customers.resolve_alarm(wang, alarm["id"], {"decision": "continue", "note": "再跟一个月",
                                                "verified": "real"})
    trail = customers.audit_trail(wang, c["id"], 1, 100)
    assert trail["intact"] is True
    assert [i["action"] for i in trail["items"]] == [
        "create", "followup", "stage_changed", "amendment_requested", "amendment_approved",
        "patched", "alarm_raised", "alarm_resolved"]
    assert trail["items"][2]["before"] == {"stage": 0}
    assert trail["items"][5]["after"]["reason"] == "补充"
    assert customers.audit_trail(zhang, c["id"])["intact"] is True
    with pytest.raises(NotFound):
        customers.audit_trail(people["li"], c["id"])
    # someone with database access rewrites history
    db.audit.update_one({"customer_id": c["id"], "seq": 3},
                        {"$set": {"after.stage": 90}})
    assert customers.audit_trail(wang, c["id"])["intact"] is False


def test_a_chain_whose_last_entries_were_removed_is_not_intact(rpc, people, db):
    """What is left of a chain cut at its end is itself an unbroken chain;
    the head, kept apart and read by key, shows that it went further."""
    customers, _ = rpc
    zhang, wang = people["zhang"], people["wang"]
    c = customers.create(zhang, huaqiang())
    for i in range(3):
        customers.add_followup(zhang, c["id"], {"content": f"第{i + 1}次电话"})
    assert customers.audit_trail(wang, c["id"])["intact"] is True
    db.audit.delete_one({"customer_id": c["id"], "seq": 4})
    trail = customers.audit_trail(wang, c["id"])
    assert trail["total"] == 3 and trail["intact"] is False


def test_an_append_chains_after_an_entry_whose_writer_stopped_before_moving_the_head(
        rpc, people, db):
    """A writer that inserted its entry and stopped before moving the head
    leaves the head one behind; the next append finds the entry taken, moves
    the head on and chains after it."""
    customers, _ = rpc
    zhang, wang = people["zhang"], people["wang"]
    c = customers.create(zhang, huaqiang())
    head = db.audit_heads.find_one({"_id": c["id"]})
    assert head["seq"] == 1
    first = db.audit.find_one({"customer_id": c["id"], "seq": 1})
    stray = audit.build_entry(first, c["id"], {"id": zhang["id"], "name": zhang["name"],
                                               "role": "rep"},
                              "followup", None, {"content": "写入后中断"}, datetime.now(UTC))
    db.audit.insert_one(stray)  # the head was not moved
    customers.add_followup(zhang, c["id"], {"content": "下一条"})
    trail = customers.audit_trail(wang, c["id"], 1, 100)
    assert [i["seq"] for i in trail["items"]] == [1, 2, 3]
    assert trail["intact"] is True
    assert db.audit_heads.find_one({"_id": c["id"]})["seq"] == 3


def test_the_audit_trail_pages_by_cursor(rpc, people):
    customers, _ = rpc
    zhang, wang = people["zhang"], people["wang"]
    c = customers.create(zhang, huaqiang())
    for i in range(4):
        customers.add_followup(zhang, c["id"], {"content": f"第{i + 1}次电话"})
    seen, after = [], None
    while True:
        page = customers.audit_trail(wang, c["id"], 1, 2, after)
        assert page["total"] == 5 and page["intact"] is True
        seen += [i["seq"] for i in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert seen == [1, 2, 3, 4, 5]
    with pytest.raises(Invalid):
        customers.audit_trail(wang, c["id"], 2, 2, "3")


def test_lifecycle_lists_page_by_cursor(rpc, people):
    customers, _ = rpc
    zhang, wang = people["zhang"], people["wang"]
    made = [customers.create(zhang, {"company_name": f"深圳市第{n}电子有限公司"})
            for n in "一二三四五"]
    asked = [customers.request_amendment(zhang, m["id"], {"changes": {"address": "福田区"},
                                                          "reason": "补充地址"})["id"]
             for m in made]
    seen, after = [], None
    while True:
        page = customers.list_amendments(wang, {"status": "pending", "page_size": 2,
                                                **({"after": after} if after else {})})
        assert page["total"] == 5
        seen += [a["id"] for a in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert seen == sorted(asked)
    with pytest.raises(Invalid):
        customers.list_amendments(wang, {"page": 2, "after": asked[0]})


# ------------------------------------------------------------------ report


def test_integrity_report_per_rep(rpc, people):
    customers, _ = rpc
    zhang, li, wang = people["zhang"], people["li"], people["wang"]
    fake = customers.create(zhang, {"company_name": "深圳市子虚乌有科技有限公司"})
    customers.create(zhang, huaqiang())
    customers.create(li, hongda())
    customers.create(people["zhao"], {"company_name": "北京京东世纪贸易有限公司"})
    alarm = customers.raise_alarm(zhang, fake["id"], {"reason": "找不到人"})
    customers.resolve_alarm(wang, alarm["id"], {"decision": "abandon", "verified": "fake",
                                                "note": "工商查无此公司"})
    customers.abandon_customer(zhang, fake["id"])
    report = customers.integrity_report(wang)
    rows = {r["rep"]["id"]: r for r in report["items"]}
    assert set(rows) == {zhang["id"], li["id"]}
    assert rows[zhang["id"]] == {"rep": {"id": zhang["id"], "name": "张伟"}, "customers": 1,
                                 "created": 2, "alarms": 1, "abandoned": 1, "verified_fake": 1}
    assert report["items"][0]["rep"]["id"] == zhang["id"]  # the suspicious first
    assert rows[li["id"]]["customers"] == 1 and rows[li["id"]]["alarms"] == 0
    everyone = {r["rep"]["id"] for r in customers.integrity_report(people["admin"])["items"]}
    assert people["zhao"]["id"] in everyone
    with pytest.raises(Forbidden):
        customers.integrity_report(zhang)


# ------------------------------------------------------------------ export


def test_export_deals_pages_by_id_with_stage_history(rpc, people):
    customers, _ = rpc
    zhang = people["zhang"]
    ids = [customers.create(zhang, {"company_name": f"东莞市第{i}五金制品有限公司",
                                    "expected_value": 1000 * (i + 1)})["id"] for i in range(5)]
    customers.change_stage(zhang, ids[1], {"stage": 25})
    customers.change_stage(zhang, ids[1], {"stage": 50})
    first = customers.export_deals(None, 3)
    rest = customers.export_deals(first[-1]["customer_id"], 3)
    assert [d["customer_id"] for d in first + rest] == sorted(ids)
    deal = next(d for d in first + rest if d["customer_id"] == ids[1])
    assert deal["stage"] == 50 and deal["version"] == 3 and deal["status"] == "active"
    assert deal["expected_value_fen"] == 200000 and deal["owner_id"] == zhang["id"]
    assert [(h["from"], h["to"]) for h in deal["stage_history"]] == [
        (None, 0), (0, 25), (25, 50)]
    assert customers.export_deals(rest[-1]["customer_id"]) == []
