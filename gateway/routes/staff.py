"""Staff lifecycle (people leave, customers stay): changing and disabling
users, passwords, and handing a leaving rep's customers over."""

from __future__ import annotations

from pydantic import BaseModel

from gateway.http import Call, json_response, route
from gateway.sessions import SESSIONS
from services.accounts import schemas
from services.customers import schemas as customer_schemas


class UserHistory(BaseModel):
    items: list[schemas.UserChange]


class StaffRoutes:
    @route("PATCH", "/api/users/{id}", roles=("admin", "manager"), body=schemas.UserPatchIn,
           response=schemas.User,
           summary="Change a user: name, phone, active (an admin, or the manager of a rep of "
                   "his team); team_id and role (an admin). Disabling refuses the user's "
                   "tokens at once (401 account_disabled) and ends his live streams")
    def update_user(self, call: Call, id, body):  # noqa: A002
        user = self.accounts.update_user(call.actor, id, body.model_dump(exclude_unset=True))
        SESSIONS.forget(id)  # this gateway at once; the others by UserChanged
        return user

    @route("POST", "/api/users/me/password", body=schemas.PasswordChangeIn,
           response=schemas.LoginOut,
           summary="Change one's own password; every other token of the user stops working, "
                   "the answer carries a new token")
    def change_password(self, call: Call, body):
        signed_in = self.accounts.change_password(call.actor, body.model_dump())
        SESSIONS.forget(call.user.id)
        return signed_in

    @route("POST", "/api/users/{id}/password", roles=("admin", "manager"),
           body=schemas.PasswordResetIn, response=schemas.User,
           summary="Reset a user's password (an admin, or his manager): his tokens stop "
                   "working and he must choose a new password at his next sign-in")
    def reset_password(self, call: Call, id, body):  # noqa: A002
        user = self.accounts.reset_password(call.actor, id, body.model_dump())
        SESSIONS.forget(id)
        return user

    @route("GET", "/api/users/{id}/history", roles=("admin", "manager"), response=UserHistory,
           summary="What changed about a user, by whom and when (newest first)")
    def user_history(self, call: Call, id):  # noqa: A002
        return self.accounts.user_history(call.actor, id)

    @route("POST", "/api/users/{id}/handover", roles=("admin", "manager"),
           body=customer_schemas.HandoverIn, response=customer_schemas.Handover, status=202,
           tag="users",
           summary="Hand a user's customers over (an admin, or the rep's manager): to one "
                   "user, spread round robin over several, or to the pool; all of them or "
                   "`customer_ids`. Answers the job at once (202); `dry_run` answers what "
                   "would move (200) and moves nothing")
    def start_handover(self, call: Call, id, body):  # noqa: A002
        job = self.customers.start_handover(call.actor, id, body.model_dump(exclude_none=True))
        return json_response(200, job) if job["id"] is None else job

    @route("GET", "/api/handovers/{id}", roles=("admin", "manager"),
           response=customer_schemas.Handover, tag="users",
           summary="A handover's progress: total, moved, skipped; status running or done")
    def get_handover(self, call: Call, id):  # noqa: A002
        return self.customers.get_handover(call.actor, id)
