"""Passwords and tokens: argon2 hashes, signed expiring JWTs.

Accounts issues tokens; the gateway verifies them with the same secret,
without a round trip, on every request.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from nameko.extensions import DependencyProvider

from services.common import config
from services.common.principal import ROLES, Principal  # noqa: F401 (Principal: re-exported)

ALGORITHM = "HS256"
ISSUER = "salescrm"
CLOCK_SKEW_SECONDS = 60
MIN_SECRET_BYTES = 32

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# A real hash to verify against when the username is unknown, so that an
# unknown user and a wrong password take the same time.
DUMMY_HASH = _hasher.hash("not-a-password-" + uuid.uuid4().hex)


class TokenError(Exception):
    """The token is missing, malformed or tampered with."""

    code = "invalid_token"


class TokenExpired(TokenError):
    code = "token_expired"


def check_secret(secret: str) -> str:
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"the token secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret


class TokenSecret(DependencyProvider):
    """The token secret, checked when the service starts: a service that signs
    or verifies tokens refuses to start without a good one, rather than answer
    every login or request with a 500 later."""

    def setup(self):
        self.secret = check_secret(config.require("JWT_SECRET"))

    def get_dependency(self, worker_ctx) -> str:
        return self.secret


def issue_token(user: dict, secret: str, now: datetime, ttl: timedelta) -> str:
    check_secret(secret)
    claims = {
        "iss": ISSUER,
        "sub": user["id"],
        "role": user["role"],
        "team_id": user.get("team_id"),
        "name": user.get("name", ""),
        "username": user.get("username", ""),
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
        # a new password, a role change or disabling raises the user's
        # generation: older tokens are then refused by the gateway
        "gen": int(user.get("generation") or 0),
    }
    if user.get("must_change_password"):
        claims["pwc"] = True
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, secret: str, now: datetime) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"], "verify_exp": False,
                     "verify_iat": False, "verify_nbf": False},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc.__class__.__name__}") from None
    # Time is checked against the injectable clock, not the wall clock.
    if int(now.timestamp()) >= int(claims["exp"]):
        raise TokenExpired("token expired")
    if int(claims["iat"]) > int(now.timestamp()) + CLOCK_SKEW_SECONDS:
        raise TokenError("invalid token: issued in the future")
    if claims.get("role") not in ROLES:
        raise TokenError("invalid token: unknown role")
    return Principal.of({**claims, "id": claims["sub"]})
