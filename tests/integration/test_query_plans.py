"""Every list, count and write path of the API reads through an index.

Each step drives one endpoint as the gateway does (the service's RPC), with
every query the services send meanwhile recorded (query_plans.py), and asks
the database to explain each: a query that would scan a collection fails the
step, so a regression to a scan is found here rather than by a customer with
a million records. (Timers of the running services, the scheduler's and
notify's loops, are recorded too when they run during a step.)
"""

from datetime import UTC, datetime, timedelta

import eventlet
import pytest

from services.accounts.service import AccountsService
from services.common.errors import TooManyRequests
from services.common.standalone import ServiceRpcClient
from services.customers.service import CustomersService
from services.forecast.service import ForecastService
from services.knowledge.service import KnowledgeService
from services.notify.service import NotifyService
from services.scheduler.service import SchedulerService
from tests.integration.query_plans import not_by_key, recording, unindexed

ADMIN = {"id": "boot", "role": "admin", "team_id": None, "name": "管理员", "username": "admin"}
SERVICES = ("accounts", "customers", "scheduler", "notify", "knowledge", "forecast")


@pytest.fixture
def rpc(container_factory, service_config):
    for cls in (AccountsService, CustomersService, SchedulerService, NotifyService,
                KnowledgeService, ForecastService):
        # the handover timer's look for a job (indexed: status_lease) would
        # land in any step's recording; it runs once at start here
        container_factory(cls, {**service_config, "HANDOVER_POLL_SECONDS": 3600}).start()
    clients = [ServiceRpcClient(name) for name in SERVICES]
    entered = [c.__enter__() for c in clients]
    yield dict(zip(SERVICES, entered, strict=True))
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def people(rpc):
    accounts = rpc["accounts"]
    south = accounts.create_team(ADMIN, {"name": "华南销售一部"})

    def user(username, name, role):
        u = accounts.create_user(ADMIN, {"username": username, "password": "口令-" + username[::-1] + "-7f3Q",
                                         "name": name, "role": role, "team_id": south["id"]})
        return {k: u[k] for k in ("id", "role", "team_id", "name", "username")}

    return {"zhang": user("zhangwei", "张伟", "rep"), "li": user("lina", "李娜", "rep"),
            "wang": user("wangjl", "王经理", "manager"), "admin": ADMIN}


class Steps:
    """Runs each call with its queries recorded and collects every query no
    index answers, by step."""

    def __init__(self, mongo_client, prefix):
        self.client, self.prefix, self.bad = mongo_client, prefix, []

    def __call__(self, label, call):
        with recording(self.prefix) as sent:
            result = call()
        self.bad += [(label, *q) for q in unindexed(self.client, sent)]
        return result


@pytest.fixture
def step(mongo_client, service_config):
    steps = Steps(mongo_client, service_config["MONGO_DB_PREFIX"])
    yield steps
    assert not steps.bad, "queries no index answers:\n" + "\n".join(map(repr, steps.bad))


def _wait(cond, timeout=15):
    with eventlet.Timeout(timeout):
        while not cond():
            eventlet.sleep(0.1)


def test_the_customer_lists_and_their_counts_read_indexes(rpc, people, step):
    c = rpc["customers"]
    zhang, li, wang = people["zhang"], people["li"], people["wang"]
    made = [step("create customer", lambda i=i, name=name: c.create(zhang if i % 2 else li, {
        "company_name": name, "phones": [f"0755-8321{i:04d}"], "stage": (10, 25)[i % 2],
        "expected_value": 10000 * (i + 1)}))
        for i, name in enumerate(["深圳市华强电子有限公司", "广州宏达贸易有限公司",
                                  "东莞恒通精密机械有限公司", "佛山金鼎五金制品有限公司",
                                  "深圳市恒通科技有限公司"])]
    step("check a duplicate", lambda: c.check(li, {"company_name": "恒通精密机械（东莞）有限公司"}))
    for actor in (zhang, wang, ADMIN):
        for query in ({}, {"stage": 25}, {"status": "active"}, {"q": "恒通"}, {"q": "华强电子"},
                      {"q": "0755-83210001"}, {"page": 2, "page_size": 1},
                      {"page_size": 1, "after": made[-1]["id"]}, {"owner_id": zhang["id"]}):
            step(f"list {actor['role']} {query}", lambda a=actor, q=query: c.list_customers(a, q))
    step("the pool", lambda: c.list_customers(zhang, {"status": "pool"}))
    step("one customer", lambda: c.get_customer(zhang, made[1]["id"]))
    page = step("list page 1", lambda: c.list_customers(wang, {"page_size": 2}))
    step("list after", lambda: c.list_customers(wang, {"page_size": 2, "after": page["next"]}))


