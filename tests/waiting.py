"""The one way tests wait for something that happens in another worker,
process or service: poll a predicate until it is truthy or time runs out."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 20.0, what: str = "condition", interval: float = 0.05):
    """The predicate's first truthy value; AssertionError after `timeout` s.
    `time.sleep` yields to other green threads where eventlet patched it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
