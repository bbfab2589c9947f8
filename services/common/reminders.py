"""How far ahead a birthday or company anniversary is announced unless a user
chose otherwise: accounts stores the setting, the scheduler applies it."""

from __future__ import annotations

DEFAULT_BIRTHDAY_LEAD_DAYS = 2
