"""Unit tests of the SMS providers and the retry policy.

The webhook and the Aliyun API are played by real HTTP servers on
127.0.0.1 (``http.server`` in a thread, port 0); nothing leaves the machine
and no test really waits for a backoff (``sleep`` is injected).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import socket
import socketserver
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from services.notify.sms import (
    AliyunSmsProvider,
    Attempt,
    LogProvider,
    SmsConfigError,
    WebhookProvider,
    aliyun_canonical_query,
    aliyun_percent_encode,
    aliyun_phone_number,
    aliyun_sign,
    aliyun_string_to_sign,
    attempt,
    e164_phone,
    provider_from_config,
    retry_delay,
)

MOBILE = "13800138000"
TEXT = "提醒：明天 09:30 拜访深圳市腾讯计算机系统有限公司（张经理）~ *重要* 100% & a+b=c 🎂"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # requests honours *_PROXY variables; a proxy must not see 127.0.0.1.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


# --------------------------------------------------------------------------
# a tiny local HTTP server

def deliver_with_retry(provider, to, text, max_attempts=3, base_delay=1.0, sleep=None,
                       clock=None):
    """What notify does across its retry ticks (one `attempt` a tick,
    `retry_delay` apart), in one loop: a test driver for the providers."""
    attempts = []
    for n in range(1, max_attempts + 1):
        if n > 1:
            sleep(retry_delay(n - 1, base_delay))
        attempts.append(attempt(provider, to, text, clock))
        if attempts[-1].ok:
            return "sent", attempts
    return "failed", attempts



class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        # Skip HTTPServer.server_bind's getfqdn() (a reverse DNS lookup that
        # can hang without network, notably with eventlet's green DNS).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = host, port


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - silence the server
        pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = {
            "method": self.command,
            "path": self.path,
            "headers": dict(self.headers.items()),
            "body": body,
        }
        status, payload = self.server.app(request)
        request["status"] = status
        with self.server.lock:
            self.server.received.append(request)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if 300 <= status < 400:
            self.send_header("Location", "/moved")
        self.end_headers()
        self.wfile.write(data)

    do_GET = _handle
    do_POST = _handle


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[dict], tuple[int, object]]], _Server]]:
    """Start a server answering with ``app(request) -> (status, json)``."""
    started: list[tuple[_Server, threading.Thread]] = []

    def start(app):
        server = _Server(("127.0.0.1", 0), _Handler)
        server.app = app
        server.received = []
        server.lock = threading.Lock()
        server.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.daemon = True
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def scripted(*statuses: int):
    """An app answering the given statuses in turn (the last one repeats)."""
    queue = list(statuses)
    lock = threading.Lock()

    def app(request):
        with lock:
            status = queue.pop(0) if len(queue) > 1 else queue[0]
        return status, {"ok": 200 <= status < 300}

    return app


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sleeps(list):
    """An injected sleep that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


FIXED = datetime(2025, 5, 1, 1, 2, 3, tzinfo=UTC)


# --------------------------------------------------------------------------
# webhook


def test_webhook_fails_twice_then_succeeds(serve):
    server = serve(scripted(500, 500, 200))
    sleeps = Sleeps()
    provider = WebhookProvider(server.url + "/sms", timeout=5)

    status, attempts = deliver_with_retry(provider, MOBILE, TEXT, sleep=sleeps)

    assert status == "sent"
    assert sleeps == [1.0, 2.0]
    assert [a.ok for a in attempts] == [False, False, True]
    assert [a.status_code for a in attempts] == [500, 500, 200]
    assert attempts[0].error == "HTTP 500" and attempts[2].error is None
    assert all(a.provider == "webhook" and a.duration_ms >= 0 for a in attempts)
    # The server saw three POSTs, exactly one of them a successful delivery.
    assert len(server.received) == 3
    delivered = [r for r in server.received if 200 <= r["status"] < 300]
    assert len(delivered) == 1
    request = delivered[0]
    assert request["method"] == "POST" and request["path"] == "/sms"
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert json.loads(request["body"].decode("utf-8")) == {"to": "+8613800138000", "text": TEXT}
    # Chinese is sent as raw UTF-8, not \\u escapes.
    assert "拜访".encode() in request["body"]


