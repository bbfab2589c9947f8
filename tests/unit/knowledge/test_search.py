"""Knowledge search domain: tokenizing, synonyms, BM25F, snippets, relevance."""

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from services.knowledge import search
from services.knowledge.search import (
    CorpusStats,
    QueryTerm,
    index_document,
    make_snippet,
    parse_query,
    score,
    stats_increment,
    tokenize,
)
from tests.unit.knowledge import reference_index, relevance
from tests.unit.knowledge.reference_index import InMemoryIndex, candidate_ids, group_postings, rank

CORPUS_PATH = Path(__file__).with_name("relevance_corpus.json")
REPO_ROOT = Path(__file__).resolve().parents[3]


def doc(doc_id, title="", body="", tags=(), kind="question", accepted_answer=None, **extra):
    return {
        "id": doc_id,
        "kind": kind,
        "title": title,
        "body": body,
        "tags": list(tags),
        "accepted_answer": accepted_answer,
        **extra,
    }


def _strip_marks(snippet):
    return snippet.replace("【", "").replace("】", "").replace("…", "")


# --------------------------------------------------------------------------
# tokenize
# --------------------------------------------------------------------------


def test_chinese_without_spaces_is_segmented():
    terms = tokenize("客户一直嫌贵怎么办")
    assert "客户" in terms
    assert "嫌贵" in terms
    assert "怎么办" not in terms and "怎么" not in terms


def test_customer_is_not_a_stopword_but_particles_are():
    terms = tokenize("我的客户是在问报价吗")
    assert "客户" in terms and "报价" in terms
    for stop in ("我", "的", "是", "在", "吗"):
        assert stop not in terms


@pytest.mark.parametrize(
    "word",
    [
        "撞单", "争单", "回访", "报价", "样品", "试样", "账期", "回款", "压价", "砍价",
        "公海", "转介绍", "决策人", "采购", "老板", "招标", "合同", "定金", "尾款",
        "发票", "付款方式", "月结", "竞品",
    ],
)  # fmt: skip
def test_sales_terms_stay_whole_in_a_sentence(word):
    assert word in tokenize(f"今天跟进客户时遇到{word}相关的问题")
    assert word in tokenize(f"{word}怎么处理")


def test_every_user_dictionary_word_is_a_token():
    words = [ln.split()[0] for ln in search.SALES_DICT_PATH.read_text("utf-8").splitlines() if ln]
    assert len(words) >= 60
    for word in words:
        assert word in tokenize(word), word


def test_every_synonym_is_one_token():
    for group in search.SYNONYM_GROUPS:
        for member in group:
            if member.isascii():
                continue
            assert member in tokenize(member), member


def test_mixed_english_digits_and_full_width():
    terms = tokenize("ＣＲＭ系统里的Samples和Pricing,月结30天,金额3.5万,ISO9001认证")
    assert {"crm", "系统", "sampl", "pric", "月结", "30", "3.5", "iso9001", "认证"} <= set(terms)
    assert tokenize("３０天") == tokenize("30天")


def test_light_english_stemming():
    assert tokenize("invoices") == tokenize("invoice") == tokenize("invoicing")
    assert tokenize("companies") == tokenize("company")
    assert tokenize("bidding") == tokenize("bids") == ["bid"]
    assert tokenize("the samples of a business") == ["sampl", "business"]


def test_traditional_input_matches_simplified():
    assert tokenize("客戶說價格太高,聯繫不上,發票開錯了") == tokenize(
        "客户说价格太高,联系不上,发票开错了"
    )
    assert "联系不上" in tokenize("客戶聯繫不上")


def test_search_mode_yields_sub_words_of_compounds():
    terms = tokenize("增值税专用发票")
    assert {"增值税", "专用发票", "发票"} <= set(terms)
    assert {"老客户", "客户"} <= set(tokenize("老客户"))


def test_single_characters_dropped_unless_meaningful():
    terms = tokenize("比别家贵,一直拖着,电话被挂了")
    assert "贵" in terms and "挂" in terms
    assert "被" not in terms and "了" not in terms


def test_tokenize_is_deterministic_and_uses_a_private_jieba():
    text = "老客户转介绍的新客户压价很厉害,回款慢"
    assert tokenize(text) == tokenize(text)
    import jieba

    assert search.text._get_tokenizer() is not jieba.dt
    assert tokenize("") == [] and tokenize("的了吗") == []


def test_first_load_is_silent():
    code = "from services.knowledge.search import tokenize; print(tokenize('撞单了'))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "撞单" in proc.stdout


