"""The customers service over real RabbitMQ and FerretDB: the duplicate guard
(撞单), its claims, follow-ups and the CustomerCreated event."""

import eventlet
import pytest
from nameko.exceptions import RemoteError
from pymongo.collection import Collection
from pymongo.errors import AutoReconnect

from services.common import events
from services.common.clock import now
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.events import handles
from services.common.standalone import ServiceRpcClient
from services.customers import domain, storage
from services.customers import normalize as norm
from services.customers.service import CustomersService

ZHANG = {"id": "u-zhang", "role": "rep", "team_id": "t-south", "name": "张伟", "username": "zw"}
LI = {"id": "u-li", "role": "rep", "team_id": "t-south", "name": "李娜", "username": "ln"}
ZHAO = {"id": "u-zhao", "role": "rep", "team_id": "t-north", "name": "赵磊", "username": "zl"}
WANG = {"id": "u-wang", "role": "manager", "team_id": "t-south", "name": "王经理",
        "username": "wj"}
ADMIN = {"id": "u-admin", "role": "admin", "team_id": None, "name": "管理员", "username": "admin"}


def credit_code(first17: str) -> str:
    return first17 + norm.credit_code_check_char(first17)


TENCENT_CODE = credit_code("91440300708461136")
XIAOMI_CODE = credit_code("91110108551385082")


class Listener:
    name = "custlisten"
    seen: list = []

    @handles("customers", "CustomerCreated")
    def on_customer_created(self, payload):
        self.seen.append(payload)


@pytest.fixture
def customers(container_factory, service_config, monkeypatch):
    monkeypatch.setitem(events.SUBSCRIPTIONS, ("customers", "CustomerCreated"),
                        ("scheduler", "forecast", "custlisten"))
    container = container_factory(CustomersService, service_config)
    container.start()
    with ServiceRpcClient("customers") as client:
        yield client


@pytest.fixture
def db(db_of):
    return db_of("customers")


def tencent(**extra):
    return {"company_name": "深圳市腾讯计算机系统有限公司", "phones": ["0755-86013388"],
            "credit_code": TENCENT_CODE, "emails": ["bd@tencent.com"],
            "contacts": [{"name": "刘炽平", "title": "总裁", "decision_level": 5}],
            "expected_value": 1280000.5, "stage": 25, "birthday": "11-11",
            "birthday_label": "公司成立纪念日", **extra}


def test_create_stores_the_customer_its_claims_and_the_first_audit_entry(customers, db):
    out = customers.create(ZHANG, tencent())
    assert out["owner"] == {"id": "u-zhang", "name": "张伟"}
    assert out["expected_value"] == 1280000.5
    assert out["phones"] == ["+8675586013388"]
    assert out["birthday_kind"] == "anniversary"
    doc = db.customers.find_one({"_id": out["id"]})
    assert doc["expected_value_fen"] == 128000050
    assert (doc["version"], doc["status"], doc["stage"], doc["team_id"]) == (
        1, "active", 25, "t-south")
    assert sorted(doc["claim_keys"]) == sorted([
        "name:腾讯计算机系统@广东/深圳", "phone:+8675586013388", f"credit:{TENCENT_CODE}",
        "email:bd@tencent.com"])
    assert db.claims.count_documents({"customer_id": out["id"]}) == 3
    assert db.name_claims.find_one({"_id": "name:腾讯计算机系统#1"})["customer_id"] == out["id"]
    [entry] = storage.audit_entries(db, out["id"])
    assert entry["action"] == "create" and entry["actor"]["id"] == "u-zhang"
    assert customers.get_customer(WANG, out["id"])["company_name"] == "深圳市腾讯计算机系统有限公司"


