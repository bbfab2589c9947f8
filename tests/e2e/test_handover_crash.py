"""A handover of 500 customers survives a SIGKILL of the customers service
midway: run again, it finishes, and every customer moved exactly once,
audited once, with his revisits following him, the forecast counting him once."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import MongoClient

from tests.e2e.stack import Api, Stack
from tests.e2e.test_customers import brand, mobile
from tests.waiting import wait_for

N = 500
SECRET = "crash-secret-" + uuid.uuid4().hex + uuid.uuid4().hex
ADMIN_PASSWORD = "交接-" + uuid.uuid4().hex[:14]


@pytest.fixture(scope="module")
def crashable():
    # A stack of its own: the crash takes it down and it is started again.
    # 100 customers a second: the kill lands midway on any machine, and the
    # job's lease is short so the restarted service takes it up soon.
    s = Stack(SECRET, ADMIN_PASSWORD, CRM_HANDOVER_RATE="100",
              CRM_HANDOVER_LEASE_SECONDS="5").start()
    yield s
    s.ensure_running()
    s.stop()


def person(api, admin_token, role, team_id, name):
    username, password = f"{role}_{uuid.uuid4().hex[:8]}", f"密码-{uuid.uuid4().hex[:12]}"
    r = api.post("/api/users", admin_token, json={"username": username, "password": password,
                                                  "name": name, "role": role,
                                                  "team_id": team_id})
    assert r.status_code == 201, r.text
    return r.json()["id"], api.login(username, password)


def test_a_handover_killed_midway_finishes_once_when_run_again(crashable):
    api = Api(crashable.url)
    admin = api.login("admin", ADMIN_PASSWORD)
    team = api.post("/api/teams", admin, json={"name": "华东销售三部"}).json()["id"]
    leaver_id, leaver = person(api, admin, "rep", team, "赵离职")
    new_owners = [person(api, admin, "rep", team, name) for name in ("钱接手", "孙接手")]
    manager_id, manager = person(api, admin, "manager", team, "周经理")
    ids = []
    for i in range(N):
        r = api.post("/api/customers", leaver, json={
            "company_name": f"苏州{brand()}{i}精密机械有限公司", "phones": [mobile()],
            "expected_value": 1000, "stage": 50})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    due = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    revisits = {}
    for cid in ids[:4]:
        r = api.post(f"/api/customers/{cid}/revisits", leaver,
                     json={"at": due, "contact_name": "钱总", "note": "回访报价"})
        assert r.status_code == 201, r.text
        revisits[cid] = r.json()["id"]

    r = api.post(f"/api/users/{leaver_id}/handover", manager,
                 json={"to": [uid for uid, _ in new_owners]})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    job = wait_for(lambda: (j := api.get(f"/api/handovers/{job_id}", manager).json())
                   ["moved"] >= 25 and j, timeout=60, what="the handover to be under way")
    crashable.crash("customers")
    client = MongoClient(os.environ.get("CRM_MONGO_URI", "mongodb://127.0.0.1:27017/"),
                         tz_aware=True)
    db = client[crashable.prefix + "customers"]
    try:
        moved_at_kill = db.customers.count_documents({"handover_id": job_id})
        assert moved_at_kill < N, "the job was over before the kill; the test proves nothing"

        crashable.ensure_running()  # run again: the job's lease runs out, it is taken up
        api = Api(crashable.url)
        job = wait_for(lambda: (j := api.get(f"/api/handovers/{job_id}", manager).json())
                       ["status"] == "done" and j, timeout=120, what="the handover to finish")
        assert job["total"] == N and job["moved"] + job["skipped"] == N and job["skipped"] == 0

        owners = {d["_id"]: d["owner_id"] for d in db.customers.find({"_id": {"$in": ids}})}
        expected = {cid: new_owners[i % 2][0] for i, cid in enumerate(reversed(ids))}
        assert sorted(owners.values()) == sorted(expected.values())
        assert leaver_id not in owners.values()
        audited = {}
        for entry in db.audit.find({"customer_id": {"$in": ids}, "action": "handover"}):
            audited[entry["customer_id"]] = audited.get(entry["customer_id"], 0) + 1
        assert audited == dict.fromkeys(ids, 1), "each customer audited exactly once"
        # the forecast heard each move once: the two new owners hold all 500 deals
        counts = []
        for uid, _ in new_owners:
            f = wait_for(lambda uid=uid: (x := api.get("/api/forecast", manager,
                                                       params={"owner_id": uid}).json())
                         and sum(s["count"] for s in x["stages"]) == N // 2 and x,
                         timeout=30, what="the forecast to follow")
            counts.append(sum(s["count"] for s in f["stages"]))
        assert counts == [N // 2, N // 2]
        # his revisits follow the customers to their new owners
        for cid, rid in revisits.items():
            token = dict(new_owners)[owners[cid]]
            wait_for(lambda token=token, rid=rid: any(
                x["id"] == rid for x in api.get("/api/reminders", token).json()["items"]),
                timeout=20, what="the revisit to follow its customer")
        assert not [x for x in api.get("/api/reminders", leaver).json()["items"]
                    if x["id"] in revisits.values()]
    finally:
        client.close()

