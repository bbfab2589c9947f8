"""Pure scheduling rules of the scheduler service (no I/O, no clock).

Everything here takes "now" as an argument, so callers pass the service's
injectable clock and tests never sleep.

* Birthday / anniversary reminders: :func:`next_birthday_fire` gives the UTC
  instant of the next reminder, at 09:00 local time in the user's time zone,
  ``lead_days`` before the customer's ``MM-DD`` (Feb 29 is celebrated on
  Feb 28 in non-leap years).
* SMS escalation: :func:`escalation_due`.
* Reminder life cycle: :data:`TRANSITIONS`, :func:`can_transition`,
  :func:`transition`, :func:`can_edit`.
* Timer health: :func:`is_late`.

Errors: :class:`RuleValidationError` (a ``ValueError``) means invalid input
and maps to HTTP 422 (``field`` names the offending field);
:class:`InvalidTransition` means the reminder is not in a state that allows
the operation and maps to HTTP 409.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.common import escalation
from services.common.escalation import DEFAULT_ESCALATE_AFTER_MINUTES, MAX_ESCALATE_AFTER_MINUTES
from services.common.reminders import DEFAULT_BIRTHDAY_LEAD_DAYS
from services.common.timezones import DEFAULT_TIMEZONE

__all__ = [
    "ACKNOWLEDGED",
    "CANCELLED",
    "DEFAULT_BIRTHDAY_LEAD_DAYS",
    "DEFAULT_ESCALATE_AFTER_MINUTES",
    "DEFAULT_TIMEZONE",
    "FIRE_TIME",
    "FIRED",
    "MAX_ESCALATE_AFTER_MINUTES",
    "MAX_LEAD_DAYS",
    "PENDING",
    "STATUSES",
    "TRANSITIONS",
    "InvalidTransition",
    "RuleError",
    "RuleValidationError",
    "birthday_fire_in",
    "can_cancel",
    "can_edit",
    "can_transition",
    "escalation_due",
    "is_late",
    "is_terminal",
    "next_birthday_fire",
    "next_occurrence",
    "occurrence_date",
    "parse_mmdd",
    "transition",
    "upcoming_birthday",
    "validate_escalate_after_minutes",
    "validate_lead_days",
    "validate_timezone",
]

#: Local wall-clock time at which birthday / anniversary reminders fire.
FIRE_TIME = time(9, 0)
#: A reminder more than a year ahead of the date it announces makes no sense.
MAX_LEAD_DAYS = 365


# --------------------------------------------------------------------------
# errors


class RuleError(Exception):
    """Base of the errors raised by the scheduling rules."""

    code = "rule_error"
    http_status = 400


class RuleValidationError(RuleError, ValueError):
    """Invalid input (HTTP 422). ``field`` names the offending field."""

    code = "invalid_field"
    http_status = 422

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message

    @property
    def fields(self) -> dict[str, str]:
        """The ``{"name": "why"}`` mapping of the API's 422 body."""
        return {self.field: self.message}


class InvalidTransition(RuleError):
    """The reminder's status does not allow the operation (HTTP 409)."""

    code = "invalid_status"
    http_status = 409

    def __init__(self, current: str, target: str):
        super().__init__(f"a reminder cannot go from {current!r} to {target!r}")
        self.current = current
        self.target = target


# --------------------------------------------------------------------------
# small validators


