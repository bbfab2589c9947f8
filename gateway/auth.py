"""Who is calling: the bearer token, verified locally with the shared secret."""

from __future__ import annotations

from services.common import config
from services.common.auth import Principal, TokenError, verify_token
from services.common.clock import now
from services.common.errors import Unauthenticated


def authenticate(request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated("unauthenticated", "sign in first: the Authorization header is missing")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("invalid_token", "the Authorization header must be 'Bearer <token>'")
    try:
        return verify_token(token.strip(), config.require("JWT_SECRET"), now())
    except TokenError as exc:
        code = "token_expired" if "expired" in str(exc) else "invalid_token"
        raise Unauthenticated(code, str(exc)) from None
