"""Who is calling a service over RPC, proven by a signature.

Anything on the broker can publish an RPC request, so a service must not
take the `actor` it is handed on trust. Every call carries a credential in
nameko's context data (sent as message headers):

- the gateway forwards the user's own bearer token: the service checks its
  signature and expiry, and an `actor` argument must be that user;
- a service working on its own account (a timer, an event handler, or acting
  for a user it has already verified) signs a short-lived service token:
  the service's name, valid SERVICE_TOKEN_SECONDS.

Both are HMAC-signed with the one JWT secret, which only the services hold.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import jwt

from services.common.auth import ALGORITHM, ISSUER, TokenError, check_secret, verify_token
from services.common.principal import Principal

CREDENTIAL = "crm_credential"
ADDRESS = "crm_address"
SERVICE_AUDIENCE = "crm-service"
SERVICE_TOKEN_SECONDS = 300
# A service token is reused until this much of its life is left.
RENEW_BEFORE_SECONDS = 120


@dataclass(frozen=True)
class Caller:
    """A verified caller: a user (with his principal) or a service."""

    kind: str  # "user" | "service"
    principal: Principal | None = None
    service: str | None = None


def issue_service_token(service: str, secret: str, at: float | None = None) -> str:
    check_secret(secret)
    issued = int(at if at is not None else time.time())
    return jwt.encode({"iss": ISSUER, "aud": SERVICE_AUDIENCE, "sub": f"service:{service}",
                       "svc": service, "iat": issued, "exp": issued + SERVICE_TOKEN_SECONDS},
                      secret, algorithm=ALGORITHM)


def verify_credential(token, secret: str, now) -> Caller:
    """The caller a credential proves; TokenError when it proves nothing.
    Service tokens live on the wall clock (transport, not business time);
    user tokens on the injectable clock, as the gateway checks them."""
    if not isinstance(token, str) or not token:
        raise TokenError("no credential")
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenError("malformed credential") from None
    if unverified.get("aud") == SERVICE_AUDIENCE:
        try:
            claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
                                audience=SERVICE_AUDIENCE,
                                options={"require": ["exp", "iat", "sub", "svc"]})
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid service token: {exc.__class__.__name__}") from None
        return Caller("service", service=claims["svc"])
    return Caller("user", principal=verify_token(token, secret, now))


class ServiceTokens:
    """One service token per process, renewed before it runs out."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[str, float]] = {}

    def token(self, service: str, secret: str) -> str:
        key = (service, secret)
        now = time.time()
        with self._lock:
            got = self._cache.get(key)
            if got and got[1] - now > RENEW_BEFORE_SECONDS:
                return got[0]
            token = issue_service_token(service, secret, now)
            self._cache[key] = (token, now + SERVICE_TOKEN_SECONDS)
            return token


SERVICE_TOKENS = ServiceTokens()