def test_webhook_always_failing_gives_failed_after_max_attempts(serve):
    server = serve(scripted(503))
    sleeps = Sleeps()
    status, attempts = deliver_with_retry(
        WebhookProvider(server.url), MOBILE, TEXT, max_attempts=4, base_delay=0.5, sleep=sleeps
    )
    assert status == "failed"
    assert len(attempts) == 4 and not any(a.ok for a in attempts)
    assert {a.status_code for a in attempts} == {503}
    assert sleeps == [0.5, 1.0, 2.0]  # no sleep after the last attempt
    assert len(server.received) == 4


def test_webhook_default_three_attempts(serve):
    server = serve(scripted(500))
    sleeps = Sleeps()
    status, attempts = deliver_with_retry(WebhookProvider(server.url), MOBILE, TEXT, sleep=sleeps)
    assert (status, len(attempts), sleeps, len(server.received)) == ("failed", 3, [1.0, 2.0], 3)


def test_webhook_connection_refused_is_a_failed_attempt():
    provider = WebhookProvider(f"http://127.0.0.1:{free_port()}/sms", timeout=2)
    attempt = provider.send(MOBILE, TEXT)
    assert attempt.ok is False
    assert attempt.status_code is None
    assert attempt.error == "connection error"

    sleeps = Sleeps()
    status, attempts = deliver_with_retry(provider, MOBILE, TEXT, max_attempts=2, sleep=sleeps)
    assert status == "failed" and len(attempts) == 2 and sleeps == [1.0]


def test_webhook_timeout_is_a_failed_attempt(serve):
    release = threading.Event()

    def slow(request):
        release.wait(5)
        return 200, {}

    server = serve(slow)
    try:
        attempt = WebhookProvider(server.url, timeout=0.2).send(MOBILE, TEXT)
    finally:
        release.set()
    assert attempt.ok is False and attempt.error == "timeout" and attempt.status_code is None


@pytest.mark.parametrize("code", [302, 400, 404, 500])
def test_webhook_non_2xx_is_failure_and_redirects_are_not_followed(serve, code):
    server = serve(scripted(code))
    attempt = WebhookProvider(server.url).send(MOBILE, TEXT)
    assert (attempt.ok, attempt.status_code, attempt.error) == (False, code, f"HTTP {code}")
    assert len(server.received) == 1


@pytest.mark.parametrize("code", [200, 201, 202, 204])
def test_webhook_any_2xx_is_success(serve, code):
    server = serve(lambda request: (code, b"" if code == 204 else {}))
    attempt = WebhookProvider(server.url).send(MOBILE, TEXT)
    assert attempt.ok and attempt.status_code == code


def test_webhook_error_never_contains_the_url():
    secret_url = f"http://127.0.0.1:{free_port()}/hook?access_token=s3cr3t"
    attempt = WebhookProvider(secret_url).send(MOBILE, TEXT)
    assert "s3cr3t" not in (attempt.error or "")
    assert "s3cr3t" not in repr(WebhookProvider(secret_url))


def test_webhook_attempt_uses_injected_clock(serve):
    server = serve(scripted(200))
    attempt = WebhookProvider(server.url, clock=lambda: FIXED).send(MOBILE, TEXT)
    assert attempt.at == FIXED
    assert attempt.to_dict() == {
        "provider": "webhook",
        "ok": True,
        "status_code": 200,
        "error": None,
        "at": FIXED,
        "duration_ms": attempt.duration_ms,
        "ref": None,
    }


