"""RPC clients for the gateway, bounded in time: a service that does not
answer becomes a 503 for the client, not a request hanging forever."""

from __future__ import annotations

from services.common import config
from services.common.rpc import Rpc


class TimedRpc(Rpc):
    forwards_user_credential = True

    def timeout_seconds(self) -> float:
        return float(config.get("RPC_TIMEOUT_SECONDS", 10))


class SystemRpc(TimedRpc):
    """The gateway's own calls (a token's session check): signed as the
    gateway, never as the user of the request."""

    forwards_user_credential = False
