"""What the customer-record endpoints answer: amendments, alarms, disputes,
audit entries, referral nodes and pages, from stored documents. Pure."""

from __future__ import annotations

from services.common.clock import iso as _to_iso
from services.common.principal import Principal


def user_ref(user_id, name=None):
    return {"id": user_id, "name": name} if user_id else None


def iso(value):
    return _to_iso(value) if value is not None else None


def page_out(items: list[dict], total: int, more: bool) -> dict:
    return {"items": items, "total": total, "next": items[-1]["id"] if more else None}


def scope_filter(actor: Principal) -> dict:
    """The amendments or alarms an actor lists: all, his team's, his own."""
    if actor.role == "admin":
        return {}
    if actor.role == "manager":
        return {"team_id": actor.team_id}
    return {"owner_id": actor.id}


def dispute_filter(actor: Principal) -> dict:
    """The disputes an actor lists: as for alarms, plus those he (or his
    team) filed as the claimant."""
    if actor.role == "admin":
        return {}
    if actor.role == "manager":
        return {"$or": [{"team_id": actor.team_id}, {"claimant_team_id": actor.team_id}]}
    return {"$or": [{"owner_id": actor.id}, {"claimant_id": actor.id}]}


def list_filter(base: dict, query) -> dict:
    """`base` narrowed by a ListQuery's status and customer_id."""
    filt = dict(base)
    if query.status:
        filt["status"] = query.status
    if query.customer_id:
        filt["customer_id"] = query.customer_id
    return filt


def amendment_out(d: dict) -> dict:
    return {"id": d["_id"], "customer_id": d["customer_id"],
            "company_name": d.get("company_name"), "status": d["status"],
            "changes": d.get("asked") or {}, "reason": d["reason"],
            "requested_by": d["requested_by"], "requested_at": iso(d["requested_at"]),
            "decided_by": d.get("decided_by"), "decided_at": iso(d.get("decided_at")),
            "note": d.get("note"), "rejected_because": d.get("rejected_because")}


def alarm_out(d: dict) -> dict:
    return {"id": d["_id"], "customer_id": d["customer_id"],
            "company_name": d.get("company_name"), "owner_id": d.get("owner_id"),
            "team_id": d.get("team_id"), "reason": d["reason"], "status": d["status"],
            "raised_at": iso(d["raised_at"]), "decision": d.get("decision"),
            "verified": d.get("verified"), "note": d.get("note"),
            "new_owner_id": d.get("new_owner_id"),
            "resolved_by": user_ref(d.get("resolved_by"), d.get("resolved_by_name")),
            "resolved_at": iso(d.get("resolved_at"))}


def dispute_out(d: dict) -> dict:
    return {"id": d["_id"], "customer_id": d["customer_id"],
            "company_name": d.get("company_name"),
            "claimant": user_ref(d["claimant_id"], d.get("claimant_name")),
            "claimant_team_id": d.get("claimant_team_id"), "owner_id": d.get("owner_id"),
            "team_id": d.get("team_id"), "contact": d["contact"], "note": d.get("note"),
            "status": d["status"], "filed_at": iso(d["filed_at"]),
            "winner_id": d.get("winner_id"),
            "resolved_by": user_ref(d.get("resolved_by"), d.get("resolved_by_name")),
            "resolved_at": iso(d.get("resolved_at")),
            "resolution_note": d.get("resolution_note")}


def audit_out(d: dict) -> dict:
    return {"seq": d["seq"], "at": iso(d["at"]), "actor": d.get("actor"),
            "action": d["action"], "before": d.get("before"), "after": d.get("after")}


def node(d: dict, visible: bool) -> dict:
    """A customer in a referral tree. One the caller may not open shows what a
    duplicate match shows (id, name, owner), not how far its deal has come."""
    owner = user_ref(d.get("owner_id"), d.get("owner_name"))
    return {"id": d["_id"], "company_name": d.get("company_name"), "owner": owner,
            "stage": d.get("stage") if visible else None, "status": d.get("status"),
            "visible": visible}


def stage_history(d: dict, changes: list[dict]) -> list[dict]:
    """A customer's stages from its creation, oldest first: `changes` are its
    stored stage changes, in order."""
    created_in = changes[0]["from"] if changes else d.get("stage")
    history = [{"at": iso(d.get("created_at")), "from": None, "to": created_in}]
    history += [{"at": iso(c["at"]), "from": c["from"], "to": c["to"]} for c in changes]
    return history


def deal_out(d: dict, changes: list[dict]) -> dict:
    """A customer as the forecast's deal, with its stage history."""
    history = stage_history(d, changes)
    return {"customer_id": d["_id"], "version": d.get("version"),
            "owner_id": d.get("owner_id"), "team_id": d.get("team_id"),
            "stage": d.get("stage"), "expected_value_fen": d.get("expected_value_fen"),
            "status": d.get("status"), "stage_history": history}
