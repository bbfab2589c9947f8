"""Knowledge rules: permissions, votes, usefulness, edit history, drafts from
difficulty alarms with the customer masked."""

from datetime import UTC, datetime, timedelta

import pytest

from services.common.errors import Forbidden, Invalid
from services.common.principal import Principal
from services.common.validation import parse
from services.knowledge import domain, drafts, schemas
from services.knowledge.domain import (
    usefulness,
    vote_delta,
)
from services.knowledge.drafts import company_aliases, draft_from_alarm, mask_customer

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
REP = Principal("u-rep", "rep", "t1", "张伟", "zhangwei")
REP2 = Principal("u-rep2", "rep", "t1", "李娜", "lina")
MANAGER = Principal("u-mgr", "manager", "t1", "王经理", "wang")
OTHER_MANAGER = Principal("u-mgr2", "manager", "t2", "孙经理", "sun")
ADMIN = Principal("u-adm", "admin", None, "管理员", "admin")


def question(author=REP, **extra):
    doc = domain.new_entry("question", "q1", {"title": "客户嫌贵怎么办", "body": "报价后客户说太贵",
                                              "tags": ["价格", " #价格 ", "報價"]}, author, NOW)
    doc.update(extra)
    return doc


# ------------------------------------------------------------------ rules


def test_new_question_keeps_tags_once_and_normalized_keys():
    q = question()
    assert q["tags"] == ["价格", "報價"]
    assert q["tag_keys"] == ["价格", "报价"]  # traditional folded for filtering
    assert q["author"] == {"id": "u-rep", "name": "张伟"}
    assert q["status"] == "published" and q["version"] == 1 and q["history"] == []


def test_only_the_author_edits():
    q = question()
    domain.check_may_edit(REP, q)
    for other in (REP2, MANAGER, ADMIN):
        with pytest.raises(Forbidden) as err:
            domain.check_may_edit(other, q)
        assert err.value.code == "not_author"


def test_the_asker_or_any_manager_or_admin_accepts():
    q = question()
    for who in (REP, MANAGER, OTHER_MANAGER, ADMIN):
        domain.check_may_accept(who, q)
    with pytest.raises(Forbidden):
        domain.check_may_accept(REP2, q)


def test_nobody_votes_on_his_own_text():
    with pytest.raises(Forbidden) as err:
        domain.check_may_vote(REP, question())
    assert err.value.code == "own_entry"
    domain.check_may_vote(REP2, question())


@pytest.mark.parametrize("old,new,inc", [
    (0, 1, {"up": 1}), (0, -1, {"down": 1}), (1, 1, {}), (1, -1, {"up": -1, "down": 1}),
    (-1, 0, {"down": -1}), (1, 0, {"up": -1}), (0, 0, {}),
])
def test_vote_delta(old, new, inc):
    assert vote_delta(old, new) == inc


def test_usefulness_puts_accepted_and_endorsed_questions_first():
    plain = question(views=3)
    accepted = question(accepted_answer_id="a1")
    voted = question(votes={"up": 4, "down": 1})
    answers_voted = question(answer_votes={"up": 2, "down": 0})
    many_views = question(views=1000)
    assert usefulness(accepted) == 10
    assert usefulness(voted) == 9
    assert usefulness(answers_voted) == 2
    assert usefulness(plain) == pytest.approx(1.3863, abs=1e-3)
    # a thousand views weigh less than one accepted answer
    assert usefulness(accepted) > usefulness(voted) > usefulness(many_views) > 0
    story = domain.new_entry("story", "s1", {"title": "t", "body": "b"}, REP, NOW)
    story["votes"] = {"up": 2, "down": 0}
    assert usefulness(story) == 6


