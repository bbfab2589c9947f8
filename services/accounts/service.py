"""accounts: users, teams, roles, password hashes, tokens."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from eventlet import tpool
from nameko.rpc import rpc

from services.accounts import domain, schemas, storage
from services.common import config
from services.common.auth import (
    DUMMY_HASH,
    Principal,
    TokenSecret,
    hash_password,
    issue_token,
    needs_rehash,
    verify_password,
)
from services.common.clock import now as clock_now
from services.common.errors import (
    Conflict,
    Invalid,
    NotFound,
    TooManyRequests,
    Unauthenticated,
)
from services.common.events import event
from services.common.mongo import Mongo
from services.common.principal import require_admin
from services.common.service import ServiceBase
from services.common.validation import parse

log = logging.getLogger(__name__)


def _bootstrap_admin(db) -> None:
    """The first start of an empty system creates `admin`."""
    if storage.count_users(db):
        return
    password = config.get("ADMIN_PASSWORD") or ""
    generated = not password
    if generated:
        password = secrets.token_urlsafe(12)
    try:
        storage.insert_user(
            db,
            {"username": "admin", "name": "管理员", "role": "admin", "team_id": None,
             "phone": None, "timezone": "Asia/Shanghai"},
            hash_password(password),
            clock_now(),
        )
    except storage.UsernameTaken:
        return  # another instance bootstrapped first
    if generated:
        log.warning("bootstrap: created user 'admin' with password %s (shown once)", password)
    else:
        log.info("bootstrap: created user 'admin' with the password from CRM_ADMIN_PASSWORD")


def _setup(db) -> None:
    storage.ensure_indexes(db)
    _bootstrap_admin(db)


def _hash(password: str) -> str:
    # argon2 is CPU-bound C code: run it off the eventlet hub so one login
    # does not stall every other request in this process.
    return tpool.execute(hash_password, password)


def _verify(password_hash: str, password: str) -> bool:
    return tpool.execute(verify_password, password_hash, password)


def _too_many(wait: float) -> TooManyRequests:
    return TooManyRequests("too_many_attempts", "too many wrong passwords; try again later",
                           {"retry_after_seconds": int(wait) + 1})


class AccountsService(ServiceBase):
    name = "accounts"

    db = Mongo(_setup)
    token_secret = TokenSecret()

    @rpc
    def echo(self, value=None):
        """A trivial round trip: the framework's ceiling in benchmarks."""
        return value

    @rpc
    def login(self, body):
        data = parse(schemas.LoginIn, body)
        now = self.clock.now()
        user = storage.find_user_by_username(self.db, data.username)
        if user is None:
            _verify(DUMMY_HASH, data.password)
            raise Unauthenticated("invalid_credentials", "wrong username or password")
        wait = domain.locked_for(user.get("locked_until"), now)
        if wait > 0:
            raise _too_many(wait)
        # The attempt counts as a failure before the (slow) password check, and
        # one beyond the free ones must take the lock it would earn first: so
        # guesses sent in parallel get no more tries than guesses in a row.
        attempt = storage.record_failure(self.db, user["_id"])
        free = int(config.get("LOGIN_FREE_FAILURES", 5))
        lock = domain.next_lock(attempt, free, now)
        if lock is not None and not storage.take_lock(self.db, user["_id"], now, lock):
            running = storage.find_user(self.db, user["_id"]) or {}
            raise _too_many(domain.locked_for(running.get("locked_until"), now))
        if not _verify(user["password_hash"], data.password):
            raise Unauthenticated("invalid_credentials", "wrong username or password")
        new_hash = _hash(data.password) if needs_rehash(user["password_hash"]) else None
        storage.record_success(self.db, user["_id"], new_hash)
        public = storage.public_user(user)
        ttl = timedelta(minutes=float(config.get("TOKEN_TTL_MINUTES", 720)))
        token = issue_token(public, self.token_secret, now, ttl)
        return {"token": token, "user": public}

    @rpc
    def create_team(self, actor, body):
        actor = Principal.of(actor)
        require_admin(actor, "creates teams")
        data = parse(schemas.TeamIn, body)
        team = storage.insert_team(self.db, data.name, self.clock.now())
        return {"id": team["_id"], "name": team["name"]}

    @rpc
    def list_teams(self, actor):
        return [{"id": t["_id"], "name": t["name"]} for t in storage.list_teams(self.db)]

    @rpc
    def create_user(self, actor, body):
        actor = Principal.of(actor)
        data = parse(schemas.UserIn, body)
        team_id = data.team_id
        if actor.role == "manager" and team_id is None:
            team_id = actor.team_id
        domain.check_may_create_user(actor, data.role, team_id)
        if team_id is not None and storage.find_team(self.db, team_id) is None:
            raise Invalid.fields({"team_id": "no such team"})
        fields = data.model_dump(exclude={"password"})
        fields["team_id"] = team_id
        try:
            doc = storage.insert_user(self.db, fields, _hash(data.password), self.clock.now())
        except storage.UsernameTaken:
            raise Conflict("username_taken", f"username {data.username} is taken") from None
        user = storage.public_user(doc)
        self.dispatch("UserCreated", event(user_id=user["id"], role=user["role"],
                                           team_id=user["team_id"]))
        return user

    @rpc
    def me(self, actor):
        doc = storage.find_user(self.db, actor["id"])
        if doc is None:
            raise NotFound("not_found", "user not found")
        return storage.public_user(doc)

    @rpc
    def list_users(self, actor, page=1, page_size=20):
        actor = Principal.of(actor)
        scope = domain.user_list_scope(actor)
        docs, total = storage.list_users(self.db, scope, (page - 1) * page_size, page_size)
        return {"items": [storage.public_user(d) for d in docs], "total": total}

    @rpc
    def users_in_scope(self, actor):
        """Every user `actor` may list, in one answer (the integrity report)."""
        scope = domain.user_list_scope(Principal.of(actor))
        return [storage.public_user(d) for d in storage.all_users(self.db, scope)]

    @rpc
    def team_managers(self, team_ids):
        """The managers of these teams (who hears of an alarm or a dispute)."""
        ids = sorted({t for t in team_ids if t})
        return [storage.public_user(d) for d in storage.team_managers(self.db, ids)] if ids else []

    @rpc
    def get_users(self, ids):
        """Public user records with their settings, by id, for other services
        (a phone and the escalation delay for SMS, a time zone for birthdays)."""
        return {
            d["_id"]: {**storage.public_user(d), "settings": storage.user_settings(d)}
            for d in storage.find_users(self.db, list(ids))
        }

    @rpc
    def get_settings(self, actor):
        doc = storage.find_user(self.db, actor["id"])
        if doc is None:
            raise NotFound("not_found", "user not found")
        return storage.user_settings(doc)

    @rpc
    def update_settings(self, actor, body):
        data = parse(schemas.SettingsIn, body)
        doc = storage.update_settings(self.db, actor["id"], data.model_dump(exclude_none=True))
        if doc is None:
            raise NotFound("not_found", "user not found")
        return storage.user_settings(doc)
