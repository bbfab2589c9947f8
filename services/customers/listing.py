"""The customer list (GET /api/customers): the filter of a caller's scope and
of the asked status, stage, owner and words. Each scope reads one index range
(storage/indexes.py CUSTOMER_INDEXES), so a page and its total cost the same
at any size. Pure."""

from __future__ import annotations

import re

from services.common.principal import Principal
from services.customers import normalize as norm
from services.customers.domain import ACTIVE, POOL


def list_filter(actor: Principal, status: str | None = None, stage: int | None = None,
                owner_id: str | None = None) -> dict:
    """The MongoDB filter of GET /api/customers: the caller's scope, then the
    asked filters (which can narrow the scope, never widen it)."""
    if status == POOL:
        scope: dict = {"status": POOL}  # the public pool: everyone may browse it
    elif actor.role == "admin":
        scope = {}
    elif actor.role == "manager":
        scope = {"team_id": actor.team_id}
    else:
        scope = {"owner_id": actor.id}
    f = dict(scope)
    if status is not None:
        f["status"] = status
    if stage is not None:
        f["stage"] = stage
    if owner_id is not None:
        if "owner_id" in f and f["owner_id"] != owner_id:
            return {"_id": {"$in": []}}  # a rep asking for someone else's: nothing
        f["owner_id"] = owner_id
    # An owned customer is active, and a pool customer has no owner and no
    # team (rules): within an owner's or a team's customers, "active"
    # selects them all and "pool" none. Left out, the filter is one an
    # index counts exactly.
    if f.get("owner_id") is not None or f.get("team_id") is not None:
        if f.get("status") == ACTIVE:
            del f["status"]
        elif f.get("status") == POOL:
            return {"_id": {"$in": []}}
    return f


def query_terms(q: str | None) -> dict:
    """What ?q= searches: a phone number, a credit code, or name grams (all
    must occur) plus the plain text for short queries."""
    if not q:
        return {}
    text = q.strip()
    try:
        phone = norm.normalize_phone(text)
    except norm.InvalidField:
        phone = None
    if phone:
        return {"phones": phone}
    try:
        code = norm.normalize_credit_code(text)
    except norm.InvalidField:
        code = None
    if code:
        return {"credit_code": code}
    try:
        core = norm.normalize_company_name(text).core
    except norm.InvalidField:
        return {"_id": {"$in": []}}
    grams = norm.name_search_grams(core)
    if grams and all(len(g) == (2 if _is_cjk(g[0]) else 3) for g in grams):
        return {"name_grams": {"$all": grams[:8]}}
    # a run too short to be a stored gram (腾, ab): plain text within the scope
    return {"name_core": {"$regex": _regex_escape(core)}}


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _regex_escape(text: str) -> str:
    return re.escape(text)
