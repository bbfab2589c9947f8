"""The knowledge database.

Entries (nothing is ever deleted)::

    questions  {_id, kind: "question", status: "draft"|"published"|"discarded",
                title, body, tags [as typed], tag_keys [normalized], customer_id, stage,
                author {id, name}, accepted_answer_id, accepted_by, accepted_at,
                answer_count, votes {up, down}, answer_votes {up, down} (sum over its
                answers), views, version, history [earlier versions {version, at, editor,
                title, body, tags}], last_editor, created_at, updated_at, index_rev,
                drafts only: alarm_id (sparse unique: one draft per alarm), decision,
                draft_answer {id, body, author}}
    answers    {_id, question_id, body, author, votes {up, down}, version, history,
                last_editor, created_at, updated_at}
    stories    like questions without the answer fields
    votes      {_id: "<item id>:<user id>", item_kind, item_id, user_id, value: 1|-1|0,
                created_at, updated_at}; unique (item_id, user_id): one vote per user

Search index (engine.py says why it is served from memory)::

    kb_docs    one forward row per published entry: engine.forward_row()
               {_id, rev, kind, tags, lengths, terms [str], tfs ["t,g,b,a,n" per term],
               title, body, accepted_answer, answers}
               (FerretDB refuses nested arrays: term frequencies travel as strings)
    kb_stats   {_id: "corpus", doc_count, total_lengths {field: n}, generation}
               $inc'ed with every kb_docs write; generation counts them
    kb_feed    ring of the last RING writes: {_id: generation % RING, gen, row}
               every instance follows it to apply other instances' writes
    kb_pending {_id, kind, doc_id, at}: an entry whose index row may be stale (a
               write started); removed once re-indexed, swept after a crash

``rev`` comes from the entry's ``index_rev`` counter, taken *before* its text is
read, so a row built from newer text always has the higher rev and an older
row never overwrites it.

FerretDB 1.24 notes: an upsert through findAndModify whose filter misses an
existing _id overwrites that document instead of failing, so conditional
writes here insert first and update on a duplicate key. Every query is a table
scan there (no index is used), which is why reads are by _id where possible.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.knowledge.domain import DISCARDED, DRAFT, PUBLISHED
from services.knowledge.search import FIELDS, stats_increment

RING = 1024
COLLECTIONS = {"question": "questions", "story": "stories", "answer": "answers"}
LIST_FIELDS = {"history": 0, "draft_answer": 0}


def ensure_indexes(db: Database) -> None:
    db.questions.create_index([("status", ASCENDING), ("_id", DESCENDING)], name="status_new")
    db.questions.create_index([("status", ASCENDING), ("tag_keys", ASCENDING)], name="status_tag")
    db.questions.create_index([("author.id", ASCENDING), ("status", ASCENDING)], name="author")
    db.questions.create_index([("alarm_id", ASCENDING)], unique=True, sparse=True,
                              name="one_draft_per_alarm")
    db.stories.create_index([("status", ASCENDING), ("_id", DESCENDING)], name="status_new")
    db.stories.create_index([("status", ASCENDING), ("tag_keys", ASCENDING)], name="status_tag")
    db.answers.create_index([("question_id", ASCENDING), ("_id", ASCENDING)], name="question")
    db.votes.create_index([("item_id", ASCENDING), ("user_id", ASCENDING)], unique=True,
                          name="one_vote_per_user")
    db.votes.create_index([("user_id", ASCENDING)], name="user")
    try:
        db.kb_stats.insert_one({"_id": "corpus", "doc_count": 0,
                                "total_lengths": dict.fromkeys(FIELDS, 0), "generation": 0})
    except DuplicateKeyError:
        pass


def _coll(db: Database, kind: str):
    return db[COLLECTIONS[kind]]


# ------------------------------------------------------------------- entries


def insert_entry(db: Database, kind: str, doc: dict) -> dict:
    _coll(db, kind).insert_one(doc)
    return doc


def find_entry(db: Database, kind: str, entry_id: str, status: str | None = PUBLISHED):
    filt: dict = {"_id": entry_id}
    if status is not None:
        filt["status"] = status
    return _coll(db, kind).find_one(filt)


def view_entry(db: Database, kind: str, entry_id: str, viewer_id: str) -> dict | None:
    """The published entry; a view by anyone but its author is counted."""
    doc = _coll(db, kind).find_one_and_update(
        {"_id": entry_id, "status": PUBLISHED, "author.id": {"$ne": viewer_id}},
        {"$inc": {"views": 1}}, return_document=ReturnDocument.AFTER)
    return doc or find_entry(db, kind, entry_id)


def list_entries(db: Database, kind: str, filt: dict, sort: str, skip: int, limit: int,
                 score) -> tuple[list[dict], int]:
    """A page of published entries: newest first, or by ``score`` (sort=top,
    greatest first; a tuple such as domain.top_rank, computed here from the
    counters: it depends on views, which move on every read, and it needs no
    stored key, so documents of any age sort alike on MongoDB and FerretDB)."""
    coll = _coll(db, kind)
    filt = {**filt, "status": PUBLISHED}
    if sort == "new":
        total = coll.count_documents(filt)
        docs = list(coll.find(filt, LIST_FIELDS).sort("_id", DESCENDING).skip(skip).limit(limit))
        return docs, total
    light = {"votes": 1, "answer_votes": 1, "views": 1, "accepted_answer_id": 1, "kind": 1}
    ranked = sorted(coll.find(filt, light),
                    key=lambda d: (tuple(-x for x in score(d)), _neg_id(d["_id"])))
    page = [d["_id"] for d in ranked[skip:skip + limit]]
    by_id = {d["_id"]: d for d in coll.find({"_id": {"$in": page}}, LIST_FIELDS)} if page else {}
    return [by_id[i] for i in page if i in by_id], len(ranked)


def _neg_id(value: str) -> tuple:
    # newest first among equals: ObjectId strings sort by time
    return tuple(-ord(c) for c in value)


def update_text(db: Database, kind: str, entry_id: str, version: int, author_id: str,
                changes: dict, snapshot: dict, extra_filter: Mapping | None = None):
    """Apply an author's edit if nobody changed the entry since ``version`` was read."""
    filt = {"_id": entry_id, "version": version, "author.id": author_id, **(extra_filter or {})}
    return _coll(db, kind).find_one_and_update(
        filt, {"$set": changes, "$push": {"history": snapshot}},
        return_document=ReturnDocument.AFTER)


