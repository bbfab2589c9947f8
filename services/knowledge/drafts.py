"""Drafts from resolved alarms: when a manager resolves a difficulty alarm,
its reason and resolution become a private draft question with an answer for
the rep, the customer masked (company name, its short forms, contacts), which
the rep may publish to the knowledge base or discard. Draft edits keep no
history (the unmasked residue a rep removes must not survive); publishing
makes version 1 and the note the accepted answer. Pure."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.knowledge.domain import (
    ALARM_TAG,
    DECISIONS,
    DRAFT,
    MASK,
    MASK_CONTACT,
    clean_tags,
    new_answer,
)

_LEGAL_FORMS = (
    "股份有限公司", "有限责任公司", "有限公司", "集团公司", "总公司", "分公司", "公司", "集团",
    "工作室", "经营部", "商行", "门市部", "厂",
    "co., ltd.", "co.,ltd.", "co., ltd", "co.,ltd", "co. ltd.", "co ltd", "company limited",
    "limited", "ltd.", "ltd", "inc.", "inc", "corporation", "corp.", "corp", "llc", "gmbh", "co.",
)
_REGIONS = tuple(sorted({
    *(r + s for r in (
        "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江",
        "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州",
        "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港",
        "澳门") for s in ("省", "市", "自治区", "特别行政区", "")),
    *(c + s for c in (
        "深圳", "广州", "东莞", "佛山", "珠海", "中山", "惠州", "汕头", "江门", "杭州", "宁波",
        "温州", "绍兴", "嘉兴", "金华", "台州", "义乌", "苏州", "南京", "无锡", "常州", "南通",
        "扬州", "徐州", "昆山", "武汉", "长沙", "成都", "西安", "郑州", "济南", "青岛", "烟台",
        "潍坊", "合肥", "福州", "厦门", "泉州", "南昌", "昆明", "贵阳", "南宁", "海口", "沈阳",
        "大连", "长春", "哈尔滨", "石家庄", "太原", "兰州", "乌鲁木齐", "呼和浩特", "银川",
        "西宁", "拉萨", "唐山", "保定", "洛阳", "芜湖", "绵阳", "宜昌", "襄阳", "株洲", "柳州")
      for s in ("市", "")),
}, key=len, reverse=True))
_INDUSTRY = tuple(sorted({
    "科技", "技术", "电子", "信息", "网络", "软件", "智能", "贸易", "商贸", "工贸", "实业", "机械",
    "设备", "制造", "工业", "材料", "新材料", "化工", "医药", "生物", "医疗", "器械", "食品", "餐饮",
    "管理", "咨询", "服务", "文化", "传媒", "广告", "物流", "供应链", "建设", "建筑", "工程",
    "装饰", "环保", "能源", "新能源", "光电", "通信", "自动化", "汽车", "配件", "五金", "塑料",
    "塑胶", "包装", "印刷", "纺织", "服装", "服饰", "家居", "家具", "电器", "电气", "精密",
    "国际", "发展", "投资", "控股", "企业", "用品", "制品", "装备", "光学", "照明", "仪器",
    "仪表", "金属", "模具", "数码", "教育", "健康", "农业", "置业", "地产", "房地产", "酒店",
    "旅游", "进出口", "trading", "technology", "technologies", "tech", "electronics",
    "industrial", "industries", "international", "group", "holdings", "logistics",
}, key=len, reverse=True))
_FULL_WIDTH_ALNUM = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)
                     if chr(c - 0xFEE0).isalnum() or chr(c - 0xFEE0) in "@.+-_"}
_BRACKETS = re.compile(r"[（(【\[][^）)】\]]*[）)】\]]")
_SPACE = re.compile(r"\s+")
_CONTACT_PATTERNS = (
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),  # e-mail
    re.compile(r"(?<![0-9A-Z])[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}(?![0-9A-Z])"),
    re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)"),  # mobile
    re.compile(r"(?<!\d)0\d{2,3}[- ]?\d{7,8}(?!\d)"),  # landline
)


def _strip_suffixes(name: str, suffixes: tuple[str, ...], keep: int = 2,
                    once: bool = False) -> str:
    changed = True
    while changed:
        changed = False
        low = name.lower()
        for suffix in suffixes:
            if low.endswith(suffix) and len(name) - len(suffix) >= keep:
                name = name[: len(name) - len(suffix)].rstrip(" ,.-")
                if once:
                    return name
                changed = True
                break
    return name


def company_aliases(company_name: str | None) -> list[str]:
    """The ways a rep writes a company: full name, without brackets and legal
    form, without the region, and the brand (industry words dropped):
    深圳市华强电子科技有限公司 -> ..., 华强电子科技, 华强. Longest first."""
    if not company_name or not company_name.strip():
        return []
    full = _SPACE.sub(" ", unicodedata.normalize("NFKC", company_name)).strip()
    names = {full}
    plain = _BRACKETS.sub("", full).strip()
    names.add(plain)
    no_legal = _strip_suffixes(plain, _LEGAL_FORMS)
    names.add(no_legal)
    core = no_legal
    for _ in range(3):  # province, city, district-like prefixes
        region = next((r for r in _REGIONS if core.startswith(r) and len(core) - len(r) >= 2), None)
        if region is None:
            break
        core = core[len(region):].strip()
        names.add(core)
    while True:  # 宏达机械设备 -> 宏达机械 -> 宏达: every stage is a way to say it
        shorter = _strip_suffixes(core, _INDUSTRY, once=True)
        if shorter == core:
            break
        core = shorter
        names.add(core)
    return sorted((n for n in names if len(n) >= 2), key=lambda n: (-len(n), n))


def mask_customer(text: str | None, company_name: str | None) -> str:
    """``text`` with the company's names and any phone, e-mail or credit code masked."""
    # full-width letters and digits folded so that names and numbers match;
    # the writer's Chinese punctuation stays as it was
    text = (text or "").translate(_FULL_WIDTH_ALNUM)
    for alias in company_aliases(company_name):
        text = re.sub(re.escape(alias), MASK, text, flags=re.IGNORECASE)
    for pattern in _CONTACT_PATTERNS:
        text = pattern.sub(MASK_CONTACT, text)
    return text.strip()