@pytest.mark.parametrize("other, matched_on", [
    ({"company_name": "腾讯計算機系統（深圳）有限公司"}, "company_name"),
    ({"company_name": "深圳某某科技有限公司", "phones": ["+86 755 8601 3388"]}, "phone"),
    ({"company_name": "深圳某某科技有限公司", "credit_code": TENCENT_CODE.lower()},
     "credit_code"),
    ({"company_name": "深圳某某科技有限公司", "emails": ["BD@Tencent.com"]}, "email"),
])
def test_a_second_entry_is_refused_on_each_key_and_names_the_owner(customers, db, other,
                                                                     matched_on):
    first = customers.create(ZHANG, tencent())
    claims_before = db.claims.count_documents({})
    with pytest.raises(Conflict) as err:
        customers.create(ZHAO, other)
    assert err.value.code == "duplicate_customer"
    [m] = err.value.details["matches"]
    assert m["customer_id"] == first["id"]
    assert m["owner"] == {"id": "u-zhang", "name": "张伟"}
    assert matched_on in m["matched_on"]
    assert set(m) == {"customer_id", "company_name", "owner", "status", "matched_on", "score"}
    assert "张伟" in err.value.message
    # the loser left nothing: no customer, no plain claim, no active name claim
    assert db.customers.count_documents({}) == 1
    assert db.claims.count_documents({}) == claims_before
    assert customers.check(ZHAO, {"company_name": "深圳某某科技有限公司"})["available"]


BYTEDANCE_CODE = credit_code("91110108MA01Y2T5X")


def test_a_lost_claim_releases_the_keys_taken_before_it(customers, db):
    # Another customer holds the phone; the credit code sorts before it, so it
    # is claimed first and must be given back. The name comes after every
    # plain key: a loss on the phone never writes to the name's log.
    storage.claim_keys(db, "c-holder", ["phone:+8613800138000"], now(),
                       {"owner_id": "u-li", "owner_name": "李娜", "company_name": "先到公司"})
    with pytest.raises(Conflict) as err:
        customers.create(ZHAO, {"company_name": "北京字节跳动科技有限公司",
                                "phones": ["138 0013 8000"], "credit_code": BYTEDANCE_CODE})
    # the holder's customer is not stored: the match names the claimant
    assert err.value.details["matches"][0]["owner"] == {"id": "u-li", "name": "李娜"}
    assert db.claims.find_one({"_id": f"credit:{BYTEDANCE_CODE}"}) is None
    assert storage.read_stream(db, "name:字节跳动科技") == []
    assert db.customers.count_documents({}) == 0
    ok = customers.create(ZHAO, {"company_name": "北京字节跳动科技有限公司",
                                 "phones": ["010-8888 6666"], "credit_code": BYTEDANCE_CODE})
    assert ok["owner"]["id"] == "u-zhao"


def test_entries_refused_on_a_phone_leave_the_name_log_untouched(customers, db):
    # Reps keep entering 海底捞 with the switchboard of a customer someone
    # holds: each 409 used to write a claim and a release into the name's
    # log, until the log was too long to decide and the name unclaimable.
    customers.create(LI, {"company_name": "四川海底捞餐饮股份有限公司",
                          "phones": ["028-8888 1234"]})
    for i in range(6):
        with pytest.raises(Conflict):
            customers.create(ZHAO, {"company_name": f"成都蜀大侠{i}号火锅店",
                                    "phones": ["(028) 8888-1234"]})
    for i in range(6):
        stream, _ = domain.split_name_key(domain.name_key(
            norm.normalize_company_name(f"成都蜀大侠{i}号火锅店")))
        assert storage.read_stream(db, stream) == []
    assert db.name_claims.count_documents({}) == 1  # 海底捞's own claim


