"""knowledge: questions, answers, success stories, votes, and search that
understands Chinese. See ARCHITECTURE.md "Services"; the rules are in
domain.py, the documents in storage.py, the search engine in engine.py.

Every write that changes what an entry says (a question, an answer, an
accepted answer, a story, an edit, a published draft) re-indexes the entry
before the call returns; a marker in ``kb_pending`` makes a crash in between
harmless (the sweep timer re-indexes what is left marked).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from services.common import config
from services.common.errors import Conflict, Forbidden, NotFound
from services.common.events import event, handles
from services.common.ids import new_id
from services.common.mongo import Mongo
from services.common.principal import Principal
from services.common.rpc import Rpc
from services.common.service import ServiceBase, rpc
from services.common.timers import ConfigTimer
from services.common.validation import parse
from services.knowledge import domain, drafts, schemas, search, storage
from services.knowledge.domain import PUBLISHED
from services.knowledge.engine import forward_row
from services.knowledge.replica import SearchIndex

log = logging.getLogger(__name__)

ENTRY_KINDS = ("question", "story")
EDIT_RETRIES = 3


def _setup(db) -> None:
    storage.ensure_indexes(db)
    search.warm_up()  # load the jieba dictionaries now, not on the first search


def _not_found(what: str = "entry") -> NotFound:
    return NotFound("not_found", f"no such {what}")


class KnowledgeService(ServiceBase):
    name = "knowledge"

    db = Mongo(_setup)
    index = SearchIndex()
    accounts = Rpc("accounts")

    # ------------------------------------------------------------- helpers

    def _reindex(self, kind: str, entry_id: str) -> None:
        doc = storage.bump_index_rev(self.db, kind, entry_id)
        if doc is None or doc.get("status") != PUBLISHED:
            return
        answers = storage.answers_of(self.db, entry_id) if kind == "question" else []
        row = forward_row(domain.index_source(doc, answers), rev=doc["index_rev"])
        if storage.put_index_row(self.db, row) is not None:
            self.index.apply_local(row)

    @contextlib.contextmanager
    def _indexing(self, kind: str, entry_id: str):
        """Mark, write (the body of the with), re-index, unmark."""
        marker = new_id()
        storage.mark_pending(self.db, marker, kind, entry_id, self.clock.now())
        try:
            yield
        except BaseException:
            storage.clear_pending(self.db, marker)
            raise
        self._reindex(kind, entry_id)
        storage.clear_pending(self.db, marker)

    def _entry(self, kind: str, entry_id: str) -> dict:
        doc = storage.find_entry(self.db, kind, entry_id)
        if doc is None:
            raise _not_found(kind)
        return doc

    def _answer(self, answer_id: str) -> tuple[dict, dict]:
        answer = storage.find_answer(self.db, answer_id)
        question = answer and storage.find_entry(self.db, "question", answer["question_id"])
        if question is None:
            raise _not_found("answer")
        return answer, question

    def _detail(self, question: dict, viewer: Principal) -> dict:
        answers = storage.answers_of(self.db, question["_id"])
        mine = storage.my_votes(self.db, viewer.id, [question["_id"], *(a["_id"] for a in answers)])
        return domain.question_detail(question, answers, viewer, mine)

    def _names(self, user_ids) -> dict[str, str]:
        """Display names from accounts; a name is cosmetic, so accounts being
        away leaves it empty rather than failing the call."""
        try:
            users = self.accounts.get_users([u for u in user_ids if u])
        except Exception:  # noqa: BLE001
            log.warning("accounts did not answer get_users; names left empty")
            return {}
        return {uid: u.get("name") or "" for uid, u in users.items()}

    # ----------------------------------------------------- questions, stories

    def _create(self, kind: str, actor, body) -> dict:
        actor = Principal.of(actor)
        data = parse(schemas.QuestionIn if kind == "question" else schemas.StoryIn, body)
        doc = domain.new_entry(kind, new_id(), data.model_dump(), actor, self.clock.now())
        with self._indexing(kind, doc["_id"]):
            storage.insert_entry(self.db, kind, doc)
        out = domain.question_out if kind == "question" else domain.story_out
        return out(doc, actor)

    @rpc
    def ask(self, actor, body):
        return self._create("question", actor, body)

    @rpc
    def add_story(self, actor, body):
        return self._create("story", actor, body)

    def _list(self, kind: str, actor, query) -> dict:
        actor = Principal.of(actor)
        q = parse(schemas.QuestionQuery if kind == "question" else schemas.StoryQuery,
                  query or {})
        filt: dict = {}
        if q.tag:
            filt["tag_keys"] = search.normalize_tag(q.tag)
        if q.author_id:
            filt["author.id"] = q.author_id
        status = getattr(q, "status", None)
        if status == "open":
            filt["accepted_answer_id"] = None
        elif status == "answered":
            filt["accepted_answer_id"] = {"$ne": None}
        docs, total = storage.list_entries(self.db, kind, filt, q.sort, q.skip, q.page_size,
                                           domain.top_rank)
        out = domain.question_out if kind == "question" else domain.story_out
        return {"items": [out(d, actor) for d in docs], "total": total}

    @rpc
    def list_questions(self, actor, query=None):
        return self._list("question", actor, query)

    @rpc
    def list_stories(self, actor, query=None):
        return self._list("story", actor, query)

    def _viewed(self, kind: str, entry_id: str, actor: Principal) -> dict:
        """The entry, its view counted; 404 when there is none."""
        doc = storage.view_entry(self.db, kind, entry_id, actor.id)
        if doc is None:
            raise _not_found(kind)
        return doc

    @rpc
    def get_question(self, actor, question_id):
        actor = Principal.of(actor)
        return self._detail(self._viewed("question", question_id, actor), actor)

    @rpc
    def get_story(self, actor, story_id):
        actor = Principal.of(actor)
        doc = self._viewed("story", story_id, actor)
        return domain.story_out(doc, actor, storage.my_votes(self.db, actor.id, [story_id])
                                .get(story_id))

    def _edit(self, kind: str, actor, item_id: str, body) -> dict:
        actor = Principal.of(actor)
        model = schemas.AnswerPatch if kind == "answer" else schemas.EntryPatch
        changes = parse(model, body).model_dump(exclude_none=True)
        for _ in range(EDIT_RETRIES):
            if kind == "answer":
                item, question = self._answer(item_id)
            else:
                item = question = self._entry(kind, item_id)
            domain.check_may_edit(actor, item)
            edit = domain.edit(kind, item, changes, actor, self.clock.now())
            if edit is not None:
                indexed = ("question", question["_id"]) if kind != "story" else ("story", item_id)
                with self._indexing(*indexed):
                    item = storage.update_text(self.db, "answer" if kind == "answer" else kind,
                                               item_id, item.get("version", 1),
                                               actor.id, *edit)
                if item is None:
                    continue  # changed meanwhile: read again
            if kind == "answer":
                return domain.answer_out(item, question.get("accepted_answer_id"))
            if kind == "question":
                return domain.question_out(item, actor)
            return domain.story_out(item, actor)
        raise Conflict("edit_conflict", "the text was changed meanwhile; try again")

    @rpc
    def edit_question(self, actor, question_id, body):
        return self._edit("question", actor, question_id, body)

    @rpc
    def edit_story(self, actor, story_id, body):
        return self._edit("story", actor, story_id, body)

    @rpc
    def edit_answer(self, actor, answer_id, body):
        return self._edit("answer", actor, answer_id, body)

    def _item(self, kind: str, item_id: str) -> dict:
        """An answer, question or story by kind; 404 for another kind."""
        if kind == "answer":
            return self._answer(item_id)[0]
        if kind in ENTRY_KINDS:
            return self._entry(kind, item_id)
        raise _not_found()

    @rpc
    def history(self, actor, kind, item_id):
        item = self._item(kind, item_id)
        return domain.versions_out(kind, item)

    # -------------------------------------------------------------- answers

    @rpc
    def answer(self, actor, question_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.AnswerIn, body)
        question = self._entry("question", question_id)
        doc = domain.new_answer(new_id(), question_id, data.body, domain.author_of(actor),
                                self.clock.now())
        with self._indexing("question", question_id):
            storage.insert_answer(self.db, doc)
        self.dispatch("AnswerPosted", event(
            question_id=question_id, answer_id=doc["_id"], asker_id=question["author"]["id"],
            author_id=actor.id, title=question["title"]))
        return domain.answer_out(doc, question.get("accepted_answer_id"))

    @rpc
    def accept(self, actor, answer_id):
        actor = Principal.of(actor)
        answer, question = self._answer(answer_id)
        domain.check_may_accept(actor, question)
        with self._indexing("question", question["_id"]):
            before = storage.accept(self.db, question["_id"], answer_id, actor.id,
                                    self.clock.now())
        after = self._entry("question", question["_id"])
        accepted_by = domain.accepted_event_by(before, after, answer_id, actor.id)
        if accepted_by is not None:
            self.dispatch("AnswerAccepted", event(
                question_id=question["_id"], answer_id=answer_id,
                author_id=answer["author"]["id"], accepted_by=accepted_by))
        return self._detail(after, actor)

    # ---------------------------------------------------------------- votes

    @rpc
    def vote(self, actor, kind, item_id, body):
        actor = Principal.of(actor)
        value = parse(schemas.VoteIn, body).value
        item = self._item(kind, item_id)
        domain.check_may_vote(actor, item)
        old = storage.cast_vote(self.db, kind, item_id, actor.id, value, self.clock.now())
        doc = storage.count_vote(self.db, kind, item, domain.vote_delta(old, value))
        return {"id": item_id, "kind": kind, "votes": domain.votes_out(doc.get("votes")),
                "my_vote": value}

    # --------------------------------------------------------------- search

    @rpc
    def search(self, actor, query):
        q = parse(schemas.SearchQuery, query)
        hits = self.index.engine.search(q.q, tags=[q.tag] if q.tag else None, kind=q.kind,
                                        limit=q.limit)
        return {"items": [h.to_api() for h in hits]}

    @rpc
    def index_status(self, actor):
        if Principal.of(actor).role != "admin":
            raise Forbidden("forbidden", "this needs the role: admin")
        return self.index.status(self.db)

    @ConfigTimer.decorator("KNOWLEDGE_FOLLOW_SECONDS", 1.0)
    def follow_index(self):
        self.index.follow(self.db)

    @ConfigTimer.decorator("KNOWLEDGE_SWEEP_SECONDS", 60.0)
    def sweep_pending(self):
        interval = float(config.get("KNOWLEDGE_SWEEP_SECONDS", 60.0))
        for marker in storage.stale_pending(self.db, self.clock.now(),
                                            timedelta(seconds=interval)):
            self._reindex(marker["kind"], marker["doc_id"])
            storage.clear_pending(self.db, marker["_id"])

    # --------------------------------------------------------------- drafts

    @handles("customers", "AlarmResolved")
    def on_alarm_resolved(self, payload):
        action, why = drafts.alarm_draft_action(payload)
        if action == drafts.MALFORMED:
            log.error("AlarmResolved %s cannot give a draft (%s); dropped",
                      payload.get("event_id") if isinstance(payload, dict) else None, why)
            return
        if action == drafts.SKIP:
            return
        doc = drafts.draft_from_alarm(payload, new_id(), new_id(), self.clock.now())
        if not storage.insert_draft(self.db, doc):
            log.info("alarm %s already gave its draft", payload.get("alarm_id"))

    def _draft(self, actor: Principal, draft_id: str) -> dict:
        doc = storage.find_draft(self.db, draft_id, actor.id)
        if doc is None:
            raise _not_found("draft")
        return doc

    @rpc
    def list_drafts(self, actor, query=None):
        actor = Principal.of(actor)
        page = parse(schemas.Page, query or {})
        docs, total = storage.list_drafts(self.db, actor.id, page.skip, page.page_size)
        return {"items": [domain.draft_out(d) for d in docs], "total": total}

    @rpc
    def get_draft(self, actor, draft_id):
        return domain.draft_out(self._draft(Principal.of(actor), draft_id))

    @rpc
    def edit_draft(self, actor, draft_id, body):
        actor = Principal.of(actor)
        changes = drafts.draft_changes(parse(schemas.DraftPatch, body).model_dump(
            exclude_none=True))
        self._draft(actor, draft_id)
        doc = storage.update_draft(self.db, draft_id, actor.id, changes, self.clock.now())
        if doc is None:
            raise Conflict("not_a_draft", "this draft was already published or discarded")
        return domain.draft_out(doc)

    @rpc
    def publish_draft(self, actor, draft_id):
        actor = Principal.of(actor)
        draft = self._draft(actor, draft_id)
        if draft["status"] != domain.DRAFT:
            raise Conflict("not_a_draft", "this draft was already published or discarded")
        now = self.clock.now()
        answer = drafts.published_answer(draft, now)
        answer["author"]["name"] = self._names([answer["author"]["id"]]).get(
            answer["author"]["id"], "")
        # the answer first, under its id fixed in the draft: a retried publish adds no second
        storage.insert_answer(self.db, answer)
        with self._indexing("question", draft_id):
            before = storage.close_draft(self.db, draft_id, actor.id, PUBLISHED, now, {
                "author": domain.author_of(actor), "accepted_answer_id": answer["_id"],
                "accepted_by": actor.id, "accepted_at": now, "created_at": now})
        if before is None:
            raise Conflict("not_a_draft", "this draft was already published or discarded")
        self.dispatch("AnswerAccepted", event(
            question_id=draft_id, answer_id=answer["_id"], author_id=answer["author"]["id"],
            accepted_by=actor.id))
        return self._detail(self._entry("question", draft_id), actor)

    @rpc
    def discard_draft(self, actor, draft_id):
        actor = Principal.of(actor)
        self._draft(actor, draft_id)
        before = storage.close_draft(self.db, draft_id, actor.id, domain.DISCARDED,
                                     self.clock.now())
        if before is None:
            raise Conflict("not_a_draft", "this draft was already published or discarded")
        return domain.draft_out(self._draft(actor, draft_id))
