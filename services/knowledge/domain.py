"""Knowledge rules as plain functions: who may do what, votes, the usefulness
score, edit history, drafts from difficulty alarms with the customer masked,
and the API shapes. No I/O.

Decisions (also in the report of issue 6):
- Anyone signed in reads and writes knowledge: it is the team's shared
  experience. Only the author edits his text (PATCH); every earlier version
  is kept in the document's ``history`` and shown by GET .../history.
- One accepted answer per question, chosen by the asker, a manager or an
  admin; they may change it later (the newest choice wins, each change is an
  ``AnswerAccepted`` event). Accepting the already accepted answer changes
  nothing stored but sends the event again (see ``accepted_event_by``).
- Votes go up (1) or down (-1), one per user and item (questions, answers,
  stories); a user may change his vote or take it back (0). Nobody votes on
  his own text.
- ``usefulness`` (shown on every entry): 10 if an answer is accepted, + 3 x
  the question's net votes, + the net votes of all its answers, + ln(1 +
  views): an accepted answer counts most (a thousand views weigh 6.9), then
  what colleagues endorsed; views break ties slowly. A view is a GET of the
  question by someone other than its author. sort=top orders by
  ``top_rank``: answered questions before open ones whatever their votes
  (a new hire wants answers, and four upvotes on an open question would
  otherwise outweigh the accepted answer), then by usefulness.
- A ``customer_id`` is stored as given and shown only to the author: nobody
  learns from the knowledge base which customer a colleague asked about.
- Drafts from ``AlarmResolved`` (with a note) belong to the alarm's rep: the
  reason becomes the question, the manager's note the answer, with the
  company's name (and its short forms), phone numbers, e-mails and credit
  codes masked. Draft edits keep no history (the unmasked residue a rep
  removes must not survive); publishing makes version 1 and the note the
  accepted answer.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.common.clock import iso
from services.common.errors import Forbidden
from services.common.principal import Principal
from services.knowledge.search import normalize_tag

DRAFT, PUBLISHED, DISCARDED = "draft", "published", "discarded"
ACCEPTORS = ("manager", "admin")
MASK = "某客户"
MASK_CONTACT = "***"
ALARM_TAG = "困难报警"
DECISIONS = {"continue": "继续跟进", "reassign": "转给其他业务员", "abandon": "放弃，转入公海"}


def author_of(actor: Principal) -> dict:
    return {"id": actor.id, "name": actor.name or actor.username or ""}


def clean_tags(tags) -> tuple[list[str], list[str]]:
    """Tags as shown (trimmed, first spelling kept) and their normalized keys."""
    shown, keys = [], []
    for tag in tags or ():
        key = normalize_tag(tag)
        if key and key not in keys:
            keys.append(key)
            shown.append(tag.strip().lstrip("#").strip() or key)
    return shown, keys


# ----------------------------------------------------------------------- rules


def check_may_edit(actor: Principal, item: Mapping) -> None:
    if item["author"]["id"] != actor.id:
        raise Forbidden("not_author", "only its author edits this text")


def check_may_accept(actor: Principal, question: Mapping) -> None:
    if question["author"]["id"] != actor.id and actor.role not in ACCEPTORS:
        raise Forbidden("not_allowed", "only the asker or a manager accepts an answer")


def check_may_vote(actor: Principal, item: Mapping) -> None:
    if item["author"]["id"] == actor.id:
        raise Forbidden("own_entry", "nobody votes on his own text")


def vote_delta(old: int, new: int) -> dict[str, int]:
    """The $inc of the {up, down} counters when a user's vote goes old -> new."""
    inc = {"up": int(new == 1) - int(old == 1), "down": int(new == -1) - int(old == -1)}
    return {k: v for k, v in inc.items() if v}


def votes_out(counters: Mapping | None) -> dict:
    up = int((counters or {}).get("up", 0))
    down = int((counters or {}).get("down", 0))
    return {"up": up, "down": down, "score": up - down}


def _net(counters: Mapping | None) -> int:
    return int((counters or {}).get("up", 0)) - int((counters or {}).get("down", 0))


