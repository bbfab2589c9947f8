"""Near matches: how similar two name cores are, and the grams that find them."""

from __future__ import annotations

import re

from rapidfuzz import fuzz

# --------------------------------------------------------------------------
# Near matches
# --------------------------------------------------------------------------

SIMILAR_THRESHOLD = 75.0
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_OTHER_RUN = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_MAX_GRAMS = 64


def similarity(core_a: str, core_b: str) -> float:
    """0-100 closeness of two cores (rapidfuzz WRatio: a full ratio, and a
    partial ratio scaled down when the lengths differ, so 招商银行 vs
    招商银行深圳分行 scores 90). ``similar`` hints suggest >= SIMILAR_THRESHOLD (75: 恒通贸易/恒达贸易 is 75,
    腾讯计算机系统/腾讯科技 60)."""
    if not core_a or not core_b:
        return 0.0
    return float(fuzz.WRatio(core_a, core_b, processor=None))


def name_search_grams(core: str) -> list[str]:
    """Index terms for finding similar names without a scan.

    Chinese runs give overlapping bigrams (腾讯计算 -> 腾讯, 讯计, 计算), other
    runs (Latin letters, digits) trigrams; a run shorter than its n is kept
    whole. The storage layer keeps them in a multikey-indexed field and asks
    ``{'name_grams': {'$in': name_search_grams(core)}}``, then ranks the few
    candidates with :func:`similarity`. At most 64 grams, in order, no repeats.
    """
    grams: list[str] = []
    for pattern, n in ((_CJK_RUN, 2), (_OTHER_RUN, 3)):
        for run in pattern.findall(core):
            if len(run) <= n:
                grams.append(run)
            else:
                grams.extend(run[i : i + n] for i in range(len(run) - n + 1))
    return list(dict.fromkeys(grams))[:_MAX_GRAMS]


