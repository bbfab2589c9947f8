"""Customer rules as plain functions: input normalization, duplicate-guard keys,
who sees what, the shape of matches and of what leaves the service.

No I/O here. The normalizers themselves live in `normalize/`; this module
turns a request into normalized fields and claim keys, and stored documents
into API and event shapes.

Claim keys (strings, stored in the customer's `claim_keys`):

* ``phone:+8613800138000``, ``credit:91440300…``, ``email:li@tencent.com`` —
  plain keys, one unique document each in the `claims` collection;
* ``name:<core>@<region>`` (``name:腾讯计算机系统@广东/深圳``, or
  ``name:小米科技@`` without a region) — a claim in the append-only log of
  the stream ``name:<core>`` (see normalize.name_claims), because
  the region rule ("compared only when both names have one") is not a plain
  equality. A core is letters and digits only, so ``@`` cannot occur in it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from datetime import datetime

from services.common.clock import iso
from services.common.money import MoneyError, fen_to_yuan, yuan_to_fen
from services.common.principal import Principal
from services.customers import normalize as norm
from services.customers.errors import InvalidFields, NotAllowed, NotVisible

_CJK_RUNS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{3,}")
ACTIVE = "active"
POOL = "pool"
CREATOR_ROLES = ("rep", "manager")
MAX_FEN = 10**15  # ten trillion yuan: far beyond any deal, far inside int64
SIMILAR_LIMIT = 5
EXACT_SCORE = 100.0

# Bigrams so common in Chinese company names that a posting list for them
# would hold a good part of all customers. Near-match candidates are looked
# up by the other grams of a name (an index seek each); these are used only
# when a name has nothing else. Ranking still compares the whole core.
COMMON_GRAMS = frozenset("""
科技 技术 贸易 商贸 实业 发展 信息 网络 电子 工程 服务 管理 咨询 文化 传媒 建设 投资 机械 设备
材料 食品 医药 生物 环保 能源 物流 供应 应链 智能 软件 汽车 国际 建筑 装饰 设计 广告 教育 农业
化工 金属 制品 电气 自动 动化 光电 通信 数据 计算 健康 餐饮 酒店 置业 房地 地产 物业 集团 控股
中国 中心 企业 产业 工业 商务 电器 家居 服饰 纺织 印刷 包装 塑料 五金 机电 仪器 医疗 器械 新材
网络 互联 联网 系统 集成 进出 出口 进口 电子 商务 文化 体育 旅游 贸易 有限 实业 经营 销售 开发
""".split())

# ---------------------------------------------------------------- input


def _invalid(exc: norm.InvalidField):
    return InvalidFields.fields({exc.field: exc.reason})


def valid_month_day(value: str | None, field: str = "birthday") -> str | None:
    """"MM-DD" of a real day (02-29 allowed: it exists in leap years)."""
    if value is None:
        return None
    month, _, day = value.partition("-")
    m, d = int(month), int(day)
    if not 1 <= m <= 12 or not 1 <= d <= calendar.monthrange(2000, m)[1]:
        raise InvalidFields.fields({field: "is not a day of the year (MM-DD)"})
    return value


ANNIVERSARY_WORDS = ("纪念", "成立", "周年", "创立", "anniversary", "founded", "founding")


def birthday_kind(label: str | None, explicit: str | None) -> str:
    """A company's founding day is an anniversary, a person's a birthday: said
    explicitly, or read from the label (成立纪念日)."""
    if explicit:
        return explicit
    text = (label or "").lower()
    return "anniversary" if any(w in text for w in ANNIVERSARY_WORDS) else "birthday"


def money_to_fen(value, field: str = "expected_value") -> int:
    if value is None:
        return 0
    try:
        fen = yuan_to_fen(value, field)
    except MoneyError as exc:
        raise InvalidFields.fields({field: exc.message}) from None
    if fen > MAX_FEN:
        raise InvalidFields.fields({field: "is too large"})
    return fen


def fen_to_number(fen: int | None) -> int | float:
    """Yuan for JSON: an int when whole, else a float of at most 2 decimals
    (the gateway would write a Decimal as a string)."""
    amount = fen_to_yuan(int(fen or 0))
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def normalize_keys_input(data: Mapping) -> dict:
    """The duplicate-guard fields of a create or check body, normalized.

    Returns {name: NameKey|None, phones: [E.164], credit_code: str|None,
    emails: [str]}; a value that cannot be normalized is a 422 naming its field.
    """
    try:
        name = data.get("company_name")
        return {
            "name": norm.normalize_company_name(name) if name is not None else None,
            "phones": norm.normalize_phones(data.get("phones") or [], "phones"),
            "credit_code": norm.normalize_credit_code(data.get("credit_code")),
            "emails": norm.normalize_emails(data.get("emails") or [], "emails"),
        }
    except norm.InvalidField as exc:
        raise _invalid(exc) from None


def normalize_contacts(contacts: Iterable[Mapping]) -> list[dict]:
    out = []
    for i, c in enumerate(contacts):
        try:
            phone = norm.normalize_phone(c.get("phone"), f"contacts.{i}.phone")
        except norm.InvalidField as exc:
            raise _invalid(exc) from None
        out.append({"name": c["name"], "title": c.get("title"), "phone": phone,
                    "decision_level": int(c.get("decision_level") or 1)})
    return out


# ---------------------------------------------------------------- claim keys

NAME_PREFIX = norm.NAME_CLAIM_PREFIX


def name_key(key: norm.NameKey) -> str:
    return f"{NAME_PREFIX}{key.core}@{key.region_key}"


def split_name_key(key: str) -> tuple[str, str]:
    """'name:腾讯@广东/深圳' -> ('name:腾讯', '广东/深圳') (the stream and the region)."""
    stream, _, region = key.rpartition("@")
    return stream, region


def is_name_key(key: str) -> bool:
    return key.startswith(NAME_PREFIX)


def claim_keys(keys: Mapping, shared_phones: Iterable[str] = ()) -> list[str]:
    """Every key a customer with these normalized fields holds, in the one
    global order every claimant follows (so among entries sharing their first
    key exactly one gets past it, and nobody can hold a later key of the
    winner's set without having won the first). A phone marked as shared
    (a switchboard) is no key."""
    shared = set(shared_phones)
    out = []
    if keys.get("name") is not None:
        out.append(name_key(keys["name"]))
    out += [norm.phone_key(p) for p in keys.get("phones") or () if p not in shared]
    if keys.get("credit_code"):
        out.append(norm.credit_code_key(keys["credit_code"]))
    for email in keys.get("emails") or ():
        out += norm.email_keys(email)
    return sorted(set(out))


def matched_on(key: str) -> str:
    return norm.matched_on_for_key(key)


SKIP_MARK = "~"


def name_terms(core: str) -> list[str]:
    """The terms a customer is indexed under for near matches (`name_grams`):
    the grams of normalize.name_search_grams, plus skip-bigrams of Chinese
    runs (恒通贸易 -> ~恒贸, ~通易), which survive a one-character change in
    the middle of a name (恒通贸易 / 恒达贸易 share no distinctive bigram,
    but share ~恒贸)."""
    terms = norm.name_search_grams(core)
    for run in _CJK_RUNS.findall(core):
        terms += [SKIP_MARK + run[i] + run[i + 2] for i in range(len(run) - 2)]
    return list(dict.fromkeys(terms))[:96]


MAX_INDEX_TERMS = 8


def search_grams(core: str) -> list[str]:
    """The terms a name is filed under in the near-match index, and looked up
    by: its distinctive terms (words most company names contain are left out:
    their lists would be long and say little), at most MAX_INDEX_TERMS; the
    first few terms when the name has nothing but common words."""
    terms = name_terms(core)
    distinctive = [t for t in terms if t.lstrip(SKIP_MARK) not in COMMON_GRAMS]
    return (distinctive or terms[:4])[:MAX_INDEX_TERMS]


# ---------------------------------------------------------------- who sees what


def is_owner(actor: Principal, customer: Mapping) -> bool:
    return customer.get("owner_id") is not None and customer.get("owner_id") == actor.id


def may_see(actor: Principal, customer: Mapping) -> bool:
    """An admin sees all; a manager his team's; a rep his own. A pool
    customer (公海) is public: nobody could claim it otherwise."""
    if actor.role == "admin" or customer.get("status") == POOL:
        return True
    if is_owner(actor, customer):
        return True
    return (actor.role == "manager" and actor.team_id is not None
            and customer.get("team_id") == actor.team_id)


def check_visible(actor: Principal, customer: Mapping | None) -> Mapping:
    """404, not 403, for a customer the caller may not see: whether it
    exists is itself not his to learn (a duplicate check says who owns it)."""
    if customer is None or not may_see(actor, customer):
        raise NotVisible("not_found", "customer not found")
    return customer


def check_may_create(actor: Principal) -> None:
    if actor.role not in CREATOR_ROLES:
        raise NotAllowed("forbidden", "only reps and managers enter customers (they own them)")


def check_may_follow_up(actor: Principal, customer: Mapping | None) -> Mapping:
    customer = check_visible(actor, customer)
    if not is_owner(actor, customer):
        raise NotAllowed("not_owner", "only the customer's owner writes its follow-ups")
    return customer


# ---------------------------------------------------------------- shapes


def owner_of(doc: Mapping) -> dict | None:
    if not doc.get("owner_id"):
        return None
    return {"id": doc["owner_id"], "name": doc.get("owner_name") or ""}


def new_customer(customer_id: str, data: Mapping, keys: Mapping, contacts: list[dict],
                 claimed: list[str], actor: Principal, now: datetime) -> dict:
    """The stored document of a new customer (shape: storage.py docstring)."""
    name: norm.NameKey = keys["name"]
    return {
        "_id": customer_id,
        "company_name": data["company_name"].strip(),
        "credit_code": keys["credit_code"],
        "phones": keys["phones"],
        "emails": keys["emails"],
        "address": data.get("address"),
        "industry": data.get("industry"),
        "contacts": contacts,
        "birthday": valid_month_day(data.get("birthday")),
        "birthday_label": data.get("birthday_label"),
        "birthday_kind": birthday_kind(data.get("birthday_label"), data.get("birthday_kind")),
        "referred_by": data.get("referred_by"),
        "expected_value_fen": money_to_fen(data.get("expected_value")),
        "stage": data.get("stage") or 0,
        "status": ACTIVE,
        "owner_id": actor.id,
        "owner_name": actor.name,
        "team_id": actor.team_id,
        "created_by": {"id": actor.id, "name": actor.name},
        "created_at": now,
        "updated_at": now,
        "version": 1,
        "name_core": name.core,
        "name_region": name.region_key,
        "name_grams": name_terms(name.core),
        "claim_keys": claimed,
    }


def public_customer(doc: Mapping) -> dict:
    return {
        "id": doc["_id"],
        "company_name": doc["company_name"],
        "credit_code": doc.get("credit_code"),
        "phones": list(doc.get("phones") or []),
        "emails": list(doc.get("emails") or []),
        "address": doc.get("address"),
        "industry": doc.get("industry"),
        "contacts": [dict(c) for c in doc.get("contacts") or []],
        "birthday": doc.get("birthday"),
        "birthday_label": doc.get("birthday_label"),
        "birthday_kind": doc.get("birthday_kind") or "birthday",
        "referred_by": doc.get("referred_by"),
        "expected_value": fen_to_number(doc.get("expected_value_fen")),
        "stage": doc.get("stage", 0),
        "status": doc.get("status", ACTIVE),
        "owner": owner_of(doc),
        "team_id": doc.get("team_id"),
        "version": doc.get("version", 1),
        "created_at": iso(doc["created_at"]),
        "masked": False,  # masking.masked: phones and e-mails shown in full here
    }


def created_event(doc: Mapping) -> dict:
    """The CustomerCreated payload (without the envelope; see CONVENTIONS.md)."""
    return {
        "customer_id": doc["_id"],
        "version": doc["version"],
        "company_name": doc["company_name"],
        "owner_id": doc["owner_id"],
        "team_id": doc["team_id"],
        "stage": doc["stage"],
        "expected_value_fen": doc["expected_value_fen"],
        "status": doc["status"],
        "birthday": doc["birthday"],
        "birthday_label": doc["birthday_label"],
        "birthday_kind": doc["birthday_kind"],
        "referred_by": doc["referred_by"],
        "created_by": doc["created_by"]["id"],
    }


def audit_snapshot(doc: Mapping) -> dict:
    """What the audit trail records of a new customer: its fields, not the
    duplicate-guard bookkeeping."""
    skip = {"_id", "name_grams", "claim_keys", "created_at", "updated_at"}
    return {k: v for k, v in doc.items() if k not in skip}


def match(customer_id: str, company_name: str, owner: dict | None, status: str,
          on: Iterable[str], score: float) -> dict:
    return {"customer_id": customer_id, "company_name": company_name, "owner": owner,
            "status": status, "matched_on": sorted(set(on)), "score": round(float(score), 1)}


def exact_matches(holders: Mapping[str, list[Mapping]], customers: Mapping[str, Mapping],
                  exclude: str | None = None) -> list[dict]:
    """Matches from the claims that hold an entry's keys.

    `holders`: key -> the claim records holding it ({customer_id, owner_id,
    owner_name, company_name}); `customers`: the stored customers by id. A
    claim whose customer is not stored yet (its creator is between claiming
    and storing) is shown from the claim's own record of who is entering it.
    """
    found: dict[str, dict] = {}
    for key, claims in holders.items():
        for claim in claims:
            cid = claim["customer_id"]
            if cid == exclude:
                continue
            entry = found.setdefault(cid, {"on": set(), "claim": claim})
            entry["on"].add(matched_on(key))
    out = []
    for cid, entry in found.items():
        doc = customers.get(cid)
        if doc is not None:
            out.append(match(cid, doc["company_name"], owner_of(doc), doc.get("status", ACTIVE),
                             entry["on"], EXACT_SCORE))
        else:
            claim = entry["claim"]
            out.append(match(cid, claim.get("company_name") or "", owner_of(claim), ACTIVE,
                             entry["on"], EXACT_SCORE))
    out.sort(key=lambda m: (-len(m["matched_on"]), m["customer_id"]))
    return out


def rank_similar(name: norm.NameKey, postings: Iterable[Mapping], exclude: set[str],
                 limit: int = SIMILAR_LIMIT) -> list[tuple[float, str]]:
    """Near matches from the postings of the near-match index ({c: customer id,
    k: core, r: region}) as (score, customer id), best first: the rapidfuzz
    score of the normalized cores; a name in a contradicting region is
    another company and never suggested."""
    best: dict[str, float] = {}
    for p in postings:
        cid = p["c"]
        if cid in exclude or cid in best:
            continue
        if not norm.regions_compatible(p.get("r"), name.region_key):
            continue
        score = norm.similarity(name.core, p.get("k") or "")
        if score >= norm.SIMILAR_THRESHOLD:
            best[cid] = score
    ranked = sorted(((s, c) for c, s in best.items()), key=lambda sc: (-sc[0], sc[1]))
    return ranked[:limit]


def similar_matches(ranked: list[tuple[float, str]], customers: Mapping[str, Mapping]) -> list[dict]:
    """The ranked near matches as `match`es, from the stored customers (one
    not stored yet is left out: it is still being entered)."""
    out = []
    for score, cid in ranked:
        doc = customers.get(cid)
        if doc is not None:
            out.append(match(cid, doc["company_name"], owner_of(doc), doc.get("status", ACTIVE),
                             ["company_name"], score))
    return out


def duplicate_message(matches: list[dict]) -> str:
    first = matches[0]
    owner = first["owner"]["name"] if first["owner"] else "公海 (the public pool)"
    return (f"客户已存在: {first['company_name']} — 归属 {owner} "
            f"(matched on {', '.join(first['matched_on'])})")


def new_followup(followup_id: str, customer_id: str, data: Mapping, actor: Principal,
                 now: datetime) -> dict:
    return {
        "_id": followup_id,
        "customer_id": customer_id,
        "content": data["content"],
        "contact_name": data.get("contact_name"),
        "channel": data.get("channel"),
        "author": {"id": actor.id, "name": actor.name},
        "created_at": now,
    }


def public_followup(doc: Mapping) -> dict:
    return {
        "id": doc["_id"],
        "customer_id": doc["customer_id"],
        "content": doc["content"],
        "contact_name": doc.get("contact_name"),
        "channel": doc.get("channel"),
        "author": dict(doc["author"]),
        "created_at": iso(doc["created_at"]),
    }


def public_shared_phone(doc: Mapping, released: int = 0) -> dict:
    return {"phone": doc["_id"], "note": doc.get("note"), "marked_by": dict(doc["marked_by"]),
            "marked_at": iso(doc["marked_at"]), "released_claims": released}


def normalize_shared_phone(raw: str) -> str:
    try:
        phone = norm.normalize_phone(raw, "phone")
    except norm.InvalidField as exc:
        raise _invalid(exc) from None
    if phone is None:
        raise InvalidFields.fields({"phone": "is required"})
    return phone