def usefulness(item: Mapping) -> float:
    """sort=top: see the module docstring."""
    score = 3 * _net(item.get("votes")) + math.log1p(max(int(item.get("views", 0)), 0))
    if item.get("kind", "question") == "question":
        score += 10 * bool(item.get("accepted_answer_id")) + _net(item.get("answer_votes"))
    return round(score, 4)


def top_rank(item: Mapping) -> tuple[int, float]:
    """sort=top, greatest first: (has an accepted answer, usefulness). Computed
    from the counters of any stored document, old ones included."""
    return int(bool(item.get("accepted_answer_id"))), usefulness(item)


def accepted_event_by(before: Mapping | None, after: Mapping, answer_id: str,
                      actor_id: str) -> str | None:
    """Who ``AnswerAccepted`` names as accepting, or None when none is due.

    Accepting the already accepted answer changes nothing stored, yet the
    event goes again: the call may be the retry of one that wrote and then
    failed to dispatch, and a lost event would leave the answerer never told.
    Subscribers dedup by (answer, author), so a true repeat tells nobody twice.
    """
    if before is not None:
        return actor_id
    if after.get("accepted_answer_id") == answer_id:
        return after.get("accepted_by") or actor_id
    return None


def question_status(question: Mapping) -> str:
    return "answered" if question.get("accepted_answer_id") else "open"


def index_source(item: Mapping, answers: list[Mapping] = ()) -> dict:
    """What search.index_document takes: the accepted answer's text is part of
    the question's document, the other answers count less."""
    accepted = item.get("accepted_answer_id")
    return {
        "id": item["_id"],
        "kind": item.get("kind", "question"),
        "title": item["title"],
        "body": item["body"],
        "tags": item.get("tags") or [],
        "accepted_answer": next((a["body"] for a in answers if a["_id"] == accepted), None),
        "answers": [a["body"] for a in answers if a["_id"] != accepted],
    }


# -------------------------------------------------------------------- editing


TEXT_FIELDS = {"question": ("title", "body", "tags"), "story": ("title", "body", "tags"),
               "answer": ("body",)}


def edit(kind: str, item: Mapping, changes: Mapping, actor: Principal,
         now: datetime) -> tuple[dict, dict] | None:
    """($set, history snapshot) for an author's edit, or None when nothing changes.

    The snapshot is the version being replaced, so the history holds every
    earlier version; the document holds the current one.
    """
    fields = TEXT_FIELDS[kind]
    new: dict[str, Any] = {}
    for field in fields:
        if changes.get(field) is None:
            continue
        if field == "tags":
            shown, keys = clean_tags(changes["tags"])
            if shown != item.get("tags"):
                new["tags"], new["tag_keys"] = shown, keys
        elif changes[field] != item.get(field):
            new[field] = changes[field]
    if not new:
        return None
    snapshot = {
        "version": item.get("version", 1),
        "at": item.get("updated_at") or item.get("created_at"),
        "editor": item.get("last_editor") or item["author"],
        **{f: item.get(f) for f in fields},
    }
    new.update(version=item.get("version", 1) + 1, updated_at=now,
               last_editor=author_of(actor))
    return new, snapshot


def versions_out(kind: str, item: Mapping) -> dict:
    fields = TEXT_FIELDS[kind]
    current = {
        "version": item.get("version", 1),
        "at": item.get("updated_at") or item.get("created_at"),
        "editor": item.get("last_editor") or item["author"],
        **{f: item.get(f) for f in fields},
    }
    items = [{**v, "at": iso(v["at"])} for v in [*(item.get("history") or []), current]]
    return {"items": items, "total": len(items)}


# ------------------------------------------------------ drafts from alarms


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


# ----------------------------------------------------------- new documents


