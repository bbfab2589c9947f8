"""gateway: HTTP -> RPC. Holds nothing persistent."""

from __future__ import annotations

import eventlet
from nameko.events import BROADCAST, event_handler

from gateway import openapi
from gateway.http import Call, RequestContext, json_response, route
from gateway.routes.accounts import AccountsRoutes
from gateway.routes.customers import CustomersRoutes
from gateway.routes.forecast import ForecastRoutes
from gateway.routes.knowledge import KnowledgeRoutes
from gateway.routes.reads import ReadRoutes
from gateway.routes.records import RecordRoutes
from gateway.routes.schedule import ScheduleRoutes
from gateway.routes.staff import StaffRoutes
from gateway.routes.stream import StreamRoutes
from gateway.rpc import SystemRpc, TimedRpc
from gateway.sessions import SESSIONS
from services.common.auth import TokenSecret

# Every service /api/health asks; kept in step with the Procfile and
# docker-compose.yml by tests/unit/test_layout.py.
SERVICES = ("accounts", "customers", "scheduler", "notify", "knowledge", "forecast")
HEALTH_TIMEOUT_SECONDS = 3


class GatewayService(AccountsRoutes, StaffRoutes, ReadRoutes, CustomersRoutes, RecordRoutes,
                     ScheduleRoutes, StreamRoutes, KnowledgeRoutes, ForecastRoutes):
    name = "gateway"
    token_secret = TokenSecret()  # checked at start; routes verify with config's

    accounts = TimedRpc("accounts")
    customers = TimedRpc("customers")
    scheduler = TimedRpc("scheduler")
    notify = TimedRpc("notify")
    knowledge = TimedRpc("knowledge")
    forecast = TimedRpc("forecast")
    sessions_rpc = SystemRpc("accounts")
    request_context = RequestContext()

    @event_handler("accounts", "UserChanged", handler_type=BROADCAST, reliable_delivery=False)
    def on_user_changed(self, payload):
        # Every gateway drops the user's cached session state: a disabled
        # user's next request, on any gateway, asks accounts again.
        SESSIONS.forget(payload["user_id"])

    @route("GET", "/api/health", public=True, summary="Every service answers RPC?")
    def health(self, call: Call):
        def ask(service):
            try:
                with eventlet.Timeout(HEALTH_TIMEOUT_SECONDS):
                    return service, getattr(self, service).health()
            except BaseException:  # noqa: BLE001 - any failure means "down"
                return service, "unavailable"

        pool = eventlet.GreenPool(len(SERVICES))
        services = dict(pool.imap(ask, SERVICES))
        ok = all(v == "ok" for v in services.values())
        return json_response(200 if ok else 503,
                             {"status": "ok" if ok else "degraded", "services": services})

    @route("GET", "/api/openapi.json", public=True, summary="This document")
    def openapi_document(self, call: Call):
        if not hasattr(GatewayService, "_openapi"):
            GatewayService._openapi = openapi.build()
        return GatewayService._openapi

    @route("GET", "/api/echo", public=True, summary="A plain answer without RPC (benchmarks)")
    def echo(self, call: Call):
        return {"ok": True}

    @route("GET", "/api/ping", public=True, summary="One trivial RPC round trip (benchmarks)")
    def ping(self, call: Call):
        return {"echo": self.accounts.echo("pong")}
