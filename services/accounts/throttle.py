"""Login throttling, as plain functions: which counters an attempt meets, which
lock refuses it, and for how long.

Three counters of wrong passwords, each keyed by strings the client sends (the
normalized username and the client's address), never by whether the user
exists, so an unknown username is throttled exactly like a known one and the
answers cannot tell them apart:

- `pair` (username, address): after `free` failures each further one locks
  this username from this address, twice as long as the last (1 s, 2 s,
  4 s ... the maximum). A success resets it.
- `address`, across every username: spraying one password over many
  usernames from one address meets the same exponential lock, whatever the
  username, after a larger number of failures.
- `username`, across every address: a distributed guesser meets it after a
  still larger number, but only at addresses that are not the owner's usual
  ones, so he cannot lock the owner out.

From an address the user recently logged in from successfully (his usual
addresses, kept on his user record) only the pair counter applies, and only
it counts: the owner meets his own short delay, never the attacker's lock.

A counter is forgotten `forget_after` seconds after its last failure (or after
its last lock ran out, if later); attempts refused by a lock do not count.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

PAIR, ADDRESS, USERNAME = "pair", "address", "username"
SCOPES = (PAIR, ADDRESS, USERNAME)
UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True)
class Limit:
    free: int  # failures before the first lock
    forget_after: float  # seconds without a failure that wipe the count


@dataclass(frozen=True)
class Policy:
    pair: Limit = Limit(5, 24 * 3600)
    address: Limit = Limit(20, 15 * 60)
    username: Limit = Limit(50, 15 * 60)
    max_lock_seconds: int = 15 * 60
    usual_keep: int = 5  # the most recent successful addresses kept per user
    usual_days: float = 30  # an address stays usual this long after a success

    def limit(self, scope: str) -> Limit:
        return getattr(self, scope)

    @classmethod
    def from_settings(cls, get) -> Policy:
        """From config: `get(key, default)` (services.common.config.setting)."""
        d = cls()
        return cls(
            pair=Limit(int(get("LOGIN_FREE_FAILURES", d.pair.free)),
                       float(get("LOGIN_PAIR_FORGET_SECONDS", d.pair.forget_after))),
            address=Limit(int(get("LOGIN_ADDRESS_FREE_FAILURES", d.address.free)),
                          float(get("LOGIN_WINDOW_SECONDS", d.address.forget_after))),
            username=Limit(int(get("LOGIN_USERNAME_FREE_FAILURES", d.username.free)),
                           float(get("LOGIN_WINDOW_SECONDS", d.username.forget_after))),
            max_lock_seconds=int(get("LOGIN_MAX_LOCK_SECONDS", d.max_lock_seconds)),
            usual_keep=int(get("LOGIN_USUAL_ADDRESSES", d.usual_keep)),
            usual_days=float(get("LOGIN_USUAL_DAYS", d.usual_days)),
        )


def normalize_username(username: str) -> str:
    """The throttle's key for a typed username: width, case and surrounding
    spaces do not make a new counter."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def counter_key(scope: str, username: str, address: str) -> str:
    """The _id of a scope's counter (unambiguous whatever the strings hold)."""
    if scope == PAIR:
        return json.dumps([PAIR, username, address], ensure_ascii=False)
    if scope == ADDRESS:
        return json.dumps([ADDRESS, address], ensure_ascii=False)
    return json.dumps([USERNAME, username], ensure_ascii=False)


def counter_fields(scope: str, username: str, address: str) -> dict:
    """What a counter records besides its count: the username (so an unlock
    finds every counter of it) and the address."""
    return {
        "scope": scope,
        "username": None if scope == ADDRESS else username,
        "address": None if scope == USERNAME else address,
    }


def scopes_for(usual: bool) -> tuple[str, ...]:
    """The counters an attempt meets (and counts on)."""
    return (PAIR,) if usual else SCOPES


def lock_seconds(failures: int, free: int, max_lock: int) -> int:
    """After `free` failures each further one locks for twice as long as the
    last (1 s, 2 s, 4 s ... `max_lock`)."""
    over = failures - free
    if over <= 0:
        return 0
    if over > max_lock.bit_length() + 1:
        return max_lock
    return min(2 ** (over - 1), max_lock)


def locked_for(locked_until: datetime | None, now: datetime) -> float:
    if locked_until is None or locked_until <= now:
        return 0.0
    return (locked_until - now).total_seconds()


def next_lock(failures: int, free: int, max_lock: int, now: datetime) -> datetime | None:
    seconds = lock_seconds(failures, free, max_lock)
    return now + timedelta(seconds=seconds) if seconds else None


def refusal(counters: list[dict | None], now: datetime) -> float:
    """Seconds until every lock on these counters has run out (0: none runs)."""
    return max((locked_for((c or {}).get("locked_until"), now) for c in counters), default=0.0)


def retry_after(wait: float) -> int:
    """Whole seconds a client is told to wait: never 0 while a lock runs."""
    return max(math.ceil(wait), 1)


def is_usual(usual_addresses: list[dict] | None, address: str, now: datetime,
             policy: Policy) -> bool:
    """Whether the user logged in successfully from `address` recently. An
    unknown address is nobody's usual one."""
    if address == UNKNOWN_ADDRESS:
        return False
    since = now - timedelta(days=policy.usual_days)
    return any(u.get("address") == address and u.get("at") and u["at"] >= since
               for u in usual_addresses or [])


def remember(usual_addresses: list[dict] | None, address: str, now: datetime,
             policy: Policy) -> list[dict]:
    """The usual addresses after a success from `address`: it first, then the
    others still recent, at most `usual_keep`."""
    if address == UNKNOWN_ADDRESS:
        return list(usual_addresses or [])
    since = now - timedelta(days=policy.usual_days)
    others = [u for u in usual_addresses or []
              if u.get("address") != address and u.get("at") and u["at"] >= since]
    others.sort(key=lambda u: u["at"], reverse=True)
    return [{"address": address, "at": now}, *others][:max(policy.usual_keep, 1)]
