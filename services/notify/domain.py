"""Notify decisions as plain functions (no I/O, "now" passed in).

Every notification has a `key` naming what it is about and for whom (a
reminder, an alarm and a manager, ...): a unique index on it makes every
event handler idempotent, so a redelivered event never shows twice.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.common.clock import iso
from services.common.escalation import DEFAULT_ESCALATE_AFTER_MINUTES, escalation_due
from services.common.timezones import DEFAULT_TIMEZONE
from services.notify.sms import Attempt, retry_delay

REASONS = {"claim": "认领公海客户", "dispute": "归属申诉裁决", "reassign": "经理重新分配"}
DECISIONS = {"continue": "继续跟进", "reassign": "转给他人", "abandon": "放弃到公海"}

# sms.status values
SCHEDULED, NOT_NEEDED = "scheduled", "not_needed"
SENDING, RETRYING, SENT, FAILED = "sending", "retrying", "sent", "failed"
SKIPPED, CANCELLED = "skipped", "cancelled"


def _doc(key, user_id, kind, title, body, ref, now) -> dict:
    return {
        "key": key,
        "user_id": user_id,
        "kind": kind,
        "title": title[:200],
        "body": body or "",
        "ref": {k: v for k, v in ref.items() if v is not None},
        "created_at": now,
        "read": False,
        "acknowledged": False,
        "acknowledged_at": None,
        "escalation": None,
    }


# --------------------------------------------------------------------------
# reminders


#: Reminder kinds that are always the customer's owner's.
OWNERS_KINDS = ("revisit", "birthday", "anniversary")


def reminder_key(reminder_id: str) -> str:
    return f"reminder:{reminder_id}"


def reminder_notification(p: dict, now: datetime) -> dict:
    body = p.get("content") or ""
    if p.get("contact_name") and p["kind"] == "revisit" and p["contact_name"] not in body:
        body = f"联系人：{p['contact_name']}" + (f"\n{body}" if body else "")
    doc = _doc(reminder_key(p["reminder_id"]), p["user_id"], p["kind"], p["title"], body, {
        "reminder_id": p["reminder_id"],
        "customer_id": p.get("customer_id"),
        "due_at": p.get("due_at"),
        "late": bool(p.get("late")),
    }, now)
    doc["owner_version"] = owner_version(p)
    doc["sms_subject"] = sms_subject(p)
    return doc


def owner_version(p: dict) -> int | None:
    """The customer's version at which the reminder's user owned the
    customer (the reminder is the owner's, not a personal one), or None.
    A revisit or birthday greeting fired before reminders carried it is its
    owner's all the same."""
    if not p.get("customer_id"):
        return None
    if p.get("owner_version") is not None:
        return int(p["owner_version"])
    return 0 if p.get("kind") in OWNERS_KINDS else None


# --------------------------------------------------------------------------
# customers changing hands


def owner_of_event(event_type: str, p: dict) -> tuple[str | None, int]:
    """(the customer's owner after the change, None for the public pool; its version)."""
    if event_type == "CustomerAbandoned":
        return None, int(p["version"])
    return p.get("new_owner_id"), int(p["version"])


def sms_withheld(notification: dict, owner: dict | None) -> str | None:
    """Why the SMS of an owner's reminder must not go out (None: it may):
    the customer it is about has changed hands since the reminder was its
    user's (`owner`: the customer's owner as last heard of, `{owner_id,
    version}`). A personal reminder, and one whose user owns the customer
    again, are left alone."""
    made_at = notification.get("owner_version")
    if made_at is None or owner is None or int(owner["version"]) <= made_at:
        return None
    if owner.get("owner_id") == notification["user_id"]:
        return None
    return CHANGED_HANDS


def escalation_minutes(p: dict, settings: dict | None) -> float:
    """The reminder's own value, else the user's setting (default 10)."""
    if p.get("escalate_after_minutes") is not None:
        return float(p["escalate_after_minutes"])
    return float((settings or {}).get("escalate_after_minutes", DEFAULT_ESCALATE_AFTER_MINUTES))


def escalation_plan(p: dict, settings: dict | None) -> dict | None:
    """When the SMS goes out if nobody acknowledges: `fired_at` + N minutes
    (not `due_at` + N: a reminder that fired late still gets its N minutes
    in the inbox first). None for 0 = never."""
    minutes = escalation_minutes(p, settings)
    due = escalation_due(datetime.fromisoformat(p["fired_at"]), minutes)
    if due is None:
        return None
    return {"minutes": minutes, "due_at": due}


#: The longest subject an SMS carries: with the frame around it the text
#: stays within one 70-character Chinese SMS.
SMS_SUBJECT_CHARS = 36
# Phone numbers in free text: mobiles (13812345678, 138 1234 5678,
# +86 138-1234-5678), landlines with their area code (0755-83216666) and any
# other run of 7+ digits (a landline without it); dates (2026-03-02) and
# times are left alone.
_NUMBER = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)"
                     r"|(?<!\d)0\d{2,3}[\s-]?\d{7,8}(?!\d)"
                     r"|(?<!\d)\d{7,}(?!\d)")
