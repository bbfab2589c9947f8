"""The relevance suite through the real service on RabbitMQ + FerretDB: the 75
corpus entries go in over RPC as a team would write them (question, a
colleague's answer, the asker accepting it; success stories), the 52 queries
come back through the search RPC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.common.standalone import ServiceRpcClient
from services.knowledge.service import KnowledgeService
from tests.unit.knowledge import relevance
from tests.unit.knowledge.reference_index import InMemoryIndex

CORPUS = json.loads((Path(__file__).parents[1] / "unit" / "knowledge" / "relevance_corpus.json")
                    .read_text("utf-8"))
REPS = [{"id": f"u-rep{i}", "role": "rep", "team_id": "t1", "name": name, "username": f"r{i}"}
        for i, name in enumerate(("张伟", "李娜", "赵磊", "陈晨"))]
MANAGER = {"id": "u-mgr", "role": "manager", "team_id": "t1", "name": "王经理", "username": "wj"}


@pytest.fixture
def loaded(container_factory, service_config):
    container_factory(KnowledgeService, service_config).start()
    with ServiceRpcClient("knowledge") as kb:
        to_corpus = {}
        for i, e in enumerate(CORPUS["entries"]):
            author = REPS[i % len(REPS)]
            body = {"title": e["title"], "body": e["body"], "tags": e.get("tags") or []}
            if e["kind"] == "story":
                made = kb.add_story(author, body)
            else:
                made = kb.ask(author, body)
                if e.get("accepted_answer"):
                    answer = kb.answer(MANAGER, made["id"], {"body": e["accepted_answer"]})
                    kb.accept(author, answer["id"])
            to_corpus[made["id"]] = e["id"]
        yield kb, to_corpus


def test_relevance_through_the_service(loaded, capsys):
    kb, to_corpus = loaded
    reference = InMemoryIndex()
    for e in CORPUS["entries"]:
        reference.add(e)
    viewer = REPS[0]

    def ranked(query):
        items = kb.search(viewer, {"q": query, "limit": 10})["items"]
        got = [to_corpus[i["id"]] for i in items]
        # the service ranks exactly as the reference implementation
        ref = reference.search(query, limit=10)
        assert got == [h.doc_id for h in ref], query
        assert [i["score"] for i in items] == [h.to_api()["score"] for h in ref], query
        return got

    recall, mrr, misses = relevance.measure(CORPUS["queries"], ranked)
    summary = (f"knowledge relevance through the service (RabbitMQ + FerretDB): "
               f"{len(CORPUS['entries'])} entries, {len(CORPUS['queries'])} queries: "
               f"recall@3={recall:.3f} MRR={mrr:.3f}")
    with capsys.disabled():
        print("\n" + summary)
        for miss in misses:
            print("  miss:", miss)
    assert recall >= 0.8, summary + "\n" + "\n".join(misses)
    # Chinese without spaces, an English query, a tag filter, snippets marked
    top = kb.search(viewer, {"q": "客户一直拖着不下单"})["items"][0]
    assert to_corpus[top["id"]] in ("q01", "s01") and "【" in top["snippet"]
    assert kb.search(viewer, {"q": "payment terms"})["items"]
    assert all(to_corpus[i["id"]] != "q03"
               for i in kb.search(viewer, {"q": "客户嫌贵", "tag": "回款"})["items"])