# --------------------------------------------------------------------------
# synonyms
# --------------------------------------------------------------------------


def test_colloquial_terms_expand_to_their_group():
    (qt,) = [t for t in parse_query("客户嫌贵") if t.text == "嫌贵"]
    variants = dict(qt.variants)
    assert variants["嫌贵"] == 1.0
    for other in ("砍价", "压价", "价格太高", "价格异议"):
        assert variants[other] == search.SYNONYM_WEIGHT
    for typed, synonym in [
        ("拖款", "回款"),
        ("试样", "打样"),
        ("联系不上", "失联"),
        ("抢单", "争单"),
    ]:
        (qt,) = [t for t in parse_query(typed) if t.text == typed]
        assert synonym in dict(qt.variants), typed


def test_same_group_terms_merge_into_one_query_term():
    terms = parse_query("砍价压价")
    assert len(terms) == 1
    assert dict(terms[0].variants)["砍价"] == dict(terms[0].variants)["压价"] == 1.0


def test_english_query_reaches_chinese_entries():
    index = InMemoryIndex()
    index.add(doc("a", "客户要发票", "开专票需要税号"))
    index.add(doc("b", "客户要样品", "寄样之前先核实"))
    assert [h.doc_id for h in index.search("invoice")] == ["a"]
    assert [h.doc_id for h in index.search("samples")] == ["b"]


# --------------------------------------------------------------------------
# index_document
# --------------------------------------------------------------------------


def test_index_document_counts_terms_per_field():
    entry = index_document(
        doc(
            "q1",
            title="客户压价",
            body="客户压价压得很厉害,压价",
            tags=["价格", " #谈判 ", "价格"],
            accepted_answer={"body": "先算成本"},
            answers=["别急着降价"],
        )
    )
    assert entry.doc_id == "q1" and entry.kind == "question"
    assert entry.tags == ("价格", "谈判")
    assert entry.term_freqs["压价"] == {"title": 1, "body": 2}
    assert entry.term_freqs["价格"] == {"tags": 1}
    assert entry.term_freqs["成本"] == {"accepted_answer": 1}
    assert entry.term_freqs["降价"] == {"answers": 1}
    assert set(entry.lengths) == set(search.FIELDS)
    assert entry.lengths["title"] == 2 and entry.lengths["tags"] == 2
    for field in search.FIELDS:
        assert entry.lengths[field] == sum(t.get(field, 0) for t in entry.term_freqs.values())


def test_index_rows_have_the_documented_shapes():
    entry = index_document(doc("s9", "回款经验", "回款靠对账", kind="story", tags=["回款"]))
    rows = entry.posting_rows()
    assert {"term": "回款", "doc_id": "s9", "tf": {"title": 1, "tags": 1, "body": 1}} in rows
    assert entry.doc_row() == {
        "_id": "s9",
        "kind": "story",
        "tags": ["回款"],
        "lengths": dict(entry.lengths),
    }


def test_index_document_rejects_unknown_kind():
    with pytest.raises(ValueError):
        index_document(doc("x", "标题", kind="answer"))


def test_stats_increment():
    new = {"title": 3, "body": 10}
    assert stats_increment(None, new) == {
        "doc_count": 1,
        "total_lengths.title": 3,
        "total_lengths.body": 10,
    }
    assert stats_increment(new, {"title": 3, "body": 7}) == {
        "doc_count": 0,
        "total_lengths.body": -3,
    }
    assert stats_increment(new, None)["doc_count"] == -1


def test_group_postings_accepts_nested_and_flat_rows():
    nested = [{"term": "回款", "doc_id": "a", "tf": {"title": 1, "body": 2}}]
    flat = [
        {"term": "回款", "doc_id": "a", "field": "title", "tf": 1},
        {"term": "回款", "doc_id": "a", "field": "body", "tf": 2},
    ]
    assert (
        group_postings(nested) == group_postings(flat) == {"回款": {"a": {"title": 1, "body": 2}}}
    )


# --------------------------------------------------------------------------
# score
# --------------------------------------------------------------------------


def _stats(lengths):
    totals = {f: sum(ls.get(f, 0) for ls in lengths.values()) for f in search.FIELDS}
    return CorpusStats(len(lengths), totals)


def test_bm25_value_matches_the_formula():
    lengths = {"a": {"body": 4}, "b": {"body": 2}, "c": {"body": 6}}
    postings = {"回款": {"a": {"body": 2}}}
    ((doc_id, value),) = score(["回款"], postings, lengths, _stats(lengths))
    n, df, avg = 3, 1, 4.0
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    tf = 1.0 * 2 / (1 - 0.75 + 0.75 * 4 / avg)
    assert doc_id == "a"
    assert value == pytest.approx(idf * tf * 2.2 / (1.2 + tf))