def _title_from(reason: str, limit: int = 60) -> str:
    first = re.split(r"(?<=[。！？!?；;\n])", reason, maxsplit=1)[0].strip()
    first = first.rstrip("。；;")
    if len(first) > limit:
        first = first[: limit - 1] + "…"
    return f"{ALARM_TAG}：{first}" if first else "一次困难报警的处理经验"


def wants_draft(payload: Mapping) -> bool:
    return bool((payload.get("note") or "").strip()) and bool(payload.get("owner_id"))


DRAFT_IT, SKIP, MALFORMED = "draft", "skip", "malformed"


def alarm_draft_action(payload: Any) -> tuple[str, str]:
    """What ``AlarmResolved`` asks of knowledge: (DRAFT_IT | SKIP | MALFORMED, why).

    A payload without the ids a draft needs would fail the same way on every
    redelivery: it is MALFORMED (logged and acked), so that it does not go
    back to the queue for ever. Only the writes that follow may fail for a
    passing reason (the database away), and those are retried.
    """
    if not isinstance(payload, Mapping):
        return MALFORMED, "the payload is not an object"
    if not isinstance(payload.get("note") or "", str):
        return MALFORMED, "note is not text"
    if not wants_draft(payload):
        return SKIP, "no note from the manager or no rep to give it to"
    missing = [k for k in ("alarm_id", "owner_id")
               if not isinstance(payload.get(k), str) or not payload[k].strip()]
    if missing:
        return MALFORMED, "missing " + ", ".join(missing)
    for key in ("reason", "company_name", "resolved_by", "decision"):
        if payload.get(key) is not None and not isinstance(payload[key], str):
            return MALFORMED, f"{key} is not text"
    return DRAFT_IT, ""


def draft_from_alarm(payload: Mapping, question_id: str, answer_id: str,
                     now: datetime) -> dict:
    """The draft question document for the alarm's rep (see the module docstring)."""
    company = payload.get("company_name")
    reason = mask_customer(payload.get("reason"), company) or "（报警原因未填写）"
    note = mask_customer(payload.get("note"), company)
    decision = payload.get("decision")
    body = reason
    if decision in DECISIONS:
        body += f"\n\n经理的处理决定：{DECISIONS[decision]}。"
    tags, keys = clean_tags([ALARM_TAG])
    return {
        "_id": question_id,
        "kind": "question",
        "status": DRAFT,
        "alarm_id": str(payload["alarm_id"]),
        "title": _title_from(reason),
        "body": body,
        "tags": tags,
        "tag_keys": keys,
        "customer_id": payload.get("customer_id"),
        "stage": None,
        "author": {"id": payload["owner_id"], "name": ""},
        "draft_answer": {"id": answer_id, "body": note,
                         "author": {"id": payload.get("resolved_by") or "", "name": ""}},
        "decision": decision,
        "accepted_answer_id": None,
        "accepted_by": None,
        "answer_count": 0,
        "votes": {"up": 0, "down": 0},
        "answer_votes": {"up": 0, "down": 0},
        "views": 0,
        "version": 1,
        "history": [],
        "created_at": now,
        "updated_at": now,
    }


def draft_changes(changes: Mapping) -> dict:
    """$set of a draft edit (no history: see the module docstring)."""
    out: dict[str, Any] = {}
    for field in ("title", "body"):
        if changes.get(field) is not None:
            out[field] = changes[field]
    if changes.get("tags") is not None:
        out["tags"], out["tag_keys"] = clean_tags(changes["tags"])
    if changes.get("answer") is not None:
        out["draft_answer.body"] = changes["answer"]
    return out


def published_answer(draft: Mapping, now: datetime) -> dict:
    da = draft["draft_answer"]
    return new_answer(da["id"], draft["_id"], da["body"], da["author"], now)