def _require_aware(value: object, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise RuleValidationError(field, f"{field} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive datetime is ambiguous (local? UTC?): refuse to guess.
        raise RuleValidationError(
            field, f"{field} must be timezone-aware (UTC), got a naive datetime"
        )
    return value


def _number(value: object, field: str) -> float:
    """A finite real number; bools and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise RuleValidationError(field, f"{field} must be a number")
    result = float(value)
    if not math.isfinite(result):
        raise RuleValidationError(field, f"{field} must be a finite number")
    return result


def validate_timezone(name: object) -> str:
    """Return ``name`` if it is an IANA time zone (e.g. ``Asia/Shanghai``).

    Raises :class:`RuleValidationError` (field ``timezone``) otherwise. Names
    are case-sensitive, as in the IANA database.
    """
    if not isinstance(name, str) or not name.strip():
        raise RuleValidationError("timezone", "timezone must be an IANA name such as Asia/Shanghai")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ZoneInfoNotFoundError: unknown key; ValueError: malformed key
        # ("", "../x", "/abs") or a file that is not TZif; OSError: a
        # directory such as "America".
        raise RuleValidationError(
            "timezone",
            f"unknown time zone {name!r}; use an IANA name such as "
            "Asia/Shanghai or America/New_York",
        ) from None
    return name


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(validate_timezone(name))


_MMDD = re.compile(r"([0-9]{2})-([0-9]{2})")


def parse_mmdd(value: object, field: str = "birthday") -> tuple[int, int]:
    """Parse ``"MM-DD"`` into ``(month, day)``; ``"02-29"`` is valid.

    Only ASCII digits, exactly two per part, are accepted.
    """
    if not isinstance(value, str):
        raise RuleValidationError(field, f'{field} must be a string "MM-DD"')
    match = _MMDD.fullmatch(value)
    if match is None:
        raise RuleValidationError(field, f'{field} must be "MM-DD" (e.g. "03-15"), got {value!r}')
    month, day = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise RuleValidationError(field, f"{field} has month {month:02d}; months are 01-12")
    # 2000 is a leap year, so Feb 29 is accepted here.
    last = calendar.monthrange(2000, month)[1]
    if not 1 <= day <= last:
        raise RuleValidationError(
            field, f"{field} has day {day:02d}; month {month:02d} has {last} days"
        )
    return month, day


def validate_lead_days(value: object) -> int:
    """Whole days, 0..:data:`MAX_LEAD_DAYS`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleValidationError("birthday_lead_days", "birthday_lead_days must be a whole number")
    if not 0 <= value <= MAX_LEAD_DAYS:
        raise RuleValidationError(
            "birthday_lead_days",
            f"birthday_lead_days must be between 0 and {MAX_LEAD_DAYS}",
        )
    return value


def validate_escalate_after_minutes(value: object) -> float:
    """Minutes before an unacknowledged reminder escalates to SMS.

    Fractional values are allowed; 0 turns SMS off; negative values, NaN,
    infinities and more than :data:`MAX_ESCALATE_AFTER_MINUTES` are refused.
    """
    minutes = _number(value, "escalate_after_minutes")
    if minutes < 0:
        raise RuleValidationError(
            "escalate_after_minutes",
            "escalate_after_minutes cannot be negative (0 turns SMS off)",
        )
    if minutes > MAX_ESCALATE_AFTER_MINUTES:
        raise RuleValidationError(
            "escalate_after_minutes",
            f"escalate_after_minutes cannot exceed {MAX_ESCALATE_AFTER_MINUTES}",
        )
    return minutes


# --------------------------------------------------------------------------
# birthdays and anniversaries


def occurrence_date(month: int, day: int, year: int) -> date:
    """The date on which ``month``-``day`` is observed in ``year``.

    Feb 29 falls on Feb 28 in non-leap years.
    """
    if month == 2 and day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, month, day)


def _fire_instant(month: int, day: int, year: int, lead_days: int, zone: ZoneInfo) -> datetime:
    """09:00 local, ``lead_days`` before the occurrence in ``year``, in UTC.

    The subtraction is done on local calendar dates and the wall-clock time
    is attached afterwards, so a DST change inside the lead window does not
    shift the hour. 09:00 is never inside a DST gap or fold in the IANA
    database; should a zone ever have one, the UTC round trip normalizes it.
    """
    fire_date = occurrence_date(month, day, year) - timedelta(days=lead_days)
    local = datetime.combine(fire_date, FIRE_TIME, tzinfo=zone)
    return local.astimezone(UTC)


def next_birthday_fire(birthday_mmdd: str, lead_days: int, tz: str, now_utc: datetime) -> datetime:
    """The next birthday (or anniversary) reminder instant, UTC, tz-aware.

    That is 09:00 local time in ``tz``, ``lead_days`` days before an
    occurrence of ``birthday_mmdd``, the earliest such instant strictly
    after ``now_utc``. Calling it again with ``now_utc`` set to the returned
    instant gives the following year's reminder, so a recurring reminder
    never fires twice for one occurrence.

    Example: ``"01-01"``, lead 2, Asia/Shanghai fires on Dec 30 09:00 +08:00
    (01:00 UTC). If the reminder instant for this year's occurrence has
    already passed (e.g. the customer was entered the day before his
    birthday), the result is next year's; :func:`upcoming_birthday` gives
    this year's occurrence in that case.

    Raises :class:`RuleValidationError` for a malformed ``MM-DD``, lead
    days out of range, an unknown time zone or a naive ``now_utc``.
    """
    month, day = parse_mmdd(birthday_mmdd)
    lead = validate_lead_days(lead_days)
    zone = _zone(tz)
    now = _require_aware(now_utc, "now_utc")
    local_year = now.astimezone(zone).year
    # The reminder for year Y's occurrence lies in year Y or Y-1 (lead is at
    # most 365 days), so starting one year back and going two ahead always
    # finds it.
    for year in range(local_year - 1, local_year + 3):
        fire = _fire_instant(month, day, year, lead, zone)
        if fire > now:
            return fire
    raise AssertionError("unreachable: a fire instant exists every year")


def next_occurrence(birthday_mmdd: str, tz: str, now_utc: datetime) -> date:
    """The local date of the next occurrence of ``birthday_mmdd`` in ``tz``,
    today (local) included. Feb 29 maps to Feb 28 in non-leap years."""
    month, day = parse_mmdd(birthday_mmdd)
    zone = _zone(tz)
    today = _require_aware(now_utc, "now_utc").astimezone(zone).date()
    for year in (today.year, today.year + 1):
        when = occurrence_date(month, day, year)
        if when >= today:
            return when
    raise AssertionError("unreachable: an occurrence exists every year")


def birthday_fire_in(birthday_mmdd: str, lead_days: int, tz: str, year: int) -> datetime:
    """The reminder instant (UTC) announcing the occurrence of
    ``birthday_mmdd`` in ``year``: 09:00 in ``tz``, ``lead_days`` before it."""
    month, day = parse_mmdd(birthday_mmdd)
    return _fire_instant(month, day, year, validate_lead_days(lead_days), _zone(tz))


def upcoming_birthday(birthday_mmdd: str, lead_days: int, tz: str,
                      now_utc: datetime) -> tuple[date, datetime]:
    """The occurrence a new series announces first and its planned reminder
    instant: the next occurrence, today (local) included, even when that
    instant has already passed (a customer entered inside the lead window;
    the caller then reminds at once rather than skip to next year)."""
    occurrence = next_occurrence(birthday_mmdd, tz, now_utc)
    return occurrence, birthday_fire_in(birthday_mmdd, lead_days, tz, occurrence.year)


# --------------------------------------------------------------------------
# SMS escalation and lateness


def escalation_due(fired_at: datetime, minutes: float) -> datetime | None:
    """When an unacknowledged reminder shown at ``fired_at`` escalates to SMS.

    ``minutes`` may be fractional (0.5 = 30 s); 0 means "no SMS" and gives
    None; a negative value raises :class:`RuleValidationError`.
    """
    start = _require_aware(fired_at, "fired_at")
    return escalation.escalation_due(start, validate_escalate_after_minutes(minutes))


def is_late(due_at: datetime, fired_at: datetime, grace_seconds: float = 60) -> bool:
    """True when a reminder fired more than ``grace_seconds`` after it was due.

    Firing early or exactly at the grace limit is not late.
    """
    due = _require_aware(due_at, "due_at")
    fired = _require_aware(fired_at, "fired_at")
    grace = _number(grace_seconds, "grace_seconds")
    if grace < 0:
        raise RuleValidationError("grace_seconds", "grace_seconds cannot be negative")
    return (fired - due).total_seconds() > grace


# --------------------------------------------------------------------------
# reminder status life cycle

PENDING = "pending"
FIRED = "fired"
ACKNOWLEDGED = "acknowledged"
CANCELLED = "cancelled"
STATUSES = (PENDING, FIRED, ACKNOWLEDGED, CANCELLED)

#: Allowed status changes: pending -> fired -> acknowledged, pending ->
#: cancelled. Acknowledged and cancelled are terminal.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    PENDING: frozenset({FIRED, CANCELLED}),
    FIRED: frozenset({ACKNOWLEDGED}),
    ACKNOWLEDGED: frozenset(),
    CANCELLED: frozenset(),
}


