"""Request and response shapes of the customer lifecycle endpoints: they
validate (gateway and RPC alike) and feed the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints

from services.common.schemas import CursorPage, Id, Name, Strict, Text
from services.customers import schemas as core

Reason = Annotated[Text, StringConstraints(min_length=1)]
Note = Text
DecisionLevel = Annotated[int, Field(ge=1, le=5, description="1 (no say) … 5 (decides)")]


class CustomerChanges(Strict):
    """The fields to change, as in POST /api/customers (any subset; null
    clears an optional field). Stage, owner and status have their own
    endpoints."""

    company_name: core.CompanyName | None = None
    credit_code: core.RawCreditCode | None = None
    phones: list[core.RawPhone] | None = Field(None, max_length=core.MAX_PHONES)
    emails: list[core.RawEmail] | None = Field(None, max_length=core.MAX_EMAILS)
    address: Text | None = None
    industry: core.Short | None = None
    contacts: list[core.ContactIn] | None = Field(None, max_length=core.MAX_CONTACTS)
    birthday: core.MonthDay | None = None
    birthday_label: core.Short | None = None
    birthday_kind: core.BirthdayKind | None = None
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


class ContactIn(Strict):
    name: Name
    title: Text | None = None
    decision_level: DecisionLevel


class DisputeIn(Strict):
    contact: ContactIn
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


class Contact(BaseModel):
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
    contact: Contact
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
