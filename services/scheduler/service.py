"""scheduler: see ARCHITECTURE.md "Services"."""

from __future__ import annotations

from nameko.rpc import rpc

from services.common.mongo import Mongo


class SchedulerService:
    name = "scheduler"

    db = Mongo()

    @rpc
    def health(self):
        self.db.command("ping")
        return "ok"
