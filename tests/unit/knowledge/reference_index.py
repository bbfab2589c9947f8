"""The reference in-memory search index: the exact ranking that the engine
(services/knowledge/engine.py), which reads a bounded number of postings per
query, must reproduce. A test oracle, also used by the knowledge bench; not
production code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from services.knowledge import search
from services.knowledge.search.queries import _as_query_terms


def query_vocabulary(query_terms: Iterable[str | search.QueryTerm]) -> set[str]:
    """Every index term the query needs postings for (variants included)."""
    return {v for qt in _as_query_terms(query_terms) for v in qt.terms}

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
        wanted = {t for t in map(search.normalize_tag, tags) if t}
        if wanted and not wanted.issubset(doc_tags):
            return False
    return True


def rank(
    query_terms: Sequence[str | search.QueryTerm],
    postings: Mapping[str, Mapping[str, Mapping[str, int]]],
    docs: Mapping[str, Mapping[str, Any]],
    stats: search.CorpusStats,
    *,
    tags: Iterable[str] | None = None,
    kind: str | None = None,
    limit: int | None = 10,
) -> list[tuple[str, float]]:
    """Filter the candidates (``kb_docs`` rows by id) by kind and tags, then :func:`search.score`."""
    wanted = {t for t in map(search.normalize_tag, tags or ()) if t}
    if wanted or kind:
        lengths = {
            doc_id: d["lengths"]
            for doc_id, d in docs.items()
            if (not kind or d.get("kind") == kind) and wanted.issubset(d.get("tags") or ())
        }
    else:
        lengths = {doc_id: d["lengths"] for doc_id, d in docs.items()}
    return search.score(query_terms, postings, lengths, stats, limit=limit)




# --------------------------------------------------------------------------
# Reference in-memory index
# --------------------------------------------------------------------------


class InMemoryIndex:
    """The whole index in dictionaries; the behaviour MongoDB storage must match."""

    def __init__(self) -> None:
        self._docs: dict[str, Mapping[str, Any]] = {}  # source documents, for snippets
        self._records: dict[str, dict[str, Any]] = {}  # kb_docs rows
        self._terms: dict[str, tuple[str, ...]] = {}  # doc -> its terms, for removal
        self._postings: dict[str, dict[str, Mapping[str, int]]] = {}  # term -> doc -> tf
        self._doc_count = 0
        self._total_lengths: dict[str, int] = dict.fromkeys(search.FIELDS, 0)
        # identical {field: tf} maps are shared: most postings are {"body": 1}
        self._tf_pool: dict[tuple[tuple[str, int], ...], Mapping[str, int]] = {}

    def __len__(self) -> int:
        return self._doc_count

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._terms

    @property
    def stats(self) -> search.CorpusStats:
        return search.CorpusStats(self._doc_count, dict(self._total_lengths))

    def add(self, doc: Mapping[str, Any]) -> search.IndexEntry:
        """Index a document, replacing the previous version with the same id."""
        entry = search.index_document(doc)
        self.remove(entry.doc_id)
        for term, tfs in entry.term_freqs.items():
            key = tuple(sorted(tfs.items()))
            shared = self._tf_pool.setdefault(key, dict(key))
            self._postings.setdefault(term, {})[entry.doc_id] = shared
        self._apply(search.stats_increment(None, entry.lengths))
        self._terms[entry.doc_id] = tuple(entry.term_freqs)
        self._records[entry.doc_id] = entry.doc_row()
        self._docs[entry.doc_id] = dict(doc)
        return entry

    def update(self, doc: Mapping[str, Any]) -> search.IndexEntry:
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
        self._apply(search.stats_increment(self._records[doc_id]["lengths"], None))
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
    ) -> list[search.SearchHit]:
        terms = search.parse_query(query)
        if not terms:
            return []
        vocab = query_vocabulary(terms)
        postings = {t: self._postings[t] for t in vocab if t in self._postings}
        records = self._records
        docs = {d: records[d] for plist in postings.values() for d in plist}
        ranked = rank(terms, postings, docs, self.stats, tags=tags, kind=kind, limit=limit)
        return [search.make_hit(doc_id, self._records[doc_id]["kind"], self._docs[doc_id], terms,
                                s, snippet_width) for doc_id, s in ranked]
