"""Time zones: every user has one, `Asia/Shanghai` unless he chose another."""

from __future__ import annotations

DEFAULT_TIMEZONE = "Asia/Shanghai"
