"""What every service class shares: the clock, the event dispatcher, the
verified caller of each RPC, and the `health` entrypoint the gateway's
/api/health asks (a ping of the service's own database, `db`, which each
service declares with its own index setup)."""

from __future__ import annotations

import functools
import inspect
import logging

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc as nameko_rpc

from services.common import config
from services.common.auth import TokenError, TokenSecret
from services.common.clock import Clock
from services.common.clock import now as clock_now
from services.common.credentials import ADDRESS, CREDENTIAL, Caller, verify_credential
from services.common.errors import Forbidden, Unauthenticated
from services.common.events import Dispatcher

log = logging.getLogger(__name__)


class _CallerOf:
    """The credential of one worker's call, verified when first asked."""

    def __init__(self, context_data: dict):
        self._context = context_data
        self._verified: Caller | None = None

    @property
    def address(self) -> str | None:
        return self._context.get(ADDRESS)

    def verify(self) -> Caller:
        if self._verified is None:
            try:
                self._verified = verify_credential(self._context.get(CREDENTIAL),
                                                   config.require("JWT_SECRET"), clock_now())
            except TokenError as exc:
                raise Unauthenticated("unauthenticated_call",
                                      f"this call carries no valid credential: {exc}") from None
        return self._verified


class CallerProvider(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return _CallerOf(worker_ctx.context_data)


def _actor_for(caller: Caller, claimed, address: str | None) -> dict:
    """The actor an entrypoint acts for. A user's token names him: a claimed
    actor that is anyone else is forged. A service is trusted to name the
    user it acts for (it verified him itself)."""
    if caller.kind == "service":
        return claimed
    me = caller.principal
    if isinstance(claimed, dict) and (claimed.get("id") != me.id
                                      or claimed.get("role", me.role) != me.role):
        raise Forbidden("forged_actor", "the actor of this call is not the signed-in user")
    return {**me.as_dict(), "address": address}


def rpc(fn=None, *, expected_exceptions=()):
    """nameko's `rpc`, refusing a call without a valid credential and
    replacing a user's claimed `actor` by the one his token proves."""
    if fn is None:
        return functools.partial(rpc, expected_exceptions=expected_exceptions)
    signature = inspect.signature(fn)
    params = list(signature.parameters)
    takes_actor = "actor" in params

    @functools.wraps(fn)
    def entrypoint(self, *args, **kwargs):
        caller = self.caller.verify()
        if takes_actor:
            bound = signature.bind(self, *args, **kwargs)
            if "actor" in bound.arguments:
                bound.arguments["actor"] = _actor_for(caller, bound.arguments["actor"],
                                                      self.caller.address)
            return fn(*bound.args, **bound.kwargs)
        if caller.kind != "service":
            raise Forbidden("service_only", f"{fn.__name__} is for services only")
        return fn(self, *args, **kwargs)

    entrypoint.__signature__ = signature
    entrypoint.__wrapped_rpc__ = True
    return nameko_rpc(expected_exceptions=expected_exceptions)(entrypoint)


class ServiceBase:
    clock = Clock()
    dispatch = Dispatcher()
    caller = CallerProvider()
    token_secret = TokenSecret()  # every service verifies callers: no secret, no start

    @nameko_rpc
    def health(self):
        self.db.command("ping")
        return "ok"


def rpc_mapping(domain_error: type[Exception], to_rpc):
    """`rpc`, with a domain's errors mapped to typed RPC errors at the
    entrypoint (the signature is kept, so nameko still checks calls)."""

    def decorate(fn):
        @functools.wraps(fn)
        def entrypoint(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except domain_error as exc:
                raise to_rpc(exc) from None

        entrypoint.__signature__ = inspect.signature(fn)
        return rpc(entrypoint)

    return decorate