def bump_index_rev(db: Database, kind: str, entry_id: str) -> dict | None:
    """The entry as it is now, with a fresh ``index_rev`` for its index row."""
    return _coll(db, kind).find_one_and_update(
        {"_id": entry_id}, {"$inc": {"index_rev": 1}}, return_document=ReturnDocument.AFTER)


# ------------------------------------------------------------------- answers


def insert_answer(db: Database, doc: dict) -> bool:
    """False when an answer with this id exists (a retried publish)."""
    try:
        db.answers.insert_one(doc)
    except DuplicateKeyError:
        return False
    db.questions.update_one({"_id": doc["question_id"]}, {"$inc": {"answer_count": 1}})
    return True


def find_answer(db: Database, answer_id: str) -> dict | None:
    return db.answers.find_one({"_id": answer_id})


def answers_of(db: Database, question_id: str) -> list[dict]:
    return list(db.answers.find({"question_id": question_id}).sort("_id", ASCENDING))


def accept(db: Database, question_id: str, answer_id: str, by: str, now: datetime):
    """The question before the change, or None when that answer was already
    the accepted one (or the question is not published)."""
    return db.questions.find_one_and_update(
        {"_id": question_id, "status": PUBLISHED, "accepted_answer_id": {"$ne": answer_id}},
        {"$set": {"accepted_answer_id": answer_id, "accepted_by": by, "accepted_at": now,
                  "updated_at": now}},
        return_document=ReturnDocument.BEFORE)


# --------------------------------------------------------------------- votes


def cast_vote(db: Database, item_kind: str, item_id: str, user_id: str, value: int,
              now: datetime) -> int:
    """Record the user's vote and return his previous one (0 if none).

    The insert is the guard (unique _id and (item_id, user_id)); a second
    vote changes the one document atomically, so concurrent clicks of one
    user count once and the counters move by exact deltas."""
    vote_id = f"{item_id}:{user_id}"
    try:
        db.votes.insert_one({"_id": vote_id, "item_kind": item_kind, "item_id": item_id,
                             "user_id": user_id, "value": value, "created_at": now,
                             "updated_at": now})
        return 0
    except DuplicateKeyError:
        pass
    before = db.votes.find_one_and_update(
        {"_id": vote_id, "value": {"$ne": value}}, {"$set": {"value": value, "updated_at": now}},
        return_document=ReturnDocument.BEFORE)
    return value if before is None else int(before["value"])


def count_vote(db: Database, item_kind: str, item: Mapping, inc: dict[str, int]) -> dict:
    """Move the item's counters (and, for an answer, its question's sum)."""
    if not inc:
        return _coll(db, item_kind).find_one({"_id": item["_id"]})
    doc = _coll(db, item_kind).find_one_and_update(
        {"_id": item["_id"]}, {"$inc": {f"votes.{k}": v for k, v in inc.items()}},
        return_document=ReturnDocument.AFTER)
    if item_kind == "answer":
        db.questions.update_one({"_id": item["question_id"]},
                                {"$inc": {f"answer_votes.{k}": v for k, v in inc.items()}})
    return doc


def my_votes(db: Database, user_id: str, item_ids: list[str]) -> dict[str, int]:
    if not item_ids:
        return {}
    return {v["item_id"]: int(v["value"])
            for v in db.votes.find({"user_id": user_id, "item_id": {"$in": item_ids}})}


# -------------------------------------------------------------------- drafts


def insert_draft(db: Database, doc: dict) -> bool:
    """False when this alarm already gave its draft (a redelivered event)."""
    try:
        db.questions.insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


def list_drafts(db: Database, owner_id: str, skip: int, limit: int) -> tuple[list[dict], int]:
    filt = {"author.id": owner_id, "status": DRAFT}
    total = db.questions.count_documents(filt)
    return list(db.questions.find(filt).sort("_id", DESCENDING).skip(skip).limit(limit)), total