def test_a_name_log_too_long_to_decide_is_a_conflict_not_a_crash(customers, db, monkeypatch):
    monkeypatch.setattr(storage.claims, "MAX_STREAM_ENTRIES", 4)
    stream = "name:顺丰速运"
    for seq in range(1, 6, 2):  # three renames away from the name: 6 entries
        db.name_claims.insert_one({**norm.name_claim_entry(stream, seq, "广东/深圳", f"c{seq}"),
                                   "owner_id": "u-li", "owner_name": "李娜",
                                   "company_name": "深圳顺丰速运有限公司", "claimed_at": now()})
        db.name_claims.insert_one(norm.name_release_entry(stream, seq + 1, seq, f"c{seq}"))
    with pytest.raises(Conflict) as err:
        customers.create(ZHANG, {"company_name": "深圳顺丰速运有限公司",
                                 "phones": ["0755-95338000"]})
    assert err.value.code == "name_log_full"
    with pytest.raises(Conflict):
        customers.check(ZHANG, {"company_name": "顺丰速运（深圳）有限公司"})
    # the phone it took first is free again
    assert db.claims.count_documents({}) == 0


def _failing_insert(monkeypatch, key, after_write):
    """Make the insert of claim `key` fail with a lost connection, before
    or after the server wrote it (a driver cannot tell which happened)."""
    real = Collection.insert_one

    def insert_one(self, document, *args, **kwargs):
        if isinstance(document, dict) and document.get("_id") == key:
            if after_write:
                real(self, document, *args, **kwargs)
            raise AutoReconnect("connection reset by peer")
        return real(self, document, *args, **kwargs)

    monkeypatch.setattr(Collection, "insert_one", insert_one)


@pytest.mark.parametrize("after_write", [False, True])
def test_a_write_failing_part_way_through_the_claims_leaves_nothing_claimed(
        customers, db, monkeypatch, after_write):
    phone = "phone:+862868886666"
    fields = {"company_name": "成都天府软件园有限公司", "phones": ["028-6888 6666"],
              "credit_code": XIAOMI_CODE}
    with monkeypatch.context() as m:
        _failing_insert(m, phone, after_write)
        with pytest.raises(RemoteError) as err:
            customers.create(ZHANG, fields)
        assert err.value.exc_type == "AutoReconnect"
    # the credit code taken before the failure (and the phone, had it been
    # written) went back: nobody is told a customer that was never stored has it
    assert db.claims.count_documents({}) == 0
    assert db.customers.count_documents({}) == 0
    assert customers.check(LI, fields)["available"]
    assert customers.create(LI, fields)["owner"]["id"] == "u-li"


def test_claim_keys_gives_back_what_it_took_when_a_write_fails(db, monkeypatch):
    meta = {"owner_id": "u-zhang", "owner_name": "张伟", "company_name": "成都天府软件园有限公司"}
    keys = [f"credit:{XIAOMI_CODE}", "email:hr@tianfusoft.cn", "name:天府软件园@四川/成都"]
    with monkeypatch.context() as m:
        _failing_insert(m, "email:hr@tianfusoft.cn", after_write=False)
        with pytest.raises(AutoReconnect):
            storage.claim_keys(db, "c-tianfu", keys, now(), meta)
    assert db.claims.find_one({"_id": f"credit:{XIAOMI_CODE}"}) is None
    assert storage.read_stream(db, "name:天府软件园") == []
    assert storage.claim_keys(db, "c-other", keys, now(), meta) == {}


def test_the_create_entry_stays_first_when_another_write_follows_at_once(customers, db,
                                                                      monkeypatch):
    # a manager's change landing the moment the document is stored (before
    # create had written its own entry) took entry 1: create answered 500 and
    # CustomerCreated was never sent
    real = storage.insert_customer

    def insert_then_someone_appends(database, doc):
        out = real(database, doc)
        storage.append_audit(database, doc["_id"], WANG, "patched", {"industry": None},
                             {"industry": "餐饮", "reason": "补充行业"}, now())
        return out

    monkeypatch.setattr(storage, "insert_customer", insert_then_someone_appends)
    out = customers.create(ZHANG, {"company_name": "重庆小天鹅投资控股（集团）有限公司"})
    entries = storage.audit_entries(db, out["id"])
    assert [(e["seq"], e["action"]) for e in entries] == [(1, "create"), (2, "patched")]
    assert customers.audit_trail(WANG, out["id"])["intact"] is True