def test_sort_top_puts_answered_questions_before_better_voted_open_ones():
    # 4 upvotes on an open question score 12, an accepted answer alone 10:
    # a new hire still wants the answered one first
    open_popular = question(votes={"up": 4, "down": 0})
    answered_quiet = question(accepted_answer_id="a1")
    answered_voted = question(accepted_answer_id="a2", votes={"up": 1, "down": 0})
    open_plain = question(views=20)
    assert usefulness(open_popular) > usefulness(answered_quiet)
    ranked = sorted([open_plain, open_popular, answered_quiet, answered_voted],
                    key=domain.top_rank, reverse=True)
    assert ranked == [answered_voted, answered_quiet, open_popular, open_plain]
    # an old stored document without the newer counters ranks too
    assert domain.top_rank({"accepted_answer_id": "a9"}) == (1, 10)


def test_accepting_the_accepted_answer_again_sends_the_event_again():
    open_q = question()
    accepted = question(accepted_answer_id="a1", accepted_by="u-mgr")
    # a first accept: the event names who accepted
    assert domain.accepted_event_by(open_q, accepted, "a1", "u-mgr") == "u-mgr"
    # the retry of an accept whose event was lost: sent again, naming the first acceptor
    assert domain.accepted_event_by(None, accepted, "a1", "u-rep") == "u-mgr"
    # nothing changed and the answer is not the accepted one (say, a draft): no event
    assert domain.accepted_event_by(None, accepted, "a2", "u-rep") is None


def test_status_open_until_an_answer_is_accepted():
    assert domain.question_status(question()) == "open"
    assert domain.question_status(question(accepted_answer_id="a1")) == "answered"


def test_index_source_puts_the_accepted_answer_apart():
    q = question(accepted_answer_id="a2")
    answers = [{"_id": "a1", "body": "先别降价"}, {"_id": "a2", "body": "讲清楚价值"}]
    src = domain.index_source(q, answers)
    assert src["accepted_answer"] == "讲清楚价值"
    assert src["answers"] == ["先别降价"]
    assert src["id"] == "q1" and src["kind"] == "question"


# ------------------------------------------------------------------ edits


def test_edit_keeps_the_replaced_version():
    q = question()
    later = NOW + timedelta(hours=2)
    changes, snapshot = domain.edit("question", q, {"body": "报价后客户说比同行贵两成"}, REP, later)
    assert changes["body"] == "报价后客户说比同行贵两成"
    assert changes["version"] == 2 and changes["updated_at"] == later
    assert snapshot == {"version": 1, "at": NOW, "editor": {"id": "u-rep", "name": "张伟"},
                        "title": "客户嫌贵怎么办", "body": "报价后客户说太贵",
                        "tags": ["价格", "報價"]}
    q.update(changes)
    q["history"].append(snapshot)
    out = domain.versions_out("question", q)
    assert out["total"] == 2
    assert [v["version"] for v in out["items"]] == [1, 2]
    assert out["items"][0]["body"] == "报价后客户说太贵"
    assert out["items"][1]["body"] == "报价后客户说比同行贵两成"
    assert out["items"][1]["at"] == "2025-03-14T11:30:00+00:00"


def test_edit_without_a_change_makes_no_version():
    q = question()
    assert domain.edit("question", q, {"title": "客户嫌贵怎么办"}, REP, NOW) is None
    assert domain.edit("question", q, {"tags": ["价格", "報價"]}, REP, NOW) is None
    changes, _ = domain.edit("question", q, {"tags": ["账期"]}, REP, NOW)
    assert changes["tags"] == ["账期"] and changes["tag_keys"] == ["账期"]


def test_answer_edit_touches_only_the_body():
    a = domain.new_answer("a1", "q1", "先别降价", {"id": "u-rep2", "name": "李娜"}, NOW)
    changes, snapshot = domain.edit("answer", a, {"body": "先别急着降价", "title": "x"}, REP2, NOW)
    assert set(snapshot) == {"version", "at", "editor", "body"}
    assert "title" not in changes


# ------------------------------------------------------------------ masking


def test_company_aliases_cover_what_reps_write():
    aliases = company_aliases("深圳市华强电子科技有限公司")
    assert aliases[0] == "深圳市华强电子科技有限公司"
    for short in ("深圳市华强电子科技", "华强电子科技", "华强"):
        assert short in aliases
    assert "华强电子科技" in company_aliases("华强电子科技（深圳）有限公司")
    assert "小米" in company_aliases("北京小米科技有限责任公司")
    assert "acme" in [a.lower() for a in company_aliases("Acme Trading Co., Ltd.")]
    assert company_aliases("") == [] and company_aliases(None) == []
    # a name that is all industry words keeps at least two characters
    assert all(len(a) >= 2 for a in company_aliases("科技有限公司"))


