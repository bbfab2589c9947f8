"""The web app in headless Chromium (Debian's, as the browser tests drive it).

1. First load of the customer list, cold (a new browser profile: nothing
   cached) and warm (a reload): bytes transferred by the initial route (as
   sent: brotli; and what gzip would have sent for the same files), and the
   time from navigation until the list's rows are on screen.
2. The duplicate pre-check: a rep types a company name; the time from his
   last keystroke to the verdict on screen (可以录入 / 已被 <owner> 录入),
   with BENCH_WEB_STORED customers in the database (half the names typed are
   taken, half are new). The 200 ms pause the page waits for typing to stop
   is part of the figure, as it is of what the rep sees.

Prints figures; asserts no times.

Knobs (environment):
  BENCH_WEB_STORED   "10000"  customers loaded straight into the database first
  BENCH_WEB_LOADS    "7"      cold and warm loads each
  BENCH_WEB_TYPED    "60"     company names typed into the form
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from urllib.parse import urlparse

from bench.bench_customers import Generator, load
from services.common.principal import Principal
from tests.web.conftest import CHROMIUM_ARGS, LAPTOP, chromium_path

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "web" / "dist"

# Marks the moment the list's first row appears, and each keystroke and
# verdict of the pre-check, on the page's own clock.
PROBE = """
window.__marks = { keys: [], verdicts: [] };
new MutationObserver(() => {
  if (window.__marks.listReady === undefined &&
      document.querySelector('.el-table__body tr.el-table__row')) {
    window.__marks.listReady = performance.now();
  }
  const status = [...document.querySelectorAll('[role=status]')]
    .find((el) => /可以录入|已被 .* 录入/.test(el.textContent || ''));
  if (status) {
    const text = status.textContent.trim();
    const last = window.__marks.verdicts[window.__marks.verdicts.length - 1];
    if (!last || last.text !== text || last.key !== window.__marks.keys.length) {
      window.__marks.verdicts.push({ at: performance.now(), text, key: window.__marks.keys.length });
    }
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
document.addEventListener('input', (e) => {
  if (e.target && e.target.closest && e.target.closest('.new-customer')) {
    window.__marks.keys.push(performance.now());
  }
}, true);
"""


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def _kb(n: float) -> str:
    return f"{n / 1024:.1f} KB"


class Transfers:
    """Bytes on the wire per response (CDP's encodedDataLength: headers and
    body as sent), with the URL and type of each."""

    def __init__(self, page):
        self.rows: dict[str, dict] = {}
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Network.enable")
        self.cdp.on("Network.responseReceived", self._response)
        self.cdp.on("Network.loadingFinished", self._finished)

    def _response(self, ev):
        self.rows[ev["requestId"]] = {"url": ev["response"]["url"], "type": ev.get("type"),
                                      "status": ev["response"]["status"], "bytes": 0}

    def _finished(self, ev):
        if ev["requestId"] in self.rows:
            self.rows[ev["requestId"]]["bytes"] = ev["encodedDataLength"]

    def summary(self) -> dict:
        app = [r for r in self.rows.values() if not urlparse(r["url"]).path.startswith("/api")]
        api = [r for r in self.rows.values() if urlparse(r["url"]).path.startswith("/api")]
        gzip_equiv = 0
        for r in app:
            path = urlparse(r["url"]).path.lstrip("/") or "index.html"
            if r["status"] == 304:
                continue
            f = DIST / (path if (DIST / path).is_file() else "index.html")
            gz = f.with_name(f.name + ".gz")
            gzip_equiv += (gz if gz.exists() else f).stat().st_size
        return {"app_bytes": sum(r["bytes"] for r in app), "app_files": len(app),
                "app_304": sum(1 for r in app if r["status"] == 304),
                "api_bytes": sum(r["bytes"] for r in api), "api_calls": len(api),
                "gzip_bytes": gzip_equiv,
                "js": sum(r["bytes"] for r in app if r["url"].endswith(".js")),
                "css": sum(r["bytes"] for r in app if r["url"].endswith(".css"))}


def _signed_in_context(browser, base, token, user):
    # bypass_csp: Playwright's wait_for_function evaluates a string, which the
    # app's CSP (rightly) refuses; the app itself runs as served.
    ctx = browser.new_context(base_url=base, viewport=LAPTOP, locale="zh-CN",
                              timezone_id="Asia/Shanghai", bypass_csp=True)
    # The session as a returning rep has it: the token already in storage.
    ctx.add_init_script(
        f"try {{ localStorage.setItem('crm.token', {json.dumps(token)});"
        f" localStorage.setItem('crm.user', {json.dumps(user)}) }} catch (e) {{}}")
    ctx.add_init_script(PROBE)
    return ctx


def _load_list(page) -> tuple[float, dict]:
    transfers = Transfers(page)
    page.goto("/customers")
    page.wait_for_function("window.__marks && window.__marks.listReady !== undefined",
                           timeout=30_000)
    ready = page.evaluate("window.__marks.listReady")
    page.wait_for_load_state("networkidle")
    return ready, transfers.summary()


def first_load(browser, base, token, user_json, n: int):
    cold, warm, cold_t, warm_t = [], [], [], []
    for _ in range(n):
        ctx = _signed_in_context(browser, base, token, user_json)
        page = ctx.new_page()
        t, s = _load_list(page)
        cold.append(s)
        cold_t.append(t)
        page.goto("about:blank")
        t, s = _load_list(page)
        warm.append(s)
        warm_t.append(t)
        ctx.close()
    c, w = cold[-1], warm[-1]
    print(f"initial route (/customers), cold: {_kb(c['app_bytes'])} transferred in "
          f"{c['app_files']} files (js {_kb(c['js'])}, css {_kb(c['css'])}; brotli as sent), "
          f"{_kb(c['gzip_bytes'])} as gzip; API {c['api_calls']} calls {_kb(c['api_bytes'])}",
          flush=True)
    print(f"initial route, warm (reload): {_kb(w['app_bytes'])} transferred, "
          f"{w['app_304']} revalidated (304), {w['app_files'] - w['app_304']} from cache or sent",
          flush=True)
    print(f"list interactive (navigation -> rows on screen), n={n}: "
          f"cold median {statistics.median(cold_t):.0f} ms p95 {_pct(cold_t, 95):.0f} ms; "
          f"warm median {statistics.median(warm_t):.0f} ms p95 {_pct(warm_t, 95):.0f} ms",
          flush=True)


def precheck(browser, base, token, user_json, names: list[tuple[str, bool]]):
    ctx = _signed_in_context(browser, base, token, user_json)
    page = ctx.new_page()
    page.goto("/customers/new")
    box = page.get_by_label("公司名称")
    box.wait_for()
    latencies = {True: [], False: []}
    wrong = 0
    for name, taken in names:
        box.fill("")
        page.wait_for_timeout(250)
        before = page.evaluate("window.__marks.verdicts.length")
        # A rep's typing: a character every 60 ms
        box.type(name, delay=60)
        page.wait_for_function(
            "(n) => window.__marks.verdicts.length > n && "
            "window.__marks.verdicts[window.__marks.verdicts.length - 1].key === "
            "window.__marks.keys.length", arg=before, timeout=15_000)
        marks = page.evaluate("window.__marks")
        verdict = marks["verdicts"][-1]
        latencies[taken].append(verdict["at"] - marks["keys"][-1])
        if ("已被" in verdict["text"]) != taken:
            wrong += 1
    ctx.close()
    both = latencies[True] + latencies[False]
    print(f"pre-check, last keystroke -> verdict on screen, n={len(both)}: "
          f"p50 {_pct(both, 50):.0f} ms p95 {_pct(both, 95):.0f} ms max {max(both):.0f} ms "
          f"(taken names p95 {_pct(latencies[True], 95):.0f} ms, new names p95 "
          f"{_pct(latencies[False], 95):.0f} ms; 200 ms of it is the typing pause); "
          f"wrong verdicts {wrong}", flush=True)


def run(ctx):
    from playwright.sync_api import sync_playwright

    stored = int(_env("BENCH_WEB_STORED", "10000"))
    loads = int(_env("BENCH_WEB_LOADS", "7"))
    typed = int(_env("BENCH_WEB_TYPED", "60"))
    team = ctx.team("压测网页组")
    reps = [ctx.user("rep", team["id"], f"网页业务员{i}") for i in range(16)]
    owners = [Principal(u["id"], "rep", team["id"], u["name"]) for u, _ in reps]
    t0 = time.perf_counter()
    sample = load(ctx.db("customers"), Generator(seed=11), owners, stored)
    print(f"{stored} customers loaded in {time.perf_counter() - t0:.1f} s "
          f"({stored // len(owners)} per rep)", flush=True)
    me, token = reps[0]
    user_json = json.dumps({**me, "timezone": me.get("timezone", "Asia/Shanghai")})
    new = Generator(seed=99)
    names = []
    for i in range(typed):
        if i % 2 == 0 and sample:
            names.append((sample[(i * 37) % len(sample)][0], True))
        else:
            names.append((new.company(brand_len=4)[0], False))
    playwright = sync_playwright().start()  # not stopped: see tests/web/conftest.py
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    try:
        first_load(browser, ctx.stack.url, token, user_json, loads)
        precheck(browser, ctx.stack.url, token, user_json, names)
    finally:
        browser.close()
