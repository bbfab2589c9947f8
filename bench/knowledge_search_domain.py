"""Figures for the pure knowledge-search domain (services/knowledge/search/).

    python -m bench.knowledge_search_domain [--sizes 1000,100000] [--queries 400]

``run(ctx)`` fits the bench/__main__.py harness (the stack is not needed;
sizes from BENCH_KNOWLEDGE_SIZES, default 1000,10000: 100,000 documents take
minutes to build and about 1.5 GB).

Prints: jieba dictionary load time (fresh process, with and without jieba's
cache file), tokenize throughput on ~300-character documents, and
InMemoryIndex build time, memory and search latency (p50/p99, snippets
included) at each corpus size. Synthetic documents are shuffled sentences of
the relevance corpus. Prints figures, never asserts times.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "unit" / "knowledge" / "relevance_corpus.json"

sys.path.insert(0, str(ROOT))

from services.knowledge import search  # noqa: E402
from tests.unit.knowledge import reference_index  # noqa: E402

_LOAD_SNIPPET = (
    "import time; t = time.perf_counter(); "
    "from services.knowledge import search; search.warm_up(); "
    "print(time.perf_counter() - t)"
)


def dictionary_load_seconds(*, cached: bool) -> float:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        if not cached:
            env["TMPDIR"] = tmp  # jieba keeps its cache in tempfile.gettempdir()
        out = subprocess.run(
            [sys.executable, "-c", _LOAD_SNIPPET],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    return float(out.stdout.strip())


def sentence_bank() -> tuple[list[str], list[str]]:
    data = json.loads(CORPUS.read_text("utf-8"))
    sentences: list[str] = []
    for e in data["entries"]:
        for text in (e.get("body"), e.get("accepted_answer")):
            sentences += [s for s in re.split(r"(?<=[。!?;])", text or "") if len(s) > 4]
    titles = [e["title"] for e in data["entries"]]
    return sentences, titles + [q["q"] for q in data["queries"]]


def synthetic_docs(n: int, sentences: list[str], titles: list[str], seed: int = 7):
    rnd = random.Random(seed)
    tags = ["价格", "回款", "样品", "账期", "撞单", "回访", "招标", "合同", "发票", "竞品", "新人"]
    for i in range(n):
        body = ""
        while len(body) < 300:
            body += rnd.choice(sentences)
        answer = "".join(rnd.choice(sentences) for _ in range(2)) if i % 2 == 0 else None
        yield {
            "id": f"d{i:06d}",
            "kind": "question" if i % 3 else "story",
            "title": rnd.choice(titles),
            "body": body[:320],
            "tags": rnd.sample(tags, 2),
            "accepted_answer": answer,
        }


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--queries", type=int, default=400)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]

    print("knowledge search domain")
    cold = dictionary_load_seconds(cached=False)
    warm = dictionary_load_seconds(cached=True)
    print(f"  dictionary load (fresh process): {cold * 1000:.0f} ms without jieba cache, "
          f"{warm * 1000:.0f} ms with it")  # fmt: skip

    search.warm_up()
    sentences, queries = sentence_bank()
    docs = list(synthetic_docs(2000, sentences, queries))
    texts = [d["body"][:300] for d in docs]
    t = time.perf_counter()
    n_tokens = sum(len(search.tokenize(x)) for x in texts)
    dt = time.perf_counter() - t
    print(f"  tokenize: {len(texts) / dt:,.0f} docs/s of 300 chars "
          f"({len(texts) * 300 / dt / 1e6:.2f} M chars/s, {n_tokens / len(texts):.0f} terms/doc)")  # fmt: skip
    t = time.perf_counter()
    for d in docs:
        search.index_document(d)
    dt = time.perf_counter() - t
    print(f"  index_document: {len(docs) / dt:,.0f} docs/s (title, body, tags, answer)")

    rnd = random.Random(11)
    for size in sizes:
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        index = reference_index.InMemoryIndex()
        t = time.perf_counter()
        for d in synthetic_docs(size, sentences, queries):
            index.add(d)
        build = time.perf_counter() - t
        rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        timings, touched = [], []
        for _ in range(args.queries):
            q = rnd.choice(queries)
            t = time.perf_counter()
            index.search(q, limit=10)
            timings.append((time.perf_counter() - t) * 1000)
            vocab = reference_index.query_vocabulary(search.parse_query(q))
            touched.append(sum(len(index._postings.get(v, ())) for v in vocab))
        print(f"  InMemoryIndex {size:>7,} docs: build {build:.1f} s, +{rss:,.0f} MB peak RSS, "
              f"{len(index._postings):,} terms; search p50 {pct(timings, 50):.1f} ms, "
              f"p99 {pct(timings, 99):.1f} ms, max {max(timings):.1f} ms; "
              f"postings per query mean {statistics.mean(touched):,.0f}, "
              f"max {max(touched):,}")  # fmt: skip
        del index


def run(ctx: object = None) -> None:
    main(["--sizes", os.environ.get("BENCH_KNOWLEDGE_SIZES", "1000,10000")])


if __name__ == "__main__":
    main()
