"""Customers request and response shapes: they validate and they document.

Types, sizes and control characters are checked here, and a birthday must be
a day of the year; what a key means (a phone that parses, a credit code whose
check character matches) is checked by the normalizers in the service, which
answer 422 naming the field too.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.common.schemas import (
    DEFAULT_TIMEZONE,
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


class StageStep(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    at: str | None
    from_: int | None = Field(alias="from")
    to: int | None


class Abandoned(BaseModel):
    """Why a pool customer was given up (公海)."""

    at: str | None = Field(description="when it went to the pool")
    reason: str | None = Field(description="the difficulty alarm's reason, as the rep gave it")
    note: str | None = Field(description="the manager's note when he resolved it with abandon")
    how: str = Field("abandon", description="abandon: by its owner after an alarm; handover: "
                                            "sent to the pool when its owner left")


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
    masked: bool = Field(False, description=(
        "phones and e-mails (the contacts' too) are masked (138****5678): every list, and "
        "a pool customer opened by a rep until he claims it"))
    stage_history: list[StageStep] | None = Field(None, description=(
        "a pool customer opened: its stages from creation, oldest first"))
    abandoned: Abandoned | None = Field(None, description=(
        "a pool customer opened: why it was given up"))


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


# ------------------------------------------- records: amendments, alarms, disputes, stages

Reason = Annotated[Text, StringConstraints(min_length=1)]
Note = Text
DecisionLevel = Annotated[int, Field(ge=1, le=5, description="1 (no say) … 5 (decides)")]


class CustomerChanges(Strict):
    """The fields to change, as in POST /api/customers (any subset; null
    clears an optional field). Stage, owner and status have their own
    endpoints."""

    company_name: CompanyName | None = None
    credit_code: RawCreditCode | None = None
    phones: list[RawPhone] | None = Field(None, max_length=MAX_PHONES)
    emails: list[RawEmail] | None = Field(None, max_length=MAX_EMAILS)
    address: Text | None = None
    industry: Short | None = None
    contacts: list[DisputeContactIn] | None = Field(None, max_length=MAX_CONTACTS)
    birthday: MonthDay | None = None
    birthday_label: Short | None = None
    birthday_kind: BirthdayKind | None = None
    referred_by: Id | None = None
    expected_value: int | float | None = Field(None, allow_inf_nan=False)


class PatchIn(Strict):
    changes: CustomerChanges
    reason: Reason


class AmendmentIn(Strict):
    changes: CustomerChanges
    reason: Reason


class StageDef(Strict):
    stage: int = Field(ge=0, le=100, description="integer percent")
    label: Annotated[Name, StringConstraints(max_length=20)]
    probability: int | None = Field(None, ge=0, le=100,
                                    description="integer percent; defaults to the stage")
    active: bool | None = Field(None, description="counted by the forecast; default 25–90")


class StagesIn(RootModel[list[StageDef]]):
    pass


class Stage(BaseModel):
    stage: int
    label: str
    probability: int = Field(description="integer percent")
    active: bool


class StageIn(Strict):
    stage: int = Field(description="one of the stage list's stages")
    note: Note | None = None


class AlarmIn(Strict):
    reason: Reason


class AlarmResolveIn(Strict):
    decision: Literal["continue", "reassign", "abandon"]
    note: Reason
    verified: Literal["real", "fake", "unchecked"]
    new_owner_id: Id | None = None


class DisputeContactIn(Strict):
    name: Name
    title: Text | None = None
    decision_level: DecisionLevel


class DisputeIn(Strict):
    contact: DisputeContactIn
    note: Text | None = None


class DisputeResolveIn(Strict):
    winner_id: Id
    note: Reason
    claimant_level: DecisionLevel | None = Field(
        None, description="the claimant's contact's level as the manager verified it")
    owner_level: int | None = Field(
        None, ge=0, le=5,
        description="the owner's contact's level as verified (default: the record's best)")


class DecisionIn(Strict):
    note: Text | None = None


class ListQuery(CursorPage):
    status: Annotated[str, StringConstraints(max_length=20)] | None = None
    customer_id: Id | None = None


class ReferralQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    depth: int = Field(10, ge=0, le=50, description="levels of descendants")
    limit: int = Field(1000, ge=0, le=10000, description="descendants at most")


class AuditQuery(CursorPage):
    """`after`: the `seq` of the last entry of the page before."""

    after: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}$")] | None = None


# ------------------------------------------------------------------ answers

class UserRef(BaseModel):
    id: str
    name: str | None = None


class Amendment(BaseModel):
    id: str
    customer_id: str
    company_name: str | None
    status: Literal["pending", "applying", "approved", "rejected"]
    changes: dict = Field(description="{field: value} as asked (money in yuan)")
    reason: str
    requested_by: UserRef
    requested_at: str
    decided_by: UserRef | None = None
    decided_at: str | None = None
    note: str | None = None
    rejected_because: str | None = None


class Alarm(BaseModel):
    id: str
    customer_id: str
    company_name: str | None
    owner_id: str | None
    team_id: str | None
    reason: str
    # void: the customer changed hands before it was resolved
    status: Literal["open", "resolved", "void"]
    raised_at: str
    decision: str | None = None
    verified: str | None = None
    note: str | None = None
    new_owner_id: str | None = None
    resolved_by: UserRef | None = None
    resolved_at: str | None = None


class DisputeContact(BaseModel):
    name: str
    title: str | None = None
    decision_level: int


class Dispute(BaseModel):
    id: str
    customer_id: str
    company_name: str | None
    claimant: UserRef
    claimant_team_id: str | None
    owner_id: str | None
    team_id: str | None
    contact: DisputeContact
    note: str | None
    # void: the customer changed hands before it was settled
    status: Literal["open", "resolved", "void"]
    filed_at: str
    winner_id: str | None = None
    resolved_by: UserRef | None = None
    resolved_at: str | None = None
    resolution_note: str | None = None


class AuditItem(BaseModel):
    seq: int
    at: str
    actor: dict | None
    action: str
    before: object | None
    after: object | None


class AuditOut(BaseModel):
    items: list[AuditItem]
    total: int
    intact: bool = Field(description="false when the hash chain over the entries is broken "
                                     "or its last entries are missing")
    next: str | None = Field(None, description="?after= of the next page; null on the last")


class IntegrityRow(BaseModel):
    rep: UserRef
    customers: int = Field(description="active customers he owns now")
    created: int = Field(description="customers he entered")
    alarms: int
    abandoned: int
    verified_fake: int


class IntegrityReport(BaseModel):
    items: list[IntegrityRow]
    total: int


class NodeCustomer(BaseModel):
    id: str
    company_name: str | None
    owner: UserRef | None
    stage: int | None = Field(description="null for a customer the caller may not open")
    status: str | None
    visible: bool = Field(description="the caller may open this customer")
    referred_count: int = Field(description="customers this one referred")


class Tree(BaseModel):
    customer: NodeCustomer
    children: list[Tree]


class Referrals(BaseModel):
    ancestors: list[NodeCustomer] = Field(description="from the root referrer down")
    tree: Tree
    truncated: bool = Field(description="some descendants were left out (depth or limit)")


class AmendmentList(BaseModel):
    items: list[Amendment]
    total: int
    next: str | None = Field(None, description="?after= of the next page; null on the last")


class AlarmList(BaseModel):
    items: list[Alarm]
    total: int
    next: str | None = Field(None, description="?after= of the next page; null on the last")


class DisputeList(BaseModel):
    items: list[Dispute]
    total: int
    next: str | None = Field(None, description="?after= of the next page; null on the last")


class HandoverIn(Strict):
    """`to`: one user, several (the customers are spread round robin), or
    "pool"; `customer_ids`: only these of his (all when left out);
    `dry_run`: answer what would move, move nothing."""

    to: Literal["pool"] | Id | Annotated[list[Id], Field(min_length=1, max_length=100)]
    customer_ids: Annotated[list[Id], Field(min_length=1, max_length=100_000)] | None = None
    dry_run: bool = False


class HandoverShare(BaseModel):
    to: dict | None = Field(description="{id, name}; null for the pool")
    pool: bool
    count: int


class Handover(BaseModel):
    id: str | None = Field(description="null for a dry run")
    status: Literal["preview", "running", "done"]
    from_user: dict = Field(alias="from", description="{id, name}")
    total: int
    moved: int
    skipped: int = Field(description="no longer his when their turn came (claimed, moved)")
    not_his: list[str] = Field(description="requested customers he does not own")
    shares: list[HandoverShare]
    open_alarms: int | None = None
    pending_amendments: int | None = None
    started_by: dict | None = None
    created_at: str | None = None
    finished_at: str | None = None

    model_config = {"populate_by_name": True}


# ------------------------------------------------------- reads, the export

HourlyLimit = Annotated[int, Field(ge=1, le=100_000)]


class ReadSettings(Strict):
    """GET/PUT /api/settings/reads: how many DISTINCT customers one user may
    open (GET /api/customers/{id}) per clock hour; an admin has no limit."""

    rep_hourly_limit: HourlyLimit = Field(description="a rep's (default 60)")
    manager_hourly_limit: HourlyLimit = Field(description="a manager's (default 300)")


_PLUS_LOST = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _when(value, next_day: bool):
    """An ISO time with offset (a `+` left unencoded arrives as a space and
    is put back), or a date: that day in Asia/Shanghai (`to`: to its end)."""
    if not isinstance(value, str):
        return value
    value = value.strip()
    if _DATE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return value
        start = datetime.combine(day, time(), tzinfo=ZoneInfo(DEFAULT_TIMEZONE))
        return start + timedelta(days=1) if next_day else start
    return _PLUS_LOST.sub(r"\1+\2", value)


class ReadReportQuery(CursorPage):
    """GET /api/reports/reads: `from` (inclusive) and `to` (exclusive) are
    times with an offset, or dates (whole days in Asia/Shanghai)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    user_id: Id | None = None
    from_: AwareDatetime | None = Field(None, alias="from")
    to: AwareDatetime | None = None

    @field_validator("from_", mode="before")
    @classmethod
    def _from(cls, value):
        return _when(value, next_day=False)

    @field_validator("to", mode="before")
    @classmethod
    def _to(cls, value):
        return _when(value, next_day=True)


class ReadEntry(BaseModel):
    id: str
    at: str
    user: UserRef
    team_id: str | None = Field(description="the user's team when he read")
    customer_ids: list[str]
    kind: Literal["detail", "list", "export"]
    address: str | None = Field(description="the client's address")
    export_id: str | None = None
    refused: Literal["not_found", "read_limit"] | None = Field(None, description=(
        "an open that was refused: not_found (not his to see, or no such customer), "
        "read_limit (past the hourly limit); nothing was shown"))


class ReadAlert(BaseModel):
    """An hour in which a user hit the limit (his managers were told once)."""

    at: str = Field(description="the hour's first refusal")
    user: UserRef
    team_id: str | None
    hour: str = Field(description="the clock hour's start")
    limit: int | None
    opened: int = Field(description="distinct customers he opened in that hour")
    address: str | None


class ReadReport(BaseModel):
    items: list[ReadEntry] = Field(description="read-log entries, newest first")
    total: int
    next: str | None = Field(None, description="?after= of the next page; null on the last")
    alerts: list[ReadAlert] = Field(description=(
        "the bulk-read alerts of the same users and window, newest first (at most 100)"))


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["xlsx", "csv"] = "xlsx"
