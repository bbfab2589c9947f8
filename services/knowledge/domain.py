"""Knowledge rules as plain functions: who may do what, votes, the usefulness
score, edit history and the API shapes (drafts from alarms: drafts.py). No I/O.

Decisions:
- Anyone signed in reads and writes knowledge: it is the team's shared
  experience. Only the author edits his text (PATCH); every earlier version
  is kept in the document's ``history`` and shown by GET .../history.
- One accepted answer per question, chosen by the asker, a manager or an
  admin; they may change it later (the newest choice wins, each change is an
  ``AnswerAccepted`` event). Accepting the already accepted answer changes
  nothing stored but sends the event again (see ``accepted_event_by``).
- Votes go up (1) or down (-1), one per user and item (questions, answers,
  stories); a user may change his vote or take it back (0). Nobody votes on
  his own text.
- ``usefulness`` (shown on every entry): 10 if an answer is accepted, + 3 x
  the question's net votes, + the net votes of all its answers, + ln(1 +
  views): an accepted answer counts most (a thousand views weigh 6.9), then
  what colleagues endorsed; views break ties slowly. A view is a GET of the
  question by someone other than its author. sort=top orders by
  ``top_rank``: answered questions before open ones whatever their votes
  (a new hire wants answers, and four upvotes on an open question would
  otherwise outweigh the accepted answer), then by usefulness.
- A ``customer_id`` is stored as given and shown only to the author: nobody
  learns from the knowledge base which customer a colleague asked about.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.common.clock import iso
from services.common.errors import Forbidden
from services.common.principal import Principal
from services.knowledge.search import normalize_tag

DRAFT, PUBLISHED, DISCARDED = "draft", "published", "discarded"
ACCEPTORS = ("manager", "admin")
MASK = "某客户"
MASK_CONTACT = "***"
ALARM_TAG = "困难报警"
DECISIONS = {"continue": "继续跟进", "reassign": "转给其他业务员", "abandon": "放弃，转入公海"}


def author_of(actor: Principal) -> dict:
    return {"id": actor.id, "name": actor.name or actor.username or ""}


def clean_tags(tags) -> tuple[list[str], list[str]]:
    """Tags as shown (trimmed, first spelling kept) and their normalized keys."""
    shown, keys = [], []
    for tag in tags or ():
        key = normalize_tag(tag)
        if key and key not in keys:
            keys.append(key)
            shown.append(tag.strip().lstrip("#").strip() or key)
    return shown, keys


# ----------------------------------------------------------------------- rules


def check_may_edit(actor: Principal, item: Mapping) -> None:
    if item["author"]["id"] != actor.id:
        raise Forbidden("not_author", "only its author edits this text")


def check_may_accept(actor: Principal, question: Mapping) -> None:
    if question["author"]["id"] != actor.id and actor.role not in ACCEPTORS:
        raise Forbidden("not_allowed", "only the asker or a manager accepts an answer")


def check_may_vote(actor: Principal, item: Mapping) -> None:
    if item["author"]["id"] == actor.id:
        raise Forbidden("own_entry", "nobody votes on his own text")


def vote_delta(old: int, new: int) -> dict[str, int]:
    """The $inc of the {up, down} counters when a user's vote goes old -> new."""
    inc = {"up": int(new == 1) - int(old == 1), "down": int(new == -1) - int(old == -1)}
    return {k: v for k, v in inc.items() if v}


def votes_out(counters: Mapping | None) -> dict:
    up = int((counters or {}).get("up", 0))
    down = int((counters or {}).get("down", 0))
    return {"up": up, "down": down, "score": up - down}


def _net(counters: Mapping | None) -> int:
    return int((counters or {}).get("up", 0)) - int((counters or {}).get("down", 0))


