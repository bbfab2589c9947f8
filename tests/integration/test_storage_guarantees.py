"""What the services rely on from MongoDB, checked against the server they
actually run on: a conditional find_one_and_update has exactly one winner,
and a unique index refuses the second insert."""

import eventlet
import pytest
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError


@pytest.fixture
def coll(mongo_client, service_config):
    db = mongo_client[service_config["MONGO_DB_PREFIX"] + "guarantees"]
    yield db.items
    mongo_client.drop_database(db.name)


def test_conditional_find_one_and_update_has_one_winner(coll):
    losers_seen = 0
    for trial in range(20):
        coll.insert_one({"_id": trial, "status": "pool", "owner": None})
        winners = []

        def claim(i, trial=trial, winners=winners):
            doc = coll.find_one_and_update(
                {"_id": trial, "status": "pool"},
                {"$set": {"status": "active", "owner": i}},
                return_document=ReturnDocument.AFTER)
            if doc is not None:
                winners.append(i)

        pool = eventlet.GreenPool(10)
        for i in range(10):
            pool.spawn(claim, i)
        pool.waitall()
        assert len(winners) == 1, f"trial {trial}: {len(winners)} winners"
        assert coll.find_one({"_id": trial})["owner"] == winners[0]
        losers_seen += 9
    assert losers_seen == 180


def test_unique_index_refuses_the_second_insert(coll):
    coll.create_index("key", unique=True)
    results = []

    def insert(i):
        try:
            coll.insert_one({"key": "phone:+8613800138000", "by": i})
            results.append(i)
        except DuplicateKeyError:
            pass

    pool = eventlet.GreenPool(10)
    for i in range(10):
        pool.spawn(insert, i)
    pool.waitall()
    assert len(results) == 1
    assert coll.count_documents({}) == 1
