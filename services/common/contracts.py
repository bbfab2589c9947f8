"""The events services publish to each other: one typed model per event.

A payload is the envelope (`event_id`, `occurred_at`) plus the fields of its
model; the emitting service validates it against the model before it
publishes (`services.common.events.Dispatcher`), so a field that changes
name or type fails in the emitter's tests, not in a subscriber. `SUBSCRIPTIONS`
is the one map of who listens to what. `catalogue()` is the document for
outside subscribers (`docs/events.json`, `python -m services.common.contracts`),
generated from the models as the OpenAPI document is from the request schemas.

Pure: pydantic only (no nameko, no broker).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

Id = str
OptId = str | None


class Event(BaseModel):
    """The envelope every payload carries."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: ClassVar[str]
    schema_version: ClassVar[int] = 1

    event_id: str = Field(description="uuid4; handlers are idempotent on it")
    occurred_at: str = Field(description="UTC, ISO 8601")


class CustomerSnapshot(Event):
    """The customer fields that forecast and scheduler keep a copy of."""

    company_name: str | None = None
    owner_id: OptId = None
    team_id: OptId = None
    stage: int | None = None
    expected_value_fen: int | None = None
    status: str | None = None
    birthday: str | None = Field(None, description="MM-DD")
    birthday_label: str | None = None
    birthday_kind: str | None = Field(None, description="birthday or anniversary")


# ------------------------------------------------------------------ accounts

class UserCreated(Event):
    source = "accounts"
    user_id: Id
    role: str
    team_id: OptId = None


class UserChanged(Event):
    """A user's profile, role, team, activity or password changed. Gateways
    hear it on a broadcast queue of their own and drop the user's cached
    session state: a disabled user is out on his next request."""

    source = "accounts"
    user_id: Id
    team_id: OptId = None
    role: str
    active: bool
    changes: list[str] = Field(description="the fields that changed (empty for a password)")
    sessions_revoked: bool = Field(description="tokens issued before this are refused")
    changed_by: Id


# ----------------------------------------------------------------- customers

class CustomerCreated(CustomerSnapshot):
    source = "customers"
    customer_id: Id
    version: int = Field(description="the customer's version after the change")
    referred_by: OptId = None
    created_by: Id


class CustomerAmended(CustomerSnapshot):
    source = "customers"
    customer_id: Id
    version: int
    changes: dict[str, Any] = Field(description="field -> {before, after}")
    amended_by: Id


class OwnerChanged(Event):
    source = "customers"
    customer_id: Id
    version: int
    old_owner_id: OptId = None
    new_owner_id: OptId = None
    old_team_id: OptId = None
    new_team_id: OptId = None
    reason: str = Field(description="claim, dispute, reassign or handover")
    company_name: str | None = None
    stage: int | None = None
    expected_value_fen: int | None = None
    status: str | None = None
    birthday: str | None = None
    birthday_label: str | None = None
    birthday_kind: str | None = None
    changed_by: Id


class StageDefinition(BaseModel):
    stage: int = Field(description="integer percent")
    label: str
    probability: int = Field(description="integer percent")
    active: bool


class StagesChanged(Event):
    source = "customers"
    stages: list[StageDefinition]
    version: int = Field(description="the stage list's version")
    changed_by: Id


class StageChanged(Event):
    source = "customers"
    customer_id: Id
    version: int
    from_stage: int | None = Field(None, alias="from")
    to: int
    expected_value_fen: int | None = None
    owner_id: OptId = None
    team_id: OptId = None
    changed_by: Id
    note: str | None = None


class _Alarm(Event):
    """What both alarm events say about the alarm."""

    source = "customers"
    alarm_id: Id
    customer_id: Id
    company_name: str | None = None
    owner_id: Id
    team_id: OptId = None
    reason: str


class AlarmRaised(_Alarm):
    raised_by: Id


class AlarmResolved(_Alarm):
    decision: str = Field(description="continue, reassign or abandon")
    note: str | None = None
    verified: str = Field(description="real, fake or unchecked")
    resolved_by: Id
    new_owner_id: OptId = None


class AmendmentRequested(Event):
    """A rep asked his manager to correct a record (修改申请)."""

    source = "customers"
    amendment_id: Id
    customer_id: Id
    company_name: str | None = None
    owner_id: Id
    team_id: OptId = None
    fields: list[str] = Field(description="the fields it would change")
    reason: str
    requested_by: Id


class CustomerAbandoned(Event):
    source = "customers"
    customer_id: Id
    version: int
    owner_id: Id
    team_id: OptId = None
    company_name: str | None = None
    stage: int | None = None
    expected_value_fen: int | None = None
    status: str
    reason: str | None = Field(None, description="abandon (his own, with an alarm) or handover")


