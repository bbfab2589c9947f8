"""Company names as duplicate-guard keys: a core (legal form and region
stripped, branch kept) and a region path.

API.md, section "Customers": two companies are the same when their names are
the same after normalization (regions compared only when both have one), or
they share a phone number (E.164, default region CN), a unified social credit
code, or an e-mail address.

Decisions documented here (the why lives next to each function):

* ``core`` keeps 集团 / 控股 / Group / Holdings: 美的集团 and 美的 are distinct
  legal entities (parent and subsidiary) and distinct customers; they still
  come out as ``similar``. Pure legal forms (有限公司, 股份有限公司, 公司,
  Co., Ltd., Inc., GmbH, ...) are dropped.
* A branch (…深圳分行, …东莞分公司, …办事处, "... Shenzhen Branch") stays in the core,
  so a branch never equals its head office; a legal form in front of the
  branch part is dropped (招商银行股份有限公司深圳分行 = 招商银行深圳分行).
* The region is kept as a path (province, prefecture, county): 广州市天河区
  -> (广东, 广州, 天河), 昆山市 -> (江苏, 苏州, 昆山), 北京市朝阳区 -> (北京,
  朝阳) (a municipality is its own prefecture), 广东 -> (广东,). Two regions
  are *compatible* when one path is a prefix of the other: 广东Xx = 深圳Xx =
  深圳市南山区Xx (only one states the finer level), but 深圳Xx != 广州Xx and
  广州市天河区Xx != 广州市番禺区Xx: two districts are two regions. A region
  that cannot be pinned down (朝阳区 exists in Beijing and Changchun) is
  stripped from the core and treated as "no region".
* Autonomous regions are known by their short names, with or without the
  ethnic group (新疆 = 新疆维吾尔自治区, 伊犁州 = 伊犁哈萨克自治州, 广西 =
  广西壮族自治区).
* Only the province and prefecture-level names may be written without their
  suffix (北京小米, 深圳腾讯); county-level names need theirs (天河区, 昆山市),
  because 平安, 长安, 光明, 东方, 新华 are both counties and brand words. A
  prefix is stripped only when at least two characters of name remain.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from services.customers.normalize.regions import (
    _NOT_REGION_PREFIXES,
    _REGION_EN,
    _REGION_MAXLEN,
    _REGIONS,
    _SUFFIX_WORDS,
    _T2S,
    _common_path,
    _Place,
    region_key,
    regions_compatible,
)
from services.customers.normalize.text import InvalidField, _visible

# --------------------------------------------------------------------------
# Company names
# --------------------------------------------------------------------------

_CN_LEGAL = tuple(
    sorted(
        (
            "股份有限公司",
            "有限责任公司",
            "责任有限公司",
            "有限公司",
            "股份公司",
            "总公司",
            "公司",
            "特殊普通合伙",
            "普通合伙",
            "有限合伙",
            "株式会社",
        ),
        key=len,
        reverse=True,
    )
)
# Legal forms that may sit inside a name, before a branch part.
_CN_LEGAL_INNER = re.compile(
    "股份有限公司|有限责任公司|责任有限公司|有限公司|股份公司|总公司|(?<!分)公司"
)
_BRACKET_LEGAL = frozenset(
    {"有限合伙", "普通合伙", "特殊普通合伙", "株", "有限公司", "有限责任公司"}
)
_EN_LEGAL = frozenset(
    {
        "limited", "ltd", "co", "company", "corp", "corporation", "inc", "incorporated",
        "llc", "llp", "lp", "plc", "gmbh", "ag", "kg", "sa", "sas", "sarl", "srl", "spa",
        "bv", "nv", "pte", "pty", "pvt", "kk", "oy", "ab", "as", "sdn", "bhd", "jsc",
        "ltda", "se",
    }
)  # fmt: skip
_CN_BRANCH = (
    "分公司", "分行", "支行", "分理处", "办事处", "代表处", "营业部", "分店", "分厂",
    "分部", "分所", "分社", "分院", "分中心", "分校", "事业部",
)  # fmt: skip
_EN_BRANCH = (("branch",), ("office",))
_BRACKETS = str.maketrans(
    {c: "(" for c in "[{【〔〖〈《「『"} | {c: ")" for c in "]}】〕〗〉》」』"}
)
_A_S = re.compile(r"(?<![a-z0-9])a/s(?![a-z0-9])")
_DOTTED_ABBR = re.compile(r"(?<![a-z0-9])((?:[a-z]\.){2,})")
_NON_WORD = re.compile(r"[^\w()]+|_+")
_NOT_ALNUM = re.compile(r"[\W_]+")
_BRACKET_GROUP = re.compile(r"\(([^()]*)\)")
_EN_LAST_TOKEN = re.compile(r"(?<![a-z0-9])([a-z]+)\s*$")
_EN_FIRST_TOKENS = re.compile(r"^\s*([a-z]+)(?:\s+([a-z]+))?")
_MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class NameKey:
    """A normalized company name.

    ``core``: the name without region and legal form (branch kept), the thing
    that must be equal. ``region``: the most specific canonical region
    ('深圳', '广东', '北京', '天河') or None. ``region_path``: ('广东', '深圳'),
    ('广东', '广州', '天河'), the form regions are compared in
    (:func:`regions_compatible`).
    """

    core: str
    region: str | None = None
    region_path: tuple[str, ...] = ()

    @property
    def full(self) -> str:
        """Region + core ('深圳腾讯计算机系统'), for display and logs; not a key."""
        return (self.region or "") + self.core

    @property
    def region_key(self) -> str:
        return region_key(self.region_path)


@lru_cache(maxsize=1024)
def _fold_char(char: str) -> str:
    base = unicodedata.normalize("NFD", char)[0]
    return base if base.isascii() else char


def _fold_latin(text: str) -> str:
    """é -> e, ü -> u (Nestlé = Nestle); CJK, kana and Hangul untouched."""
    if text.isascii():
        return text
    return "".join(_fold_char(c) if c < "\u3000" and not c.isascii() else c for c in text)


def _clean(text: str) -> str:
    text = _visible(text)
    text = _fold_latin(_T2S.convert(text).casefold()).translate(_BRACKETS)
    text = _A_S.sub("as", text)
    text = _DOTTED_ABBR.sub(lambda m: m.group(1).replace(".", ""), text)
    return " ".join(_NON_WORD.sub(" ", text).split())


def _alnum_len(text: str) -> int:
    return len(_NOT_ALNUM.sub("", text))


def _ends_with_branch(text: str) -> bool:
    text = text.rstrip(" ()")
    if text.endswith(_CN_BRANCH):
        return True
    tokens = text.split()
    return bool(tokens) and any(tuple(tokens[-len(b) :]) == b for b in _EN_BRANCH)


def _fold_branch_region(text: str) -> str:
    """中国银行北京市分行 -> 中国银行北京分行: a city's 市/省 before a branch marker."""
    marker = next((m for m in _CN_BRANCH if text.endswith(m)), None)
    if marker is None:
        return text
    before = text[: -len(marker)]
    if not before.endswith(("市", "省")):
        return text
    for length in range(min(_REGION_MAXLEN, len(before) - 1), 1, -1):
        full, short = before[-length - 1 :], before[-length - 1 : -1]
        if full in _REGIONS and any(p.level < 2 for p in _REGIONS.get(short, ())):
            return before[:-1] + marker
    return text


