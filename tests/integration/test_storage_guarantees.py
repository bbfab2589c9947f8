"""What the services rely on from MongoDB, checked against the server they
actually run on: a conditional find_one_and_update has exactly one winner,
a unique index refuses the second insert, and an update, with
DuplicateKeyError; filters, sorts and counts answer what MongoDB answers,
and read an index."""

import random
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from bson import Binary, Int64, ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
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


# ---------------------------------------------------------------- index pushdown
#
# FerretDB here answers filters, sorts, skips and counts on indexed top-level
# fields through index tables (scripts/ferretdb/crm_index.go). Its answers
# must be MongoDB's, whatever the stored values: compared with a reference
# written from MongoDB's rules (type brackets, missing = null, an array
# matches by any element and sorts by its least or greatest one).

VALUES = ["a", "b", "ab", "a\x00", "", "恒通", "恒通贸易", "科技", "a<b", 'q"', "\\", "Z", "é",
          0, 1, -1, 2.5, -0.0, 9, 10, Int64(2 ** 40), 1e300, -1e300,
          True, False, None, ObjectId("65a000000000000000000001"),
          ObjectId("65a000000000000000000002"), datetime(2024, 1, 1, tzinfo=UTC),
          datetime(1960, 5, 1, tzinfo=UTC), Binary(b"x", 0), Binary(b"xy", 0),
          {"k": 1}, [], ["a", "b"], [1, "a"], [None], ["恒通", 3]]
SCALARS = [v for v in VALUES if not isinstance(v, (list, dict))]
MISSING = object()


def _rank(v) -> int:
    if v is None or v is MISSING:
        return 1
    if isinstance(v, bool):
        return 8
    if isinstance(v, (int, float)):
        return 2
    return {str: 3, dict: 4, list: 5, Binary: 6, ObjectId: 7, datetime: 9}[type(v)]


def _key(v):
    """MongoDB's order of two values as a Python sort key."""
    r = _rank(v)
    if r == 1:
        return (1,)
    if r == 3:
        return (3, v.encode())
    if r == 6:
        return (6, len(v), v.subtype, bytes(v))
    if r == 7:
        return (7, v.binary)
    if r == 4:
        return (4, str(sorted(v.items())))
    return (r, v)


def _equal(a, b) -> bool:
    return _key(a) == _key(b) and not (isinstance(a, list) or isinstance(b, list))


def _matches_value(stored, cond) -> bool:
    """One stored value (a scalar; an array element) against one condition."""
    if isinstance(cond, dict) and cond and next(iter(cond)).startswith("$"):
        for op, arg in cond.items():
            if op == "$in":
                if not any(_matches_value(stored, a) for a in arg):
                    return False
            elif op in ("$gt", "$gte", "$lt", "$lte"):
                if _rank(stored) != _rank(arg):
                    return False
                a, b = _key(stored), _key(arg)
                if not {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]:
                    return False
            else:
                raise AssertionError(op)
        return True
    return _equal(stored, cond)


def _matches(doc, flt) -> bool:
    for field, cond in flt.items():
        stored = doc.get(field, MISSING)
        if isinstance(cond, dict) and "$all" in cond:
            if not all(_matches(doc, {field: v}) for v in cond["$all"]):
                return False
            continue
        if isinstance(stored, list):
            if isinstance(cond, dict) and len(cond) == 2 and "$in" not in cond:
                # each bound may be met by another element
                ok = all(any(_matches_value(e, {op: arg}) for e in stored)
                         for op, arg in cond.items())
            else:
                ok = any(_matches_value(e, cond) for e in stored)
            if not ok:
                return False
        elif not _matches_value(None if stored is MISSING else stored, cond):
            return False
    return True


def _sort_key(doc, sort):
    out = []
    for field, direction in sort:
        v = doc.get(field, None)
        if isinstance(v, list):
            # an empty array sorts first; else its least (greatest) element
            k = (0,) if not v else (min if direction == 1 else max)(_key(e) for e in v)
        else:
            k = _key(v)
        out.append(k)
    return out


def _reference(docs, flt, sort, skip=0, limit=0):
    found = [d for d in docs if _matches(d, flt)]
    for field, direction in reversed(sort):
        found.sort(key=lambda d, f=field, r=direction: _sort_key(d, [(f, r)]),
                   reverse=direction == -1)
    found = found[skip:]
    return found[:limit] if limit else found


def _tricky_docs(rng, n):
    docs = []
    for i in range(n):
        doc = {"_id": f"id{i:04d}" if i % 9 else f"恒{i}"}
        for field in ("a", "b", "c"):
            if rng.random() < 0.85:
                doc[field] = rng.choice(VALUES)
        docs.append(doc)
    return docs


