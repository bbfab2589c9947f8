"""Every index of the customers database, created at start.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from services.common.mongo import (
    insert_new,
)
from services.customers.storage.handovers import ensure_handover_indexes
from services.customers.storage.paging import _scoped_indexes
from services.customers.storage.reads import ensure_read_indexes

# Earlier builds split the index into 8 collections (a lookup by _id was a
# scan on FerretDB then); ensure_indexes folds them into `name_terms`.
OLD_TERM_SHARDS = [f"name_terms_{i}" for i in range(8)]


# The customer list's scopes (an owner, a team, the pool, everyone), each
# alone, by stage and by name grams, newest first: each list and its count
# reads one index range (listing.list_filter), the page and its total cost the
# same at any size. The grams of one name are ~10 keys per index.
CUSTOMER_INDEXES = {
    "owner": [("owner_id", ASCENDING), ("_id", DESCENDING)],
    "owner_stage": [("owner_id", ASCENDING), ("stage", ASCENDING), ("_id", DESCENDING)],
    "owner_grams": [("owner_id", ASCENDING), ("name_grams", ASCENDING), ("_id", DESCENDING)],
    "team": [("team_id", ASCENDING), ("_id", DESCENDING)],
    "team_stage": [("team_id", ASCENDING), ("stage", ASCENDING), ("_id", DESCENDING)],
    "team_grams": [("team_id", ASCENDING), ("name_grams", ASCENDING), ("_id", DESCENDING)],
    "status": [("status", ASCENDING), ("_id", DESCENDING)],
    "status_stage": [("status", ASCENDING), ("stage", ASCENDING), ("_id", DESCENDING)],
    "stage": [("stage", ASCENDING), ("_id", DESCENDING)],
    "grams": [("name_grams", ASCENDING), ("_id", DESCENDING)],
    "phones": [("phones", ASCENDING)],
    "credit_code": [("credit_code", ASCENDING)],
    "referred_by": [("referred_by", ASCENDING)],
    # the integrity report's "entered by him"
    "created_by": [("created_by.id", ASCENDING)],
}


# Replaced by "grams" (ordered by _id too, so a page after a cursor is one range).
OLD_CUSTOMER_INDEXES = ("name_grams",)


def ensure_indexes(db: Database) -> None:
    db.audit.create_index([("customer_id", ASCENDING), ("seq", ASCENDING)], unique=True,
                          name="customer_seq_unique")
    db.name_claims.create_index([("stream", ASCENDING), ("seq", ASCENDING)], name="stream_seq")
    for name, keys in CUSTOMER_INDEXES.items():
        db.customers.create_index(keys, name=name)
    for name in set(OLD_CUSTOMER_INDEXES) & set(db.customers.index_information()):
        db.customers.drop_index(name)
    db.followups.create_index([("customer_id", ASCENDING), ("_id", DESCENDING)],
                              name="customer_followups")
    _fold_old_term_shards(db)
    _record_indexes(db)
    ensure_handover_indexes(db)
    ensure_read_indexes(db)


def _fold_old_term_shards(db: Database) -> None:
    for name in set(OLD_TERM_SHARDS) & set(db.list_collection_names()):
        batch = []
        for doc in db[name].find():
            batch.append(doc)
            if len(batch) >= 1000:
                insert_new(db.name_terms, batch)
                batch = []
        insert_new(db.name_terms, batch)
        db.drop_collection(name)


def _record_indexes(db: Database) -> None:
    """Amendments, alarms, disputes, stage changes, abandonments, locks."""
    # customers.referred_by is indexed by storage.ensure_indexes
    db.amendments.create_index([("customer_id", ASCENDING), ("_id", ASCENDING)],
                               name="amendment_customer")
    db.amendments.create_index([("status", ASCENDING), ("team_id", ASCENDING)],
                               name="amendment_status_team")
    _scoped_indexes(db.amendments, "amendment", ("owner_id", "team_id"))
    _scoped_indexes(db.alarms, "alarm", ("owner_id", "team_id"))
    _scoped_indexes(db.disputes, "dispute", ("owner_id", "team_id", "claimant_id",
                                             "claimant_team_id"))
    db.alarms.create_index([("owner_id", ASCENDING), ("verified", ASCENDING)],
                           name="alarm_owner_verified")
    # `open_for` is the customer id while an alarm is open, the alarm's own
    # id afterwards: at most one open alarm per customer, without a partial
    # index (not in the FerretDB subset)
    db.alarms.create_index([("open_for", ASCENDING)], unique=True, name="alarm_one_open")
    db.alarms.create_index([("customer_id", ASCENDING), ("status", ASCENDING)],
                           name="alarm_customer")
    db.alarms.create_index([("status", ASCENDING), ("team_id", ASCENDING)], name="alarm_status")
    db.disputes.create_index([("open_key", ASCENDING)], unique=True, name="dispute_one_open")
    db.disputes.create_index([("status", ASCENDING), ("team_id", ASCENDING)],
                             name="dispute_status")
    db.stage_changes.create_index([("customer_id", ASCENDING), ("at", ASCENDING)],
                                  name="stage_change_customer")
    db.abandonments.create_index([("owner_id", ASCENDING)], name="abandonment_owner")