def test_empty_number_or_text_raises_before_any_request(serve):
    server = serve(scripted(200))
    provider = WebhookProvider(server.url)
    for to, text in [("", TEXT), ("   ", TEXT), (MOBILE, ""), (MOBILE, "  "), ("abc", TEXT)]:
        with pytest.raises(ValueError):
            provider.send(to, text)
        with pytest.raises(ValueError):
            deliver_with_retry(provider, to, text, sleep=Sleeps())
    assert server.received == []


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        None,
        "ftp://example.com/x",
        "example.com/sms",
        "http://",
        "/relative",
        "http://[::1",
    ],
)
def test_webhook_bad_url_is_a_config_error(url):
    with pytest.raises(SmsConfigError):
        WebhookProvider(url)


@pytest.mark.parametrize("timeout", [0, -1, "soon", float("nan")])
def test_webhook_bad_timeout_is_a_config_error(timeout):
    with pytest.raises(SmsConfigError):
        WebhookProvider("http://127.0.0.1/x", timeout)


# --------------------------------------------------------------------------
# log provider


def test_log_provider_writes_to_the_logger(caplog):
    caplog.set_level(logging.INFO, logger="crm.notify.sms")
    attempt = LogProvider(clock=lambda: FIXED).send(MOBILE, TEXT)
    assert attempt.ok and attempt.provider == "log" and attempt.status_code is None
    assert attempt.at == FIXED and attempt.error is None
    assert f"SMS to +8613800138000: {TEXT}" in caplog.text


def test_log_provider_custom_logger(caplog):
    logger = logging.getLogger("test.sms.custom")
    caplog.set_level(logging.INFO, logger="test.sms.custom")
    status, attempts = deliver_with_retry(LogProvider(logger), MOBILE, "你好", sleep=Sleeps())
    assert status == "sent" and len(attempts) == 1
    assert [r.name for r in caplog.records] == ["test.sms.custom"]


# --------------------------------------------------------------------------
# Aliyun signing


# Aliyun's published example for the dysmsapi signature (AccessKeyId
# "testId", AccessKeySecret "testSecret").
ALIYUN_DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
ALIYUN_DOC_QUERY = (
    "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001"
    "&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B"
    "%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1"
    "&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0"
    "&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D"
    "&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25"
)


def test_aliyun_sign_matches_the_documented_example():
    assert aliyun_canonical_query(ALIYUN_DOC_PARAMS) == ALIYUN_DOC_QUERY
    assert aliyun_string_to_sign(ALIYUN_DOC_PARAMS).startswith(
        "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
    )
    assert aliyun_sign(ALIYUN_DOC_PARAMS, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert (
        aliyun_percent_encode("zJDF+Lrzhj/ThnlvIToysFRq6t4=")
        == "zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D"
    )


def test_aliyun_sign_ignores_a_signature_entry_and_depends_on_everything_else():
    base = aliyun_sign(ALIYUN_DOC_PARAMS, "testSecret")
    assert aliyun_sign({**ALIYUN_DOC_PARAMS, "Signature": "whatever"}, "testSecret") == base
    assert aliyun_sign(ALIYUN_DOC_PARAMS, "otherSecret") != base
    assert aliyun_sign({**ALIYUN_DOC_PARAMS, "OutId": "124"}, "testSecret") != base
    assert aliyun_sign(ALIYUN_DOC_PARAMS, "testSecret", method="POST") != base


def test_aliyun_percent_encoding_rules():
    assert aliyun_percent_encode("a b") == "a%20b"
    assert aliyun_percent_encode("*") == "%2A"
    assert aliyun_percent_encode("~") == "~"
    assert aliyun_percent_encode("+/=&:") == "%2B%2F%3D%26%3A"
    assert aliyun_percent_encode("AZaz09-_.") == "AZaz09-_."
    assert aliyun_percent_encode("短信") == "%E7%9F%AD%E4%BF%A1"
    assert aliyun_percent_encode("🎂") == "%F0%9F%8E%82"


# --------------------------------------------------------------------------
# Aliyun against a local server that checks the signature

AK_ID = "LTAI-test-id"
AK_SECRET = "test-secret-Zx9*~ +"


def aliyun_app(secret: str = AK_SECRET, access_key_id: str = AK_ID):
    """A stand-in for dysmsapi: recomputes the signature from the received
    query string and answers like Aliyun does."""

    def app(request):
        request_id = str(uuid.uuid4()).upper()
        query = urlsplit(request["path"]).query
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True, errors="strict")
        params = dict(pairs)
        request["params"] = params
        if request["method"] != "GET" or len(params) != len(pairs):
            return 400, {
                "Code": "InvalidParameter",
                "Message": "bad request",
                "RequestId": request_id,
            }
        if params.get("AccessKeyId") != access_key_id:
            return 404, {
                "Code": "InvalidAccessKeyId.NotFound",
                "Message": "Specified access key is not found.",
                "RequestId": request_id,
            }
        expected = aliyun_sign(params, secret, method="GET")
        if not hmac.compare_digest(expected, params.get("Signature", "")):
            return 400, {
                "RequestId": request_id,
                "HostId": "dysmsapi.aliyuncs.com",
                "Code": "SignatureDoesNotMatch",
                "Message": "Specified signature does not match our calculation.",
            }
        return 200, {
            "Code": "OK",
            "Message": "OK",
            "BizId": "900619746936498440^0",
            "RequestId": request_id,
        }

    return app


