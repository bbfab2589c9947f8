"""Duplicate-guard keys: company names, phones, credit codes, e-mails.

Pure: imports only the module under test (no broker, no database).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from services.customers import domain
from services.customers.normalize import (
    FREE_MAIL_DOMAINS,
    SIMILAR_THRESHOLD,
    InvalidField,
    NameKey,
    credit_code_check_char,
    credit_code_key,
    email_domain_hint,
    email_keys,
    matched_on_for_key,
    name_claim_decision,
    name_claim_entry,
    name_release_entry,
    name_search_grams,
    names_match,
    normalize_company_name,
    normalize_credit_code,
    normalize_email,
    normalize_emails,
    normalize_phone,
    normalize_phones,
    phone_key,
    region_key,
    regions_compatible,
    same_company_name,
    similarity,
)

REPO = Path(__file__).resolve().parents[3]

# --------------------------------------------------------------------------
# Company names: (raw, core, region)
# --------------------------------------------------------------------------

NAMES = [
    # region as prefix, in brackets, traditional characters
    ("深圳市腾讯计算机系统有限公司", "腾讯计算机系统", "深圳"),
    ("腾讯計算機系統（深圳）有限公司", "腾讯计算机系统", "深圳"),
    ("腾讯计算机系统有限公司", "腾讯计算机系统", None),
    ("北京小米科技有限责任公司", "小米科技", "北京"),
    ("小米科技有限公司", "小米科技", None),
    ("上海恒通贸易有限公司", "恒通贸易", "上海"),
    ("北京恒通贸易有限公司", "恒通贸易", "北京"),
    ("华为技术有限公司", "华为技术", None),
    ("阿里巴巴（中国）有限公司", "阿里巴巴中国", None),  # not 阿里地区 + 巴巴
    ("阿里巴巴（中国）网络技术有限公司", "阿里巴巴中国网络技术", None),
    ("杭州阿里巴巴广告有限公司", "阿里巴巴广告", "杭州"),
    ("ＡＢＣ贸易有限公司", "abc贸易", None),  # full width
    ("abc 贸易 有限公司", "abc贸易", None),
    ("中國工商銀行股份有限公司", "中国工商银行", None),
    ("台灣積體電路製造股份有限公司", "积体电路制造", "台湾"),
    # multi-level regions: the most specific level is the region (the path keeps all)
    ("广东省深圳市华强电子有限公司", "华强电子", "深圳"),
    ("广东华强电子有限公司", "华强电子", "广东"),
    ("广州市天河区某某贸易有限公司", "某某贸易", "天河"),
    ("广州市白云区某某有限公司", "某某", "白云"),
    ("福州市鼓楼区某某有限公司", "某某", "鼓楼"),
    ("上海市浦东新区某某有限公司", "某某", "浦东"),
    ("浙江省杭州市阿里巴巴", "阿里巴巴", "杭州"),
    ("昆山市某某精密有限公司", "某某精密", "昆山"),  # a county-level city of 苏州
    ("重庆市梁平区某某有限公司", "某某", "梁平"),
    ("梁平县某某有限公司", "某某", "梁平"),  # renamed county still recognised
    ("恩施土家族苗族自治州某某有限公司", "某某", "恩施"),
    ("恩施州某某有限公司", "某某", "恩施"),
    ("内蒙古伊利实业集团股份有限公司", "伊利实业集团", "内蒙古"),
    # autonomous regions by their short names, the ethnic group written or not
    ("新疆金风科技股份有限公司", "金风科技", "新疆"),
    ("新疆维吾尔自治区金风科技股份有限公司", "金风科技", "新疆"),
    ("乌鲁木齐金风科技股份有限公司", "金风科技", "乌鲁木齐"),
    ("新疆天山水泥股份有限公司", "天山水泥", "新疆"),
    ("伊犁哈萨克自治州某某有限公司", "某某", "伊犁"),
    ("伊犁州某某有限公司", "某某", "伊犁"),
    ("博尔塔拉蒙古自治州某某有限公司", "某某", "博尔塔拉"),
    ("巴音郭楞蒙古自治州某某有限公司", "某某", "巴音郭楞"),
    ("克孜勒苏柯尔克孜自治州某某有限公司", "某某", "克孜勒苏"),
    ("察布查尔锡伯自治县某某有限公司", "某某", "察布查尔"),
    ("广西壮族自治区玉柴机器股份有限公司", "玉柴机器", "广西"),
    ("广西柳工机械股份有限公司", "柳工机械", "广西"),
    ("宁夏回族自治区某某有限公司", "某某", "宁夏"),
    ("西藏自治区某某有限公司", "某某", "西藏"),
    ("西藏珠峰资源股份有限公司", "珠峰资源", "西藏"),
    ("东乡县某某有限公司", "某某", "东乡"),  # Jiangxi: no 东乡族 there, nothing stripped
    ("香港某某贸易有限公司", "某某贸易", "香港"),
    ("某某贸易(香港)有限公司", "某某贸易", "香港"),
    ("深圳前海微众银行股份有限公司", "前海微众银行", "深圳"),
    ("上海高毅资产管理合伙企业（有限合伙）", "高毅资产管理合伙企业", "上海"),
    # an ambiguous district is stripped but pins no region (Beijing or Changchun)
    ("朝阳区某某科技有限公司", "某某科技", None),
    ("北京市朝阳区某某科技有限公司", "某某科技", "朝阳"),
    # false regional prefixes
    ("平安银行股份有限公司", "平安银行", None),  # 平安区 is a county: needs its suffix
    ("长安汽车股份有限公司", "长安汽车", None),
    ("重庆长安汽车股份有限公司", "长安汽车", "重庆"),
    ("光明乳业股份有限公司", "光明乳业", None),
    ("东方航空股份有限公司", "东方航空", None),
    ("三明治餐饮有限公司", "三明治餐饮", None),
    ("大理石材料有限公司", "大理石材料", None),
    ("北京市场调研有限公司", "市场调研", "北京"),  # 北京 + 市场, not 北京市 + 场
    ("北京市市场调研有限公司", "市场调研", "北京"),
    ("深圳市深圳湾科技有限公司", "深圳湾科技", "深圳"),
    ("北京有限公司", "北京", None),  # never an empty name
    ("有限公司", "有限公司", None),
    ("海南航空控股股份有限公司", "航空控股", "海南"),  # the province, not 青海海南州
    ("宁德时代新能源科技股份有限公司", "时代新能源科技", "宁德"),
    ("中国平安保险（集团）股份有限公司", "中国平安保险集团", None),
    # a region after the brand is part of the name (a provincial subsidiary)
    ("中国移动通信集团广东有限公司", "中国移动通信集团广东", None),
    # 集团 is part of the name, legal forms are not
    ("美的集团股份有限公司", "美的集团", None),
    ("恒大集团有限公司", "恒大集团", None),
    ("恒大集团公司", "恒大集团", None),
    ("株式会社资生堂", "资生堂", None),
    ("丰田汽车株式会社", "丰田汽车", None),
    # branches keep their place in the name
    ("招商银行股份有限公司", "招商银行", None),
    ("招商银行股份有限公司深圳分行", "招商银行深圳分行", None),
    ("招商银行深圳分行", "招商银行深圳分行", None),
    ("中国银行股份有限公司北京市分行", "中国银行北京分行", None),
    ("深圳市腾讯计算机系统有限公司东莞分公司", "腾讯计算机系统东莞分公司", "深圳"),
    # English
    ("Huawei Technologies Co., Ltd.", "huaweitechnologies", None),
    ("HUAWEI TECHNOLOGIES CO LTD", "huaweitechnologies", None),
    ("Lenovo (Beijing) Limited", "lenovo", "北京"),
    ("Lenovo Limited", "lenovo", None),
    ("Tencent Technology (Shenzhen) Company Limited", "tencenttechnology", "深圳"),
    ("Shenzhen Tencent Computer Systems Company Limited", "tencentcomputersystems", "深圳"),
    ("Beijing Xiaomi Technology Co., Ltd.", "xiaomitechnology", "北京"),
    ("Some Trading (Hong Kong) Limited", "sometrading", "香港"),
    ("Apple Inc.", "apple", None),
    ("Microsoft Corporation", "microsoft", None),
    ("The Coca-Cola Company", "cocacola", None),
    ("Siemens AG", "siemens", None),
    ("Robert Bosch GmbH", "robertbosch", None),
    ("Nestlé S.A.", "nestle", None),
    ("HSBC Holdings plc", "hsbcholdings", None),
    ("Xiamen Airlines Co., Ltd.", "xiamenairlines", None),  # a region needs 2 words after it
    ("China Merchants Bank Co., Ltd. Shenzhen Branch", "chinamerchantsbankshenzhenbranch", None),
]


@pytest.mark.parametrize(("raw", "core", "region"), NAMES)
def test_company_name(raw, core, region):
    key = normalize_company_name(raw)
    assert (key.core, key.region) == (core, region)
    assert key.full == (region or "") + core


def test_name_key_is_a_small_frozen_value():
    key = normalize_company_name("腾讯計算機系統（深圳）有限公司")
    assert key == NameKey("腾讯计算机系统", "深圳", ("广东", "深圳"))
    assert key.region_key == "广东/深圳"
    assert hash(key) == hash(NameKey("腾讯计算机系统", "深圳", ("广东", "深圳")))
    with pytest.raises(AttributeError):
        key.core = "x"


SAME = [
    ("深圳市腾讯计算机系统有限公司", "腾讯计算机系统（深圳）有限公司"),
    ("深圳市腾讯计算机系统有限公司", "腾讯计算机系统有限公司"),
    ("小米科技有限公司", "北京小米科技有限责任公司"),
    ("广东省深圳市华强电子有限公司", "深圳华强电子有限公司"),
    ("广东华强电子有限公司", "深圳市华强电子有限公司"),  # the province contains the city
    ("广州市天河区某某贸易有限公司", "广州某某贸易有限公司"),
    ("昆山市某某精密有限公司", "苏州某某精密有限公司"),
    ("朝阳区某某科技有限公司", "北京市朝阳区某某科技有限公司"),
    ("北京市场调研有限公司", "北京市市场调研有限公司"),
    ("招商银行股份有限公司深圳分行", "招商银行深圳分行"),
    ("中国银行北京市分行", "中国银行股份有限公司北京分行"),
    ("中国平安保险（集团）股份有限公司", "中國平安保險【集團】股份有限公司"),
    ("ＡＢＣ贸易有限公司", "ABC贸易有限公司"),
    ("Huawei Technologies Co., Ltd.", "HUAWEI TECHNOLOGIES CO LTD"),
    ("Lenovo (Beijing) Limited", "Lenovo Limited"),
    ("Nestlé S.A.", "NESTLE SA"),
    ("恒大集团有限公司", "恒大集团公司"),
    ("某某贸易(香港)有限公司", "香港某某贸易有限公司"),
    ("新疆金风科技股份有限公司", "金风科技股份有限公司"),
    ("乌鲁木齐金风科技股份有限公司", "金风科技股份有限公司"),
    ("新疆维吾尔自治区金风科技股份有限公司", "乌鲁木齐金风科技股份有限公司"),
    ("伊犁哈萨克自治州某某有限公司", "伊犁州某某有限公司"),
    ("广西壮族自治区玉柴机器股份有限公司", "广西玉柴机器股份有限公司"),
    ("内蒙古自治区伊利实业集团股份有限公司", "内蒙古伊利实业集团股份有限公司"),
    ("宁夏回族自治区某某有限公司", "宁夏某某有限公司"),
    # a district or county-level city is finer than its city, not another region
    ("广州市天河区恒通贸易有限公司", "广州恒通贸易有限公司"),
    ("广州市天河区恒通贸易有限公司", "恒通贸易有限公司"),
    ("广州市天河区恒通贸易有限公司", "广东恒通贸易有限公司"),
    ("天河区恒通贸易有限公司", "广东省广州市天河区恒通贸易有限公司"),
    ("上海市浦东新区恒通贸易有限公司", "上海恒通贸易有限公司"),
    ("重庆市梁平县恒通贸易有限公司", "重庆市梁平区恒通贸易有限公司"),
    ("腾讯科技（深圳市南山区）有限公司", "深圳市南山区腾讯科技有限公司"),
]

DIFFERENT = [
    ("招商银行股份有限公司", "招商银行股份有限公司深圳分行"),  # branch vs head office
    ("招商银行深圳分行", "招商银行广州分行"),
    ("深圳市腾讯计算机系统有限公司", "深圳市腾讯计算机系统有限公司东莞分公司"),
    ("上海恒通贸易有限公司", "北京恒通贸易有限公司"),  # same name, two regions
    ("深圳华强电子有限公司", "广州华强电子有限公司"),
    ("广东华强电子有限公司", "浙江华强电子有限公司"),
    ("昆山市某某精密有限公司", "广州某某精密有限公司"),
    ("Lenovo (Beijing) Limited", "Lenovo (Shanghai) Limited"),
    ("深圳市恒通贸易有限公司", "深圳市恒达贸易有限公司"),  # two names, same region and suffix
    ("华为技术有限公司", "华为终端有限公司"),
    ("美的集团股份有限公司", "美的有限公司"),  # a group is not its namesake
    ("四川航空股份有限公司", "海南航空股份有限公司"),
    ("阿里巴巴（中国）有限公司", "阿里巴巴有限公司"),
    ("新疆金风科技股份有限公司", "北京金风科技股份有限公司"),
    # two districts, two county-level cities of one city: two regions
    ("广州市天河区恒通贸易有限公司", "广州市番禺区恒通贸易有限公司"),
    ("北京市朝阳区恒通贸易有限公司", "北京市海淀区恒通贸易有限公司"),
    ("昆山市恒通贸易有限公司", "太仓市恒通贸易有限公司"),
    ("佛山市顺德区恒通电器有限公司", "佛山市南海区恒通电器有限公司"),
    ("深圳市南山区腾讯科技有限公司", "深圳市福田区腾讯科技有限公司"),
    ("广州市天河区恒通贸易有限公司", "深圳恒通贸易有限公司"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_same_company(a, b):
    assert names_match(a, b)
    assert names_match(b, a)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_company(a, b):
    assert not names_match(a, b)
    assert not names_match(b, a)


# Hangul fillers (letters to \w), zero-width and bidi marks, soft hyphen, BOM,
# variation selector, word joiner, a tag character: all render as nothing.
INVISIBLE = ["\u3164", "\u115f", "\u1160", "\uffa0", "\u200b", "\u200d", "\u2060",
             "\u00ad", "\ufeff", "\u202e", "\ufe0f", "\u180e", "\U000e0041"]


@pytest.mark.parametrize("char", INVISIBLE)
def test_invisible_characters_do_not_make_another_name(char):
    assert names_match(f"恒通{char}贸易有限公司", "恒通贸易有限公司")
    assert normalize_company_name(f"深{char}圳市腾讯计算机系统有限公司") == (
        normalize_company_name("深圳市腾讯计算机系统有限公司"))
    assert normalize_phone(f"138{char}0013 8000") == "+8613800138000"
    assert normalize_email(f"li.lei{char}@tencent.com") == "li.lei@tencent.com"
    assert normalize_credit_code(f"914403007084{char}61136T") == "91440300708461136T"


@pytest.mark.parametrize("raw", ["\u3164", "\u3164\u200b", "\ufeff"])
def test_a_name_of_invisible_characters_is_invalid(raw):
    with pytest.raises(InvalidField) as err:
        normalize_company_name(raw)
    assert err.value.field == "company_name"


@pytest.mark.parametrize("raw", ["", "   ", "（）", "---", None, 123, "公" * 201])
def test_invalid_company_name(raw):
    with pytest.raises(InvalidField) as err:
        normalize_company_name(raw)
    assert err.value.field == "company_name"


@pytest.mark.parametrize(
    ("a", "b", "ok"),
    [
        ((), ("广东", "深圳"), True),
        (None, "广东/深圳", True),
        (("广东",), ("广东", "深圳"), True),
        ("广东/深圳", "广东/深圳", True),
        (("广东", "深圳"), ("广东", "广州"), False),
        (("北京",), ("上海",), False),
        ("广东", "广西/南宁", False),
        ("广东/广州", ("广东", "广州", "天河"), True),
        ("广东/广州/天河", "广东/广州/番禺", False),
        ("江苏/苏州/昆山", ("江苏", "苏州", "太仓"), False),
        # paths stored before 新疆维吾尔 was shortened to 新疆 still meet today's
        ("新疆维吾尔/乌鲁木齐", ("新疆", "乌鲁木齐"), True),
        ("新疆维吾尔/伊犁哈萨克", "新疆/伊犁/察布查尔", True),
        ("新疆维吾尔/伊犁哈萨克", ("新疆", "昌吉"), False),
    ],
)
def test_regions_compatible(a, b, ok):
    assert regions_compatible(a, b) is ok
    assert regions_compatible(b, a) is ok


def test_a_district_is_the_third_level_of_the_region_path():
    key = normalize_company_name("广东省广州市天河区恒通贸易有限公司")
    assert key.region_path == ("广东", "广州", "天河") and key.region_key == "广东/广州/天河"
    assert normalize_company_name("昆山市恒通贸易有限公司").region_key == "江苏/苏州/昆山"
    assert normalize_company_name("北京市朝阳区恒通贸易有限公司").region_key == "北京/朝阳"
    # a county-level city directly under its province has no prefecture above it
    assert normalize_company_name("仙桃市恒通贸易有限公司").region_key == "湖北/仙桃"
    # an ambiguous district still pins nothing (北京 or 长春)
    assert normalize_company_name("朝阳区恒通贸易有限公司").region_key == ""


def test_same_company_name_on_keys():
    a = normalize_company_name("北京小米科技有限责任公司")
    b = normalize_company_name("小米科技有限公司")
    assert same_company_name(a, b)
    assert region_key(a.region_path) == "北京" and region_key(b.region_path) == ""


# --------------------------------------------------------------------------
# The name claim log
# --------------------------------------------------------------------------


def _claim(log, name, customer_id):
    """What the storage layer does, minus the database: decide, then append."""
    key = normalize_company_name(name)
    stream, _ = domain.split_name_key(domain.name_key(key))
    entries = [e for e in log if e["stream"] == stream]
    decision = name_claim_decision(entries, key.region_path)
    if decision.allowed:
        entry = name_claim_entry(stream, decision.next_seq, key.region_path, customer_id)
        assert entry["_id"] not in {e["_id"] for e in log}  # the unique index would refuse it
        log.append(entry)
    return decision


def _stream(name):
    return domain.split_name_key(domain.name_key(normalize_company_name(name)))[0]


def test_claim_keys_are_the_core_stream():
    assert _stream("深圳市腾讯计算机系统有限公司") == "name:腾讯计算机系统"
    assert _stream("腾讯计算机系统（深圳）有限公司") == "name:腾讯计算机系统"
    assert matched_on_for_key("name:腾讯计算机系统") == "company_name"


def test_region_rule_through_the_log():
    log: list[dict] = []
    assert _claim(log, "上海恒通贸易有限公司", "c1").allowed
    assert _claim(log, "北京恒通贸易有限公司", "c2").allowed  # another region: allowed
    refused = _claim(log, "恒通贸易有限公司", "c3")  # no region: conflicts with both
    assert not refused.allowed
    assert [e["customer_id"] for e in refused.conflicts] == ["c1", "c2"]
    refused = _claim(log, "上海市恒通贸易有限公司", "c4")
    assert [e["customer_id"] for e in refused.conflicts] == ["c1"]
    assert [e["seq"] for e in log] == [1, 2]


def test_regionless_claim_blocks_every_region():
    log: list[dict] = []
    assert _claim(log, "小米科技有限公司", "c1").allowed
    assert not _claim(log, "北京小米科技有限责任公司", "c2").allowed
    assert _claim(log, "Xiaomi Technology Co Ltd", "c3").allowed  # another core (English)


def test_province_and_city_claims_conflict():
    log: list[dict] = []
    assert _claim(log, "广东华强电子有限公司", "c1").allowed
    assert not _claim(log, "深圳市华强电子有限公司", "c2").allowed
    assert _claim(log, "浙江华强电子有限公司", "c3").allowed


def test_district_claims_through_the_log():
    log: list[dict] = []
    assert _claim(log, "广州市天河区恒通贸易有限公司", "c1").allowed
    assert _claim(log, "广州市番禺区恒通贸易有限公司", "c2").allowed  # another district
    assert not _claim(log, "天河区恒通贸易有限公司", "c3").allowed
    refused = _claim(log, "广州恒通贸易有限公司", "c4")  # the city contains both
    assert [e["customer_id"] for e in refused.conflicts] == ["c1", "c2"]
    assert not _claim(log, "恒通贸易有限公司", "c5").allowed
    assert _claim(log, "深圳恒通贸易有限公司", "c6").allowed
    assert [e["region"] for e in log] == ["广东/广州/天河", "广东/广州/番禺", "广东/深圳"]


def test_a_claim_stored_with_the_old_xinjiang_path_still_conflicts():
    log = [name_claim_entry("name:金风科技", 1, "新疆维吾尔/乌鲁木齐", "c1")]
    assert not _claim(log, "新疆金风科技股份有限公司", "c2").allowed
    assert not _claim(log, "乌鲁木齐金风科技股份有限公司", "c3").allowed
    assert _claim(log, "北京金风科技股份有限公司", "c4").allowed


def test_released_claim_frees_the_name():
    log: list[dict] = []
    _claim(log, "深圳市腾讯计算机系统有限公司", "c1")
    stream = log[0]["stream"]
    log.append(name_release_entry(stream, 2, 1, "c1"))
    decision = _claim(log, "腾讯计算机系统有限公司", "c2")
    assert decision.allowed and decision.next_seq == 3
    assert log[-1]["_id"] == f"{stream}#3" and log[-1]["region"] == ""


def test_a_customer_renaming_itself_does_not_conflict_with_itself():
    log: list[dict] = []
    _claim(log, "深圳市腾讯计算机系统有限公司", "c1")
    assert not name_claim_decision(log, "广东/深圳").allowed
    assert name_claim_decision(log, "广东/深圳", ignore_customer_id="c1").allowed


def test_a_gap_in_the_log_asks_for_a_reread():
    entries = [name_claim_entry("name:x", 2, "北京", "c2")]
    decision = name_claim_decision(entries, "上海")
    assert decision.retry and not decision.allowed


# --------------------------------------------------------------------------
# Near matches
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "similar"),
    [
        ("招商银行", "招商银行深圳分行", True),
        ("恒通贸易", "恒达贸易", True),
        ("huaweitechnologies", "huaweitechnology", True),
        ("美的集团", "美的", True),
        ("腾讯计算机系统", "阿里巴巴中国", False),
        ("腾讯计算机系统", "腾讯科技", False),
    ],
)
def test_similarity(a, b, similar):
    score = similarity(a, b)
    assert 0 <= score <= 100
    assert (score >= SIMILAR_THRESHOLD) is similar
    assert similarity(a, a) == 100


def test_search_grams():
    assert name_search_grams("腾讯计算机系统") == ["腾讯", "讯计", "计算", "算机", "机系", "系统"]
    assert name_search_grams("abc贸易") == ["贸易", "abc"]
    assert name_search_grams("huawei")[:2] == ["hua", "uaw"]
    assert len(name_search_grams("很" * 40 + "长" * 40)) <= 64
    assert set(name_search_grams("招商银行")) <= set(name_search_grams("招商银行深圳分行"))


# --------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------

PHONES = [
    ("13800138000", "+8613800138000"),
    ("138 0013 8000", "+8613800138000"),
    ("138-0013-8000", "+8613800138000"),
    ("+86 138 0013 8000", "+8613800138000"),
    ("0086 13800138000", "+8613800138000"),
    ("8613800138000", "+8613800138000"),
    ("１３８００１３８０００", "+8613800138000"),
    ("+86 138 0013 8000 x12", "+8613800138000"),
    ("0755-8888 8888", "+8675588888888"),
    ("(010)12345678", "+861012345678"),
    ("（010）12345678", "+861012345678"),
    ("020 8765 4321", "+862087654321"),
    ("021－6888 8888", "+862168888888"),
    ("0755—86013388", "+8675586013388"),
    ("+86 (0)755 8888 8888", "+8675588888888"),
    ("86-755-88888888", "+8675588888888"),
    ("0755-86013388转8001", "+8675586013388"),
    ("0755 8601 3388 分机 123", "+8675586013388"),
    ("0755-86013388 ext. 12", "+8675586013388"),
    ("0755-86013388-8001", "+8675586013388"),
    ("Tel: 0755-86013388", "+8675586013388"),
    ("电话：010-12345678", "+861012345678"),
    ("400-820-8820", "+864008208820"),
    ("+1 650-253-0000", "+16502530000"),
    ("+852 2123 4567", "+85221234567"),
    # a country code in brackets, as printed on business cards
    ("(+86)13800138000", "+8613800138000"),
    ("(+86) 138 0013 8000", "+8613800138000"),
    ("（+86）138-0013-8000", "+8613800138000"),
    ("(0086)13800138000", "+8613800138000"),
    ("(+86)0755-86013388", "+8675586013388"),
    ("(+86)(010)12345678", "+861012345678"),
    ("(+852) 2123 4567", "+85221234567"),
    # an extension in brackets
    ("0755-86013388 (分机8001)", "+8675586013388"),
    ("0755-86013388（分机 8001）", "+8675586013388"),
    ("0755-86013388(8001)", "+8675586013388"),
    ("0755-86013388 (ext. 8001)", "+8675586013388"),
    ("(+86)0755-86013388转8001", "+8675586013388"),
]


@pytest.mark.parametrize(("raw", "e164"), PHONES)
def test_phone(raw, e164):
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize(
    "raw",
    [
        "88888888",  # no area code
        "12345678901",  # not an allocated range
        "138-0013-8000-12",  # a trailing group after a mobile is no extension
        "13800138000(8001)",
        "(+86)88888888",  # the country code is no area code
        "(+86)",
        "0755-8888",
        "abc",
        "95555",
        "+86 138 0013 8000 +1",
        "1" * 25,
        12345678901,
    ],
)
def test_invalid_phone(raw):
    with pytest.raises(InvalidField) as err:
        normalize_phone(raw)
    assert err.value.field == "phone"


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_blank_phone_is_none(raw):
    assert normalize_phone(raw) is None


def test_phone_list():
    assert normalize_phones(["138 0013 8000", "", "+8613800138000", "0755-86013388"]) == [
        "+8613800138000",
        "+8675586013388",
    ]
    with pytest.raises(InvalidField) as err:
        normalize_phones(["13800138000", "8888"])
    assert err.value.field == "phones" and err.value.reason.startswith("#2")
    assert phone_key("+8613800138000") == "phone:+8613800138000"
    assert matched_on_for_key(phone_key("+8613800138000")) == "phone"


# --------------------------------------------------------------------------
# Unified social credit codes
# --------------------------------------------------------------------------

CREDIT_CODES = [
    ("91440300708461136T", "91440300708461136T"),  # 深圳市腾讯计算机系统有限公司
    ("91110108551385082Q", "91110108551385082Q"),  # 北京小米科技有限责任公司
    ("914403001922038216", "914403001922038216"),  # 华为技术有限公司
    ("91330100716105852F", "91330100716105852F"),
    ("9144030071526726XG", "9144030071526726XG"),
    ("91110000802100433B", "91110000802100433B"),
    ("91440300708461136t", "91440300708461136T"),  # lower case
    (" 9144 0300 7084 6113 6T ", "91440300708461136T"),  # spaces
    ("9144-0300-7084-6113-6T", "91440300708461136T"),
    ("９１４４０３００７０８４６１１３６Ｔ", "91440300708461136T"),  # full width
]


@pytest.mark.parametrize(("raw", "code"), CREDIT_CODES)
def test_credit_code(raw, code):
    assert normalize_credit_code(raw) == code
    assert credit_code_check_char(code[:17]) == code[17]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("91440300708461136A", "check"),  # wrong check character
        ("914403007084611360", "check"),
        ("91110108551385082P", "check"),
        ("91440300708461I36T", "invalid characters"),  # I is not in the alphabet
        ("91440300708461O36T", "invalid characters"),
        ("9144030070846113Z6", "invalid characters"),
        ("9144030070846113", "18"),  # too short
        ("440301103373927", "18"),  # an old 15-digit registration number
        ("91AB0300708461136T", "area code"),
        (123, "string"),
    ],
)
def test_invalid_credit_code(raw, why):
    with pytest.raises(InvalidField) as err:
        normalize_credit_code(raw)
    assert err.value.field == "credit_code" and why in err.value.reason


def test_credit_code_blank_and_key():
    assert normalize_credit_code("  ") is None
    assert normalize_credit_code(None) is None
    assert credit_code_key("91440300708461136T") == "credit:91440300708461136T"
    assert matched_on_for_key("credit:91440300708461136T") == "credit_code"


# --------------------------------------------------------------------------
# E-mail
# --------------------------------------------------------------------------

EMAILS = [
    ("Sales@Huawei.com", "sales@huawei.com"),
    ("  foo.bar@QQ.COM ", "foo.bar@qq.com"),
    ("ｓａｌｅｓ＠ｈｕａｗｅｉ．ｃｏｍ", "sales@huawei.com"),
    ("mailto:a@b.cn", "a@b.cn"),
    ("<x@mi.com>", "x@mi.com"),
    ("a@sina。com", "a@sina.com"),
    ("li.lei+crm@tencent.com", "li.lei+crm@tencent.com"),
    ("a@例子.中国", "a@xn--fsqu00a.xn--fiqs8s"),
]


@pytest.mark.parametrize(("raw", "address"), EMAILS)
def test_email(raw, address):
    assert normalize_email(raw) == address
    assert email_keys(raw) == ["email:" + address]


@pytest.mark.parametrize(
    "raw",
    ["abc", "a@b", "a@@b.com", "a b@c.com", "a@b.c", "@qq.com", "a@-b.com", "x" * 65 + "@a.com"],
)
def test_invalid_email(raw):
    with pytest.raises(InvalidField) as err:
        normalize_email(raw)
    assert err.value.field == "email"


@pytest.mark.parametrize(
    ("raw", "hint"),
    [
        ("zhang@qq.com", None),
        ("li@163.com", None),
        ("wang@gmail.com", None),
        ("a@foxmail.com", None),
        ("sales@huawei.com", "huawei.com"),
        ("bd@xiaomi.com", "xiaomi.com"),
    ],
)
def test_free_mail_domains_never_make_a_domain_hint(raw, hint):
    assert email_domain_hint(raw) == hint
    assert email_keys(raw) == ["email:" + raw]  # the full address is always the key


def test_email_lists_and_free_mail_table():
    assert normalize_emails(["A@qq.com", "a@QQ.com", "", "b@mi.com"]) == ["a@qq.com", "b@mi.com"]
    with pytest.raises(InvalidField) as err:
        normalize_emails(["a@qq.com", "nope"])
    assert err.value.field == "emails"
    assert email_keys("") == [] and email_domain_hint(None) is None
    assert {"qq.com", "163.com", "126.com", "gmail.com", "outlook.com"} <= FREE_MAIL_DOMAINS
    assert matched_on_for_key("email:a@mi.com") == "email"


# --------------------------------------------------------------------------
# Errors and purity
# --------------------------------------------------------------------------


def test_invalid_field_survives_pickling_and_rpc_args():
    err = InvalidField("phone", "is not a phone number")
    assert err.args == ("phone", "is not a phone number")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.field, copy.reason, str(copy)) == ("phone", "is not a phone number", str(err))
    assert isinstance(err, ValueError)


def test_import_pulls_in_no_heavy_or_io_modules():
    code = (
        "import sys; import services.customers.normalize as n; "
        "n.normalize_company_name('深圳市腾讯计算机系统有限公司'); "
        "print(sorted(m for m in ('pandas', 'cpca', 'numpy', 'pymongo', 'nameko', 'kombu', "
        "'eventlet', 'pkg_resources', 'jieba') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
