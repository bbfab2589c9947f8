"""Routes of the knowledge part of API.md, plus: editing (PATCH, author only)
with the history of every version, stories listed and read one by one, votes,
drafts offered from resolved difficulty alarms, and the index status."""

from __future__ import annotations

from gateway.http import Call, route
from services.common.schemas import Page
from services.knowledge import schemas

TAG = "knowledge"


class KnowledgeRoutes:
    # ------------------------------------------------------------ questions

    @route("POST", "/api/knowledge/questions", body=schemas.QuestionIn,
           response=schemas.Question, status=201, tag=TAG,
           summary="Ask the team a question (any user); a customer_id is kept as an id "
                   "and shown only to the asker")
    def ask_question(self, call: Call, body):
        return self.knowledge.ask(call.actor, body.model_dump())

    @route("GET", "/api/knowledge/questions", query=schemas.QuestionQuery,
           response=schemas.QuestionList, tag=TAG,
           summary="Published questions: ?status=open|answered&tag=&author_id=&sort=new|top "
                   "(top = most useful first: accepted, votes, views)")
    def list_questions(self, call: Call, query):
        return self.knowledge.list_questions(call.actor, query.model_dump(exclude_none=True))

    @route("GET", "/api/knowledge/questions/{id}", response=schemas.QuestionDetail, tag=TAG,
           summary="A question with its answers, the accepted one first; counts a view")
    def get_question(self, call: Call, id):  # noqa: A002 - the path parameter's name
        return self.knowledge.get_question(call.actor, id)

    @route("PATCH", "/api/knowledge/questions/{id}", body=schemas.EntryPatch,
           response=schemas.Question, tag=TAG,
           summary="Edit a question (its author only); the earlier text is kept")
    def edit_question(self, call: Call, id, body):  # noqa: A002
        return self.knowledge.edit_question(call.actor, id, body.model_dump(exclude_none=True))

    @route("GET", "/api/knowledge/questions/{id}/history", response=schemas.VersionList,
           tag=TAG, summary="Every version of a question's text, oldest first")
    def question_history(self, call: Call, id):  # noqa: A002
        return self.knowledge.history(call.actor, "question", id)

    @route("POST", "/api/knowledge/questions/{id}/vote", body=schemas.VoteIn,
           response=schemas.VoteOut, tag=TAG,
           summary="Vote on a question: 1 up, -1 down, 0 takes it back; one vote per user")
    def vote_question(self, call: Call, id, body):  # noqa: A002
        return self.knowledge.vote(call.actor, "question", id, body.model_dump())

    # -------------------------------------------------------------- answers

    @route("POST", "/api/knowledge/questions/{id}/answers", body=schemas.AnswerIn,
           response=schemas.Answer, status=201, tag=TAG,
           summary="Answer a question (any user); the asker is notified")
    def answer_question(self, call: Call, id, body):  # noqa: A002
        return self.knowledge.answer(call.actor, id, body.model_dump())

    @route("PATCH", "/api/knowledge/answers/{id}", body=schemas.AnswerPatch,
           response=schemas.Answer, tag=TAG,
           summary="Edit an answer (its author only); the earlier text is kept")
    def edit_answer(self, call: Call, id, body):  # noqa: A002
        return self.knowledge.edit_answer(call.actor, id, body.model_dump(exclude_none=True))

    @route("GET", "/api/knowledge/answers/{id}/history", response=schemas.VersionList,
           tag=TAG, summary="Every version of an answer's text, oldest first")
    def answer_history(self, call: Call, id):  # noqa: A002
        return self.knowledge.history(call.actor, "answer", id)

    @route("POST", "/api/knowledge/answers/{id}/accept", response=schemas.QuestionDetail,
           tag=TAG,
           summary="Accept an answer (the asker, a manager or an admin); choosing another "
                   "answer later replaces it")
    def accept_answer(self, call: Call, id):  # noqa: A002
        return self.knowledge.accept(call.actor, id)

    @route("POST", "/api/knowledge/answers/{id}/vote", body=schemas.VoteIn,
           response=schemas.VoteOut, tag=TAG,
           summary="Vote on an answer: 1 up, -1 down, 0 takes it back; one vote per user")
    def vote_answer(self, call: Call, id, body):  # noqa: A002
        return self.knowledge.vote(call.actor, "answer", id, body.model_dump())

    # -------------------------------------------------------------- stories

    @route("POST", "/api/knowledge/stories", body=schemas.StoryIn, response=schemas.Story,
           status=201, tag=TAG, summary="Tell a success story (成功经验); any user")
    def add_story(self, call: Call, body):
        return self.knowledge.add_story(call.actor, body.model_dump())

    @route("GET", "/api/knowledge/stories", query=schemas.StoryQuery,
           response=schemas.StoryList, tag=TAG,
           summary="Success stories: ?tag=&author_id=&sort=new|top")
    def list_stories(self, call: Call, query):
        return self.knowledge.list_stories(call.actor, query.model_dump(exclude_none=True))

    @route("GET", "/api/knowledge/stories/{id}", response=schemas.Story, tag=TAG,
           summary="A success story; counts a view")
    def get_story(self, call: Call, id):  # noqa: A002
        return self.knowledge.get_story(call.actor, id)

    @route("PATCH", "/api/knowledge/stories/{id}", body=schemas.EntryPatch,
           response=schemas.Story, tag=TAG,
           summary="Edit a story (its author only); the earlier text is kept")
    def edit_story(self, call: Call, id, body):  # noqa: A002
        return self.knowledge.edit_story(call.actor, id, body.model_dump(exclude_none=True))

    @route("GET", "/api/knowledge/stories/{id}/history", response=schemas.VersionList,
           tag=TAG, summary="Every version of a story's text, oldest first")
    def story_history(self, call: Call, id):  # noqa: A002
        return self.knowledge.history(call.actor, "story", id)

    @route("POST", "/api/knowledge/stories/{id}/vote", body=schemas.VoteIn,
           response=schemas.VoteOut, tag=TAG,
           summary="Vote on a story: 1 up, -1 down, 0 takes it back; one vote per user")
    def vote_story(self, call: Call, id, body):  # noqa: A002
        return self.knowledge.vote(call.actor, "story", id, body.model_dump())

    # --------------------------------------------------------------- search

    @route("GET", "/api/knowledge/search", query=schemas.SearchQuery,
           response=schemas.SearchOut, tag=TAG,
           summary="Search questions (with their answers) and stories: ?q=&tag=&kind=&limit=; "
                   "Chinese without spaces, synonyms and English work; best first, matches "
                   "marked 【】 in the snippet")
    def search_knowledge(self, call: Call, query):
        return self.knowledge.search(call.actor, query.model_dump(exclude_none=True))

    @route("GET", "/api/knowledge/index", roles=("admin",), response=schemas.IndexStatus,
           tag=TAG, summary="The search index of the instance that answers (admin)")
    def knowledge_index(self, call: Call):
        return self.knowledge.index_status(call.actor)

    # --------------------------------------------------------------- drafts

    @route("GET", "/api/knowledge/drafts", query=Page, response=schemas.DraftList, tag=TAG,
           summary="The caller's drafts from resolved difficulty alarms (only his own)")
    def list_drafts(self, call: Call, query):
        return self.knowledge.list_drafts(call.actor, query.model_dump())

    @route("GET", "/api/knowledge/drafts/{id}", response=schemas.Draft, tag=TAG,
           summary="One of the caller's drafts")
    def get_draft(self, call: Call, id):  # noqa: A002
        return self.knowledge.get_draft(call.actor, id)

    @route("PATCH", "/api/knowledge/drafts/{id}", body=schemas.DraftPatch,
           response=schemas.Draft, tag=TAG,
           summary="Edit a draft before publishing (question and answer text, tags)")
    def edit_draft(self, call: Call, id, body):  # noqa: A002
        return self.knowledge.edit_draft(call.actor, id, body.model_dump(exclude_none=True))

    @route("POST", "/api/knowledge/drafts/{id}/publish", response=schemas.QuestionDetail,
           tag=TAG,
           summary="Publish a draft: it becomes a question whose accepted answer is the "
                   "manager's note, searchable by everyone")
    def publish_draft(self, call: Call, id):  # noqa: A002
        return self.knowledge.publish_draft(call.actor, id)

    @route("POST", "/api/knowledge/drafts/{id}/discard", response=schemas.Draft, tag=TAG,
           summary="Discard a draft: nothing of it is ever published (it is kept, not deleted)")
    def discard_draft(self, call: Call, id):  # noqa: A002
        return self.knowledge.discard_draft(call.actor, id)
