"""Schedule and notifications over HTTP, on a real stack of its own: SMS goes
to a local webhook server, the scheduler ticks fast, escalation after
0.05 minutes (3 s)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.e2e.stack import Api, Stack
from tests.e2e.test_platform import assert_error
from tests.waiting import wait_for

SECRET = "e2e-schedule-" + uuid.uuid4().hex + uuid.uuid4().hex
ADMIN_PASSWORD = "管理员-sched-" + uuid.uuid4().hex[:12]


class SmsGateway(ThreadingHTTPServer):
    """Records every SMS; numbers in `script` get those statuses in turn."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"
        self.received: list[tuple[float, int, dict]] = []
        self.script: dict[str, list[int]] = defaultdict(list)
        self.lock = threading.Lock()

    def to(self, phone: str) -> list[dict]:
        with self.lock:
            return [body for _, status, body in self.received
                    if body["to"] == phone and status == 200]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        server = self.server
        with server.lock:
            script = server.script.get(body["to"]) or []
            status = script.pop(0) if script else 200
            server.received.append((time.time(), status, body))
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def sms():
    server = SmsGateway()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def sched_stack(sms):
    s = Stack(SECRET, ADMIN_PASSWORD, CRM_SMS_PROVIDER="webhook", CRM_SMS_WEBHOOK_URL=sms.url,
              CRM_SCHEDULER_TICK_SECONDS="0.2", CRM_SMS_RETRY_TICK_SECONDS="0.2",
              CRM_SMS_BASE_DELAY_SECONDS="0.5", CRM_NOTIFY_USER_CACHE_SECONDS="0").start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def sapi(sched_stack):
    return Api(sched_stack.url)


class People:
    def __init__(self, api):
        self.api = api
        self.admin = api.login("admin", ADMIN_PASSWORD)
        self.team = api.post("/api/teams", self.admin, json={"name": "华东销售部"}).json()["id"]

    def make(self, role, name, phone=None, team=None):
        username = f"{role}_{uuid.uuid4().hex[:8]}"
        body = {"username": username, "password": "pw-" + uuid.uuid4().hex[:16], "name": name,
                "role": role, "team_id": team or self.team}
        if phone:
            body["phone"] = phone
        r = self.api.post("/api/users", self.admin, json=body)
        assert r.status_code == 201, r.text
        return {"id": r.json()["id"], "token": self.api.login(username, body["password"])}


