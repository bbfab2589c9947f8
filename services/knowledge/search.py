"""Knowledge-base search: Chinese-aware tokenizing, BM25F ranking, snippets.

Pure logic, no I/O apart from loading the jieba dictionaries once. The storage
layer keeps the inverted index in MongoDB (plain documents, no ``$text``, so it
runs on FerretDB) and ranks in Python with the functions below;
:class:`InMemoryIndex` is the reference implementation the storage must match.

Text pipeline (:func:`tokenize`)
    NFKC -> traditional to simplified (OpenCC ``t2s``) -> lowercase; CJK runs are
    segmented by a private ``jieba.Tokenizer`` in search mode (``cut_for_search``:
    a long word also yields its dictionary sub-words, so 老客户 gives 老客户 and
    客户), with ``sales_dict.txt`` and every synonym below added as user words;
    ASCII words are lightly stemmed (plural, -ing, final -e); numbers are kept;
    stopwords and the single CJK characters of ``_STOP_CHARS`` dropped.
    客户 is NOT a stopword: IDF weighs it down by itself.
    Measured on tests/unit/knowledge/relevance_corpus.json: search mode and
    plain ``cut`` tie (one query apart) with the HMM off, the HMM costs 3-4
    points of recall@3 and guesses unstable "new words"; search mode stays so
    that a compound (增值税专用发票, 老客户) also matches its parts.

Ranking (:func:`score`), BM25F with k1=1.2, b=0.75::

    B_f(d)   = 1 - b + b * len_f(d) / avglen_f          avglen_f = total_len_f / N
    tf~(t,d) = sum_f  w_f * tf(t, d, f) / B_f(d)
    idf(t)   = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score(d) = sum_t  idf(t) * tf~(t,d) * (k1 + 1) / (k1 + tf~(t,d))

    field weights w_f: title 3, tags 2, body 1, accepted_answer 1, answers 0.5

Query-time synonyms: a query term in a :data:`SYNONYM_GROUPS` group becomes one
pseudo-term over all the group's members (as Lucene's SynonymQuery does):
``tf~`` sums the members' weighted tf (a member the user did not type counts
:data:`SYNONYM_WEIGHT`), ``df`` is the largest member df. Query terms of the same
group merge into one pseudo-term so a concept is not counted twice.

Snippets (:func:`make_snippet`) mark matched terms with 【 and 】 (plain text:
safe to show anywhere, nothing to HTML-escape). Brackets 【】 already in the
source text are shown as 〔〕 so the markers stay unambiguous.

MongoDB shapes (what :class:`IndexEntry` produces)::

    kb_postings  {term, doc_id, tf: {field: n, ...}}   one per (term, document)
                 unique index (term, doc_id); index doc_id
    kb_docs      {_id: doc_id, kind, tags: [...], lengths: {field: n, ...}}
    kb_stats     {_id: "corpus", doc_count, total_lengths: {field: n, ...}}
                 kept with $inc from :func:`stats_increment`

Search in the storage layer (same steps as :meth:`InMemoryIndex.search`)::

    terms = parse_query(q)
    rows = kb_postings.find({"term": {"$in": sorted(query_vocabulary(terms))}})
    postings = group_postings(rows)
    docs = {d["_id"]: d for d in kb_docs.find({"_id": {"$in": candidate_ids(postings)}})}
    stats = CorpusStats.from_document(kb_stats.find_one({"_id": "corpus"}))
    ranked = rank(terms, postings, docs, stats, tags=tags, kind=kind, limit=limit)
    # then load the top documents' text and call best_snippet(doc, terms)

Do not filter postings by tag in MongoDB: df is counted from the postings.
"""

from __future__ import annotations

import heapq
import logging
import math
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jieba
import opencc

__all__ = [
    "B",
    "FIELDS",
    "FIELD_WEIGHTS",
    "K1",
    "SNIPPET_MARKS",
    "STOPWORDS",
    "SYNONYM_GROUPS",
    "SYNONYM_WEIGHT",
    "CorpusStats",
    "IndexEntry",
    "InMemoryIndex",
    "QueryTerm",
    "SearchHit",
    "best_snippet",
    "candidate_ids",
    "group_postings",
    "index_document",
    "make_snippet",
    "normalize_tag",
    "normalize_text",
    "parse_query",
    "passes_filter",
    "query_vocabulary",
    "rank",
    "score",
    "stats_increment",
    "tokenize",
    "warm_up",
]

