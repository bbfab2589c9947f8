"""/api/auth, /api/users, /api/teams."""

from __future__ import annotations

from pydantic import BaseModel

from gateway.http import Call, route
from services.accounts import schemas
from services.common.schemas import Page


class UserList(BaseModel):
    items: list[schemas.User]
    total: int


class AccountsRoutes:
    @route("POST", "/api/auth/login", public=True, body=schemas.LoginIn,
           response=schemas.LoginOut,
           summary="Sign in; returns a token and the user. Wrong passwords are throttled "
                   "per username and address, per address and per username: 429 "
                   "too_many_attempts with Retry-After")
    def login(self, call: Call, body):
        return self.accounts.login(body.model_dump(), call.address)

    @route("GET", "/api/users/me", response=schemas.User, summary="The signed-in user")
    def me(self, call: Call):
        return self.accounts.me(call.actor)

    @route("POST", "/api/teams", roles=("admin",), body=schemas.TeamIn, response=schemas.Team,
           status=201, summary="Create a team")
    def create_team(self, call: Call, body):
        return self.accounts.create_team(call.actor, body.model_dump())

    @route("GET", "/api/teams", response=list[schemas.Team], summary="All teams")
    def list_teams(self, call: Call):
        return self.accounts.list_teams(call.actor)

    @route("POST", "/api/users", roles=("admin", "manager"), body=schemas.UserIn,
           response=schemas.User, status=201,
           summary="Create a user (an admin anyone; a manager reps of his team)")
    def create_user(self, call: Call, body):
        return self.accounts.create_user(call.actor, body.model_dump())

    @route("GET", "/api/users", roles=("admin", "manager"), query=Page, response=UserList,
           summary="Users: a manager sees his team, an admin all")
    def list_users(self, call: Call, query):
        return self.accounts.list_users(call.actor, query.page, query.page_size)

    @route("POST", "/api/users/{id}/unlock", roles=("admin", "manager"), response=schemas.User,
           summary="Lift the login throttle on a user: every wrong-password lock of his "
                   "username, from every address (an admin anyone; a manager reps of his team)")
    def unlock_user(self, call: Call, id):
        return self.accounts.unlock_user(call.actor, id)

    @route("GET", "/api/settings/me", response=schemas.Settings,
           summary="The signed-in user's settings (escalation, birthday lead, time zone)")
    def get_settings(self, call: Call):
        return self.accounts.get_settings(call.actor)

    @route("PUT", "/api/settings/me", body=schemas.SettingsIn, response=schemas.Settings,
           summary="Change the signed-in user's settings (any subset)")
    def put_settings(self, call: Call, body):
        return self.accounts.update_settings(call.actor, body.model_dump(exclude_none=True))
