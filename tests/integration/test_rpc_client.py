"""The RPC client every service uses survives the start of a stack: a call to
a service that is not up yet, or that does not answer in time, leaves nothing
behind that could later kill the caller; a call made before the caller's own
reply queue exists waits for it instead of killing the container."""

import eventlet
import pytest
from nameko.exceptions import ReplyQueueExpiredWithPendingReplies, UnknownService
from nameko.rpc import rpc

from gateway.rpc import TimedRpc
from services.common.rpc import ReplyListener, Rpc
from services.common.standalone import ServiceRpcClient


class Slow:
    name = "rpcslow"
    calls: list = []

    @rpc
    def nap(self, seconds):
        self.calls.append(seconds)
        eventlet.sleep(seconds)
        return "awake"


class Caller:
    name = "rpccaller"
    absent = Rpc("rpcabsent")
    slow = TimedRpc("rpcslow")

    @rpc
    def call_absent(self):
        try:
            self.absent.anything()
        except UnknownService:
            return "unknown"

    @rpc
    def call_slow(self, seconds):
        try:
            return self.slow.nap(seconds)
        except Exception as exc:  # noqa: BLE001 - the test wants the kind
            return type(exc).__name__


def listener_of(container) -> ReplyListener:
    return next(e for e in container.subextensions if isinstance(e, ReplyListener))


def test_failed_and_timed_out_calls_leave_nothing_pending(container_factory, service_config):
    config = {**service_config, "RPC_TIMEOUT_SECONDS": 0.5}
    caller = container_factory(Caller, config)
    slow = container_factory(Slow, config)
    caller.start()
    slow.start()
    with ServiceRpcClient("rpccaller") as client:
        assert client.call_absent() == "unknown"
        assert client.call_slow(2) == "Unavailable"
        assert client.call_slow(0) == "awake"
    # nameko keeps an undelivered or abandoned call in `pending` for ever; on
    # the next reconnection its lost-reply check would then count it.
    assert listener_of(caller).pending == {}


def test_lost_reply_check_runs_only_after_the_first_connection(container_factory,
                                                              service_config):
    caller = container_factory(Caller, service_config)
    caller.start()
    listener = listener_of(caller)
    queue = listener.queue
    try:
        listener.queue = queue.__class__(queue.name + "-never-declared", exchange=queue.exchange,
                                         routing_key=queue.routing_key)
        listener.pending["waiting"] = eventlet.event.Event()
        listener.consumer.ready.clear()
        listener.check_for_lost_replies()  # before a first connection: nothing was lost
        listener.consumer.ready.set()
        with pytest.raises(ReplyQueueExpiredWithPendingReplies):
            listener.check_for_lost_replies()
    finally:
        listener.pending.pop("waiting", None)
        listener.queue = queue


def test_a_call_waits_for_the_reply_queue_of_its_first_connection(container_factory,
                                                                 service_config):
    caller = container_factory(Caller, service_config)
    slow = container_factory(Slow, service_config)
    slow.start()
    caller.start()
    listener = listener_of(caller)
    listener.consumer.ready.clear()
    Slow.calls.clear()
    with ServiceRpcClient("rpccaller") as client:
        reply = client.call_slow.call_async(0)
        eventlet.sleep(0.3)
        assert Slow.calls == [], "the call went out before the caller could get its reply"
        listener.consumer.ready.set()
        assert reply.result() == "awake"
        assert Slow.calls == [0]