def _split_branch(text: str) -> tuple[str, str]:
    """'招商银行股份有限公司深圳分行' -> ('招商银行', '深圳分行').

    Only when the name ends with a branch marker and a legal form precedes
    the branch part; otherwise the whole name is the head and the tail is ''.
    """
    if not _ends_with_branch(text):
        return text, ""
    stripped = text.rstrip(" ()")
    last = None
    for m in _CN_LEGAL_INNER.finditer(stripped):
        if _alnum_len(stripped[m.end() :]) and _alnum_len(stripped[: m.start()]):
            last = m
    if last is not None:
        return text[: last.start()], text[last.end() :]
    tokens = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    for i in range(len(tokens) - 2, 0, -1):
        if tokens[i][0] in _EN_LEGAL:
            j = i
            while j - 1 > 0 and tokens[j - 1][0] in _EN_LEGAL:
                j -= 1
            return text[: tokens[j][1]], text[tokens[i][2] :]
    return text, ""


def _strip_legal(text: str) -> str:
    """Drop trailing (and leading) legal forms while something remains."""
    while True:
        text = text.strip()
        if _ends_with_branch(text):
            break
        suffix = next((sfx for sfx in _CN_LEGAL if text.endswith(sfx)), None)
        if suffix is not None:
            if _alnum_len(text[: -len(suffix)]) < 1:
                break  # the name is nothing but a legal form
            text = text[: -len(suffix)]
        else:
            m = _EN_LAST_TOKEN.search(text)
            if m and m.group(1) in _EN_LEGAL and _alnum_len(text[: m.start()]) >= 1:
                text = text[: m.start()]
                continue
            break
    for prefix in ("株式会社", "the "):
        if text.startswith(prefix) and _alnum_len(text[len(prefix) :]) >= 1:
            text = text[len(prefix) :].strip()
    return text


