"""Notify request and response shapes: they validate and they document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from services.common.schemas import CursorPage


class NotificationQuery(CursorPage):
    unread: bool | None = None


class SmsAttempt(BaseModel):
    at: str
    ok: bool
    provider: str
    status_code: int | None = None
    error: str | None = None


class Sms(BaseModel):
    status: str = Field(description=(
        "scheduled (waits for the escalation time), not_needed (acknowledged in time), "
        "sending, retrying, sent, failed (every attempt failed), skipped (no phone), "
        "cancelled (acknowledged while retrying)"))
    due_at: str | None = None
    to: str | None = None
    attempts: list[SmsAttempt] = []
    error: str | None = None


class Notification(BaseModel):
    id: str
    kind: str = Field(description=(
        "event, revisit, birthday, anniversary (reminders); alarm_raised, alarm_resolved, "
        "dispute_filed, amendment_requested, read_limit (a user hit the hourly limit of "
        "customers opened), answer_posted, answer_accepted, owner_changed"))
    title: str
    body: str
    created_at: str
    read: bool
    acknowledged: bool
    acknowledged_at: str | None = None
    ref: dict[str, Any]
    sms: Sms | None = None


class NotificationList(BaseModel):
    items: list[Notification]
    total: int
    next: str | None = Field(None, description="?after= of the next page; null on the last")