def aliyun(server, secret: str = AK_SECRET, **kwargs) -> AliyunSmsProvider:
    return AliyunSmsProvider(AK_ID, secret, "销售助手", "SMS_123456789", server.url + "/", **kwargs)


def test_aliyun_send_is_accepted_by_a_signature_checking_server(serve):
    server = serve(aliyun_app())
    attempt = aliyun(server, clock=lambda: FIXED).send("+86 138-0013-8000", TEXT)

    assert attempt.ok, attempt.error
    assert (attempt.provider, attempt.status_code, attempt.error) == ("aliyun", 200, None)
    assert attempt.ref == "900619746936498440^0"
    assert attempt.at == FIXED
    (request,) = server.received
    params = request["params"]
    assert request["path"].startswith("/?Signature=")
    assert {k: v for k, v in params.items() if k not in ("Signature", "SignatureNonce")} == {
        "AccessKeyId": AK_ID,
        "Action": "SendSms",
        "Format": "JSON",
        "PhoneNumbers": "13800138000",  # no +86 for mainland numbers
        "RegionId": "cn-hangzhou",
        "SignName": "销售助手",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_123456789",
        "TemplateParam": params["TemplateParam"],
        "Timestamp": "2025-05-01T01:02:03Z",
        "Version": "2017-05-25",
    }
    uuid.UUID(params["SignatureNonce"])
    # The Chinese text (and emoji, spaces, *, ~, +, &, %) arrives intact.
    assert json.loads(params["TemplateParam"]) == {"text": TEXT}
    # Aliyun encoding on the wire: no '+' for spaces, '*' as %2A.
    raw = urlsplit(request["path"]).query
    assert "+" not in raw and "*" not in raw and "%2A" in raw and "%20" in raw


def test_aliyun_timestamp_format_with_real_clock_and_unique_nonces(serve):
    server = serve(aliyun_app())
    provider = aliyun(server)
    assert provider.send(MOBILE, "一").ok and provider.send(MOBILE, "二").ok
    first, second = (r["params"] for r in server.received)
    for params in (first, second):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", params["Timestamp"])
    assert first["SignatureNonce"] != second["SignatureNonce"]


def test_aliyun_wrong_secret_is_rejected_as_a_failed_attempt(serve):
    server = serve(aliyun_app())
    attempt = aliyun(server, secret="not-the-secret").send(MOBILE, TEXT)
    assert attempt.ok is False
    assert attempt.status_code == 400
    assert attempt.error.startswith("SignatureDoesNotMatch")
    assert "not-the-secret" not in attempt.error


