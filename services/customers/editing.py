"""The service layer of record edits: how a change to a customer is applied
when other requests race it.

- a short lease per customer (and one for the referral links) serializes
  edits that claim duplicate-guard keys;
- a version race is retried on a fresh read, the rules checked again;
- new keys are claimed before the record changes and the old ones released
  after; a key held by another customer refuses the change with 409 and gives
  back what this call took.

It talks to storage through `store` (the `storage` package in production, an
in-memory fake in tests/unit/customers/test_editing.py) and to time through
`clock`; it decides nothing itself (`domain` and `rules` do).
"""

from __future__ import annotations

import time
from datetime import timedelta

from services.common.ids import new_id
from services.customers import domain, referrals, rules
from services.customers.errors import InvalidFields, NotVisible, Refused

VERSION_RETRIES = 20
LOCK_TTL = timedelta(seconds=30)
LOCK_WAIT_SECONDS = 5.0
REFERRALS_LOCK = "referrals"


class RecordEditor:
    def __init__(self, db, clock, store):
        self.db = db
        self.clock = clock
        self.store = store

    def lock(self, name: str, holder: str) -> None:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                self.store.acquire_lock(self.db, name, holder, self.clock.now(), LOCK_TTL)
                return
            except self.store.Locked:
                if time.monotonic() > deadline:
                    raise Refused("busy", "the customer is being changed; try again") from None
                time.sleep(0.02)  # green: nameko runs under eventlet

    def update(self, customer_id: str, compute):
        """Re-read and retry while other changes to the same customer win the
        version race. `compute(customer)` checks the rules again on the fresh
        record and returns the fields to set, None for "nothing to do", or
        raises. -> (the record before, after or None)."""
        for _ in range(VERSION_RETRIES):
            customer = self.store.find_customer(self.db, customer_id)
            if customer is None:
                raise NotVisible("not_found", "customer not found")
            fields = compute(customer)
            if fields is None:
                return customer, None
            updated = self.store.update_customer(self.db, customer,
                                                 {**fields, "updated_at": self.clock.now()})
            if updated is not None:
                return customer, updated
        raise Refused("busy", "the customer is changing too fast; try again")

    def check_referrer(self, customer_id: str, new_parent: str | None) -> None:
        if new_parent is None:
            return
        if not self.store.customer_exists(self.db, new_parent):
            raise InvalidFields.fields({"changes.referred_by": "no such customer"})
        refusal = referrals.referrer_refusal(
            customer_id, new_parent, lambda cid: self.store.referral_parent(self.db, cid))
        if refusal:
            raise InvalidFields.fields({"changes.referred_by": refusal})

    def claim_keys_of(self, record: dict) -> list[str]:
        keys = domain.normalize_keys_input(record)
        return domain.claim_keys(keys, self.store.shared_phones(self.db, keys["phones"]))

    def refuse_duplicate(self, customer_id: str, held: dict) -> None:
        ids = [c["customer_id"] for claims in held.values() for c in claims]
        matches = domain.exact_matches(held, self.store.find_customers(self.db, ids),
                                       customer_id)
        if matches:
            raise Refused("duplicate_customer", domain.duplicate_message(matches),
                           {"matches": matches})

    def precheck_keys(self, customer: dict, diff: dict) -> None:
        """Early word for the rep (read only): the approval re-runs the guard
        for real, since another customer may take a key meanwhile."""
        if rules.touches_keys(diff):
            wanted = self.claim_keys_of(rules.apply_changes(customer, diff))
            self.refuse_duplicate(customer["_id"], self.store.holders(self.db, wanted))

    def apply_changes(self, customer_id: str, changes: dict, amendment: dict | None = None):
        """Apply normalized changes -> (before, after or None, diff). With
        `amendment`, only while its asker still owns the customer (checked on
        each fresh read: an owner change in between fails the version)."""
        holder = new_id()
        locks = [f"customer:{customer_id}"]
        if changes.get("referred_by") is not None:
            locks.insert(0, REFERRALS_LOCK)  # crossing re-links could each pass alone
        taken = []
        claimed: set[str] = set()  # keys this call took that the record may not list yet
        try:
            for name in locks:
                self.lock(name, holder)
                taken.append(name)
            if changes.get("referred_by") is not None:
                self.check_referrer(customer_id, changes["referred_by"])
            for _ in range(VERSION_RETRIES):
                customer = self.store.find_customer(self.db, customer_id)
                if amendment is not None:
                    rules.check_amendment_current(amendment, customer)
                diff = rules.diff(customer, changes)
                if not diff:
                    return customer, None, {}
                after_record = rules.apply_changes(customer, diff)
                fields = {k: v["after"] for k, v in diff.items()}
                fields["updated_at"] = self.clock.now()
                old_keys = list(customer.get("claim_keys") or [])
                new_keys = old_keys
                if rules.touches_keys(diff):
                    new_keys = self.claim_keys_of(after_record)
                    meta = {"owner_id": customer.get("owner_id"),
                            "owner_name": customer.get("owner_name"),
                            "company_name": after_record["company_name"]}
                    # counted before the claim: a claim that fails part-way
                    # may hold the key whose write failed
                    claimed |= set(new_keys) - set(old_keys)
                    conflicts = self.store.claim_keys(self.db, customer_id, new_keys,
                                                      self.clock.now(), meta)
                    if conflicts:
                        self.refuse_duplicate(customer_id, {
                            **self.store.holders(self.db, new_keys), **conflicts})
                        raise Refused("duplicate_customer", "a key is held by another customer")
                    fields["claim_keys"] = new_keys
                    if "company_name" in diff:
                        fields.update(rules.name_fields(after_record["company_name"]))
                updated = self.store.update_customer(self.db, customer, fields)
                if updated is not None:
                    claimed = set()
                    stale = set(old_keys) - set(new_keys)
                    if stale:
                        self.store.release_keys(self.db, customer_id, stale)
                    if "company_name" in diff:
                        self.reindex_name(customer, updated)
                    return customer, updated, diff
            raise Refused("busy", "the customer is changing too fast; try again")
        finally:
            if claimed:  # gave up after taking new keys: give back what the record lacks
                current = self.store.find_customer(self.db, customer_id) or {}
                self.store.release_quietly(self.db, customer_id,
                                           claimed - set(current.get("claim_keys") or []))
            for name in taken:
                self.store.release_lock(self.db, name, holder)

    def reindex_name(self, before: dict, after: dict) -> None:
        """Keep the near-match index (storage.index_name) in step with a new name."""
        old_core, new_core = before.get("name_core"), after["name_core"]
        if old_core:
            self.store.unindex_name(self.db, before["_id"], old_core,
                                    before.get("name_region", ""), domain.search_grams(old_core))
        self.store.index_name(self.db, after["_id"], new_core, after.get("name_region", ""),
                              domain.search_grams(new_core))
