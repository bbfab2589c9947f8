"""knowledge over real RabbitMQ and FerretDB: questions, answers, accepting,
edits with their history, votes (also concurrent), events reaching
subscribers and notify, drafts from resolved alarms, and several instances
sharing one index."""

from __future__ import annotations

import contextlib

import eventlet
import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.events import event_dispatcher

from services.accounts.service import AccountsService
from services.common import events
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.events import event, handles
from services.common.standalone import ServiceRpcClient
from services.knowledge.service import KnowledgeService
from services.notify.service import NotifyService
from tests.waiting import wait_for

ZHANG = {"id": "u-zhangwei", "role": "rep", "team_id": "t1", "name": "张伟", "username": "zw"}
LI = {"id": "u-lina", "role": "rep", "team_id": "t1", "name": "李娜", "username": "ln"}
ZHAO = {"id": "u-zhaolei", "role": "rep", "team_id": "t2", "name": "赵磊", "username": "zl"}
WANG = {"id": "u-wang", "role": "manager", "team_id": "t1", "name": "王经理", "username": "wj"}
CHEN = {"id": "u-chenjing", "role": "rep", "team_id": "t2", "name": "陈静", "username": "cj"}


@pytest.fixture
def kb(container_factory, service_config):
    container_factory(KnowledgeService, service_config).start()
    with ServiceRpcClient("knowledge") as client:
        yield client


def ids(result):
    return [item["id"] for item in result["items"]]


PRICE_Q = {"title": "客户嫌贵，老说同行便宜两成怎么办", "body": "做注塑件的老客户，报价发过去就说贵，"
           "拿同行的报价单压我们。", "tags": ["价格", "报价"], "customer_id": "c-7788", "stage": 50}


def test_question_answer_accept_and_search_without_spaces(kb, db_of):
    q = kb.ask(ZHANG, PRICE_Q)
    assert q["status"] == "open" and q["answer_count"] == 0 and q["customer_id"] == "c-7788"
    assert kb.search(LI, {"q": "客户嫌贵"})["items"][0]["id"] == q["id"]
    a1 = kb.answer(LI, q["id"], {"body": "先别降价，把交期和售后讲透，让老板算总账。"})
    a2 = kb.answer(WANG, q["id"], {"body": "拿出我们的质检报告和退货率，和同行比的是价值不是单价。"})
    # the asker's view: answers, no view counted for himself
    detail = kb.get_question(ZHANG, q["id"])
    assert [a["id"] for a in detail["answers"]] == [a1["id"], a2["id"]]
    assert detail["views"] == 0 and detail["answer_count"] == 2
    # others see neither the customer nor are they the asker
    other = kb.get_question(ZHAO, q["id"])
    assert other["customer_id"] is None and other["views"] == 1
    # accept: a colleague may not, the asker may, a manager may change it
    with pytest.raises(Forbidden):
        kb.accept(LI, a2["id"])
    accepted = kb.accept(ZHANG, a1["id"])
    assert accepted["status"] == "answered" and accepted["accepted_answer_id"] == a1["id"]
    assert accepted["answers"][0]["accepted"] is True
    changed = kb.accept(WANG, a2["id"])
    assert changed["accepted_answer_id"] == a2["id"] and changed["accepted_by"] == WANG["id"]
    assert [a["id"] for a in changed["answers"]][0] == a2["id"]
    # the accepted answer's words find the question (质检报告 only appears there)
    hit = kb.search(ZHAO, {"q": "质检报告退货率"})["items"][0]
    assert hit["id"] == q["id"] and hit["kind"] == "question"
    assert "【质检】" in hit["snippet"] and "【退货】" in hit["snippet"]
    # lists
    assert ids(kb.list_questions(ZHAO, {"status": "answered"})) == [q["id"]]
    assert kb.list_questions(ZHAO, {"status": "open"})["total"] == 0
    assert ids(kb.list_questions(ZHAO, {"tag": "報價"})) == [q["id"]]  # traditional tag
    with pytest.raises(NotFound):
        kb.get_question(ZHANG, "nosuchquestion")
    with pytest.raises(NotFound):
        kb.answer(ZHANG, "nosuchquestion", {"body": "答"})
    with pytest.raises(Invalid) as err:
        kb.answer(ZHANG, q["id"], {"body": ""})
    assert "body" in err.value.details["fields"]
    # nothing of this left a stale index row behind
    assert db_of("knowledge").kb_pending.count_documents({}) == 0