def test_aliyun_tampered_parameter_is_rejected(serve):
    server = serve(aliyun_app())

    class Tamper:
        """Changes the template code in transit, keeping the signature."""

        def get(self, url, **kwargs):
            assert "TemplateCode=SMS_123456789" in url
            return requests.get(
                url.replace("TemplateCode=SMS_123456789", "TemplateCode=SMS_666"), **kwargs
            )

    attempt = aliyun(server, session=Tamper()).send(MOBILE, TEXT)
    assert (attempt.ok, attempt.status_code) == (False, 400)
    assert attempt.error.startswith("SignatureDoesNotMatch")
    assert server.received[0]["params"]["TemplateCode"] == "SMS_666"


def test_aliyun_tampered_text_is_rejected(serve):
    server = serve(aliyun_app())

    class Tamper:
        def get(self, url, **kwargs):
            # Re-encode the whole TemplateParam with another text.
            other = aliyun_percent_encode(json.dumps({"text": "转账给我"}, ensure_ascii=False))
            url = re.sub(r"TemplateParam=[^&]*", "TemplateParam=" + other, url)
            return requests.get(url, **kwargs)

    attempt = aliyun(server, session=Tamper()).send(MOBILE, TEXT)
    assert attempt.ok is False and attempt.error.startswith("SignatureDoesNotMatch")
    assert json.loads(server.received[0]["params"]["TemplateParam"]) == {"text": "转账给我"}


def test_aliyun_vendor_error_codes_are_failed_attempts(serve):
    server = serve(
        lambda request: (
            200,
            {
                "Code": "isv.BUSINESS_LIMIT_CONTROL",
                "Message": "触发分钟级流控Permits:1",
                "RequestId": "x",
            },
        )
    )
    sleeps = Sleeps()
    status, attempts = deliver_with_retry(aliyun(server), MOBILE, TEXT, sleep=sleeps)
    assert status == "failed" and len(attempts) == 3 and sleeps == [1.0, 2.0]
    assert attempts[0].error == "isv.BUSINESS_LIMIT_CONTROL: 触发分钟级流控Permits:1"
    assert attempts[0].status_code == 200


def test_aliyun_non_json_answer_and_refused_connection_are_failed_attempts(serve):
    server = serve(lambda request: (502, b"<html>Bad Gateway</html>"))
    attempt = aliyun(server).send(MOBILE, TEXT)
    assert (
        attempt.ok is False and attempt.status_code == 502 and "not a JSON object" in attempt.error
    )

    refused = AliyunSmsProvider(
        AK_ID, AK_SECRET, "销售助手", "SMS_1", f"http://127.0.0.1:{free_port()}/"
    )
    attempt = refused.send(MOBILE, TEXT)
    assert (attempt.ok, attempt.status_code, attempt.error) == (False, None, "connection error")


def test_aliyun_retry_then_success(serve):
    calls = {"n": 0}
    ok = aliyun_app()

    def flaky(request):
        calls["n"] += 1
        if calls["n"] == 1:
            return 500, {"Code": "isp.SYSTEM_ERROR", "Message": "系统错误", "RequestId": "y"}
        return ok(request)

    server = serve(flaky)
    sleeps = Sleeps()
    status, attempts = deliver_with_retry(aliyun(server), MOBILE, TEXT, sleep=sleeps)
    assert status == "sent" and [a.ok for a in attempts] == [False, True] and sleeps == [1.0]
    assert attempts[0].error == "isp.SYSTEM_ERROR: 系统错误"


def test_aliyun_repr_hides_the_secret():
    provider = AliyunSmsProvider(AK_ID, "very-secret", "签名", "SMS_1")
    assert "very-secret" not in repr(provider)
    assert provider.endpoint == "https://dysmsapi.aliyuncs.com/"