def test_concurrent_entries_of_one_company_have_exactly_one_winner(customers, db):
    names = ["北京小米科技有限责任公司", "小米科技有限责任公司", "小米科技（北京）有限公司",
             "北京市小米科技有限公司", "小米科技有限公司"]
    phones = ["010-6060 6666", "+86 10 6060 6666", "0086 10 60606666", "(010)60606666"]
    reps = [{**ZHANG, "id": f"u-rep{i}", "name": f"业务员{i}"} for i in range(8)]
    replies = [customers.create.call_async(reps[i % 8], {"company_name": names[i % 5],
                                                         "phones": [phones[i % 4]],
                                                         "credit_code": XIAOMI_CODE})
               for i in range(24)]
    won, lost = [], []
    for reply in replies:
        try:
            won.append(reply.result())
        except Conflict as exc:
            lost.append(exc)
    assert len(won) == 1 and len(lost) == 23
    winner = won[0]
    for exc in lost:
        assert [m["customer_id"] for m in exc.details["matches"]] == [winner["id"]]
        assert exc.details["matches"][0]["owner"]["id"] == winner["owner"]["id"]
    assert db.customers.count_documents({}) == 1
    assert {c["customer_id"] for c in db.claims.find()} == {winner["id"]}


def test_regions_are_compared_only_when_both_names_have_one(customers):
    shanghai = customers.create(ZHANG, {"company_name": "上海恒通贸易有限公司"})
    beijing = customers.create(LI, {"company_name": "北京恒通贸易有限公司"})
    assert shanghai["id"] != beijing["id"]
    with pytest.raises(Conflict) as err:
        customers.create(ZHAO, {"company_name": "恒通贸易有限公司"})
    assert {m["customer_id"] for m in err.value.details["matches"]} == {
        shanghai["id"], beijing["id"]}


def test_check_reports_matches_and_similar_names_without_creating(customers, db):
    mine = customers.create(ZHANG, {"company_name": "上海恒通贸易有限公司",
                                    "phones": ["021-6888 1234"]})
    out = customers.check(ZHAO, {"company_name": "上海恒通貿易有限公司"})
    assert not out["available"]
    assert out["matches"][0]["owner"]["name"] == "张伟"
    near = customers.check(ZHAO, {"company_name": "上海恒达贸易有限公司"})
    assert near["available"] and near["matches"] == []
    assert [s["customer_id"] for s in near["similar"]] == [mine["id"]]
    assert near["similar"][0]["score"] >= 75
    assert customers.check(ZHAO, {"phones": ["02168881234"]})["matches"][0]["matched_on"] == [
        "phone"]
    assert db.customers.count_documents({}) == 1


def test_a_shared_switchboard_number_stops_blocking(customers):
    customers.create(ZHANG, {"company_name": "深圳华强电子世界", "phones": ["0755-83030000"]})
    with pytest.raises(Conflict):
        customers.create(LI, {"company_name": "深圳赛格电子市场", "phones": ["0755 8303 0000"]})
    with pytest.raises(Forbidden):
        customers.mark_shared_phone(WANG, {"phone": "0755-83030000"})
    marked = customers.mark_shared_phone(ADMIN, {"phone": "0755-83030000", "note": "华强北总机"})
    assert marked["phone"] == "+8675583030000" and marked["released_claims"] == 1
    other = customers.create(LI, {"company_name": "深圳赛格电子市场", "phones": ["0755 8303 0000"]})
    assert other["phones"] == ["+8675583030000"]
    assert customers.list_shared_phones(ZHANG)["items"][0]["note"] == "华强北总机"


def test_invalid_fields_are_422_and_leave_nothing(customers, db):
    with pytest.raises(Invalid) as err:
        customers.create(ZHANG, tencent(credit_code="914403007084611369"))
    assert "credit_code" in err.value.details["fields"]
    with pytest.raises(Invalid) as err:
        customers.create(ZHANG, tencent(stage=33))
    assert "stage" in err.value.details["fields"]
    with pytest.raises(Invalid) as err:
        customers.create(ZHANG, tencent(referred_by="no-such-customer"))
    assert "referred_by" in err.value.details["fields"]
    with pytest.raises(Forbidden):
        customers.create(ADMIN, tencent())
    assert db.customers.count_documents({}) == 0
    assert db.claims.count_documents({}) == 0
    assert db.name_claims.count_documents({}) == 0


