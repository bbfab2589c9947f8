"""The service layer of record edits (customers/editing.py) against an
in-memory store, as cosmicpython's FakeUnitOfWork: version races retried,
keys claimed before and released after, a lost key given back, a busy record
refused. Integration tests show the real storage keeps the same promises."""

from datetime import UTC, datetime

import pytest

from services.common.clock import FrozenClock
from services.customers import domain, editing, rules
from services.customers.errors import NotVisible, Refused

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


class FakeStore:
    """The storage functions RecordEditor uses, over dicts. Plain and name
    keys alike are unique documents: enough to show the editor's ordering."""

    class Locked(Exception):
        pass

    def __init__(self):
        self.customers: dict[str, dict] = {}
        self.claims: dict[str, dict] = {}
        self.locks: dict[str, str] = {}
        self.lost_races = 0  # versions someone else takes before our next write
        self.name_index: set[tuple[str, str]] = set()

    # customers
    def add(self, doc):
        keys = domain.claim_keys(domain.normalize_keys_input(doc))
        doc = {"version": 1, "status": rules.ACTIVE, "claim_keys": keys, **doc}
        self.customers[doc["_id"]] = doc
        for key in keys:
            self.claims[key] = {"customer_id": doc["_id"], "owner_id": doc.get("owner_id"),
                                "owner_name": doc.get("owner_name"),
                                "company_name": doc["company_name"]}
        return doc

    def find_customer(self, db, customer_id):
        doc = self.customers.get(customer_id)
        return dict(doc) if doc else None

    def find_customers(self, db, ids):
        return {i: dict(self.customers[i]) for i in ids if i in self.customers}

    def customer_exists(self, db, customer_id):
        return customer_id in self.customers

    def update_customer(self, db, customer, fields):
        current = self.customers[customer["_id"]]
        if self.lost_races:
            self.lost_races -= 1
            current["version"] += 1  # another request wrote first
        if current["version"] != customer["version"]:
            return None
        current.update(fields, version=current["version"] + 1)
        return dict(current)

    def referral_parent(self, db, customer_id):
        return None

    def shared_phones(self, db, phones):
        return set()

    # claims
    def holders(self, db, keys):
        return {k: [self.claims[k]] for k in keys if k in self.claims}

    def claim_keys(self, db, customer_id, keys, now, meta):
        taken = []
        for key in sorted(keys):
            holder = self.claims.get(key)
            if holder is not None and holder["customer_id"] != customer_id:
                for k in taken:
                    del self.claims[k]
                return {key: [holder]}
            if holder is None:
                self.claims[key] = {"customer_id": customer_id, **meta}
                taken.append(key)
        return {}

    def release_keys(self, db, customer_id, keys):
        for key in keys:
            if self.claims.get(key, {}).get("customer_id") == customer_id:
                del self.claims[key]

    release_quietly = release_keys

    def index_name(self, db, customer_id, core, region, grams):
        self.name_index.add((customer_id, core))

    def unindex_name(self, db, customer_id, core, region, grams):
        self.name_index.discard((customer_id, core))

    # locks
    def acquire_lock(self, db, name, holder, now, ttl):
        if self.locks.get(name, holder) != holder:
            raise self.Locked(name)
        self.locks[name] = holder

    def release_lock(self, db, name, holder):
        if self.locks.get(name) == holder:
            del self.locks[name]


@pytest.fixture
def store():
    s = FakeStore()
    s.add({"_id": "c1", "company_name": "深圳市大疆创新科技有限公司", "owner_id": "rep1",
           "owner_name": "张伟", "phones": ["+8613800000001"], "emails": []})
    s.add({"_id": "c2", "company_name": "杭州海康威视数字技术股份有限公司", "owner_id": "rep2",
           "owner_name": "李娜", "phones": ["+8613800000002"], "emails": []})
    return s


def editor(store):
    return editing.RecordEditor(None, FrozenClock(NOW), store)


def phone_changes(*phones):
    return rules.normalize_changes({"phones": list(phones)})


def test_a_change_that_loses_the_version_race_is_retried_on_a_fresh_read(store):
    store.lost_races = 2
    before, after, diff = editor(store).apply_changes("c1", phone_changes("13800000009"))
    assert after["phones"] == ["+8613800000009"]
    assert after["version"] == before["version"] + 1 == 4  # two writes lost, the third won
    assert set(diff) == {"phones"}


def test_new_keys_are_claimed_before_the_write_and_old_ones_released_after(store):
    editor(store).apply_changes("c1", phone_changes("13800000009"))
    assert store.claims["phone:+8613800000009"]["customer_id"] == "c1"
    assert "phone:+8613800000001" not in store.claims
    assert store.customers["c1"]["claim_keys"] == sorted(
        k for k, c in store.claims.items() if c["customer_id"] == "c1")
    assert store.locks == {}


def test_a_key_another_customer_holds_refuses_the_change_and_gives_back_what_it_took(store):
    with pytest.raises(Refused) as refused:
        editor(store).apply_changes("c1", phone_changes("13800000009", "13800000002"))
    assert refused.value.code == "duplicate_customer"
    assert [m["customer_id"] for m in refused.value.details["matches"]] == ["c2"]
    assert "phone:+8613800000009" not in store.claims  # taken, then given back
    assert store.claims["phone:+8613800000001"]["customer_id"] == "c1"  # the old one stands
    assert store.customers["c1"]["version"] == 1 and store.locks == {}


def test_nothing_to_change_writes_nothing(store):
    before, after, diff = editor(store).apply_changes("c1", phone_changes("13800000001"))
    assert after is None and diff == {} and store.customers["c1"]["version"] == 1


def test_a_record_another_edit_holds_answers_busy_and_leaves_the_lease(store, monkeypatch):
    monkeypatch.setattr(editing, "LOCK_WAIT_SECONDS", 0.05)
    store.locks["customer:c1"] = "someone else"
    with pytest.raises(Refused) as busy:
        editor(store).apply_changes("c1", phone_changes("13800000009"))
    assert busy.value.code == "busy"
    assert store.locks == {"customer:c1": "someone else"}
    assert store.customers["c1"]["phones"] == ["+8613800000001"]


def test_update_checks_the_rules_again_on_every_fresh_read(store):
    store.lost_races = 1
    seen = []

    def compute(customer):
        seen.append(customer["version"])
        return {"stage": 50}

    before, after = editor(store).update("c1", compute)
    assert seen == [1, 2] and after["stage"] == 50
    with pytest.raises(NotVisible):
        editor(store).update("nobody", compute)


def test_a_new_name_moves_the_near_match_index(store):
    store.name_index.add(("c1", store.customers["c1"].get("name_core", "")))
    changes = rules.normalize_changes({"company_name": "深圳市大疆百旺科技有限公司"})
    _, after, _ = editor(store).apply_changes("c1", changes)
    assert ("c1", after["name_core"]) in store.name_index
    assert after["name_core"] == "大疆百旺科技"
