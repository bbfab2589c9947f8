"""Scheduler request and response shapes: they validate and they document."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from services.common.escalation import MAX_ESCALATE_AFTER_MINUTES
from services.common.schemas import Id, LongText, Name, Strict, Text

Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Content = Annotated[str, StringConstraints(max_length=2000)]
EscalateMinutes = Annotated[
    float, Field(ge=0, le=MAX_ESCALATE_AFTER_MINUTES, allow_inf_nan=False)
]

# The ids the scheduler makes itself: a birthday reminder's names its
# customer, owner and time (domain.birthday_id), 65 characters with the
# 24-character ids of the other services, longer than an `Id` of the API.
ReminderId = Annotated[str, StringConstraints(min_length=1, max_length=128,
                                              pattern=r"^[A-Za-z0-9_-]+$")]


Kind = Literal["event", "revisit", "birthday", "anniversary"]
Status = Literal["pending", "fired", "acknowledged", "cancelled"]


class ReminderIn(Strict):
    """A rep's own reminder (kind `event`)."""

    title: Title
    content: Content = ""
    due_at: AwareDatetime
    # None (or left out) = the user's setting when it fires; 0 = no SMS.
    escalate_after_minutes: EscalateMinutes | None = None
    customer_id: Id | None = None

    @field_validator("title", "content")
    @classmethod
    def _text(cls, value):
        return _clean(value)


class ReminderPatch(Strict):
    """Any subset; `escalate_after_minutes: null` goes back to the user's setting."""

    title: Title | None = None
    content: Content | None = None
    # Not nullable (null is a 422): a reminder always has a time, and null
    # cannot mean "keep it" here the way it does for the title. No
    # field_validator on it: one makes strict mode refuse the JSON string.
    due_at: AwareDatetime = Field(None, description="left out: unchanged; null is refused")
    escalate_after_minutes: EscalateMinutes | None = None

    @field_validator("title", "content")
    @classmethod
    def _text(cls, value):
        return _clean(value)


class RevisitIn(Strict):
    """A revisit (回访) of a customer, with the contact person to call."""

    at: AwareDatetime
    contact_name: Name
    note: LongText | None = None
    escalate_after_minutes: EscalateMinutes | None = None


def _clean(value):
    # Text/LongText already refuse control characters on the other models;
    # here the same rule for the free-text title/content.
    if value is not None and (
        any(ord(c) < 32 and c not in "\t\n\r" for c in value) or "\x7f" in value
    ):
        raise ValueError("must not contain control characters")
    return value


_PLUS_LOST = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


class ReminderQuery(BaseModel):
    """`?from=&to=` bound `due_at`; a `+` left unencoded in an offset arrives
    as a space and is put back rather than refused."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: AwareDatetime | None = Field(None, alias="from")
    to: AwareDatetime | None = None
    status: Status | None = None
    kind: Kind | None = None
    page: int = Field(1, ge=1, le=100000)
    page_size: int = Field(20, ge=1, le=100)
    after: ReminderId | None = Field(None,
                                     description="the `next` of the page before (not with page)")

    @field_validator("after")
    @classmethod
    def _not_with_page(cls, value, info: ValidationInfo):
        if value is not None and info.data.get("page", 1) != 1:
            raise ValueError("give either page or after, not both")
        return value

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _restore_plus(cls, value):
        if isinstance(value, str):
            return _PLUS_LOST.sub(r"\1+\2", value.strip())
        return value


class Reminder(BaseModel):
    id: str
    title: str
    content: str
    due_at: str
    kind: Kind
    customer_id: str | None
    escalate_after_minutes: float | None = Field(
        description="null: the user's setting (escalate_after_minutes in /api/settings/me)")
    status: Status
    cancel_reason: str | None = Field(
        None, description="why the system cancelled it: customer_pooled (its customer went "
                          "to the public pool)")
    contact_name: str | None = None
    note: str | None = None
    fired_at: str | None = None
    late: bool | None = None
    created_at: str


class ReminderList(BaseModel):
    items: list[Reminder]
    total: int
    next: str | None = Field(None, description="?after= of the next page; null on the last")


# Validated by the scheduler when notify asks for an escalation check.
class EscalationIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    notification_id: Id
    user_id: Id
    reminder_id: ReminderId | None = None
    due_at: AwareDatetime
    title: Text = ""
    customer_id: Id | None = None
