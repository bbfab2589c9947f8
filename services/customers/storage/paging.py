"""Paging and chunking helpers the other storage modules share.
"""

from __future__ import annotations

from collections.abc import Iterator

from pymongo import ASCENDING

from services.common.mongo import (
    after,
    count,
    page,
)

IN_CHUNK = 1000  # ids per `$in`: keeps each query document small


def _scoped_indexes(coll, prefix: str, scopes: tuple[str, ...]) -> None:
    """A list of `coll` for each scope (its owner, a team, ...), by status or
    not, oldest first; and everyone's by status: every list of the records
    and its count reads one index range."""
    for field in scopes:
        coll.create_index([(field, ASCENDING), ("status", ASCENDING), ("_id", ASCENDING)],
                          name=f"{prefix}_{field}_status")
    coll.create_index([("status", ASCENDING), ("_id", ASCENDING)], name=f"{prefix}_status_new")


OLDEST_FIRST = [("_id", ASCENDING)]


def _page(coll, query: dict, skip: int, limit: int,
          after_id: str | None = None) -> tuple[list[dict], int, bool]:
    """A page of `query`, oldest first (after `after_id`), its total, and
    whether more follow."""
    total = count(coll, query)
    if after_id is not None:
        query = after(query, OLDEST_FIRST, {"_id": after_id})
    docs, more = page(coll, query, OLDEST_FIRST, skip, limit)
    return docs, total, more


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(ids), IN_CHUNK):
        yield ids[i:i + IN_CHUNK]
