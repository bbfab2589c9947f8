"""Customers over HTTP, as a client sees them: entry, the duplicate guard (撞单),
visibility per role, follow-ups, shared phones, and hostile bodies."""

import random

import pytest

from services.customers import normalize as norm
from tests.e2e.test_platform import assert_error

_BRAND = "鑫源泰丰华盛隆达恒通宏远嘉禾瑞祥永安金鼎银河星辰天宇博雅康泽德信和润"
_rng = random.SystemRandom()


def brand() -> str:
    """A brand no other test of this session uses (the stack is shared)."""
    return "".join(_rng.sample(_BRAND, 3))


def mobile() -> str:
    return f"139{_rng.randrange(10**8):08d}"


def credit_code() -> str:
    first = "91440300" + "".join(_rng.choice("0123456789") for _ in range(9))
    return first + norm.credit_code_check_char(first)


def create(api, person, **body):
    return api.post("/api/customers", person.token, json=body)


@pytest.fixture
def entered(api, rep):
    """A customer of `rep`, with every kind of key."""
    b = brand()
    body = {"company_name": f"深圳市{b}电子科技有限公司", "phones": [mobile()],
            "credit_code": credit_code(), "emails": [f"sales@{_rng.randrange(10**6)}-tech.cn"],
            "address": "深圳市南山区科技园南区", "industry": "电子制造",
            "contacts": [{"name": "陈志强", "title": "采购总监", "phone": mobile(),
                          "decision_level": 4}],
            "birthday": "08-18", "birthday_label": "陈总生日", "expected_value": 350000.8,
            "stage": 25}
    r = create(api, rep, **body)
    assert r.status_code == 201, r.text
    return r.json(), body, b


def test_create_returns_the_customer_owned_by_the_caller(entered, rep, team):
    customer, body, _ = entered
    assert customer["owner"] == {"id": rep.id, "name": "张伟"}
    assert customer["company_name"] == body["company_name"]
    assert customer["expected_value"] == 350000.8
    assert customer["stage"] == 25 and customer["status"] == "active"
    assert customer["phones"] == ["+86" + body["phones"][0]]
    assert customer["contacts"][0]["decision_level"] == 4
    assert customer["birthday"] == "08-18" and customer["birthday_kind"] == "birthday"
    assert customer["team_id"] == team["id"]
    assert customer["created_at"].endswith("+00:00")


def test_a_duplicate_is_refused_with_409_naming_the_owner(api, entered, other_rep):
    customer, body, b = entered
    tries = [
        {"company_name": f"{b}電子科技（深圳）有限公司"},
        {"company_name": "广州某某贸易有限公司",
         "phones": ["+86 " + body["phones"][0][:3] + " " + body["phones"][0][3:]]},
        {"company_name": "广州某某贸易有限公司", "credit_code": body["credit_code"].lower()},
        {"company_name": "广州某某贸易有限公司", "emails": [body["emails"][0].upper()]},
    ]
    for t in tries:
        r = create(api, other_rep, **t)
        err = assert_error(r, 409, "duplicate_customer")
        [m] = err["matches"]
        assert m["customer_id"] == customer["id"]
        assert m["owner"] == {"id": customer["owner"]["id"], "name": "张伟"}
        assert set(m) == {"customer_id", "company_name", "owner", "status", "matched_on", "score"}
        assert "张伟" in err["message"]
    check = api.post("/api/customers/check", other_rep.token,
                     json={"company_name": f"{b}电子科技有限公司"}).json()
    assert check["available"] is False
    assert check["matches"][0]["owner"]["name"] == "张伟"
    assert "phones" not in check["matches"][0] and "contacts" not in check["matches"][0]


def test_similar_names_warn_without_blocking(api, rep2, other_rep):
    b = brand()
    near = b[:-1] + next(c for c in _BRAND if c not in b)  # one character apart
    r = create(api, rep2, company_name=f"上海{b}精密机械有限公司", phones=[mobile()])
    assert r.status_code == 201, r.text
    out = api.post("/api/customers/check", other_rep.token,
                   json={"company_name": f"上海{near}精密机械有限公司"}).json()
    assert out["available"] is True and out["matches"] == []
    assert out["similar"][0]["customer_id"] == r.json()["id"]
    assert out["similar"][0]["owner"]["name"] == "李娜"