_EMAIL = re.compile(r"([\w.+-])[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")


def mask_number(digits: str) -> str:
    """138****5678, as lists show phones; shorter numbers keep their last 2."""
    if len(digits) >= 11:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * (len(digits) - 2) + digits[-2:]


def mask_contact_details(text: str) -> str:
    """Phone numbers and e-mail addresses in free text, masked."""
    def number(m):
        digits = re.sub(r"\D", "", m.group(0))
        if len(digits) > 11 and digits.startswith("861"):
            digits = digits[2:]  # a mobile with its country code
        return mask_number(digits)

    return _EMAIL.sub(r"\1***@\2", _NUMBER.sub(number, text))


def sms_subject(p: dict) -> str:
    """What an SMS says the reminder is about: its title (a revisit's names
    the company), without the contact person's name, every phone number and
    e-mail address masked, cut to one SMS. An SMS leaves the system for a
    phone that may be lost or leave with its holder: it carries what tells
    the rep which reminder waits, the rest is behind the login."""
    title = p.get("title") or ""
    contact = (p.get("contact_name") or "").strip()
    if contact:
        title = title.replace(f"（{contact}）", "").replace(f"({contact})", "")
        title = title.replace(contact, "")
    title = mask_contact_details(" ".join(title.split()))
    if len(title) > SMS_SUBJECT_CHARS:
        title = title[:SMS_SUBJECT_CHARS - 1] + "…"
    return title


def sms_text(notification: dict, tz: str | None) -> str:
    zone = ZoneInfo(tz or DEFAULT_TIMEZONE)
    due = (notification.get("ref") or {}).get("due_at")
    when = ""
    if due:
        when = datetime.fromisoformat(due).astimezone(zone).strftime("%m-%d %H:%M") + " "
    subject = notification.get("sms_subject")
    if subject is None:  # shown before subjects were kept
        subject = sms_subject({"title": notification["title"]})
    return f"【销售CRM】{when}提醒未确认：{subject}。请登录系统确认。"


# --------------------------------------------------------------------------
# SMS deliveries


def new_delivery(notification: dict, to: str | None, text: str, now: datetime) -> dict:
    return {
        "_id": notification["_id"],
        "user_id": notification["user_id"],
        "to": to,
        "text": text,
        "status": SENDING if to else SKIPPED,
        "error": None if to else "the user has no phone number",
        "attempts": [],
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": now if to else None,
    }


def after_attempt(delivery: dict, attempt: Attempt, max_attempts: int, base_delay: float,
                  now: datetime) -> dict:
    """The delivery after one more attempt: sent, failed after the last one,
    or retrying at the next backoff time."""
    attempts = [*delivery["attempts"], {**attempt.to_dict(), "n": len(delivery["attempts"]) + 1}]
    out = {**delivery, "attempts": attempts, "updated_at": now}
    if attempt.ok:
        return {**out, "status": SENT, "error": None, "next_attempt_at": None}
    if len(attempts) >= max_attempts:
        return {**out, "status": FAILED, "error": attempt.error, "next_attempt_at": None}
    # backoff counts from the attempt, not from when its result was stored
    delay = retry_delay(len(attempts), base_delay)
    return {**out, "status": RETRYING, "error": attempt.error,
            "next_attempt_at": attempt.at + timedelta(seconds=delay)}


ACKNOWLEDGED_IN_TIME = "acknowledged before the SMS went out"
CHANGED_HANDS = "the customer changed hands: no SMS to its former owner"


def stopped(delivery: dict, now: datetime, why: str = ACKNOWLEDGED_IN_TIME) -> dict:
    return {**delivery, "status": CANCELLED, "next_attempt_at": None, "updated_at": now,
            "error": why}


# --------------------------------------------------------------------------
# customers' and knowledge's events


def alarm_raised(p: dict, manager_ids, now) -> list[dict]:
    return [_doc(f"alarm_raised:{p['alarm_id']}:{m}", m, "alarm_raised",
                 f"困难报警：{p.get('company_name') or ''}", p.get("reason") or "",
                 {"alarm_id": p["alarm_id"], "customer_id": p.get("customer_id"),
                  "rep_id": p.get("owner_id")}, now)
            for m in manager_ids]


def alarm_resolved(p: dict, now) -> list[dict]:
    decision = DECISIONS.get(p.get("decision"), p.get("decision") or "")
    body = f"处理结果：{decision}" + (f"\n{p['note']}" if p.get("note") else "")
    if not p.get("owner_id"):
        return []
    return [_doc(f"alarm_resolved:{p['alarm_id']}:{p['owner_id']}", p["owner_id"],
                 "alarm_resolved", f"报警已处理：{p.get('company_name') or ''}", body,
                 {"alarm_id": p["alarm_id"], "customer_id": p.get("customer_id"),
                  "decision": p.get("decision")}, now)]


