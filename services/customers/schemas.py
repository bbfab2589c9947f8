"""Customers request and response shapes: they validate and they document.

Types, sizes and control characters are checked here, and a birthday must be
a day of the year; what a key means (a phone that parses, a credit code whose
check character matches) is checked by the normalizers in the service, which
answer 422 naming the field too.
"""

from __future__ import annotations

import calendar
import unicodedata
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from services.common.schemas import (
    CursorPage,
    Id,
    LongText,
    Name,
    Strict,
    Text,
    _no_control_chars,
)


def _full_width_to_ascii(value):
    # A Chinese input method types ０２－２９; NFKC makes it 02-29. Other
    # scripts' digits (١٢) stay as they are and fail the ASCII pattern: the
    # scheduler reads the stored value with an ASCII-only parser.
    return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value


def _day_of_year(value: str) -> str:
    month, day = int(value[:2]), int(value[3:])
    # 2000 is a leap year: 02-29 exists (a birthday on it is celebrated).
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(2000, month)[1]:
        raise ValueError("is not a day of the year (MM-DD)")
    return value


# Raw strings are stored as typed (the normalized keys live beside them), so
# they are held to the rule of every other text field: a NUL in a company name
# would be stored and shown.
_NoControl = AfterValidator(_no_control_chars)

Status = Literal["active", "pool"]
BirthdayKind = Literal["birthday", "anniversary"]
CompanyName = Annotated[str, StringConstraints(min_length=1, max_length=200), _NoControl]
RawPhone = Annotated[str, StringConstraints(max_length=40), _NoControl]
RawEmail = Annotated[str, StringConstraints(max_length=254), _NoControl]
RawCreditCode = Annotated[str, StringConstraints(max_length=40), _NoControl]
# Each annotation wraps the ones before it, so the BeforeValidator listed last
# runs first: NFKC, then the ASCII pattern, then the calendar.
MonthDay = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{2}-[0-9]{2}$"),
    AfterValidator(_day_of_year),
    BeforeValidator(_full_width_to_ascii),
]
Short = Annotated[str, StringConstraints(max_length=40), _NoControl]

MAX_PHONES = 10
MAX_EMAILS = 10
MAX_CONTACTS = 50


class ContactIn(Strict):
    name: Name
    title: Text | None = None
    phone: RawPhone | None = None
    decision_level: int = Field(1, ge=1, le=5)


class CustomerIn(Strict):
    """POST /api/customers: `company_name` is required, everything else optional.
    `expected_value` is yuan with at most 2 decimals; `birthday` is "MM-DD"."""

    company_name: CompanyName
    credit_code: RawCreditCode | None = None
    phones: list[RawPhone] = Field(default_factory=list, max_length=MAX_PHONES)
    emails: list[RawEmail] = Field(default_factory=list, max_length=MAX_EMAILS)
    address: Text | None = None
    industry: Short | None = None
    contacts: list[ContactIn] = Field(default_factory=list, max_length=MAX_CONTACTS)
    birthday: MonthDay | None = None
    birthday_label: Short | None = None
    birthday_kind: BirthdayKind | None = None
    referred_by: Id | None = None
    expected_value: int | float | None = Field(None, allow_inf_nan=False)
    stage: int = Field(0, ge=0, le=100)


class CheckIn(Strict):
    """POST /api/customers/check: any subset of the duplicate-guard keys."""

    company_name: CompanyName | None = None
    phones: list[RawPhone] = Field(default_factory=list, max_length=MAX_PHONES)
    credit_code: RawCreditCode | None = None
    emails: list[RawEmail] = Field(default_factory=list, max_length=MAX_EMAILS)

    @model_validator(mode="after")
    def _something_to_check(self):
        if not (self.company_name or self.phones or self.credit_code or self.emails):
            raise ValueError("give at least one of company_name, phones, credit_code, emails")
        return self


class FollowupIn(Strict):
    content: Annotated[LongText, StringConstraints(min_length=1, max_length=5000)]
    contact_name: Name | None = None
    channel: Short | None = None


class SharedPhoneIn(Strict):
    phone: RawPhone
    note: Text | None = None


class CustomerQuery(CursorPage):
    """GET /api/customers query string (strings from the URL, so not strict)."""

    model_config = ConfigDict(extra="forbid")
    q: Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)] | None = None
    stage: int | None = Field(None, ge=0, le=100)
    owner_id: Id | None = None
    status: Status | None = None


# ---------------------------------------------------------------- responses


class Owner(BaseModel):
    id: str
    name: str


class Contact(BaseModel):
    name: str
    title: str | None
    phone: str | None
    decision_level: int


class Customer(BaseModel):
    id: str
    company_name: str
    credit_code: str | None
    phones: list[str]
    emails: list[str]
    address: str | None
    industry: str | None
    contacts: list[Contact]
    birthday: str | None
    birthday_label: str | None
    birthday_kind: BirthdayKind
    referred_by: str | None
    expected_value: float
    stage: int
    status: Status
    owner: Owner | None
    team_id: str | None
    version: int
    created_at: str


class CustomerList(BaseModel):
    items: list[Customer]
    total: int
    next: str | None = Field(None, description="?after= of the next page; null on the last")


class Match(BaseModel):
    """Another customer a new entry collides with: no more than id, name and
    owner (`status` says "pool" when nobody owns it)."""

    customer_id: str
    company_name: str
    owner: Owner | None
    status: Status
    matched_on: list[Literal["company_name", "phone", "credit_code", "email"]]
    score: float


class CheckOut(BaseModel):
    available: bool
    matches: list[Match]
    similar: list[Match]


class Followup(BaseModel):
    id: str
    customer_id: str
    content: str
    contact_name: str | None
    channel: str | None
    author: Owner
    created_at: str


class FollowupList(BaseModel):
    items: list[Followup]
    total: int
    next: str | None = Field(None, description="?after= of the next page; null on the last")


class SharedPhone(BaseModel):
    phone: str
    note: str | None
    marked_by: Owner
    marked_at: str
    released_claims: int = 0


class SharedPhoneList(BaseModel):
    items: list[SharedPhone]
    total: int
