"""Each service instance's copy of the search index (engine.py says why).

Loaded from ``kb_docs`` when the container starts, then kept current:
- this instance's own writes are applied at once (read-your-writes);
- every second :meth:`Replica.follow` compares ``kb_stats.generation`` with
  what it has applied and replays the missing writes from the ``kb_feed``
  ring; when it fell more than half a ring behind, or a bulk load jumped the
  generation, it reloads everything into a new engine and swaps it in.
Rows carry a ``rev``, so applying one twice or out of order is harmless.
"""

from __future__ import annotations

import logging
import time

from eventlet import tpool
from nameko.extensions import DependencyProvider

from services.common import config
from services.common.mongo import make_client
from services.knowledge import storage
from services.knowledge.engine import Engine

log = logging.getLogger(__name__)

#: How long a generation may stay without its feed slot (a writer died between
#: counting its write and storing it) before the whole index is reloaded.
STUCK_SECONDS = 30.0


class Replica:
    def __init__(self) -> None:
        self.engine = Engine()
        self.generation = 0
        self._stuck_since: float | None = None
        self._reloading = False

    def reload(self, db) -> None:
        self._reloading = True
        try:
            generation = int(storage.index_state(db).get("generation", 0))
            started = time.monotonic()
            engine = Engine()
            for batch in storage.index_rows(db):
                # pure CPU: in a real thread, so this instance keeps answering
                tpool.execute(engine.bulk, batch)
            tpool.execute(engine.finish)
            self.engine, self.generation, self._stuck_since = engine, generation, None
            log.info("knowledge index loaded: %d entries, generation %d, %.1f s",
                     len(engine), generation, time.monotonic() - started)
        finally:
            self._reloading = False

    def apply_local(self, row) -> None:
        self.engine.apply(row)

    def follow(self, db) -> None:
        if self._reloading:
            return
        target = int(storage.index_state(db).get("generation", 0))
        if target == self.generation:
            return
        if target < self.generation or target - self.generation > storage.RING // 2:
            self.reload(db)
            return
        slots = storage.feed_slots(db)
        for gen in range(self.generation + 1, target + 1):
            slot = slots.get(gen % storage.RING)
            if slot is None or slot["gen"] < gen:  # counted, not stored yet
                now = time.monotonic()
                if self._stuck_since is None:
                    self._stuck_since = now
                elif now - self._stuck_since > STUCK_SECONDS:
                    self.reload(db)
                return
            if slot["gen"] > gen:  # overwritten: we fell a whole ring behind
                self.reload(db)
                return
            self.engine.apply(storage.decode_row(slot["row"]))
            self.generation = gen
            self._stuck_since = None

    def status(self, db) -> dict:
        return {**self.engine.status(),
                "generation": int(storage.index_state(db).get("generation", 0)),
                "loaded_generation": self.generation}


class SearchIndex(DependencyProvider):
    """Gives workers the container's :class:`Replica`, loaded before the
    first request is served."""

    def setup(self):
        self.replica = Replica()

    def start(self):
        client = make_client()
        try:
            self.replica.reload(client[config.db_name(self.container.service_name)])
        finally:
            client.close()

    def get_dependency(self, worker_ctx) -> Replica:
        return self.replica