def test_mask_customer_hides_names_phones_mails_and_credit_codes():
    text = ("华强那边的采购刘总说深圳市华强电子科技有限公司今年预算砍了，华强电子科技的老板不接电话，"
            "手机 138-0013-8000，座机 0755-86001234，邮件 liu@huaqiang.com.cn，"
            "信用代码 91440300MA5F1234XY。")
    masked = mask_customer(text, "深圳市华强电子科技有限公司")
    for secret in ("华强", "13800138000", "138-0013-8000", "0755-86001234", "liu@", "91440300"):
        assert secret not in masked, (secret, masked)
    assert "某客户那边的采购刘总" in masked
    assert "预算砍了" in masked  # the experience itself stays


def test_mask_customer_without_a_company_name_still_hides_contacts():
    assert mask_customer("打 13912345678 找王总", None) == "打 *** 找王总"


# ------------------------------------------------------------------ drafts


ALARM = {
    "alarm_id": "al-1", "customer_id": "c-9", "company_name": "杭州宏达机械设备有限公司",
    "owner_id": "u-rep", "team_id": "t1",
    "reason": "宏达机械的采购换人了，新采购不接电话。跟了三个月没有进展，想放弃。",
    "decision": "continue", "note": "宏达那种老国企换采购很正常，先找技术部的老熟人引荐新采购，别直接放弃。",
    "verified": "real", "resolved_by": "u-mgr", "new_owner_id": None,
}


def test_draft_from_alarm_is_masked_and_belongs_to_the_rep():
    d = draft_from_alarm(ALARM, "q-d1", "a-d1", NOW)
    assert d["status"] == "draft" and d["alarm_id"] == "al-1"
    assert d["author"]["id"] == "u-rep"
    assert d["customer_id"] == "c-9"
    text = d["title"] + d["body"] + d["draft_answer"]["body"]
    assert "宏达" not in text
    assert d["title"].startswith("困难报警：某客户的采购换人了")
    assert "继续跟进" in d["body"]
    assert d["draft_answer"] == {"id": "a-d1", "author": {"id": "u-mgr", "name": ""},
                                 "body": "某客户那种老国企换采购很正常，先找技术部的老熟人引荐新采购，别直接放弃。"}
    assert d["tags"] == ["困难报警"]
    out = domain.draft_out(d)
    assert out["answer"]["body"].startswith("某客户")
    assert out["source"] == {"alarm_id": "al-1", "decision": "continue"}


def test_only_an_alarm_with_a_note_gives_a_draft():
    assert drafts.wants_draft(ALARM)
    assert not drafts.wants_draft({**ALARM, "note": "  "})
    assert not drafts.wants_draft({**ALARM, "note": None})
    assert not drafts.wants_draft({**ALARM, "owner_id": None})


def test_a_resolved_alarm_that_can_never_give_a_draft_is_dropped_not_retried():
    assert drafts.alarm_draft_action(ALARM) == (drafts.DRAFT_IT, "")
    assert drafts.alarm_draft_action({**ALARM, "note": ""})[0] == drafts.SKIP
    assert drafts.alarm_draft_action({**ALARM, "owner_id": None})[0] == drafts.SKIP
    no_alarm = {k: v for k, v in ALARM.items() if k != "alarm_id"}
    assert drafts.alarm_draft_action(no_alarm) == (drafts.MALFORMED, "missing alarm_id")
    for broken in ({**ALARM, "alarm_id": "  "}, {**ALARM, "owner_id": 42},
                   {**ALARM, "note": ["先找技术部"]}, {**ALARM, "reason": {"text": "换采购"}},
                   {**ALARM, "decision": ["continue"]}, None, "al-1"):
        assert drafts.alarm_draft_action(broken)[0] == drafts.MALFORMED, broken
    # whatever is judged draftable, draft_from_alarm builds without an error
    for payload in (ALARM, {**ALARM, "decision": None, "reason": None, "company_name": None}):
        assert drafts.alarm_draft_action(payload)[0] == drafts.DRAFT_IT
        assert draft_from_alarm(payload, "q", "a", NOW)["alarm_id"] == "al-1"