def test_edits_keep_every_version_and_reindex(kb):
    q = kb.ask(ZHANG, {"title": "样品寄出后客户失联", "body": "寄了三次样品都没回音。"})
    with pytest.raises(Forbidden):
        kb.edit_question(LI, q["id"], {"body": "改别人的"})
    v2 = kb.edit_question(ZHANG, q["id"], {"body": "寄了三次样品都没回音，电话也不接。"})
    assert v2["version"] == 2
    v3 = kb.edit_question(ZHANG, q["id"], {"title": "寄样后客户不接电话", "tags": ["样品"]})
    assert v3["version"] == 3
    same = kb.edit_question(ZHANG, q["id"], {"title": "寄样后客户不接电话"})
    assert same["version"] == 3  # nothing changed, no new version
    history = kb.history(ZHAO, "question", q["id"])
    assert history["total"] == 3
    assert [v["title"] for v in history["items"]] == [
        "样品寄出后客户失联", "样品寄出后客户失联", "寄样后客户不接电话"]
    assert history["items"][0]["body"] == "寄了三次样品都没回音。"
    assert all(v["editor"]["id"] == ZHANG["id"] for v in history["items"])
    # the index follows the edits: the new words find it, tags too
    assert kb.search(LI, {"q": "不接电话", "tag": "样品"})["items"][0]["id"] == q["id"]
    a = kb.answer(LI, q["id"], {"body": "换个号码打，或者发快递附手写信。"})
    with pytest.raises(Forbidden):
        kb.edit_answer(ZHANG, a["id"], {"body": "x"})
    a2 = kb.edit_answer(LI, a["id"], {"body": "换个号码打，或者寄一封手写信附上产品改进。"})
    assert a2["version"] == 2
    assert [v["body"][:6] for v in kb.history(ZHANG, "answer", a["id"])["items"]] == [
        "换个号码打，", "换个号码打，"]
    assert kb.search(ZHAO, {"q": "手写信"})["items"][0]["id"] == q["id"]
    s = kb.add_story(LI, {"title": "三个月追回八十万欠款", "body": "每周上门一次。", "tags": ["回款"]})
    s2 = kb.edit_story(LI, s["id"], {"body": "每周上门一次，带着对账单。"})
    assert s2["version"] == 2 and kb.history(ZHANG, "story", s["id"])["total"] == 2
    assert kb.search(ZHANG, {"q": "对账单", "kind": "story"})["items"][0]["id"] == s["id"]
    assert kb.search(ZHANG, {"q": "对账单", "kind": "question"})["items"] == []