# --------------------------------------------------------------------------
# Tunables
# --------------------------------------------------------------------------

K1 = 1.2
B = 0.75

#: Indexed fields and their BM25F weights.
FIELD_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "title": 3.0,
        "tags": 2.0,
        "body": 1.0,
        "accepted_answer": 1.0,
        "answers": 0.5,  # answers not (yet) accepted: findable, weighted down
    }
)
FIELDS: tuple[str, ...] = tuple(FIELD_WEIGHTS)

#: Weight of a synonym the user did not type, relative to the typed term.
SYNONYM_WEIGHT = 0.7

SNIPPET_MARKS = ("【", "】")

KINDS = ("question", "story")

SALES_DICT_PATH = Path(__file__).with_name("sales_dict.txt")

#: Sales colloquialisms, one concept per line. Every CJK member is added to
#: the jieba dictionary so it stays one token; English members are stemmed.
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = tuple(
    tuple(line.split())
    for line in """
    价格异议 嫌贵 太贵 贵 价格太高 砍价 压价 杀价 讲价 还价 expensive
    价格 价钱 单价 price pricing
    折扣 打折 优惠 让利 discount
    报价 报价单 quote quotation
    便宜 低价 cheap cheaper
    回款 回款慢 拖款 欠款 不付款 催款 收款 拖欠 overdue collection
    付款方式 付款条件 账期 月结 结算方式 payment term
    定金 订金 预付款 首付款 deposit
    尾款 余款
    样品 试样 打样 寄样 样板 sample
    失联 联系不上 不接电话 不回微信 找不到人 不回复 没回音 没有下文 没消息 石沉大海
    撞单 争单 抢单 duplicate
    拖延 推迟 延期 拖着 考虑考虑 再考虑 再看看 以后再说 搁置 犹豫 观望 postpone delay
    referral 转介绍 老带新 介绍客户
    回访 revisit 维护
    决策人 拍板 决策者 关键人 说了算 做主
    招标 投标 标书 竞标 tender bidding bid
    合同 签约 协议 contract
    发票 开票 专票 普票 专用发票 invoice
    竞品 竞争对手 友商 对手 competitor
    新人 新手 新员工 刚入职 小白 newbie rookie
    公海 公共池 客户池
    交期 交货 发货 delivery
    起订量 最小起订量 moq
    陌拜 陌生电话 电话开发 cold
    投诉 complaint
    离职 交接
""".strip().splitlines()
)

#: Removed from documents and queries. Mostly function words and the
#: filler of questions (怎么办, 请问); content words are left to IDF.
STOPWORDS: frozenset[str] = frozenset(
    """
    的 了 吗 呢 吧 啊 呀 嘛 么 哦 哈 是 在 我 我们 你 你们 您 他 他们 她 她们 它 它们
    这 那 这个 那个 这些 那些 这样 那样 这种 那种 这么 那么 怎么 如何 怎样 怎么办 咋办 咋
    怎么样 什么 为什么 哪些 哪个 哪里 一个 一下 一些 有 有没有 和 与 及 以及 或 或者 就
    都 也 还 又 被 把 给 让 对 从 到 而 但 但是 所以 因为 如果 可以 能 能够 会 要 想 应该
    该 请问 大家 求助 谁 有人 之 其 等 着 过 得 地 很 比较 然后 已经 时候 一直 老是 总是
    以后 之后 以前 之前 现在 还是 就是 还有 不是 其实 真的 特别 非常
    a an the and or of to in on for with is are was were be been being do does did how
    what why when who which i me my we our you your he she it its they them this that
    can could should would will at by from as about please any some
    """.split()
)