def test_a_customer_s_follow_ups_stages_and_audit_trail_read_indexes(rpc, people, step):
    c = rpc["customers"]
    zhang, wang = people["zhang"], people["wang"]
    cust = c.create(zhang, {"company_name": "深圳市华强电子有限公司", "phones": ["0755-83216666"]})
    for i in range(3):
        step("add a follow-up", lambda i=i: c.add_followup(zhang, cust["id"],
                                                           {"content": f"第{i}次电话"}))
    first = step("follow-ups", lambda: c.list_followups(zhang, cust["id"], 1, 2))
    step("follow-ups after", lambda: c.list_followups(zhang, cust["id"], 1, 2, first["next"]))
    step("change stage", lambda: c.change_stage(zhang, cust["id"], {"stage": 50}))
    step("patch", lambda: c.patch_customer(wang, cust["id"], {"changes": {"address": "南山区"},
                                                               "reason": "地址更正"}))
    trail = step("audit trail", lambda: c.audit_trail(wang, cust["id"], 1, 2))
    step("audit after", lambda: c.audit_trail(wang, cust["id"], 1, 2, trail["next"]))
    ref = step("create referred", lambda: c.create(zhang, {"company_name": "广州宏达贸易有限公司",
                                                           "referred_by": cust["id"]}))
    step("referral tree", lambda: c.referrals(zhang, cust["id"]))
    step("referral ancestors", lambda: c.referrals(zhang, ref["id"]))


def test_amendments_alarms_disputes_and_the_pool_read_indexes(rpc, people, step):
    c = rpc["customers"]
    zhang, li, wang = people["zhang"], people["li"], people["wang"]
    cust = c.create(zhang, {"company_name": "深圳市华强电子有限公司", "phones": ["0755-83216666"]})
    other = c.create(zhang, {"company_name": "广州宏达贸易有限公司"})
    am = step("ask an amendment", lambda: c.request_amendment(
        zhang, cust["id"], {"changes": {"address": "福田区"}, "reason": "搬家"}))
    am2 = step("ask another", lambda: c.request_amendment(
        zhang, other["id"], {"changes": {"address": "天河区"}, "reason": "搬家"}))
    for actor in (zhang, wang, ADMIN):
        for query in ({}, {"status": "pending"}, {"customer_id": cust["id"]}):
            step(f"amendments {actor['role']}", lambda a=actor, q=query: c.list_amendments(a, q))
    step("approve", lambda: c.approve_amendment(wang, am["id"], {}))
    step("reject", lambda: c.reject_amendment(wang, am2["id"], {}))
    alarm = step("raise an alarm", lambda: c.raise_alarm(zhang, cust["id"],
                                                         {"reason": "客户长期不回电话"}))
    for actor in (zhang, wang, ADMIN):
        step(f"alarms {actor['role']}", lambda a=actor: c.list_alarms(a, {"status": "open"}))
    step("resolve: abandon", lambda: c.resolve_alarm(wang, alarm["id"], {
        "decision": "abandon", "note": "放弃", "verified": "real"}))
    step("abandon", lambda: c.abandon_customer(zhang, cust["id"]))
    step("the pool", lambda: c.list_customers(li, {"status": "pool"}))
    step("claim", lambda: c.claim_customer(li, cust["id"]))
    dispute = step("file a dispute", lambda: c.file_dispute(zhang, cust["id"], {
        "contact": {"name": "陈志强", "title": "采购总监", "decision_level": 4}, "note": "先联系"}))
    for actor in (zhang, li, wang, ADMIN):
        step(f"disputes {actor['role']}", lambda a=actor: c.list_disputes(a, {}))
    step("resolve the dispute", lambda: c.resolve_dispute(wang, dispute["id"], {
        "winner_id": zhang["id"], "note": "决策权更高"}))
    step("integrity report", lambda: c.integrity_report(wang))
    step("integrity report, admin", lambda: c.integrity_report(ADMIN))