def test_votes_are_one_per_user_even_when_clicked_at_once(kb, db_of):
    q = kb.ask(ZHANG, {"title": "客户要求月结九十天", "body": "能不能答应？", "tags": ["账期"]})
    with pytest.raises(Forbidden):
        kb.vote(ZHANG, "question", q["id"], {"value": 1})

    def click(value, who=LI):
        with ServiceRpcClient("knowledge") as c:
            return c.vote(who, "question", q["id"], {"value": value})

    pool = eventlet.GreenPool(20)
    results = list(pool.imap(click, [1] * 20))
    assert all(r["my_vote"] == 1 for r in results)
    detail = kb.get_question(ZHAO, q["id"])
    assert detail["votes"] == {"up": 1, "down": 0, "score": 1}
    assert db_of("knowledge").votes.count_documents({"item_id": q["id"]}) == 1
    # changing one's vote moves it, many users add up
    assert kb.vote(LI, "question", q["id"], {"value": -1})["votes"] == {
        "up": 0, "down": 1, "score": -1}
    users = [{**ZHAO, "id": f"u-{i}"} for i in range(8)]
    list(pool.imap(lambda u: click(1, u), users))
    assert kb.get_question(ZHAO, q["id"])["votes"] == {"up": 8, "down": 1, "score": 7}
    assert kb.vote(LI, "question", q["id"], {"value": 0})["votes"]["down"] == 0
    assert kb.get_question(LI, q["id"])["my_vote"] == 0
    # answers and stories too; an answer's votes count for its question's usefulness
    a = kb.answer(WANG, q["id"], {"body": "九十天可以，但要银行承兑。"})
    kb.vote(ZHANG, "answer", a["id"], {"value": 1})
    kb.vote(LI, "answer", a["id"], {"value": 1})
    top = kb.list_questions(ZHANG, {"sort": "top"})["items"][0]
    assert top["id"] == q["id"]
    with pytest.raises(Invalid):
        kb.vote(LI, "answer", a["id"], {"value": 5})
    with pytest.raises(NotFound):
        kb.vote(LI, "answer", "nosuchanswer", {"value": 1})


def test_sort_top_puts_the_useful_answered_questions_first(kb):
    plain = kb.ask(ZHANG, {"title": "展会上拿到的名片怎么跟进", "body": "两百张名片。"})
    answered = kb.ask(ZHANG, {"title": "老客户介绍新客户要给回扣吗", "body": "介绍费怎么给？"})
    voted = kb.ask(LI, {"title": "陌拜电话总被挂断", "body": "开场白怎么说？"})
    a = kb.answer(WANG, answered["id"], {"body": "给礼品不给现金。"})
    kb.accept(ZHANG, a["id"])
    kb.vote(ZHANG, "question", voted["id"], {"value": 1})
    for _ in range(3):
        kb.get_question(ZHAO, plain["id"])
    top = kb.list_questions(ZHAO, {"sort": "top"})
    assert ids(top) == [answered["id"], voted["id"], plain["id"]]
    assert top["items"][0]["usefulness"] == 10
    assert ids(kb.list_questions(ZHAO, {"sort": "new"})) == [voted["id"], answered["id"],
                                                             plain["id"]]
    page2 = kb.list_questions(ZHAO, {"sort": "top", "page": 2, "page_size": 2})
    assert ids(page2) == [plain["id"]] and page2["total"] == 3


def test_sort_top_puts_answered_questions_before_better_voted_open_ones(kb):
    popular = kb.ask(LI, {"title": "客户要求九十天账期怎么办", "body": "东莞的注塑厂，量大但要账期。",
                          "tags": ["账期"]})
    answered = kb.ask(ZHANG, {"title": "报价单要不要含税", "body": "客户问含税价和不含税价。"})
    plain = kb.ask(ZHAO, {"title": "展会后多久回访", "body": "加了三十个微信。"})
    for voter in (ZHANG, ZHAO, WANG, CHEN):
        kb.vote(voter, "question", popular["id"], {"value": 1})
    a = kb.answer(WANG, answered["id"], {"body": "报含税价，发票类型写清楚。"})
    kb.accept(ZHANG, a["id"])
    top = kb.list_questions(CHEN, {"sort": "top"})
    assert ids(top) == [answered["id"], popular["id"], plain["id"]]
    # four upvotes (12) outscore the accepted answer (10), yet the answer comes first
    assert [i["usefulness"] for i in top["items"][:2]] == [10, 12]
    assert ids(kb.list_questions(CHEN, {"sort": "top", "page": 2, "page_size": 1})) == [
        popular["id"]]
    # among open questions usefulness still decides
    assert ids(kb.list_questions(CHEN, {"sort": "top", "status": "open"})) == [
        popular["id"], plain["id"]]


