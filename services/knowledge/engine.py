"""The serving side of knowledge search: an in-process index that ranks
exactly like the tests' reference index (tests/unit/knowledge/reference_index.py)
while reading a bounded number of postings per query (MAX_READS), where the
reference reads every posting of every query term.

Why in process, and where the index lives
    The index is kept in the service's own MongoDB collections (``kb_docs``: one
    *forward* row per entry, written on every write; see storage.py). Each
    service instance loads those rows into an :class:`Engine` at start and
    follows later writes through the ``kb_feed`` ring (storage.py), so several
    instances stay current. Queries never touch the database: FerretDB 1.24's
    SQLite backend uses no index for any query (``EXPLAIN`` shows ``SCAN`` even
    for ``{_id: x}``), so one ``find({"term": {"$in": ...}})`` over a postings
    collection costs a full scan, growing with the corpus.

Plan: impact-ordered posting lists + the threshold algorithm (Fagin's TA)
    Each term's postings are sorted by *impact*: the term's weighted,
    length-normalized frequency ``tf~`` (search.py's formula) computed with
    reference field averages. A query walks its lists best-first, scores every
    newly met entry exactly (random access through the entry's forward row),
    and stops as soon as no entry still unseen can beat the k-th best:

        bound(unseen) = sum_t idf(t) * sat(sum_v w_v * R * impact_v[cursor_v])

    ``sat(x) = x (k1+1) / (k1+x)``; ``R`` bounds how far current field averages
    have moved from the reference ones (``B_f`` changes by at most
    ``max(1, avg_now/avg_ref)``; a field that had no text at reference time by
    at most ``1/(1-b)``), so the stop is exact whatever the drift; the lists are
    re-sorted when ``R`` passes :data:`RESORT_RATIO` at a write. Common terms
    ("客户" in half the entries) are read only until the bound drops below the
    current top 10, usually a few blocks.

    The entries the walk met that can still reach the top are then scored by
    :func:`search.score` itself, with the true document frequencies, so the
    ranking, the scores and the tie order (doc id) are those of InMemoryIndex
    (tests/unit/knowledge/test_domain_engine.py compares both).

Read budget
    A query of several unrelated common words ("打样 方案 回款 投标") has
    no entry strong in all of them, and on a corpus whose term frequencies are
    flat the bound falls slowly: the walk would read most of the lists. So a
    query reads at most ``max_reads`` postings (default :data:`MAX_READS`);
    past it the answer is the best of what was read, best-first from every
    list (``last_exact`` says so). The budget is far above what the relevance
    corpus or 1,000 entries ever need (at most ~900), so there the ranking is
    exact; bench/bench_knowledge.py reports how often it binds at 100,000
    entries and how close the answers stay to the exact ones.

Memory per posting: doc ordinal (4 bytes) + impact (float32) + tf-pattern id
(4 bytes); entry text is kept zlib-compressed for snippets.

Pure: no I/O. Not thread-safe; under eventlet a method runs without yielding.
"""

from __future__ import annotations

import bisect
import heapq
import json
import math
import zlib
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

from services.knowledge import search
from services.knowledge.search import FIELD_WEIGHTS, FIELDS, K1, B, CorpusStats, SearchHit
from services.knowledge.search import ranking as search_ranking
from services.knowledge.search import text as search_text

#: Postings read per step of the walk.
BLOCK = 32
#: Default read budget of one query (see "Read budget" above).
MAX_READS = 3000
#: Re-sort every list when the impact bound ratio passes this at a write.
RESORT_RATIO = 1.3
#: Tolerance for float rounding in the stop test and the candidate cut.
_EPS = 1e-7

NF = len(FIELDS)
TEXT_FIELDS = ("title", "body", "accepted_answer", "answers")


def forward_row(doc: Mapping[str, Any], rev: int) -> dict[str, Any]:
    """The ``kb_docs`` row of one entry: what :meth:`Engine.apply` needs.

    ``doc`` is what :func:`search.index_document` takes. ``terms`` lists
    ``[term, tf_title, tf_tags, tf_body, tf_accepted_answer, tf_answers]``
    (the order of ``search.FIELDS``): terms may contain dots, so they cannot be
    document keys.
    """
    entry = search.index_document(doc)
    return {
        "_id": entry.doc_id,
        "rev": int(rev),
        "kind": entry.kind,
        "tags": list(entry.tags),
        "lengths": dict(entry.lengths),
        "terms": [[t, *(tfs.get(f, 0) for f in FIELDS)] for t, tfs in entry.term_freqs.items()],
        "title": str(doc.get("title") or ""),
        "body": search_ranking._text_of(doc.get("body")),
        "accepted_answer": search_ranking._text_of(doc.get("accepted_answer")),
        "answers": [search_ranking._text_of(a) for a in doc.get("answers") or ()],
    }