def test_the_read_log_the_guard_the_export_and_the_reads_report_read_indexes(rpc, people,
                                                                             step):
    c = rpc["customers"]
    zhang, li, wang = people["zhang"], people["li"], people["wang"]
    made = [c.create(zhang, {"company_name": name, "phones": [f"0755-8321{i:04d}"]})
            for i, name in enumerate(["深圳市华强电子有限公司", "广州宏达贸易有限公司",
                                      "东莞恒通精密机械有限公司"])]
    step("read settings", lambda: c.get_read_settings(wang))
    step("set the limits", lambda: c.put_read_settings(ADMIN, {"rep_hourly_limit": 2,
                                                               "manager_hourly_limit": 300}))
    for cust in made[:2]:
        step("open a customer", lambda x=cust: c.open_customer(zhang, x["id"]))
    step("open it again", lambda: c.open_customer(zhang, made[0]["id"]))
    with pytest.raises(TooManyRequests):
        step("open one too many", lambda: c.open_customer(zhang, made[2]["id"]))
    step("a list page, logged", lambda: c.list_customers(zhang, {}))
    step("a manager opens one", lambda: c.open_customer(wang, made[2]["id"]))
    run = step("start an export", lambda: c.start_export(wang, "xlsx"))
    first = step("export page", lambda: c.export_page(wang, run["id"], None, 2))
    step("export page after", lambda: c.export_page(wang, run["id"], first["next"], 2))
    step("finish the export", lambda: c.finish_export(wang, run["id"]))
    admin_run = step("an admin's export", lambda: c.start_export(ADMIN, "csv"))
    step("admin export page", lambda: c.export_page(ADMIN, admin_run["id"], None, 2))
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    window = {"from": (datetime.now(UTC) - timedelta(hours=1)).isoformat(), "to": tomorrow}
    for actor in (wang, ADMIN):
        for query in ({}, {"user_id": zhang["id"]}, window, {**window, "user_id": li["id"]},
                      {"page": 2, "page_size": 1}):
            step(f"reads report {actor['role']} {query}",
                 lambda a=actor, q=query: c.read_report(a, q))
    page = step("reads report page 1", lambda: c.read_report(wang, {"page_size": 2}))
    step("reads report after", lambda: c.read_report(wang, {"page_size": 2,
                                                            "after": page["next"]}))
    step("reads report after, in a window", lambda: c.read_report(
        ADMIN, {**window, "user_id": zhang["id"], "page_size": 1, "after": page["next"]}))


def test_reminders_and_notifications_read_indexes(rpc, people, step):
    s, n, c = rpc["scheduler"], rpc["notify"], rpc["customers"]
    zhang, wang = people["zhang"], people["wang"]
    cust = c.create(zhang, {"company_name": "深圳市华强电子有限公司", "phones": ["0755-83216666"]})
    soon = datetime.now(UTC) + timedelta(days=1)
    made = [step("create a reminder", lambda i=i: s.create_reminder(zhang, {
        "title": f"回访{i}", "due_at": (soon + timedelta(hours=i)).isoformat()}))
        for i in range(3)]
    step("a revisit", lambda: s.create_revisit(zhang, cust["id"], {
        "at": (soon + timedelta(days=2)).isoformat(), "contact_name": "陈志强"}))
    first = step("reminders", lambda: s.list_reminders(zhang, {"page_size": 2}))
    step("reminders after", lambda: s.list_reminders(zhang, {"page_size": 2,
                                                             "after": first["next"]}))
    step("reminders in a window", lambda: s.list_reminders(zhang, {
        "from": soon.isoformat(), "to": (soon + timedelta(hours=2)).isoformat()}))
    step("one reminder", lambda: s.get_reminder(zhang, made[0]["id"]))
    step("move a reminder", lambda: s.update_reminder(zhang, made[0]["id"], {
        "due_at": (soon + timedelta(days=3)).isoformat()}))
    step("cancel a reminder", lambda: s.cancel_reminder(zhang, made[1]["id"]))
    # an alarm notifies the manager
    c.raise_alarm(zhang, cust["id"], {"reason": "客户长期不回电话"})
    _wait(lambda: n.list_notifications(wang, {})["total"] >= 1)
    inbox = step("notifications", lambda: n.list_notifications(wang, {"page_size": 1}))
    step("unread", lambda: n.list_notifications(wang, {"unread": True}))
    if inbox["next"]:
        step("notifications after", lambda: n.list_notifications(wang, {"after": inbox["next"]}))
    nid = inbox["items"][0]["id"]
    step("read", lambda: n.mark_read(wang, nid))
    step("acknowledge", lambda: n.acknowledge(wang, nid))
    step("stream resume", lambda: n.stream_resume(wang, nid))


