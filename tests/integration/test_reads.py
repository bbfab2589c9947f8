"""Reads are records too, over real RabbitMQ and FerretDB: the read log, the
bulk-read guard's counter under concurrent opens, the pool's hiding, the
export a page at a time, the reads report."""

from datetime import UTC, datetime

import eventlet
import pytest

from services.common.errors import Forbidden, Invalid, NotFound, TooManyRequests
from services.common.principal import Principal
from services.common.standalone import ServiceRpcClient
from services.customers import reads, storage
from services.customers.service import CustomersService

ZHANG = {"id": "u-zhang", "role": "rep", "team_id": "t-south", "name": "张伟", "username": "zw",
         "address": "203.0.113.7"}
LI = {"id": "u-li", "role": "rep", "team_id": "t-south", "name": "李娜", "username": "ln"}
WANG = {"id": "u-wang", "role": "manager", "team_id": "t-south", "name": "王经理",
        "username": "wj"}
ADMIN = {"id": "u-admin", "role": "admin", "team_id": None, "name": "管理员", "username": "admin"}


@pytest.fixture
def customers(container_factory, service_config):
    container_factory(CustomersService, service_config).start()
    with ServiceRpcClient("customers") as client:
        yield client


@pytest.fixture
def db(db_of):
    return db_of("customers")


def test_a_detail_read_and_a_list_page_are_logged_with_who_what_and_where(customers, db):
    c = customers.create(ZHANG, {"company_name": "深圳市华强电子有限公司",
                                 "phones": ["13812345678"], "emails": ["zhangwei@huaqiang.cn"],
                                 "contacts": [{"name": "陈志强", "phone": "13900001111"}]})
    listed = customers.list_customers(ZHANG, {})
    [item] = listed["items"]
    assert item["phones"] == ["138****5678"] and item["emails"] == ["zh***@huaqiang.cn"]
    assert item["contacts"][0]["phone"] == "139****1111" and item["masked"] is True
    opened = customers.open_customer(ZHANG, c["id"])
    assert opened["phones"] == ["+8613812345678"] and not opened.get("masked")
    entries = list(db.reads.find({}, {"_id": 0}).sort("at", 1))
    assert [(e["kind"], e["customer_ids"], e["user_id"], e["user_name"], e["team_id"],
             e["address"]) for e in entries] == [
        ("list", [c["id"]], "u-zhang", "张伟", "t-south", "203.0.113.7"),
        ("detail", [c["id"]], "u-zhang", "张伟", "t-south", "203.0.113.7")]
    # another service asking on a user's behalf (the scheduler) is no read of his
    customers.get_customer(ZHANG, c["id"])
    assert db.reads.count_documents({}) == 2
    # an open refused is logged too, as refused: nothing was shown
    with pytest.raises(NotFound):
        customers.open_customer(LI, c["id"])
    tried = db.reads.find_one({"user_id": "u-li"})
    assert tried["customer_ids"] == [c["id"]] and tried["refused"] == "not_found"
    db.reads.delete_one({"_id": tried["_id"]})
    # the audit trail holds the whole values too: reading it is opening the record
    trail = customers.audit_trail(ZHANG, c["id"])
    assert trail["items"][0]["after"]["phones"] == ["+8613812345678"]
    assert db.reads.count_documents({"kind": "detail"}) == 2
    assert db.read_quota.find_one()["opened"] == [c["id"]]  # the same customer, counted once


