"""The knowledge base over HTTP, as a client sees it: asking, answering,
accepting, stories, votes, edits with their history, lists, search in Chinese
without spaces, drafts from a resolved difficulty alarm, who may do what,
and hostile input that never gets a 500."""

import random
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.test_platform import assert_error
from tests.waiting import wait_for

_BRAND = "鑫源泰丰华盛隆达恒通宏远嘉禾瑞祥永安金鼎银河星辰天宇博雅康泽德信和润"
_rng = random.SystemRandom()
KB = "/api/knowledge"


def ok(r, status=200):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def tag() -> str:
    """A tag of this test's own: the stack is shared by the whole session."""
    return "标签" + uuid.uuid4().hex[:6]


def ask(api, who, **body):
    body = {"title": "客户嫌贵，老拿同行报价压我", "body": "报价发过去就说贵。", **body}
    return ok(api.post(f"{KB}/questions", who.token, json=body), 201)


def test_ask_answer_accept_and_find_it_in_chinese(api, rep, rep2, other_rep, other_manager):
    t = tag()
    q = ask(api, rep, title="样品寄出去三周了客户一直没反馈", body="寄了两次样品，采购说在测试。",
            tags=[t, "样品"], customer_id="c" + uuid.uuid4().hex[:10], stage=25)
    assert q["status"] == "open" and q["author"] == {"id": rep.id, "name": "张伟"}
    assert q["stage"] == 25 and q["customer_id"].startswith("c")
    r = api.get(f"{KB}/questions/{q['id']}", other_rep.token)
    assert "样品寄出去三周了".encode() in r.content and b"\\u" not in r.content
    assert ok(r)["customer_id"] is None  # nobody else learns which customer it was
    a1 = ok(api.post(f"{KB}/questions/{q['id']}/answers", rep2.token,
                     json={"body": "约个时间上门，带着测试方案一起过一遍。"}), 201)
    a2 = ok(api.post(f"{KB}/questions/{q['id']}/answers", other_rep.token,
                     json={"body": "问清楚测试卡在哪个指标，再寄改进版的样板。"}), 201)
    assert a1["accepted"] is False and a1["author"]["name"] == "李娜"
    assert_error(api.post(f"{KB}/answers/{a1['id']}/accept", rep2.token), 403, "not_allowed")
    done = ok(api.post(f"{KB}/answers/{a1['id']}/accept", rep.token))
    assert done["status"] == "answered" and done["answers"][0]["id"] == a1["id"]
    # a manager (of any team) may change the accepted answer
    done = ok(api.post(f"{KB}/answers/{a2['id']}/accept", other_manager.token))
    assert done["accepted_answer_id"] == a2["id"] and done["accepted_by"] == other_manager.id
    # search: no spaces, colloquial, synonyms (样板 is a 样品 word), the accepted answer counts
    items = ok(api.get(f"{KB}/search", other_rep.token, params={"q": "寄样以后客户没消息"}))["items"]
    assert items and items[0]["id"] == q["id"] and items[0]["kind"] == "question"
    assert "【" in items[0]["snippet"] and items[0]["score"] > 0
    hit = ok(api.get(f"{KB}/search", rep.token, params={"q": "测试卡在哪个指标", "tag": t}))
    assert [i["id"] for i in hit["items"]] == [q["id"]]
    assert ok(api.get(f"{KB}/search", rep.token, params={"q": "样品", "tag": t,
                                                          "kind": "story"}))["items"] == []
    got = ok(api.get(f"{KB}/questions", rep2.token, params={"tag": t, "status": "answered"}))
    assert [i["id"] for i in got["items"]] == [q["id"]] and got["total"] == 1
    assert ok(api.get(f"{KB}/questions", rep2.token, params={"tag": t, "status": "open"}))[
        "total"] == 0
    assert_error(api.post(f"{KB}/answers/nosuchanswer/accept", rep.token), 404)
    assert_error(api.post(f"{KB}/questions/nosuchquestion/answers", rep.token,
                          json={"body": "答"}), 404)


