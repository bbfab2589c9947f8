"""customers: see ARCHITECTURE.md "Services"."""

from __future__ import annotations

from nameko.rpc import rpc

from services.common.mongo import Mongo


class CustomersService:
    name = "customers"

    db = Mongo()

    @rpc
    def health(self):
        self.db.command("ping")
        return "ok"