def test_concurrent_opens_at_the_limit_let_exactly_one_through(customers, db):
    customers.put_read_settings(ADMIN, {"rep_hourly_limit": 5, "manager_hourly_limit": 300})
    made = [customers.create(ZHANG, {"company_name": f"深圳市第{n}号电子有限公司"})["id"]
            for n in range(15)]
    for cid in made[:4]:
        customers.open_customer(ZHANG, cid)
    replies = [customers.open_customer.call_async(ZHANG, cid) for cid in made[4:]]
    answers = []
    for reply in replies:
        try:
            answers.append(reply.result()["id"])
        except TooManyRequests as exc:
            answers.append(exc.code)
    assert len([a for a in answers if a != "read_limit"]) == 1, answers
    [quota] = db.read_quota.find()
    assert quota["n"] == 5 and len(quota["opened"]) == 5
    assert db.reads.count_documents({"refused": "read_limit"}) == len(made[4:]) - 1
    # what he opened this hour still opens; nothing new does
    assert customers.open_customer(ZHANG, made[0])["id"] == made[0]
    with pytest.raises(TooManyRequests) as refused:
        customers.open_customer(ZHANG, made[-1])
    assert refused.value.details["limit"] == 5
    assert 0 < refused.value.details["retry_after_seconds"] <= 3600
    # the managers hear of it once: one alert for the hour
    assert db.read_quota.find_one()["alerted_at"] is not None
    # raising the limit lets him on at once
    customers.put_read_settings(ADMIN, {"rep_hourly_limit": 6, "manager_hourly_limit": 300})
    assert customers.open_customer(ZHANG, made[-1])["id"] == made[-1]
    assert customers.read_report(WANG, {})["alerts"][0]["user"] == {"id": "u-zhang",
                                                                     "name": "张伟"}


def test_concurrent_first_opens_of_an_hour_all_pass_under_the_limit(customers, db):
    """The hour's counter is made by its first open: others racing with it
    are counted in it, never refused."""
    made = [customers.create(LI, {"company_name": f"杭州市第{n}号丝绸有限公司"})["id"]
            for n in range(12)]
    replies = [customers.open_customer.call_async(LI, cid) for cid in made]
    assert sorted(r.result()["id"] for r in replies) == sorted(made)
    [quota] = db.read_quota.find()
    assert quota["n"] == 12 and sorted(quota["opened"]) == sorted(made)
    assert quota["alerted_at"] is None


class _Racing:
    """The customers database, where another open makes the hour's counter
    just after this one found none (the interleaving of two first opens)."""

    def __init__(self, db, rival):
        self.db, self.rival = db, rival

    def __getattr__(self, name):
        coll = getattr(self.db, name)
        if name != "read_quota":
            return coll
        racing = self

        class Coll:
            def __getattr__(self, attr):
                return getattr(coll, attr)

            def find_one_and_update(self, *args, **kw):
                found = coll.find_one_and_update(*args, **kw)
                if found is None and racing.rival is not None:
                    coll.insert_one(racing.rival)
                    racing.rival = None
                return found

        return Coll()


def test_an_open_racing_with_the_hour_s_first_is_counted_not_refused(db):
    li = Principal.of(LI)
    now = datetime.now(UTC)
    rival = reads.new_quota(li, "c-first", now)
    allowed, quota = storage.open_in_quota(_Racing(db, rival), reads.new_quota(li, "c-second", now),
                                           "c-second", 60)
    assert allowed
    assert db.read_quota.find_one()["opened"] == ["c-first", "c-second"]


def test_the_limits_are_set_by_an_admin_and_read_by_managers(customers):
    assert customers.get_read_settings(WANG) == {"rep_hourly_limit": 60,
                                                 "manager_hourly_limit": 300}
    with pytest.raises(Forbidden):
        customers.get_read_settings(ZHANG)
    with pytest.raises(Forbidden):
        customers.put_read_settings(WANG, {"rep_hourly_limit": 600, "manager_hourly_limit": 600})
    with pytest.raises(Invalid):
        customers.put_read_settings(ADMIN, {"rep_hourly_limit": 0, "manager_hourly_limit": 300})
    assert customers.put_read_settings(ADMIN, {"rep_hourly_limit": 80,
                                               "manager_hourly_limit": 400}) == {
        "rep_hourly_limit": 80, "manager_hourly_limit": 400}
    assert customers.get_read_settings(WANG)["rep_hourly_limit"] == 80


def _pool_customer(customers):
    c = customers.create(ZHANG, {"company_name": "广州宏达贸易有限公司", "phones": ["13812345678"],
                                 "emails": ["hongda@163.com"], "industry": "外贸",
                                 "address": "广州市天河区体育西路",
                                 "contacts": [{"name": "刘芳", "phone": "13900001111"}]})
    customers.change_stage(ZHANG, c["id"], {"stage": 25})
    customers.add_followup(ZHANG, c["id"], {"content": "刘总说年底前不采购"})
    alarm = customers.raise_alarm(ZHANG, c["id"], {"reason": "客户公司搬迁，联系不上"})
    customers.resolve_alarm(WANG, alarm["id"], {"decision": "abandon", "note": "核实属实，放弃到公海",
                                                "verified": "real"})
    customers.abandon_customer(ZHANG, c["id"])
    return c


