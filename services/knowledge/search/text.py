"""Text to index terms: normalizing and Chinese-aware tokenizing.

Text pipeline (:func:`tokenize`)
    NFKC -> traditional to simplified (OpenCC ``t2s``) -> lowercase; CJK runs are
    segmented by a private ``jieba.Tokenizer`` in search mode (``cut_for_search``:
    a long word also yields its dictionary sub-words, so 老客户 gives 老客户 and
    客户), with ``sales_dict.txt`` and every synonym below added as user words;
    ASCII words are lightly stemmed (plural, -ing, final -e); numbers are kept;
    stopwords and the single CJK characters of ``_STOP_CHARS`` dropped.
    客户 is NOT a stopword: IDF weighs it down by itself. The HMM is off: it
    guesses unstable "new words" and costs recall on the relevance corpus;
    search mode lets a compound (增值税专用发票, 老客户) match its parts.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import jieba
import opencc

# --------------------------------------------------------------------------
# Tunables
# --------------------------------------------------------------------------

K1 = 1.2
B = 0.75

#: Indexed fields and their BM25F weights.
FIELD_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "title": 3.0,
        "tags": 2.0,
        "body": 1.0,
        "accepted_answer": 1.0,
        "answers": 0.5,  # answers not (yet) accepted: findable, weighted down
    }
)
FIELDS: tuple[str, ...] = tuple(FIELD_WEIGHTS)

#: Weight of a synonym the user did not type, relative to the typed term.
SYNONYM_WEIGHT = 0.7

SNIPPET_MARKS = ("【", "】")

KINDS = ("question", "story")

SALES_DICT_PATH = Path(__file__).parents[1] / "sales_dict.txt"

#: Sales colloquialisms, one concept per line. Every CJK member is added to
#: the jieba dictionary so it stays one token; English members are stemmed.
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = tuple(
    tuple(line.split())
    for line in """
    价格异议 嫌贵 太贵 贵 价格太高 砍价 压价 杀价 讲价 还价 expensive
    价格 价钱 单价 price pricing
    折扣 打折 优惠 让利 discount
    报价 报价单 quote quotation
    便宜 低价 cheap cheaper
    回款 回款慢 拖款 欠款 不付款 催款 收款 拖欠 overdue collection
    付款方式 付款条件 账期 月结 结算方式 payment term
    定金 订金 预付款 首付款 deposit
    尾款 余款
    样品 试样 打样 寄样 样板 sample
    失联 联系不上 不接电话 不回微信 找不到人 不回复 没回音 没有下文 没消息 石沉大海
    撞单 争单 抢单 duplicate
    拖延 推迟 延期 拖着 考虑考虑 再考虑 再看看 以后再说 搁置 犹豫 观望 postpone delay
    referral 转介绍 老带新 介绍客户
    回访 revisit 维护
    决策人 拍板 决策者 关键人 说了算 做主
    招标 投标 标书 竞标 tender bidding bid
    合同 签约 协议 contract
    发票 开票 专票 普票 专用发票 invoice
    竞品 竞争对手 友商 对手 competitor
    新人 新手 新员工 刚入职 小白 newbie rookie
    公海 公共池 客户池
    交期 交货 发货 delivery
    起订量 最小起订量 moq
    陌拜 陌生电话 电话开发 cold
    投诉 complaint
    离职 交接
