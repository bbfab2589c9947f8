"""RPC entrypoints of the customer lifecycle (amendments, alarms, the pool,
disputes, stages, referrals, the audit trail); CustomersService inherits them.

Thin: validate with `parse`, decide with `lifecycle`/`stages`/`referrals`,
read and write with `integrity_storage`, append to the audit trail, then
dispatch. Order of every change: the conditional write (the one place a race
is decided), then the audit entry, then the event, so an event never
announces a change that lost its race.
"""

from __future__ import annotations

import time
from datetime import timedelta

import eventlet
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from services.common.clock import Clock, iso
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.events import Dispatcher, event
from services.common.ids import new_id
from services.common.mongo import Mongo
from services.common.principal import Principal
from services.common.rpc import Rpc
from services.common.validation import parse
from services.customers import domain, referrals, stages, storage
from services.customers import integrity_schemas as schemas
from services.customers import integrity_storage as store
from services.customers import lifecycle as lc
from services.customers.storage import append_audit

VERSION_RETRIES = 20
LOCK_TTL = timedelta(seconds=30)
LOCK_WAIT_SECONDS = 5.0
APPLY_LEASE = timedelta(seconds=60)
EXPORT_MAX = 1000
REFERRALS_LOCK = "referrals"


def _user_ref(user_id, name=None):
    return {"id": user_id, "name": name} if user_id else None


def _iso(value):
    return iso(value) if value is not None else None


class IntegrityIndexes(DependencyProvider):
    """Creates the lifecycle's indexes at start, on the service's own `db`
    (the unique ones are what make "one open alarm" and "one open dispute"
    hold), without a second connection and without touching the core's
    setup function."""

    def start(self):
        provider = next(d for d in self.container.dependencies if d.attr_name == "db")
        store.ensure_indexes(provider.db)

    def get_dependency(self, worker_ctx):
        return None