def _consts(avg: Mapping[str, float]) -> list[tuple[float, float, float]]:
    """Per field (w, c1, c2) with w / B_f(d) = w / (c1 + c2 * len_f(d)), as search.score."""
    out = []
    for f in FIELDS:
        a = avg.get(f) or 0.0
        out.append((FIELD_WEIGHTS[f], 1.0 - B, B / a) if a > 0 else (FIELD_WEIGHTS[f], 1.0, 0.0))
    return out


def _f32(x: float) -> float:
    return array("f", (x,))[0]


class _Doc:
    __slots__ = ("doc_id", "rev", "kind", "tags", "lengths", "tids", "tfids", "text")

    def __init__(self, doc_id, rev, kind, tags, lengths, tids, tfids, text):
        self.doc_id = doc_id
        self.rev = rev
        self.kind = kind
        self.tags = tags
        self.lengths = lengths
        self.tids = tids
        self.tfids = tfids
        self.text = text


class Engine:
    def __init__(self, max_reads: int | None = MAX_READS) -> None:
        self.max_reads = max_reads
        self._ord: dict[str, int] = {}
        self._docs: list[_Doc | None] = []
        self._free: list[int] = []
        self._tid: dict[str, int] = {}
        self._terms: list[str] = []
        # per term id: doc ordinals, negated impacts (ascending), tf-pattern ids
        self._p_docs: list[array] = []
        self._p_imps: list[array] = []
        self._p_tfs: list[array] = []
        # per synonym group (search.SYNONYM_GROUPS): one list over its members,
        # impact = the sum of the members' impacts, so that a query's synonym
        # pseudo-term is bounded by one cursor instead of a dozen loose ones
        search.warm_up()
        self._groups = search_text._groups
        self._g_docs = [array("i") for _ in self._groups]
        self._g_imps = [array("f") for _ in self._groups]
        self._term_groups: list[tuple[int, ...]] = []  # tid -> groups it belongs to
        self._tf_id: dict[tuple[int, ...], int] = {}
        self._tf: list[tuple[int, ...]] = []
        self._n = 0
        self._totals = [0] * NF
        self._ref_avg = [0.0] * NF
        self._ref = _consts({})
        self._bulk = False
        #: postings the last query read, and whether its top was proven exact
        self.last_read = 0
        self.last_exact = True

    # ------------------------------------------------------------------ state

    def __len__(self) -> int:
        return self._n

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._ord

    def rev_of(self, doc_id: str) -> int | None:
        o = self._ord.get(doc_id)
        return None if o is None else self._docs[o].rev

    @property
    def stats(self) -> CorpusStats:
        return CorpusStats(self._n, dict(zip(FIELDS, self._totals, strict=True)))

    def status(self) -> dict[str, int]:
        return {"doc_count": self._n, "terms": sum(1 for p in self._p_docs if len(p)),
                "postings": sum(len(p) for p in self._p_docs)}

    def doc_freq(self, term: str) -> int:
        tid = self._tid.get(term)
        return 0 if tid is None else len(self._p_docs[tid])

    # ---------------------------------------------------------------- writing

    def apply(self, row: Mapping[str, Any]) -> bool:
        """Add or replace an entry from its ``kb_docs`` row; an older ``rev``
        than the one held is ignored (rows arrive more than once, out of order)."""
        doc_id = str(row["_id"])
        held = self.rev_of(doc_id)
        if held is not None and held >= int(row.get("rev", 0)):
            return False
        if held is not None:
            self._remove(doc_id)
        self._add(row)
        if not self._bulk and self._ratio() > RESORT_RATIO:
            self._resort()
        return True

    def bulk(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add many rows fast (lists are sorted once, by :meth:`finish`)."""
        self._bulk = True
        for row in rows:
            doc_id = str(row["_id"])
            held = self.rev_of(doc_id)
            if held is not None and held >= int(row.get("rev", 0)):
                continue
            if held is not None:
                self._remove(doc_id)
            self._add(row)

    def finish(self) -> None:
        if self._bulk:
            self._bulk = False
            self._resort()

    def _intern(self, term: str) -> int:
        tid = self._tid.get(term)
        if tid is None:
            tid = self._tid[term] = len(self._terms)
            self._terms.append(term)
            self._p_docs.append(array("i"))
            self._p_imps.append(array("f"))
            self._p_tfs.append(array("i"))
            self._term_groups.append(tuple((search_text._synonyms or {}).get(term, ())))
        return tid

    def _tf_pattern(self, tfs: tuple[int, ...]) -> int:
        i = self._tf_id.get(tfs)
        if i is None:
            i = self._tf_id[tfs] = len(self._tf)
            self._tf.append(tfs)
        return i

    def _impact(self, tfs: tuple[int, ...], lengths: tuple[int, ...], consts) -> float:
        x = 0.0
        for k in range(NF):
            tf = tfs[k]
            if tf:
                w, c1, c2 = consts[k]
                x += w * tf / (c1 + c2 * lengths[k])
        return x

    def _add(self, row: Mapping[str, Any]) -> None:
        doc_id = str(row["_id"])
        lengths = tuple(int((row.get("lengths") or {}).get(f, 0)) for f in FIELDS)
        pairs = sorted((self._intern(t[0]), self._tf_pattern(tuple(int(n) for n in t[1:1 + NF])))
                       for t in row.get("terms") or ())
        text = zlib.compress(json.dumps({f: row.get(f) for f in TEXT_FIELDS},
                                        ensure_ascii=False).encode(), 1)
        doc = _Doc(doc_id, int(row.get("rev", 0)), row.get("kind") or "question",
                   frozenset(row.get("tags") or ()), lengths,
                   array("i", (p[0] for p in pairs)), array("i", (p[1] for p in pairs)), text)
        if self._free:
            o = self._free.pop()
            self._docs[o] = doc
        else:
            o = len(self._docs)
            self._docs.append(doc)
        self._ord[doc_id] = o
        self._n += 1
        for k in range(NF):
            self._totals[k] += lengths[k]
        for tid, tfid in pairs:
            if self._bulk:  # sorted later
                self._p_docs[tid].append(o)
                self._p_imps[tid].append(0.0)
                self._p_tfs[tid].append(tfid)
                continue
            neg = _f32(-self._impact(self._tf[tfid], lengths, self._ref))
            imps = self._p_imps[tid]
            i = bisect.bisect_right(imps, neg)
            imps.insert(i, neg)
            self._p_docs[tid].insert(i, o)
            self._p_tfs[tid].insert(i, tfid)
        for g in self._doc_groups(doc):
            if self._bulk:
                self._g_docs[g].append(o)
                self._g_imps[g].append(0.0)
                continue
            neg = _f32(-self._group_impact(doc, g, self._ref))
            i = bisect.bisect_right(self._g_imps[g], neg)
            self._g_imps[g].insert(i, neg)
            self._g_docs[g].insert(i, o)

    def _doc_groups(self, doc: _Doc) -> list[int]:
        groups: set[int] = set()
        for tid in doc.tids:
            groups.update(self._term_groups[tid])
        return sorted(groups)

    def _group_impact(self, doc: _Doc, g: int, consts) -> float:
        x = 0.0
        for tid, tfid in zip(doc.tids, doc.tfids, strict=True):
            if g in self._term_groups[tid]:
                x += self._impact(self._tf[tfid], doc.lengths, consts)
        return x


    def _position(self, docs, imps, o, impact) -> int:
        """Where document ordinal `o` sits in a posting list: found by its
        impact (a bisect) unless in bulk mode, where impacts are not sorted yet."""
        if not self._bulk:
            neg = _f32(-impact())
            lo, hi = bisect.bisect_left(imps, neg), bisect.bisect_right(imps, neg)
            for j in range(lo, hi):
                if docs[j] == o:
                    return j
        return docs.index(o)

    def _remove(self, doc_id: str) -> None:
        o = self._ord.pop(doc_id)
        doc = self._docs[o]
        for tid, tfid in zip(doc.tids, doc.tfids, strict=True):
            docs, imps, tfs = self._p_docs[tid], self._p_imps[tid], self._p_tfs[tid]
            i = self._position(docs, imps, o, lambda tfid=tfid: self._impact(
                self._tf[tfid], doc.lengths, self._ref))
            del docs[i], imps[i], tfs[i]
        for g in self._doc_groups(doc):
            docs, imps = self._g_docs[g], self._g_imps[g]
            i = self._position(docs, imps, o, lambda g=g: self._group_impact(doc, g, self._ref))
            del docs[i], imps[i]
        self._n -= 1
        for k in range(NF):
            self._totals[k] -= doc.lengths[k]
        self._docs[o] = None
        self._free.append(o)

    def _avg(self) -> list[float]:
        n = self._n
        return [t / n if n else 0.0 for t in self._totals]

    def _ratio(self) -> float:
        """How much larger a true tf~ can be than the stored impact."""
        r = 1.0
        for a0, a1 in zip(self._ref_avg, self._avg(), strict=True):
            if a0 > 0:
                r = max(r, a1 / a0)
            elif a1 > 0:
                r = max(r, 1.0 / (1.0 - B))
        return r

    def _resort(self) -> None:
        """Recompute every impact with today's averages and sort each list."""
        self._ref_avg = self._avg()
        self._ref = _consts(dict(zip(FIELDS, self._ref_avg, strict=True)))
        docs_all, tf, ref, impact = self._docs, self._tf, self._ref, self._impact
        for tid in range(len(self._terms)):
            docs, tfs = self._p_docs[tid], self._p_tfs[tid]
            if not docs:
                continue
            negs = [-impact(tf[tfs[i]], docs_all[docs[i]].lengths, ref) for i in range(len(docs))]
            order = sorted(range(len(docs)), key=lambda i: (negs[i], docs[i]))
            self._p_docs[tid] = array("i", (docs[i] for i in order))
            self._p_tfs[tid] = array("i", (tfs[i] for i in order))
            self._p_imps[tid] = array("f", (negs[i] for i in order))
        for g in range(len(self._groups)):
            docs = self._g_docs[g]
            if not docs:
                continue
            negs = [-self._group_impact(docs_all[o], g, ref) for o in docs]
            order = sorted(range(len(docs)), key=lambda i: (negs[i], docs[i]))
            self._g_docs[g] = array("i", (docs[i] for i in order))
            self._g_imps[g] = array("f", (negs[i] for i in order))

    # -------------------------------------------------------------- searching

    def search(
        self,
        query: str,
        *,
        tags: Iterable[str] | None = None,
        kind: str | None = None,
        limit: int = 10,
        snippet_width: int = 60,
    ) -> list[SearchHit]:
        """Same contract and results as :meth:`InMemoryIndex.search`."""
        terms = search.parse_query(query)
        if not terms:
            return []
        hits = []
        for doc_id, s in self.rank(terms, tags=tags, kind=kind, limit=limit):
            doc = self._docs[self._ord[doc_id]]
            text = json.loads(zlib.decompress(doc.text))
            text["tags"] = list(doc.tags)
            hits.append(search.make_hit(doc_id, doc.kind, text, terms, s, snippet_width))
        return hits

    def rank(
        self,
        terms: list[search.QueryTerm],
        *,
        tags: Iterable[str] | None = None,
        kind: str | None = None,
        limit: int | None = 10,
    ) -> list[tuple[str, float]]:
        wanted = frozenset(t for t in map(search.normalize_tag, tags or ()) if t)
        n_docs = self._n
        dfs: dict[str, int] = {}
        groups: list[tuple[float, list[tuple[int, float]]]] = []
        for qt in terms:
            df, lists = 0, []
            for term, weight in qt.variants:
                d = self.doc_freq(term)
                dfs[term] = d
                if d:
                    df = max(df, d)
                    lists.append((self._tid[term], weight))
            if df:
                n = max(n_docs, df)
                groups.append((math.log(1.0 + (n - df + 0.5) / (df + 0.5)), lists))
        if not groups:
            return []

        def passes(doc: _Doc) -> bool:
            return (not kind or doc.kind == kind) and wanted <= doc.tags

        candidates = (self._all_matching(groups, passes) if limit is None
                      else self._walk(groups, passes, limit))
        if not candidates:
            return []
        postings: dict[str, dict[str, dict[str, int]]] = {}
        lengths: dict[str, dict[str, int]] = {}
        for doc in candidates:
            lengths[doc.doc_id] = dict(zip(FIELDS, doc.lengths, strict=True))
            for _, lists in groups:
                for tid, _ in lists:
                    tfid = self._tf_of(doc, tid)
                    if tfid is not None:
                        postings.setdefault(self._terms[tid], {})[doc.doc_id] = self._tf_map(tfid)
        stats = CorpusStats(n_docs, dict(zip(FIELDS, self._totals, strict=True)), doc_freqs=dfs)
        return search.score(terms, postings, lengths, stats, limit=limit)

    def _tf_map(self, tfid: int) -> dict[str, int]:
        # fields in sorted order, as InMemoryIndex pools them: float sums then
        # add up in the same order and scores match to the last bit
        return dict(sorted((f, n) for f, n in zip(FIELDS, self._tf[tfid], strict=True) if n))

    def _tf_of(self, doc: _Doc, tid: int) -> int | None:
        tids = doc.tids
        i = bisect.bisect_left(tids, tid)
        if i < len(tids) and tids[i] == tid:
            return doc.tfids[i]
        return None

    def _all_matching(self, groups, passes) -> list[_Doc]:
        seen: set[int] = set()
        for _, lists in groups:
            for tid, _ in lists:
                seen.update(self._p_docs[tid])
        self.last_read, self.last_exact = len(seen), True
        return [d for d in (self._docs[o] for o in sorted(seen)) if passes(d)]

    def _walk(self, groups, passes, limit: int) -> list[_Doc]:
        """The threshold algorithm: entries that may be in the top ``limit``."""
        consts = _consts(dict(zip(FIELDS, self._avg(), strict=True)))
        ratio = self._ratio() * (1.0 + 1e-6)  # float32 impacts are rounded
        k1 = K1
        tf_patterns, docs_all = self._tf, self._docs

        # every variant with postings, by term id (the doc's forward row is sorted by it)
        wanted = sorted((tid, j, w) for j, (_, lists) in enumerate(groups) for tid, w in lists)
        idfs = [idf for idf, _ in groups]
        k1p = k1 + 1.0
        ws = [c[0] for c in consts]
        c1s = [c[1] for c in consts]
        c2s = [c[2] for c in consts]
        bisect_left = bisect.bisect_left

        def exact(doc: _Doc) -> float:
            tids, tfids, lengths = doc.tids, doc.tfids, doc.lengths
            n = len(tids)
            inv = [ws[k] / (c1s[k] + c2s[k] * lengths[k]) for k in range(NF)]
            xs = [0.0] * len(idfs)
            lo = 0
            for tid, j, weight in wanted:
                lo = bisect_left(tids, tid, lo)
                if lo == n:
                    break
                if tids[lo] == tid:
                    t = tf_patterns[tfids[lo]]
                    xs[j] += weight * (t[0] * inv[0] + t[1] * inv[1] + t[2] * inv[2]
                                       + t[3] * inv[3] + t[4] * inv[4])
            s = 0.0
            for idf, x in zip(idfs, xs, strict=True):
                if x:
                    s += idf * x * k1p / (k1 + x)
            return s

        # cursors: [query term index, doc ordinals, negated impacts, weight, position]
        cursors = []
        for j, (_, lists) in enumerate(groups):
            tids = {tid for tid, _ in lists}
            # a synonym group whose members are all variants: one list, weight <= 1
            covered: set[int] = set()
            for g in sorted({g for tid in tids for g in self._term_groups[tid]}):
                members = {self._tid.get(m) for m in self._groups[g]}
                members.discard(None)
                if members <= tids | {t for t in members if not len(self._p_docs[t])}:
                    covered |= members
                    cursors.append([j, self._g_docs[g], self._g_imps[g], 1.0, 0])
            cursors += [[j, self._p_docs[tid], self._p_imps[tid], w, 0]
                        for tid, w in lists if tid not in covered]
        seen = bytearray(len(docs_all))
        scored: list[tuple[float, int]] = []
        top: list[float] = []  # min-heap of the best `limit` scores

        def bound() -> float:
            xs = [0.0] * len(groups)
            for j, _, imps, w, pos in cursors:
                if pos < len(imps):
                    xs[j] += w * ratio * -imps[pos]
            return sum(idf * x * (k1 + 1.0) / (k1 + x)
                       for (idf, _), x in zip(groups, xs, strict=True) if x)

        budget = self.max_reads or math.inf
        reads, exact_top = 0, True
        while True:
            live = [c for c in cursors if c[4] < len(c[1])]
            if not live:
                break
            if len(top) >= limit and bound() * (1 + _EPS) < top[0] * (1 - _EPS):
                break
            if reads >= budget:
                exact_top = False
                break
            # advance the list whose next postings weigh most
            c = max(live, key=lambda c: groups[c[0]][0] * c[3] * -c[2][c[4]])
            docs = c[1]
            end = min(c[4] + BLOCK, len(docs))
            reads += end - c[4]
            for i in range(c[4], end):
                o = docs[i]
                if seen[o]:
                    continue
                seen[o] = 1
                doc = docs_all[o]
                if not passes(doc):
                    continue
                s = exact(doc)
                scored.append((s, o))
                if len(top) < limit:
                    heapq.heappush(top, s)
                elif s > top[0]:
                    heapq.heapreplace(top, s)
            c[4] = end
        self.last_read, self.last_exact = reads, exact_top
        if not scored:
            return []
        cut = top[0] * (1 - 1e-6) if len(top) >= limit else -math.inf
        return [docs_all[o] for s, o in scored if s >= cut]
