from datetime import UTC, datetime, timedelta

from services.customers.audit import GENESIS, build_entry, verify_chain

T0 = datetime(2026, 11, 29, 1, 2, 3, 456789, tzinfo=UTC)
ACTOR = {"id": "u1", "name": "张伟", "role": "rep", "team_id": "t1"}


def chain(n=5):
    entries, last = [], None
    for i in range(n):
        last = build_entry(last, "c1", ACTOR, "followup", None, {"content": f"第{i}次拜访"},
                           T0 + timedelta(minutes=i))
        entries.append(last)
    return entries


def test_intact_chain_verifies():
    entries = chain()
    assert entries[0]["prev_hash"] == GENESIS
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert verify_chain(entries)
    assert verify_chain([])


def test_times_are_cut_to_millis_as_mongodb_stores_them():
    assert chain(1)[0]["at"].microsecond == 456000


def test_any_edit_breaks_the_chain():
    entries = chain()
    entries[2]["after"] = {"content": "改过的内容"}
    assert not verify_chain(entries)


def test_actor_edit_breaks_the_chain():
    entries = chain()
    entries[1]["actor"]["name"] = "李娜"
    assert not verify_chain(entries)


def test_removal_and_reordering_break_the_chain():
    entries = chain()
    assert not verify_chain(entries[:2] + entries[3:])
    assert not verify_chain([entries[1], entries[0]] + entries[2:])
    assert not verify_chain(entries[1:])


def test_rehashing_one_entry_is_not_enough():
    from services.customers.audit import entry_hash

    entries = chain()
    entries[2]["after"] = {"content": "伪造"}
    entries[2]["hash"] = entry_hash(entries[2]["prev_hash"], entries[2])
    assert not verify_chain(entries)
