"""Accounts rules as plain functions: who may create, see or unlock whom
(login throttling: throttle.py; the password policy: passwords.py)."""

from __future__ import annotations

from services.common.errors import Forbidden, Invalid
from services.common.principal import Principal


def check_may_create_user(actor: Principal, role: str, team_id: str | None) -> None:
    """An admin creates anyone; a manager only reps of his own team."""
    if actor.role == "admin":
        if role in ("rep", "manager") and not team_id:
            raise Invalid.fields({"team_id": "a rep or a manager belongs to a team"})
        return
    if actor.role == "manager":
        if role != "rep":
            raise Forbidden("forbidden", "a manager can create reps only")
        if team_id is not None and team_id != actor.team_id:
            raise Forbidden("forbidden", "a manager can create reps of his own team only")
        return
    raise Forbidden("forbidden", "a rep cannot create users")


def user_list_scope(actor: Principal) -> dict:
    """The filter of the users an actor may list."""
    if actor.role == "admin":
        return {}
    if actor.role == "manager":
        return {"team_id": actor.team_id}
    raise Forbidden("forbidden", "only managers and admins list users")


def check_may_unlock(actor: Principal, user: dict) -> None:
    """An admin unlocks anyone; a manager the reps of his own team."""
    if actor.role == "admin":
        return
    if actor.role == "manager" and user.get("role") == "rep" and user.get("team_id") \
            and user.get("team_id") == actor.team_id:
        return
    raise Forbidden("forbidden", "an admin unlocks anyone, a manager the reps of his team")