def _check_status(status: object, field: str = "status") -> str:
    if status not in TRANSITIONS:
        raise RuleValidationError(
            field, f"unknown reminder status {status!r}; one of {', '.join(STATUSES)}"
        )
    return status  # type: ignore[return-value]


def can_transition(current: str, target: str) -> bool:
    """Whether ``current`` -> ``target`` is allowed (unknown statuses raise).

    A same-status "change" is not a transition: idempotent handlers should
    treat ``current == target`` as already done before calling this.
    """
    return _check_status(target, "target") in TRANSITIONS[_check_status(current)]


def transition(current: str, target: str) -> str:
    """Return ``target`` if allowed, else raise :class:`InvalidTransition`.

    Storage should apply it as a compare-and-set
    (``find_one_and_update({"status": current}, {"$set": {"status": target}})``).
    """
    if not can_transition(current, target):
        raise InvalidTransition(current, target)
    return target


def is_terminal(status: str) -> bool:
    return not TRANSITIONS[_check_status(status)]


def _status_of(reminder: object) -> str:
    if isinstance(reminder, str):
        status = reminder
    elif isinstance(reminder, Mapping):
        status = reminder.get("status")
    else:
        status = getattr(reminder, "status", None)
    return _check_status(status)


def can_edit(reminder: object) -> bool:
    """A reminder (mapping, object with ``.status``, or a status string) may
    be edited (PATCH) only while it is pending."""
    return _status_of(reminder) == PENDING


def can_cancel(reminder: object) -> bool:
    """DELETE cancels a reminder, which is allowed only while pending."""
    return can_transition(_status_of(reminder), CANCELLED)