def test_bm25_ordering_sanity():
    lengths = {"twice": {"body": 10}, "once": {"body": 10}, "long": {"body": 40}, "x": {"body": 10}}
    postings = {"回款": {"twice": {"body": 2}, "once": {"body": 1}, "long": {"body": 1}}}
    ranked = [d for d, _ in score(["回款"], postings, lengths, _stats(lengths))]
    assert ranked == ["twice", "once", "long"]

    # a rare term outweighs a common one
    postings = {
        "客户": {"a": {"body": 1}, "b": {"body": 1}, "x": {"body": 1}},
        "窜货": {"b": {"body": 1}},
    }
    lengths = {"a": {"body": 10}, "b": {"body": 10}, "x": {"body": 10}, "y": {"body": 10}}
    ranked = score(["客户", "窜货"], postings, lengths, _stats(lengths))
    assert ranked[0][0] == "b"


def test_title_match_outranks_body_match():
    index = InMemoryIndex()
    index.add(doc("body", "客户跟进的问题", "这家客户一直拖延付款,财务说在走流程"))
    index.add(doc("title", "客户一直拖延付款", "这家客户的财务说在走流程,问题跟进中"))
    index.add(doc("other", "展会名片", "展会结束后三天内跟进"))
    assert [h.doc_id for h in index.search("拖延付款")][:2] == ["title", "body"]


def test_tags_weigh_more_than_body():
    index = InMemoryIndex()
    index.add(doc("body", "一个问题", "讨论了回款和交期"))
    index.add(doc("tag", "一个问题", "讨论了交期", tags=["回款"]))
    assert [h.doc_id for h in index.search("回款")] == ["tag", "body"]


def test_documents_outside_doc_lengths_are_not_scored():
    postings = {"回款": {"a": {"body": 1}, "b": {"body": 1}}}
    lengths = {"a": {"body": 5}, "b": {"body": 5}}
    only_a = score(["回款"], postings, {"a": lengths["a"]}, _stats(lengths))
    assert [d for d, _ in only_a] == ["a"]
    assert only_a[0][1] == pytest.approx(
        dict(score(["回款"], postings, lengths, _stats(lengths)))["a"]
    )


def test_synonym_pseudo_term_counts_a_concept_once():
    lengths = {"both": {"body": 4}, "one": {"body": 4}, "x": {"body": 4}, "y": {"body": 4}}
    postings = {
        "砍价": {"both": {"body": 1}, "one": {"body": 1}},
        "压价": {"both": {"body": 1}},
    }
    qt = QueryTerm("砍价", (("砍价", 1.0), ("压价", 0.7)))
    ranked = dict(score([qt], postings, lengths, _stats(lengths)))
    assert ranked["both"] > ranked["one"]
    # saturating a single term: less than two separate terms would give
    separate = dict(score(["砍价", "压价"], postings, lengths, _stats(lengths)))
    assert ranked["both"] < separate["both"]


def test_score_limit_and_tie_order():
    lengths = {d: {"body": 3} for d in "cab"}
    postings = {"回款": {d: {"body": 1} for d in "cab"}}
    assert [d for d, _ in score(["回款"], postings, lengths, _stats(lengths), limit=2)] == [
        "a",
        "b",
    ]


def test_top_k_pruning_gives_the_exact_top_k():
    rnd = random.Random(5)
    vocab = [f"t{i}" for i in range(40)]
    lengths, postings = {}, {}
    for d in range(400):
        doc_id = f"d{d:03d}"
        n = rnd.randint(3, 30)
        lengths[doc_id] = {"body": n, "title": rnd.randint(1, 5)}
        for _ in range(n):
            term = vocab[min(int(rnd.expovariate(0.15)), len(vocab) - 1)]  # a few common terms
            field = "title" if rnd.random() < 0.1 else "body"
            tfs = postings.setdefault(term, {}).setdefault(doc_id, {})
            tfs[field] = tfs.get(field, 0) + 1
    stats = _stats(lengths)
    for _ in range(200):
        query = rnd.sample(vocab[:15], rnd.randint(1, 5))
        qt = QueryTerm(query[0], tuple((t, 1.0 if t == query[0] else 0.7) for t in query[:2]))
        for terms in (query, [qt, *query[2:]]):
            full = score(terms, postings, lengths, stats)
            for k in (1, 3, 10):
                assert score(terms, postings, lengths, stats, limit=k) == full[:k]


