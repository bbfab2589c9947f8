"""Snippets: mark matched terms with 【 and 】 (plain text:
safe to show anywhere, nothing to HTML-escape). Brackets 【】 already in the
source text are shown as 〔〕 so the markers stay unambiguous.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from services.knowledge.search.queries import QueryTerm
from services.knowledge.search.ranking import SearchHit, _text_of
from services.knowledge.search.text import (
    _ASCII_RE,
    _WS_RE,
    SNIPPET_MARKS,
    _t2s,
    normalize_tag,
    normalize_text,
)

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


def make_hit(doc_id: str, kind: str, text: Mapping[str, Any], terms, score: float,
             width: int) -> SearchHit:
    """A ranked document as a search answer: its title and best snippet."""
    return SearchHit(doc_id, kind, str(text.get("title") or ""),
                     best_snippet(text, terms, width), score)
