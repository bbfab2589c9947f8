"""An SMS attempt, the provider protocol, one try, and the retry delays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger("crm.notify.sms")


DEFAULT_MAX_ATTEMPTS = 3


DEFAULT_BASE_DELAY = 1.0


DEFAULT_TIMEOUT = 5.0


SENT = "sent"


FAILED = "failed"


_MAX_ERROR_CHARS = 300


class SmsConfigError(Exception):
    """The SMS provider is misconfigured (missing secret, bad URL, ...).

    Deliberately not a ValueError: it is an operator problem, never a 422.
    """


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


@dataclass(frozen=True)
class Attempt:
    """One try to deliver one SMS. The notify service stores every attempt.

    ``status_code`` is the HTTP status (None when no response: log provider,
    timeout, refused connection); ``error`` is a short text without secrets
    or URLs (None on success); ``ref`` is the vendor's message id when it
    gives one (Aliyun ``BizId``).
    """

    provider: str
    ok: bool
    status_code: int | None
    error: str | None
    at: datetime
    duration_ms: float
    ref: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (``at`` stays a datetime, as pymongo wants it)."""
        return asdict(self)


class SmsProvider(Protocol):
    name: str

    def send(self, to: str, text: str) -> Attempt: ...


def retry_delay(
    attempts_done: int, base_delay: float = DEFAULT_BASE_DELAY, max_delay: float | None = None
) -> float:
    """Delay before the next try after ``attempts_done`` failed ones:
    base, 2×base, 4×base, … (capped at ``max_delay`` when given)."""
    if isinstance(attempts_done, bool) or not isinstance(attempts_done, int) or attempts_done < 1:
        raise ValueError("attempts_done must be a whole number >= 1")
    # Cap the exponent so huge attempt counts cannot overflow a float.
    delay = float(base_delay) * (2.0 ** min(attempts_done - 1, 62))
    if max_delay is not None:
        delay = min(delay, float(max_delay))
    return delay


def attempt(provider: SmsProvider, to: str, text: str,
            clock: Callable[[], datetime] | None = None) -> Attempt:
    """One try at sending: the provider's Attempt, or a failed one when the
    provider breaks its contract and raises (stamped by `clock`). Config and
    input errors propagate: retrying cannot fix them. Notify persists the
    retries itself (retry_delay), one attempt per tick."""
    now = clock if clock is not None else _utcnow
    at, started = now(), time.perf_counter()
    try:
        return provider.send(to, text)
    except (SmsConfigError, ValueError):
        raise
    except Exception as exc:  # a provider must not raise; record it
        log.exception("SMS provider %s raised", getattr(provider, "name", provider))
        return Attempt(
            provider=str(getattr(provider, "name", type(provider).__name__)),
            ok=False,
            status_code=None,
            error=f"provider raised {type(exc).__name__}",
            at=at,
            duration_ms=round((time.perf_counter() - started) * 1000.0, 3),
        )
