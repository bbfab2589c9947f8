"""Queries: parsing, and the synonym groups a query term expands to.

Query-time synonyms: a query term in a :data:`SYNONYM_GROUPS` group becomes one
pseudo-term over all the group's members (as Lucene's SynonymQuery does):
``tf~`` sums the members' weighted tf (a member the user did not type counts
:data:`SYNONYM_WEIGHT`), ``df`` is the largest member df. Query terms of the same
group merge into one pseudo-term so a concept is not counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.knowledge.search import text
from services.knowledge.search.text import SYNONYM_WEIGHT, tokenize

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
    syn = text._synonyms or {}  # set by the tokenizer when it loads
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
            for member in text._groups[g]:
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


