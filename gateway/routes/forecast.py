"""Routes of the forecast part of API.md."""

from __future__ import annotations


class ForecastRoutes:
    pass
