"""China's administrative regions (province, prefecture, county), read once
from the packaged division list, and how two region paths compare."""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import opencc

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
    path = Path(__file__).parents[1] / "data" / "region_en.csv"
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


