"""PATCH and DELETE of a record, and amendments (修改申请): a rep asks, his
manager approves (the change is applied with the duplicate guard) or rejects."""

from __future__ import annotations

from datetime import timedelta

from services.common.errors import Conflict, Invalid, NotFound
from services.common.events import event
from services.common.principal import Principal
from services.common.validation import parse
from services.customers import rules, schemas, storage, views
from services.customers.entrypoints.base import RecordRpc, rpc
from services.customers.errors import InvalidFields, Refused

APPLY_LEASE = timedelta(seconds=60)  # an approval that died mid-way frees the amendment


class AmendmentRpc(RecordRpc):
    @rpc
    def patch_customer(self, actor, customer_id, body):
        actor = Principal.of(actor)
        rules.check_may_patch(actor, None if actor.role == "rep" else self._customer(customer_id))
        data = parse(schemas.PatchIn, body)
        changes = rules.normalize_changes(data.changes.model_dump(exclude_unset=True))
        rules.require_changes(rules.diff(self._customer(customer_id), changes))

        _, after, diff = self._editor().apply_changes(customer_id, changes)
        if after is None:
            raise Invalid.fields({"changes": "nothing would change"})
        before_vals, after_vals = rules.before_after(diff)
        self._audit(customer_id, actor, "patched", before_vals,
                    {**after_vals, "reason": data.reason})
        self._amended(after, diff, actor)
        return self._customer_out(after)

    @rpc
    def delete_customer(self, actor, customer_id):
        rules.refuse_delete(Principal.of(actor))

    @rpc
    def request_amendment(self, actor, customer_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.AmendmentIn, body)
        customer = rules.check_may_amend(actor, self._customer(customer_id))
        asked = data.changes.model_dump(exclude_unset=True)
        changes = rules.normalize_changes(asked)
        diff = rules.diff(customer, changes)
        rules.require_changes(diff)
        if "referred_by" in diff:
            self._editor().check_referrer(customer_id, changes["referred_by"])
        self._editor().precheck_keys(customer, diff)
        now = self.clock.now()
        amendment = storage.insert_amendment(self.db, {
            "customer_id": customer_id, "company_name": customer.get("company_name"),
            "owner_id": actor.id, "team_id": customer.get("team_id"), "asked": asked,
            "changes": changes, "reason": data.reason, "status": rules.AMENDMENT_PENDING,
            "requested_by": {"id": actor.id, "name": actor.name}, "requested_at": now,
            "decided_by": None, "decided_at": None, "note": None, "rejected_because": None})
        before_vals, after_vals = rules.before_after(diff)
        self._audit(customer_id, actor, "amendment_requested", before_vals,
                    {**after_vals, "amendment_id": amendment["_id"], "reason": data.reason}, now)
        self.dispatch("AmendmentRequested", event(
            amendment_id=amendment["_id"], customer_id=customer_id,
            company_name=customer.get("company_name"), owner_id=actor.id,
            team_id=customer.get("team_id"), fields=sorted(diff), reason=data.reason,
            requested_by=actor.id))
        return views.amendment_out(amendment)

    def _decidable(self, actor: Principal, amendment_id: str) -> tuple[dict, dict]:
        amendment = storage.find_amendment(self.db, amendment_id)
        if amendment is None:
            raise NotFound("not_found", "amendment not found")
        customer = self._customer(amendment["customer_id"])
        rules.check_may_decide_amendment(actor, customer)
        return amendment, customer

    @rpc
    def approve_amendment(self, actor, amendment_id, body=None):
        actor = Principal.of(actor)
        data = parse(schemas.DecisionIn, body or {})
        amendment, _ = self._decidable(actor, amendment_id)
        now = self.clock.now()
        if storage.start_applying(self.db, amendment_id, actor.id, now, APPLY_LEASE) is None:
            rules.check_amendment_pending(storage.find_amendment(self.db, amendment_id))
            raise Conflict("amendment_not_pending", "the amendment is being decided")
        decided = {"decided_by": {"id": actor.id, "name": actor.name}, "decided_at": now,
                   "note": data.note}
        customer_id = amendment["customer_id"]
        try:
            _, after, diff = self._editor().apply_changes(customer_id, amendment["changes"], amendment)
        except (InvalidFields, Refused, Conflict) as exc:  # Conflict: storage's "busy"
            if exc.code == "busy":
                storage.finish_amendment(self.db, amendment_id, rules.AMENDMENT_APPLYING,
                                       {"status": rules.AMENDMENT_PENDING})
                raise
            # the record moved on (a key taken, a referral cycle): this
            # amendment can no longer be applied as asked
            storage.finish_amendment(self.db, amendment_id, rules.AMENDMENT_APPLYING, {
                **decided, "status": rules.AMENDMENT_REJECTED, "rejected_because": exc.code})
            self._audit(customer_id, actor, "amendment_refused", None,
                        {"amendment_id": amendment_id, "because": exc.code,
                         "message": exc.message}, now)
            raise
        except BaseException:
            storage.finish_amendment(self.db, amendment_id, rules.AMENDMENT_APPLYING,
                                   {"status": rules.AMENDMENT_PENDING})
            raise
        done = storage.finish_amendment(self.db, amendment_id, rules.AMENDMENT_APPLYING, {
            **decided, "status": rules.AMENDMENT_APPROVED, "applied": diff,
            "version": after["version"] if after else None})
        before_vals, after_vals = rules.before_after(diff)
        self._audit(customer_id, actor, "amendment_approved", before_vals,
                    {**after_vals, "amendment_id": amendment_id, "reason": amendment["reason"],
                     "note": data.note}, now)
        if after is not None:
            self._amended(after, diff, actor)
        return views.amendment_out(done or storage.find_amendment(self.db, amendment_id))

    @rpc
    def reject_amendment(self, actor, amendment_id, body=None):
        actor = Principal.of(actor)
        data = parse(schemas.DecisionIn, body or {})
        amendment, _ = self._decidable(actor, amendment_id)
        now = self.clock.now()
        done = storage.finish_amendment(self.db, amendment_id, rules.AMENDMENT_PENDING, {
            "status": rules.AMENDMENT_REJECTED, "decided_by": {"id": actor.id, "name": actor.name},
            "decided_at": now, "note": data.note, "rejected_because": "rejected"})
        if done is None:
            rules.check_amendment_pending(storage.find_amendment(self.db, amendment_id))
            raise Conflict("amendment_not_pending", "the amendment is being decided")
        self._audit(amendment["customer_id"], actor, "amendment_rejected", None,
                    {"amendment_id": amendment_id, "note": data.note}, now)
        return views.amendment_out(done)

    @rpc
    def list_amendments(self, actor, query=None):
        actor = Principal.of(actor)
        q = parse(schemas.ListQuery, query or {})
        filt = views.list_filter(views.scope_filter(actor), q)
        docs, total, more = storage.list_amendments(self.db, filt, q.skip, q.page_size, q.after)
        return views.page_out([views.amendment_out(d) for d in docs], total, more)
