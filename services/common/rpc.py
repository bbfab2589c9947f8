"""RPC clients that survive the start of a service (and of the services it calls).

nameko's ReplyListener checks, on every (re)connection of its consumer, whether
replies were lost while it was away: it passively declares its reply queue and,
when that queue is missing while calls are pending, raises
`ReplyQueueExpiredWithPendingReplies`, which kills the whole container. At start
that fires without any disconnection, and the gateway died of it in an e2e run:

- the container starts its entrypoints in parallel with the listener, so an
  HTTP request or an event can make a call before the listener's consumer has
  connected once (and its reply queue exists);
- a call whose request could not be delivered (`UnknownService`, the target is
  still starting) or that timed out stays in `pending` for ever, so every later
  reconnection runs the check with calls nobody waits for.

Here a call waits for the listener's first connection, always removes its own
pending entry, and the check runs only once a first connection was made.
"""

from __future__ import annotations

import eventlet
from nameko import rpc as nameko_rpc
from nameko.exceptions import deserialize_to_instance
from nameko.rpc import Client, ServiceRpc

from services.common import config
from services.common.credentials import CREDENTIAL, SERVICE_TOKENS
from services.common.errors import ERRORS, CrmError

for _error in ERRORS:  # they cross RPC as themselves (see errors.py)
    deserialize_to_instance(_error)


@deserialize_to_instance
class Unavailable(CrmError):
    status = 503


class ReplyListener(nameko_rpc.ReplyListener):
    def check_for_lost_replies(self):
        # Before the first connection nothing can have been lost to a
        # disconnection: the queue simply does not exist yet.
        if self.consumer.ready.is_set():
            super().check_for_lost_replies()

    def wait_until_ready(self):
        self.consumer.wait_until_consumer_ready()


class _Method:
    def __init__(self, rpc: Rpc, context_data: dict, method: str):
        self._rpc = rpc
        self._context_data = context_data
        self._method = method

    def __call__(self, *args, **kwargs):
        listener = self._rpc.reply_listener
        ids: list[str] = []

        def register(correlation_id):
            ids.append(correlation_id)
            return listener.register_for_reply(correlation_id)

        client = Client(self._rpc.publisher.publish, register, self._rpc.context(self._context_data),
                        self._rpc.target_service, self._method)
        timeout = self._rpc.timeout_seconds()
        try:
            with eventlet.Timeout(timeout, Unavailable(
                    "service_unavailable",
                    f"the {self._rpc.target_service} service did not answer")):
                listener.wait_until_ready()
                return client(*args, **kwargs)
        finally:
            for correlation_id in ids:
                listener.pending.pop(correlation_id, None)


class _Service:
    def __init__(self, rpc: Rpc, context_data: dict):
        self._rpc = rpc
        self._context_data = context_data

    def __getattr__(self, method: str) -> _Method:
        if method.startswith("_"):
            raise AttributeError(method)
        return _Method(self._rpc, self._context_data, method)


class Rpc(ServiceRpc):
    """`ServiceRpc` to one service: `self.accounts.get_user(uid)`. Without a
    timeout a call waits as nameko's does; `TimedRpc` in the gateway bounds it."""

    reply_listener = ReplyListener()
    # The gateway forwards the user's token (set in the worker's context data
    # once the request is authenticated); a service signs its own calls.
    forwards_user_credential = False

    def timeout_seconds(self) -> float | None:
        return None

    def context(self, context_data: dict) -> dict:
        """The context data a call carries: the caller's credential (see
        services/common/credentials.py), read at call time."""
        if self.forwards_user_credential and context_data.get(CREDENTIAL):
            return context_data
        token = SERVICE_TOKENS.token(self.container.service_name, config.require("JWT_SECRET"))
        return {**context_data, CREDENTIAL: token}

    def get_dependency(self, worker_ctx):
        return _Service(self, worker_ctx.context_data)
