"""Routes of the schedule part of API.md."""

from __future__ import annotations


class ScheduleRoutes:
    pass
