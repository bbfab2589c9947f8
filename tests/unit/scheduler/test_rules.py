"""Unit tests of the scheduler's pure rules (no broker, no database)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.scheduler import rules
from services.scheduler.rules import (
    InvalidTransition,
    RuleValidationError,
    can_cancel,
    can_edit,
    can_transition,
    escalation_due,
    is_late,
    is_terminal,
    next_birthday_fire,
    next_occurrence,
    occurrence_date,
    parse_mmdd,
    transition,
    validate_escalate_after_minutes,
    validate_timezone,
)

SH = "Asia/Shanghai"
NY = "America/New_York"
LDN = "Europe/London"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))


# --------------------------------------------------------------------------
# next_birthday_fire: the brief's cases


def test_year_end_birthday_with_lead_two_fires_on_dec_30_local():
    fire = next_birthday_fire("01-01", 2, SH, utc(2024, 12, 1))
    assert fire == local(SH, 2024, 12, 30, 9)
    assert fire == utc(2024, 12, 30, 1)
    assert fire.tzinfo is UTC


def test_year_end_next_fire_is_following_year_once_passed():
    fired = next_birthday_fire("01-01", 2, SH, utc(2024, 12, 1))
    # "strictly after now": asking again at the fire instant gives next year.
    assert next_birthday_fire("01-01", 2, SH, fired) == utc(2025, 12, 30, 1)
    # One second before, it is still this one.
    assert next_birthday_fire("01-01", 2, SH, fired - timedelta(seconds=1)) == fired


def test_year_end_lead_crossing_into_previous_year_from_january():
    # On Jan 1 2025 (after 09:00 local) the reminder for Jan 1 2026 comes
    # on Dec 30 2025.
    assert next_birthday_fire("01-01", 2, SH, local(SH, 2025, 1, 1, 12)) == local(
        SH, 2025, 12, 30, 9
    )


def test_dec_31_lead_zero_and_lead_one_across_new_year():
    assert next_birthday_fire("12-31", 0, SH, utc(2024, 12, 31)) == local(SH, 2024, 12, 31, 9)
    # 01-02 with lead 3 fires on Dec 30.
    assert next_birthday_fire("01-02", 3, NY, utc(2025, 6, 1)) == local(NY, 2025, 12, 30, 9)


def test_lead_zero_fires_on_the_day_at_nine_local():
    assert next_birthday_fire("06-15", 0, SH, utc(2025, 6, 1)) == local(SH, 2025, 6, 15, 9)


def test_lead_zero_same_day_before_and_after_nine():
    before = local(SH, 2025, 6, 15, 8, 59)
    after = local(SH, 2025, 6, 15, 9, 0, 1)
    assert next_birthday_fire("06-15", 0, SH, before) == local(SH, 2025, 6, 15, 9)
    assert next_birthday_fire("06-15", 0, SH, after) == local(SH, 2026, 6, 15, 9)


def test_feb_29_in_non_leap_year_falls_on_feb_28():
    assert next_birthday_fire("02-29", 0, SH, utc(2025, 1, 10)) == local(SH, 2025, 2, 28, 9)
    assert next_birthday_fire("02-29", 2, SH, utc(2025, 1, 10)) == local(SH, 2025, 2, 26, 9)


def test_feb_29_in_leap_year_stays_on_feb_29():
    assert next_birthday_fire("02-29", 0, SH, utc(2028, 1, 10)) == local(SH, 2028, 2, 29, 9)
    assert next_birthday_fire("02-29", 2, SH, utc(2028, 1, 10)) == local(SH, 2028, 2, 27, 9)


def test_feb_29_sequence_over_years():
    now = utc(2023, 3, 1)
    fires = []
    for _ in range(6):
        now = next_birthday_fire("02-29", 1, SH, now)
        fires.append(now.astimezone(ZoneInfo(SH)).date())
    assert fires == [
        date(2024, 2, 28),  # leap: Feb 29 - 1
        date(2025, 2, 27),  # Feb 28 - 1
        date(2026, 2, 27),
        date(2027, 2, 27),
        date(2028, 2, 28),
        date(2029, 2, 27),
    ]


def test_lead_crossing_feb_29_in_leap_year():
    # 03-01 with lead 1 is Feb 29 in 2024 and Feb 28 in 2025.
    assert next_birthday_fire("03-01", 1, SH, utc(2024, 1, 1)) == local(SH, 2024, 2, 29, 9)
    assert next_birthday_fire("03-01", 1, SH, utc(2025, 1, 1)) == local(SH, 2025, 2, 28, 9)


def test_two_time_zones_give_different_utc_instants():
    now = utc(2025, 6, 1)
    shanghai = next_birthday_fire("06-15", 0, SH, now)
    new_york = next_birthday_fire("06-15", 0, NY, now)
    assert shanghai == utc(2025, 6, 15, 1)  # 09:00 +08:00
    assert new_york == utc(2025, 6, 15, 13)  # 09:00 EDT (-04:00)
    assert shanghai != new_york


def test_winter_vs_summer_offsets_new_york_and_london():
    assert next_birthday_fire("01-15", 0, NY, utc(2025, 1, 1)) == utc(2025, 1, 15, 14)  # EST
    assert next_birthday_fire("07-15", 0, NY, utc(2025, 1, 1)) == utc(2025, 7, 15, 13)  # EDT
    assert next_birthday_fire("01-15", 0, LDN, utc(2025, 1, 1)) == utc(2025, 1, 15, 9)  # GMT
    assert next_birthday_fire("07-15", 0, LDN, utc(2025, 1, 1)) == utc(2025, 7, 15, 8)  # BST


def test_lead_window_crossing_dst_change_keeps_nine_local():
    # US DST began 2025-03-09; the birthday is after, the reminder before.
    fire = next_birthday_fire("03-12", 5, NY, utc(2025, 1, 1))
    assert fire == utc(2025, 3, 7, 14)  # 09:00 EST
    assert fire.astimezone(ZoneInfo(NY)).time() == time(9)
    # UK DST ended 2025-10-26; reminder on the day after the change.
    fire = next_birthday_fire("10-29", 2, LDN, utc(2025, 10, 1))
    assert fire == utc(2025, 10, 27, 9)  # 09:00 GMT


def test_day_boundary_depends_on_the_users_zone():
    # 2025-06-15 02:00 UTC is 10:00 on the 15th in Shanghai (fire passed)
    # but 22:00 on the 14th in New York (fire still ahead).
    now = utc(2025, 6, 15, 2)
    assert next_birthday_fire("06-15", 0, SH, now) == utc(2026, 6, 15, 1)
    assert next_birthday_fire("06-15", 0, NY, now) == utc(2025, 6, 15, 13)


def test_now_in_another_offset_is_accepted():
    now = local(NY, 2024, 12, 1)
    assert next_birthday_fire("01-01", 2, SH, now) == utc(2024, 12, 30, 1)


def test_defaults_are_the_documented_ones():
    assert rules.DEFAULT_TIMEZONE == SH
    assert rules.DEFAULT_BIRTHDAY_LEAD_DAYS == 2
    assert rules.DEFAULT_ESCALATE_AFTER_MINUTES == 10


# --------------------------------------------------------------------------
# next_birthday_fire against a brute-force day-by-day reference


def _reference_fire(mmdd: str, lead: int, tz: str, now: datetime) -> datetime:
    month, day = (int(x) for x in mmdd.split("-"))
    zone = ZoneInfo(tz)
    start = now.astimezone(zone).date() - timedelta(days=1)
    for offset in range(0, 3 * 366):
        fire_day = start + timedelta(days=offset)
        celebrated = fire_day + timedelta(days=lead)
        matches = (celebrated.month, celebrated.day) == (month, day) or (
            (month, day) == (2, 29)
            and not calendar.isleap(celebrated.year)
            and (celebrated.month, celebrated.day) == (2, 28)
        )
        if matches:
            candidate = datetime.combine(fire_day, time(9), tzinfo=zone).astimezone(UTC)
            if candidate > now:
                return candidate
    raise AssertionError("no reference fire found")


@pytest.mark.parametrize("tz", [SH, NY, LDN])
@pytest.mark.parametrize(
    ("mmdd", "lead"),
    [("01-01", 2), ("02-29", 0), ("02-29", 3), ("03-01", 1), ("12-31", 0), ("03-10", 7)],
)
def test_matches_brute_force_reference(tz, mmdd, lead):
    now = utc(2023, 12, 20, 5, 17)
    end = utc(2025, 3, 15)
    while now < end:
        fire = next_birthday_fire(mmdd, lead, tz, now)
        assert fire > now
        assert fire == _reference_fire(mmdd, lead, tz, now), now
        assert fire.astimezone(ZoneInfo(tz)).time() == time(9)
        now += timedelta(hours=31, minutes=7)


# --------------------------------------------------------------------------
# next_occurrence, occurrence_date, parse_mmdd


def test_occurrence_date():
    assert occurrence_date(2, 29, 2024) == date(2024, 2, 29)
    assert occurrence_date(2, 29, 2100) == date(2100, 2, 28)  # not a leap year
    assert occurrence_date(2, 29, 2000) == date(2000, 2, 29)
    assert occurrence_date(12, 31, 2025) == date(2025, 12, 31)


def test_next_occurrence_includes_today_local():
    assert next_occurrence("06-15", SH, utc(2025, 6, 15, 2)) == date(2025, 6, 15)
    assert next_occurrence("06-15", SH, utc(2025, 6, 15, 17)) == date(2026, 6, 15)
    assert next_occurrence("01-01", SH, utc(2025, 12, 31, 17)) == date(2026, 1, 1)
    # 2025-03-01 00:00 UTC is still Feb 28 (the observed day) in New York.
    assert next_occurrence("02-29", NY, utc(2025, 3, 1)) == date(2025, 2, 28)
    assert next_occurrence("02-29", NY, utc(2025, 3, 1, 6)) == date(2026, 2, 28)
    assert next_occurrence("02-29", SH, utc(2027, 3, 1)) == date(2028, 2, 29)


def test_parse_mmdd():
    assert parse_mmdd("02-29") == (2, 29)
    assert parse_mmdd("12-31") == (12, 31)


@pytest.mark.parametrize(
    "value",
    [
        "13-01",
        "00-10",
        "02-30",
        "04-31",
        "12-32",
        "01-00",
        "1-5",
        "0101",
        "01/01",
        "2024-01-01",
        "",
        " 01-01",
        "ab-cd",
        "１２-０１",  # full-width digits
        "٠١-٠١",  # Arabic-Indic digits
        None,
        101,
    ],
)
def test_invalid_mmdd_is_a_422_value_error(value):
    with pytest.raises(RuleValidationError) as err:
        next_birthday_fire(value, 2, SH, utc(2025, 1, 1))
    assert isinstance(err.value, ValueError)
    assert err.value.http_status == 422
    assert err.value.field == "birthday"
    assert err.value.fields == {"birthday": err.value.message}
    assert "MM-DD" in str(err.value) or "month" in str(err.value) or "day" in str(err.value)


def test_invalid_mmdd_messages_are_specific():
    with pytest.raises(RuleValidationError, match="months are 01-12"):
        parse_mmdd("13-01")
    with pytest.raises(RuleValidationError, match="month 04 has 30 days"):
        parse_mmdd("04-31")
    with pytest.raises(RuleValidationError, match='"MM-DD"'):
        parse_mmdd("1-5")


@pytest.mark.parametrize("lead", [-1, 366, 1.5, True, "2", None])
def test_invalid_lead_days(lead):
    with pytest.raises(RuleValidationError) as err:
        next_birthday_fire("01-01", lead, SH, utc(2025, 1, 1))
    assert err.value.field == "birthday_lead_days"


def test_lead_365_is_allowed():
    fire = next_birthday_fire("01-01", 365, SH, utc(2025, 1, 10))
    assert fire > utc(2025, 1, 10)
    assert fire.astimezone(ZoneInfo(SH)).time() == time(9)


@pytest.mark.parametrize(
    "tz", ["Mars/Olympus", "", "  ", "America", "../etc/passwd", "/etc/localtime", None, 8]
)
def test_invalid_timezone(tz):
    with pytest.raises(RuleValidationError) as err:
        next_birthday_fire("01-01", 2, tz, utc(2025, 1, 1))
    assert err.value.field == "timezone"
    with pytest.raises(RuleValidationError):
        validate_timezone(tz)


@pytest.mark.parametrize("tz", [SH, NY, LDN, "UTC", "Asia/Hong_Kong"])
def test_valid_timezones(tz):
    assert validate_timezone(tz) == tz


def test_naive_now_is_refused():
    with pytest.raises(RuleValidationError, match="timezone-aware"):
        next_birthday_fire("01-01", 2, SH, datetime(2025, 1, 1))


# --------------------------------------------------------------------------
# escalation and lateness


def test_escalation_due():
    fired = utc(2025, 5, 1, 8)
    assert escalation_due(fired, 10) == utc(2025, 5, 1, 8, 10)
    assert escalation_due(fired, 0.5) == utc(2025, 5, 1, 8, 0, 30)
    assert escalation_due(fired, 1.25) == utc(2025, 5, 1, 8, 1, 15)
    assert escalation_due(fired, Decimal("0.1")) == fired + timedelta(seconds=6)


@pytest.mark.parametrize("minutes", [0, 0.0, Decimal("0")])
def test_escalation_zero_turns_sms_off(minutes):
    assert escalation_due(utc(2025, 5, 1), minutes) is None


@pytest.mark.parametrize(
    "minutes", [-1, -0.01, float("nan"), float("inf"), True, "10", None, 7 * 24 * 60 + 1]
)
def test_escalation_invalid_minutes(minutes):
    with pytest.raises(RuleValidationError) as err:
        escalation_due(utc(2025, 5, 1), minutes)
    assert err.value.field == "escalate_after_minutes"


def test_escalation_negative_message():
    with pytest.raises(RuleValidationError, match="cannot be negative"):
        validate_escalate_after_minutes(-5)


def test_escalation_naive_fired_at_refused():
    with pytest.raises(RuleValidationError):
        escalation_due(datetime(2025, 5, 1), 10)


def test_is_late():
    due = utc(2025, 5, 1, 9)
    assert is_late(due, due) is False
    assert is_late(due, due - timedelta(seconds=5)) is False  # early
    assert is_late(due, due + timedelta(seconds=59)) is False
    assert is_late(due, due + timedelta(seconds=60)) is False  # at the limit
    assert is_late(due, due + timedelta(seconds=60, microseconds=1)) is True
    assert is_late(due, due + timedelta(seconds=10), grace_seconds=5) is True
    assert is_late(due, due + timedelta(seconds=10), grace_seconds=0.5) is True
    assert is_late(due, local(SH, 2025, 5, 1, 17, 0, 30)) is False  # same instant + 30 s


def test_is_late_rejects_bad_input():
    due = utc(2025, 5, 1, 9)
    with pytest.raises(RuleValidationError):
        is_late(due, due, grace_seconds=-1)
    with pytest.raises(RuleValidationError):
        is_late(datetime(2025, 5, 1, 9), due)


# --------------------------------------------------------------------------
# status transitions


ALL = ["pending", "fired", "acknowledged", "cancelled"]
ALLOWED = {("pending", "fired"), ("fired", "acknowledged"), ("pending", "cancelled")}


@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("target", ALL)
def test_transition_table(current, target):
    allowed = (current, target) in ALLOWED
    assert can_transition(current, target) is allowed
    if allowed:
        assert transition(current, target) == target
    else:
        with pytest.raises(InvalidTransition) as err:
            transition(current, target)
        assert err.value.http_status == 409
        assert (err.value.current, err.value.target) == (current, target)


def test_terminal_statuses():
    assert [s for s in ALL if is_terminal(s)] == ["acknowledged", "cancelled"]


def test_unknown_status_is_refused():
    with pytest.raises(RuleValidationError):
        can_transition("done", "fired")
    with pytest.raises(RuleValidationError):
        can_transition("pending", "done")
    with pytest.raises(RuleValidationError):
        can_edit({"status": "weird"})
    with pytest.raises(RuleValidationError):
        can_edit({})


@dataclass
class _Reminder:
    status: str


@pytest.mark.parametrize("status", ALL)
def test_can_edit_and_cancel_only_while_pending(status):
    expected = status == "pending"
    assert can_edit({"status": status, "title": "拜访客户"}) is expected
    assert can_edit(_Reminder(status)) is expected
    assert can_edit(status) is expected
    assert can_cancel({"status": status}) is expected
