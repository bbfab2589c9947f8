"""The duplicate guard under a real race: 50 entries of one company at once,
from 10 reps, through the gateway."""

import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from pymongo import MongoClient

from services.customers import domain
from services.customers import normalize as norm

_rng = random.SystemRandom()


def test_fifty_concurrent_entries_of_one_company_have_exactly_one_winner(
        api, stack, make_user, team, other_team):
    reps = [make_user("rep", (team if i % 2 else other_team)["id"], f"业务员{i}")
            for i in range(10)]
    # One company, written ten ways, with its one switchboard in five formats.
    brand = "".join(_rng.sample("鑫源泰丰华盛隆达恒通宏远嘉禾瑞祥永安金鼎银河星辰天宇", 2))
    names = [f"深圳市{brand}智能装备有限公司", f"{brand}智能装备（深圳）有限公司",
             f"{brand}智能裝備有限公司", f"深圳{brand}智能装备股份有限公司",
             f"{brand}智能装备有限责任公司", f"深圳市 {brand} 智能装备 有限公司",
             f"{brand}智能装备（深圳）有限公司", f"广东省深圳市{brand}智能装备有限公司",
             f"{brand}智能装备公司", f"{brand}智能装备(深圳)有限公司"]
    digits = f"{_rng.randrange(10**7):07d}"
    phones = [f"0755-8{digits}", f"+86 755 8{digits}", f"0086-755-8{digits}",
              f"(0755)8{digits}", f"86 755 8{digits[:3]} {digits[3:]}"]
    keys = {domain.split_name_key(domain.name_key(norm.normalize_company_name(n)))[0]
            for n in names}
    assert len(keys) == 1  # the test's own premise: the same company each time
    start = threading.Barrier(50)

    def enter(i):
        s = requests.Session()
        body = {"company_name": names[i % 10], "phones": [phones[i % 5]]}
        headers = {"Authorization": f"Bearer {reps[i % 10].token}"}
        start.wait(timeout=30)
        return s.post(stack.url + "/api/customers", json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(enter, range(50)))

    codes = sorted(r.status_code for r in answers)
    assert codes == [201] + [409] * 49, codes
    [won] = [r.json() for r in answers if r.status_code == 201]
    for r in answers:
        if r.status_code == 409:
            body = r.json()
            assert body["error"] == "duplicate_customer"
            assert [m["customer_id"] for m in body["matches"]] == [won["id"]], body
            assert body["matches"][0]["owner"] == won["owner"]
            assert won["owner"]["name"] in body["message"]
    client = MongoClient(os.environ.get("CRM_MONGO_URI", "mongodb://127.0.0.1:27017/"),
                         serverSelectionTimeoutMS=3000)
    try:
        db = client[stack.prefix + "customers"]
        core = norm.normalize_company_name(names[0]).core
        stored = list(db.customers.find({"name_core": core}))
        assert [c["_id"] for c in stored] == [won["id"]]
        assert {c["customer_id"] for c in db.claims.find({"_id": "phone:+86755" + "8" + digits})
                } == {won["id"]}
    finally:
        client.close()
