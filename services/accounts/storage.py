"""The accounts database: users, teams, login throttle counters."""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.escalation import DEFAULT_ESCALATE_AFTER_MINUTES
from services.common.ids import new_id
from services.common.mongo import count
from services.common.reminders import DEFAULT_BIRTHDAY_LEAD_DAYS
from services.common.timezones import DEFAULT_TIMEZONE

PUBLIC_USER_FIELDS = ("username", "name", "role", "team_id", "phone", "timezone")


def ensure_indexes(db: Database) -> None:
    db.users.create_index([("username", ASCENDING)], unique=True, name="username_unique")
    db.users.create_index([("team_id", ASCENDING)], name="team")
    db.users.create_index([("role", ASCENDING)], name="role")
    db.user_audit.create_index([("user_id", ASCENDING), ("at", ASCENDING)], name="user_at")
    db.login_throttle.create_index([("username", ASCENDING)], name="username")
    db.login_throttle.create_index([("expires_at", ASCENDING)], name="expires")


def public_user(doc: dict) -> dict:
    return {"id": doc["_id"], **{k: doc.get(k) for k in PUBLIC_USER_FIELDS},
            "active": doc.get("active", True),
            "must_change_password": bool(doc.get("must_change_password"))}


def user_settings(doc: dict) -> dict:
    stored = doc.get("settings") or {}
    return {
        "escalate_after_minutes": stored.get("escalate_after_minutes",
                                             DEFAULT_ESCALATE_AFTER_MINUTES),
        "birthday_lead_days": stored.get("birthday_lead_days", DEFAULT_BIRTHDAY_LEAD_DAYS),
        "timezone": doc.get("timezone") or DEFAULT_TIMEZONE,
    }


def update_settings(db: Database, user_id: str, changes: dict) -> dict | None:
    update = {}
    for key, value in changes.items():
        update["timezone" if key == "timezone" else f"settings.{key}"] = value
    if not update:
        return db.users.find_one({"_id": user_id})
    return db.users.find_one_and_update(
        {"_id": user_id}, {"$set": update}, return_document=ReturnDocument.AFTER
    )


class UsernameTaken(Exception):
    pass


def insert_user(db: Database, fields: dict, password_hash: str, now: datetime) -> dict:
    doc = {
        "_id": new_id(),
        **fields,
        "password_hash": password_hash,
        "created_at": now,
        "failed_logins": 0,
        "locked_until": None,
    }
    try:
        db.users.insert_one(doc)
    except DuplicateKeyError:
        raise UsernameTaken(fields["username"]) from None
    return doc


def count_users(db: Database) -> int:
    return db.users.count_documents({}, limit=1)


def find_user_by_username(db: Database, username: str) -> dict | None:
    return db.users.find_one({"username": username})


def find_user(db: Database, user_id: str) -> dict | None:
    return db.users.find_one({"_id": user_id})


def find_users(db: Database, ids: list[str]) -> list[dict]:
    return list(db.users.find({"_id": {"$in": ids}}))


def list_users(db: Database, scope: dict, skip: int, limit: int) -> tuple[list[dict], int]:
    total = count(db.users, scope)
    docs = list(db.users.find(scope).sort("_id", ASCENDING).skip(skip).limit(limit))
    return docs, total


def all_users(db: Database, scope: dict, batch: int = 100) -> list[dict]:
    """Every user of a scope, a page of `batch` at a time by _id (each page
    one bounded index range)."""
    out: list[dict] = []
    while True:
        query = {**scope, "_id": {"$gt": out[-1]["_id"]}} if out else scope
        docs = list(db.users.find(query).sort("_id", ASCENDING).limit(batch))
        out.extend(docs)
        if len(docs) < batch:
            return out


def team_managers(db: Database, team_ids: list[str]) -> list[dict]:
    return list(db.users.find({"team_id": {"$in": team_ids}, "role": "manager"})
                .sort("_id", ASCENDING))


def record_success(db: Database, user_id: str, usual_addresses: list[dict],
                   new_hash: str | None = None) -> None:
    update: dict = {"usual_addresses": usual_addresses}
    if new_hash:
        update["password_hash"] = new_hash
    db.users.update_one({"_id": user_id}, {"$set": update})


# ------------------------------------------------------------ login throttle
# One document per counter (services/accounts/throttle.py): _id the counter's
# key, failures, locked_until, expires_at (when it is forgotten), and the
# username and address it counts for.