def find_draft(db: Database, draft_id: str, owner_id: str) -> dict | None:
    doc = db.questions.find_one({"_id": draft_id})
    if doc is None or doc.get("alarm_id") is None or doc["author"]["id"] != owner_id:
        return None
    return doc


def update_draft(db: Database, draft_id: str, owner_id: str, changes: dict, now: datetime):
    return db.questions.find_one_and_update(
        {"_id": draft_id, "author.id": owner_id, "status": DRAFT},
        {"$set": {**changes, "updated_at": now}}, return_document=ReturnDocument.AFTER)


def close_draft(db: Database, draft_id: str, owner_id: str, status: str, now: datetime,
                extra: Mapping | None = None):
    """Publish or discard: the draft before the change, None if it was no longer a draft."""
    assert status in (PUBLISHED, DISCARDED)
    return db.questions.find_one_and_update(
        {"_id": draft_id, "author.id": owner_id, "status": DRAFT},
        {"$set": {"status": status, "updated_at": now, f"{status}_at": now, **(extra or {})}},
        return_document=ReturnDocument.BEFORE)


# --------------------------------------------------------------------- index


def mark_pending(db: Database, marker_id: str, kind: str, doc_id: str, now: datetime) -> None:
    db.kb_pending.insert_one({"_id": marker_id, "kind": kind, "doc_id": doc_id, "at": now})


def clear_pending(db: Database, marker_id: str) -> None:
    # an operational marker, not knowledge: removing it deletes no content
    db.kb_pending.delete_one({"_id": marker_id})


def stale_pending(db: Database, now: datetime, older_than: timedelta) -> list[dict]:
    return list(db.kb_pending.find({"at": {"$lt": now - older_than}}))


def encode_row(row: Mapping) -> dict:
    """engine.forward_row() -> the stored shape (no nested arrays)."""
    out = {k: v for k, v in row.items() if k != "terms"}
    out["terms"] = [t[0] for t in row["terms"]]
    out["tfs"] = [",".join(str(n) for n in t[1:]) for t in row["terms"]]
    return out


def decode_row(doc: Mapping) -> dict:
    out = {k: v for k, v in doc.items() if k not in ("terms", "tfs")}
    out["terms"] = [[t, *(int(n) for n in tf.split(","))]
                    for t, tf in zip(doc.get("terms") or (), doc.get("tfs") or (), strict=True)]
    return out


def put_index_row(db: Database, row: Mapping) -> int | None:
    """Store an entry's index row unless a newer one is stored; returns the
    generation of this write, or None when the row was stale."""
    stored = encode_row(row)
    try:
        db.kb_docs.insert_one(stored)
        before = None
    except DuplicateKeyError:
        fields = {k: v for k, v in stored.items() if k != "_id"}
        before = db.kb_docs.find_one_and_update(
            {"_id": stored["_id"], "rev": {"$lt": stored["rev"]}}, {"$set": fields},
            return_document=ReturnDocument.BEFORE)
        if before is None:
            return None
    inc = stats_increment(before["lengths"] if before else None, row["lengths"])
    inc["generation"] = 1
    stats = db.kb_stats.find_one_and_update(
        {"_id": "corpus"}, {"$inc": inc}, upsert=True, return_document=ReturnDocument.AFTER)
    gen = int(stats["generation"])
    _put_feed(db, gen, stored)
    return gen


def _put_feed(db: Database, gen: int, stored: Mapping) -> None:
    slot = {"gen": gen, "row": dict(stored)}
    try:
        db.kb_feed.insert_one({"_id": gen % RING, **slot})
    except DuplicateKeyError:
        db.kb_feed.update_one({"_id": gen % RING, "gen": {"$lt": gen}}, {"$set": slot})


def bulk_index(db: Database, rows: list[Mapping]) -> None:
    """Load many new entries at once (benchmarks, imports): the rows, the
    corpus totals, and a generation jump past the feed so that every
    instance reloads the whole index."""
    if not rows:
        return
    db.kb_docs.insert_many([encode_row(r) for r in rows], ordered=False)
    inc: dict[str, int] = {"doc_count": 0}
    for r in rows:
        for k, v in stats_increment(None, r["lengths"]).items():
            inc[k] = inc.get(k, 0) + v
    inc["generation"] = RING
    db.kb_stats.update_one({"_id": "corpus"}, {"$inc": inc}, upsert=True)


def index_state(db: Database) -> dict:
    return db.kb_stats.find_one({"_id": "corpus"}) or {"generation": 0, "doc_count": 0}


def feed_slots(db: Database) -> dict[int, dict]:
    return {d["_id"]: d for d in db.kb_feed.find()}


def index_rows(db: Database, batch: int = 2000) -> Iterator[list[dict]]:
    """Every stored index row, in batches."""
    out: list[dict] = []
    for doc in db.kb_docs.find(batch_size=batch):
        out.append(decode_row(doc))
        if len(out) >= batch:
            yield out
            out = []
    if out:
        yield out