class Probe:
    """A subscriber of knowledge's events, as notify is."""

    name = "kbprobe"
    seen: list = []

    @handles("knowledge", "AnswerPosted")
    def on_answer_posted(self, payload):
        self.seen.append(("AnswerPosted", payload))

    @handles("knowledge", "AnswerAccepted")
    def on_answer_accepted(self, payload):
        self.seen.append(("AnswerAccepted", payload))


def test_events_reach_subscribers_and_notify_tells_the_asker(
        container_factory, service_config, monkeypatch):
    for name in ("AnswerPosted", "AnswerAccepted"):
        monkeypatch.setitem(events.SUBSCRIPTIONS, ("knowledge", name), ("notify", "kbprobe"))
    Probe.seen.clear()
    for cls in (AccountsService, NotifyService, KnowledgeService, Probe):
        container_factory(cls, service_config).start()
    with ServiceRpcClient("knowledge") as kb, ServiceRpcClient("notify") as notify:
        q = kb.ask(ZHANG, {"title": "客户说下个月再说", "body": "拖了两个月了。"})
        a = kb.answer(WANG, q["id"], {"body": "问清楚卡在哪一步。"})
        kb.accept(ZHANG, a["id"])
        # again (the retry of a call whose event may be lost): the event goes
        # again; notify still tells the answerer once
        kb.accept(ZHANG, a["id"])
        wait_for(lambda: len(Probe.seen) >= 3, what="the probe's events")
        eventlet.sleep(0.5)
        kinds = [k for k, _ in Probe.seen]
        assert kinds == ["AnswerPosted", "AnswerAccepted", "AnswerAccepted"]
        posted, acc = Probe.seen[0][1], Probe.seen[1][1]
        assert {k: v for k, v in Probe.seen[2][1].items() if k not in ("event_id", "occurred_at")
                } == {k: v for k, v in acc.items() if k not in ("event_id", "occurred_at")}
        assert {k: posted[k] for k in ("question_id", "answer_id", "asker_id", "author_id",
                                       "title")} == {
            "question_id": q["id"], "answer_id": a["id"], "asker_id": ZHANG["id"],
            "author_id": WANG["id"], "title": "客户说下个月再说"}
        assert {k: acc[k] for k in ("question_id", "answer_id", "author_id", "accepted_by")} == {
            "question_id": q["id"], "answer_id": a["id"], "author_id": WANG["id"],
            "accepted_by": ZHANG["id"]}
        assert posted["event_id"] != acc["event_id"] and posted["occurred_at"]
        # notify turns them into notifications for the asker and the answerer
        inbox = wait_for(lambda: notify.list_notifications(ZHANG, {})["items"],
                         what="the asker's notification")
        assert inbox[0]["kind"] == "answer_posted"
        assert inbox[0]["title"] == "你的问题有了新解答：客户说下个月再说"
        assert wait_for(lambda: notify.list_notifications(WANG, {})["items"],
                        what="the answerer's")[0]["kind"] == "answer_accepted"
        eventlet.sleep(0.5)
        assert notify.list_notifications(WANG, {})["total"] == 1


def test_an_accept_whose_event_was_lost_sends_it_when_retried(
        container_factory, service_config, monkeypatch):
    for name in ("AnswerPosted", "AnswerAccepted"):
        monkeypatch.setitem(events.SUBSCRIPTIONS, ("knowledge", name), ("notify", "kbprobe"))
    Probe.seen.clear()
    real = events.Dispatcher.get_dependency
    lost = []

    def flaky(self, worker_ctx):
        dispatch = real(self, worker_ctx)

        def first_accept_lost(event_type, payload):
            if event_type == "AnswerAccepted" and not lost:
                lost.append(payload)
                raise ConnectionError("the broker went away after the write")
            return dispatch(event_type, payload)

        return first_accept_lost

    monkeypatch.setattr(events.Dispatcher, "get_dependency", flaky)
    for cls in (AccountsService, NotifyService, KnowledgeService, Probe):
        container_factory(cls, service_config).start()
    with ServiceRpcClient("knowledge") as kb, ServiceRpcClient("notify") as notify:
        q = kb.ask(LI, {"title": "客户要求先发货后付款", "body": "第一次合作，金额八万。"})
        a = kb.answer(ZHAO, q["id"], {"body": "首单至少三成预付，其余见提单付款。"})
        with pytest.raises(RemoteError):
            kb.accept(LI, a["id"])
        assert lost and kb.get_question(LI, q["id"])["accepted_answer_id"] == a["id"]
        kb.accept(LI, a["id"])  # the client retries
        wait_for(lambda: any(k == "AnswerAccepted" for k, _ in Probe.seen),
                 what="the accepted event")
        acc = next(p for k, p in Probe.seen if k == "AnswerAccepted")
        assert (acc["answer_id"], acc["author_id"], acc["accepted_by"]) == (
            a["id"], ZHAO["id"], LI["id"])
        told = wait_for(lambda: notify.list_notifications(ZHAO, {})["items"],
                        what="the answerer's notification")
        assert [n["kind"] for n in told] == ["answer_accepted"]


