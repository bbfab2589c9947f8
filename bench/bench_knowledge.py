"""The knowledge base at 1,000 and at 100,000 entries: indexing rate, search
p50/p99 over HTTP for 1-4 word queries, and the knowledge service's RSS.

Entries are synthetic Chinese sales questions (two in three, each with an
accepted answer) and success stories, written from the relevance corpus's
sentences (bench/knowledge_search_domain.py). They are indexed through the
real code path (domain.new_entry / new_answer -> domain.index_source ->
engine.forward_row) and written straight into the stack's knowledge database
with insert_many (storage.bulk_index), which makes every knowledge instance
reload its index; the reload is timed through GET /api/knowledge/index.

Queries have 1 to 4 words typed without spaces: half take words of one real
rep query (words that go together), half combine unrelated words (the worst
case: no entry is strong in all of them). The served answers are compared
with an exact ranking computed here (engine without a read budget):
"exact" is the share of queries whose top 10 is identical, "overlap@10" the
mean share of the exact top 10 that was returned.

Knobs (environment):
  BENCH_KNOWLEDGE_SIZES      "1000,100000"  stored entries at each step
  BENCH_KNOWLEDGE_QUERIES    "400"          queries per latency measurement (1 client)
  BENCH_KNOWLEDGE_MAX_LOAD_S "2400"         skip a size whose load would take longer
  BENCH_KNOWLEDGE_EXACT      "1"            "0": skip the comparison with the exact ranking
  BENCH_KNOWLEDGE_KEEP       "0"            "1": leave the loaded entries in place
Prints figures; asserts no times.
"""

from __future__ import annotations

import os
import random
import statistics
import time

from bench.harness import measure, rss_mb, service_pids
from bench.knowledge_search_domain import sentence_bank
from services.common.clock import now as clock_now
from services.common.ids import new_id
from services.common.principal import Principal
from services.knowledge import domain, search, storage
from services.knowledge.engine import Engine, forward_row

BATCH = 2000
TAGS = ["价格", "回款", "样品", "账期", "撞单", "回访", "招标", "合同", "发票", "竞品", "新人"]


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


class Generator:
    def __init__(self, authors: list[Principal], seed: int = 7):
        self.rng = random.Random(seed)
        self.sentences, self.titles = sentence_bank()
        self.authors = authors

    def _text(self, least: int) -> str:
        text = ""
        while len(text) < least:
            text += self.rng.choice(self.sentences)
        return text[:least + 40]

    def batch(self, n: int):
        """(questions, answers, stories, index rows) for n new entries."""
        questions, answers, stories, rows = [], [], [], []
        at = clock_now()
        for _ in range(n):
            author = self.rng.choice(self.authors)
            data = {"title": self.rng.choice(self.titles), "body": self._text(280),
                    "tags": self.rng.sample(TAGS, 2)}
            kind = "story" if self.rng.random() < 1 / 3 else "question"
            doc = domain.new_entry(kind, new_id(), data, author, at)
            doc["index_rev"] = 1
            entry_answers = []
            if kind == "question":
                helper = self.rng.choice(self.authors)
                answer = domain.new_answer(new_id(), doc["_id"], self._text(80),
                                           domain.author_of(helper), at)
                doc.update(accepted_answer_id=answer["_id"], accepted_by=author.id,
                           answer_count=1)
                entry_answers = [answer]
                answers.append(answer)
                questions.append(doc)
            else:
                stories.append(doc)
            rows.append(forward_row(domain.index_source(doc, entry_answers), rev=1))
        return questions, answers, stories, rows


def load(db, gen: Generator, count: int, keep_rows: list | None) -> dict[str, float]:
    """Index and store ``count`` entries; seconds spent building and writing."""
    spent = {"build": 0.0, "write": 0.0}
    done = 0
    while done < count:
        n = min(BATCH, count - done)
        t0 = time.perf_counter()
        questions, answers, stories, rows = gen.batch(n)
        t1 = time.perf_counter()
        for coll, docs in ((db.questions, questions), (db.answers, answers),
                           (db.stories, stories)):
            if docs:
                coll.insert_many(docs, ordered=False)
        storage.bulk_index(db, rows)
        t2 = time.perf_counter()
        spent["build"] += t1 - t0
        spent["write"] += t2 - t1
        if keep_rows is not None:
            keep_rows.extend(rows)
        done += n
        if done % 20000 < BATCH:
            print(f"   ... {done:,}/{count:,} written", flush=True)
    return spent