@pytest.fixture(scope="module")
def people(sapi, sched_stack):
    print("stack log:", sched_stack.log_path)
    return People(sapi)


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def inbox(api, user, **params):
    r = api.get("/api/notifications", user["token"], params={"page_size": 100, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def of_reminder(api, user, reminder_id):
    return [n for n in inbox(api, user) if n["ref"].get("reminder_id") == reminder_id]


class Stream:
    """An EventSource-like reader of /api/notifications/stream in a thread."""

    def __init__(self, api, token, header=False, last_event_id=None):
        self.events: list[tuple[float, dict]] = []
        self.ids: list[str] = []
        self.comments = 0
        kwargs = {"headers": {"Authorization": f"Bearer {token}"}} if header else {
            "params": {"access_token": token}}
        if last_event_id is not None:  # what EventSource sends when it reconnects
            kwargs.setdefault("headers", {})["Last-Event-ID"] = last_event_id
        self.response = requests.get(api.base + "/api/notifications/stream", stream=True,
                                     timeout=30, **kwargs)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        event, data = None, None
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith(":"):
                    self.comments += 1
                elif line.startswith("id:"):
                    self.ids.append(line[3:].strip())
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif line == "" and event == "notification":
                    self.events.append((time.time(), json.loads(data)))
                    event, data = None, None
        except Exception:  # noqa: BLE001 - closed by the test
            pass

    def close(self):
        # the reader thread may be inside a read; the stack's stop ends it
        with contextlib.suppress(Exception):
            self.response.close()


def test_unacknowledged_reminder_sends_one_sms_acknowledged_none_and_streams_live(
        sapi, people, sms):
    phone = "+8613800138111"
    rep = people.make("rep", "张伟", phone="13800138111")
    stream = Stream(sapi, rep["token"])
    assert stream.response.status_code == 200
    assert stream.response.headers["Content-Type"].startswith("text/event-stream")
    try:
        r1 = sapi.post("/api/reminders", rep["token"], json={
            "title": "拜访深圳市腾讯计算机系统有限公司", "content": "带上报价单",
            "due_at": soon(1), "escalate_after_minutes": 0.05})
        assert r1.status_code == 201, r1.text
        r2 = sapi.post("/api/reminders", rep["token"], json={
            "title": "给小米科技回电话", "due_at": soon(1), "escalate_after_minutes": 0.05})
        assert r2.status_code == 201, r2.text
        first = wait_for(lambda: of_reminder(sapi, rep, r1.json()["id"]), what="reminder 1")[0]
        second = wait_for(lambda: of_reminder(sapi, rep, r2.json()["id"]), what="reminder 2")[0]
        ack = sapi.post(f"/api/notifications/{second['id']}/ack", rep["token"])
        assert ack.status_code == 200 and ack.json()["acknowledged"] is True
        fired = datetime.fromisoformat(first["created_at"]).timestamp()
        assert first["sms"]["status"] in ("scheduled", "sending", "sent")
        texts = wait_for(lambda: sms.to(phone), what="the SMS")
        sent_at = next(t for t, s, b in sms.received if b["to"] == phone and s == 200)
        assert 2.5 <= sent_at - fired <= 7, sent_at - fired  # 0.05 min = 3 s, plus a tick
        time.sleep(5)
        texts = sms.to(phone)
        assert len(texts) == 1, texts  # exactly one, and none for the acknowledged one
        assert "拜访深圳市腾讯计算机系统有限公司" in texts[0]["text"]
        item = of_reminder(sapi, rep, r1.json()["id"])[0]
        assert item["sms"]["status"] == "sent" and len(item["sms"]["attempts"]) == 1
        assert of_reminder(sapi, rep, r2.json()["id"])[0]["sms"]["status"] == "not_needed"
        assert sapi.get(f"/api/reminders/{r2.json()['id']}", rep["token"]).json()[
            "status"] in ("fired", "acknowledged")
        wait_for(lambda: sapi.get(f"/api/reminders/{r2.json()['id']}", rep["token"]).json()[
            "status"] == "acknowledged", what="reminder 2 acknowledged")
        # the live stream had both, each within a second of its creation
        wait_for(lambda: len(stream.events) >= 2, what="two stream events")
        for at, data in stream.events[:2]:
            created = datetime.fromisoformat(data["created_at"]).timestamp()
            assert at - created < 1.0, at - created
        assert {d["id"] for _, d in stream.events} >= {first["id"], second["id"]}
    finally:
        stream.close()


def test_a_reconnecting_stream_replays_what_was_missed_and_nothing_else(sapi, people):
    rep = people.make("rep", "陈晓", phone="13800138333")
    other = people.make("rep", "周强")

    def remind(user, title):
        r = sapi.post("/api/reminders", user["token"], json={
            "title": title, "due_at": soon(0.5), "escalate_after_minutes": 0})
        assert r.status_code == 201, r.text
        return wait_for(lambda: of_reminder(sapi, user, r.json()["id"]), what=title)[0]

    stream = Stream(sapi, rep["token"])
    try:
        seen = remind(rep, "回访深圳市大疆创新科技有限公司")
        wait_for(lambda: stream.events, what="the first event")
        assert stream.ids == [seen["id"]]
    finally:
        stream.close()
    # the connection is down while two more arrive, after one for someone else
    foreign = remind(other, "周强的提醒")
    missed = [remind(rep, "给华为技术有限公司发报价"), remind(rep, "约比亚迪采购部见面")]
    back = Stream(sapi, rep["token"], header=True, last_event_id=seen["id"])
    try:
        wait_for(lambda: len(back.events) >= 2, what="the replay")
        time.sleep(1.5)  # a few polls more: nothing else comes
        assert [d["id"] for _, d in back.events] == [n["id"] for n in missed]
        assert back.events[0][1]["title"] == "给华为技术有限公司发报价"
    finally:
        back.close()
    # someone else's id (older than the two missed), or a made-up one, replays
    # nothing: the stream is live only
    for bogus in (foreign["id"], "no-such-notification", "x" * 500):
        live = Stream(sapi, rep["token"], last_event_id=bogus)
        try:
            assert live.response.status_code == 200
            time.sleep(1.5)
            assert live.events == []
        finally:
            live.close()


def test_webhook_failing_twice_then_succeeding_gives_one_sms_and_three_attempts(
        sapi, people, sms):
    phone = "+8613800138222"
    sms.script[phone] = [500, 502]
    rep = people.make("rep", "李娜", phone="13800138222")
    r = sapi.post("/api/reminders", rep["token"], json={
        "title": "签约美的集团", "due_at": soon(0.5), "escalate_after_minutes": 0.05})
    assert r.status_code == 201, r.text
    item = wait_for(lambda: [n for n in of_reminder(sapi, rep, r.json()["id"])
                             if n["sms"] and n["sms"]["status"] == "sent"], timeout=30,
                    what="sent after retries")[0]
    assert [a["status_code"] for a in item["sms"]["attempts"]] == [500, 502, 200]
    assert len(sms.to(phone)) == 1


def test_reminders_are_personal_and_validated(sapi, people):
    rep = people.make("rep", "王芳")
    other = people.make("rep", "赵磊")
    r = sapi.post("/api/reminders", rep["token"], json={
        "title": "季度复盘会", "due_at": soon(3600), "customer_id": None})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.json()["status"] == "pending" and r.json()["escalate_after_minutes"] is None
    assert_error(sapi.get("/api/reminders"), 401)
    assert_error(sapi.get("/api/notifications"), 401)
    assert_error(sapi.get("/api/notifications/stream"), 401)
    assert_error(sapi.get("/api/notifications/stream", params={"access_token": "forged"}), 401)
    assert_error(sapi.get(f"/api/reminders/{rid}", other["token"]), 404)
    assert_error(sapi.patch(f"/api/reminders/{rid}", other["token"], json={"title": "x"}), 404)
    assert_error(sapi.delete(f"/api/reminders/{rid}", other["token"]), 404)
    assert sapi.get("/api/reminders", other["token"]).json()["total"] == 0
    body = assert_error(sapi.post("/api/reminders", rep["token"], json={
        "title": "开会", "due_at": "2026-05-01 09:00"}), 422)
    assert "due_at" in body["fields"]
    body = assert_error(sapi.post("/api/reminders", rep["token"], json={
        "title": "开会", "due_at": soon(60), "escalate_after_minutes": "十"}), 422)
    assert "escalate_after_minutes" in body["fields"]
    assert_error(sapi.post("/api/reminders", rep["token"], data="{not json"), 400)
    # list by time window, unencoded "+" in the offset included
    frm = (datetime.now(UTC) + timedelta(minutes=30)).astimezone().isoformat()
    listed = sapi.get(f"/api/reminders?from={frm}", rep["token"])
    assert listed.status_code == 200, listed.text
    assert [x["id"] for x in listed.json()["items"]] == [rid]
    changed = sapi.patch(f"/api/reminders/{rid}", rep["token"], json={"title": "季度复盘会（改到下午）"})
    assert changed.status_code == 200 and changed.json()["title"] == "季度复盘会（改到下午）"
    gone = sapi.delete(f"/api/reminders/{rid}", rep["token"])
    assert gone.status_code == 200 and gone.json()["status"] == "cancelled"
    assert_error(sapi.patch(f"/api/reminders/{rid}", rep["token"], json={"title": "再改"}),
                 409, "not_pending")
    assert_error(sapi.post("/api/notifications/nosuch/ack", rep["token"]), 404)


def test_revisits_are_planned_by_the_owner_only(sapi, people):
    manager = people.make("manager", "孙经理")
    rep = people.make("rep", "陈晨")
    other = people.make("rep", "刘洋")
    c = sapi.post("/api/customers", rep["token"], json={
        "company_name": f"杭州阿里巴巴网络技术有限公司{uuid.uuid4().hex[:4]}",
        "contacts": [{"name": "蒋总", "title": "CTO", "phone": "13900002222",
                      "decision_level": 5}]})
    assert c.status_code == 201, c.text
    cid = c.json()["id"]
    r = sapi.post(f"/api/customers/{cid}/revisits", rep["token"], json={
        "at": soon(1), "contact_name": "蒋总", "note": "回访上次的试用反馈",
        "escalate_after_minutes": 0})
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "revisit" and r.json()["customer_id"] == cid
    assert r.json()["contact_name"] == "蒋总"
    assert_error(sapi.post(f"/api/customers/{cid}/revisits", other["token"], json={
        "at": soon(60), "contact_name": "蒋总"}), 404)
    assert_error(sapi.post(f"/api/customers/{cid}/revisits", manager["token"], json={
        "at": soon(60), "contact_name": "蒋总"}), 403)
    assert_error(sapi.post(f"/api/customers/{cid}/revisits", rep["token"], json={
        "at": soon(60)}), 422)
    item = wait_for(lambda: of_reminder(sapi, rep, r.json()["id"]), what="the revisit")[0]
    assert item["kind"] == "revisit" and "蒋总" in item["body"]


def test_a_reassigned_customers_revisit_fires_to_the_new_owner_and_never_texts_the_old_one(
        sapi, people, sms):
    manager = people.make("manager", "周经理")
    old_phone, new_phone = "13800138444", "13800138555"
    rep_a = people.make("rep", "吴刚", phone=old_phone)
    rep_b = people.make("rep", "郑丽", phone=new_phone)
    contact_phone = "13912345678"
    c = sapi.post("/api/customers", rep_a["token"], json={
        "company_name": f"广州宏达贸易有限公司{uuid.uuid4().hex[:4]}",
        "contacts": [{"name": "黄志明", "title": "总经理", "phone": contact_phone,
                      "decision_level": 5}]})
    assert c.status_code == 201, c.text
    cid, company = c.json()["id"], c.json()["company_name"]

    def revisit(seconds, minutes):
        r = sapi.post(f"/api/customers/{cid}/revisits", rep_a["token"], json={
            "at": soon(seconds), "contact_name": "黄志明", "escalate_after_minutes": minutes,
            "note": f"黄总手机 {contact_phone}"})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    # one that fires now and that 吴刚 leaves unacknowledged (SMS in 24 s),
    # one still ahead when the customer changes hands
    shown_id, ahead_id = revisit(0.5, 0.4), revisit(12, 0.05)
    [shown] = wait_for(lambda: of_reminder(sapi, rep_a, shown_id), what="吴刚's revisit")
    # his manager resolves his difficulty alarm: reassigned to 郑丽
    alarm = sapi.post(f"/api/customers/{cid}/alarms", rep_a["token"],
                      json={"reason": "客户要求换对接人"})
    assert alarm.status_code == 201, alarm.text
    resolved = sapi.post(f"/api/alarms/{alarm.json()['id']}/resolve", manager["token"], json={
        "decision": "reassign", "note": "转给郑丽跟进", "verified": "real",
        "new_owner_id": rep_b["id"]})
    assert resolved.status_code == 200, resolved.text
    wait_for(lambda: [r["id"] for r in sapi.get("/api/reminders", rep_b["token"]).json()[
        "items"]] == [ahead_id], what="the revisit moved to 郑丽")
    assert sapi.get(f"/api/reminders/{ahead_id}", rep_a["token"]).status_code == 404
    # it fires to 郑丽, who leaves it: her phone gets the SMS
    [hers] = wait_for(lambda: of_reminder(sapi, rep_b, ahead_id), timeout=30,
                      what="郑丽's revisit")
    assert hers["kind"] == "revisit" and "黄志明" in hers["body"]
    [text] = wait_for(lambda: sms.to("+86" + new_phone), what="郑丽's SMS")
    assert company in text["text"]
    assert contact_phone not in text["text"] and "黄志明" not in text["text"]
    # 吴刚's unacknowledged revisit: its SMS is withheld, and nothing else comes
    item = wait_for(lambda: [n for n in of_reminder(sapi, rep_a, shown_id)
                             if n["sms"]["status"] != "scheduled"], timeout=40,
                    what="吴刚's escalation decided")[0]
    assert item["sms"]["status"] == "cancelled" and item["sms"]["attempts"] == []
    assert of_reminder(sapi, rep_a, ahead_id) == []
    assert sms.to("+86" + old_phone) == []
    assert [n["id"] for n in inbox(sapi, rep_a) if n["kind"] == "revisit"] == [shown["id"]]


def test_after_a_handover_the_old_owner_gets_no_sms(sapi, people, sms):
    manager = people.make("manager", "钱经理")
    old_phone = "13800138666"
    leaver = people.make("rep", "冯离职", phone=old_phone)
    heir = people.make("rep", "陈接手", phone="13800138777")
    c = sapi.post("/api/customers", leaver["token"], json={
        "company_name": f"佛山顺德家电配件有限公司{uuid.uuid4().hex[:4]}",
        "contacts": [{"name": "梁总", "title": "老板", "phone": "13912340000",
                      "decision_level": 5}]})
    assert c.status_code == 201, c.text
    cid = c.json()["id"]
    # fires now; he leaves it unacknowledged: its SMS would go out in 24 s
    r = sapi.post(f"/api/customers/{cid}/revisits", leaver["token"], json={
        "at": soon(0.5), "contact_name": "梁总", "escalate_after_minutes": 0.4})
    assert r.status_code == 201, r.text
    shown_id = r.json()["id"]
    wait_for(lambda: of_reminder(sapi, leaver, shown_id), what="his revisit shown")

    job = sapi.post(f"/api/users/{leaver['id']}/handover", manager["token"],
                    json={"to": heir["id"]})
    assert job.status_code == 202, job.text
    wait_for(lambda: sapi.get(f"/api/handovers/{job.json()['id']}", manager["token"])
             .json()["status"] == "done", what="the handover")
    item = wait_for(lambda: [n for n in of_reminder(sapi, leaver, shown_id)
                             if n["sms"]["status"] != "scheduled"], timeout=40,
                    what="his escalation decided")[0]
    assert item["sms"]["status"] == "cancelled" and item["sms"]["attempts"] == []
    assert sms.to("+86" + old_phone) == []
