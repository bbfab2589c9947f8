"""What every service class shares: the clock, the event dispatcher and the
`health` entrypoint the gateway's /api/health asks (a ping of the service's
own database, `db`, which each service declares with its own index setup)."""

from __future__ import annotations

import functools
import inspect

from nameko.rpc import rpc

from services.common.clock import Clock
from services.common.events import Dispatcher


class ServiceBase:
    clock = Clock()
    dispatch = Dispatcher()

    @rpc
    def health(self):
        self.db.command("ping")
        return "ok"


def rpc_mapping(domain_error: type[Exception], to_rpc):
    """nameko's `rpc`, with a domain's errors mapped to typed RPC errors at
    the entrypoint (the signature is kept, so nameko still checks calls)."""

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