def test_long_reason_gives_a_short_title():
    d = draft_from_alarm({**ALARM, "reason": "客户" * 80}, "q", "a", NOW)
    assert len(d["title"]) <= 70 and d["title"].endswith("…")


def test_draft_changes_edit_the_answer_too():
    assert drafts.draft_changes({"title": "新标题", "answer": "改过的解答", "tags": ["拜访"]}) == {
        "title": "新标题", "draft_answer.body": "改过的解答", "tags": ["拜访"],
        "tag_keys": ["拜访"]}


# ------------------------------------------------------------------ output


def test_customer_id_is_shown_only_to_the_author():
    q = question(customer_id="c-42")
    assert domain.question_out(q, REP)["customer_id"] == "c-42"
    assert domain.question_out(q, MANAGER)["customer_id"] is None
    assert domain.question_out(q, REP2)["customer_id"] is None


def test_detail_lists_the_accepted_answer_first_then_by_votes():
    q = question(accepted_answer_id="a3")
    answers = [
        {**domain.new_answer("a1", "q1", "一", {"id": "x", "name": "甲"}, NOW)},
        {**domain.new_answer("a2", "q1", "二", {"id": "y", "name": "乙"}, NOW),
         "votes": {"up": 3, "down": 0}},
        {**domain.new_answer("a3", "q1", "三", {"id": "z", "name": "丙"}, NOW)},
    ]
    out = domain.question_detail(q, answers, REP2, {"a2": 1})
    assert [a["id"] for a in out["answers"]] == ["a3", "a2", "a1"]
    assert out["answers"][0]["accepted"] is True
    assert out["answers"][1]["my_vote"] == 1 and out["answers"][2]["my_vote"] is None
    assert out["status"] == "answered"


# ------------------------------------------------------------------ schemas


@pytest.mark.parametrize("body,field", [
    ({"title": "", "body": "x"}, "title"),
    ({"title": "   ", "body": "x"}, "title"),
    ({"title": "t"}, "body"),
    ({"title": "t", "body": "b", "tags": ["x" * 31]}, "tags.0"),
    ({"title": "t", "body": "b", "tags": [str(i) for i in range(11)]}, "tags"),
    ({"title": "t", "body": "b", "stage": 101}, "stage"),
    ({"title": "t", "body": "b", "customer_id": "../etc"}, "customer_id"),
    ({"title": 5, "body": "b"}, "title"),
    ({"title": "t", "body": "b", "owner": "me"}, "owner"),
    ({"title": "t\x00", "body": "b"}, "title"),
])
def test_question_schema_names_the_bad_field(body, field):
    with pytest.raises(Invalid) as err:
        parse(schemas.QuestionIn, body)
    assert field in err.value.details["fields"], err.value.details


def test_patch_needs_something_to_change():
    with pytest.raises(Invalid):
        parse(schemas.EntryPatch, {})
    assert parse(schemas.EntryPatch, {"body": "新内容"}).body == "新内容"


def test_query_strings_are_coerced_and_unknown_keys_refused():
    q = parse(schemas.QuestionQuery, {"page": "2", "page_size": "5", "sort": "top"})
    assert (q.page, q.page_size, q.sort) == (2, 5, "top")
    with pytest.raises(Invalid):
        parse(schemas.QuestionQuery, {"sort": "best"})
    with pytest.raises(Invalid):
        parse(schemas.QuestionQuery, {"page_size": "1000"})
    with pytest.raises(Invalid):
        parse(schemas.SearchQuery, {"q": ""})
    with pytest.raises(Invalid):
        parse(schemas.SearchQuery, {"q": "报价", "kind": "answer"})
    for value in (2, True, "1", -2):
        with pytest.raises(Invalid):
            parse(schemas.VoteIn, {"value": value})
