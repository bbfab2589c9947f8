"""The serving engine ranks exactly like the InMemoryIndex reference, while
reading far fewer postings."""

import json
import random
import re
from pathlib import Path

from services.knowledge import search
from services.knowledge.engine import Engine, forward_row
from tests.unit.knowledge import reference_index
from tests.unit.knowledge.reference_index import InMemoryIndex

CORPUS = json.loads(Path(__file__).with_name("relevance_corpus.json").read_text("utf-8"))


def both(entries):
    ref, eng = InMemoryIndex(), Engine()
    for i, e in enumerate(entries):
        ref.add(e)
        eng.apply(forward_row(e, rev=i + 1))
    return ref, eng


def same(ref_hits, eng_hits):
    assert [h.doc_id for h in eng_hits] == [h.doc_id for h in ref_hits]
    for a, b in zip(eng_hits, ref_hits, strict=True):
        assert a.score == b.score
        assert (a.kind, a.title, a.snippet) == (b.kind, b.title, b.snippet)


def test_every_corpus_query_ranks_like_the_reference():
    ref, eng = both(CORPUS["entries"])
    assert eng.stats == ref.stats
    for q in CORPUS["queries"]:
        for kwargs in ({}, {"limit": 3}, {"tags": ["价格"]}, {"kind": "story"},
                       {"kind": "question", "tags": ["回款"], "limit": 5}):
            same(ref.search(q["q"], **kwargs), eng.search(q["q"], **kwargs))
    assert eng.search("") == [] and eng.search("的了吗") == []
    assert eng.search("zzqx") == [] and ref.search("zzqx") == []


def test_snippets_of_title_and_tag_matches_are_marked_alike():
    ref, eng = both([
        {"id": "q1", "kind": "question", "title": "账期怎么谈", "tags": ["付款"],
         "body": "东莞这家注塑厂要求九十天付款。"},
        {"id": "q2", "kind": "question", "title": "老板总说下个月再付",
         "tags": ["回款", "账期"], "body": "对账单发了三次，财务说老板没签字。"},
    ])
    hits = eng.search("账期")
    same(ref.search("账期"), hits)
    assert {h.doc_id: "【账期】" in h.snippet for h in hits} == {"q1": True, "q2": True}


def test_without_limit_every_matching_entry_is_ranked():
    ref, eng = both(CORPUS["entries"])
    terms = search.parse_query("客户嫌贵")
    expected = reference_index.rank(terms, {t: dict(ref._postings[t]) for t in reference_index.query_vocabulary(terms)
                                   if t in ref._postings}, ref._records, ref.stats, limit=None)
    assert eng.rank(terms, limit=None) == expected


def _sentences():
    out = []
    for e in CORPUS["entries"]:
        for text in (e.get("body"), e.get("accepted_answer")):
            out += [s for s in re.split(r"(?<=[。!?;])", text or "") if len(s) > 4]
    return out


def synthetic(n, seed):
    rnd = random.Random(seed)
    sentences = _sentences()
    titles = [e["title"] for e in CORPUS["entries"]]
    tags = ["价格", "回款", "样品", "账期", "撞单", "回访", "招标"]
    for i in range(n):
        yield {"id": f"d{i:05d}", "kind": "question" if i % 3 else "story",
               "title": rnd.choice(titles), "tags": rnd.sample(tags, 2),
               "body": "".join(rnd.choice(sentences) for _ in range(rnd.randint(1, 6))),
               "accepted_answer": rnd.choice(sentences) if i % 2 else None,
               "answers": [rnd.choice(sentences)] if i % 5 == 0 else []}


QUERIES = ["客户", "客户嫌贵", "报价 样品 账期", "老客户回访怎么做", "payment term",
           "撞单了怎么办 经理", "价格异议 竞争对手 合同 发票"]


def test_synthetic_corpus_with_edits_ranks_like_the_reference():
    entries = list(synthetic(1500, seed=3))
    ref, eng = both(entries)
    rnd = random.Random(5)
    # edits: new text for some entries (a newer rev replaces, an older one is ignored)
    for rev, e in enumerate(rnd.sample(entries, 200), start=10_000):
        e2 = {**e, "body": e["body"][::-1] + "新增的回款经验", "tags": ["回款"]}
        ref.add(e2)
        assert eng.apply(forward_row(e2, rev=rev))
        assert not eng.apply(forward_row(e, rev=rev - 1))
    assert eng.stats == ref.stats
    for q in QUERIES:
        for kwargs in ({}, {"limit": 1}, {"limit": 20}, {"tags": ["回款"]}, {"kind": "story"}):
            same(ref.search(q, **kwargs), eng.search(q, **kwargs))


def test_bulk_load_then_incremental_adds_rank_like_the_reference():
    entries = list(synthetic(3000, seed=11))
    ref, eng = InMemoryIndex(), Engine()
    for e in entries[:2000]:
        ref.add(e)
    eng.bulk(forward_row(e, 1) for e in entries[:2000])
    eng.finish()
    for e in entries[2000:]:  # averages drift from the reference ones: bounds must stay exact
        ref.add(e)
        eng.apply(forward_row(e, 1))
    for q in QUERIES:
        same(ref.search(q), eng.search(q))


def test_common_terms_are_read_only_as_far_as_needed():
    entries = list(synthetic(3000, seed=7))
    ref, eng = both(entries)
    eng.bulk([])
    eng.finish()
    for q in ("客户", "客户 报价"):
        terms = search.parse_query(q)
        total = sum(eng.doc_freq(t) for t in reference_index.query_vocabulary(terms))
        same(ref.search(q), eng.search(q))
        assert eng.last_read < total / 5, (q, eng.last_read, total)


def test_forward_row_shape():
    row = forward_row({"id": "x1", "kind": "story", "title": "样品寄出后客户失联", "body": "寄样",
                       "tags": ["样品"], "answers": ["别急"]}, rev=4)
    assert row["_id"] == "x1" and row["rev"] == 4 and row["kind"] == "story"
    assert row["tags"] == ["样品"]
    assert set(row["lengths"]) == set(search.FIELDS)
    terms = {t[0]: t[1:] for t in row["terms"]}
    assert terms["样品"] == [1, 1, 0, 0, 0]  # title and tags
    assert all(len(v) == len(search.FIELDS) for v in terms.values())
    json.dumps(row, ensure_ascii=False)  # storable as is


def test_a_read_budget_bounds_the_work_and_says_when_it_bound():
    entries = list(synthetic(3000, seed=13))
    exact, capped = Engine(max_reads=None), Engine(max_reads=64)
    for e in entries:
        exact.apply(forward_row(e, 1))
        capped.apply(forward_row(e, 1))
    q = "打样 方案 回款 投标"
    full = exact.search(q)
    assert exact.last_exact
    got = capped.search(q)
    assert not capped.last_exact and capped.last_read <= 64 + 32
    assert len(got) == 10
    # what it returns is scored exactly, best first, never better than the true best
    every = dict(exact.rank(search.parse_query(q), limit=None))
    assert all(h.score == every[h.doc_id] for h in got)
    assert [h.score for h in got] == sorted((h.score for h in got), reverse=True)
    assert got[0].score <= full[0].score
    # the default budget never binds on a small corpus: same as the reference
    ref, eng = both(entries[:1000])
    same(ref.search(q), eng.search(q))
    assert eng.last_exact
