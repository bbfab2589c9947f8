"""Accounts request and response shapes: they validate and they document."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from services.accounts import passwords
from services.common.escalation import DEFAULT_ESCALATE_AFTER_MINUTES
from services.common.reminders import DEFAULT_BIRTHDAY_LEAD_DAYS
from services.common.schemas import DEFAULT_TIMEZONE, Id, Name, Phone, Strict, Timezone

Role = Literal["rep", "manager", "admin"]
Username = Annotated[
    str,
    StringConstraints(min_length=2, max_length=40, pattern=r"^[\w.@-]+$", to_lower=True),
]
# The length bounds of the password policy (passwords.py, which also refuses
# easy passwords), here too so that the API document shows them.
Password = Annotated[str, StringConstraints(min_length=passwords.MIN_LENGTH,
                                            max_length=passwords.MAX_LENGTH,
                                            strip_whitespace=False)]


class LoginIn(Strict):
    username: Annotated[str, StringConstraints(min_length=1, max_length=40, to_lower=True)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=False)]


class TeamIn(Strict):
    name: Name


class UserIn(Strict):
    username: Username
    password: Password
    name: Name
    role: Role
    team_id: Id | None = None
    phone: Phone | None = None
    timezone: Timezone = DEFAULT_TIMEZONE



class UserPatchIn(Strict):
    """Any subset; what is left out keeps its value. `role` and `team_id` are
    an admin's; a manager sets name, phone and active for his reps."""

    name: Name | None = None
    phone: Phone | None = None
    team_id: Id | None = None
    role: Role | None = None
    active: bool | None = None


class PasswordChangeIn(Strict):
    old_password: Annotated[str, StringConstraints(min_length=1, max_length=256,
                                                   strip_whitespace=False)]
    new_password: Password


class PasswordResetIn(Strict):
    new_password: Password


class SettingsIn(Strict):
    """Any subset; what is left out keeps its value."""

    escalate_after_minutes: float | None = Field(None, ge=0, le=7 * 24 * 60, allow_inf_nan=False)
    birthday_lead_days: int | None = Field(None, ge=0, le=365)
    timezone: Timezone | None = None


class Settings(BaseModel):
    escalate_after_minutes: float = DEFAULT_ESCALATE_AFTER_MINUTES
    birthday_lead_days: int = DEFAULT_BIRTHDAY_LEAD_DAYS
    timezone: str = DEFAULT_TIMEZONE


class Team(BaseModel):
    id: str
    name: str


class User(BaseModel):
    id: str
    username: str
    name: str
    role: Role
    team_id: str | None
    phone: str | None
    timezone: str = Field(DEFAULT_TIMEZONE)
    active: bool = True
    must_change_password: bool = Field(
        False, description="set by a reset: every endpoint but /api/users/me and "
                           "/api/users/me/password answers 403 password_change_required")


class UserChange(BaseModel):
    at: str
    action: str
    actor: dict
    before: dict | None
    after: dict | None


class LoginOut(BaseModel):
    token: str
    user: User
