"""The one clock: every "now" in the services comes from here.

Tests swap it (`set_clock`) instead of sleeping; production reads the wall
clock in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nameko.extensions import DependencyProvider


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, at: datetime):
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, **delta) -> datetime:
        self._at += timedelta(**delta)
        return self._at


_clock: SystemClock | FrozenClock = SystemClock()


def set_clock(clock) -> None:
    global _clock
    _clock = clock


def now() -> datetime:
    return _clock.now()


def iso(dt: datetime) -> str:
    """UTC ISO 8601 with offset, second precision kept to microseconds."""
    return dt.astimezone(UTC).isoformat()


class Clock(DependencyProvider):
    """Injects the process clock into service workers."""

    def get_dependency(self, worker_ctx):
        return _clock