@pytest.mark.parametrize(
    "args",
    [
        ("", AK_SECRET, "签名", "SMS_1"),
        (AK_ID, "", "签名", "SMS_1"),
        (AK_ID, AK_SECRET, " ", "SMS_1"),
        (AK_ID, AK_SECRET, "签名", None),
    ],
)
def test_aliyun_missing_settings_are_config_errors(args):
    with pytest.raises(SmsConfigError, match="needs"):
        AliyunSmsProvider(*args)


def test_aliyun_bad_endpoint_is_a_config_error():
    with pytest.raises(SmsConfigError):
        AliyunSmsProvider(AK_ID, AK_SECRET, "签名", "SMS_1", "dysmsapi.aliyuncs.com")
    with pytest.raises(SmsConfigError):
        AliyunSmsProvider(AK_ID, AK_SECRET, "签名", "SMS_1", "https://dysmsapi.aliyuncs.com/?x=1")


# --------------------------------------------------------------------------
# phone numbers


@pytest.mark.parametrize(
    ("raw", "e164", "aliyun_form"),
    [
        ("13800138000", "+8613800138000", "13800138000"),
        ("+8613800138000", "+8613800138000", "13800138000"),
        ("+86 138-0013-8000", "+8613800138000", "13800138000"),
        ("008613800138000", "+8613800138000", "13800138000"),
        ("8613800138000", "+8613800138000", "13800138000"),
        ("+85291234567", "+85291234567", "85291234567"),
        ("+1 (212) 555-0100", "+12125550100", "12125550100"),
    ],
)
def test_phone_forms(raw, e164, aliyun_form):
    assert e164_phone(raw) == e164
    assert aliyun_phone_number(raw) == aliyun_form


@pytest.mark.parametrize("raw", ["", "  ", "abc", "+86 138 0013 800O", "12", None])
def test_bad_phone_numbers(raw):
    with pytest.raises(ValueError):
        e164_phone(raw)


# --------------------------------------------------------------------------
# retry policy with a scripted fake provider


class FakeProvider:
    name = "fake"

    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.calls = 0

    def send(self, to, text):
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return Attempt("fake", outcome, None, None if outcome else "nope", FIXED, 0.0)


def test_retry_delays():
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert [retry_delay(n, 0.5, max_delay=1.5) for n in (1, 2, 3)] == [0.5, 1.0, 1.5]
    assert retry_delay(10_000, 1.0) > 1e18  # no overflow
    with pytest.raises(ValueError):
        retry_delay(0)






def test_a_provider_that_raises_is_recorded_not_propagated():
    provider = FakeProvider([RuntimeError("boom"), True])
    status, attempts = deliver_with_retry(
        provider, MOBILE, TEXT, sleep=Sleeps(), clock=lambda: FIXED
    )
    assert status == "sent"
    assert attempts[0].ok is False and attempts[0].error == "provider raised RuntimeError"
    assert attempts[0].at == FIXED and attempts[0].provider == "fake"


def test_config_errors_propagate_and_are_not_retried():
    provider = FakeProvider([SmsConfigError("no secret"), True])
    with pytest.raises(SmsConfigError):
        deliver_with_retry(provider, MOBILE, TEXT, sleep=Sleeps())
    assert provider.calls == 1






# --------------------------------------------------------------------------
# provider_from_config


@pytest.mark.parametrize(
    "cfg", [None, {}, {"provider": ""}, {"provider": "  "}, {"provider": "LOG"}]
)
def test_config_default_is_log(cfg):
    assert isinstance(provider_from_config(cfg), LogProvider)


def test_config_webhook():
    provider = provider_from_config(
        {
            "provider": "webhook",
            "webhook_url": "https://sms.example.com/send",
            "webhook_timeout": "2.5",
        }
    )
    assert isinstance(provider, WebhookProvider)
    assert (provider.url, provider.timeout) == ("https://sms.example.com/send", 2.5)
    alias = provider_from_config({"provider": "Webhook", "url": "http://127.0.0.1:9/x"})
    assert isinstance(alias, WebhookProvider) and alias.timeout == 5.0