def throttle_counters(db: Database, keys: list[str]) -> list[dict]:
    return list(db.login_throttle.find({"_id": {"$in": keys}}))


def throttle_counter(db: Database, key: str) -> dict | None:
    return db.login_throttle.find_one({"_id": key})


def count_failure(db: Database, key: str, fields: dict, now: datetime,
                  forget_after: float) -> int:
    """Add a failure to the counter `key` and return its count, atomically:
    parallel attempts each get their own number. A counter past its
    expires_at starts again from 1."""
    expires = now + timedelta(seconds=forget_after)
    for _ in range(5):
        doc = db.login_throttle.find_one_and_update(
            {"_id": key, "expires_at": {"$gt": now}},
            {"$inc": {"failures": 1}, "$max": {"expires_at": expires}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            return doc["failures"]
        try:
            # none, or forgotten: start it again (a parallel attempt that got
            # here first makes this upsert a duplicate: count on it instead)
            doc = db.login_throttle.find_one_and_update(
                {"_id": key, "expires_at": {"$lte": now}},
                {"$set": {**fields, "failures": 1, "locked_until": None,
                          "expires_at": expires}},
                upsert=True, return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            continue
        return doc["failures"]
    raise RuntimeError(f"login throttle counter {key} keeps changing")


def take_lock(db: Database, key: str, now: datetime, until: datetime,
              forget_after: float) -> bool:
    """Lock the counter until `until` unless a lock is running: True for the
    one attempt that set it (and so may try its password), False for the
    others."""
    return db.login_throttle.find_one_and_update(
        {"_id": key, "$or": [{"locked_until": None}, {"locked_until": {"$lte": now}}]},
        {"$set": {"locked_until": until},
         "$max": {"expires_at": until + timedelta(seconds=forget_after)}},
    ) is not None


def reset_counter(db: Database, key: str) -> None:
    db.login_throttle.delete_one({"_id": key})


def uncount_failure(db: Database, key: str) -> None:
    """Take back the failure an attempt counted before its password proved right."""
    db.login_throttle.update_one({"_id": key, "failures": {"$gt": 0}}, {"$inc": {"failures": -1}})


def clear_username(db: Database, username: str) -> int:
    """Forget every counter of this username (its pairs and its own): an unlock."""
    return db.login_throttle.delete_many({"username": username}).deleted_count


def forget_counters(db: Database, now: datetime) -> int:
    return db.login_throttle.delete_many({"expires_at": {"$lte": now}}).deleted_count


def insert_team(db: Database, name: str, now: datetime) -> dict:
    doc = {"_id": new_id(), "name": name, "created_at": now}
    db.teams.insert_one(doc)
    return doc


def find_team(db: Database, team_id: str) -> dict | None:
    return db.teams.find_one({"_id": team_id})


def list_teams(db: Database) -> list[dict]:
    return list(db.teams.find().sort("_id", ASCENDING))


# ------------------------------------------------------------ staff lifecycle

def update_user(db: Database, user_id: str, changes: dict, revoke: bool) -> dict | None:
    update: dict = {"$set": changes} if changes else {}
    if revoke:
        update["$inc"] = {"generation": 1}
    if not update:
        return find_user(db, user_id)
    return db.users.find_one_and_update({"_id": user_id}, update,
                                        return_document=ReturnDocument.AFTER)


def set_password(db: Database, user_id: str, password_hash: str, must_change: bool) -> dict:
    """A new password revokes every token issued before it."""
    return db.users.find_one_and_update(
        {"_id": user_id},
        {"$set": {"password_hash": password_hash, "must_change_password": must_change},
         "$inc": {"generation": 1}},
        return_document=ReturnDocument.AFTER)


def count_active_admins(db: Database) -> int:
    return count(db.users, {"role": "admin", "active": {"$ne": False}})


def append_user_audit(db: Database, user_id: str, actor: dict, action: str,
                      before: dict | None, after: dict | None, now: datetime) -> None:
    db.user_audit.insert_one({"_id": new_id(), "user_id": user_id, "at": now, "action": action,
                              "actor": {"id": actor["id"], "name": actor.get("name", "")},
                              "before": before, "after": after})


def user_audit(db: Database, user_id: str, limit: int = 200) -> list[dict]:
    return list(db.user_audit.find({"user_id": user_id}).sort([("at", -1), ("_id", -1)])
                .limit(limit))