ALARM = {
    "alarm_id": "al-314", "customer_id": "c-hd", "company_name": "杭州宏达机械设备有限公司",
    "owner_id": ZHANG["id"], "team_id": "t1",
    "reason": "宏达机械的采购换人了，新采购不接电话（0571-88776655），跟了三个月没有进展。",
    "decision": "continue",
    "note": "宏达那种老国企换采购很正常，先找技术部的老熟人引荐新采购，别直接放弃。",
    "verified": "real", "resolved_by": WANG["id"], "new_owner_id": None,
}


def test_a_resolved_alarm_becomes_a_private_masked_draft_the_rep_publishes(
        container_factory, service_config, db_of):
    for cls in (AccountsService, KnowledgeService):
        container_factory(cls, service_config).start()
    dispatch = event_dispatcher()
    with ServiceRpcClient("knowledge") as kb:
        dispatch("customers", "AlarmResolved", event(**ALARM))
        dispatch("customers", "AlarmResolved", event(**ALARM))  # redelivered
        dispatch("customers", "AlarmResolved", event(**{**ALARM, "alarm_id": "al-315",
                                                        "note": ""}))  # no note, no draft
        dispatch("customers", "AlarmResolved", event(**{**ALARM, "alarm_id": "al-316",
                                                        "note": "华强那单先放一放"}))
        drafts = wait_for(lambda: (d := kb.list_drafts(ZHANG))["total"] == 2 and d,
                          what="two drafts")
        eventlet.sleep(0.5)
        assert kb.list_drafts(ZHANG)["total"] == 2  # the redelivery added none
        assert db_of("knowledge").questions.count_documents({"alarm_id": "al-314"}) == 1
        draft = next(d for d in drafts["items"] if d["source"]["alarm_id"] == "al-314")
        text = draft["title"] + draft["body"] + draft["answer"]["body"]
        assert "宏达" not in text and "88776655" not in text
        assert draft["answer"]["body"].startswith("某客户那种老国企换采购很正常")
        # private: not in lists, search, or anyone else's drafts
        assert kb.list_questions(LI, {})["total"] == 0
        assert kb.search(LI, {"q": "换采购"})["items"] == []
        assert kb.list_drafts(LI)["total"] == 0
        for who in (LI, WANG):
            with pytest.raises(NotFound):
                kb.get_draft(who, draft["id"])
            with pytest.raises(NotFound):
                kb.publish_draft(who, draft["id"])
        with pytest.raises(NotFound):
            kb.get_question(LI, draft["id"])
        # the rep edits, then publishes: a question with the note as accepted answer
        kb.edit_draft(ZHANG, draft["id"], {"title": "采购换人后新采购不接电话怎么办",
                                           "answer": draft["answer"]["body"] + "（王经理）"})
        published = kb.publish_draft(ZHANG, draft["id"])
        assert published["status"] == "answered" and published["version"] == 1
        assert published["author"] == {"id": ZHANG["id"], "name": "张伟"}
        assert published["answers"][0]["accepted"] is True
        assert published["answers"][0]["author"]["id"] == WANG["id"]
        assert published["answers"][0]["body"].endswith("（王经理）")
        assert kb.search(LI, {"q": "采购换人了怎么办"})["items"][0]["id"] == draft["id"]
        assert kb.list_drafts(ZHANG)["total"] == 1
        with pytest.raises(Conflict):
            kb.publish_draft(ZHANG, draft["id"])
        # the other one is discarded: kept, never shown
        other = kb.list_drafts(ZHANG)["items"][0]
        assert kb.discard_draft(ZHANG, other["id"])["status"] == "discarded"
        assert kb.list_drafts(ZHANG)["total"] == 0
        assert kb.search(LI, {"q": "先放一放"})["items"] == []
        assert db_of("knowledge").questions.count_documents({}) == 2  # nothing deleted
        with pytest.raises(Conflict):
            kb.edit_draft(ZHANG, other["id"], {"title": "还想改"})