@pytest.mark.parametrize("url", [None, "", "   "])
def test_config_webhook_without_url_is_an_error(url):
    cfg = {"provider": "webhook"} if url is None else {"provider": "webhook", "webhook_url": url}
    with pytest.raises(SmsConfigError, match="webhook_url"):
        provider_from_config(cfg)


def test_config_webhook_bad_url_is_an_error():
    with pytest.raises(SmsConfigError):
        provider_from_config({"provider": "webhook", "webhook_url": "not a url"})


ALIYUN_CFG = {
    "provider": "aliyun",
    "aliyun_access_key_id": AK_ID,
    "aliyun_access_key_secret": AK_SECRET,
    "aliyun_sign_name": "销售助手",
    "aliyun_template_code": "SMS_123456789",
}


def test_config_aliyun(serve):
    provider = provider_from_config(ALIYUN_CFG)
    assert isinstance(provider, AliyunSmsProvider)
    assert provider.endpoint == "https://dysmsapi.aliyuncs.com/"
    assert provider.region_id == "cn-hangzhou" and provider.template_param == "text"

    server = serve(aliyun_app())
    custom = provider_from_config(
        {**ALIYUN_CFG, "aliyun_endpoint": server.url + "/", "aliyun_template_param": "content"}
    )
    assert custom.send(MOBILE, TEXT).ok
    assert json.loads(server.received[0]["params"]["TemplateParam"]) == {"content": TEXT}


@pytest.mark.parametrize("missing", sorted(k for k in ALIYUN_CFG if k != "provider"))
def test_config_aliyun_secrets_have_no_defaults(missing):
    for value in (None, ""):
        cfg = {k: v for k, v in ALIYUN_CFG.items() if k != missing}
        if value is not None:
            cfg[missing] = value
        with pytest.raises(SmsConfigError, match=missing):
            provider_from_config(cfg)


def test_config_unknown_provider():
    with pytest.raises(SmsConfigError, match="log, webhook, aliyun"):
        provider_from_config({"provider": "twilio"})


def test_config_error_is_not_a_value_error():
    # It must never be mapped to a 422 by a broad ValueError handler.
    assert not issubclass(SmsConfigError, ValueError)


def test_config_accepts_the_config_yml_spelling():
    # As nameko.config holds it, from config.yml's SMS_* keys.
    assert isinstance(
        provider_from_config({"SMS_PROVIDER": "log", "SMS_WEBHOOK_URL": ""}), LogProvider
    )
    webhook = provider_from_config(
        {"SMS_PROVIDER": "webhook", "SMS_WEBHOOK_URL": "http://127.0.0.1:9/sms", "AMQP_URI": "x"}
    )
    assert isinstance(webhook, WebhookProvider) and webhook.url == "http://127.0.0.1:9/sms"
    with pytest.raises(SmsConfigError, match="SMS_WEBHOOK_URL"):
        provider_from_config({"SMS_PROVIDER": "webhook", "SMS_WEBHOOK_URL": ""})
    aliyun_cfg = {
        "SMS_PROVIDER": "aliyun",
        "SMS_ALIYUN_ACCESS_KEY_ID": AK_ID,
        "SMS_ALIYUN_ACCESS_KEY_SECRET": "",
        "SMS_ALIYUN_SIGN_NAME": "销售助手",
        "SMS_ALIYUN_TEMPLATE_CODE": "SMS_1",
    }
    with pytest.raises(SmsConfigError, match="SMS_ALIYUN_ACCESS_KEY_SECRET"):
        provider_from_config(aliyun_cfg)
    aliyun_cfg["SMS_ALIYUN_ACCESS_KEY_SECRET"] = AK_SECRET
    assert isinstance(provider_from_config(aliyun_cfg), AliyunSmsProvider)


def test_config_must_be_a_mapping():
    with pytest.raises(SmsConfigError):
        provider_from_config(["provider", "log"])