class ReadLimitReached(Event):
    """A user was refused a customer: he had opened the most distinct
    customers allowed in this clock hour (the bulk-read guard). Sent once per
    user and hour, at the first refusal; his team's managers are told."""

    source = "customers"
    user_id: Id
    user_name: str | None = None
    team_id: OptId = None
    hour: str = Field(description="the clock hour's start, UTC ISO 8601")
    limit: int = Field(description="distinct customers allowed per hour")
    opened: int = Field(description="distinct customers he opened this hour")
    refused_customer_id: Id
    address: str | None = Field(None, description="the client's address")
    refused_at: str


class DisputeFiled(Event):
    source = "customers"
    dispute_id: Id
    customer_id: Id
    company_name: str | None = None
    claimant_id: Id
    claimant_team_id: OptId = None
    owner_id: OptId = None
    team_id: OptId = None
    contact: dict[str, Any] = Field(description="the claimant's contact: name, decision_level")
    note: str | None = None


# ----------------------------------------------------------------- knowledge

class AnswerPosted(Event):
    source = "knowledge"
    question_id: Id
    answer_id: Id
    asker_id: Id
    author_id: Id
    title: str


class AnswerAccepted(Event):
    source = "knowledge"
    question_id: Id
    answer_id: Id
    author_id: Id
    accepted_by: Id


# ----------------------------------------------------------------- scheduler

class ReminderDue(Event):
    source = "scheduler"
    reminder_id: Id
    user_id: Id
    kind: str
    title: str
    content: str = ""
    due_at: str
    fired_at: str
    late: bool
    customer_id: OptId = None
    escalate_after_minutes: float | None = None
    escalation_of: OptId = None
    contact_name: str | None = None
    owner_version: int | None = Field(
        None, description="the customer's version at which user_id owned it: the reminder is "
                          "the owner's (it follows the customer); null: a personal one")


# -------------------------------------------------------------------- notify

class NotificationAcknowledged(Event):
    source = "notify"
    notification_id: Id
    user_id: Id
    reminder_id: OptId = None


EVENTS: dict[str, type[Event]] = {m.__name__: m for m in (
    UserCreated, UserChanged, CustomerCreated, CustomerAmended, StageChanged, StagesChanged, OwnerChanged,
    AlarmRaised, AlarmResolved, DisputeFiled, AmendmentRequested, CustomerAbandoned,
    ReadLimitReached, AnswerPosted, AnswerAccepted,
    ReminderDue, NotificationAcknowledged)}

# (source service, event type) -> the services that handle it.
SUBSCRIPTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("accounts", "UserCreated"): (),
    ("accounts", "UserChanged"): (),  # see BROADCASTS
    ("customers", "CustomerCreated"): ("scheduler", "forecast"),
    ("customers", "CustomerAmended"): ("scheduler", "forecast"),
    ("customers", "StageChanged"): ("forecast",),
    ("customers", "StagesChanged"): ("forecast",),
    ("customers", "OwnerChanged"): ("scheduler", "notify", "forecast"),
    ("customers", "AlarmRaised"): ("notify",),
    ("customers", "AlarmResolved"): ("knowledge", "notify"),
    ("customers", "DisputeFiled"): ("notify",),
    ("customers", "AmendmentRequested"): ("notify",),
    ("customers", "CustomerAbandoned"): ("scheduler", "forecast", "notify"),
    ("customers", "ReadLimitReached"): ("notify",),
    ("knowledge", "AnswerPosted"): ("notify",),
    ("knowledge", "AnswerAccepted"): ("notify",),
    ("scheduler", "ReminderDue"): ("notify",),
    ("notify", "NotificationAcknowledged"): ("scheduler",),
}

# Events every instance of a service hears, on a queue of its own that lives
# as long as the instance (nothing to keep while none runs): cache drops.
BROADCASTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("accounts", "UserChanged"): ("gateway",),
}


def handler_name(event_type: str) -> str:
    return "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", event_type).lower()


def queue_name(source: str, event_type: str, subscriber: str) -> str:
    # nameko's own naming for a SERVICE_POOL handler's queue
    return f"evt-{source}-{event_type}--{subscriber}.{handler_name(event_type)}"


def validate(event_type: str, payload: dict) -> None:
    """Raise pydantic's ValidationError when `payload` breaks its contract."""
    EVENTS[event_type].model_validate(payload)


def catalogue() -> dict:
    """Every event: source, exchange, routing key, version, subscribers and
    the JSON schema of its payload."""
    out = {}
    for (source, name), subscribers in SUBSCRIPTIONS.items():
        model = EVENTS[name]
        out[name] = {
            "source": source,
            "exchange": f"{source}.events",
            "routing_key": name,
            "version": model.schema_version,
            "subscribers": list(subscribers),
            "broadcast_to": list(BROADCASTS.get((source, name), ())),
            "queue_of_a_subscriber": queue_name(source, name, "<service>"),
            "payload": model.model_json_schema(by_alias=True),
        }
    return {"title": "CRM events", "delivery": "at least once; handlers are idempotent on event_id",
            "events": out}


if __name__ == "__main__":
    json.dump(catalogue(), sys.stdout, ensure_ascii=False, indent=2, sort_keys=True)
    sys.stdout.write("\n")
