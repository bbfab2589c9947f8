"""The log and webhook providers, on a base that checks input and times sends.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from services.notify.sms.attempts import (
    DEFAULT_TIMEOUT,
    Attempt,
    SmsConfigError,
    _short,
    _utcnow,
    log,
)
from services.notify.sms.phones import _require_text, e164_phone


class _Base:
    name = "base"

    def __init__(self, clock: Callable[[], datetime] | None = None):
        self._clock = clock

    def _now(self) -> datetime:
        return (self._clock if self._clock is not None else _utcnow)()

    def _attempt(
        self,
        started: float,
        at: datetime,
        ok: bool,
        status_code: int | None = None,
        error: str | None = None,
        ref: str | None = None,
    ) -> Attempt:
        duration_ms = round((time.perf_counter() - started) * 1000.0, 3)
        return Attempt(
            provider=self.name,
            ok=ok,
            status_code=status_code,
            error=None if ok else _short(error or "failed"),
            at=at,
            duration_ms=duration_ms,
            ref=ref,
        )


def _transport_error(exc: requests.RequestException) -> str:
    """A short description that never repeats the URL (it may hold a token
    or an AccessKeyId)."""
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection error"
    return f"request error ({type(exc).__name__})"


def _check_url(url: object, what: str) -> str:
    if not isinstance(url, str) or not url.strip():
        raise SmsConfigError(f"{what} is required")
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        raise SmsConfigError(f"{what} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SmsConfigError(f"{what} must be an http(s) URL")
    return url


def _check_timeout(timeout: object, what: str) -> float:
    try:
        value = float(timeout)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SmsConfigError(f"{what} must be a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise SmsConfigError(f"{what} must be a positive number of seconds")
    return value


class LogProvider(_Base):
    """Writes the message to a logger; always succeeds. For development."""

    name = "log"

    def __init__(
        self,
        logger: logging.Logger | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        super().__init__(clock)
        self._log = logger if logger is not None else log

    def send(self, to: str, text: str) -> Attempt:
        phone = e164_phone(to)
        body = _require_text(text)
        at, started = self._now(), time.perf_counter()
        self._log.info("SMS to %s: %s", phone, body)
        return self._attempt(started, at, ok=True)


class WebhookProvider(_Base):
    """POSTs ``{"to": "+86…", "text": "…"}`` (UTF-8 JSON, Chinese unescaped)
    to ``url``. A 2xx answer is a success; any other status (redirects are
    not followed), a timeout or a connection error is a failed attempt."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        session: Any = None,
        clock: Callable[[], datetime] | None = None,
    ):
        super().__init__(clock)
        self.url = _check_url(url, "webhook url (CRM_SMS_WEBHOOK_URL)")
        self.timeout = _check_timeout(timeout, "webhook timeout")
        self._http = session if session is not None else requests

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        return (
            f"WebhookProvider({parts.scheme}://{parts.netloc}{parts.path}, timeout={self.timeout})"
        )

    def send(self, to: str, text: str) -> Attempt:
        payload = {"to": e164_phone(to), "text": _require_text(text)}
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        at, started = self._now(), time.perf_counter()
        try:
            response = self._http.post(
                self.url,
                data=body,
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return self._attempt(started, at, ok=False, error=_transport_error(exc))
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return self._attempt(started, at, ok=True, status_code=status)
        return self._attempt(started, at, ok=False, status_code=status, error=f"HTTP {status}")