def test_visibility_and_listing_per_role(customers):
    a = customers.create(ZHANG, {"company_name": "华为技术有限公司", "stage": 50})
    b = customers.create(LI, {"company_name": "中兴通讯股份有限公司"})
    c = customers.create(ZHAO, {"company_name": "京东方科技集团股份有限公司"})
    with pytest.raises(NotFound):
        customers.get_customer(LI, a["id"])
    with pytest.raises(NotFound):
        customers.get_customer(WANG, c["id"])
    assert {x["id"] for x in customers.list_customers(ZHANG, {})["items"]} == {a["id"]}
    assert {x["id"] for x in customers.list_customers(WANG, {})["items"]} == {a["id"], b["id"]}
    listed = customers.list_customers(ADMIN, {"page_size": 2})
    assert listed["total"] == 3 and len(listed["items"]) == 2
    assert [x["id"] for x in customers.list_customers(ADMIN, {"stage": 50})["items"]] == [a["id"]]
    assert [x["id"] for x in customers.list_customers(ADMIN, {"q": "中兴"})["items"]] == [b["id"]]
    assert customers.list_customers(ZHANG, {"owner_id": "u-li"})["total"] == 0


def _follow(fetch, page_size):
    """Every page of a list, following `next` from the first."""
    seen, after, totals = [], None, set()
    while True:
        page = fetch(page_size, after)
        totals.add(page["total"])
        seen += [x["id"] for x in page["items"]]
        after = page["next"]
        if after is None:
            return seen, totals


def test_a_list_read_page_after_page_by_cursor_holds_each_customer_once_newest_first(
        customers):
    made = [customers.create(ZHANG if n % 3 else LI, {"company_name": f"深圳市第{n}号电子有限公司",
                                                       "stage": (10, 25)[n % 2]})["id"]
            for n in range(1, 9)]
    for actor, query, want in (
            (ADMIN, {}, made),
            (WANG, {}, made),
            (ZHANG, {}, [m for n, m in enumerate(made, 1) if n % 3]),
            (WANG, {"stage": 25}, [m for n, m in enumerate(made, 1) if n % 2]),
            (ADMIN, {"q": "电子"}, made)):
        seen, totals = _follow(lambda size, after, a=actor, q=query: customers.list_customers(
            a, {**q, "page_size": size, **({"after": after} if after else {})}), 3)
        assert seen == sorted(want, reverse=True), (actor["role"], query)
        assert totals == {len(want)}
    # the cursor is a place in the list, not a page number
    with pytest.raises(Invalid) as err:
        customers.list_customers(ADMIN, {"page": 2, "after": made[0]})
    assert "after" in err.value.details["fields"]


def test_follow_ups_page_by_cursor(customers):
    c = customers.create(ZHANG, {"company_name": "美的集团股份有限公司"})
    made = [customers.add_followup(ZHANG, c["id"], {"content": f"第{i}次拜访"})["id"]
            for i in range(5)]
    seen, totals = _follow(lambda size, after: customers.list_followups(
        WANG, c["id"], 1, size, after), 2)
    assert seen == sorted(made, reverse=True) and totals == {5}


def test_follow_ups_are_appended_by_the_owner_only(customers, db):
    c = customers.create(ZHANG, {"company_name": "美的集团股份有限公司"})
    first = customers.add_followup(ZHANG, c["id"], {"content": "拜访采购部，约下周三看样",
                                                    "contact_name": "陈经理", "channel": "visit"})
    customers.add_followup(ZHANG, c["id"], {"content": "电话确认样品已寄出"})
    with pytest.raises(Forbidden):
        customers.add_followup(WANG, c["id"], {"content": "经理代写"})
    with pytest.raises(NotFound):
        customers.add_followup(ZHAO, c["id"], {"content": "别人的客户"})
    listed = customers.list_followups(WANG, c["id"])
    assert listed["total"] == 2
    assert [f["content"] for f in listed["items"]] == ["电话确认样品已寄出", "拜访采购部，约下周三看样"]
    assert first["author"] == {"id": "u-zhang", "name": "张伟"}
    assert [e["action"] for e in storage.audit_entries(db, c["id"])] == [
        "create", "followup", "followup"]