def test_reminders_following_an_owner_change_read_indexes(rpc, people, step):
    """A handover is one OwnerChanged per customer, thousands in a burst:
    finding each customer's reminders to move, and withholding the former
    owner's SMS, read indexes."""
    s, n, c = rpc["scheduler"], rpc["notify"], rpc["customers"]
    zhang, li, wang = people["zhang"], people["li"], people["wang"]
    cust = c.create(zhang, {"company_name": "深圳市华强电子有限公司", "phones": ["0755-83216666"]})
    now = datetime.now(UTC)
    fired = step("a revisit due now", lambda: s.create_revisit(zhang, cust["id"], {
        "at": now.isoformat(), "contact_name": "陈志强", "escalate_after_minutes": 0.1}))
    step("a revisit", lambda: s.create_revisit(zhang, cust["id"], {
        "at": (now + timedelta(days=1)).isoformat(), "contact_name": "陈志强"}))
    step("a reminder about the customer", lambda: s.create_reminder(zhang, {
        "title": "给华强报价", "customer_id": cust["id"],
        "due_at": (now + timedelta(days=2)).isoformat()}))

    def shown():
        return [x for x in n.list_notifications(zhang, {})["items"]
                if x["ref"].get("reminder_id") == fired["id"]]

    _wait(shown)
    nid = shown()[0]["id"]
    alarm = c.raise_alarm(zhang, cust["id"], {"reason": "客户要求换人对接"})

    def reassign():
        c.resolve_alarm(wang, alarm["id"], {"decision": "reassign", "note": "转给李娜",
                                            "verified": "real", "new_owner_id": li["id"]})
        _wait(lambda: s.list_reminders(li, {})["total"] == 2)
        # the escalation falls due after the change: withheld
        _wait(lambda: n.get_notification(zhang, nid)["sms"]["status"] == "cancelled")

    step("reassign: the reminders follow, the SMS is withheld", reassign)


def test_knowledge_lists_and_writes_read_indexes(rpc, people, step):
    k = rpc["knowledge"]
    zhang, li, wang = people["zhang"], people["li"], people["wang"]
    q = step("ask", lambda: k.ask(zhang, {"title": "客户嫌贵怎么办", "body": "报价后客户说贵",
                                          "tags": ["报价"]}))
    step("ask another", lambda: k.ask(li, {"title": "样品要不要收费", "body": "客户要样品",
                                           "tags": ["样品"]}))
    a = step("answer", lambda: k.answer(li, q["id"], {"body": "先讲价值，再谈价格。"}))
    step("vote", lambda: k.vote(wang, "answer", a["id"], {"value": 1}))
    step("accept", lambda: k.accept(zhang, a["id"]))
    step("one question", lambda: k.get_question(li, q["id"]))
    step("story", lambda: k.add_story(wang, {"title": "三次拜访拿下华强", "body": "坚持回访",
                                             "tags": ["回访"]}))
    for query in ({}, {"status": "open"}, {"status": "answered"}, {"tag": "报价"},
                  {"sort": "top"}, {"page": 2, "page_size": 1}):
        step(f"questions {query}", lambda qq=query: k.list_questions(li, qq))
    step("stories", lambda: k.list_stories(li, {}))
    step("history", lambda: k.history(zhang, "question", q["id"]))
    step("drafts", lambda: k.list_drafts(zhang, {}))


def test_accounts_and_forecast_read_indexes(rpc, people, step):
    a, f = rpc["accounts"], rpc["forecast"]
    for actor in (people["wang"], ADMIN):
        step(f"users {actor['role']}", lambda x=actor: a.list_users(x, 1, 20))
    step("users in scope", lambda: a.users_in_scope(people["wang"]))
    step("team managers", lambda: a.team_managers([people["wang"]["team_id"]]))
    step("teams", lambda: a.list_teams(ADMIN))
    step("me", lambda: a.me(people["zhang"]))
    step("settings", lambda: a.get_settings(people["zhang"]))
    for actor in (people["zhang"], people["wang"], ADMIN):
        step(f"forecast {actor['role']}", lambda x=actor: f.get_forecast(x, {}))


def test_adding_a_follow_up_and_changing_a_stage_read_by_key_only(rpc, people, mongo_client,
                                                                 service_config):
    """The two writes a rep makes all day read only documents they name by
    key (the customer, the audit chain's head, the stage list): they cost
    the same with ten customers stored or ten million."""
    c = rpc["customers"]
    zhang = people["zhang"]
    cust = c.create(zhang, {"company_name": "深圳市华强电子有限公司", "phones": ["0755-83216666"]})
    for label, call in (
            ("follow-up", lambda: c.add_followup(zhang, cust["id"], {"content": "电话沟通"})),
            ("stage", lambda: c.change_stage(zhang, cust["id"], {"stage": 50}))):
        with recording(service_config["MONGO_DB_PREFIX"] + "customers") as sent:
            call()
        assert sent and not not_by_key(sent), (label, not_by_key(sent))
