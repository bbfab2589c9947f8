"""What a list shows of a customer's phones and e-mails: enough to recognise
a number, not enough to call it."""

import pytest

from services.customers import domain, masking
from services.customers import normalize as norm


@pytest.mark.parametrize(("raw", "shown"), [
    ("13812345678", "138****5678"),                 # a mobile: 3 and 4 digits kept
    ("+86 138 1234 5678", "138****5678"),
    ("0755-8888 7777", "755****7777"),              # a Shenzhen landline
    ("010-6060 6666", "106***6666"),                # Beijing: a 10-digit national number
    ("400-820-8820", "400***8820"),
    ("+1 415 555 0123", "+1 415***0123"),          # foreign: the country code stays
    ("+852 2123 4567", "+852 21****67"),           # 8 digits: 2 and 2 kept
])
def test_a_phone_keeps_its_first_three_and_last_four_digits(raw, shown):
    stored = norm.normalize_phone(raw)
    assert masking.mask_phone(stored) == shown


def test_a_masked_phone_never_holds_the_middle_digits():
    for mobile in ("13812345678", "13900001111", "18688889999"):
        masked = masking.mask_phone(norm.normalize_phone(mobile))
        assert mobile[3:7] not in masked and masked.count("*") == 4


@pytest.mark.parametrize(("email", "shown"), [
    ("zhangwei@qq.com", "zh***@qq.com"),
    ("li@tencent.com", "l***@tencent.com"),
    ("a@b.cn", "a***@b.cn"),
    ("sales.dept@深圳华强.cn", "sa***@深圳华强.cn"),
])
def test_an_e_mail_keeps_two_letters_and_its_domain(email, shown):
    assert masking.mask_email(email) == shown


def test_nothing_to_mask_stays_nothing():
    assert masking.mask_phone(None) is None and masking.mask_phone("") == ""
    assert masking.mask_email(None) is None
    assert masking.mask_phone("not a number at all") == "***"


def test_a_masked_customer_hides_every_phone_and_e_mail_and_keeps_the_rest():
    customer = {"id": "c1", "company_name": "深圳市华强电子有限公司", "address": "深圳市福田区华强北路",
                "phones": ["+8613812345678", "+8675588887777"],
                "emails": ["zhangwei@huaqiang.cn"],
                "contacts": [{"name": "陈志强", "title": "采购总监", "phone": "+8613900001111",
                              "decision_level": 4},
                             {"name": "刘芳", "title": None, "phone": None, "decision_level": 1}]}
    out = masking.masked(customer)
    assert out["phones"] == ["138****5678", "755****7777"]
    assert out["emails"] == ["zh***@huaqiang.cn"]
    assert out["contacts"][0] == {"name": "陈志强", "title": "采购总监", "phone": "139****1111",
                                  "decision_level": 4}
    assert out["contacts"][1]["phone"] is None
    assert out["masked"] is True
    assert out["company_name"] == customer["company_name"] and out["address"] == customer["address"]
    assert customer["phones"][0] == "+8613812345678"  # the record itself is untouched
    assert customer["contacts"][0]["phone"] == "+8613900001111"


def test_a_duplicate_match_shows_no_phone_at_all():
    held = {"phone:+8613812345678": [{"customer_id": "c1", "owner_id": "u1",
                                      "owner_name": "张伟", "company_name": "华强电子"}]}
    stored = {"c1": {"_id": "c1", "company_name": "深圳市华强电子有限公司", "owner_id": "u1",
                     "owner_name": "张伟", "status": "active",
                     "phones": ["+8613812345678"], "emails": ["zhangwei@huaqiang.cn"]}}
    [match] = domain.exact_matches(held, stored)
    assert match["matched_on"] == ["phone"]
    text = repr(match)
    assert "13812345678" not in text and "zhangwei" not in text
    assert set(match) == {"customer_id", "company_name", "owner", "status", "matched_on", "score"}
