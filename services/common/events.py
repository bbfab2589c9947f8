"""Event conventions shared by every service.

- Every payload carries `event_id` (uuid4), `occurred_at` (UTC ISO 8601) and
  the ids it talks about: `event()` builds that envelope.
- A handler that fails is retried, never acked away: `handles()` wraps
  nameko's `event_handler` with `requeue_on_error=True` and a short pause
  before the message goes back, so a failing handler does not spin the CPU.
- Nameko drops an event published before its subscriber's queue exists.
  `SUBSCRIPTIONS` (in `contracts`) is the one map of who listens to what; the emitting
  service's `Dispatcher` declares every subscriber's durable queue before it
  publishes, so an event waits for a subscriber that has never run yet.
  A handler is named `on_<event_in_snake_case>`; `handles()` checks it.
"""

from __future__ import annotations

import functools
import logging
import uuid

import eventlet
from kombu import Queue
from nameko.events import SERVICE_POOL, EventDispatcher, event_handler
from nameko.messaging import encode_to_headers
from nameko.standalone.events import get_event_exchange

from services.common import clock
from services.common.contracts import SUBSCRIPTIONS, handler_name, queue_name, validate
from services.common.credentials import CREDENTIAL

__all__ = ["SUBSCRIPTIONS", "Dispatcher", "event", "handler_name", "handles", "queue_name"]

log = logging.getLogger(__name__)

REQUEUE_PAUSE_SECONDS = 1.0


def event(**ids) -> dict:
    return {"event_id": str(uuid.uuid4()), "occurred_at": clock.iso(clock.now()), **ids}


class Dispatcher(EventDispatcher):
    """An EventDispatcher that checks a payload against its contract
    (`services.common.contracts`) and declares that event's subscriber queues
    (only that event's: declaring them all on every publish costs CPU) before
    it publishes."""

    def setup(self):
        super().setup()
        source = self.container.service_name
        exchange = get_event_exchange(source)
        self.queues: dict[str, list[Queue]] = {}
        for (src, event_type), subscribers in SUBSCRIPTIONS.items():
            if src != source:
                continue
            self.queues[event_type] = [Queue(
                queue_name(src, event_type, subscriber), exchange=exchange,
                routing_key=event_type, durable=True, auto_delete=False,
            ) for subscriber in subscribers]

    def get_dependency(self, worker_ctx):
        def dispatch(event_type, event_data):
            validate(event_type, event_data)
            self.publisher.publish(
                event_data, exchange=self.exchange, routing_key=event_type,
                extra_headers=encode_to_headers(_shared_context(worker_ctx.context_data)),
                declare=self.queues.get(event_type, ()))

        return dispatch


def _shared_context(context_data: dict) -> dict:
    # A user's token stays out of events: they are stored in durable queues
    # and handled later, by services that sign their own calls.
    return {k: v for k, v in context_data.items() if k != CREDENTIAL}


def handles(source_service: str, event_type: str):
    def decorate(fn):
        if fn.__name__ != handler_name(event_type):
            raise TypeError(f"a handler of {event_type} is named {handler_name(event_type)}")

        @functools.wraps(fn)
        def wrapper(self, payload):
            try:
                return fn(self, payload)
            except Exception:
                log.exception(
                    "handler %s for %s.%s failed; the event goes back to the queue",
                    fn.__name__, source_service, event_type,
                )
                eventlet.sleep(REQUEUE_PAUSE_SECONDS)
                raise

        return event_handler(
            source_service,
            event_type,
            handler_type=SERVICE_POOL,
            reliable_delivery=True,
            requeue_on_error=True,
        )(wrapper)

    return decorate
