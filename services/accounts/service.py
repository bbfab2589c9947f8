"""accounts: users, teams, roles, password hashes, tokens."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from eventlet import tpool

from services.accounts import domain, passwords, schemas, storage, throttle
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
from services.common.service import ServiceBase, rpc
from services.common.timers import ConfigTimer
from services.common.validation import parse

log = logging.getLogger(__name__)


ADMIN = {"username": "admin", "name": "管理员"}


def check_admin_password(password: str) -> None:
    """A CRM_ADMIN_PASSWORD that the password policy refuses stops the
    service: the bootstrap admin would hold every right with it. (A generated
    one is strong anyway.)"""
    if not password:
        return
    problem = passwords.password_problem(password, ADMIN["username"], ADMIN["name"])
    if problem:
        log.critical("accounts refuses to start: CRM_ADMIN_PASSWORD %s; set a stronger one "
                     "(or unset it to have one generated)", problem)
        raise RuntimeError(f"CRM_ADMIN_PASSWORD {problem}")


def _bootstrap_admin(db) -> None:
    """The first start of an empty system creates `admin`."""
    password = config.get("ADMIN_PASSWORD") or ""
    check_admin_password(password)
    if storage.count_users(db):
        return
    generated = not password
    if generated:
        password = secrets.token_urlsafe(12)
    try:
        storage.insert_user(
            db,
            {**ADMIN, "role": "admin", "team_id": None,
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
                           {"retry_after_seconds": throttle.retry_after(wait)})


def _throttle_policy() -> throttle.Policy:
    return throttle.Policy.from_settings(config.setting)


def _count_attempt(db, typed_username: str, address: str, usual_addresses, policy, now) -> dict:
    """Count a login attempt on the throttle counters it meets, before its
    password is looked at; TooManyRequests if a lock refuses it. Returns the
    counters' keys by scope.

    Nothing here depends on whether the user exists (an unknown username has
    no usual addresses, as a known one at a new address): an unknown username
    meets the same counters and gets the same answers. The attempt counts as
    a failure before the (slow) password check, and one beyond the free ones
    must take the lock it would earn first: so guesses sent in parallel get
    no more tries than guesses in a row."""
    usual = throttle.is_usual(usual_addresses, address, now, policy)
    username = throttle.normalize_username(typed_username)
    keys = {s: throttle.counter_key(s, username, address) for s in throttle.scopes_for(usual)}
    wait = throttle.refusal(storage.throttle_counters(db, list(keys.values())), now)
    if wait > 0:
        raise _too_many(wait)
    for scope, key in keys.items():
        limit = policy.limit(scope)
        failures = storage.count_failure(db, key, throttle.counter_fields(scope, username, address),
                                         now, limit.forget_after)
        lock = throttle.next_lock(failures, limit.free, policy.max_lock_seconds, now)
        if lock is not None and not storage.take_lock(db, key, now, lock, limit.forget_after):
            raise _too_many(throttle.refusal([storage.throttle_counter(db, key)], now))
    return keys


def _forgive_attempt(db, keys: dict) -> None:
    """The password was right: the user's counter at this address starts
    again, and the others take back the failure counted in advance."""
    for scope, key in keys.items():
        if scope == throttle.PAIR:
            storage.reset_counter(db, key)
        else:
            storage.uncount_failure(db, key)


def _check_password(password: str, username: str, name: str) -> None:
    """The password policy (services/accounts/passwords.py); Invalid (422,
    fields.password) if the password is not acceptable. zxcvbn is CPU-bound:
    off the eventlet hub, like a hash."""
    tpool.execute(passwords.check_password, password, username, name)


class AccountsService(ServiceBase):
    name = "accounts"

    db = Mongo(_setup)
    token_secret = TokenSecret()

    @rpc
    def echo(self, value=None):
        """A trivial round trip: the framework's ceiling in benchmarks."""
        return value

    @rpc
    def login(self, body, address=None):
        """`address`: the client's, as the gateway saw it (gateway/addresses.py);
        callers that do not know it are all one address, "unknown"."""
        data = parse(schemas.LoginIn, body)
        address = str(address or throttle.UNKNOWN_ADDRESS)
        now = self.clock.now()
        policy = _throttle_policy()
        user = storage.find_user_by_username(self.db, data.username)
        keys = _count_attempt(self.db, data.username, address,
                              (user or {}).get("usual_addresses"), policy, now)
        if user is None:
            _verify(DUMMY_HASH, data.password)
            raise Unauthenticated("invalid_credentials", "wrong username or password")
        if not _verify(user["password_hash"], data.password):
            raise Unauthenticated("invalid_credentials", "wrong username or password")
        if user.get("active", True) is False:
            # Said only to whoever knows the password: no one learns from it
            # which usernames exist.
            raise Unauthenticated("account_disabled", "this account is disabled")
        _forgive_attempt(self.db, keys)
        new_hash = _hash(data.password) if needs_rehash(user["password_hash"]) else None
        storage.record_success(
            self.db, user["_id"],
            throttle.remember(user.get("usual_addresses"), address, now, policy), new_hash)
        return self._signed_in(user, now)

    def _signed_in(self, doc: dict, now) -> dict:
        public = storage.public_user(doc)
        ttl = timedelta(minutes=float(config.get("TOKEN_TTL_MINUTES", 720)))
        token = issue_token({**public, "generation": doc.get("generation", 0)},
                            self.token_secret, now, ttl)
        return {"token": token, "user": public}

    @rpc
    def unlock_user(self, actor, user_id):
        """Forget every login throttle counter of this user's username (his
        pairs with every address, and his own): he may log in at once."""
        actor = Principal.of(actor)
        doc = storage.find_user(self.db, user_id)
        if doc is None:
            raise NotFound("not_found", "user not found")
        domain.check_may_unlock(actor, doc)
        storage.clear_username(self.db, throttle.normalize_username(doc["username"]))
        storage.append_user_audit(self.db, doc["_id"], actor.as_dict(), "unlock", None, None,
                                  self.clock.now())
        return storage.public_user(doc)

    @ConfigTimer.decorator("LOGIN_FORGET_CHECK_SECONDS", 600.0)
    def forget_throttle_counters(self):
        """Counters past their expiry are zero anyway; this keeps the
        collection from growing with every address that ever guessed."""
        storage.forget_counters(self.db, self.clock.now())

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
        _check_password(data.password, data.username, data.name)
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

    # -------------------------------------------------------- staff lifecycle

    @rpc
    def session_state(self, user_ids):
        """Active and token generation per user: the gateway's check of every
        token (services only)."""
        return {d["_id"]: domain.session_state(d)
                for d in storage.find_users(self.db, list(user_ids))}

    def _target(self, user_id) -> dict:
        doc = storage.find_user(self.db, str(user_id))
        if doc is None:
            raise NotFound("not_found", "no such user")
        return doc

    def _changed(self, actor: Principal, before: dict, after: dict, action: str,
                 changes: list[str], revoked: bool) -> None:
        storage.append_user_audit(
            self.db, after["_id"], actor.as_dict(), action,
            {k: before.get(k, True if k == "active" else None) for k in changes},
            {k: after.get(k, True if k == "active" else None) for k in changes},
            self.clock.now())
        self.dispatch("UserChanged", event(
            user_id=after["_id"], team_id=after.get("team_id"), role=after["role"],
            active=after.get("active", True), changes=changes, sessions_revoked=revoked,
            changed_by=actor.id))

    @rpc
    def update_user(self, actor, user_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.UserPatchIn, body)
        before = self._target(user_id)
        requested = data.model_dump(exclude_unset=True)
        cleared = domain.cleared_required(requested)
        if cleared:
            raise Invalid.fields(cleared)
        domain.check_may_change_user(actor, before, requested)
        changes = domain.user_changes(before, requested)
        if changes.get("team_id") and storage.find_team(self.db, changes["team_id"]) is None:
            raise Invalid.fields({"team_id": "no such team"})
        role = changes.get("role", before["role"])
        if role in ("rep", "manager") and not changes.get("team_id", before.get("team_id")):
            raise Invalid.fields({"team_id": "a rep or a manager belongs to a team"})
        losing_admin = before["role"] == "admin" and (
            changes.get("active") is False or changes.get("role", "admin") != "admin")
        if losing_admin and storage.count_active_admins(self.db) <= 1:
            raise Conflict("last_admin", "the last active admin cannot be disabled or demoted")
        if not changes:
            return storage.public_user(before)
        revoke = domain.revokes_sessions(changes)
        after = storage.update_user(self.db, before["_id"], changes, revoke)
        action = ("disable" if changes.get("active") is False
                  else "enable" if changes.get("active") is True else "update")
        self._changed(actor, before, after, action, sorted(changes), revoke)
        return storage.public_user(after)

    @rpc
    def change_password(self, actor, body):
        actor = Principal.of(actor)
        data = parse(schemas.PasswordChangeIn, body)
        doc = self._target(actor.id)
        if not _verify(doc["password_hash"], data.old_password):
            raise Invalid.fields({"old_password": "the current password is wrong"})
        if data.new_password == data.old_password:
            raise Invalid.fields({"new_password": "choose a password you have not used here"})
        _check_policy(data.new_password, doc)
        after = storage.set_password(self.db, doc["_id"], _hash(data.new_password), False)
        self._changed(actor, doc, after, "password_changed", [], True)
        return self._signed_in(after, self.clock.now())

    @rpc
    def reset_password(self, actor, user_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.PasswordResetIn, body)
        doc = self._target(user_id)
        domain.check_may_reset_password(actor, doc)
        _check_policy(data.new_password, doc)
        after = storage.set_password(self.db, doc["_id"], _hash(data.new_password),
                                     doc["_id"] != actor.id)
        self._changed(actor, doc, after, "password_reset", [], True)
        return storage.public_user(after)

    @rpc
    def user_history(self, actor, user_id):
        actor = Principal.of(actor)
        doc = self._target(user_id)
        if actor.id != doc["_id"]:
            domain.check_may_reset_password(actor, doc)  # the same people see it
        return {"items": [{"at": e["at"].isoformat(), "action": e["action"],
                           "actor": e["actor"], "before": e["before"], "after": e["after"]}
                          for e in storage.user_audit(self.db, doc["_id"])]}


def _check_policy(password: str, user: dict) -> None:
    """The policy for a new password of `user` (422 fields.new_password)."""
    tpool.execute(passwords.check_password, password, user["username"], user.get("name") or "",
                  "new_password")
