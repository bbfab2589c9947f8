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