def test_stories_lists_and_sort_top(api, rep, rep2, manager, other_rep):
    t = tag()
    s = ok(api.post(f"{KB}/stories", rep.token, json={
        "title": "三个月追回八十万欠款", "body": "每周上门对账，带着对账单和发货记录。", "tags": [t, "回款"]}),
        201)
    assert s["kind"] == "story" and s["version"] == 1
    seen = ok(api.get(f"{KB}/stories/{s['id']}", rep2.token))
    assert seen["views"] == 1
    assert ok(api.get(f"{KB}/stories/{s['id']}", rep.token))["views"] == 1  # the author's own
    listed = ok(api.get(f"{KB}/stories", other_rep.token, params={"tag": t}))
    assert [i["id"] for i in listed["items"]] == [s["id"]]
    found = ok(api.get(f"{KB}/search", other_rep.token, params={"q": "催款 对账单"}))["items"]
    assert s["id"] in [i["id"] for i in found]
    # top: accepted first, then endorsed, then the merely viewed
    plain = ask(api, rep, title="展会名片怎么跟进", tags=[t])
    voted = ask(api, rep, title="陌拜电话总被挂断", tags=[t])
    accepted = ask(api, rep, title="老客户转介绍要不要给介绍费", tags=[t])
    a = ok(api.post(f"{KB}/questions/{accepted['id']}/answers", manager.token,
                    json={"body": "送礼品，不给现金。"}), 201)
    ok(api.post(f"{KB}/answers/{a['id']}/accept", rep.token))
    ok(api.post(f"{KB}/questions/{voted['id']}/vote", rep2.token, json={"value": 1}))
    for _ in range(2):
        ok(api.get(f"{KB}/questions/{plain['id']}", rep2.token))
    top = ok(api.get(f"{KB}/questions", rep2.token, params={"tag": t, "sort": "top"}))
    assert [i["id"] for i in top["items"]] == [accepted["id"], voted["id"], plain["id"]]
    new = ok(api.get(f"{KB}/questions", rep2.token, params={"tag": t, "sort": "new",
                                                            "page": 2, "page_size": 2}))
    assert [i["id"] for i in new["items"]] == [plain["id"]] and new["total"] == 3


def test_only_the_author_edits_and_every_version_is_kept(api, rep, rep2, manager, admin):
    q = ask(api, rep, title="客户说月底再下单", body="已经拖了一个月。")
    url = f"{KB}/questions/{q['id']}"
    for who in (rep2, manager, admin):
        assert_error(api.patch(url, who.token, json={"body": "别人改的"}), 403, "not_author")
    assert_error(api.patch(url, rep.token, json={}), 422)
    v2 = ok(api.patch(url, rep.token, json={"body": "已经拖了两个月，老板不接电话。"}))
    v3 = ok(api.patch(url, rep.token, json={"title": "客户一拖再拖不下单", "tags": ["拖延"]}))
    assert (v2["version"], v3["version"]) == (2, 3)
    history = ok(api.get(url + "/history", rep2.token))
    assert history["total"] == 3
    assert [v["body"] for v in history["items"]] == [
        "已经拖了一个月。", "已经拖了两个月，老板不接电话。", "已经拖了两个月，老板不接电话。"]
    assert history["items"][-1]["title"] == "客户一拖再拖不下单"
    assert ok(api.get(f"{KB}/search", rep2.token, params={"q": "一拖再拖"}))["items"][0][
        "id"] == q["id"]
    a = ok(api.post(url + "/answers", rep2.token, json={"body": "给个月底前的优惠期限。"}), 201)
    assert_error(api.patch(f"{KB}/answers/{a['id']}", rep.token, json={"body": "x"}), 403)
    assert ok(api.patch(f"{KB}/answers/{a['id']}", rep2.token,
                        json={"body": "给个月底前下单的优惠期限。"}))["version"] == 2
    assert ok(api.get(f"{KB}/answers/{a['id']}/history", rep.token))["total"] == 2
    s = ok(api.post(f"{KB}/stories", rep2.token, json={"title": "一次成功的涨价", "body": "提前一个月通知。"}),
           201)
    assert_error(api.patch(f"{KB}/stories/{s['id']}", rep.token, json={"body": "x"}), 403)
    ok(api.patch(f"{KB}/stories/{s['id']}", rep2.token, json={"body": "提前一个月书面通知。"}))
    assert ok(api.get(f"{KB}/stories/{s['id']}/history", rep.token))["total"] == 2
    assert_error(api.get(f"{KB}/questions/nosuch/history", rep.token), 404)


def test_votes_count_once_per_user_even_at_the_same_instant(api, rep, rep2, other_rep):
    q = ask(api, rep, title="客户要求账期九十天能答应吗")
    url = f"{KB}/questions/{q['id']}/vote"
    assert_error(api.post(url, rep.token, json={"value": 1}), 403, "own_entry")

    def click(_):
        return requests.post(api.base + url, json={"value": 1}, timeout=30,
                             headers={"Authorization": f"Bearer {rep2.token}"}).status_code

    with ThreadPoolExecutor(12) as pool:
        assert set(pool.map(click, range(12))) == {200}
    got = ok(api.get(f"{KB}/questions/{q['id']}", other_rep.token))
    assert got["votes"] == {"up": 1, "down": 0, "score": 1}
    assert ok(api.post(url, other_rep.token, json={"value": -1}))["votes"] == {
        "up": 1, "down": 1, "score": 0}
    assert ok(api.post(url, rep2.token, json={"value": 0}))["votes"]["up"] == 0
    assert ok(api.get(f"{KB}/questions/{q['id']}", rep2.token))["my_vote"] == 0
    a = ok(api.post(f"{KB}/questions/{q['id']}/answers", rep2.token,
                    json={"body": "可以，但要银行承兑汇票。"}), 201)
    assert ok(api.post(f"{KB}/answers/{a['id']}/vote", rep.token, json={"value": 1}))[
        "votes"]["up"] == 1
    for bad in ({"value": 2}, {"value": "1"}, {"value": True}, {}, {"value": 1, "x": 1}):
        assert_error(api.post(url, other_rep.token, json=bad), 422)
    assert_error(api.post(f"{KB}/stories/nosuch/vote", rep.token, json={"value": 1}), 404)