def usefulness(item: Mapping) -> float:
    """sort=top: see the module docstring."""
    score = 3 * _net(item.get("votes")) + math.log1p(max(int(item.get("views", 0)), 0))
    if item.get("kind", "question") == "question":
        score += 10 * bool(item.get("accepted_answer_id")) + _net(item.get("answer_votes"))
    return round(score, 4)


def top_rank(item: Mapping) -> tuple[int, float]:
    """sort=top, greatest first: (has an accepted answer, usefulness). Computed
    from the counters of any stored document, old ones included."""
    return int(bool(item.get("accepted_answer_id"))), usefulness(item)


def accepted_event_by(before: Mapping | None, after: Mapping, answer_id: str,
                      actor_id: str) -> str | None:
    """Who ``AnswerAccepted`` names as accepting, or None when none is due.

    Accepting the already accepted answer changes nothing stored, yet the
    event goes again: the call may be the retry of one that wrote and then
    failed to dispatch, and a lost event would leave the answerer never told.
    Subscribers dedup by (answer, author), so a true repeat tells nobody twice.
    """
    if before is not None:
        return actor_id
    if after.get("accepted_answer_id") == answer_id:
        return after.get("accepted_by") or actor_id
    return None


def question_status(question: Mapping) -> str:
    return "answered" if question.get("accepted_answer_id") else "open"


def index_source(item: Mapping, answers: list[Mapping] = ()) -> dict:
    """What search.index_document takes: the accepted answer's text is part of
    the question's document, the other answers count less."""
    accepted = item.get("accepted_answer_id")
    return {
        "id": item["_id"],
        "kind": item.get("kind", "question"),
        "title": item["title"],
        "body": item["body"],
        "tags": item.get("tags") or [],
        "accepted_answer": next((a["body"] for a in answers if a["_id"] == accepted), None),
        "answers": [a["body"] for a in answers if a["_id"] != accepted],
    }


# -------------------------------------------------------------------- editing


TEXT_FIELDS = {"question": ("title", "body", "tags"), "story": ("title", "body", "tags"),
               "answer": ("body",)}


def edit(kind: str, item: Mapping, changes: Mapping, actor: Principal,
         now: datetime) -> tuple[dict, dict] | None:
    """($set, history snapshot) for an author's edit, or None when nothing changes.

    The snapshot is the version being replaced, so the history holds every
    earlier version; the document holds the current one.
    """
    fields = TEXT_FIELDS[kind]
    new: dict[str, Any] = {}
    for field in fields:
        if changes.get(field) is None:
            continue
        if field == "tags":
            shown, keys = clean_tags(changes["tags"])
            if shown != item.get("tags"):
                new["tags"], new["tag_keys"] = shown, keys
        elif changes[field] != item.get(field):
            new[field] = changes[field]
    if not new:
        return None
    snapshot = {
        "version": item.get("version", 1),
        "at": item.get("updated_at") or item.get("created_at"),
        "editor": item.get("last_editor") or item["author"],
        **{f: item.get(f) for f in fields},
    }
    new.update(version=item.get("version", 1) + 1, updated_at=now,
               last_editor=author_of(actor))
    return new, snapshot


def versions_out(kind: str, item: Mapping) -> dict:
    fields = TEXT_FIELDS[kind]
    current = {
        "version": item.get("version", 1),
        "at": item.get("updated_at") or item.get("created_at"),
        "editor": item.get("last_editor") or item["author"],
        **{f: item.get(f) for f in fields},
    }
    items = [{**v, "at": iso(v["at"])} for v in [*(item.get("history") or []), current]]
    return {"items": items, "total": len(items)}


# ----------------------------------------------------------- new documents


def new_entry(kind: str, entry_id: str, data: Mapping, actor: Principal,
              now: datetime) -> dict:
    tags, keys = clean_tags(data.get("tags"))
    doc = {
        "_id": entry_id,
        "kind": kind,
        "status": PUBLISHED,
        "title": data["title"],
        "body": data["body"],
        "tags": tags,
        "tag_keys": keys,
        "customer_id": data.get("customer_id"),
        "stage": data.get("stage"),
        "author": author_of(actor),
        "votes": {"up": 0, "down": 0},
        "views": 0,
        "version": 1,
        "history": [],
        "created_at": now,
        "updated_at": now,
    }
    if kind == "question":
        doc.update(accepted_answer_id=None, accepted_by=None, answer_count=0,
                   answer_votes={"up": 0, "down": 0})
    return doc


