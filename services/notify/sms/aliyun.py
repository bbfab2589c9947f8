"""Aliyun's dysmsapi SendSms (RPC style, signature version 1.0).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from services.notify.sms.attempts import DEFAULT_TIMEOUT, Attempt, SmsConfigError
from services.notify.sms.phones import _require_text, aliyun_phone_number
from services.notify.sms.providers import _Base, _check_timeout, _check_url, _transport_error

ALIYUN_DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"


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