def _region_candidates(text: str) -> tuple[int, tuple[_Place, ...]] | None:
    """The longest region name at the start of ``text`` (Chinese)."""
    if text.startswith(_NOT_REGION_PREFIXES):
        return None
    for length in range(min(_REGION_MAXLEN, len(text)), 1, -1):
        places = _REGIONS.get(text[:length])
        if not places:
            continue
        nxt = text[length : length + 1]
        if nxt and nxt in _SUFFIX_WORDS.get(text[length - 1], ""):
            continue  # 北京市场 -> try 北京
        return length, places
    return None


def _pick(places: Sequence[_Place], current: tuple[str, ...]) -> tuple[str, ...] | None:
    """Resolve candidates to one path; None when none fits ``current``."""
    fitting = [p for p in places if regions_compatible(p.path, current)]
    if not fitting:
        return None
    provinces = [p for p in fitting if p.level == 0]
    if provinces and not current:
        fitting = provinces  # 吉林, 海南: the province wins over a namesake
    return _common_path(p.path for p in fitting)


def _strip_region_prefix(text: str) -> tuple[str, tuple[str, ...], bool]:
    """Strip 广东省深圳市南山区 / 北京 / 天河区 from the start of ``text``.

    Returns (rest, path, found). Each further level must fit the previous one
    and be either more specific or an explicit county name.
    """
    path: tuple[str, ...] = ()
    found = False
    for _ in range(3):
        body = text.lstrip()
        hit = _region_candidates(body)
        if hit is None:
            break
        length, places = hit
        picked = _pick(places, path)
        if picked is None:
            break
        if found and len(picked) <= len(path) and all(p.level < 2 for p in places):
            break  # 深圳市深圳湾: the second 深圳 is part of the name
        rest = body[length:]
        if _alnum_len(rest) < 2:
            break
        text, found = rest, True
        if len(picked) > len(path):
            path = picked
    return text, path, found


def _strip_region_prefix_en(text: str) -> tuple[str, tuple[str, ...], bool]:
    """'shenzhen tencent computer systems' -> region shenzhen; needs 2 words left."""
    m = _EN_FIRST_TOKENS.match(text)
    if not m:
        return text, (), False
    words = text.split()
    for n in (2, 1):
        if len(words) < n + 2:
            continue
        spelling = "".join(words[:n])
        if spelling in _REGION_EN:
            return " ".join(words[n:]), _common_path(_REGION_EN[spelling]), True
    return text, (), False


