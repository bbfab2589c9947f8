"""What the services rely on from MongoDB, checked against the server they
actually run on: a conditional find_one_and_update has exactly one winner,
and a unique index refuses the second insert, and an update, with
DuplicateKeyError."""

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


def test_unique_index_refuses_an_update_as_it_refuses_an_insert(coll):
    # An open alarm or dispute holds its key in a unique field that updates
    # set and clear; a refused update must be a DuplicateKeyError, as on
    # MongoDB, and leave the document as it was.
    coll.create_index("open_for", unique=True)
    coll.insert_many([{"_id": "a1", "open_for": "c1"}, {"_id": "a2", "open_for": "a2"}])
    for update in (lambda: coll.update_one({"_id": "a2"}, {"$set": {"open_for": "c1"}}),
                   lambda: coll.find_one_and_update({"_id": "a2"},
                                                    {"$set": {"open_for": "c1"}})):
        with pytest.raises(DuplicateKeyError):
            update()
    assert coll.find_one({"_id": "a2"})["open_for"] == "a2"


# Ids that sort differently as JSON text than as strings (escaped characters),
# Chinese, prefixes of one another, and ids of other types.
TRICKY_IDS = ["a<b", "a=b", "a&", 'a"x', "a\\y", "中文", "中", "abc", "ab", "b", "A", "",
              "20261202T132449.000001|r1", "20261202T132449.000001|r2", "20261202T132450|r3"]


def _is_ferretdb(coll) -> bool:
    return "ferretdbVersion" in coll.database.client.server_info()


def test_id_ranges_answer_what_mongodb_answers(coll):
    coll.insert_many([{"_id": i} for i in TRICKY_IDS] + [{"_id": 5}, {"_id": 7.5}, {"_id": True}])
    compare = {"$lt": str.__lt__, "$lte": str.__le__, "$gt": str.__gt__, "$gte": str.__ge__}
    for bound in ["a=", "a<c", "ab", "a", "中", "20261202T132449.000001|~", "", "~"]:
        for op, holds in compare.items():
            want = sorted(i for i in TRICKY_IDS if holds(i, bound))
            got = sorted(d["_id"] for d in coll.find({"_id": {op: bound}}))
            assert got == want, (op, bound)
    got = sorted(d["_id"] for d in coll.find({"_id": {"$gt": "a", "$lte": "b"}}))
    assert got == sorted(i for i in TRICKY_IDS if "a" < i <= "b")
    coll.delete_many({"_id": {"$lt": "b"}})
    assert sorted(d["_id"] for d in coll.find({"_id": {"$type": "string"}})) == sorted(
        i for i in TRICKY_IDS if i >= "b")


def test_id_ranges_and_id_lists_use_the_id_index(coll):
    """The scheduler finds what is due as a range of `_id`s and reads many
    documents by id at once: neither may scan the collection."""
    if not _is_ferretdb(coll):
        pytest.skip("the plan's shape is FerretDB's")
    coll.insert_many([{"_id": f"{i:06d}|r"} for i in range(200)])
    for flt in ({"_id": {"$lte": "000010|~"}}, {"_id": {"$gte": "000100", "$lt": "000120"}},
                {"_id": {"$in": ["000001|r", "000002|r"]}}):
        plan = coll.database.command("explain", {"find": coll.name, "filter": flt})
        assert plan["filterPushdown"] is True, flt
        assert all("SCAN" not in step for step in plan["queryPlanner"]["Plan"]), plan