def test_visibility_per_role(api, entered, rep, rep2, manager, other_manager, other_rep, admin):
    customer, _, _ = entered
    url = f"/api/customers/{customer['id']}"
    assert api.get(url, rep.token).status_code == 200
    assert_error(api.get(url, rep2.token), 404, "not_found")  # same team, not his
    assert_error(api.get(url, other_rep.token), 404)
    assert api.get(url, manager.token).status_code == 200  # his team
    assert_error(api.get(url, other_manager.token), 404)
    assert api.get(url, admin.token).status_code == 200
    assert_error(api.get("/api/customers/no-such-id", admin.token), 404)

    def ids(person, qs=""):
        r = api.get("/api/customers?page_size=100" + qs, person.token)
        assert r.status_code == 200, r.text
        return {c["id"] for c in r.json()["items"]}

    assert customer["id"] in ids(rep)
    assert customer["id"] not in ids(rep2)
    assert customer["id"] in ids(manager)
    assert customer["id"] not in ids(other_manager)
    assert customer["id"] in ids(admin, f"&owner_id={rep.id}")
    assert ids(rep2, f"&owner_id={rep.id}") == set()
    assert ids(rep, "&stage=25&q=" + customer["company_name"][3:6]) == {customer["id"]}


def test_a_list_pages_by_cursor_over_http(api, rep):
    """?after=<next> takes up where the page before ended; with ?page it is
    a 422 naming `after`."""
    made = [create(api, rep, company_name=f"{brand()}贸易有限公司").json()["id"]
            for _ in range(3)]
    seen, after = [], None
    while True:
        r = api.get("/api/customers?page_size=2" + (f"&after={after}" if after else ""),
                    rep.token)
        assert r.status_code == 200, r.text
        seen += [c["id"] for c in r.json()["items"]]
        after = r.json()["next"]
        if after is None:
            break
    assert set(made) <= set(seen) and seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) == r.json()["total"]
    r = api.get(f"/api/customers?page=2&after={made[0]}", rep.token)
    assert_error(r, 422)
    assert "after" in r.json()["fields"]


def test_only_reps_and_managers_enter_customers(api, admin, manager):
    assert_error(create(api, admin, company_name=f"{brand()}物流有限公司"), 403)
    r = create(api, manager, company_name=f"{brand()}物流有限公司")
    assert r.status_code == 201
    assert r.json()["owner"]["name"] == "王经理"


def test_follow_ups_append_only_by_the_owner(api, entered, rep, manager, other_rep):
    customer, _, _ = entered
    url = f"/api/customers/{customer['id']}/followups"
    r = api.post(url, rep.token, json={"content": "上门拜访，陈总同意下周试样",
                                        "contact_name": "陈志强", "channel": "拜访"})
    assert r.status_code == 201, r.text
    assert r.json()["author"] == {"id": rep.id, "name": "张伟"}
    assert_error(api.post(url, manager.token, json={"content": "经理补充"}), 403, "not_owner")
    assert_error(api.post(url, other_rep.token, json={"content": "抢单"}), 404)
    listed = api.get(url, manager.token).json()
    assert listed["total"] == 1 and listed["items"][0]["content"] == "上门拜访，陈总同意下周试样"
    assert_error(api.get(url, other_rep.token), 404)
    assert api.delete(url, rep.token).status_code in (403, 405)
    assert api.request("PUT", url, rep.token, json={"content": "改"}).status_code in (403, 405)


def test_a_shared_switchboard_number_can_be_marked_by_an_admin(api, rep, rep2, admin):
    switchboard = f"0755-8{_rng.randrange(10**6):06d}0"
    first = create(api, rep, company_name=f"深圳{brand()}电子商行", phones=[switchboard])
    assert first.status_code == 201, first.text
    second = {"company_name": f"深圳{brand()}数码商行", "phones": [switchboard.replace("-", " ")]}
    assert_error(create(api, rep2, **second), 409, "duplicate_customer")
    assert_error(api.post("/api/shared-phones", rep.token, json={"phone": switchboard}), 403)
    r = api.post("/api/shared-phones", admin.token, json={"phone": switchboard, "note": "华强北总机"})
    assert r.status_code == 201, r.text
    assert r.json()["released_claims"] == 1
    assert create(api, rep2, **second).status_code == 201
    listed = api.get("/api/shared-phones", rep.token).json()
    assert r.json()["phone"] in {p["phone"] for p in listed["items"]}


def test_credit_code_with_a_wrong_check_character_is_422_naming_the_field(api, rep):
    code = credit_code()
    wrong = code[:17] + ("0" if code[17] != "0" else "1")
    err = assert_error(create(api, rep, company_name=f"{brand()}有限公司", credit_code=wrong), 422)
    assert "credit_code" in err["fields"]
    err = assert_error(create(api, rep, company_name=f"{brand()}有限公司", phones=["12345"]), 422)
    assert "phones" in err["fields"]
    err = assert_error(create(api, rep, company_name=f"{brand()}有限公司",
                              expected_value=12.345), 422)
    assert "expected_value" in err["fields"]


