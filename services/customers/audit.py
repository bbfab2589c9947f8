"""The audit trail's hash chain, as pure functions.

Each entry carries `hash = sha256(prev_hash + canonical JSON of its content)`.
Editing, removing or reordering any stored entry breaks the chain from that
point on, which `verify_chain` reports. Times are cut to milliseconds before
hashing because that is what MongoDB stores.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

GENESIS = "0" * 64
HASHED_FIELDS = ("customer_id", "seq", "at", "actor", "action", "before", "after")


def to_millis(dt: datetime) -> datetime:
    dt = dt.astimezone(UTC)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def _canonical(value) -> str:
    def default(v):
        if isinstance(v, datetime):
            return to_millis(v).isoformat(timespec="milliseconds")
        return str(v)

    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=default)


def entry_hash(prev_hash: str, entry: dict) -> str:
    content = {k: entry.get(k) for k in HASHED_FIELDS}
    return hashlib.sha256((prev_hash + _canonical(content)).encode("utf-8")).hexdigest()


def build_entry(last: dict | None, customer_id: str, actor: dict | None, action: str,
                before, after, at: datetime) -> dict:
    """The next entry after `last` (None for the first)."""
    entry = {
        "customer_id": customer_id,
        "seq": (last["seq"] + 1) if last else 1,
        "at": to_millis(at),
        "actor": {k: (actor or {}).get(k) for k in ("id", "name", "role")} if actor else None,
        "action": action,
        "before": before,
        "after": after,
        "prev_hash": last["hash"] if last else GENESIS,
    }
    entry["hash"] = entry_hash(entry["prev_hash"], entry)
    return entry


def verify_chain(entries: list[dict]) -> bool:
    """True when the entries (in seq order) form an unbroken chain from the start."""
    prev = GENESIS
    for expected_seq, entry in enumerate(entries, start=1):
        if entry.get("seq") != expected_seq or entry.get("prev_hash") != prev:
            return False
        if entry_hash(prev, entry) != entry.get("hash"):
            return False
        prev = entry["hash"]
    return True


def reaches_head(entries: list[dict], head: dict | None) -> bool:
    """True when the entries (in seq order) still hold the chain's recorded
    head: removing the last entries leaves an unbroken, shorter chain that
    verify_chain accepts, but not the head. A chain of an earlier build has
    no head (None). The head may lag one entry behind (a writer stopped
    between its two writes): it is checked where it points."""
    if head is None:
        return True
    at = next((e for e in entries if e.get("seq") == head.get("seq")), None)
    return at is not None and at.get("hash") == head.get("hash")