def _bracket_region(content: str) -> tuple[str, ...] | None:
    """The region path when a bracket holds nothing but a region."""
    compact = _NOT_ALNUM.sub("", content)
    if not compact:
        return None
    if compact in _REGION_EN:
        return _common_path(_REGION_EN[compact])
    places = _REGIONS.get(compact)
    if places:
        return _pick(places, ()) or ()
    rest, path, found = _strip_region_prefix(compact + "xx")  # 广东深圳, 深圳市南山区
    if found and rest == "xx":
        return path
    return None


@lru_cache(maxsize=8192)
def _normalize_name(name: str) -> NameKey:
    text = _clean(name)
    if _alnum_len(text) == 0:
        raise InvalidField("company_name", "must contain letters or digits")
    head, tail = _split_branch(_fold_branch_region(text))

    bracket_paths: list[tuple[str, ...]] = []
    bracket_texts: list[str] = []

    def bracket(m: re.Match[str]) -> str:
        content = m.group(1).strip()
        if _NOT_ALNUM.sub("", content) in _BRACKET_LEGAL:
            return " "
        path = _bracket_region(content)
        if path is not None and all(regions_compatible(path, p) for p in bracket_paths):
            bracket_paths.append(path)
            bracket_texts.append(content)
            return " "
        return f" {content} "

    stripped = _BRACKET_GROUP.sub(bracket, head)
    stripped = stripped.replace("(", " ").replace(")", " ")
    if _alnum_len(stripped) + _alnum_len(tail) < 2 and bracket_paths:
        stripped, bracket_paths, bracket_texts = head.replace("(", " ").replace(")", " "), [], []
    core_text = _strip_legal(stripped)
    rest, prefix_path, found = _strip_region_prefix(core_text)
    if not found and rest[:1].isascii():
        rest, prefix_path, found = _strip_region_prefix_en(core_text)
    if found and _alnum_len(rest) + _alnum_len(tail) >= 2:
        core_text = rest
    else:
        prefix_path = ()

    path = prefix_path
    for bpath, btext in zip(bracket_paths, bracket_texts, strict=True):
        if regions_compatible(bpath, path):
            path = bpath if len(bpath) > len(path) else path
        else:  # 北京Xx(上海)有限公司: the prefix wins, the bracket stays in the name
            core_text = f"{core_text} {btext}"
    core = _NOT_ALNUM.sub("", core_text) + _NOT_ALNUM.sub("", tail)
    if not core:
        core = _NOT_ALNUM.sub("", text)
    return NameKey(core=core, region=path[-1] if path else None, region_path=path)


def normalize_company_name(name: str) -> NameKey:
    """Normalize a company name into its duplicate-guard key.

    NFKC (full/half width) -> traditional->simplified (OpenCC t2s) ->
    casefold -> bracket styles unified -> punctuation and spaces dropped;
    legal forms dropped (有限公司, 有限责任公司, 股份有限公司, 公司, (有限合伙),
    Co., Ltd., Limited, Inc., Corp., LLC, GmbH, AG, S.A., ...); 集团/Group kept;
    branch kept; region taken from a prefix (广东省深圳市…, 北京…, 天河区…,
    Shenzhen …) or a bracket (…（深圳）有限公司, (Beijing)).

    >>> normalize_company_name("腾讯計算機系統（深圳）有限公司")
    NameKey(core='腾讯计算机系统', region='深圳', region_path=('广东', '深圳'))

    Raises InvalidField for a non-string, blank, over-long (>200) name or a
    name with no letter or digit.
    """
    if not isinstance(name, str):
        raise InvalidField("company_name", "must be a string")
    if not name.strip():
        raise InvalidField("company_name", "is required")
    if len(name) > _MAX_NAME:
        raise InvalidField("company_name", f"is longer than {_MAX_NAME} characters")
    return _normalize_name(name.strip())


def same_company_name(a: NameKey, b: NameKey) -> bool:
    """The duplicate rule: same core, regions compared only when both have one."""
    return a.core == b.core and regions_compatible(a.region_path, b.region_path)


def names_match(a: str, b: str) -> bool:
    """:func:`same_company_name` on raw names."""
    return same_company_name(normalize_company_name(a), normalize_company_name(b))