# --------------------------------------------------------------------------
# InMemoryIndex
# --------------------------------------------------------------------------


def _small_index():
    index = InMemoryIndex()
    index.add(doc("q1", "客户压价太狠", "采购一直砍价", tags=["价格", "谈判"]))
    index.add(doc("q2", "样品寄出后没消息", "寄样后客户不回复", tags=["样品"]))
    index.add(doc("s1", "不降价也成交", "客户嫌贵,我们算总成本", kind="story", tags=["价格"]))
    index.add(doc("q3", "回款慢", "货款拖了三个月", tags=["回款"], accepted_answer="先对账再催款"))
    return index


def test_search_returns_api_items_best_first():
    hits = _small_index().search("客户嫌贵")
    assert {h.doc_id for h in hits[:2]} == {"s1", "q1"}
    item = hits[0].to_api()
    assert set(item) == {"kind", "id", "title", "snippet", "score"}
    assert item["score"] > 0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert "【" in hits[0].snippet


def test_tag_and_kind_filters():
    index = _small_index()
    assert [h.doc_id for h in index.search("客户嫌贵", tags=["价格"], kind="story")] == ["s1"]
    assert {h.doc_id for h in index.search("客户", tags=["價格"])} == {
        "q1",
        "s1",
    }  # traditional tag
    assert index.search("客户", tags=["价格", "样品"]) == []  # AND
    assert [h.doc_id for h in index.search("客户", tags=["#样品"])] == ["q2"]
    # filtering does not change a document's score
    unfiltered = {h.doc_id: h.score for h in index.search("客户嫌贵")}
    (hit,) = index.search("客户嫌贵", kind="story")
    assert hit.score == pytest.approx(unfiltered["s1"])


def test_update_and_remove_keep_the_index_consistent():
    index = _small_index()
    index.update(doc("q2", "报价以后没消息", "报价后客户不回复", tags=["报价"]))
    assert "q2" not in {h.doc_id for h in index.search("样品")}
    assert "q2" in {h.doc_id for h in index.search("报价")}
    with pytest.raises(KeyError):
        index.update(doc("nope", "x"))

    rebuilt = InMemoryIndex()
    for d in (
        doc("q1", "客户压价太狠", "采购一直砍价", tags=["价格", "谈判"]),
        doc("q2", "报价以后没消息", "报价后客户不回复", tags=["报价"]),
        doc("s1", "不降价也成交", "客户嫌贵,我们算总成本", kind="story", tags=["价格"]),
        doc("q3", "回款慢", "货款拖了三个月", tags=["回款"], accepted_answer="先对账再催款"),
    ):
        rebuilt.add(d)
    assert index.stats == rebuilt.stats
    assert index._postings == rebuilt._postings

    assert index.remove("q3") and not index.remove("q3")
    assert len(index) == 3 and "q3" not in index
    assert index.search("回款") == []
    assert index.search("") == [] and index.search("的了吗") == []


def test_storage_path_matches_the_in_memory_reference():
    """The MongoDB recipe (rows -> group_postings -> rank) ranks exactly like InMemoryIndex."""
    data = json.loads(CORPUS_PATH.read_text("utf-8"))
    index = InMemoryIndex()
    posting_rows, doc_rows = [], {}
    totals = dict.fromkeys(search.FIELDS, 0)
    for entry in data["entries"]:
        index.add(entry)
        ie = index_document(entry)
        posting_rows += ie.posting_rows()
        doc_rows[ie.doc_id] = ie.doc_row()
        for key, delta in stats_increment(None, ie.lengths).items():
            if key != "doc_count":
                totals[key.split(".", 1)[1]] += delta
    stats_row = {"_id": "corpus", "doc_count": len(doc_rows), "total_lengths": totals}
    assert CorpusStats.from_document(stats_row) == index.stats

    for q in data["queries"][:15]:
        for tags in (None, ["价格"]):
            terms = parse_query(q["q"])
            vocab = reference_index.query_vocabulary(terms)
            rows = [r for r in posting_rows if r["term"] in vocab]  # find({"term": {"$in": ...}})
            postings = group_postings(rows)
            docs = {d: doc_rows[d] for d in candidate_ids(postings)}
            stats = CorpusStats.from_document(stats_row)
            via_storage = rank(terms, postings, docs, stats, tags=tags, limit=10)
            reference = [(h.doc_id, h.score) for h in index.search(q["q"], tags=tags)]
            assert [d for d, _ in via_storage] == [d for d, _ in reference]
            for (_, a), (_, b) in zip(via_storage, reference, strict=True):
                assert a == pytest.approx(b)


