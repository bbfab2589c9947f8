"""Indexing and BM25F ranking.

Ranking (:func:`score`), BM25F with k1=1.2, b=0.75::

    B_f(d)   = 1 - b + b * len_f(d) / avglen_f          avglen_f = total_len_f / N
    tf~(t,d) = sum_f  w_f * tf(t, d, f) / B_f(d)
    idf(t)   = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score(d) = sum_t  idf(t) * tf~(t,d) * (k1 + 1) / (k1 + tf~(t,d))

    field weights w_f: title 3, tags 2, body 1, accepted_answer 1, answers 0.5

MongoDB shapes (what :class:`IndexEntry` produces)::

    kb_postings  {term, doc_id, tf: {field: n, ...}}   one per (term, document)
                 unique index (term, doc_id); index doc_id
    kb_docs      {_id: doc_id, kind, tags: [...], lengths: {field: n, ...}}
    kb_stats     {_id: "corpus", doc_count, total_lengths: {field: n, ...}}
                 kept with $inc from :func:`stats_increment`
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.knowledge.search.queries import QueryTerm, _as_query_terms
from services.knowledge.search.text import (
    FIELD_WEIGHTS,
    FIELDS,
    K1,
    KINDS,
    B,
    normalize_tag,
    tokenize,
)

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