def test_customer_created_reaches_a_subscriber(customers, container_factory, service_config):
    Listener.seen.clear()
    out = customers.create(ZHANG, tencent())
    listener = container_factory(Listener, service_config)
    listener.start()  # started after the event: its queue was declared by the dispatcher
    with eventlet.Timeout(15):
        while not Listener.seen:
            eventlet.sleep(0.05)
    [ev] = Listener.seen
    assert ev["customer_id"] == out["id"] and ev["version"] == 1
    assert ev["expected_value_fen"] == 128000050
    assert ev["owner_id"] == "u-zhang" and ev["team_id"] == "t-south"
    assert ev["birthday"] == "11-11" and ev["birthday_kind"] == "anniversary"
    assert ev["event_id"] and ev["occurred_at"].endswith("+00:00")


def test_the_near_match_index_follows_a_name(customers, db):
    c = customers.create(ZHANG, {"company_name": "杭州恒生电子股份有限公司"})
    terms = domain.search_grams("恒生电子")
    assert {p["c"] for p in storage.term_postings(db, terms)} == {c["id"]}
    # an amendment renaming the customer takes it out of the old name's terms
    storage.unindex_name(db, c["id"], "恒生电子", "浙江/杭州", terms)
    assert storage.term_postings(db, terms) == []
    assert customers.check(ZHAO, {"company_name": "杭州恒升电子有限公司"})["similar"] == []
    storage.index_name(db, c["id"], "恒生电子", "浙江/杭州", terms)
    assert len(storage.term_postings(db, terms[:1])) == 1
    [near] = customers.check(ZHAO, {"company_name": "杭州恒升电子有限公司"})["similar"]
    assert near["customer_id"] == c["id"] and near["owner"]["name"] == "张伟"


def test_a_term_whose_slots_are_taken_files_the_customer_in_its_second_slot(db):
    storage.ensure_indexes(db)
    terms = domain.search_grams("美的集团")
    first, second = storage._slots("c-midea")  # noqa: SLF001
    db.name_terms.insert_one({"_id": f"{terms[0]}#{first}", "c": "c-other", "k": "美的电器",
                              "r": ""})
    storage.index_name(db, "c-midea", "美的集团", "广东/佛山", terms)
    mine = {d["_id"] for d in db.name_terms.find({"c": "c-midea"})}
    assert mine == {f"{terms[0]}#{second}"} | {f"{t}#{first}" for t in terms[1:]}
    storage.unindex_name(db, "c-midea", "美的集团", "广东/佛山", terms)
    assert db.name_terms.count_documents({"c": "c-midea"}) == 0
    assert db.name_terms.count_documents({"c": "c-other"}) == 1


def test_the_near_match_index_of_an_earlier_build_is_folded_into_one_collection(db):
    # earlier builds kept the index in 8 collections name_terms_0..7
    db.name_terms_3.insert_one({"_id": "~恒生#2", "c": "c-hs", "k": "恒生电子", "r": "浙江/杭州"})
    db.name_terms_5.insert_one({"_id": "恒生#0", "c": "c-hs", "k": "恒生电子", "r": "浙江/杭州"})
    storage.ensure_indexes(db)
    assert {p["_id"] for p in storage.term_postings(db, ["~恒生", "恒生"])} == {"~恒生#2", "恒生#0"}
    assert not {"name_terms_3", "name_terms_5"} & set(db.list_collection_names())
    storage.ensure_indexes(db)  # again (another instance starting): nothing changes
    assert db.name_terms.count_documents({}) == 2