def test_a_pool_customer_hides_its_phones_and_follow_ups_from_a_rep_until_he_claims_it(
        customers):
    c = _pool_customer(customers)
    seen = customers.open_customer(LI, c["id"])
    assert seen["company_name"] == "广州宏达贸易有限公司" and seen["industry"] == "外贸"
    assert seen["address"] == "广州市天河区体育西路"
    assert seen["phones"] == ["138****5678"] and seen["emails"] == ["ho***@163.com"]
    assert seen["contacts"][0]["phone"] == "139****1111" and seen["masked"] is True
    assert [(s["from"], s["to"]) for s in seen["stage_history"]] == [(None, 0), (0, 25)]
    assert seen["abandoned"]["reason"] == "客户公司搬迁，联系不上"
    assert seen["abandoned"]["note"] == "核实属实，放弃到公海"
    with pytest.raises(Forbidden) as hidden:
        customers.list_followups(LI, c["id"])
    assert hidden.value.code == "claim_first"
    full = customers.open_customer(WANG, c["id"])
    assert full["phones"] == ["+8613812345678"] and not full.get("masked")
    assert customers.list_followups(WANG, c["id"])["total"] == 1
    customers.claim_customer(LI, c["id"])
    mine = customers.open_customer(LI, c["id"])
    assert mine["phones"] == ["+8613812345678"] and mine.get("abandoned") is None
    assert customers.list_followups(LI, c["id"])["items"][0]["content"] == "刘总说年底前不采购"


def test_an_export_reads_page_by_page_logs_each_page_and_is_audited_once(customers, db):
    made = {customers.create(ZHANG if n % 2 else LI,
                             {"company_name": f"东莞市第{n}号五金制品有限公司"})["id"]
            for n in range(7)}
    customers.create({**ADMIN, "role": "manager", "team_id": "t-north", "id": "u-sun",
                      "name": "孙经理"}, {"company_name": "北京北方华创科技有限公司"})
    manager = {**WANG, "address": "198.51.100.2"}
    run = customers.start_export(manager, "csv")
    seen, after = [], None
    while True:
        page = customers.export_page(manager, run["id"], after, 3)
        assert len(page["items"]) <= 3
        seen += [c["id"] for c in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert set(seen) == made and len(seen) == 7  # his team's only, each once
    done = customers.finish_export(manager, run["id"])
    assert done["count"] == 7 and done["status"] == "done"
    assert customers.finish_export(manager, run["id"])["count"] == 7  # audited once
    pages = list(db.reads.find({"kind": "export"}))
    assert len(pages) == 3 and {e["address"] for e in pages} == {"198.51.100.2"}
    assert sorted(cid for e in pages for cid in e["customer_ids"]) == sorted(made)
    [entry] = db.audit.find({"customer_id": "company", "action": "export"})
    assert entry["actor"]["id"] == "u-wang" and entry["after"]["count"] == 7
    with pytest.raises(Forbidden):
        customers.start_export(ZHANG, "csv")


def test_the_reads_report_is_the_manager_s_team_newest_first_by_cursor(customers):
    made = [customers.create(ZHANG, {"company_name": f"佛山市第{n}号陶瓷有限公司"})["id"]
            for n in range(5)]
    for cid in made:
        customers.open_customer(ZHANG, cid)
        eventlet.sleep(0.002)
    report = customers.read_report(WANG, {"page_size": 2})
    assert report["total"] == 5
    seen, after = [], None
    while True:
        page = customers.read_report(ADMIN, {"user_id": "u-zhang", "page_size": 2,
                                            **({"after": after} if after else {})})
        seen += [e["customer_ids"][0] for e in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert seen == made[::-1]
    north = {"id": "u-sun", "role": "manager", "team_id": "t-north", "name": "孙经理",
             "username": "sun"}
    assert customers.read_report(north, {})["items"] == []
    with pytest.raises(Forbidden):
        customers.read_report(ZHANG, {})
