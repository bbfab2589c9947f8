"""Who is calling: the bearer token, verified locally with the shared secret."""

from __future__ import annotations

from services.common import config
from services.common.auth import TokenError, verify_token
from services.common.clock import now
from services.common.errors import Unauthenticated
from services.common.principal import Principal


def bearer_token(request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated("unauthenticated", "sign in first: the Authorization header is missing")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("invalid_token", "the Authorization header must be 'Bearer <token>'")
    return token.strip()


def authenticate(request) -> Principal:
    return principal_of(bearer_token(request))


def principal_of(token: str) -> Principal:
    """The verified caller of a token; 401 `token_expired` or `invalid_token`."""
    try:
        return verify_token(token, config.require("JWT_SECRET"), now())
    except TokenError as exc:
        raise Unauthenticated(exc.code, str(exc)) from None
