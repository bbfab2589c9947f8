"""SMS providers of the notify service and their retry policy.

The provider is chosen by ``CRM_SMS_PROVIDER`` through
:func:`provider_from_config`, which takes the already-loaded configuration
as a dict (this module never reads the environment):

==========  ===============================================================
provider    configuration keys
==========  ===============================================================
``log``     none (the default): the message goes to the ``crm.notify.sms``
            logger
``webhook`` ``webhook_url`` (required; ``url`` is accepted as an alias),
            ``webhook_timeout`` (seconds, default 5)
``aliyun``  ``aliyun_access_key_id``, ``aliyun_access_key_secret``,
            ``aliyun_sign_name``, ``aliyun_template_code`` (all required, no
            defaults), ``aliyun_endpoint`` (default
            ``https://dysmsapi.aliyuncs.com/``), ``aliyun_template_param``
            (the template variable that receives the text, default
            ``text``), ``aliyun_region_id`` (default ``cn-hangzhou``),
            ``aliyun_timeout`` (seconds, default 5)
==========  ===============================================================

Each key may also be given in its config.yml spelling, ``SMS_`` + upper
case (``SMS_PROVIDER``, ``SMS_WEBHOOK_URL``, ``SMS_ALIYUN_ACCESS_KEY_ID``,
...), so the service can pass ``nameko.config`` unchanged.

Every ``send(to, text)`` returns an :class:`Attempt` and never raises for a
delivery failure (HTTP error, timeout, refused connection, vendor error
code); it raises only for programming or configuration errors
(:class:`SmsConfigError`, ``ValueError`` for an empty number or text).
:func:`deliver_with_retry` retries with exponential backoff through an
injected ``sleep``; :func:`retry_delay` gives the same delays to a caller
that persists retries instead of sleeping.

Eventlet: ``time.sleep`` and the clock are looked up at call time, not bound
as default arguments at import, so monkey patching applied after this module
is imported still takes effect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import requests

__all__ = [
    "ALIYUN_DEFAULT_ENDPOINT",
    "DEFAULT_BASE_DELAY",
    "DEFAULT_MAX_ATTEMPTS",
    "PROVIDERS",
    "AliyunSmsProvider",
    "Attempt",
    "LogProvider",
    "SmsConfigError",
    "SmsProvider",
    "WebhookProvider",
    "aliyun_canonical_query",
    "aliyun_percent_encode",
    "aliyun_phone_number",
    "aliyun_sign",
    "aliyun_string_to_sign",
    "deliver_with_retry",
    "e164_phone",
    "provider_from_config",
    "proportional_jitter",
    "retry_delay",
]

log = logging.getLogger("crm.notify.sms")

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BASE_DELAY = 1.0
DEFAULT_TIMEOUT = 5.0
ALIYUN_DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
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


# --------------------------------------------------------------------------
# phone numbers

_PHONE_JUNK = re.compile(r"[\s\-().]")


def _clean_phone(to: object) -> str:
    if not isinstance(to, str) or not to.strip():
        raise ValueError("an SMS needs a non-empty phone number")
    phone = _PHONE_JUNK.sub("", to.strip())
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if not re.fullmatch(r"\+?[0-9]{5,16}", phone):
        raise ValueError(f"not a phone number: {to!r}")
    return phone


def e164_phone(to: str) -> str:
    """``+86…`` form: bare 11-digit mainland mobiles (1xxxxxxxxxx) get +86;
    ``0086…`` becomes ``+86…``; spaces, dashes and brackets are dropped."""
    phone = _clean_phone(to)
    if phone.startswith("+"):
        return phone
    if re.fullmatch(r"1[0-9]{10}", phone):
        return "+86" + phone
    if re.fullmatch(r"861[0-9]{10}", phone):
        return "+" + phone
    return phone


def aliyun_phone_number(to: str) -> str:
    """Aliyun's ``PhoneNumbers`` form: mainland numbers without the country
    code (``13800138000``); others as country code + number without ``+``
    or ``00`` (``85200000000``)."""
    phone = e164_phone(to)
    if phone.startswith("+86"):
        return phone[3:]
    return phone.lstrip("+")


def _require_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("an SMS needs a non-empty text")
    return text


# --------------------------------------------------------------------------
# providers


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


# --------------------------------------------------------------------------
# Aliyun (dysmsapi SendSms, RPC style, signature version 1.0)


def aliyun_percent_encode(value: str) -> str:
    """Aliyun's percent-encoding: UTF-8, RFC 3986 (only ``A-Za-z0-9-_.~``
    stay as they are), so a space is ``%20``, ``*`` is ``%2A``, ``~`` is
    kept and ``+`` is ``%2B``."""
    return quote(str(value), safe="~", encoding="utf-8")


def aliyun_canonical_query(params: Mapping[str, str]) -> str:
    """The canonicalized query string: every parameter but ``Signature``,
    sorted by name, name and value percent-encoded, joined with ``&``."""
    items = sorted((k, v) for k, v in params.items() if k != "Signature")
    return "&".join(f"{aliyun_percent_encode(k)}={aliyun_percent_encode(v)}" for k, v in items)


def aliyun_string_to_sign(params: Mapping[str, str], method: str = "GET") -> str:
    """``METHOD&%2F&percentEncode(canonicalized query)``."""
    return (
        f"{method.upper()}&{aliyun_percent_encode('/')}&"
        f"{aliyun_percent_encode(aliyun_canonical_query(params))}"
    )


def aliyun_sign(params: Mapping[str, str], secret: str, method: str = "GET") -> str:
    """Base64 HMAC-SHA1 of :func:`aliyun_string_to_sign` with key
    ``secret + "&"``. A ``Signature`` entry in ``params`` is ignored, so the
    receiving side can pass the parameters it got unchanged. The result is
    not yet percent-encoded (``zJDF+Lrzhj/ThnlvIToysFRq6t4=``)."""
    digest = hmac.new(
        (secret + "&").encode("utf-8"),
        aliyun_string_to_sign(params, method).encode("utf-8"),
        hashlib.sha1,
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def _aliyun_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("the clock must return timezone-aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AliyunSmsProvider(_Base):
    """Alibaba Cloud SMS (dysmsapi, API version 2017-05-25), action SendSms.

    The text goes into the template variable ``template_param`` (default
    ``text``) of the approved template ``template_code``. Success is HTTP
    2xx with ``{"Code": "OK"}``; any other code (``SignatureDoesNotMatch``,
    ``isv.BUSINESS_LIMIT_CONTROL``, ...) is a failed attempt whose error is
    ``"<Code>: <Message>"``.
    """

    name = "aliyun"
    API_VERSION = "2017-05-25"

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        template_code: str,
        endpoint: str = ALIYUN_DEFAULT_ENDPOINT,
        *,
        template_param: str = "text",
        region_id: str = "cn-hangzhou",
        timeout: float = DEFAULT_TIMEOUT,
        session: Any = None,
        clock: Callable[[], datetime] | None = None,
        nonce: Callable[[], str] | None = None,
    ):
        super().__init__(clock)
        missing = [
            label
            for label, value in (
                ("access_key_id", access_key_id),
                ("access_key_secret", access_key_secret),
                ("sign_name", sign_name),
                ("template_code", template_code),
                ("template_param", template_param),
                ("region_id", region_id),
            )
            if not isinstance(value, str) or not value.strip()
        ]
        if missing:
            raise SmsConfigError("aliyun SMS provider needs " + ", ".join(missing))
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.sign_name = sign_name
        self.template_code = template_code
        self.template_param = template_param
        self.region_id = region_id
        endpoint = _check_url(endpoint, "aliyun endpoint")
        if urlsplit(endpoint).query:
            raise SmsConfigError("aliyun endpoint must not contain a query string")
        self.endpoint = endpoint
        self.timeout = _check_timeout(timeout, "aliyun timeout")
        self._http = session if session is not None else requests
        self._nonce = nonce if nonce is not None else (lambda: str(uuid.uuid4()))

    def __repr__(self) -> str:
        return (
            f"AliyunSmsProvider(endpoint={self.endpoint!r}, "
            f"access_key_id={self.access_key_id!r}, sign_name={self.sign_name!r}, "
            f"template_code={self.template_code!r})"
        )

    def build_params(self, to: str, text: str, at: datetime) -> dict[str, str]:
        """The signed request parameters (``Signature`` included)."""
        params = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "PhoneNumbers": aliyun_phone_number(to),
            "RegionId": self.region_id,
            "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "TemplateCode": self.template_code,
            "TemplateParam": json.dumps(
                {self.template_param: _require_text(text)},
                ensure_ascii=False,
                separators=(",", ":"),
            ),
            "Timestamp": _aliyun_timestamp(at),
            "Version": self.API_VERSION,
        }
        params["Signature"] = aliyun_sign(params, self._secret)
        return params

    def build_url(self, params: Mapping[str, str]) -> str:
        signature = aliyun_percent_encode(params["Signature"])
        query = f"Signature={signature}&{aliyun_canonical_query(params)}"
        return f"{self.endpoint}?{query}"

    def send(self, to: str, text: str) -> Attempt:
        at = self._now()
        url = self.build_url(self.build_params(to, text, at))
        started = time.perf_counter()
        try:
            response = self._http.get(url, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            return self._attempt(started, at, ok=False, error=_transport_error(exc))
        status = response.status_code
        try:
            data = response.json()
        except ValueError:
            data = None
        finally:
            response.close()
        if not isinstance(data, dict):
            return self._attempt(
                started,
                at,
                ok=False,
                status_code=status,
                error=f"HTTP {status}: response is not a JSON object",
            )
        code = str(data.get("Code", ""))
        if 200 <= status < 300 and code == "OK":
            biz_id = data.get("BizId")
            return self._attempt(
                started,
                at,
                ok=True,
                status_code=status,
                ref=str(biz_id) if biz_id else None,
            )
        error = code or f"HTTP {status}"
        if data.get("Message"):
            error = f"{error}: {data['Message']}"
        return self._attempt(started, at, ok=False, status_code=status, error=error)


# --------------------------------------------------------------------------
# retry policy


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


def proportional_jitter(
    fraction: float = 0.1, rng: Callable[[], float] | None = None
) -> Callable[[float], float]:
    """A jitter for :func:`deliver_with_retry`: ``delay × (1 ± fraction)``,
    uniformly, from ``rng()`` in [0, 1) (``random.random`` by default)."""
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be between 0 and 1")

    def jitter(delay: float) -> float:
        u = (rng if rng is not None else random.random)()
        return max(0.0, delay * (1 + fraction * (2 * u - 1)))

    return jitter


def deliver_with_retry(
    provider: SmsProvider,
    to: str,
    text: str,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    base_delay: float = DEFAULT_BASE_DELAY,
    sleep: Callable[[float], Any] | None = None,
    clock: Callable[[], datetime] | None = None,
    *,
    jitter: Callable[[float], float] | None = None,
    max_delay: float | None = None,
) -> tuple[str, list[Attempt]]:
    """Send ``text`` to ``to``, retrying failed attempts with exponential
    backoff; returns ``("sent" | "failed", attempts)``.

    Between attempt *n* and *n+1* it calls ``sleep(retry_delay(n, base_delay,
    max_delay))``, passed through ``jitter`` when given. ``sleep`` defaults
    to ``time.sleep`` (green under eventlet), resolved at call time.
    ``clock`` stamps the attempt recorded when a provider breaks its
    contract and raises an unexpected exception (that attempt counts as
    failed); :class:`SmsConfigError` and ``ValueError`` (bad number or
    text) propagate, since retrying cannot fix them.
    """
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError("max_attempts must be a whole number >= 1")
    base = float(base_delay)
    if not math.isfinite(base) or base < 0:
        raise ValueError("base_delay must be a finite number >= 0")
    # `is None`, not `or`: a callable object may well be falsy.
    do_sleep = sleep if sleep is not None else time.sleep
    now = clock if clock is not None else _utcnow
    attempts: list[Attempt] = []
    for number in range(1, max_attempts + 1):
        if number > 1:
            delay = retry_delay(number - 1, base, max_delay)
            if jitter is not None:
                delay = max(0.0, float(jitter(delay)))
            do_sleep(delay)
        at, started = now(), time.perf_counter()
        try:
            attempt = provider.send(to, text)
        except (SmsConfigError, ValueError):
            raise
        except Exception as exc:  # a provider must not raise; record it
            log.exception("SMS provider %s raised", getattr(provider, "name", provider))
            attempt = Attempt(
                provider=str(getattr(provider, "name", type(provider).__name__)),
                ok=False,
                status_code=None,
                error=f"provider raised {type(exc).__name__}",
                at=at,
                duration_ms=round((time.perf_counter() - started) * 1000.0, 3),
            )
        attempts.append(attempt)
        if attempt.ok:
            return SENT, attempts
    return FAILED, attempts


# --------------------------------------------------------------------------
# configuration


PROVIDERS = ("log", "webhook", "aliyun")


def _cfg_key(key: str) -> str:
    """The config.yml spelling of a key: ``webhook_url`` -> ``SMS_WEBHOOK_URL``."""
    return "SMS_" + key.upper()


def _cfg_str(cfg: Mapping[str, Any], *keys: str) -> str | None:
    """First non-blank value among ``keys``, each looked up as given and in
    its config.yml spelling (``${ENV:}`` gives "" for an unset variable,
    which counts as missing)."""
    for key in keys:
        for spelling in (key, _cfg_key(key)):
            value = cfg.get(spelling)
            if value is None:
                continue
            value = str(value).strip()
            if value:
                return value
    return None


def provider_from_config(
    cfg: Mapping[str, Any] | None,
    *,
    session: Any = None,
    clock: Callable[[], datetime] | None = None,
    logger: logging.Logger | None = None,
) -> SmsProvider:
    """Build the provider named by ``provider`` (``CRM_SMS_PROVIDER``; ``log``
    when absent or blank). Raises :class:`SmsConfigError` for an unknown
    name or a missing/invalid setting.

    Keys are read as written in the module docstring (``webhook_url``) or in
    their config.yml spelling (``SMS_PROVIDER``, ``SMS_WEBHOOK_URL``,
    ``SMS_ALIYUN_ACCESS_KEY_ID``, ...), so ``nameko.config`` can be passed
    as it is.
    """
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, Mapping):
        raise SmsConfigError("SMS configuration must be a mapping")
    name = (_cfg_str(cfg, "provider") or "log").lower()
    if name == "log":
        return LogProvider(logger=logger, clock=clock)
    if name == "webhook":
        url = _cfg_str(cfg, "webhook_url", "url")
        if url is None:
            raise SmsConfigError(
                "CRM_SMS_PROVIDER=webhook needs webhook_url "
                "(SMS_WEBHOOK_URL in config.yml, from CRM_SMS_WEBHOOK_URL)"
            )
        timeout = _cfg_str(cfg, "webhook_timeout", "timeout") or DEFAULT_TIMEOUT
        return WebhookProvider(url, timeout, session=session, clock=clock)
    if name == "aliyun":
        required = (
            "aliyun_access_key_id",
            "aliyun_access_key_secret",
            "aliyun_sign_name",
            "aliyun_template_code",
        )
        values = {key: _cfg_str(cfg, key) for key in required}
        missing = [key for key, value in values.items() if value is None]
        if missing:
            raise SmsConfigError(
                "CRM_SMS_PROVIDER=aliyun needs "
                + ", ".join(f"{key} ({_cfg_key(key)})" for key in missing)
            )
        return AliyunSmsProvider(
            values["aliyun_access_key_id"],  # type: ignore[arg-type]
            values["aliyun_access_key_secret"],  # type: ignore[arg-type]
            values["aliyun_sign_name"],  # type: ignore[arg-type]
            values["aliyun_template_code"],  # type: ignore[arg-type]
            _cfg_str(cfg, "aliyun_endpoint") or ALIYUN_DEFAULT_ENDPOINT,
            template_param=_cfg_str(cfg, "aliyun_template_param") or "text",
            region_id=_cfg_str(cfg, "aliyun_region_id") or "cn-hangzhou",
            timeout=_cfg_str(cfg, "aliyun_timeout", "timeout") or DEFAULT_TIMEOUT,
            session=session,
            clock=clock,
        )
    raise SmsConfigError(f"unknown CRM_SMS_PROVIDER {name!r}; one of {', '.join(PROVIDERS)}")
