"""The MongoDB dependency: one client per service container, closed on stop.

The database is named after the service (with the configured prefix), so no
service can reach another's data by accident.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from nameko.extensions import DependencyProvider
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.common import config

log = logging.getLogger(__name__)


def make_client(uri: str | None = None) -> MongoClient:
    return MongoClient(
        uri or config.get("MONGO_URI", "mongodb://127.0.0.1:27017/"),
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        connect=False,
        appname="salescrm",
    )


def update_unless_duplicate(coll: Collection, query: dict, update: dict) -> bool:
    """update_one; False, not an error, when a unique index refuses it
    (DuplicateKeyError on MongoDB, and on FerretDB as scripts/infra.sh
    patches it)."""
    try:
        coll.update_one(query, update)
    except DuplicateKeyError:
        return False
    return True


def count(coll: Collection, flt: dict) -> int:
    """The number of documents matching `flt`: an index count (on FerretDB
    here an equality filter's count is one row of its index's count table,
    scripts/ferretdb/crm_index.go). No filter is the collection's own count
    (estimated_document_count): MongoDB answers count_documents({}) by
    reading the whole collection."""
    return coll.count_documents(flt) if flt else coll.estimated_document_count()


def page(coll: Collection, flt: dict, sort: list[tuple[str, int]], skip: int,
         limit: int, projection=None) -> tuple[list[dict], bool]:
    """One page of `flt` in `sort` order, and whether more follow (one
    document more is read to know)."""
    docs = list(coll.find(flt, projection).sort(sort).skip(skip).limit(limit + 1))
    return docs[:limit], len(docs) > limit


def after(flt: dict, sort: list[tuple[str, int]], last: dict) -> dict:
    """`flt` narrowed to what comes after `last` (a document, or its sort
    values) in `sort` order, which ends with _id. One sort field is one range
    on it; more are an $or of ranges (MongoDB and FerretDB here read each
    through the index and merge them in order)."""
    branches = []
    for i, (field, direction) in enumerate(sort):
        cond = {f: last[f] for f, _ in sort[:i]}
        cond[field] = {"$gt" if direction == 1 else "$lt": last[field]}
        branches.append(cond)
    if len(branches) == 1:
        (field, cond), = branches[0].items()
        if field not in flt:
            return {**flt, field: cond}
        return {"$and": [flt, branches[0]]}
    if "$or" in flt:
        raise ValueError("a filter with $or pages by one sort field only")
    return {**flt, "$or": branches}


# The most ids one query lists: FerretDB (scripts/ferretdb) pushes a list of
# this many down to its _id index.
IDS_PER_QUERY = 1000


def find_by_ids(coll: Collection, ids: list, projection=None) -> Iterator[dict]:
    """The documents of `ids` that exist, a bounded `_id: {$in}` at a time."""
    for start in range(0, len(ids), IDS_PER_QUERY):
        yield from coll.find({"_id": {"$in": ids[start:start + IDS_PER_QUERY]}}, projection)


def delete_by_ids(coll: Collection, ids: list, **also) -> None:
    """Delete the documents of `ids` (that also match `also`), a bounded
    `_id: {$in}` at a time."""
    for start in range(0, len(ids), IDS_PER_QUERY):
        coll.delete_many({"_id": {"$in": ids[start:start + IDS_PER_QUERY]}, **also})


def insert_new(coll: Collection, docs: list[dict]) -> list[int]:
    """Insert all of `docs` whose `_id` is free, in one unordered insert;
    returns the positions of those refused as duplicates. Any other write
    error is raised (and what got in stays in)."""
    if not docs:
        return []
    try:
        coll.insert_many(docs, ordered=False)
        return []
    except BulkWriteError as err:
        errors = err.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        return sorted(e["index"] for e in errors)


class Mongo(DependencyProvider):
    """Gives each worker the service's `Database`.

    `setup_db` (e.g. a storage module's `ensure_indexes`) runs once at start,
    before any entrypoint is served, so unique indexes exist before the first
    write relies on them.
    """

    def __init__(self, setup_db: Callable[[Database], None] | None = None):
        self.setup_db = setup_db
        self.client: MongoClient | None = None
        self.db: Database | None = None

    def setup(self):
        self.client = make_client()
        self.db = self.client[config.db_name(self.container.service_name)]

    def start(self):
        if self.setup_db:
            self.setup_db(self.db)

    def stop(self):
        self._close()

    def kill(self):
        self._close()

    def _close(self):
        if self.client is not None:
            self.client.close()
            self.client = None

    def get_dependency(self, worker_ctx) -> Database:
        return self.db
