"""Customers request shapes: what a client hears as 422 before any normalizer runs.

Parsed the way the service parses an RPC body (services.common.validation.parse),
so the field named in the error is the one the gateway answers with.
"""

from __future__ import annotations

import pytest

from services.common.errors import Invalid
from services.common.validation import parse
from services.customers import schemas
from services.customers.schemas import CustomerChanges

COMPANY = "深圳市腾讯计算机系统有限公司"


def invalid_fields(model, body) -> dict[str, str]:
    with pytest.raises(Invalid) as err:
        parse(model, body)
    return err.value.details["fields"]


# ------------------------------------------------------------------ birthday


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("02-29", "02-29"),  # exists in leap years
        ("12-31", "12-31"),
        (" 06-18 ", "06-18"),
        ("０２－２９", "02-29"),  # typed with a Chinese input method (full width)
        ("０６-１８", "06-18"),
    ],
)
def test_birthday_is_kept_as_ascii_month_day(raw, stored):
    body = {"company_name": COMPANY, "birthday": raw, "birthday_label": "成立纪念日"}
    assert parse(schemas.CustomerIn, body).birthday == stored
    assert parse(CustomerChanges, {"birthday": raw}).birthday == stored


@pytest.mark.parametrize(
    "raw",
    [
        "١٢-٠١",  # Arabic-Indic digits: \d took them, the scheduler cannot read them
        "۰۲-۲۹",  # Persian digits
        "०२-२९",  # Devanagari digits
        "02-30",  # no such day
        "02-31",
        "04-31",
        "13-01",  # no such month
        "00-10",
        "06-00",
        "2-29",
        "02/29",
        "0229",
        "02-29\u0000",
    ],
)
def test_a_birthday_that_is_no_day_of_the_year_is_a_422(raw):
    fields = invalid_fields(schemas.CustomerIn, {"company_name": COMPANY, "birthday": raw})
    assert list(fields) == ["birthday"]
    assert list(invalid_fields(CustomerChanges, {"birthday": raw})) == ["birthday"]


def test_a_day_that_does_not_exist_is_named_as_such():
    fields = invalid_fields(schemas.CustomerIn, {"company_name": COMPANY, "birthday": "02-30"})
    assert fields == {"birthday": "is not a day of the year (MM-DD)"}


def test_no_birthday_is_fine():
    assert parse(schemas.CustomerIn, {"company_name": COMPANY}).birthday is None
    assert parse(schemas.CustomerIn, {"company_name": COMPANY, "birthday": None}).birthday is None


# ---------------------------------------------------------- control characters


@pytest.mark.parametrize("char", ["\u0000", "\u0007", "\u001b", "\u007f"])
@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (schemas.CustomerIn, {"company_name": "恒通{c}贸易有限公司"}, "company_name"),
        (schemas.CustomerIn, {"company_name": COMPANY, "industry": "互联网{c}"}, "industry"),
        (
            schemas.CustomerIn,
            {"company_name": COMPANY, "birthday_label": "成立{c}纪念日"},
            "birthday_label",
        ),
        (schemas.CustomerIn, {"company_name": COMPANY, "phones": ["138{c}00138000"]}, "phones.0"),
        (
            schemas.CustomerIn,
            {"company_name": COMPANY, "emails": ["li{c}@tencent.com"]},
            "emails.0",
        ),
        (
            schemas.CustomerIn,
            {"company_name": COMPANY, "credit_code": "91440300708461136T{c}"},
            "credit_code",
        ),
        (
            schemas.CustomerIn,
            {"company_name": COMPANY, "contacts": [{"name": "马化腾", "phone": "138{c}00138000"}]},
            "contacts.0.phone",
        ),
        (schemas.CheckIn, {"company_name": "abc{c}公司"}, "company_name"),
        (schemas.CheckIn, {"phones": ["0755-86013388{c}"]}, "phones.0"),
        (schemas.FollowupIn, {"content": "电话沟通", "channel": "电话{c}"}, "channel"),
        (schemas.SharedPhoneIn, {"phone": "0755-86013388{c}"}, "phone"),
        (CustomerChanges, {"company_name": "abc{c}公司"}, "company_name"),
    ],
)
def test_control_characters_are_a_422_naming_the_field(model, body, field, char):
    def fill(value):
        if isinstance(value, str):
            return value.replace("{c}", char)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    fields = invalid_fields(model, fill(body))
    assert fields == {field: "must not contain control characters"}


def test_tabs_and_newlines_are_not_control_characters_here():
    body = {"company_name": "恒通贸易有限公司\n", "industry": "批发\t零售"}
    data = parse(schemas.CustomerIn, body)
    assert (data.company_name, data.industry) == ("恒通贸易有限公司", "批发\t零售")
