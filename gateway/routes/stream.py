"""The inbox's live stream (Server-Sent Events), GET /api/notifications/stream.

The live stream polls notify (`stream_poll`, one `_id` look-up while nothing
is new) every NOTIFY_STREAM_POLL_SECONDS (0.5 s) rather than listening for a
broadcast event in the gateway: the gateway keeps no state, a reconnect or a
second gateway instance needs nothing special, and a notification is never
missed because a gateway was restarting when it was created.

Each event carries the notification's id, so a reconnecting EventSource
sends `Last-Event-ID`: the stream then starts with what was created after
that notification (at most REPLAY_LIMIT back) and the rep misses nothing
while his connection was down.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta

import eventlet
import jwt
from werkzeug.wrappers import Response

from gateway.auth import bearer_token
from gateway.http import Call, route, sign_in_request
from gateway.sessions import SESSIONS
from services.common import config
from services.common.clock import iso, now
from services.common.errors import Unauthenticated

log = logging.getLogger(__name__)

MAX_STREAM_SECONDS = 3600
# A notification created up to this long before the newest one seen still
# reaches the stream (two notify instances may commit out of order).
STREAM_WINDOW = timedelta(seconds=10)
# How far back a reconnect replays; older ones are in the inbox.
REPLAY_LIMIT = timedelta(days=1)
MAX_EVENT_ID = 64


class StreamRoutes:
    @route("GET", "/api/notifications/stream", public=True, tag="schedule",
           summary="Live inbox (text/event-stream): `event: notification` with the "
                   "notification as data and its id as the event id, a comment every ~15 s. "
                   "Needs a token: the Authorization header, or ?access_token= (EventSource "
                   "sets no headers). A reconnect with Last-Event-ID (or ?last_event_id=) "
                   "first replays what was created after that notification (up to a day)")
    def notification_stream(self, call: Call):
        token = _stream_token(call.request)
        user = sign_in_request(self, call.request, token)
        actor = {**user.as_dict(), "address": call.address}
        since, seen = _resume_point(self.notify, actor, call.request)
        # eventlet's server gathers 4 KB before writing a chunk: an event
        # must leave at once.
        call.request.environ["eventlet.minimum_write_chunk_size"] = 0
        notify = self.notify
        response = Response(
            _events(notify, actor, _stream_deadline(token), since, seen,
                    still_signed_in=lambda: SESSIONS.check(self.sessions_rpc, user)),
            status=200, content_type="text/event-stream; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            direct_passthrough=True,
        )
        return response


def _stream_token(request) -> str:
    """Bearer header as everywhere, or `?access_token=` for EventSource."""
    if request.headers.get("Authorization"):
        return bearer_token(request)
    token = (request.args.get("access_token") or "").strip()
    if not token:
        raise Unauthenticated("unauthenticated",
                              "sign in first: send the Authorization header or ?access_token=")
    return token


def _stream_deadline(token: str) -> float:
    """The stream ends when the (already verified) token expires, so a
    revoked session does not listen forever; EventSource then reconnects
    with a fresh token from the page."""
    exp = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
    left = min(float(exp) - now().timestamp(), MAX_STREAM_SECONDS)
    return time.monotonic() + max(left, 0)


def _resume_point(notify, actor: dict, request) -> tuple[datetime, dict[str, datetime]]:
    """(since, seen) for a stream: now, or just after the notification a
    reconnecting client names (his own, at most REPLAY_LIMIT ago)."""
    start = now()
    last = (request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
            or "").strip()
    if not last or len(last) > MAX_EVENT_ID:
        return start, {}
    try:
        created = notify.stream_resume(actor, last)
    except Exception:  # noqa: BLE001 - notify away for a moment: go live without replay
        log.warning("live stream: notify did not answer the resume; no replay", exc_info=True)
        return start, {}
    if created is None:
        return start, {}
    at = datetime.fromisoformat(created)
    return max(at, start - REPLAY_LIMIT), {last: at}


def _events(notify, actor: dict, deadline: float, since: datetime | None = None,
            seen: dict[str, datetime] | None = None, still_signed_in=lambda: None):
    poll = float(config.get("NOTIFY_STREAM_POLL_SECONDS", 0.5))
    heartbeat = float(config.get("NOTIFY_STREAM_HEARTBEAT_SECONDS", 15))
    since = since or now()
    seen = dict(seen or {})
    last_seq = None
    last_write = time.monotonic()
    yield b"retry: 2000\n: connected\n\n"
    check_every = float(config.setting("SESSION_CHECK_SECONDS", 5)) / 2
    checked = time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() - checked >= check_every:
            checked = time.monotonic()
            try:
                still_signed_in()
            except Unauthenticated as exc:
                # Disabled or revoked: the stream ends, and says why.
                data = json.dumps({"error": exc.code}, separators=(",", ":"))
                yield f"event: revoked\ndata: {data}\n\n".encode()
                return
            except Exception:  # noqa: BLE001 - accounts away for a moment: keep the stream
                log.warning("live stream: session check failed; trying again", exc_info=True)
        try:
            got = notify.stream_poll(actor, last_seq, iso(since))
        except Exception:  # noqa: BLE001 - notify away for a moment: keep the stream
            log.warning("live stream: notify did not answer; trying again", exc_info=True)
            got = None
        if got is not None:
            last_seq = got["seq"]
            for item in got["items"]:
                if item["id"] in seen:
                    continue
                seen[item["id"]] = datetime.fromisoformat(item["created_at"])
                data = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
                yield f"id: {item['id']}\nevent: notification\ndata: {data}\n\n".encode()
                last_write = time.monotonic()
            if seen:
                since = max(since, max(seen.values()) - STREAM_WINDOW)
                seen = {k: v for k, v in seen.items() if v >= since}
        if time.monotonic() - last_write >= heartbeat:
            yield b": keepalive\n\n"
            last_write = time.monotonic()
        eventlet.sleep(poll)
    yield b"event: expired\ndata: {}\n\n"