def test_a_resolved_alarm_gives_the_rep_a_private_draft_to_publish(api, rep, rep2, manager):
    brand = "".join(_rng.sample(_BRAND, 3))
    name = f"苏州市{brand}精密机械有限公司"
    c = ok(api.post("/api/customers", rep.token, json={"company_name": name}), 201)
    alarm = ok(api.post(f"/api/customers/{c['id']}/alarms", rep.token, json={
        "reason": f"{brand}精密的采购经理离职了，新经理不回微信，电话 13912345678 也不接。"}), 201)
    ok(api.post(f"/api/alarms/{alarm['id']}/resolve", manager.token, json={
        "decision": "continue", "verified": "real",
        "note": f"{brand}这种老厂换人很常见，先找他们技术部的老熟人引荐，别急着放弃。"}))
    drafts = wait_for(lambda: [d for d in ok(api.get(f"{KB}/drafts", rep.token))["items"]
                               if d["source"]["alarm_id"] == alarm["id"]])
    draft = drafts[0]
    text = draft["title"] + draft["body"] + draft["answer"]["body"]
    assert brand not in text and "13912345678" not in text and "某客户" in text
    assert draft["answer"]["author"]["id"] == manager.id
    # only the rep sees it; nothing of it is searchable yet
    assert_error(api.get(f"{KB}/drafts/{draft['id']}", rep2.token), 404)
    assert_error(api.get(f"{KB}/drafts/{draft['id']}", manager.token), 404)
    assert_error(api.post(f"{KB}/drafts/{draft['id']}/publish", rep2.token), 404)
    assert_error(api.get(f"{KB}/questions/{draft['id']}", rep2.token), 404)
    assert not [i for i in ok(api.get(f"{KB}/search", rep2.token,
                                      params={"q": "技术部的老熟人引荐"}))["items"]
                if i["id"] == draft["id"]]
    edited = ok(api.patch(f"{KB}/drafts/{draft['id']}", rep.token, json={
        "title": "采购经理离职后新经理不理人怎么办", "tags": ["困难报警", "换人"]}))
    assert edited["title"] == "采购经理离职后新经理不理人怎么办"
    assert_error(api.patch(f"{KB}/drafts/{draft['id']}", rep.token, json={"answer": ""}), 422)
    published = ok(api.post(f"{KB}/drafts/{draft['id']}/publish", rep.token))
    assert published["status"] == "answered" and published["answers"][0]["accepted"] is True
    assert published["answers"][0]["author"] == {"id": manager.id, "name": "王经理"}
    found = ok(api.get(f"{KB}/search", rep2.token, params={"q": "采购经理离职了怎么办"}))["items"]
    assert found[0]["id"] == draft["id"]
    assert_error(api.post(f"{KB}/drafts/{draft['id']}/publish", rep.token), 409, "not_a_draft")
    assert_error(api.post(f"{KB}/drafts/{draft['id']}/discard", rep.token), 409)
    assert_error(api.post(f"{KB}/drafts/nosuchdraft/discard", rep.token), 404)


def test_index_status_is_for_admins(api, rep, manager, admin):
    assert_error(api.get(f"{KB}/index", rep.token), 403)
    assert_error(api.get(f"{KB}/index", manager.token), 403)
    before = ok(api.get(f"{KB}/index", admin.token))["doc_count"]
    ask(api, rep, title=f"索引计数{uuid.uuid4().hex[:6]}", body="新问题进入索引", tags=["索引"])
    status = wait_for(timeout=20, predicate=lambda: (s := ok(api.get(f"{KB}/index", admin.token)))["doc_count"]
                      > before and s)
    assert status["loaded_generation"] <= status["generation"]


