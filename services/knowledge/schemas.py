"""Knowledge request and response shapes: they validate and they document."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.common.schemas import Id, LongText, Page, Strict, Text

Title = Annotated[Text, StringConstraints(min_length=1, max_length=200)]
Body = Annotated[LongText, StringConstraints(min_length=1, max_length=20000)]
Tag = Annotated[Text, StringConstraints(min_length=1, max_length=30)]
Tags = Annotated[list[Tag], Field(max_length=10)]
Stage = Annotated[int, Field(ge=0, le=100)]
Kind = Literal["question", "story"]

# ------------------------------------------------------------------ requests


class QuestionIn(Strict):
    """POST /api/knowledge/questions. `customer_id` and `stage` say where the
    problem came from; only the id is kept and only the asker sees it back."""

    title: Title
    body: Body
    tags: Tags = Field(default_factory=list)
    customer_id: Id | None = None
    stage: Stage | None = None


class StoryIn(QuestionIn):
    """POST /api/knowledge/stories: a success experience (成功经验)."""


class _Patch(Strict):
    @model_validator(mode="after")
    def _something_to_change(self):
        if not self.model_dump(exclude_none=True):
            raise ValueError("give at least one field to change")
        return self


class EntryPatch(_Patch):
    """PATCH a question or story: its author only; the previous text is kept."""

    title: Title | None = None
    body: Body | None = None
    tags: Tags | None = None


class AnswerIn(Strict):
    body: Body


class AnswerPatch(_Patch):
    body: Body | None = None


class DraftPatch(_Patch):
    """PATCH a draft before publishing it: the question and the answer text."""

    title: Title | None = None
    body: Body | None = None
    tags: Tags | None = None
    answer: Body | None = None


class VoteIn(Strict):
    """1 up, -1 down, 0 takes the vote back; one vote per user and item."""

    value: Literal[1, -1, 0]

    @field_validator("value", mode="before")
    @classmethod
    def _not_a_boolean(cls, v):
        if isinstance(v, bool):  # JSON true would pass as 1
            raise ValueError("must be 1, -1 or 0")
        return v


class _Query(BaseModel):
    # strings from the URL: not strict (page=2 arrives as "2"), unknown keys refused
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class QuestionQuery(_Query, Page):
    status: Literal["open", "answered"] | None = Field(
        None, description="open: no accepted answer yet; answered: an accepted answer")
    tag: Tag | None = None
    author_id: Id | None = None
    sort: Literal["new", "top"] = Field(
        "new", description=("new: newest first; top: answered questions first, each group "
                            "by `usefulness`"))


class StoryQuery(_Query, Page):
    tag: Tag | None = None
    author_id: Id | None = None
    sort: Literal["new", "top"] = "new"


class SearchQuery(_Query):
    q: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    tag: Tag | None = None
    kind: Kind | None = None
    limit: int = Field(10, ge=1, le=50)


# ----------------------------------------------------------------- responses


class KbAuthor(BaseModel):
    id: str
    name: str


class Votes(BaseModel):
    up: int
    down: int
    score: int = Field(description="up - down")


class Answer(BaseModel):
    id: str
    question_id: str
    body: str
    author: KbAuthor
    accepted: bool
    votes: Votes
    my_vote: int | None = Field(None, description="the caller's vote: 1, -1, 0 or null")
    version: int
    created_at: str
    updated_at: str


class Question(BaseModel):
    id: str
    kind: Literal["question"]
    title: str
    body: str
    tags: list[str]
    customer_id: str | None = Field(None, description="only for the asker; null for others")
    stage: int | None
    author: KbAuthor
    status: Literal["open", "answered"]
    answer_count: int
    accepted_answer_id: str | None
    accepted_by: str | None
    views: int
    votes: Votes
    my_vote: int | None = None
    usefulness: float = Field(description=(
        "10 if an answer is accepted + 3 x the question's net votes + the net votes of "
        "its answers + ln(1 + views); sort=top orders answered questions first, "
        "then by it"))
    version: int
    created_at: str
    updated_at: str


class QuestionDetail(Question):
    answers: list[Answer]


class QuestionList(BaseModel):
    items: list[Question]
    total: int


class Story(BaseModel):
    id: str
    kind: Literal["story"]
    title: str
    body: str
    tags: list[str]
    customer_id: str | None = Field(None, description="only for the author; null for others")
    stage: int | None
    author: KbAuthor
    views: int
    votes: Votes
    my_vote: int | None = None
    usefulness: float = Field(description="3 x net votes + ln(1 + views)")
    version: int
    created_at: str
    updated_at: str


class StoryList(BaseModel):
    items: list[Story]
    total: int


class Version(BaseModel):
    version: int
    at: str
    editor: KbAuthor
    title: str | None = None
    body: str
    tags: list[str] | None = None


class VersionList(BaseModel):
    """Every version of the text, oldest first; the last is the current one."""

    items: list[Version]
    total: int


class VoteOut(BaseModel):
    id: str
    kind: Literal["question", "answer", "story"]
    votes: Votes
    my_vote: int


class SearchItem(BaseModel):
    kind: Kind
    id: str
    title: str
    snippet: str = Field(description="matched terms marked with 【 and 】")
    score: float


class SearchOut(BaseModel):
    items: list[SearchItem]


class DraftAnswer(BaseModel):
    body: str
    author: KbAuthor


class DraftSource(BaseModel):
    alarm_id: str
    decision: str | None


class Draft(BaseModel):
    """A question + answer offered to a rep from a resolved difficulty alarm:
    only he sees it, nothing of it is searchable until he publishes it."""

    id: str
    status: Literal["draft", "published", "discarded"]
    title: str
    body: str
    tags: list[str]
    customer_id: str | None
    stage: int | None
    answer: DraftAnswer
    source: DraftSource
    created_at: str
    updated_at: str


class DraftList(BaseModel):
    items: list[Draft]
    total: int


class IndexStatus(BaseModel):
    doc_count: int
    terms: int
    postings: int
    generation: int = Field(description="index writes stored in the database")
    loaded_generation: int = Field(description="index writes this instance has applied")
