"""What every service class shares: the clock, the event dispatcher and the
`health` entrypoint the gateway's /api/health asks (a ping of the service's
own database, `db`, which each service declares with its own index setup)."""

from __future__ import annotations

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