def test_two_instances_share_the_index(container_factory, service_config):
    config = {**service_config, "KNOWLEDGE_FOLLOW_SECONDS": 0.2}
    container_factory(KnowledgeService, config).start()
    with ServiceRpcClient("knowledge") as kb:
        first = kb.ask(ZHANG, {"title": "招标文件里的资质要求看不懂", "body": "标书怎么写？"})
        container_factory(KnowledgeService, config).start()  # loads what is stored
        asked = [kb.ask(LI, {"title": f"第{i}次投标失败的复盘", "body": "竞争对手报价更低。"})
                 for i in range(4)]
        # round robin over both instances: each must know every entry
        eventlet.sleep(1.0)
        for _ in range(6):
            found = ids(kb.search(ZHAO, {"q": "投标", "limit": 10}))
            assert set(found) == {first["id"], *(a["id"] for a in asked)}


def test_an_interrupted_reindex_is_finished_by_the_sweep(container_factory, service_config,
                                                         db_of):
    config = {**service_config, "KNOWLEDGE_SWEEP_SECONDS": 0.3}
    container_factory(KnowledgeService, config).start()
    db = db_of("knowledge")
    with ServiceRpcClient("knowledge") as kb:
        q = kb.ask(ZHANG, {"title": "客户要发票抬头改名", "body": "开过的票能重开吗？"})
        # a write whose process died before re-indexing: text changed, marker left
        db.questions.update_one({"_id": q["id"]}, {"$set": {"body": "红冲以后重新开具专票。"}})
        db.kb_pending.insert_one({"_id": "m1", "kind": "question", "doc_id": q["id"],
                                  "at": db.questions.find_one({"_id": q["id"]})["created_at"]})
        wait_for(lambda: kb.search(LI, {"q": "红冲"})["items"], what="the sweep")
        assert db.kb_pending.count_documents({}) == 0


def test_hostile_and_odd_input_is_refused_by_field(kb):
    for body, field in [({"title": "x" * 201, "body": "b"}, "title"),
                        ({"title": "t", "body": "b", "tags": "价格"}, "tags"),
                        ({"title": "t", "body": "b", "$where": "1"}, "$where"),
                        ({"title": {"$gt": ""}, "body": "b"}, "title")]:
        with pytest.raises(Invalid) as err:
            kb.ask(ZHANG, body)
        assert field in err.value.details["fields"]
    for q in ({"q": "x" * 201}, {"q": "价格", "limit": 0}, {}):
        with pytest.raises(Invalid):
            kb.search(ZHANG, q)
    q = kb.ask(ZHANG, {"title": "【置顶】报价单模板 <script>", "body": "正文 $ne {}"})
    hit = kb.search(LI, {"q": "报价单模板"})["items"][0]
    assert hit["title"] == "【置顶】报价单模板 <script>" and hit["id"] == q["id"]
    with contextlib.suppress(Exception):
        kb.history(ZHANG, "nosuchkind", q["id"])
    with pytest.raises(NotFound):
        kb.history(ZHANG, "nosuchkind", q["id"])