class IntegrityRpc:
    db = Mongo()
    clock = Clock()
    dispatch = Dispatcher()
    accounts = Rpc("accounts")
    integrity_indexes = IntegrityIndexes()

    # ------------------------------------------------------------ helpers

    def _customer(self, customer_id: str) -> dict | None:
        return store.find_customer(self.db, customer_id)

    def _audit(self, customer_id, actor: Principal | None, action, before, after, at=None):
        append_audit(self.db, customer_id, actor.as_dict() if actor else None, action,
                     before, after, at or self.clock.now())

    def _customer_out(self, doc: dict) -> dict:
        return domain.public_customer(doc)

    def current_stages(self) -> list[dict]:
        """The stage list create validates against (CustomersService asks)."""
        return store.get_stages(self.db)

    def _lock(self, name: str, holder: str) -> None:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                store.acquire_lock(self.db, name, holder, self.clock.now(), LOCK_TTL)
                return
            except store.Locked:
                if time.monotonic() > deadline:
                    raise Conflict("busy", "the customer is being changed; try again") from None
                eventlet.sleep(0.02)

    def _update(self, customer_id: str, compute):
        """Re-read and retry while other changes to the same customer win the
        version race. `compute(customer)` checks the rules again on the fresh
        record and returns the fields to set, None for "nothing to do", or
        raises. -> (the record before, after or None)."""
        for _ in range(VERSION_RETRIES):
            customer = self._customer(customer_id)
            if customer is None:
                raise NotFound("not_found", "customer not found")
            fields = compute(customer)
            if fields is None:
                return customer, None
            updated = store.update_customer(self.db, customer,
                                            {**fields, "updated_at": self.clock.now()})
            if updated is not None:
                return customer, updated
        raise Conflict("busy", "the customer is changing too fast; try again")

    def _owner_changed(self, before: dict, after: dict, reason: str, actor: Principal):
        self.dispatch("OwnerChanged", event(
            customer_id=after["_id"], version=after["version"],
            old_owner_id=before.get("owner_id"), new_owner_id=after.get("owner_id"),
            old_team_id=before.get("team_id"), new_team_id=after.get("team_id"),
            reason=reason, company_name=after.get("company_name"), stage=after.get("stage"),
            expected_value_fen=after.get("expected_value_fen"), status=after.get("status"),
            birthday=after.get("birthday"), birthday_label=after.get("birthday_label"),
            birthday_kind=after.get("birthday_kind"), changed_by=actor.id))

    def _owner_fields(self, user: dict, now) -> dict:
        # owner_since: an alarm raised before it is no licence for the new owner
        return {"owner_id": user["id"], "owner_name": user.get("name"),
                "team_id": user.get("team_id"), "status": lc.ACTIVE, "owner_since": now}

    # ------------------------------------------- amendments and PATCH

    def _check_referrer(self, customer_id: str, new_parent: str | None) -> None:
        if new_parent is None:
            return
        if not storage.customer_exists(self.db, new_parent):
            raise Invalid.fields({"changes.referred_by": "no such customer"})
        refusal = referrals.referrer_refusal(
            customer_id, new_parent, lambda cid: store.referral_parent(self.db, cid))
        if refusal:
            raise Invalid.fields({"changes.referred_by": refusal})

    def _guard_matches(self, held: dict, exclude: str) -> list[dict]:
        ids = [c["customer_id"] for claims in held.values() for c in claims]
        return domain.exact_matches(held, storage.find_customers(self.db, ids), exclude)

    def _claim_keys_of(self, record: dict) -> list[str]:
        keys = domain.normalize_keys_input(record)
        return domain.claim_keys(keys, storage.shared_phones(self.db, keys["phones"]))

    def _refuse_duplicate(self, customer_id: str, held: dict) -> None:
        matches = self._guard_matches(held, customer_id)
        if matches:
            raise Conflict("duplicate_customer", domain.duplicate_message(matches),
                           {"matches": matches})

    def _precheck_keys(self, customer: dict, diff: dict) -> None:
        """Early word for the rep (read only): the approval re-runs the guard
        for real, since another customer may take a key meanwhile."""
        if lc.touches_keys(diff):
            wanted = self._claim_keys_of(lc.apply_changes(customer, diff))
            self._refuse_duplicate(customer["_id"], storage.holders(self.db, wanted))

    def _apply_changes(self, customer_id: str, changes: dict, amendment: dict | None = None):
        """Apply normalized changes -> (before, after or None, diff). With
        `amendment`, only while its asker still owns the customer (checked
        on each fresh read: an owner change in between fails the version).

        Edits of one customer are serialized by a short lease so that two
        approvals on the same record cannot interleave their key claims.
        New duplicate-guard keys are claimed before the record changes and
        the old ones released after: if a key is taken, nothing was lost
        (the old claims still stand) and the change is refused with 409.
        """
        holder = new_id()
        locks = [f"customer:{customer_id}"]
        if changes.get("referred_by") is not None:
            locks.insert(0, REFERRALS_LOCK)  # crossing re-links could each pass alone
        taken = []
        claimed: set[str] = set()  # keys this call took that the record may not list yet
        try:
            for name in locks:
                self._lock(name, holder)
                taken.append(name)
            if changes.get("referred_by") is not None:
                self._check_referrer(customer_id, changes["referred_by"])
            for _ in range(VERSION_RETRIES):
                customer = self._customer(customer_id)
                if amendment is not None:
                    lc.check_amendment_current(amendment, customer)
                diff = lc.diff(customer, changes)
                if not diff:
                    return customer, None, {}
                after_record = lc.apply_changes(customer, diff)
                fields = {k: v["after"] for k, v in diff.items()}
                fields["updated_at"] = self.clock.now()
                old_keys = list(customer.get("claim_keys") or [])
                new_keys = old_keys
                if lc.touches_keys(diff):
                    new_keys = self._claim_keys_of(after_record)
                    meta = {"owner_id": customer.get("owner_id"),
                            "owner_name": customer.get("owner_name"),
                            "company_name": after_record["company_name"]}
                    # counted before the claim: a claim that fails part-way
                    # may hold the key whose write failed
                    claimed |= set(new_keys) - set(old_keys)
                    conflicts = storage.claim_keys(self.db, customer_id, new_keys,
                                                   self.clock.now(), meta)
                    if conflicts:
                        self._refuse_duplicate(customer_id, {
                            **storage.holders(self.db, new_keys), **conflicts})
                        raise Conflict("duplicate_customer", "a key is held by another customer")
                    fields["claim_keys"] = new_keys
                    if "company_name" in diff:
                        fields.update(lc.name_fields(after_record["company_name"]))
                updated = store.update_customer(self.db, customer, fields)
                if updated is not None:
                    claimed = set()
                    stale = set(old_keys) - set(new_keys)
                    if stale:
                        storage.release_keys(self.db, customer_id, stale)
                    if "company_name" in diff:
                        self._reindex_name(customer, updated)
                    return customer, updated, diff
            raise Conflict("busy", "the customer is changing too fast; try again")
        finally:
            if claimed:  # gave up after taking new keys: give back what the record lacks
                current = self._customer(customer_id) or {}
                storage.release_quietly(self.db, customer_id,
                                        claimed - set(current.get("claim_keys") or []))
            for name in taken:
                store.release_lock(self.db, name, holder)

    def _reindex_name(self, before: dict, after: dict) -> None:
        """Keep the near-match index (storage.index_name) in step with a new name."""
        old_core, new_core = before.get("name_core"), after["name_core"]
        if old_core:
            storage.unindex_name(self.db, before["_id"], old_core, before.get("name_region", ""),
                                 domain.search_grams(old_core))
        storage.index_name(self.db, after["_id"], new_core, after.get("name_region", ""),
                           domain.search_grams(new_core))

    def _amended(self, after: dict, diff: dict, actor: Principal) -> None:
        self.dispatch("CustomerAmended", event(
            customer_id=after["_id"], version=after["version"], changes=diff,
            **lc.snapshot(after), amended_by=actor.id))

    @rpc
    def patch_customer(self, actor, customer_id, body):
        actor = Principal.of(actor)
        lc.check_may_patch(actor, None if actor.role == "rep" else self._customer(customer_id))
        data = parse(schemas.PatchIn, body)
        changes = lc.normalize_changes(data.changes.model_dump(exclude_unset=True))
        lc.require_changes(lc.diff(self._customer(customer_id), changes))

        _, after, diff = self._apply_changes(customer_id, changes)
        if after is None:
            raise Invalid.fields({"changes": "nothing would change"})
        before_vals, after_vals = lc.before_after(diff)
        self._audit(customer_id, actor, "patched", before_vals,
                    {**after_vals, "reason": data.reason})
        self._amended(after, diff, actor)
        return self._customer_out(after)

    @rpc
    def delete_customer(self, actor, customer_id):
        lc.refuse_delete(Principal.of(actor))

    @rpc
    def request_amendment(self, actor, customer_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.AmendmentIn, body)
        customer = lc.check_may_amend(actor, self._customer(customer_id))
        asked = data.changes.model_dump(exclude_unset=True)
        changes = lc.normalize_changes(asked)
        diff = lc.diff(customer, changes)
        lc.require_changes(diff)
        if "referred_by" in diff:
            self._check_referrer(customer_id, changes["referred_by"])
        self._precheck_keys(customer, diff)
        now = self.clock.now()
        amendment = store.insert_amendment(self.db, {
            "customer_id": customer_id, "company_name": customer.get("company_name"),
            "owner_id": actor.id, "team_id": customer.get("team_id"), "asked": asked,
            "changes": changes, "reason": data.reason, "status": lc.AMENDMENT_PENDING,
            "requested_by": {"id": actor.id, "name": actor.name}, "requested_at": now,
            "decided_by": None, "decided_at": None, "note": None, "rejected_because": None})
        before_vals, after_vals = lc.before_after(diff)
        self._audit(customer_id, actor, "amendment_requested", before_vals,
                    {**after_vals, "amendment_id": amendment["_id"], "reason": data.reason}, now)
        return _amendment_out(amendment)

    def _decidable(self, actor: Principal, amendment_id: str) -> tuple[dict, dict]:
        amendment = store.find_amendment(self.db, amendment_id)
        if amendment is None:
            raise NotFound("not_found", "amendment not found")
        customer = self._customer(amendment["customer_id"])
        lc.check_may_decide_amendment(actor, customer)
        return amendment, customer

    @rpc
    def approve_amendment(self, actor, amendment_id, body=None):
        actor = Principal.of(actor)
        data = parse(schemas.DecisionIn, body or {})
        amendment, _ = self._decidable(actor, amendment_id)
        now = self.clock.now()
        if store.start_applying(self.db, amendment_id, actor.id, now, APPLY_LEASE) is None:
            lc.check_amendment_pending(store.find_amendment(self.db, amendment_id))
            raise Conflict("amendment_not_pending", "the amendment is being decided")
        decided = {"decided_by": {"id": actor.id, "name": actor.name}, "decided_at": now,
                   "note": data.note}
        customer_id = amendment["customer_id"]
        try:
            _, after, diff = self._apply_changes(customer_id, amendment["changes"], amendment)
        except (Invalid, Conflict) as exc:
            if exc.code == "busy":
                store.finish_amendment(self.db, amendment_id, lc.AMENDMENT_APPLYING,
                                       {"status": lc.AMENDMENT_PENDING})
                raise
            # the record moved on (a key taken, a referral cycle): this
            # amendment can no longer be applied as asked
            store.finish_amendment(self.db, amendment_id, lc.AMENDMENT_APPLYING, {
                **decided, "status": lc.AMENDMENT_REJECTED, "rejected_because": exc.code})
            self._audit(customer_id, actor, "amendment_refused", None,
                        {"amendment_id": amendment_id, "because": exc.code,
                         "message": exc.message}, now)
            raise
        except BaseException:
            store.finish_amendment(self.db, amendment_id, lc.AMENDMENT_APPLYING,
                                   {"status": lc.AMENDMENT_PENDING})
            raise
        done = store.finish_amendment(self.db, amendment_id, lc.AMENDMENT_APPLYING, {
            **decided, "status": lc.AMENDMENT_APPROVED, "applied": diff,
            "version": after["version"] if after else None})
        before_vals, after_vals = lc.before_after(diff)
        self._audit(customer_id, actor, "amendment_approved", before_vals,
                    {**after_vals, "amendment_id": amendment_id, "reason": amendment["reason"],
                     "note": data.note}, now)
        if after is not None:
            self._amended(after, diff, actor)
        return _amendment_out(done or store.find_amendment(self.db, amendment_id))

    @rpc
    def reject_amendment(self, actor, amendment_id, body=None):
        actor = Principal.of(actor)
        data = parse(schemas.DecisionIn, body or {})
        amendment, _ = self._decidable(actor, amendment_id)
        now = self.clock.now()
        done = store.finish_amendment(self.db, amendment_id, lc.AMENDMENT_PENDING, {
            "status": lc.AMENDMENT_REJECTED, "decided_by": {"id": actor.id, "name": actor.name},
            "decided_at": now, "note": data.note, "rejected_because": "rejected"})
        if done is None:
            lc.check_amendment_pending(store.find_amendment(self.db, amendment_id))
            raise Conflict("amendment_not_pending", "the amendment is being decided")
        self._audit(amendment["customer_id"], actor, "amendment_rejected", None,
                    {"amendment_id": amendment_id, "note": data.note}, now)
        return _amendment_out(done)

    @rpc
    def list_amendments(self, actor, query=None):
        actor = Principal.of(actor)
        q = parse(schemas.ListQuery, query or {})
        filt = _scope_filter(actor, "owner_id")
        if q.status:
            filt["status"] = q.status
        if q.customer_id:
            filt["customer_id"] = q.customer_id
        docs, total, more = store.list_amendments(self.db, filt, q.skip, q.page_size, q.after)
        return _page_out([_amendment_out(d) for d in docs], total, more)

    # ------------------------------------------------------------- stages

    @rpc
    def get_stages(self, actor=None):
        return stages.public(store.get_stages(self.db))

    @rpc
    def put_stages(self, actor, body):
        actor = Principal.of(actor)
        if actor.role != "admin":
            raise Forbidden("forbidden", "only an admin defines the stages")
        items = [s.model_dump() for s in parse(schemas.StagesIn, body).root]
        new = stages.validate(items)
        doc = store.put_stages(self.db, new, actor.id, self.clock.now())
        out = stages.public(doc["stages"])
        self.dispatch("StagesChanged", event(stages=out, version=doc["version"],
                                             changed_by=actor.id))
        return out

    @rpc
    def change_stage(self, actor, customer_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.StageIn, body)
        defined = store.get_stages(self.db)
        lc.check_may_change_stage(actor, self._customer(customer_id))
        stages.check_stage(defined, data.stage)
        moved = {}

        def compute(customer):
            lc.check_may_change_stage(actor, customer)
            if customer.get("stage") == data.stage:
                return None  # already there: no change, no event
            moved["from"] = customer.get("stage")
            return {"stage": data.stage}

        now = self.clock.now()
        before, after = self._update(customer_id, compute)
        if after is None:
            return self._customer_out(before)
        store.insert_stage_change(self.db, customer_id, now, moved["from"], data.stage, actor.id,
                                  after["version"], data.note)
        self._audit(customer_id, actor, "stage_changed", {"stage": moved["from"]},
                    {"stage": data.stage, "note": data.note}, now)
        self.dispatch("StageChanged", event(
            customer_id=customer_id, version=after["version"], **{"from": moved["from"]},
            to=data.stage, expected_value_fen=after.get("expected_value_fen"),
            owner_id=after.get("owner_id"), team_id=after.get("team_id"), changed_by=actor.id,
            note=data.note))
        return self._customer_out(after)

    # ------------------------------------------------------------- alarms

    @rpc
    def raise_alarm(self, actor, customer_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.AlarmIn, body)
        customer = lc.check_may_raise_alarm(actor, self._customer(customer_id))
        now = self.clock.now()
        doc = {"customer_id": customer_id, "company_name": customer.get("company_name"),
               "owner_id": actor.id, "owner_name": actor.name, "team_id": customer.get("team_id"),
               "reason": data.reason, "raised_at": now, "decision": None, "verified": None,
               "note": None, "new_owner_id": None, "resolved_by": None, "resolved_at": None}
        try:
            alarm = store.insert_alarm(self.db, doc)
        except store.AlarmOpen:
            # A previous owner's alarm still open is no alarm of this owner's.
            current = store.open_alarm_of(self.db, customer_id)
            if current is None or not lc.alarm_overtaken(current, customer):
                raise Conflict("alarm_open", "an alarm on this customer is already open") from None
            self._void_alarm(actor, current, lc.ALARM_OPEN, customer)
            try:
                alarm = store.insert_alarm(self.db, doc)
            except store.AlarmOpen:
                raise Conflict("alarm_open", "an alarm on this customer is already open") from None
        self._audit(customer_id, actor, "alarm_raised", None,
                    {"alarm_id": alarm["_id"], "reason": data.reason}, now)
        self.dispatch("AlarmRaised", event(
            alarm_id=alarm["_id"], customer_id=customer_id,
            company_name=alarm["company_name"], owner_id=actor.id,
            team_id=alarm["team_id"], reason=data.reason, raised_by=actor.id))
        return _alarm_out(alarm)

    @rpc
    def resolve_alarm(self, actor, alarm_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.AlarmResolveIn, body)
        alarm = lc.check_may_resolve_alarm(actor, store.find_alarm(self.db, alarm_id))
        customer = self._customer(alarm["customer_id"])
        if lc.alarm_overtaken(alarm, customer):
            self._void_alarm(actor, alarm, lc.ALARM_OPEN, customer)
            raise _alarm_stale()
        new_owner = None
        if data.new_owner_id:
            new_owner = self.accounts.get_users([data.new_owner_id]).get(data.new_owner_id)
        lc.check_alarm_resolution(actor, alarm, data.decision, data.verified,
                                  data.new_owner_id, new_owner)
        now = self.clock.now()
        resolved = store.resolve_alarm(self.db, alarm_id, {
            "decision": data.decision, "verified": data.verified, "note": data.note,
            "new_owner_id": data.new_owner_id, "resolved_by": actor.id,
            "resolved_by_name": actor.name, "resolved_at": now})
        if resolved is None:
            raise Conflict("alarm_not_open", "the alarm is already resolved")
        customer_id = alarm["customer_id"]
        if data.decision == "reassign":
            def compute(customer):
                _still_owned_by(customer, alarm["owner_id"])
                return self._owner_fields(new_owner, now)

            try:
                before, after = self._update(customer_id, compute)
            except Exception as exc:
                # Open again for another try, unless the customer changed hands
                # since the alarm was read (then, too, when another alarm is open).
                if not _moved(exc) and store.reopen_alarm(self.db, resolved):
                    raise
                self._void_alarm(actor, resolved, lc.ALARM_RESOLVED, self._customer(customer_id))
                raise _alarm_stale() from exc
        self._audit(customer_id, actor, "alarm_resolved", {"alarm_id": alarm_id, "status": "open"},
                    {"alarm_id": alarm_id, "decision": data.decision, "verified": data.verified,
                     "note": data.note, "new_owner_id": data.new_owner_id}, now)
        if data.decision == "reassign":
            self._audit(customer_id, actor, "owner_changed",
                        {"owner_id": before.get("owner_id"), "team_id": before.get("team_id")},
                        {"owner_id": after["owner_id"], "team_id": after.get("team_id"),
                         "reason": "reassign"}, now)
        self.dispatch("AlarmResolved", event(
            alarm_id=alarm_id, customer_id=customer_id, company_name=alarm.get("company_name"),
            owner_id=alarm["owner_id"], team_id=alarm.get("team_id"), reason=alarm["reason"],
            decision=data.decision, note=data.note, verified=data.verified,
            resolved_by=actor.id, new_owner_id=data.new_owner_id))
        if data.decision == "reassign":
            self._owner_changed(before, after, "reassign", actor)
        return _alarm_out(resolved)

    @rpc
    def list_alarms(self, actor, query=None):
        actor = Principal.of(actor)
        q = parse(schemas.ListQuery, query or {})
        filt = _scope_filter(actor, "owner_id")
        if q.status:
            filt["status"] = q.status
        if q.customer_id:
            filt["customer_id"] = q.customer_id
        docs, total, more = store.list_alarms(self.db, filt, q.skip, q.page_size, q.after)
        return _page_out([_alarm_out(d) for d in docs], total, more)

    @rpc
    def abandon_customer(self, actor, customer_id):
        actor = Principal.of(actor)
        customer = self._customer(customer_id)
        usable = None
        if customer is not None:
            usable = lc.abandon_alarm(customer, actor, store.latest_alarm(self.db, customer_id))
        lc.check_may_abandon(actor, customer, usable)
        now = self.clock.now()
        alarm = store.use_alarm(self.db, lc.spend_alarm_filter(usable), now)
        if alarm is None:  # spent by a concurrent abandon
            raise Conflict("alarm_required", "the alarm's abandon decision was already used")

        def compute(current):
            # again on the fresh record: a new alarm raised or an owner change
            # since the first read takes the licence away
            lc.check_may_abandon(actor, current, lc.abandon_alarm(
                current, actor, store.latest_alarm(self.db, customer_id), spending=alarm["_id"]))
            return {"status": lc.POOL, "owner_id": None, "owner_name": None, "team_id": None,
                    "previous_owner_id": current["owner_id"],
                    "previous_team_id": current.get("team_id"), "pooled_at": now}

        try:
            before, after = self._update(customer_id, compute)
        except Exception:
            store.release_alarm(self.db, alarm["_id"])
            raise
        store.insert_abandonment(self.db, before, alarm["_id"], now)
        self._audit(customer_id, actor, "abandoned",
                    {"status": lc.ACTIVE, "owner_id": before["owner_id"],
                     "team_id": before.get("team_id")},
                    {"status": lc.POOL, "owner_id": None, "alarm_id": alarm["_id"]}, now)
        self.dispatch("CustomerAbandoned", event(
            customer_id=customer_id, version=after["version"], owner_id=before["owner_id"],
            team_id=before.get("team_id"), company_name=after.get("company_name"),
            stage=after.get("stage"), expected_value_fen=after.get("expected_value_fen"),
            status=lc.POOL))
        return self._customer_out(after)

    @rpc
    def claim_customer(self, actor, customer_id):
        actor = Principal.of(actor)
        lc.check_may_claim(actor, self._customer(customer_id))
        now = self.clock.now()
        after = store.claim_from_pool(self.db, customer_id, {
            **self._owner_fields(actor.as_dict(), now), "claimed_at": now})
        if after is None:
            raise Conflict("not_in_pool", "someone claimed the customer first")
        self._audit(customer_id, actor, "claimed", {"status": lc.POOL, "owner_id": None},
                    {"status": lc.ACTIVE, "owner_id": actor.id, "team_id": actor.team_id}, now)
        self._owner_changed({"owner_id": None, "team_id": None}, after, "claim", actor)
        return self._customer_out(after)

    # ----------------------------------------------------------- disputes

    @rpc
    def file_dispute(self, actor, customer_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.DisputeIn, body)
        customer = lc.check_may_file_dispute(actor, self._customer(customer_id))
        now = self.clock.now()
        contact = data.contact.model_dump()
        try:
            dispute = store.insert_dispute(self.db, {
                "customer_id": customer_id, "company_name": customer.get("company_name"),
                "claimant_id": actor.id, "claimant_name": actor.name,
                "claimant_team_id": actor.team_id, "owner_id": customer.get("owner_id"),
                "team_id": customer.get("team_id"), "contact": contact, "note": data.note,
                "filed_at": now, "winner_id": None, "resolved_by": None, "resolved_at": None})
        except store.DisputeOpen:
            raise Conflict("dispute_open", "you already have an open dispute on this customer") \
                from None
        self._audit(customer_id, actor, "dispute_filed", None,
                    {"dispute_id": dispute["_id"], "contact": contact, "note": data.note}, now)
        self.dispatch("DisputeFiled", event(
            dispute_id=dispute["_id"], customer_id=customer_id,
            company_name=customer.get("company_name"), claimant_id=actor.id,
            claimant_team_id=actor.team_id, owner_id=customer.get("owner_id"),
            team_id=customer.get("team_id"), contact=contact, note=data.note))
        return _dispute_out(dispute)

    @rpc
    def resolve_dispute(self, actor, dispute_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.DisputeResolveIn, body)
        dispute = lc.check_may_resolve_dispute(actor, store.find_dispute(self.db, dispute_id))
        customer_id = dispute["customer_id"]
        customer = self._customer(customer_id)
        if lc.is_dispute_stale(dispute, customer):
            self._void_dispute(actor, dispute, customer)
            raise _dispute_stale()
        owner_level = (data.owner_level if data.owner_level is not None
                       else lc.best_decision_level(customer.get("contacts")))
        claimant_level = (data.claimant_level if data.claimant_level is not None
                          else dispute["contact"]["decision_level"])
        side = lc.check_dispute_decision(dispute, owner_level, claimant_level, data.winner_id)
        now = self.clock.now()
        resolved = store.resolve_dispute(self.db, dispute_id, {
            "winner_id": data.winner_id, "resolved_by": actor.id, "resolved_by_name": actor.name,
            "resolved_at": now, "resolution_note": data.note, "owner_level": owner_level,
            "claimant_level": claimant_level})
        if resolved is None:
            raise Conflict("dispute_not_open", "the dispute is already resolved")
        before = after = None
        if side == "claimant":
            claimant = {"id": dispute["claimant_id"], "name": dispute.get("claimant_name"),
                        "team_id": dispute.get("claimant_team_id")}
            def compute(current):
                _still_owned_by(current, dispute["owner_id"])
                return self._owner_fields(claimant, now)

            try:
                before, after = self._update(customer_id, compute)
            except Exception as exc:
                # as for an alarm: open again, or void if the customer moved
                if not _moved(exc) and store.reopen_dispute(self.db, dispute):
                    raise
                self._void_dispute(actor, dispute, self._customer(customer_id),
                                   lc.DISPUTE_RESOLVED)
                raise _dispute_stale() from exc
        self._audit(customer_id, actor, "dispute_resolved",
                    {"dispute_id": dispute_id, "owner_id": dispute["owner_id"]},
                    {"dispute_id": dispute_id, "winner_id": data.winner_id,
                     "owner_level": owner_level, "claimant_level": claimant_level,
                     "note": data.note}, now)
        if after is not None:
            self._audit(customer_id, actor, "owner_changed",
                        {"owner_id": before.get("owner_id"), "team_id": before.get("team_id")},
                        {"owner_id": after["owner_id"], "team_id": after.get("team_id"),
                         "reason": "dispute"}, now)
            self._owner_changed(before, after, "dispute", actor)
        return _dispute_out(resolved)

    def _void_alarm(self, actor: Principal, alarm: dict, status: str,
                    customer: dict | None) -> None:
        """Close an alarm overtaken by an owner change (lifecycle.alarm_overtaken)."""
        now = self.clock.now()
        voided = store.void_alarm(self.db, alarm["_id"], status, {
            "resolved_by": actor.id, "resolved_by_name": actor.name, "resolved_at": now,
            "note": "the customer changed hands before the alarm was resolved"})
        if voided is None:
            return  # resolved or voided by someone else meanwhile
        self._audit(alarm["customer_id"], actor, "alarm_voided",
                    {"alarm_id": alarm["_id"], "owner_id": alarm.get("owner_id")},
                    {"alarm_id": alarm["_id"], "owner_id": (customer or {}).get("owner_id"),
                     "status": (customer or {}).get("status")}, now)

    def _void_dispute(self, actor: Principal, dispute: dict, customer: dict | None,
                      status: str = lc.DISPUTE_OPEN) -> None:
        """Close a dispute overtaken by an owner change: left open, it would
        keep its claimant from filing again and answer every resolve with 409."""
        now = self.clock.now()
        voided = store.void_dispute(self.db, dispute["_id"], status, {
            "resolved_by": actor.id, "resolved_by_name": actor.name, "resolved_at": now,
            "resolution_note": "the customer changed hands before the dispute was settled"})
        if voided is None or customer is None:
            return  # settled by someone else meanwhile, or nothing to audit on
        self._audit(customer["_id"], actor, "dispute_voided",
                    {"dispute_id": dispute["_id"], "owner_id": dispute["owner_id"]},
                    {"dispute_id": dispute["_id"], "owner_id": customer.get("owner_id"),
                     "status": customer.get("status")}, now)

    @rpc
    def list_disputes(self, actor, query=None):
        actor = Principal.of(actor)
        q = parse(schemas.ListQuery, query or {})
        if actor.role == "admin":
            filt = {}
        elif actor.role == "manager":
            filt = {"$or": [{"team_id": actor.team_id}, {"claimant_team_id": actor.team_id}]}
        else:
            filt = {"$or": [{"owner_id": actor.id}, {"claimant_id": actor.id}]}
        if q.status:
            filt["status"] = q.status
        if q.customer_id:
            filt["customer_id"] = q.customer_id
        docs, total, more = store.list_disputes(self.db, filt, q.skip, q.page_size, q.after)
        return _page_out([_dispute_out(d) for d in docs], total, more)

    # ------------------------------------------------------------- report

    @rpc
    def integrity_report(self, actor):
        actor = Principal.of(actor)
        lc.report_scope(actor)
        users = self._users_in_scope(actor)
        reps = [u for u in users if u.get("role") == "rep"]
        counts = store.integrity_counts(self.db, [u["id"] for u in users])
        rows = lc.integrity_rows(reps, counts)
        names = {u["id"]: u.get("name") for u in users}
        for row in rows:
            if row["rep"]["name"] is None:
                row["rep"]["name"] = names.get(row["rep"]["id"])
        return {"items": rows, "total": len(rows)}

    def _users_in_scope(self, actor: Principal) -> list[dict]:
        return self.accounts.users_in_scope(actor.as_dict())

    # ---------------------------------------------------------- referrals

    @rpc
    def referrals(self, actor, customer_id, depth=referrals.DEFAULT_DEPTH,
                  limit=referrals.DEFAULT_NODES):
        actor = Principal.of(actor)
        root = lc.check_visible(actor, self._customer(customer_id))
        depth = referrals.clamp(depth, referrals.DEFAULT_DEPTH, referrals.MAX_DEPTH)
        limit = referrals.clamp(limit, referrals.DEFAULT_NODES, referrals.MAX_NODES)
        chain, _ = referrals.collect_ancestors(
            root.get("referred_by"), lambda cid: store.referral_parent(self.db, cid))
        found = referrals.collect_descendants(
            customer_id, lambda ids, room: store.referral_children(self.db, ids, room), depth, limit)
        asked = store.referral_counts(self.db, [*found.count_needed, *(d["_id"] for d in chain)])
        counts = referrals.referred_counts(found, asked)
        def node(d: dict) -> dict:
            return _node(d, lc.may_see(actor, d))

        tree, truncated = referrals.build_tree(root, found, counts, node)
        ancestors = [{**node(d), "referred_count": asked.get(d["_id"], 0)} for d in chain]
        return {"ancestors": ancestors, "tree": tree, "truncated": truncated}

    # -------------------------------------------------------------- audit

    @rpc
    def audit_trail(self, actor, customer_id, page=1, page_size=20, after=None):
        actor = Principal.of(actor)
        customer = lc.check_visible(actor, self._customer(customer_id))
        if not (actor.role == "admin" or lc.is_owner(actor, customer)
                or (actor.role == "manager" and (
                    lc.is_team_manager(actor, customer.get("team_id"))
                    or customer.get("status") == lc.POOL))):
            raise Forbidden("forbidden", "the audit trail is for the owner, his manager and admins")
        paging = parse(schemas.AuditQuery, {"page": page, "page_size": page_size, "after": after})
        after_seq = int(paging.after) if paging.after is not None else None
        docs, total, intact, more = store.audit_trail(self.db, customer_id, paging.skip,
                                                      paging.page_size, after_seq)
        return {"items": [_audit_out(d) for d in docs], "total": total, "intact": intact,
                "next": str(docs[-1]["seq"]) if more else None}

    # ------------------------------------------------------------- export

    @rpc
    def export_deals(self, after_id=None, limit=EXPORT_MAX):
        """Every customer as a deal, ordered by id, for the forecast service to
        rebuild or reconcile its read model; page with `after_id`."""
        limit = max(1, min(int(limit or EXPORT_MAX), EXPORT_MAX))
        docs = store.customers_after(self.db, after_id, limit)
        changes = store.stage_changes_of(self.db, [d["_id"] for d in docs])
        out = []
        for d in docs:
            mine = changes.get(d["_id"], [])
            created_in = mine[0]["from"] if mine else d.get("stage")
            history = [{"at": _iso(d.get("created_at")), "from": None, "to": created_in}]
            history += [{"at": _iso(c["at"]), "from": c["from"], "to": c["to"]} for c in mine]
            out.append({"customer_id": d["_id"], "version": d.get("version"),
                        "owner_id": d.get("owner_id"), "team_id": d.get("team_id"),
                        "stage": d.get("stage"), "expected_value_fen": d.get("expected_value_fen"),
                        "status": d.get("status"), "stage_history": history})
        return out


