"""Events are never lost: not to a subscriber that has not started yet, and
not to a handler that fails once."""

import pytest
from nameko.rpc import rpc

from services.common import contracts, events
from services.common.events import Dispatcher, event, handles
from services.common.standalone import ServiceRpcClient
from tests.waiting import wait_for


class ThingHappened(contracts.Event):
    source = "evtsrc"
    n: int


@pytest.fixture(autouse=True)
def thing_contract(monkeypatch):
    monkeypatch.setitem(contracts.EVENTS, "ThingHappened", ThingHappened)


class Source:
    name = "evtsrc"
    dispatch = Dispatcher()

    @rpc
    def happen(self, n):
        self.dispatch("ThingHappened", event(n=n))


class Subscriber:
    name = "evtsub"
    seen: list = []
    failures_left = {"n": 0}

    @handles("evtsrc", "ThingHappened")
    def on_thing_happened(self, payload):
        if self.failures_left["n"] > 0:
            self.failures_left["n"] -= 1
            raise RuntimeError("a passing fault")
        self.seen.append(payload["n"])


def test_event_published_before_the_subscriber_ever_ran_is_delivered(
        container_factory, service_config, monkeypatch):
    monkeypatch.setitem(events.SUBSCRIPTIONS, ("evtsrc", "ThingHappened"), ("evtsub",))
    Subscriber.seen.clear()
    source = container_factory(Source, service_config)
    source.start()
    with ServiceRpcClient("evtsrc") as client:
        client.happen(1)
        client.happen(2)
    sub = container_factory(Subscriber, service_config)
    sub.start()
    wait_for(lambda: sorted(Subscriber.seen) == [1, 2])


def test_failing_handler_is_retried_not_dropped(container_factory, service_config, monkeypatch):
    monkeypatch.setitem(events.SUBSCRIPTIONS, ("evtsrc", "ThingHappened"), ("evtsub",))
    monkeypatch.setattr(events, "REQUEUE_PAUSE_SECONDS", 0.05)
    Subscriber.seen.clear()
    Subscriber.failures_left["n"] = 2
    source = container_factory(Source, service_config)
    sub = container_factory(Subscriber, service_config)
    source.start()
    sub.start()
    with ServiceRpcClient("evtsrc") as client:
        client.happen(7)
    wait_for(lambda: Subscriber.seen == [7])
    assert Subscriber.failures_left["n"] == 0


def test_payload_envelope():
    p = event(customer_id="c1")
    assert p["customer_id"] == "c1"
    assert len(p["event_id"]) == 36
    assert p["occurred_at"].endswith("+00:00")
