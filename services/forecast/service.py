"""forecast: see ARCHITECTURE.md "Services"."""

from __future__ import annotations

from nameko.rpc import rpc

from services.common.mongo import Mongo


class ForecastService:
    name = "forecast"

    db = Mongo()

    @rpc
    def health(self):
        self.db.command("ping")
        return "ok"