# ------------------------------------------------------------ answer shapes

def _page_out(items: list[dict], total: int, more: bool) -> dict:
    return {"items": items, "total": total, "next": items[-1]["id"] if more else None}


def _moved(exc: Exception) -> bool:
    """An owner change refused because the customer changed hands meanwhile."""
    return isinstance(exc, Conflict) and exc.code == "owner_changed"


def _dispute_stale() -> Conflict:
    return Conflict("dispute_stale", "the customer changed hands since the dispute was "
                                     "filed; it no longer applies and is closed")


def _alarm_stale() -> Conflict:
    return Conflict("alarm_stale", "the customer changed hands since the alarm was raised; "
                                   "the alarm is closed and the current owner can raise his own")


def _still_owned_by(customer: dict, owner_id: str) -> None:
    if customer.get("owner_id") != owner_id or customer.get("status") != lc.ACTIVE:
        raise Conflict("owner_changed", "the customer changed hands meanwhile")


def _scope_filter(actor: Principal, owner_field: str) -> dict:
    if actor.role == "admin":
        return {}
    if actor.role == "manager":
        return {"team_id": actor.team_id}
    return {owner_field: actor.id}


def _amendment_out(d: dict) -> dict:
    return {"id": d["_id"], "customer_id": d["customer_id"],
            "company_name": d.get("company_name"), "status": d["status"],
            "changes": d.get("asked") or {}, "reason": d["reason"],
            "requested_by": d["requested_by"], "requested_at": _iso(d["requested_at"]),
            "decided_by": d.get("decided_by"), "decided_at": _iso(d.get("decided_at")),
            "note": d.get("note"), "rejected_because": d.get("rejected_because")}


