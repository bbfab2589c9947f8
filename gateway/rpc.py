"""RPC clients for the gateway, bounded in time: a service that does not
answer becomes a 503 for the client, not a request hanging forever."""

from __future__ import annotations

import eventlet
from nameko.rpc import ServiceRpc

from services.common import config
from services.common.errors import CrmError


class Unavailable(CrmError):
    status = 503


class _Timed:
    def __init__(self, client, service: str, timeout: float):
        self._client = client
        self._service = service
        self._timeout = timeout

    def __getattr__(self, method):
        target = getattr(self._client, method)

        def call(*args, **kwargs):
            with eventlet.Timeout(
                self._timeout,
                Unavailable("service_unavailable", f"the {self._service} service did not answer"),
            ):
                return target(*args, **kwargs)

        call.call_async = target.call_async
        return call


class TimedRpc(ServiceRpc):
    def get_dependency(self, worker_ctx):
        client = super().get_dependency(worker_ctx)
        return _Timed(client, self.target_service, float(config.get("RPC_TIMEOUT_SECONDS", 10)))
