"""Customer rules without a database: keys, visibility, matches, shapes."""

from datetime import UTC, datetime

import pytest

from services.customers import domain, listing
from services.customers import normalize as norm
from services.customers.errors import InvalidFields, NotAllowed, NotVisible
from tests.unit.customers.people import ADMIN, MANAGER, OTHER_MANAGER, OTHER_REP, REP, REP2

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def keys_of(**fields):
    return domain.normalize_keys_input(fields)


def customer(owner=REP, status="active", **extra):
    return {"_id": "c1", "company_name": "深圳市腾讯计算机系统有限公司", "status": status,
            "owner_id": owner.id if owner else None, "owner_name": owner.name if owner else None,
            "team_id": owner.team_id if owner else "team-south", **extra}


# ---------------------------------------------------------------- keys


def test_spellings_of_one_company_give_the_same_keys():
    a = domain.claim_keys(keys_of(company_name="深圳市腾讯计算机系统有限公司",
                                  phones=["0755-8601 3388"]))
    b = domain.claim_keys(keys_of(company_name="腾讯計算機系統（深圳）有限公司",
                                  phones=["+86 755 86013388"]))
    assert a == b == ["name:腾讯计算机系统@广东/深圳", "phone:+8675586013388"]


def test_keys_cover_every_field_in_one_sorted_order():
    keys = domain.claim_keys(keys_of(
        company_name="北京小米科技有限责任公司", phones=["138 0013 8000", "010-6060 6666"],
        credit_code="91110108551385082Q", emails=["Sales@XIAOMI.com", "xiaomi_li@qq.com"]))
    assert keys == sorted(keys)
    assert keys == ["credit:91110108551385082Q", "email:sales@xiaomi.com",
                    "email:xiaomi_li@qq.com", "name:小米科技@北京", "phone:+861060606666",
                    "phone:+8613800138000"]


def test_a_shared_switchboard_number_is_no_key():
    keys = domain.claim_keys(keys_of(company_name="深圳华强电子世界", phones=["0755-83030000",
                                                                              "13912345678"]),
                             shared_phones={"+8675583030000"})
    assert "phone:+8675583030000" not in keys
    assert "phone:+8613912345678" in keys


def test_name_key_round_trip_with_and_without_region():
    assert domain.split_name_key("name:腾讯计算机系统@广东/深圳") == ("name:腾讯计算机系统", "广东/深圳")
    assert domain.split_name_key("name:小米科技@") == ("name:小米科技", "")
    assert domain.is_name_key("name:小米科技@") and not domain.is_name_key("phone:+8613800138000")


def test_invalid_credit_code_is_a_422_naming_the_field():
    with pytest.raises(InvalidFields) as err:
        keys_of(company_name="华为技术有限公司", credit_code="914403001922038217")
    assert "credit_code" in err.value.details["fields"]


def test_invalid_phone_is_a_422_naming_the_field():
    with pytest.raises(InvalidFields) as err:
        keys_of(company_name="华为技术有限公司", phones=["8888 8888"])
    assert list(err.value.details["fields"]) == ["phones"]


def test_blank_company_name_is_refused():
    with pytest.raises(InvalidFields) as err:
        keys_of(company_name="（）——")
    assert "company_name" in err.value.details["fields"]


def test_search_grams_skip_common_words_unless_nothing_else_is_left():
    assert domain.search_grams("恒通贸易") == ["恒通", "通贸", "~恒贸", "~通易"]
    assert set(domain.search_grams("恒达贸易")) & set(domain.name_terms("恒通贸易")) == {"~恒贸"}
    assert domain.search_grams("科技") == ["科技"]


# ---------------------------------------------------------------- visibility


def test_a_rep_sees_only_his_own_customers():
    assert domain.may_see(REP, customer(REP))
    assert not domain.may_see(REP2, customer(REP))
    with pytest.raises(NotVisible):
        domain.check_visible(REP2, customer(REP))