def _alarm_out(d: dict) -> dict:
    return {"id": d["_id"], "customer_id": d["customer_id"],
            "company_name": d.get("company_name"), "owner_id": d.get("owner_id"),
            "team_id": d.get("team_id"), "reason": d["reason"], "status": d["status"],
            "raised_at": _iso(d["raised_at"]), "decision": d.get("decision"),
            "verified": d.get("verified"), "note": d.get("note"),
            "new_owner_id": d.get("new_owner_id"),
            "resolved_by": _user_ref(d.get("resolved_by"), d.get("resolved_by_name")),
            "resolved_at": _iso(d.get("resolved_at"))}


def _dispute_out(d: dict) -> dict:
    return {"id": d["_id"], "customer_id": d["customer_id"],
            "company_name": d.get("company_name"),
            "claimant": _user_ref(d["claimant_id"], d.get("claimant_name")),
            "claimant_team_id": d.get("claimant_team_id"), "owner_id": d.get("owner_id"),
            "team_id": d.get("team_id"), "contact": d["contact"], "note": d.get("note"),
            "status": d["status"], "filed_at": _iso(d["filed_at"]),
            "winner_id": d.get("winner_id"),
            "resolved_by": _user_ref(d.get("resolved_by"), d.get("resolved_by_name")),
            "resolved_at": _iso(d.get("resolved_at")),
            "resolution_note": d.get("resolution_note")}


def _audit_out(d: dict) -> dict:
    return {"seq": d["seq"], "at": _iso(d["at"]), "actor": d.get("actor"),
            "action": d["action"], "before": d.get("before"), "after": d.get("after")}


def _node(d: dict, visible: bool) -> dict:
    """A customer in a referral tree. One the caller may not open shows what a
    duplicate match shows (id, name, owner), not how far its deal has come."""
    owner = _user_ref(d.get("owner_id"), d.get("owner_name"))
    return {"id": d["_id"], "company_name": d.get("company_name"), "owner": owner,
            "stage": d.get("stage") if visible else None, "status": d.get("status"),
            "visible": visible}

