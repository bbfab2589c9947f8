"""Knowledge-base search: Chinese-aware tokenizing (`text`), queries and
synonyms (`queries`), indexing and BM25F ranking (`ranking`), snippets
(`snippets`). Pure logic, no I/O apart from loading the jieba dictionaries
once; the storage layer keeps the inverted index in MongoDB and `engine`
ranks with these functions. The in-memory reference index the engine must
match is a test oracle (tests/unit/knowledge/reference_index.py).
"""

from __future__ import annotations

from services.knowledge.search.queries import (  # noqa: F401
    QueryTerm,
    parse_query,
)
from services.knowledge.search.ranking import (  # noqa: F401
    CorpusStats,
    IndexEntry,
    SearchHit,
    index_document,
    score,
    stats_increment,
)
from services.knowledge.search.snippets import (  # noqa: F401
    best_snippet,
    make_hit,
    make_snippet,
)
from services.knowledge.search.text import (  # noqa: F401
    FIELD_WEIGHTS,
    FIELDS,
    K1,
    KINDS,
    SALES_DICT_PATH,
    SNIPPET_MARKS,
    STOPWORDS,
    SYNONYM_GROUPS,
    SYNONYM_WEIGHT,
    B,
    normalize_tag,
    normalize_text,
    tokenize,
    warm_up,
)

__all__ = [
    "SearchHit",
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
    "QueryTerm",
    "best_snippet",
    "index_document",
    "make_snippet",
    "normalize_tag",
    "normalize_text",
    "parse_query",
    "score",
    "stats_increment",
    "tokenize",
    "warm_up",
]