def test_a_manager_sees_his_team_an_admin_everything():
    assert domain.may_see(MANAGER, customer(REP2))
    assert not domain.may_see(OTHER_MANAGER, customer(REP))
    assert domain.may_see(ADMIN, customer(OTHER_REP))


def test_the_pool_is_public():
    pooled = customer(None, status="pool")
    assert all(domain.may_see(p, pooled) for p in (REP, OTHER_REP, MANAGER, ADMIN))


def test_only_reps_and_managers_enter_customers():
    domain.check_may_create(REP)
    domain.check_may_create(MANAGER)
    with pytest.raises(NotAllowed):
        domain.check_may_create(ADMIN)


def test_only_the_owner_writes_follow_ups():
    assert domain.check_may_follow_up(REP, customer(REP))
    with pytest.raises(NotAllowed):
        domain.check_may_follow_up(MANAGER, customer(REP))
    with pytest.raises(NotVisible):  # not visible: not even told it exists
        domain.check_may_follow_up(OTHER_REP, customer(REP))


def test_list_filter_keeps_each_role_in_its_scope():
    assert listing.list_filter(REP) == {"owner_id": REP.id}
    assert listing.list_filter(MANAGER, stage=25) == {"team_id": "team-south", "stage": 25}
    assert listing.list_filter(ADMIN, owner_id=REP.id) == {"owner_id": REP.id}
    assert listing.list_filter(REP, status="pool") == {"status": "pool"}
    # a rep asking for another rep's customers gets nothing, not a wider scope
    assert listing.list_filter(REP, owner_id=REP2.id) == {"_id": {"$in": []}}


def test_query_terms_search_phone_credit_code_or_name():
    assert listing.query_terms("138-0013-8000") == {"phones": "+8613800138000"}
    assert listing.query_terms("腾讯计算机") == {"name_grams": {"$all": ["腾讯", "讯计", "计算", "算机"]}}
    assert listing.query_terms("腾") == {"name_core": {"$regex": "腾"}}
    assert listing.query_terms(None) == {}


# ---------------------------------------------------------------- values


def test_birthday_must_be_a_real_day():
    assert domain.valid_month_day("02-29") == "02-29"
    with pytest.raises(InvalidFields):
        domain.valid_month_day("02-30")
    with pytest.raises(InvalidFields):
        domain.valid_month_day("13-01")


def test_birthday_kind_is_read_from_the_label():
    assert domain.birthday_kind("公司成立纪念日", None) == "anniversary"
    assert domain.birthday_kind("刘总生日", None) == "birthday"
    assert domain.birthday_kind("刘总生日", "anniversary") == "anniversary"


def test_money_is_yuan_in_and_fen_stored():
    assert domain.money_to_fen(12345.67) == 1234567
    assert domain.money_to_fen(None) == 0
    assert domain.fen_to_number(1234567) == 12345.67
    assert domain.fen_to_number(500000) == 5000
    for bad in (1.234, -5, 10**20):
        with pytest.raises(InvalidFields) as err:
            domain.money_to_fen(bad)
        assert "expected_value" in err.value.details["fields"]


# ---------------------------------------------------------------- matches


def test_exact_matches_show_only_id_name_owner_and_what_matched():
    stored = customer(REP, phones=["+8675586013388"], expected_value_fen=9900000,
                      contacts=[{"name": "马化腾"}])
    held = {"name:腾讯计算机系统@广东/深圳": [{"customer_id": "c1"}],
            "phone:+8675586013388": [{"customer_id": "c1"}]}
    [m] = domain.exact_matches(held, {"c1": stored})
    assert m == {"customer_id": "c1", "company_name": "深圳市腾讯计算机系统有限公司",
                 "owner": {"id": REP.id, "name": "张伟"}, "status": "active",
                 "matched_on": ["company_name", "phone"], "score": 100.0}


