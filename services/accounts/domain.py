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


# ------------------------------------------------------------ staff lifecycle

# Fields whose change invalidates the tokens already issued: a token carries
# role and team, and a disabled user must be out at once.
REVOKING_FIELDS = ("role", "team_id", "active")


def check_may_change_user(actor: Principal, target: dict, changes: dict) -> None:
    """An admin changes anyone (but not himself out of admin or activity);
    a manager only the reps of his own team, and only name, phone and active."""
    if actor.role == "admin":
        if target["_id"] == actor.id and (changes.get("active") is False
                                          or changes.get("role", "admin") != "admin"):
            raise Forbidden("cannot_lock_self_out",
                            "an admin cannot disable himself or give up his own role")
        return
    if actor.role == "manager":
        if target.get("role") != "rep" or target.get("team_id") != actor.team_id:
            raise Forbidden("forbidden", "a manager changes the reps of his own team only")
        barred = sorted(set(changes) & {"role", "team_id"})
        if barred:
            raise Forbidden("forbidden", f"only an admin changes {', '.join(barred)}")
        return
    raise Forbidden("forbidden", "a rep cannot change users")


def check_may_reset_password(actor: Principal, target: dict) -> None:
    if actor.role == "admin":
        return
    if (actor.role == "manager" and target.get("role") == "rep"
            and target.get("team_id") == actor.team_id):
        return
    raise Forbidden("forbidden", "only an admin or the user's manager resets a password")


# What a user always has: a PATCH may change these, never clear them.
REQUIRED_FIELDS = {"name": "a user has a name", "role": "rep, manager or admin",
                   "active": "true or false"}


def cleared_required(requested: dict) -> dict[str, str]:
    """The fields a PATCH sets to null that a user cannot be without."""
    return {k: why for k, why in REQUIRED_FIELDS.items() if k in requested and requested[k] is None}


def user_changes(before: dict, requested: dict) -> dict:
    """The requested fields that differ from the stored user."""
    current = {**before, "active": before.get("active", True)}
    return {k: v for k, v in requested.items() if current.get(k) != v}


def revokes_sessions(changes: dict) -> bool:
    return any(k in changes for k in REVOKING_FIELDS)


def session_state(doc: dict) -> dict:
    """What the gateway checks every token of this user against."""
    return {"active": doc.get("active", True), "generation": int(doc.get("generation") or 0)}