def dispute_filed(p: dict, manager_ids, now) -> list[dict]:
    contact = p.get("contact") or {}
    body = (f"申诉人联系人：{contact.get('name', '')} {contact.get('title', '')}"
            f"（决策权 {contact.get('decision_level', '?')}）")
    if p.get("note"):
        body += f"\n{p['note']}"
    return [_doc(f"dispute_filed:{p['dispute_id']}:{m}", m, "dispute_filed",
                 f"归属申诉：{p.get('company_name') or ''}", body,
                 {"dispute_id": p["dispute_id"], "customer_id": p.get("customer_id"),
                  "claimant_id": p.get("claimant_id"), "owner_id": p.get("owner_id")}, now)
            for m in manager_ids]


def amendment_requested(p: dict, manager_ids, now) -> list[dict]:
    return [_doc(f"amendment_requested:{p['amendment_id']}:{m}", m, "amendment_requested",
                 f"修改申请：{p.get('company_name') or ''}", p.get("reason") or "",
                 {"amendment_id": p["amendment_id"], "customer_id": p.get("customer_id"),
                  "rep_id": p.get("owner_id")}, now)
            for m in manager_ids]


def read_limit(p: dict, manager_ids, now) -> list[dict]:
    """A rep (or a manager) hit the hourly limit of customers opened: his
    team's managers hear of it once for that hour (the key), whatever number
    of refusals or redeliveries follow."""
    who = p.get("user_name") or p["user_id"]
    body = (f"{who} 在一小时内打开了 {p.get('opened')} 个不同客户（上限 {p.get('limit')}），"
            f"之后的查看已被拒绝，直到本小时结束。")
    if p.get("address"):
        body += f"\n来源地址：{p['address']}"
    return [_doc(f"read_limit:{p['user_id']}:{p['hour']}:{m}", m, "read_limit",
                 f"批量查看客户：{who}", body,
                 {"user_id": p["user_id"], "hour": p.get("hour"),
                  "customer_id": p.get("refused_customer_id")}, now)
            for m in manager_ids if m != p["user_id"]]


def answer_posted(p: dict, now) -> list[dict]:
    if not p.get("asker_id") or p.get("asker_id") == p.get("author_id"):
        return []
    return [_doc(f"answer_posted:{p['answer_id']}:{p['asker_id']}", p["asker_id"],
                 "answer_posted", f"你的问题有了新解答：{p.get('title') or ''}", "",
                 {"question_id": p.get("question_id"), "answer_id": p["answer_id"],
                  "author_id": p.get("author_id")}, now)]


def answer_accepted(p: dict, now) -> list[dict]:
    if not p.get("author_id") or p.get("author_id") == p.get("accepted_by"):
        return []
    return [_doc(f"answer_accepted:{p['answer_id']}:{p['author_id']}", p["author_id"],
                 "answer_accepted", "你的解答被采纳了", "",
                 {"question_id": p.get("question_id"), "answer_id": p["answer_id"]}, now)]


def owner_changed(p: dict, now) -> list[dict]:
    reason = REASONS.get(p.get("reason"), p.get("reason") or "")
    company = p.get("company_name") or ""
    ref = {"customer_id": p["customer_id"], "reason": p.get("reason"),
           "old_owner_id": p.get("old_owner_id"), "new_owner_id": p.get("new_owner_id")}
    version = p.get("version", "")
    docs = []
    old, new = p.get("old_owner_id"), p.get("new_owner_id")
    if old and old != new:
        docs.append(_doc(f"owner_changed:{p['customer_id']}:{version}:{old}", old,
                         "owner_changed", f"客户已转出：{company}", f"原因：{reason}", ref, now))
    if new and old != new:
        docs.append(_doc(f"owner_changed:{p['customer_id']}:{version}:{new}", new,
                         "owner_changed", f"客户已转入：{company}", f"原因：{reason}", ref, now))
    return docs


# --------------------------------------------------------------------------
# the API's view


def sms_view(notification: dict, delivery: dict | None) -> dict | None:
    esc = notification.get("escalation")
    if delivery is not None:
        return {
            "status": delivery["status"],
            "due_at": iso(esc["due_at"]) if esc else None,
            "to": delivery.get("to"),
            "error": delivery.get("error"),
            "attempts": [{"at": iso(a["at"]), "ok": a["ok"], "provider": a["provider"],
                          "status_code": a.get("status_code"), "error": a.get("error")}
                         for a in delivery.get("attempts", [])],
        }
    if not esc:
        return None
    status = NOT_NEEDED if notification.get("acknowledged") else SCHEDULED
    return {"status": status, "due_at": iso(esc["due_at"]), "to": None, "error": None,
            "attempts": []}


def view(doc: dict, delivery: dict | None = None) -> dict:
    return {
        "id": doc["_id"],
        "kind": doc["kind"],
        "title": doc["title"],
        "body": doc.get("body") or "",
        "created_at": iso(doc["created_at"]),
        "read": bool(doc.get("read")),
        "acknowledged": bool(doc.get("acknowledged")),
        "acknowledged_at": iso(doc["acknowledged_at"]) if doc.get("acknowledged_at") else None,
        "ref": doc.get("ref") or {},
        "sms": sms_view(doc, delivery),
    }