#: Single CJK characters dropped: particles, pronouns, prepositions and the
#: most generic verbs and adjectives. Other single characters are kept, as
#: they often carry the meaning in colloquial Chinese (拖 寄 挂 忘 催 砍 贵 签).
_STOP_CHARS: frozenset[str] = frozenset(
    "的了是要我说和不有就在给先跟把也后都让他她它到人上做里没但被很来会内个能还你再用前看"
    "大小多少新按一这对比好时下得您想只更出完别最而去又着该从那为以已等才可或其之与及于"
    "吗呢吧啊呀嘛么哦哈们些每将并太挺真刚啦嗯呗咱俺问打开发当中"
)

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN_RE = re.compile(rf"[{_CJK}]+|[a-z0-9]+(?:\.[0-9]+)*")
_ASCII_RE = re.compile(r"[a-z0-9]")
_WS_RE = re.compile(r"\s+")


# --------------------------------------------------------------------------
# Normalization and tokenizing
# --------------------------------------------------------------------------

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
_converter: opencc.OpenCC | None = None
_synonyms: dict[str, tuple[int, ...]] | None = None
_groups: tuple[tuple[str, ...], ...] = ()


def _t2s() -> opencc.OpenCC:
    global _converter
    if _converter is None:
        _converter = opencc.OpenCC("t2s")
    return _converter


def normalize_text(text: str) -> str:
    """NFKC, traditional -> simplified, lowercase."""
    if not text:
        return ""
    return _t2s().convert(unicodedata.normalize("NFKC", text)).lower()


def _stem(word: str) -> str:
    """Light English stemmer: plurals, -ing, final -e. Digits untouched."""
    if not word.isalpha() or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) >= 6:
        word = word[:-3]
        if len(word) >= 3 and word[-1] == word[-2] and word[-1] not in "aeioulsz":
            word = word[:-1]
    if word.endswith("e") and len(word) >= 4 and not word.endswith("ee"):
        word = word[:-1]
    return word


def _get_tokenizer() -> jieba.Tokenizer:
    global _tokenizer, _synonyms, _groups
    if _tokenizer is not None:
        return _tokenizer
    with _lock:
        if _tokenizer is not None:
            return _tokenizer
        logging.getLogger("jieba").setLevel(logging.WARNING)  # silence "Building prefix dict"
        tk = jieba.Tokenizer()
        tk.initialize()
        tk.load_userdict(str(SALES_DICT_PATH))
        groups: list[tuple[str, ...]] = []
        for group in SYNONYM_GROUPS:
            members: list[str] = []
            for raw in group:
                word = normalize_text(raw)
                if _TOKEN_RE.fullmatch(word) is None:
                    raise ValueError(f"synonym {raw!r} is not a single word")
                if word.isascii():
                    word = _stem(word)
                elif word not in tk.FREQ or not tk.FREQ[word]:
                    tk.add_word(word)
                if word not in members:
                    members.append(word)
            groups.append(tuple(members))
        index: dict[str, list[int]] = {}
        for gi, members in enumerate(groups):
            for word in members:
                index.setdefault(word, []).append(gi)
        _groups = tuple(groups)
        _synonyms = {w: tuple(g) for w, g in index.items()}
        _tokenizer = tk
        return tk


def warm_up() -> None:
    """Load the dictionaries now (about half a second) instead of on first use."""
    _get_tokenizer()
    _t2s()


def _keep(token: str) -> bool:
    if token in STOPWORDS:
        return False
    if len(token) == 1:
        return token.isdigit() or (not token.isascii() and token not in _STOP_CHARS)
    return True


def _tokens_of(normalized: str, tk: jieba.Tokenizer) -> list[str]:
    out: list[str] = []
    for match in _TOKEN_RE.finditer(normalized):
        run = match.group()
        if run[0].isascii():
            token = _stem(run)
            if _keep(token):
                out.append(token)
        else:
            out.extend(w for w in tk.cut_for_search(run, HMM=False) if _keep(w))
    return out


def tokenize(text: str) -> list[str]:
    """Terms of ``text`` in order, repeats included (they are term frequencies)."""
    if not text:
        return []
    return _tokens_of(normalize_text(text), _get_tokenizer())


def normalize_tag(tag: str) -> str:
    """A tag as stored and compared: normalized, trimmed, without a leading #."""
    return normalize_text(tag).strip().lstrip("#").strip()


