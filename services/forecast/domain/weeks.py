"""The week key of the trend snapshots.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo

from services.forecast.domain.backtest import _zone
from services.forecast.domain.errors import DEFAULT_TZ, ForecastError

# --------------------------------------------------------------------------
# weekly snapshots


def week_start(dt: datetime, tz: str | tzinfo = DEFAULT_TZ) -> datetime:
    """Monday 00:00 of the ISO week containing ``dt``, in ``tz`` (aware, in ``tz``).

    A naive ``dt`` is UTC (as stored)."""
    if not isinstance(dt, datetime):
        raise ForecastError("must be a datetime", "dt")
    zone = _zone(tz)
    local = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    return datetime.combine(monday, time(0), tzinfo=zone)


def week_key(dt: datetime, tz: str | tzinfo = DEFAULT_TZ) -> str:
    """The ISO week of ``dt`` in ``tz`` as ``"2024-W05"`` (snapshot key)."""
    year, week, _ = week_start(dt, tz).date().isocalendar()
    return f"{year:04d}-W{week:02d}"
