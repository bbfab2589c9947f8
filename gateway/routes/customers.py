"""Routes of the customers part of API.md."""

from __future__ import annotations


class CustomersRoutes:
    pass