def test_a_claim_whose_customer_is_not_stored_yet_names_its_claimant():
    held = {"phone:+8613800138000": [{"customer_id": "c9", "owner_id": REP2.id,
                                      "owner_name": "李娜", "company_name": "小米科技有限责任公司"}]}
    [m] = domain.exact_matches(held, {})
    assert m["owner"] == {"id": REP2.id, "name": "李娜"}
    assert m["company_name"] == "小米科技有限责任公司"


def test_a_pool_customer_matches_with_no_owner():
    held = {"credit:91110108551385082Q": [{"customer_id": "c1"}]}
    [m] = domain.exact_matches(held, {"c1": customer(None, status="pool")})
    assert m["owner"] is None and m["status"] == "pool"


def test_similar_ranks_near_names_and_skips_other_regions_and_exact_ones():
    name = norm.normalize_company_name("上海恒通贸易有限公司")
    postings = [
        {"c": "a", "k": "恒达贸易", "r": "上海"},
        {"c": "b", "k": "恒通贸易", "r": "北京"},  # another city: another company
        {"c": "c", "k": "恒通贸易", "r": ""},  # the exact match itself
        {"c": "d", "k": "华为技术", "r": ""},
        {"c": "a", "k": "恒达贸易", "r": "上海"},  # found under two terms
    ]
    ranked = domain.rank_similar(name, postings, exclude={"c"})
    assert [cid for _, cid in ranked] == ["a"]
    assert ranked[0][0] >= norm.SIMILAR_THRESHOLD
    stored = {"a": {"_id": "a", "company_name": "上海恒达贸易有限公司", "owner_id": "r",
                    "owner_name": "李娜", "status": "active", "phones": ["+862168881234"]}}
    [m] = domain.similar_matches(ranked + [(80.0, "in-flight")], stored)
    assert m["company_name"] == "上海恒达贸易有限公司" and m["owner"]["name"] == "李娜"
    assert m["matched_on"] == ["company_name"] and "phones" not in m


def test_duplicate_message_names_the_owner():
    m = domain.match("c1", "小米科技有限责任公司", {"id": "r", "name": "李娜"}, "active",
                     ["phone"], 100)
    assert "李娜" in domain.duplicate_message([m])


# ---------------------------------------------------------------- documents


def test_new_customer_document_and_its_event():
    data = {"company_name": " 北京小米科技有限责任公司 ", "address": "北京市海淀区清河中街68号",
            "industry": "消费电子", "birthday": "04-06", "birthday_label": "公司成立纪念日",
            "birthday_kind": None, "referred_by": None, "expected_value": 880000.5, "stage": 25}
    keys = keys_of(company_name=data["company_name"], phones=["010-6060 6666"])
    claimed = domain.claim_keys(keys)
    doc = domain.new_customer("c7", data, keys, [], claimed, REP, NOW)
    assert doc["company_name"] == "北京小米科技有限责任公司"
    assert doc["expected_value_fen"] == 88000050
    assert (doc["version"], doc["status"], doc["owner_id"], doc["team_id"]) == (
        1, "active", REP.id, "team-south")
    assert doc["birthday_kind"] == "anniversary"
    assert doc["name_core"] == "小米科技" and doc["name_region"] == "北京"
    assert doc["claim_keys"] == claimed
    ev = domain.created_event(doc)
    assert ev == {"customer_id": "c7", "version": 1, "company_name": "北京小米科技有限责任公司",
                  "owner_id": REP.id, "team_id": "team-south", "stage": 25,
                  "expected_value_fen": 88000050, "status": "active", "birthday": "04-06",
                  "birthday_label": "公司成立纪念日", "birthday_kind": "anniversary",
                  "referred_by": None, "created_by": REP.id}
    out = domain.public_customer(doc)
    assert out["expected_value"] == 880000.5
    assert out["owner"] == {"id": REP.id, "name": "张伟"}
    assert out["created_at"] == "2026-03-02T09:30:00+00:00"
    assert "claim_keys" not in out and "name_grams" not in out
    assert "claim_keys" not in domain.audit_snapshot(doc)