# --------------------------------------------------------------------------
# Queries and synonyms
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryTerm:
    """One scoring unit of a query: the typed term and its weighted variants."""

    text: str
    variants: tuple[tuple[str, float], ...]

    @classmethod
    def plain(cls, term: str) -> QueryTerm:
        return cls(term, ((term, 1.0),))

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(v for v, _ in self.variants)


def parse_query(query: str, *, expand: bool = True) -> list[QueryTerm]:
    """Tokenize a query, drop repeats, expand synonyms (merging same-group terms)."""
    tokens = list(dict.fromkeys(tokenize(query)))
    if not expand:
        return [QueryTerm.plain(t) for t in tokens]
    syn = _synonyms or {}
    out: list[QueryTerm] = []
    group_slot: dict[int, int] = {}  # group index -> position in out
    for token in tokens:
        groups = syn.get(token, ())
        slot = next((group_slot[g] for g in groups if g in group_slot), None)
        if slot is None:
            weights: dict[str, float] = {token: 1.0}
        else:
            weights = dict(out[slot].variants)
            weights[token] = 1.0
        for g in groups:
            for member in _groups[g]:
                weights.setdefault(member, SYNONYM_WEIGHT)
        qt = QueryTerm(token if slot is None else out[slot].text, tuple(weights.items()))
        if slot is None:
            out.append(qt)
            slot = len(out) - 1
        else:
            out[slot] = qt
        for g in groups:
            group_slot.setdefault(g, slot)
    return out


def _as_query_terms(query_terms: Iterable[str | QueryTerm]) -> list[QueryTerm]:
    return [t if isinstance(t, QueryTerm) else QueryTerm.plain(t) for t in query_terms]


def query_vocabulary(query_terms: Iterable[str | QueryTerm]) -> set[str]:
    """Every index term the query needs postings for (variants included)."""
    return {v for qt in _as_query_terms(query_terms) for v in qt.terms}


# --------------------------------------------------------------------------
# Indexing
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexEntry:
    """What one knowledge entry contributes to the index."""

    doc_id: str
    kind: str
    tags: tuple[str, ...]
    lengths: Mapping[str, int]  # field -> number of tokens; every field present
    term_freqs: Mapping[str, Mapping[str, int]]  # term -> {field: tf}, tf > 0 only

    def posting_rows(self) -> list[dict[str, Any]]:
        """Documents for ``kb_postings``."""
        return [
            {"term": term, "doc_id": self.doc_id, "tf": dict(tfs)}
            for term, tfs in self.term_freqs.items()
        ]

    def doc_row(self) -> dict[str, Any]:
        """Document for ``kb_docs``."""
        return {
            "_id": self.doc_id,
            "kind": self.kind,
            "tags": list(self.tags),
            "lengths": dict(self.lengths),
        }


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return str(value.get("body") or "")
    return str(value)


def index_document(doc: Mapping[str, Any]) -> IndexEntry:
    """Index ``{id, kind, title, body, tags, accepted_answer[, answers]}``.

    ``accepted_answer`` and the items of ``answers`` may be strings or answer
    documents with a ``body``.
    """
    kind = doc.get("kind") or "question"
    if kind not in KINDS:
        raise ValueError(f"unknown knowledge kind {kind!r}")
    tags = tuple(dict.fromkeys(t for t in map(normalize_tag, doc.get("tags") or ()) if t))
    texts = {
        "title": [_text_of(doc.get("title"))],
        "tags": list(tags),
        "body": [_text_of(doc.get("body"))],
        "accepted_answer": [_text_of(doc.get("accepted_answer"))],
        "answers": [_text_of(a) for a in doc.get("answers") or ()],
    }
    term_freqs: dict[str, dict[str, int]] = {}
    lengths: dict[str, int] = {}
    for fname in FIELDS:
        n = 0
        for text in texts[fname]:
            for term in tokenize(text):
                n += 1
                tfs = term_freqs.setdefault(term, {})
                tfs[fname] = tfs.get(fname, 0) + 1
        lengths[fname] = n
    return IndexEntry(str(doc["id"]), kind, tags, lengths, term_freqs)