def _tricky_query(rng):
    flt = {}
    for field in rng.sample(["a", "b", "c"], rng.randint(1, 2)):
        r, v = rng.random(), rng.choice(SCALARS)
        if r < 0.4:
            flt[field] = v
        elif r < 0.5:
            flt[field] = {"$in": rng.sample(SCALARS, rng.randint(1, 4))}
        elif r < 0.6:
            flt[field] = {"$all": rng.sample(SCALARS, rng.randint(1, 2))}
        else:
            flt[field] = {op: rng.choice(SCALARS)
                          for op in rng.sample(["$gt", "$gte", "$lt", "$lte"], rng.randint(1, 2))}
    sort = [(f, rng.choice([1, -1])) for f in rng.sample(["a", "b", "c"], rng.randint(0, 2))]
    sort.append(("_id", sort[-1][1] if sort else rng.choice([1, -1])))
    return flt, sort


INDEXES = [[("a", 1)], [("a", 1), ("b", -1)], [("b", -1), ("a", 1), ("c", 1)], [("c", -1)],
           [("a", -1), ("_id", -1)]]


@pytest.mark.parametrize("seed", range(6))
def test_indexed_queries_answer_what_mongodb_answers(coll, seed):
    """Filters, sorts, skips, limits and counts over tricky values (Chinese,
    escapes, every type, missing fields, arrays), with documents inserted,
    changed between arrays and scalars and deleted, and some indexes made
    before the documents and some after."""
    rng = random.Random(seed)
    chosen = rng.sample(INDEXES, rng.randint(2, 4))
    late = chosen[: len(chosen) // 2]
    for ix in chosen[len(chosen) // 2:]:
        coll.create_index(ix)
    docs = {d["_id"]: d for d in _tricky_docs(rng, 150)}
    coll.insert_many(list(docs.values()))
    for _ in range(30):
        doc_id, field, value = rng.choice(list(docs)), rng.choice("abc"), rng.choice(VALUES)
        coll.update_one({"_id": doc_id}, {"$set": {field: value}})
        docs[doc_id][field] = value
    for _ in range(10):
        doc_id = rng.choice(list(docs))
        coll.delete_one({"_id": doc_id})
        docs.pop(doc_id)
    for ix in late:
        coll.create_index(ix)
    stored = list(docs.values())
    assert coll.count_documents({}) == len(stored)
    for _ in range(80):
        flt, sort = _tricky_query(rng)
        skip, limit = rng.choice([0, 0, 4]), rng.choice([0, 7, 20])
        cursor = coll.find(flt).sort(sort).skip(skip)
        if limit:
            cursor = cursor.limit(limit)
        got = [d["_id"] for d in cursor]
        want = [d["_id"] for d in _reference(stored, flt, sort, skip, limit)]
        assert got == want, (flt, sort, skip, limit)
        assert coll.count_documents(flt) == len(_reference(stored, flt, [])), flt


def _explain(coll, flt, sort=None, limit=0):
    cmd = {"find": coll.name, "filter": flt}
    if sort:
        cmd["sort"] = dict(sort)
    if limit:
        cmd["limit"] = limit
    return coll.database.command("explain", cmd, verbosity="queryPlanner")


def test_equality_range_and_order_are_read_from_the_index(coll):
    """A page of an equality (and range) filter in index order reads its
    keys only: the plan searches the index, sorts nothing, and counts in
    the index."""
    if not _is_ferretdb(coll):
        pytest.skip("the plan's shape is FerretDB's")
    coll.create_index([("owner_id", ASCENDING), ("_id", DESCENDING)], name="owner")
    coll.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)], name="inbox")
    coll.create_index([("grams", ASCENDING)], name="grams")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    coll.insert_many([{"_id": f"{i:06d}", "owner_id": f"o{i % 5}", "user_id": f"u{i % 3}",
                       "created_at": at + timedelta(minutes=i), "grams": ["恒通", f"g{i % 7}"]}
                      for i in range(300)])
    cases = [
        ({"owner_id": "o1"}, [("_id", -1)], "owner", True),
        ({"owner_id": "o1", "_id": {"$lt": "000150"}}, [("_id", -1)], "owner", True),
        ({"owner_id": {"$in": ["o1", "o2"]}}, [("_id", -1)], "owner", True),
        ({"user_id": "u2", "created_at": {"$gte": at + timedelta(minutes=30)}},
         [("created_at", -1), ("_id", -1)], "inbox", True),
        ({"grams": {"$all": ["g3", "恒通"]}}, None, "grams", False),
    ]
    for flt, sort, index, sorted_ in cases:
        plan = _explain(coll, flt, sort, limit=20)
        crm = plan["queryPlanner"]["crm"]
        assert crm["index"] == index, (flt, crm)
        assert crm["sorted"] is sorted_, (flt, crm)
        steps = plan["queryPlanner"]["Plan"]
        assert all("SCAN" not in s and "TEMP B-TREE" not in s for s in steps), (flt, steps)
    assert _explain(coll, {"owner_id": "o1"})["queryPlanner"]["crm"]["exact"] is True
    assert coll.count_documents({"owner_id": "o1"}) == 60
    # the page, deep or not, in the right order
    want = sorted((f"{i:06d}" for i in range(300) if i % 5 == 1), reverse=True)
    got = [d["_id"] for d in coll.find({"owner_id": "o1"}).sort("_id", -1).skip(40).limit(10)]
    assert got == want[40:50]