def new_answer(answer_id: str, question_id: str, body: str, author: Mapping,
               now: datetime) -> dict:
    return {
        "_id": answer_id,
        "question_id": question_id,
        "body": body,
        "author": dict(author),
        "votes": {"up": 0, "down": 0},
        "version": 1,
        "history": [],
        "created_at": now,
        "updated_at": now,
    }


# ------------------------------------------------------------- API shapes


def _common_out(doc: Mapping, viewer: Principal, my_vote: int | None) -> dict:
    mine = doc["author"]["id"] == viewer.id
    return {
        "id": doc["_id"],
        "kind": doc.get("kind", "question"),
        "title": doc["title"],
        "body": doc["body"],
        "tags": list(doc.get("tags") or []),
        "customer_id": doc.get("customer_id") if mine else None,
        "stage": doc.get("stage"),
        "author": dict(doc["author"]),
        "views": int(doc.get("views", 0)),
        "votes": votes_out(doc.get("votes")),
        "my_vote": my_vote,
        "usefulness": usefulness(doc),
        "version": int(doc.get("version", 1)),
        "created_at": iso(doc["created_at"]),
        "updated_at": iso(doc["updated_at"]),
    }


def question_out(doc: Mapping, viewer: Principal, my_vote: int | None = None) -> dict:
    return {
        **_common_out(doc, viewer, my_vote),
        "status": question_status(doc),
        "answer_count": int(doc.get("answer_count", 0)),
        "accepted_answer_id": doc.get("accepted_answer_id"),
        "accepted_by": doc.get("accepted_by"),
    }


def story_out(doc: Mapping, viewer: Principal, my_vote: int | None = None) -> dict:
    return _common_out(doc, viewer, my_vote)


def answer_out(doc: Mapping, accepted_id: str | None, my_vote: int | None = None) -> dict:
    return {
        "id": doc["_id"],
        "question_id": doc["question_id"],
        "body": doc["body"],
        "author": dict(doc["author"]),
        "accepted": doc["_id"] == accepted_id,
        "votes": votes_out(doc.get("votes")),
        "my_vote": my_vote,
        "version": int(doc.get("version", 1)),
        "created_at": iso(doc["created_at"]),
        "updated_at": iso(doc["updated_at"]),
    }


def question_detail(doc: Mapping, answers: list[Mapping], viewer: Principal,
                    my_votes: Mapping[str, int]) -> dict:
    accepted = doc.get("accepted_answer_id")
    # the accepted answer first, then the best voted, then the oldest
    ordered = sorted(answers, key=lambda a: (a["_id"] != accepted, -_net(a.get("votes")),
                                             a["_id"]))
    return {
        **question_out(doc, viewer, my_votes.get(doc["_id"])),
        "answers": [answer_out(a, accepted, my_votes.get(a["_id"])) for a in ordered],
    }


def draft_out(doc: Mapping) -> dict:
    da = doc.get("draft_answer") or {}
    return {
        "id": doc["_id"],
        "status": doc["status"],
        "title": doc["title"],
        "body": doc["body"],
        "tags": list(doc.get("tags") or []),
        "customer_id": doc.get("customer_id"),
        "stage": doc.get("stage"),
        "answer": {"body": da.get("body", ""), "author": dict(da.get("author") or
                                                              {"id": "", "name": ""})},
        "source": {"alarm_id": doc.get("alarm_id", ""), "decision": doc.get("decision")},
        "created_at": iso(doc["created_at"]),
        "updated_at": iso(doc["updated_at"]),
    }