@dataclass(frozen=True)
class CorpusStats:
    doc_count: int
    total_lengths: Mapping[str, int]
    #: Optional df per term; when absent df is the number of postings of a term.
    doc_freqs: Mapping[str, int] | None = None

    @classmethod
    def from_document(cls, row: Mapping[str, Any] | None) -> CorpusStats:
        if not row:
            return cls(0, {})
        return cls(int(row.get("doc_count", 0)), dict(row.get("total_lengths") or {}))

    def avg_lengths(self) -> dict[str, float]:
        n = self.doc_count
        return {f: (self.total_lengths.get(f, 0) / n if n else 0.0) for f in FIELDS}


def stats_increment(
    old_lengths: Mapping[str, int] | None, new_lengths: Mapping[str, int] | None
) -> dict[str, int]:
    """The ``$inc`` for ``kb_stats`` when a document is added, replaced or removed."""
    inc = {"doc_count": int(new_lengths is not None) - int(old_lengths is not None)}
    for f in FIELDS:
        delta = (new_lengths or {}).get(f, 0) - (old_lengths or {}).get(f, 0)
        if delta:
            inc[f"total_lengths.{f}"] = delta
    return inc


def group_postings(
    rows: Iterable[Mapping[str, Any]],
) -> dict[str, dict[str, dict[str, int]]]:
    """``kb_postings`` rows -> ``{term: {doc_id: {field: tf}}}``.

    Accepts the recommended ``{term, doc_id, tf: {field: n}}`` rows and flat
    ``{term, doc_id, field, tf: n}`` rows.
    """
    out: dict[str, dict[str, dict[str, int]]] = {}
    for row in rows:
        tfs = out.setdefault(row["term"], {}).setdefault(str(row["doc_id"]), {})
        tf = row["tf"]
        if isinstance(tf, Mapping):
            for f, n in tf.items():
                tfs[f] = tfs.get(f, 0) + int(n)
        else:
            tfs[row["field"]] = tfs.get(row["field"], 0) + int(tf)
    return out


