"""Schema pieces every service's schemas reuse."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import available_timezones

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from services.common.timezones import DEFAULT_TIMEZONE  # noqa: F401 (re-used by schemas)


class Strict(BaseModel):
    """Request bodies: unknown fields are refused, strings are stripped.

    `strict=True` keeps "1" from silently becoming 1: a client sending the
    wrong JSON type hears about it.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


def _no_control_chars(value: str) -> str:
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value) or "\x7f" in value:
        raise ValueError("must not contain control characters")
    return value


def _timezone(value: str) -> str:
    # Membership, not ZoneInfo(value): "America" or "../etc" make ZoneInfo
    # raise OS errors instead of saying the zone is unknown.
    if value not in _ZONES:
        raise ValueError("unknown time zone (use an IANA name such as Asia/Shanghai)")
    return value


def normalize_phone(value: str) -> str:
    """Any common way of writing a Chinese (or international) number -> E.164."""
    try:
        number = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_ZONES = available_timezones()

Text = Annotated[str, StringConstraints(max_length=200), AfterValidator(_no_control_chars)]
LongText = Annotated[str, StringConstraints(max_length=20000), AfterValidator(_no_control_chars)]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(_no_control_chars)
]
Timezone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_timezone)]
Phone = Annotated[str, StringConstraints(max_length=40), AfterValidator(normalize_phone)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class Page(BaseModel):
    model_config = ConfigDict(extra="ignore")
    page: int = Field(1, ge=1, le=100000)
    page_size: int = Field(20, ge=1, le=100)

    @property
    def skip(self) -> int:
        return (self.page - 1) * self.page_size


class CursorPage(Page):
    """`?page=` or `?after=`: `after` is the `next` of the page before, and
    reads on from there through the index the list is sorted by, so page 500
    costs what page 1 costs. A cursor picks up where the previous page ended,
    so `page` is not given with it."""

    after: Id | None = None

    @field_validator("after")
    @classmethod
    def _not_with_page(cls, value, info: ValidationInfo):
        if value is not None and info.data.get("page", 1) != 1:
            raise ValueError("give either page or after, not both")
        return value
