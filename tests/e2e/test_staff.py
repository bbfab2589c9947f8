"""Staff lifecycle over HTTP: disabling a user, passwords, forged RPC callers,
and handing a leaving rep's customers over (issue: people leave, customers stay)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcClient

from services.common.credentials import CREDENTIAL
from services.common.errors import CrmError
from tests.e2e.test_customers import brand, create, mobile
from tests.waiting import wait_for


def strong() -> str:
    return f"晨光-{uuid.uuid4().hex[:12]}-Gd"


class StreamWatch:
    """Reads /api/notifications/stream until it ends; notes how it ended."""

    def __init__(self, api, token):
        self.events: list[str] = []
        self.ended_at: float | None = None
        self.response = requests.get(api.base + "/api/notifications/stream", stream=True,
                                     timeout=30, params={"access_token": token})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("event:"):
                    self.events.append(line[6:].strip())
        except Exception:  # noqa: BLE001 - closed under us: that is an end too
            pass
        self.ended_at = time.monotonic()


def test_disabling_a_rep_ends_his_token_stream_and_logins(api, make_user, manager, team):
    rep = make_user("rep", team["id"], "周离职")
    stream = StreamWatch(api, rep.token)
    assert stream.response.status_code == 200
    assert api.get("/api/customers", rep.token).status_code == 200

    r = api.patch(f"/api/users/{rep.id}", manager.token, json={"active": False})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    disabled_at = time.monotonic()

    # his token: refused on the very next request
    r = api.get("/api/customers", rep.token)
    assert r.status_code == 401 and r.json()["error"] == "account_disabled"
    # his live stream: closed within 5 seconds, saying why
    wait_for(lambda: stream.ended_at, timeout=8, what="the stream to end")
    assert stream.ended_at - disabled_at <= 5
    assert "revoked" in stream.events
    # and he cannot sign in again, even with the right password
    r = api.post("/api/auth/login", json={"username": rep.username, "password": rep.password})
    assert r.status_code == 401 and r.json()["error"] == "account_disabled"
    # his manager sees it in the user list and in the user's history
    users = api.get("/api/users", manager.token, params={"page_size": 100}).json()["items"]
    assert next(u for u in users if u["id"] == rep.id)["active"] is False

    assert api.patch(f"/api/users/{rep.id}", manager.token,
                     json={"active": True}).status_code == 200
    assert api.post("/api/auth/login", json={"username": rep.username,
                                             "password": rep.password}).status_code == 200
    history = api.get(f"/api/users/{rep.id}/history", manager.token).json()["items"]
    assert [h["action"] for h in history[:2]] == ["enable", "disable"]
    assert history[1]["actor"]["id"] == manager.id
    assert history[1]["before"] == {"active": True} and history[1]["after"] == {"active": False}


def test_who_may_change_whom(api, make_user, manager, other_manager, team, other_team, admin):
    rep = make_user("rep", team["id"], "吴员工")
    r = api.patch(f"/api/users/{rep.id}", other_manager.token, json={"active": False})
    assert r.status_code == 403
    r = api.patch(f"/api/users/{rep.id}", manager.token, json={"role": "manager"})
    assert r.status_code == 403
    r = api.patch(f"/api/users/{rep.id}", rep.token, json={"name": "自己改"})
    assert r.status_code == 403
    r = api.patch(f"/api/users/{admin.id}", admin.token, json={"active": False})
    assert r.status_code == 403 and r.json()["error"] == "cannot_lock_self_out"
    for cleared in ({"name": None}, {"active": None}, {"role": None}):
        r = api.patch(f"/api/users/{rep.id}", admin.token, json=cleared)
        assert r.status_code == 422 and set(r.json()["fields"]) == set(cleared), r.text
    r = api.patch(f"/api/users/{rep.id}", admin.token, json={"team_id": "nope"})
    assert r.status_code == 422 and "team_id" in r.json()["fields"]
    # an admin moves him to another team: his old token (old team) stops working
    r = api.patch(f"/api/users/{rep.id}", admin.token,
                  json={"team_id": other_team["id"], "name": "吴员工（北区）"})
    assert r.status_code == 200 and r.json()["team_id"] == other_team["id"]
    r = api.get("/api/customers", rep.token)
    assert r.status_code == 401 and r.json()["error"] == "session_revoked"


def test_changing_a_password_ends_the_other_sessions(api, make_user, team):
    rep = make_user("rep", team["id"], "郑密码")
    laptop = rep.token
    phone = api.login(rep.username, rep.password)
    r = api.post("/api/users/me/password", phone,
                 json={"old_password": "wrong-" + rep.password, "new_password": strong()})
    assert r.status_code == 422 and "old_password" in r.json()["fields"]
    new = strong()
    r = api.post("/api/users/me/password", phone,
                 json={"old_password": rep.password, "new_password": new})
    assert r.status_code == 200, r.text
    fresh = r.json()["token"]
    assert api.get("/api/users/me", fresh).status_code == 200
    for old in (laptop, phone):
        r = api.get("/api/users/me", old)
        assert r.status_code == 401 and r.json()["error"] == "session_revoked"
    assert api.post("/api/auth/login", json={"username": rep.username,
                                             "password": rep.password}).status_code == 401
    assert api.login(rep.username, new)


def test_a_reset_password_must_be_changed_before_anything_else(api, make_user, manager, team):
    rep = make_user("rep", team["id"], "冯重置")
    temporary = strong()
    r = api.post(f"/api/users/{rep.id}/password", manager.token, json={"new_password": temporary})
    assert r.status_code == 200 and r.json()["must_change_password"] is True
    assert api.get("/api/customers", rep.token).status_code == 401  # old session gone
    token = api.login(rep.username, temporary)
    me = api.get("/api/users/me", token)
    assert me.status_code == 200 and me.json()["must_change_password"] is True
    r = api.get("/api/customers", token)
    assert r.status_code == 403 and r.json()["error"] == "password_change_required"
    r = api.post("/api/users/me/password", token,
                 json={"old_password": temporary, "new_password": strong()})
    assert r.status_code == 200 and r.json()["user"]["must_change_password"] is False
    assert api.get("/api/customers", r.json()["token"]).status_code == 200


@pytest.fixture(scope="module")
def broker(stack):
    return f"pyamqp://guest:guest@127.0.0.1:5672/{stack.vhost}"


def test_an_rpc_with_a_bare_or_forged_actor_is_refused(broker, rep, admin):
    forged = {"id": admin.id, "role": "admin", "team_id": None, "name": "管理员",
              "username": "admin"}
    def refused(call, *args):
        with pytest.raises((RemoteError, CrmError)) as got:
            call(*args)
        return getattr(got.value, "code", str(got.value))

    with ClusterRpcClient(uri=broker) as bare:
        assert "unauthenticated_call" in refused(bare.accounts.list_users, forged)
        assert "unauthenticated_call" in refused(bare.customers.list_customers, forged, {})
        assert "unauthenticated_call" in refused(bare.accounts.get_users, [admin.id])
    with ClusterRpcClient(uri=broker, context_data={CREDENTIAL: rep.token}) as as_rep:
        assert "forged_actor" in refused(as_rep.accounts.create_team, forged,
                                         {"name": "伪造的团队"})
        assert "forged_actor" in refused(as_rep.customers.list_customers, forged, {})
        assert "service_only" in refused(as_rep.accounts.get_users, [admin.id])
        # his own token, as himself: what the gateway does
        me = as_rep.accounts.me({"id": rep.id, "role": "rep", "team_id": rep.team_id})
        assert me["id"] == rep.id


# ---------------------------------------------------------------- handover

def book(api, rep, n):
    ids = []
    for i in range(n):
        r = create(api, rep, company_name=f"广州{brand()}{i}贸易有限公司", phones=[mobile()],
                   contacts=[{"name": "林总", "title": "总经理", "phone": mobile(),
                              "decision_level": 5}], expected_value=10000, stage=50)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


def done(api, token, job_id):
    job = api.get(f"/api/handovers/{job_id}", token).json()
    return job if job["status"] == "done" else None


def test_a_leaving_reps_book_is_spread_over_two_colleagues(api, db, make_user, manager, team,
                                                           other_manager):
    leaver = make_user("rep", team["id"], "钱离开")
    li = make_user("rep", team["id"], "李接手")
    chen = make_user("rep", team["id"], "陈接手")
    ids = book(api, leaver, 6)
    amendment = api.post(f"/api/customers/{ids[0]}/amendments", leaver.token,
                         json={"changes": {"industry": "外贸"}, "reason": "补充行业"}).json()
    alarm = api.post(f"/api/customers/{ids[1]}/alarms", leaver.token,
                     json={"reason": "客户一直不回电话"}).json()
    claimant = make_user("rep", team["id"], "蒋争单")
    dispute = api.post(f"/api/customers/{ids[2]}/disputes", claimant.token, json={
        "contact": {"name": "吴总", "title": "董事长", "decision_level": 5},
        "note": "我们上周已经和董事长谈过"})
    assert dispute.status_code == 201, dispute.text
    assert api.patch(f"/api/users/{leaver.id}", manager.token,
                     json={"active": False}).status_code == 200

    body = {"to": [li.id, chen.id]}
    r = api.post(f"/api/users/{leaver.id}/handover", other_manager.token, json=body)
    assert r.status_code == 403
    r = api.post(f"/api/users/{leaver.id}/handover", manager.token, json={**body, "dry_run": True})
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["id"] is None and preview["total"] == 6
    assert {(s["to"]["name"], s["count"]) for s in preview["shares"]} == {("李接手", 3),
                                                                          ("陈接手", 3)}
    assert preview["open_alarms"] == 1 and preview["pending_amendments"] == 1
    assert db.customers.count_documents({"owner_id": leaver.id}) == 6  # nothing moved

    r = api.post(f"/api/users/{leaver.id}/handover", manager.token, json=body)
    assert r.status_code == 202, r.text
    job = wait_for(lambda: done(api, manager.token, r.json()["id"]), what="the handover")
    assert (job["total"], job["moved"], job["skipped"]) == (6, 6, 0)

    mine = {u.name: {c["id"] for c in api.get("/api/customers", u.token,
                                               params={"page_size": 100}).json()["items"]}
            for u in (li, chen)}
    assert mine["李接手"] | mine["陈接手"] == set(ids)
    assert len(mine["李接手"]) == 3 and len(mine["陈接手"]) == 3
    for cid in ids:
        trail = api.get(f"/api/customers/{cid}/audit", manager.token).json()
        handovers = [e for e in trail["items"] if e["action"] == "handover"]
        assert len(handovers) == 1 and trail["intact"] is True
        assert handovers[0]["before"]["owner_id"] == leaver.id
        assert handovers[0]["actor"]["id"] == manager.id
    assert db.amendments.find_one({"_id": amendment["id"]})["status"] == "void"
    assert db.alarms.find_one({"_id": alarm["id"]})["status"] == "void"
    assert db.disputes.find_one({"_id": dispute.json()["id"]})["status"] == "void"


def test_handover_to_the_pool_and_of_chosen_customers(api, db, make_user, admin, team):
    leaver = make_user("rep", team["id"], "孙离开")
    ids = book(api, leaver, 3)
    r = api.post(f"/api/users/{leaver.id}/handover", admin.token,
                 json={"to": "pool", "customer_ids": [ids[0], "not-his"]})
    assert r.status_code == 202, r.text
    assert r.json()["not_his"] == ["not-his"]
    wait_for(lambda: done(api, admin.token, r.json()["id"]), what="the handover")
    pooled = db.customers.find_one({"_id": ids[0]})
    assert pooled["status"] == "pool" and pooled["owner_id"] is None
    assert db.customers.count_documents({"owner_id": leaver.id}) == 2
    r = api.post(f"/api/users/{leaver.id}/handover", admin.token, json={"to": leaver.id})
    assert r.status_code == 422 and "to" in r.json()["fields"]