def candidate_ids(postings: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every document id the postings mention (whose ``kb_docs`` rows to load)."""
    return sorted({d for plist in postings.values() for d in plist})


# --------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------


def score(
    query_terms: Sequence[str | QueryTerm],
    postings: Mapping[str, Mapping[str, Mapping[str, int]]],
    doc_lengths: Mapping[str, Mapping[str, int]],
    stats: CorpusStats,
    *,
    field_weights: Mapping[str, float] = FIELD_WEIGHTS,
    k1: float = K1,
    b: float = B,
    limit: int | None = None,
) -> list[tuple[str, float]]:
    """BM25F scores, best first (ties by doc id).

    ``postings`` is ``{term: {doc_id: {field: tf}}}`` and must hold every
    document of each term (df is counted from it unless ``stats.doc_freqs``);
    ``doc_lengths`` is ``{doc_id: {field: length}}`` and doubles as the filter:
    a document missing from it is not scored. With ``limit``, documents that
    provably cannot reach the top are skipped (same result, less work).
    """
    n_docs = stats.doc_count
    avg = stats.avg_lengths()
    # w_f / B_f(d) = w_f / (c0_f + c1_f * len_f(d)); B_f = 1 for a field no document has
    consts: dict[str, tuple[float, float, float]] = {}
    for f, w in field_weights.items():
        a = avg.get(f) or 0.0
        consts[f] = (w, 1.0 - b, b / a) if a > 0 else (w, 1.0, 0.0)

    weighted: list[tuple[float, QueryTerm]] = []  # (idf, term), rarest first
    for qt in _as_query_terms(query_terms):
        df = 0
        for term, _ in qt.variants:
            if stats.doc_freqs is not None and term in stats.doc_freqs:
                df = max(df, stats.doc_freqs[term])
            else:
                df = max(df, len(postings.get(term, ())))
        if df:
            n = max(n_docs, df)
            weighted.append((math.log(1.0 + (n - df + 0.5) / (df + 0.5)), qt))
    weighted.sort(key=lambda item: -item[0])
    # A term adds less than idf * (k1 + 1) to any document (tf~ / (k1 + tf~) < 1).
    bounds = [idf * (k1 + 1.0) for idf, _ in weighted]

    totals: dict[str, float] = {}
    candidates: set[str] | None = None  # once set, only these documents can reach the top
    for i, (idf, qt) in enumerate(weighted):
        acc: dict[str, float] = {}
        for term, weight in qt.variants:
            plist = postings.get(term)
            if not plist:
                continue
            if candidates is not None and len(candidates) < len(plist):
                items: Iterable[tuple[str, Mapping[str, int]]] = (
                    (d, plist[d]) for d in candidates if d in plist
                )
            else:
                items = plist.items()
            for doc_id, tfs in items:
                if candidates is not None and doc_id not in candidates:
                    continue
                lengths = doc_lengths.get(doc_id)
                if lengths is None:
                    continue
                x = 0.0
                for f, tf in tfs.items():
                    c = consts.get(f)
                    if c is not None:
                        x += c[0] * tf / (c[1] + c[2] * lengths.get(f, 0))
                if x:
                    acc[doc_id] = acc.get(doc_id, 0.0) + weight * x
        for doc_id, x in acc.items():
            totals[doc_id] = totals.get(doc_id, 0.0) + idf * x * (k1 + 1.0) / (k1 + x)
        # MaxScore-style pruning, exact for the top `limit`: when the terms still
        # to come cannot lift an unseen document above the current k-th score,
        # only documents already seen (and able to reach it) are scored further.
        rest = sum(bounds[i + 1 :])
        if limit and rest and len(totals) >= limit:
            threshold = heapq.nlargest(limit, totals.values())[-1]
            if rest < threshold:
                candidates = {d for d, v in totals.items() if v + rest >= threshold}
                totals = {d: totals[d] for d in candidates}

    def key(item: tuple[str, float]) -> tuple[float, str]:
        return (-item[1], item[0])

    if limit is not None:
        return heapq.nsmallest(limit, totals.items(), key=key)
    return sorted(totals.items(), key=key)


def passes_filter(
    doc_kind: str,
    doc_tags: Iterable[str],
    *,
    tags: Iterable[str] | None = None,
    kind: str | None = None,
) -> bool:
    """``kind`` must equal; every wanted tag must be on the document (AND)."""
    if kind and doc_kind != kind:
        return False
    if tags:
        wanted = {t for t in map(normalize_tag, tags) if t}
        if wanted and not wanted.issubset(doc_tags):
            return False
    return True


def rank(
    query_terms: Sequence[str | QueryTerm],
    postings: Mapping[str, Mapping[str, Mapping[str, int]]],
    docs: Mapping[str, Mapping[str, Any]],
    stats: CorpusStats,
    *,
    tags: Iterable[str] | None = None,
    kind: str | None = None,
    limit: int | None = 10,
) -> list[tuple[str, float]]:
    """Filter the candidates (``kb_docs`` rows by id) by kind and tags, then :func:`score`."""
    wanted = {t for t in map(normalize_tag, tags or ()) if t}
    if wanted or kind:
        lengths = {
            doc_id: d["lengths"]
            for doc_id, d in docs.items()
            if (not kind or d.get("kind") == kind) and wanted.issubset(d.get("tags") or ())
        }
    else:
        lengths = {doc_id: d["lengths"] for doc_id, d in docs.items()}
    return score(query_terms, postings, lengths, stats, limit=limit)


# --------------------------------------------------------------------------
# Snippets
# --------------------------------------------------------------------------


def _normalize_with_map(text: str) -> tuple[str, list[int]]:
    """Normalized text and, for each of its characters, the source index."""
    chars: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch).lower():
            chars.append(c)
            index.append(i)
    joined = "".join(chars)
    converted = _t2s().convert(joined)
    if len(converted) != len(joined):  # a phrase conversion changed length
        converted = "".join(c2 if len(c2 := _t2s().convert(c)) == 1 else c for c in chars)
    return converted, index


def _match_spans(norm: str, terms: Iterable[str]) -> list[tuple[int, int, str]]:
    taken = [False] * len(norm)
    spans: list[tuple[int, int, str]] = []
    for term in sorted(set(terms), key=lambda t: (-len(t), t)):
        if not term:
            continue
        ascii_term = term.isascii()
        start = norm.find(term)
        while start != -1:
            end = start + len(term)
            if ascii_term:
                if start and _ASCII_RE.match(norm[start - 1]):
                    start = norm.find(term, start + 1)
                    continue
                while end < len(norm) and _ASCII_RE.match(norm[end]):
                    end += 1
            if not any(taken[start:end]):
                spans.append((start, end, term))
                for k in range(start, end):
                    taken[k] = True
            start = norm.find(term, end)
    spans.sort()
    return spans


def _snippet_terms(query_terms: Iterable[str | QueryTerm]) -> list[str]:
    out: list[str] = []
    for t in query_terms:
        out.extend(t.terms if isinstance(t, QueryTerm) else (normalize_text(t),))
    return out


def make_snippet(
    text: str,
    query_terms: Iterable[str | QueryTerm],
    width: int = 60,
    *,
    marks: tuple[str, str] = SNIPPET_MARKS,
) -> str:
    """About ``width`` characters of ``text`` around its densest cluster of matches.

    Matches (terms and their synonyms; English matches extend to the whole
    word) are wrapped in 【】; "…" shows where the text was cut; whitespace
    runs become one space. Without a match, the start of the text.
    """
    text = _WS_RE.sub(" ", text or "").strip()
    if marks == SNIPPET_MARKS:
        text = text.replace("【", "〔").replace("】", "〕")
    if not text:
        return ""
    width = max(int(width), 1)
    norm, src = _normalize_with_map(text)
    spans = _match_spans(norm, _snippet_terms(query_terms))
    if not spans:
        return text[:width] + ("…" if len(text) > width else "")

    best = (0, 0)
    best_key = (-1, -1, 0)
    j = 0
    for i in range(len(spans)):
        j = max(j, i)
        while j + 1 < len(spans) and spans[j + 1][1] - spans[i][0] <= width:
            j += 1
        window = spans[i : j + 1]
        key = (len({s[2] for s in window}), len(window), -i)
        if key > best_key:
            best_key, best = key, (i, j)
    first, last = spans[best[0]], spans[best[1]]
    lo_n, hi_n = first[0], max(last[1], first[1])
    # Window over source characters, centred on the matches.
    lo, hi = src[lo_n], src[hi_n - 1] + 1
    pad = max(width - (hi - lo), 0)
    start = max(0, lo - pad // 2)
    end = min(len(text), max(hi, start + width))
    start = max(0, min(start, end - width))

    open_mark, close_mark = marks
    parts: list[str] = ["…"] if start > 0 else []
    pos = start
    for s_n, e_n, _ in spans:
        s, e = src[s_n], src[e_n - 1] + 1
        if s < pos or e > end:
            continue
        parts += [text[pos:s], open_mark, text[s:e], close_mark]
        pos = e
    parts.append(text[pos:end])
    if end < len(text):
        parts.append("…")
    return "".join(parts)


def best_snippet(
    doc: Mapping[str, Any], query_terms: Iterable[str | QueryTerm], width: int = 60
) -> str:
    """Snippet from whichever of body / accepted answer / answers matches best.

    When none of them matches (the entry was found by its title or tags), the
    snippet still shows why: the title with its matches marked, or else the
    matching tags marked before the start of the body.
    """
    terms = _snippet_terms(list(query_terms))
    title = _text_of(doc.get("title"))
    candidates = [_text_of(doc.get("body")), _text_of(doc.get("accepted_answer"))]
    candidates += [_text_of(a) for a in doc.get("answers") or ()]
    candidates = [c for c in candidates if c.strip()]
    if not candidates:
        return make_snippet(title, terms, width)
    best_text, best_key = candidates[0], (0, 0)
    for text in candidates:
        spans = _match_spans(normalize_text(text), terms)
        key = (len({s[2] for s in spans}), len(spans))
        if key > best_key:
            best_text, best_key = text, key
    if best_key == (0, 0):
        if _match_spans(normalize_text(title), terms):
            return make_snippet(title, terms, width)
        # normalized and sorted: the engine keeps only a set of tag keys, and
        # both indexes must give the same snippet
        tags = sorted(t for t in set(map(normalize_tag, doc.get("tags") or ()))
                      if t and _match_spans(normalize_text(t), terms))
        if tags:
            open_mark, close_mark = SNIPPET_MARKS
            prefix = " ".join(f"#{open_mark}{t}{close_mark}" for t in tags) + " "
            shown = len(prefix) - len(tags) * (len(open_mark) + len(close_mark))
            return prefix + make_snippet(best_text, terms, max(width - shown, 10))
    return make_snippet(best_text, terms, width)


# --------------------------------------------------------------------------
# Reference in-memory index
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    doc_id: str
    kind: str
    title: str
    snippet: str
    score: float

    def to_api(self) -> dict[str, Any]:
        """The item shape of ``GET /api/knowledge/search``."""
        return {
            "kind": self.kind,
            "id": self.doc_id,
            "title": self.title,
            "snippet": self.snippet,
            "score": round(self.score, 4),
        }


class InMemoryIndex:
    """The whole index in dictionaries; the behaviour MongoDB storage must match."""

    def __init__(self) -> None:
        self._docs: dict[str, Mapping[str, Any]] = {}  # source documents, for snippets
        self._records: dict[str, dict[str, Any]] = {}  # kb_docs rows
        self._terms: dict[str, tuple[str, ...]] = {}  # doc -> its terms, for removal
        self._postings: dict[str, dict[str, Mapping[str, int]]] = {}  # term -> doc -> tf
        self._doc_count = 0
        self._total_lengths: dict[str, int] = dict.fromkeys(FIELDS, 0)
        # identical {field: tf} maps are shared: most postings are {"body": 1}
        self._tf_pool: dict[tuple[tuple[str, int], ...], Mapping[str, int]] = {}

    def __len__(self) -> int:
        return self._doc_count

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._terms

    @property
    def stats(self) -> CorpusStats:
        return CorpusStats(self._doc_count, dict(self._total_lengths))

    def add(self, doc: Mapping[str, Any]) -> IndexEntry:
        """Index a document, replacing the previous version with the same id."""
        entry = index_document(doc)
        self.remove(entry.doc_id)
        for term, tfs in entry.term_freqs.items():
            key = tuple(sorted(tfs.items()))
            shared = self._tf_pool.setdefault(key, dict(key))
            self._postings.setdefault(term, {})[entry.doc_id] = shared
        self._apply(stats_increment(None, entry.lengths))
        self._terms[entry.doc_id] = tuple(entry.term_freqs)
        self._records[entry.doc_id] = entry.doc_row()
        self._docs[entry.doc_id] = dict(doc)
        return entry

    def update(self, doc: Mapping[str, Any]) -> IndexEntry:
        """Re-index an existing document (KeyError when it was never added)."""
        if str(doc["id"]) not in self._terms:
            raise KeyError(doc["id"])
        return self.add(doc)

    def remove(self, doc_id: str) -> bool:
        """Take a document out of the index (the entry itself is never deleted)."""
        terms = self._terms.pop(doc_id, None)
        if terms is None:
            return False
        for term in terms:
            plist = self._postings.get(term)
            if plist is not None:
                plist.pop(doc_id, None)
                if not plist:
                    del self._postings[term]
        self._apply(stats_increment(self._records[doc_id]["lengths"], None))
        del self._records[doc_id]
        del self._docs[doc_id]
        return True

    def _apply(self, inc: Mapping[str, int]) -> None:
        for key, delta in inc.items():
            if key == "doc_count":
                self._doc_count += delta
            else:
                f = key.split(".", 1)[1]
                self._total_lengths[f] = self._total_lengths.get(f, 0) + delta

    def search(
        self,
        query: str,
        *,
        tags: Iterable[str] | None = None,
        kind: str | None = None,
        limit: int = 10,
        snippet_width: int = 60,
    ) -> list[SearchHit]:
        terms = parse_query(query)
        if not terms:
            return []
        vocab = query_vocabulary(terms)
        postings = {t: self._postings[t] for t in vocab if t in self._postings}
        records = self._records
        docs = {d: records[d] for plist in postings.values() for d in plist}
        ranked = rank(terms, postings, docs, self.stats, tags=tags, kind=kind, limit=limit)
        hits = []
        for doc_id, s in ranked:
            doc = self._docs[doc_id]
            hits.append(
                SearchHit(
                    doc_id,
                    self._records[doc_id]["kind"],
                    str(doc.get("title") or ""),
                    best_snippet(doc, terms, snippet_width),
                    s,
                )
            )
        return hits