def wait_loaded(ctx, expected: int, timeout: float = 3600.0) -> float:
    """Seconds until the knowledge service serves an index of ``expected`` entries."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        r = ctx.api.get("/api/knowledge/index", ctx.admin_token)
        if r.ok:
            s = r.json()
            if s["doc_count"] >= expected and s["loaded_generation"] == s["generation"]:
                return time.perf_counter() - t0
        time.sleep(0.5)
    raise RuntimeError(f"the knowledge index did not reach {expected} entries")


def query_set(n: int, seed: int = 11) -> list[str]:
    """1-4 words without spaces: half from one real rep query, half unrelated."""
    import json

    from bench.knowledge_search_domain import CORPUS

    rng = random.Random(seed)
    reps_queries = [q["q"] for q in json.loads(CORPUS.read_text("utf-8"))["queries"]]
    token_lists = [t for t in (list(dict.fromkeys(search.tokenize(q))) for q in reps_queries)
                   if t]
    vocab = sorted({w for t in token_lists for w in t})
    out = []
    for i in range(n):
        k = 1 + i % 4
        words = rng.choice(token_lists) if i % 2 == 0 else rng.sample(vocab, k)
        if len(words) > k:
            start = rng.randrange(len(words) - k + 1)
            words = words[start:start + k]
        out.append(("" if all(not w.isascii() for w in words) else " ").join(words))
    return out


def run(ctx):
    sizes = [int(s) for s in _env("BENCH_KNOWLEDGE_SIZES", "1000,100000").split(",") if s]
    n_queries = int(_env("BENCH_KNOWLEDGE_QUERIES", "400"))
    max_load_s = float(_env("BENCH_KNOWLEDGE_MAX_LOAD_S", "2400"))
    check_exact = _env("BENCH_KNOWLEDGE_EXACT", "1") == "1"
    url = ctx.stack.url
    db = ctx.db("knowledge")
    team = ctx.team("压测知识库团队")
    users = [ctx.user("rep", team["id"], f"压测业务员{i}") for i in range(4)]
    authors = [Principal(u["id"], "rep", team["id"], u["name"]) for u, _ in users]
    token = users[0][1]
    gen = Generator(authors)
    pid = service_pids(ctx.stack).get("knowledge")

    def rss() -> str:
        return f"{rss_mb(pid):.0f} MB" if pid else "n/a"

    search.warm_up()
    queries = query_set(n_queries)
    exact = Engine(max_reads=None) if check_exact else None
    kept: list | None = [] if check_exact else None
    print(f"knowledge service RSS before loading: {rss()}; {len(queries)} queries of 1-4 words "
          f"(e.g. {', '.join(queries[:4])})", flush=True)

    stored = 0
    rate = None
    results = {}
    for size in sizes:
        todo = size - stored
        if todo > 0 and rate and todo / rate > max_load_s:
            print(f"-- {size:,} entries: loading {todo:,} more would take about "
                  f"{todo / rate / 60:.0f} min at the measured {rate:,.0f} entries/s "
                  f"(BENCH_KNOWLEDGE_MAX_LOAD_S={max_load_s:.0f}); size skipped", flush=True)
            continue
        if todo > 0:
            spent = load(db, gen, todo, kept)
            reload_s = wait_loaded(ctx, size)
            total = spent["build"] + spent["write"]
            rate = todo / total
            stored = size
            print(f"-- indexed {todo:,} entries: {rate:,.0f} entries/s "
                  f"(tokenize + rows {todo / spent['build']:,.0f}/s, "
                  f"insert_many into FerretDB {todo / spent['write']:,.0f}/s); the service "
                  f"reloaded its index of {size:,} in {reload_s:.1f} s "
                  f"({size / reload_s:,.0f} entries/s)", flush=True)
            if exact is not None:
                exact.bulk(kept)
                exact.finish()
                kept.clear()
        status = ctx.api.get("/api/knowledge/index", ctx.admin_token).json()
        print(f"knowledge service RSS with {size:,} entries: {rss()} "
              f"({status['terms']:,} terms, {status['postings']:,} postings)", flush=True)

        served: dict[int, list[str]] = {}

        def one(s, i, served=served):
            q = queries[i % len(queries)]
            r = s.get(url + "/api/knowledge/search", params={"q": q, "limit": 10},
                      headers={"Authorization": f"Bearer {token}"}, timeout=120)
            if r.ok and i >= 0:
                served[i] = [it["id"] for it in r.json()["items"]]
            return r

        f1 = measure(f"GET /api/knowledge/search @{size:,}", one, 1, len(queries), warmup=10)
        print(f1.line(), flush=True)
        by_words = {}
        for i, ms in enumerate(f1.latencies_ms):
            by_words.setdefault(1 + i % 4, []).append(ms)
        print("   p99 by words: " + ", ".join(
            f"{k}: {sorted(v)[int(0.99 * (len(v) - 1))]:.1f} ms" for k, v in sorted(by_words.items())),
            flush=True)
        f16 = measure(f"GET /api/knowledge/search @{size:,}", one, 16, len(queries), warmup=16)
        print(f16.line(ctx.ceiling.get("rpc16")), flush=True)
        if exact is not None:
            same, overlap = 0, []
            for i, ids in served.items():
                q = queries[i % len(queries)]
                want = [d for d, _ in exact.rank(search.parse_query(q), limit=10)]
                same += ids == want
                overlap.append(len(set(ids) & set(want)) / len(want) if want else 1.0)
            print(f"   answers vs the exact ranking: top 10 identical for "
                  f"{same / len(served):.1%} of queries, mean overlap@10 "
                  f"{statistics.mean(overlap):.1%}", flush=True)
        print(f"knowledge service RSS after the runs at {size:,}: {rss()}", flush=True)
        results[size] = f1

    if len(results) >= 2:
        small, large = min(results), max(results)
        ratio = results[large].pct(99) / results[small].pct(99)
        print(f"search p99 at {large:,} / at {small:,}: {ratio:.2f}x (target <= 10x)",
              flush=True)
    if _env("BENCH_KNOWLEDGE_KEEP", "0") != "1":
        # leave the stack as other benchmarks expect it: no bulk-loaded entries
        for name in ("questions", "answers", "stories", "votes", "kb_docs", "kb_stats",
                     "kb_feed", "kb_pending"):
            db.drop_collection(name)
        storage.ensure_indexes(db)
        wait_loaded(ctx, 0)
        print("bulk-loaded entries dropped (BENCH_KNOWLEDGE_KEEP=1 keeps them)", flush=True)
