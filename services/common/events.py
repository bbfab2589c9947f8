"""Event conventions shared by every service.

- Every payload carries `event_id` (uuid4), `occurred_at` (UTC ISO 8601) and
  the ids it talks about: `event()` builds that envelope.
- A handler that fails is retried, never acked away: `handles()` wraps
  nameko's `event_handler` with `requeue_on_error=True` and a short pause
  before the message goes back, so a failing handler does not spin the CPU.
- The queue of every subscriber is durable (`reliable_delivery`), so events
  published while the subscriber is down wait for it.
"""

from __future__ import annotations

import functools
import logging
import uuid

import eventlet
from nameko.events import SERVICE_POOL, event_handler

from services.common import clock

log = logging.getLogger(__name__)

REQUEUE_PAUSE_SECONDS = 1.0


def event(**ids) -> dict:
    return {"event_id": str(uuid.uuid4()), "occurred_at": clock.iso(clock.now()), **ids}


def handles(source_service: str, event_type: str):
    def decorate(fn):
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