def new_entry(kind: str, entry_id: str, data: Mapping, actor: Principal,
              now: datetime) -> dict:
    tags, keys = clean_tags(data.get("tags"))
    doc = {
        "_id": entry_id,
        "kind": kind,
        "status": PUBLISHED,
        "title": data["title"],
        "body": data["body"],
        "tags": tags,
        "tag_keys": keys,
        "customer_id": data.get("customer_id"),
        "stage": data.get("stage"),
        "author": author_of(actor),
        "votes": {"up": 0, "down": 0},
        "views": 0,
        "version": 1,
        "history": [],
        "created_at": now,
        "updated_at": now,
    }
    if kind == "question":
        doc.update(accepted_answer_id=None, accepted_by=None, answer_count=0,
                   answer_votes={"up": 0, "down": 0})
    return doc


def new_answer(answer_id: str, question_id: str, body: str, author: Mapping,
               now: datetime) -> dict:
    return {
        "_id": answer_id,
        "question_id": question_id,
        "body": body,
        "author": dict(author),
        "votes": {"up": 0, "down": 0},
        "version": 1,
        "history": [],
        "created_at": now,
        "updated_at": now,
    }


# ------------------------------------------------------------- API shapes


def _common_out(doc: Mapping, viewer: Principal, my_vote: int | None) -> dict:
    mine = doc["author"]["id"] == viewer.id
    return {
        "id": doc["_id"],
        "kind": doc.get("kind", "question"),
        "title": doc["title"],
        "body": doc["body"],
        "tags": list(doc.get("tags") or []),
        "customer_id": doc.get("customer_id") if mine else None,
        "stage": doc.get("stage"),
        "author": dict(doc["author"]),
        "views": int(doc.get("views", 0)),
        "votes": votes_out(doc.get("votes")),
        "my_vote": my_vote,
        "usefulness": usefulness(doc),
        "version": int(doc.get("version", 1)),
        "created_at": iso(doc["created_at"]),
        "updated_at": iso(doc["updated_at"]),
    }


def question_out(doc: Mapping, viewer: Principal, my_vote: int | None = None) -> dict:
    return {
        **_common_out(doc, viewer, my_vote),
        "status": question_status(doc),
        "answer_count": int(doc.get("answer_count", 0)),
        "accepted_answer_id": doc.get("accepted_answer_id"),
        "accepted_by": doc.get("accepted_by"),
    }


def story_out(doc: Mapping, viewer: Principal, my_vote: int | None = None) -> dict:
    return _common_out(doc, viewer, my_vote)


def answer_out(doc: Mapping, accepted_id: str | None, my_vote: int | None = None) -> dict:
    return {
        "id": doc["_id"],
        "question_id": doc["question_id"],
        "body": doc["body"],
        "author": dict(doc["author"]),
        "accepted": doc["_id"] == accepted_id,
        "votes": votes_out(doc.get("votes")),
        "my_vote": my_vote,
        "version": int(doc.get("version", 1)),
        "created_at": iso(doc["created_at"]),
        "updated_at": iso(doc["updated_at"]),
    }


def question_detail(doc: Mapping, answers: list[Mapping], viewer: Principal,
                    my_votes: Mapping[str, int]) -> dict:
    accepted = doc.get("accepted_answer_id")
    # the accepted answer first, then the best voted, then the oldest
    ordered = sorted(answers, key=lambda a: (a["_id"] != accepted, -_net(a.get("votes")),
                                             a["_id"]))
    return {
        **question_out(doc, viewer, my_votes.get(doc["_id"])),
        "answers": [answer_out(a, accepted, my_votes.get(a["_id"])) for a in ordered],
    }


def draft_out(doc: Mapping) -> dict:
    da = doc.get("draft_answer") or {}
    return {
        "id": doc["_id"],
        "status": doc["status"],
        "title": doc["title"],
        "body": doc["body"],
        "tags": list(doc.get("tags") or []),
        "customer_id": doc.get("customer_id"),
        "stage": doc.get("stage"),
        "answer": {"body": da.get("body", ""), "author": dict(da.get("author") or
                                                              {"id": "", "name": ""})},
        "source": {"alarm_id": doc.get("alarm_id", ""), "decision": doc.get("decision")},
        "created_at": iso(doc["created_at"]),
        "updated_at": iso(doc["updated_at"]),
    }
