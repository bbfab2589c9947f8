"""Routes of the knowledge part of API.md."""

from __future__ import annotations


class KnowledgeRoutes:
    pass
