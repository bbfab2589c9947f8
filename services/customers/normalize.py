"""Keys of the duplicate guard (撞单): company name, phone, credit code, e-mail.

Pure functions: no database, no broker, no network. The only I/O is reading
two small packaged data files once, at import:

* ``cpca/resources/adcodes.csv`` — China's administrative divisions (province,
  prefecture, county) shipped by the ``cpca`` distribution. It is located with
  ``importlib.util.find_spec``; ``cpca`` itself is never imported (it pulls in
  pandas and pkg_resources).
* ``data/region_en.csv`` next to this module — English spellings of provinces
  and prefecture-level cities (generated from packaged data, see
  ``data/README.md``).

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

import csv
import importlib.util
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import opencc
import phonenumbers
from rapidfuzz import fuzz

__all__ = [
    "FREE_MAIL_DOMAINS",
    "NAME_CLAIM_PREFIX",
    "SIMILAR_THRESHOLD",
    "InvalidField",
    "NameClaimDecision",
    "NameKey",
    "claim_keys_for_name",
    "credit_code_check_char",
    "credit_code_key",
    "email_domain_hint",
    "email_keys",
    "is_free_mail_domain",
    "matched_on_for_key",
    "name_claim_decision",
    "name_claim_entry",
    "name_release_entry",
    "name_search_grams",
    "names_match",
    "normalize_company_name",
    "normalize_credit_code",
    "normalize_email",
    "normalize_emails",
    "normalize_phone",
    "normalize_phones",
    "phone_key",
    "region_key",
    "regions_compatible",
    "same_company_name",
    "similarity",
]


class InvalidField(ValueError):
    """A field that cannot be normalized; the service maps it to 422
    ``{"error": ..., "fields": {field: reason}}``.

    ``args`` are exactly ``(field, reason)`` so the exception pickles and
    survives nameko's (de)serialization of exception arguments.
    """

    def __init__(self, field: str, reason: str):
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


# Unicode's Default_Ignorable_Code_Point set (DerivedCoreProperties.txt,
# Unicode 15.1): code points that render as nothing, so "恒通\u3164贸易" looks
# exactly like 恒通贸易. NFKC keeps them (U+3164 and U+FFA0 even become
# U+1160), and the Hangul fillers are letters to \w, so the punctuation pass
# would keep them inside a key; a zero-width space would split a region
# prefix (深\u200b圳市...) from the index. Listed here because the standard
# library does not expose the property.
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def _visible(text: str) -> str:
    """NFKC (full width -> half width) without the invisible code points."""
    return _IGNORABLE.sub("", unicodedata.normalize("NFKC", text))


# --------------------------------------------------------------------------
# Administrative regions
# --------------------------------------------------------------------------

_PLACEHOLDERS = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})
_MUNICIPALITIES = frozenset({"11", "12", "31", "50"})  # 北京 天津 上海 重庆
# Suffixes removed to get the short form of a province / prefecture name. Only
# provinces and prefecture-level cities (…市) may be written in short form.
_BIG_SUFFIXES = ("特别行政区", "自治区", "自治州", "地区", "省", "市", "盟")
# Suffixes of county-level names; the stem may be written with any of 区/县/市,
# which absorbs upgrades (梁平县 -> 梁平区) the packaged list may not know yet.
_COUNTY_SUFFIXES = ("自治县", "自治旗", "新区", "林区", "特区", "矿区", "区", "县", "市", "旗")
_COUNTY_ALT_SUFFIXES = ("区", "县", "市")
# "<region><suffix>" immediately followed by one of these makes an ordinary word
# (北京市场 is 北京 + 市场, not 北京市 + 场).
_SUFFIX_WORDS = {"市": "场政民容区井镇", "区": "域块间", "县": "域", "省": "心钱力时"}
# Words that start with a region name but are not a region (hand-picked).
_NOT_REGION_PREFIXES = ("三明治", "长春藤", "北海道", "德州扑克", "大理石", "中山大学", "上海滩")


@dataclass(frozen=True, slots=True)
class _Place:
    path: tuple[str, ...]  # (province,), (province, city) or (province, city, county)
    level: int  # 0 province, 1 prefecture, 2 county


@dataclass(frozen=True, slots=True)
class _Nations:
    """Ethnic-group names as they end an autonomous region's name.

    ``full`` are the names with 族 (恩施土家族苗族); ``autonomous`` adds the
    multi-character names without it, the official form of most autonomous
    names (新疆维吾尔, 伊犁哈萨克, 巴音郭楞蒙古, 克孜勒苏柯尔克孜, 察布查尔锡伯).
    Those are stripped only from a name that says 自治 (东乡县 in Jiangxi is
    no 东乡族 county), and never the one-character names without 族: 西藏 is
    a place, not 西 + 藏.
    """

    full: tuple[str, ...]
    autonomous: tuple[str, ...]

    @classmethod
    def of(cls, names: Iterable[str]) -> _Nations:
        full = sorted({n for n in names if n}, key=len, reverse=True)
        bare = [n[:-1] for n in full if n.endswith("族") and len(n) >= 3]
        return cls(tuple(full), tuple(sorted({*full, *bare}, key=len, reverse=True)))

    def strip(self, name: str, autonomous: bool) -> str:
        forms = self.autonomous if autonomous else self.full
        while name.endswith(forms):  # 双江拉祜族佤族布朗族傣族: several, the longest first
            nation = next((n for n in forms if name.endswith(n) and len(name) - len(n) >= 2), None)
            if nation is None:
                break
            name = name[: -len(nation)]
        return name


def _short_name(name: str, nations: _Nations, autonomous: bool = True) -> str:
    marked = "自治" in name
    for suffix in _BIG_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            name = name[: -len(suffix)]
            break
    return nations.strip(name, autonomous and marked)


def _county_stem(name: str, nations: _Nations) -> tuple[str, str] | None:
    """'天河区' -> ('天河', '区'); '察布查尔锡伯自治县' -> ('察布查尔', '自治县')."""
    if not name.endswith(_COUNTY_SUFFIXES):
        return None
    for suffix in _COUNTY_SUFFIXES:
        if name.endswith(suffix):
            return nations.strip(name[: -len(suffix)], suffix.startswith("自治")), suffix
    return None


def _county_short(name: str, nations: _Nations) -> str:
    """The county's own level of a region path: its stem, so that 梁平县 and
    梁平区 are one place; the whole name when the stem is one character
    (城区, 郊区)."""
    hit = _county_stem(name, nations)
    return hit[0] if hit and len(hit[0]) >= 2 else name


def _cpca_file(name: str) -> Path:
    # find_spec locates the installed package without executing its __init__
    # (which would import pandas); cheaper than importlib.metadata too.
    spec = importlib.util.find_spec("cpca")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover
        raise ImportError("cpca==0.5.5 must be installed: its adcodes.csv is the region list")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / name


_RegionTables = tuple[
    dict[str, tuple[_Place, ...]], dict[str, tuple[str, ...]], int, dict[str, str]
]


def _load_regions() -> _RegionTables:
    """Index every region name a company name may start with.

    Returns (names -> places, adcode -> path, longest name length, renamed
    path parts: the short names earlier versions stored -> today's, see
    :func:`_as_path`).
    """
    with _cpca_file("56_nations.csv").open(encoding="utf-8") as fh:
        nations = _Nations.of(n.strip() for n in fh)
    with _cpca_file("adcodes.csv").open(encoding="utf-8", newline="") as fh:
        rows = [(r["adcode"][:6], r["name"].strip()) for r in csv.DictReader(fh)]
    names = dict(rows)
    renamed: dict[str, str] = {}
    shorts: dict[str, str] = {}

    def short(name: str) -> str:
        if name not in shorts:
            shorts[name] = _short_name(name, nations)
            # Stored paths (name_region, claim log) were written when only names
            # with 族 were stripped: 新疆维吾尔/乌鲁木齐 must still meet 新疆/乌鲁木齐.
            old = _short_name(name, nations, autonomous=False)
            if old != shorts[name]:
                renamed[old] = shorts[name]
        return shorts[name]

    def province_short(code: str) -> str:
        return short(names[code[:2] + "0000"])

    paths: dict[str, tuple[str, ...]] = {}
    places: dict[str, _Place] = {}
    interned: dict[_Place, _Place] = {}
    for code, name in rows:
        if name in _PLACEHOLDERS or code[:2] + "0000" not in names:
            continue
        prov = province_short(code)
        if code.endswith("0000"):
            place = _Place((prov,), 0)
        elif code.endswith("00"):
            if code[:2] in _MUNICIPALITIES:
                place = _Place((prov,), 1)
            else:
                place = _Place((prov, short(name)), 1)
        else:
            parent = names.get(code[:4] + "00")
            if code[:2] in _MUNICIPALITIES:
                place = _Place((prov, _county_short(name, nations)), 2)
            elif parent is None or parent in _PLACEHOLDERS:
                # 省直辖县级行政区划 (仙桃市, 济源市, 石河子市...): a city of its own.
                place = _Place((prov, short(name)), 2)
            else:
                # The county stays in the path: 天河区 and 番禺区 are two
                # regions, though both compatible with plain 广州.
                place = _Place((prov, short(parent), _county_short(name, nations)), 2)
        place = interned.setdefault(place, place)
        places[code] = place
        paths[code] = place.path

    index: dict[str, set[_Place]] = {}
    full_names: set[str] = set()

    def add(key: str, place: _Place) -> None:
        if len(key) >= 2:
            index.setdefault(key, set()).add(place)

    for code, place in places.items():
        add(names[code], place)
        full_names.add(names[code])
    for code, place in places.items():
        name = names[code]
        if place.level < 2:
            # Both 新疆 and 新疆维吾尔, 伊犁州 and 伊犁哈萨克州 are written.
            forms = {short(name), _short_name(name, nations, autonomous=False)}
            if place.level == 0 or name.endswith("市"):
                for form in forms:
                    add(form, place)
            elif name.endswith("自治州"):
                # 自治州/地区/盟 need their suffix (阿里巴巴 is not 阿里地区); 恩施州 is fine.
                for form in forms:
                    add(form + "州", place)
            continue
        hit = _county_stem(name, nations)
        if hit is None:
            continue
        stems = {hit[0]}
        if hit[1].startswith("自治"):
            stems.add(nations.strip(name[: -len(hit[1])], False))  # 察布查尔锡伯县
        for stem in stems:
            if len(stem) >= 2:
                for alt in _COUNTY_ALT_SUFFIXES:
                    if stem + alt not in full_names:
                        add(stem + alt, place)
    frozen = {k: tuple(sorted(v, key=lambda p: (p.level, p.path))) for k, v in index.items()}
    return frozen, paths, max(len(k) for k in frozen), renamed


def _load_region_en(paths: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[tuple[str, ...], ...]]:
    out: dict[str, tuple[tuple[str, ...], ...]] = {}
    path = Path(__file__).with_name("data") / "region_en.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        lines = (line for line in fh if not line.startswith("#"))
        for row in csv.DictReader(lines):
            found = tuple(paths[c] for c in row["adcodes"].split(";") if c in paths)
            if found:
                out[row["spelling"]] = found
    return out


_REGIONS, _ADCODE_PATHS, _REGION_MAXLEN, _RENAMED_PARTS = _load_regions()
_REGION_EN = _load_region_en(_ADCODE_PATHS)
_T2S = opencc.OpenCC("t2s")


def _common_path(paths: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    paths = list(paths)
    if not paths:
        return ()
    first = paths[0]
    n = 0
    while n < len(first) and all(len(p) > n and p[n] == first[n] for p in paths):
        n += 1
    return first[:n]


def regions_compatible(a: Sequence[str] | str | None, b: Sequence[str] | str | None) -> bool:
    """True when two regions do not contradict each other.

    A missing region is compatible with everything; otherwise one path must
    be a prefix of the other: ('广东',) ~ ('广东', '深圳') ~ ('广东', '深圳',
    '南山'), but ('广东', '深圳') !~ ('广东', '广州'), ('广东', '广州', '天河')
    !~ ('广东', '广州', '番禺') and ('北京',) !~ ('上海',). Accepts paths or
    the '/'-joined strings of :func:`region_key`, also as stored by earlier
    versions ('新疆维吾尔/乌鲁木齐' is '新疆/乌鲁木齐').
    """
    pa = _as_path(a)
    pb = _as_path(b)
    n = min(len(pa), len(pb))
    return pa[:n] == pb[:n]


def _as_path(region: Sequence[str] | str | None) -> tuple[str, ...]:
    if not region:
        return ()
    parts = region.split("/") if isinstance(region, str) else region
    return tuple(_RENAMED_PARTS.get(part, part) for part in parts)


def region_key(path: Sequence[str] | None) -> str:
    """The storable form of a region path: '广东/广州/天河', '广东/深圳', '北京',
    '' (no region)."""
    return "/".join(path or ())


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


# --------------------------------------------------------------------------
# The name claim: an append-only log per core, made safe by _id uniqueness
# --------------------------------------------------------------------------

NAME_CLAIM_PREFIX = "name:"


def claim_keys_for_name(name: str | NameKey) -> list[str]:
    """The claim stream(s) a company name is filed under: ``['name:<core>']``.

    Why not plain unique keys like phones: the region rule cannot be expressed
    as "two claims conflict iff they share a key" with a bounded number of keys.
    Claims with regions R1 != R2 must share no key, yet a region-less claim
    must share a key with every region, so it would need one key per region
    in China (~400 inserts, undone on failure) — and the province/city
    hierarchy makes it worse.

    Why not one document per core updated with ``find_one_and_update``
    (filter ``{_id: 'name:<core>', any: {$ne: true}, regions: {$nin: [R, *ancestors(R)]},
    covered: {$ne: R}}``, update ``{$addToSet: {regions: R, covered: {$each: [R, *ancestors(R)]}}}``,
    upsert=True, a DuplicateKeyError meaning "taken"): correct on MongoDB,
    where a single-document update is atomic, but FerretDB 1.24 implements
    findAndModify as a query followed by an unconditional write of the whole
    document by _id, with no transaction in between (its handler carries the
    TODO FerretDB#3040): two concurrent claims can both pass the filter, and
    the second write drops the first's region. Releasing a region also needs
    a read-modify-write (``covered`` is shared by sibling cities).

    The scheme used instead — correct on both, single-document inserts only:
    every claim or release of a name is an entry in an append-only log per
    core, in one collection (say ``name_claims``)::

        {_id: 'name:<core>#<seq>', stream: 'name:<core>', seq: <int>,
         op: 'claim' | 'release', region: '广东/深圳' | '', customer_id, of: <seq>}

    with a plain index on ``stream``. To claim:

    1. ``entries = find({'stream': stream}).sort('seq', 1)``
    2. ``d = name_claim_decision(entries, region)``; if ``d.retry``: go to 1;
       if not ``d.allowed``: 409 with ``d.conflicts`` (their customer ids).
    3. ``insert_one(name_claim_entry(stream, d.next_seq, region, customer_id))``;
       on DuplicateKeyError (someone appended ``next_seq`` first): go to 1
       (a few attempts, then answer 409/503).

    The unique ``_id`` makes the log linearizable: an insert of ``n+1``
    succeeds only if nobody appended ``n+1`` since our read, so the decision
    was made on the complete log. A rollback (a later phone claim failed) or
    a name change appends ``name_release_entry(...)`` the same way; nothing
    is deleted, which also leaves an audit trail. Logs are tiny (one entry
    per customer that ever had this core).
    """
    key = name if isinstance(name, NameKey) else normalize_company_name(name)
    return [NAME_CLAIM_PREFIX + key.core]


@dataclass(frozen=True, slots=True)
class NameClaimDecision:
    allowed: bool
    next_seq: int
    conflicts: tuple[Mapping, ...] = ()
    retry: bool = False  # the read saw a gap in the log: read again


def _active_claims(entries: Iterable[Mapping]) -> tuple[dict[int, Mapping], int, bool]:
    claims: dict[int, Mapping] = {}
    released: set[int] = set()
    seqs: list[int] = []
    for entry in entries:
        seq = int(entry["seq"])
        seqs.append(seq)
        if entry.get("op", "claim") == "release":
            released.add(int(entry["of"]))
        else:
            claims[seq] = entry
    contiguous = sorted(seqs) == list(range(1, len(seqs) + 1))
    active = {s: e for s, e in claims.items() if s not in released}
    return active, len(seqs), contiguous


def name_claim_decision(
    entries: Iterable[Mapping],
    region: Sequence[str] | str | None,
    ignore_customer_id: str | None = None,
) -> NameClaimDecision:
    """Decide a name claim from the stream's log (see :func:`claim_keys_for_name`).

    ``entries``: every document of the stream (any order). ``region``: the
    claimant's region path or region key ('' / None for none). A claim
    conflicts with every active claim of the same core whose region is
    compatible (:func:`regions_compatible`): equal, one containing the
    other, or either missing. Also usable read-only by the ``check`` endpoint.
    ``ignore_customer_id``: a customer renaming itself (an approved
    amendment) does not conflict with its own claims.
    """
    active, count, contiguous = _active_claims(entries)
    if not contiguous:
        return NameClaimDecision(allowed=False, next_seq=count + 1, retry=True)
    conflicts = tuple(
        e
        for _, e in sorted(active.items())
        if regions_compatible(e.get("region"), region)
        and (ignore_customer_id is None or e.get("customer_id") != ignore_customer_id)
    )
    return NameClaimDecision(allowed=not conflicts, next_seq=count + 1, conflicts=conflicts)


def name_claim_entry(
    stream: str, seq: int, region: Sequence[str] | str | None, customer_id: str
) -> dict:
    """The document to ``insert_one`` for an allowed claim."""
    reg = region if isinstance(region, str) else region_key(region)
    return {
        "_id": f"{stream}#{seq}",
        "stream": stream,
        "seq": seq,
        "op": "claim",
        "region": reg,
        "customer_id": customer_id,
    }


def name_release_entry(stream: str, seq: int, of_seq: int, customer_id: str) -> dict:
    """The document that releases claim ``of_seq`` (appended like a claim)."""
    return {
        "_id": f"{stream}#{seq}",
        "stream": stream,
        "seq": seq,
        "op": "release",
        "of": of_seq,
        "customer_id": customer_id,
    }


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


# --------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------

_PHONE_LABEL = re.compile(r"^\s*(?:tel|phone|mobile|mob|电话|手机|座机)\s*[:.]?\s*", re.I)
# A country code in brackets, "(+86)" or "(0086)", as printed on cards; a bare
# "(010)" is an area code and stays.
_PHONE_CC_BRACKET = re.compile(r"^\(\s*(?:\+|00)\s*(\d{1,4})\s*\)\s*")
_EXT_MARK = r"(?:转|分机|ext\.?|extension|x|#)\s*\d{1,6}"
_PHONE_EXT = re.compile(rf"\s*(?:{_EXT_MARK}|\(\s*{_EXT_MARK}\s*\))\s*$", re.I)
_PHONE_TAIL = re.compile(r"^(.*\d)\s*(?:[-/.\s]\s*\d{1,6}|\(\s*\d{1,6}\s*\))$")
_PHONE_CHARS = re.compile(r"^\+?[\d\s()\-./]+$")
_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−～~"})
_EXT_OK_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.SHARED_COST,
        phonenumbers.PhoneNumberType.UAN,
        phonenumbers.PhoneNumberType.VOIP,
    }
)


def _parse_phone(text: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def normalize_phone(raw: str | None, field: str = "phone") -> str | None:
    """A phone number in E.164 ('+8675588888888'); None for a blank value.

    Accepts mobiles (138 0013 8000), landlines with their area code
    (0755-8888 8888, (010)12345678, 020 8765 4321), +86 / 0086 / 86 / (+86)
    prefixes, 400/800 numbers, foreign numbers with their + code, full-width
    digits, invisible characters pasted along.
    An extension is dropped: 转123, 分机 123, (分机8001), ext. 12, x12, #12, or
    a short group after a complete landline (0755-86013388-8001,
    0755-86013388(8001)) — never after a mobile, where a trailing group means
    a wrong number. A landline without its area code (8888 8888) is
    rejected: its city is unknown.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidField(field, "must be a string")
    text = _visible(raw).translate(_DASHES).strip()
    if not text:
        return None
    text = _PHONE_LABEL.sub("", text)
    text = _PHONE_CC_BRACKET.sub(r"+\1 ", text)
    text = _PHONE_EXT.sub("", text)
    if not _PHONE_CHARS.match(text) or "+" in text[1:]:
        raise InvalidField(field, "is not a phone number")
    digits = sum(c.isdigit() for c in text)
    if digits < 7 or digits > 20:
        raise InvalidField(field, "is not a complete phone number")
    number = _parse_phone(text)
    if number is None:
        m = _PHONE_TAIL.match(text)
        if m:
            base = _parse_phone(m.group(1))
            if base is not None and phonenumbers.number_type(base) in _EXT_OK_TYPES:
                number = base
    if number is None:
        raise InvalidField(field, "is not a valid phone number (a landline needs its area code)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phones(raws: Iterable[str | None] | None, field: str = "phones") -> list[str]:
    """Normalize a list of phones: blanks skipped, duplicates merged, order kept."""
    out: list[str] = []
    for i, raw in enumerate(raws or ()):
        try:
            number = normalize_phone(raw, field)
        except InvalidField as exc:
            raise InvalidField(field, f"#{i + 1} {exc.reason}") from None
        if number and number not in out:
            out.append(number)
    return out


def phone_key(e164: str) -> str:
    """The plain unique claim key of a normalized phone."""
    return "phone:" + e164


# --------------------------------------------------------------------------
# Unified social credit code (统一社会信用代码, GB 32100-2015)
# --------------------------------------------------------------------------

_CC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I O S V Z
_CC_VALUE = {c: i for i, c in enumerate(_CC_ALPHABET)}
_CC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CC_SEPARATORS = re.compile(r"[\s\-]+")


def credit_code_check_char(first17: str) -> str:
    """The 18th character of a credit code: 31 - (sum(value * 3^i mod 31) mod 31), 31 -> 0."""
    total = sum(_CC_VALUE[c] * w for c, w in zip(first17, _CC_WEIGHTS, strict=True))
    return _CC_ALPHABET[(31 - total % 31) % 31]


def normalize_credit_code(raw: str | None, field: str = "credit_code") -> str | None:
    """An 18-character unified social credit code, upper case; None when blank.

    Full-width characters, spaces and hyphens are tolerated. Checked: length,
    alphabet (0-9, A-H, J-N, P-R, T-U, W-Y), positions 3-8 (the
    administrative division code) numeric, and the GB 32100-2015 check
    character. The old 15-digit registration numbers and 9-character
    organization codes are not credit codes and are rejected.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidField(field, "must be a string")
    code = _CC_SEPARATORS.sub("", _visible(raw)).upper()
    if not code:
        return None
    if len(code) != 18:
        raise InvalidField(field, "must be 18 characters")
    bad = sorted({c for c in code if c not in _CC_VALUE})
    if bad:
        raise InvalidField(field, f"contains invalid characters: {''.join(bad)}")
    if not code[2:8].isdigit():
        raise InvalidField(field, "characters 3-8 must be an area code")
    if credit_code_check_char(code[:17]) != code[17]:
        raise InvalidField(field, "check character does not match")
    return code


def credit_code_key(code: str) -> str:
    """The plain unique claim key of a normalized credit code."""
    return "credit:" + code


# --------------------------------------------------------------------------
# E-mail
# --------------------------------------------------------------------------

FREE_MAIL_DOMAINS = frozenset(
    {
        "qq.com", "vip.qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "188.com",
        "vip.163.com", "vip.126.com", "sina.com", "sina.cn", "vip.sina.com", "sohu.com",
        "vip.sohu.com", "139.com", "189.cn", "wo.cn", "aliyun.com", "tom.com", "21cn.com",
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
        "yahoo.com", "yahoo.com.cn", "ymail.com", "icloud.com", "me.com", "mac.com",
        "aol.com", "proton.me", "protonmail.com", "mail.com", "gmx.com", "yandex.com",
        "hotmail.com.cn", "outlook.com.cn", "live.cn",
    }
)  # fmt: skip
_EMAIL = re.compile(
    r"^(?=.{3,254}$)(?=[^@]{1,64}@)"
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)


def normalize_email(raw: str | None, field: str = "email") -> str | None:
    """The e-mail address as a key: trimmed, lower case; None when blank.

    Full-width characters and a Chinese full stop (。) in the domain are
    tolerated, a 'mailto:' prefix and <angle brackets> removed, an
    internationalized domain turned into its xn-- form. Only the basic shape
    is checked (one @, a dotted domain with a real TLD); no DNS.
    Provider tricks (gmail dots, +tags) are deliberately not folded.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidField(field, "must be a string")
    text = _visible(raw).strip().strip("<>").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if not text:
        return None
    local, sep, domain = text.rpartition("@")
    if not sep:
        raise InvalidField(field, "is not an e-mail address")
    domain = domain.replace("。", ".").replace("．", ".").rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidField(field, "has an invalid domain") from None
    address = f"{local}@{domain}".lower()
    if not _EMAIL.match(address):
        raise InvalidField(field, "is not an e-mail address")
    return address


def normalize_emails(raws: Iterable[str | None] | None, field: str = "emails") -> list[str]:
    """Normalize a list of e-mails: blanks skipped, duplicates merged, order kept."""
    out: list[str] = []
    for i, raw in enumerate(raws or ()):
        try:
            address = normalize_email(raw, field)
        except InvalidField as exc:
            raise InvalidField(field, f"#{i + 1} {exc.reason}") from None
        if address and address not in out:
            out.append(address)
    return out


def is_free_mail_domain(domain: str) -> bool:
    return domain.lower() in FREE_MAIL_DOMAINS


def email_keys(email: str | None) -> list[str]:
    """Plain unique claim keys of an e-mail: the full address only.

    API.md: companies are the same when they share "an e-mail address", and a
    free-mail domain alone never makes them the same. A company domain is not
    a key either: group companies and their subsidiaries share one
    (huawei.com), so it would refuse legitimate customers; it is a
    ``similar`` hint instead (:func:`email_domain_hint`).
    """
    address = normalize_email(email)
    return ["email:" + address] if address else []


def email_domain_hint(email: str | None) -> str | None:
    """The company domain of an address for ``similar`` hints; None for free mail."""
    address = normalize_email(email)
    if not address:
        return None
    domain = address.rpartition("@")[2]
    return None if is_free_mail_domain(domain) else domain


def matched_on_for_key(key: str) -> str:
    """The ``matched_on`` label of a claim key ('phone:+86…' -> 'phone')."""
    kind = key.partition(":")[0]
    return {"name": "company_name", "phone": "phone", "credit": "credit_code", "email": "email"}[
        kind
    ]