HOSTILE_BODIES = [
    b"", b"not json", b"[]", b"null", b"123", b'"str"', b"{", b'{"company_name": }',
    b'{"company_name": null}', b'{"company_name": ""}', b'{"company_name": 42}',
    b'{"company_name": ["a"]}', b'{"company_name": {"$gt": ""}}',
    b'{"company_name": "\\u0000\\u0001"}', b'{"company_name": "' + b"x" * 5000 + b'"}',
    b'{"company_name": "()"}', b'{"company_name": "A", "extra": 1}',
    b'{"company_name": "A", "phones": "13800138000"}', b'{"company_name": "A", "phones": [1]}',
    b'{"company_name": "A", "phones": ["' + b"9" * 39 + b'"]}',
    b'{"company_name": "A", "phones": [' + b'"13800138000",' * 20 + b'"13800138000"]}',
    b'{"company_name": "A", "emails": ["@@"]}', b'{"company_name": "A", "credit_code": 1}',
    b'{"company_name": "A", "credit_code": "IOSVZ"}', b'{"company_name": "A", "stage": "25"}',
    b'{"company_name": "A", "stage": 1e308}', b'{"company_name": "A", "stage": -1}',
    b'{"company_name": "A", "expected_value": "100"}',
    b'{"company_name": "A", "expected_value": 1e400}',
    b'{"company_name": "A", "expected_value": -1}', b'{"company_name": "A", "expected_value": true}',
    b'{"company_name": "A", "birthday": "2-30"}', b'{"company_name": "A", "birthday": "02-30"}',
    b'{"company_name": "A", "contacts": [{"name": "x", "decision_level": 9}]}',
    b'{"company_name": "A", "contacts": [{}]}', b'{"company_name": "A", "contacts": "x"}',
    b'{"company_name": "A", "referred_by": "../../etc"}',
    b'{"company_name": "A", "referred_by": "nonexistent"}',
    b'{"content": ""}', b'{"content": null}', b'{"content": "' + b"z" * 6000 + b'"}',
    b'{"phone": "abc"}', b'{"phone": null}', b'{"phone": ""}',
    b'{"company_name": "\xff\xfe"}',
]


def test_hostile_bodies_on_every_customers_endpoint_are_4xx(api, entered, rep, admin):
    customer, _, _ = entered
    cid = customer["id"]
    endpoints = [("POST", "/api/customers/check", rep), ("POST", "/api/customers", rep),
                 ("POST", f"/api/customers/{cid}/followups", rep),
                 ("POST", "/api/shared-phones", admin)]
    for method, path, person in endpoints:
        for body in HOSTILE_BODIES:
            r = api.request(method, path, person.token, data=body,
                            headers={"Content-Type": "application/json"})
            assert 400 <= r.status_code < 500, (path, body[:80], r.status_code, r.text)
            assert r.json()["error"], r.text
    hostile_queries = ["?page=0", "?page_size=1000", "?page=abc", "?stage=abc", "?stage=-5",
                       "?status=deleted", "?owner_id=$ne", "?q=" + "x" * 500, "?q=.*(", "?q=%00",
                       "?q=[a-z]+", "?unknown=1", "?q=%E8%85%BE"]
    for qs in hostile_queries:
        r = api.get("/api/customers" + qs, rep.token)
        assert r.status_code in (200, 400, 422), (qs, r.status_code, r.text)
        r = api.get(f"/api/customers/{cid}/followups" + qs, rep.token)
        assert r.status_code in (200, 400, 404, 422), (qs, r.status_code, r.text)
    for weird in ["%00", "..%2F..", "x" * 300, "%E5%AE%A2%E6%88%B7", "$where", "{}"]:
        for path in (f"/api/customers/{weird}", f"/api/customers/{weird}/followups"):
            r = api.get(path, rep.token)
            assert r.status_code in (404, 422), (path, r.status_code, r.text)
        r = api.post(f"/api/customers/{weird}/followups", rep.token, json={"content": "跟进"})
        assert r.status_code in (404, 422), (weird, r.status_code, r.text)
    assert_error(api.post("/api/customers", None, json={"company_name": "无令牌公司"}), 401)
    assert_error(api.post("/api/customers/check", "bad.token.here", json={}), 401)