ENDPOINTS = [
    ("POST", "/questions"), ("GET", "/questions"), ("GET", "/questions/x"),
    ("PATCH", "/questions/x"), ("GET", "/questions/x/history"), ("POST", "/questions/x/vote"),
    ("POST", "/questions/x/answers"), ("PATCH", "/answers/x"), ("GET", "/answers/x/history"),
    ("POST", "/answers/x/accept"), ("POST", "/answers/x/vote"), ("POST", "/stories"),
    ("GET", "/stories"), ("GET", "/stories/x"), ("PATCH", "/stories/x"),
    ("GET", "/stories/x/history"), ("POST", "/stories/x/vote"), ("GET", "/search?q=报价"),
    ("GET", "/index"), ("GET", "/drafts"), ("GET", "/drafts/x"), ("PATCH", "/drafts/x"),
    ("POST", "/drafts/x/publish"), ("POST", "/drafts/x/discard"),
]


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_every_endpoint_needs_a_valid_token(api, method, path):
    assert_error(api.request(method, KB + path, json={}), 401)
    assert_error(api.request(method, KB + path, "not.a.token", json={}), 401)


def test_every_endpoint_is_in_the_openapi_document(api):
    doc = ok(api.get("/api/openapi.json"))
    for method, path in ENDPOINTS:
        templ = (KB + path.split("?")[0]).replace("/x", "/{id}")
        assert method.lower() in doc["paths"][templ], templ


HOSTILE = [
    ("POST", "/questions", b"{not json"), ("POST", "/questions", b"[1,2]"),
    ("POST", "/questions", b'"just a string"'), ("POST", "/questions", b""),
    ("POST", "/questions", b'{"title": "t", "body": "b", "tags": [1]}'),
    ("POST", "/questions", b'{"title": null, "body": "b"}'),
    ("POST", "/questions", b'{"title": "t", "body": "b", "customer_id": {"$ne": 1}}'),
    ("POST", "/questions", b'{"title": "t\\u0000", "body": "b"}'),
    ("POST", "/questions", ('{"title": "t", "body": "' + "长" * 20001 + '"}').encode()),
    ("POST", "/questions", b'{"title": "t", "body": "b", "stage": 1e309}'),
    ("POST", "/questions", b'{"title": "t", "body": "b", "stage": "50"}'),
    ("POST", "/stories", b'{"title": ["t"], "body": "b"}'),
    ("PATCH", "/questions/x", b'{"body": 12}'), ("PATCH", "/answers/x", b"{}"),
    ("POST", "/questions/x/answers", b'{"body": "   "}'),
    ("POST", "/questions/x/vote", b'{"value": 1.0}'),
    ("PATCH", "/drafts/x", b'{"status": "published"}'),
    ("GET", "/search", None), ("GET", "/search?q=", None), ("GET", "/search?q=" + "长" * 201, None),
    ("GET", "/search?q=报价&kind=answer", None), ("GET", "/search?q=报价&limit=-1", None),
    ("GET", "/search?q=报价&limit=abc", None), ("GET", "/search?q=报价&x=1", None),
    ("GET", "/questions?page_size=101", None), ("GET", "/questions?page=0", None),
    ("GET", "/questions?sort=best", None), ("GET", "/questions?status=closed", None),
    ("GET", "/stories?sort=%00", None), ("GET", "/drafts?page_size=0", None),
]


@pytest.mark.parametrize("method,path,body", HOSTILE)
def test_hostile_input_gets_a_clear_4xx(api, rep, method, path, body):
    r = api.request(method, KB + path, rep.token, data=body,
                    headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 404, 413, 422), (r.status_code, r.text)
    assert_error(r, r.status_code)


@pytest.mark.parametrize("odd", ["..%2F..%2Fetc", "%E4%B8%AD%E6%96%87", "x" * 300, "%24where",
                                 "'%20OR%201=1", "null"])
def test_odd_ids_are_just_not_found(api, rep, odd):
    for method, path, body in [("GET", f"/questions/{odd}", None),
                               ("GET", f"/stories/{odd}/history", None),
                               ("POST", f"/answers/{odd}/accept", None),
                               ("POST", f"/questions/{odd}/vote", {"value": 1}),
                               ("GET", f"/drafts/{odd}", None)]:
        r = api.request(method, KB + path, rep.token, json=body)
        assert r.status_code == 404, (path, r.status_code, r.text)


def test_search_handles_odd_queries(api, rep):
    for q in ("的了吗", "!!!", "<script>alert(1)</script>", "'; DROP TABLE --", "$where",
              "ＰＲＩＣＥ", "報價單", "🙂🙂", "a" * 200):
        items = ok(api.get(f"{KB}/search", rep.token, params={"q": q}))["items"]
        assert isinstance(items, list)
    # English and digits reach Chinese entries through synonyms
    ask(api, rep, title="客户要求月结九十天", body="付款条件怎么谈")
    assert ok(api.get(f"{KB}/search", rep.token, params={"q": "payment terms 90"}))["items"]