# --------------------------------------------------------------------------
# snippets
# --------------------------------------------------------------------------


def test_snippet_marks_matches_in_short_text():
    assert make_snippet("客户一直拖着不付款", ["不付款"]) == "客户一直拖着【不付款】"


def test_snippet_centres_on_the_densest_window():
    text = (
        "回款"
        + "这是一段很长的无关描述文字。" * 10
        + "客户拖欠回款,我们先发对账单再催款。"
        + "后面还有一些别的内容。" * 10
    )
    snippet = make_snippet(text, ["回款", "对账单", "催款"], width=40)
    assert snippet.startswith("…") and snippet.endswith("…")
    assert "【对账单】" in snippet and "【催款】" in snippet and "【回款】" in snippet
    assert len(_strip_marks(snippet)) <= 40


def test_snippet_keeps_original_characters_of_traditional_text():
    assert make_snippet("客戶說價格太高", ["价格"]) == "客戶說【價格】太高"


def test_snippet_marks_whole_english_words_and_synonyms():
    snippet = make_snippet("Customer asked for Samples twice", ["sampl"])
    assert snippet == "Customer asked for 【Samples】 twice"
    terms = parse_query("客户嫌贵")
    assert "【砍价】" in make_snippet("采购一上来就砍价", terms)


def test_snippet_without_match_and_existing_brackets():
    assert make_snippet("甲" * 100, ["回款"], width=10) == "甲" * 10 + "…"
    assert make_snippet("【重要】回款", ["回款"]) == "〔重要〕【回款】"
    assert make_snippet("", ["回款"]) == ""
    assert make_snippet("多个\n\n  空白  回款", ["回款"]) == "多个 空白 【回款】"


def test_best_snippet_prefers_the_matching_field():
    d = doc("q", "标题", "正文没有关系", accepted_answer="先把对账单发过去,再催款")
    assert search.best_snippet(d, parse_query("对账单催款")) == "先把【对账单】发过去,再【催款】"


def test_snippet_of_an_entry_found_by_its_title_marks_the_title():
    d = doc("q", "账期怎么谈", "东莞这家注塑厂要求九十天付款，我们最多给三十天。")
    assert search.best_snippet(d, parse_query("账期")) == "【账期】怎么谈"


def test_snippet_of_an_entry_found_by_its_tag_marks_the_tag():
    d = doc("q", "老板总说下个月再付", "对账单发了三次，财务说老板没签字。",
            tags=["回款", "#账期"])
    snippet = search.best_snippet(d, parse_query("账期"))
    assert snippet == "#【账期】 对账单发了三次，财务说老板没签字。"
    long = doc("q", "老板总说下个月再付", "对账单" * 40, tags=["账期"])
    assert len(_strip_marks(search.best_snippet(long, parse_query("账期")))) <= 60


# --------------------------------------------------------------------------
# relevance suite
# --------------------------------------------------------------------------


def _title_overlap(query, titles):
    q = set(tokenize(query))
    t = set().union(*(set(tokenize(x)) for x in titles))
    return len(q & t) / len(q) if q else 0.0


def test_relevance_recall_at_3_and_mrr(capsys):
    data = json.loads(CORPUS_PATH.read_text("utf-8"))
    entries, queries = data["entries"], data["queries"]
    assert len(entries) >= 60 and len({e["id"] for e in entries}) == len(entries)
    assert len(queries) >= 25
    assert sum(q["q"].isascii() for q in queries) >= 3  # a few English queries
    titles = {e["id"]: e["title"] for e in entries}
    paraphrased = sum(
        _title_overlap(q["q"], [titles[r] for r in q["relevant"]]) < 0.5 for q in queries
    )
    assert paraphrased >= len(queries) / 3, "queries must not just repeat titles"

    index = InMemoryIndex()
    for e in entries:
        index.add(e)
    recall, mrr, misses = relevance.measure(
        queries, lambda q: [h.doc_id for h in index.search(q, limit=10)])
    summary = (
        f"knowledge relevance: {len(entries)} entries, {len(queries)} queries "
        f"({paraphrased} worded unlike the titles): recall@3={recall:.3f} MRR={mrr:.3f}"
    )
    with capsys.disabled():
        print("\n" + summary)
        for miss in misses:
            print("  miss:", miss)
    assert recall >= 0.8, summary + "\n" + "\n".join(misses)
