"""Recall@3 and MRR of a ranking over the relevance corpus's queries."""


def measure(queries, ranked_ids):
    """(recall@3, MRR, misses): `ranked_ids(query)` gives the ids in rank order."""
    found = wanted = 0
    reciprocal = 0.0
    misses = []
    for q in queries:
        ids = ranked_ids(q["q"])
        hit = [r for r in q["relevant"] if r in ids[:3]]
        found += len(hit)
        wanted += len(q["relevant"])
        ranks = [ids.index(r) + 1 for r in q["relevant"] if r in ids]
        reciprocal += 1.0 / min(ranks) if ranks else 0.0
        if len(hit) < len(q["relevant"]):
            misses.append(f"{q['q']} wants {q['relevant']} got {ids[:3]}")
    return found / wanted, reciprocal / len(queries), misses