""".strip().splitlines()
)

#: Removed from documents and queries. Mostly function words and the
#: filler of questions (怎么办, 请问); content words are left to IDF.
STOPWORDS: frozenset[str] = frozenset(
    """
    的 了 吗 呢 吧 啊 呀 嘛 么 哦 哈 是 在 我 我们 你 你们 您 他 他们 她 她们 它 它们
    这 那 这个 那个 这些 那些 这样 那样 这种 那种 这么 那么 怎么 如何 怎样 怎么办 咋办 咋
    怎么样 什么 为什么 哪些 哪个 哪里 一个 一下 一些 有 有没有 和 与 及 以及 或 或者 就
    都 也 还 又 被 把 给 让 对 从 到 而 但 但是 所以 因为 如果 可以 能 能够 会 要 想 应该
    该 请问 大家 求助 谁 有人 之 其 等 着 过 得 地 很 比较 然后 已经 时候 一直 老是 总是
    以后 之后 以前 之前 现在 还是 就是 还有 不是 其实 真的 特别 非常
    a an the and or of to in on for with is are was were be been being do does did how
    what why when who which i me my we our you your he she it its they them this that
    can could should would will at by from as about please any some
    """.split()
)

#: Single CJK characters dropped: particles, pronouns, prepositions and the
#: most generic verbs and adjectives. Other single characters are kept, as
#: they often carry the meaning in colloquial Chinese (拖 寄 挂 忘 催 砍 贵 签).
_STOP_CHARS: frozenset[str] = frozenset(
    "的了是要我说和不有就在给先跟把也后都让他她它到人上做里没但被很来会内个能还你再用前看"
    "大小多少新按一这对比好时下得您想只更出完别最而去又着该从那为以已等才可或其之与及于"
    "吗呢吧啊呀嘛么哦哈们些每将并太挺真刚啦嗯呗咱俺问打开发当中"
)

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN_RE = re.compile(rf"[{_CJK}]+|[a-z0-9]+(?:\.[0-9]+)*")
_ASCII_RE = re.compile(r"[a-z0-9]")
_WS_RE = re.compile(r"\s+")


# --------------------------------------------------------------------------
# Normalization and tokenizing
# --------------------------------------------------------------------------

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
_converter: opencc.OpenCC | None = None
_synonyms: dict[str, tuple[int, ...]] | None = None
_groups: tuple[tuple[str, ...], ...] = ()


def _t2s() -> opencc.OpenCC:
    global _converter
    if _converter is None:
        _converter = opencc.OpenCC("t2s")
    return _converter


def normalize_text(text: str) -> str:
    """NFKC, traditional -> simplified, lowercase."""
    if not text:
        return ""
    return _t2s().convert(unicodedata.normalize("NFKC", text)).lower()


def _stem(word: str) -> str:
    """Light English stemmer: plurals, -ing, final -e. Digits untouched."""
    if not word.isalpha() or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) >= 6:
        word = word[:-3]
        if len(word) >= 3 and word[-1] == word[-2] and word[-1] not in "aeioulsz":
            word = word[:-1]
    if word.endswith("e") and len(word) >= 4 and not word.endswith("ee"):
        word = word[:-1]
    return word


def _get_tokenizer() -> jieba.Tokenizer:
    global _tokenizer, _synonyms, _groups
    if _tokenizer is not None:
        return _tokenizer
    with _lock:
        if _tokenizer is not None:
            return _tokenizer
        logging.getLogger("jieba").setLevel(logging.WARNING)  # silence "Building prefix dict"
        tk = jieba.Tokenizer()
        tk.initialize()
        tk.load_userdict(str(SALES_DICT_PATH))
        groups: list[tuple[str, ...]] = []
        for group in SYNONYM_GROUPS:
            members: list[str] = []
            for raw in group:
                word = normalize_text(raw)
                if _TOKEN_RE.fullmatch(word) is None:
                    raise ValueError(f"synonym {raw!r} is not a single word")
                if word.isascii():
                    word = _stem(word)
                elif word not in tk.FREQ or not tk.FREQ[word]:
                    tk.add_word(word)
                if word not in members:
                    members.append(word)
            groups.append(tuple(members))
        index: dict[str, list[int]] = {}
        for gi, members in enumerate(groups):
            for word in members:
                index.setdefault(word, []).append(gi)
        _groups = tuple(groups)
        _synonyms = {w: tuple(g) for w, g in index.items()}
        _tokenizer = tk
        return tk


def warm_up() -> None:
    """Load the dictionaries now (about half a second) instead of on first use."""
    _get_tokenizer()
    _t2s()


def _keep(token: str) -> bool:
    if token in STOPWORDS:
        return False
    if len(token) == 1:
        return token.isdigit() or (not token.isascii() and token not in _STOP_CHARS)
    return True


def _tokens_of(normalized: str, tk: jieba.Tokenizer) -> list[str]:
    out: list[str] = []
    for match in _TOKEN_RE.finditer(normalized):
        run = match.group()
        if run[0].isascii():
            token = _stem(run)
            if _keep(token):
                out.append(token)
        else:
            out.extend(w for w in tk.cut_for_search(run, HMM=False) if _keep(w))
    return out


def tokenize(text: str) -> list[str]:
    """Terms of ``text`` in order, repeats included (they are term frequencies)."""
    if not text:
        return []
    return _tokens_of(normalize_text(text), _get_tokenizer())


def normalize_tag(tag: str) -> str:
    """A tag as stored and compared: normalized, trimmed, without a leading #."""
    return normalize_text(tag).strip().lstrip("#").strip()

