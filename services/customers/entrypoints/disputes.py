"""Disputes (归属申诉): a rep who lost a claim files one; a manager settles it
by the decision power of each side's contact."""

from __future__ import annotations

from services.common.errors import Conflict
from services.common.events import event
from services.common.principal import Principal
from services.common.validation import parse
from services.customers import rules, schemas, storage, views
from services.customers.entrypoints.base import RecordRpc, rpc


class DisputeRpc(RecordRpc):
    @rpc
    def file_dispute(self, actor, customer_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.DisputeIn, body)
        customer = rules.check_may_file_dispute(actor, self._customer(customer_id))
        now = self.clock.now()
        contact = data.contact.model_dump()
        try:
            dispute = storage.insert_dispute(self.db, {
                "customer_id": customer_id, "company_name": customer.get("company_name"),
                "claimant_id": actor.id, "claimant_name": actor.name,
                "claimant_team_id": actor.team_id, "owner_id": customer.get("owner_id"),
                "team_id": customer.get("team_id"), "contact": contact, "note": data.note,
                "filed_at": now, "winner_id": None, "resolved_by": None, "resolved_at": None})
        except storage.DisputeOpen:
            raise Conflict("dispute_open", "you already have an open dispute on this customer") \
                from None
        self._audit(customer_id, actor, "dispute_filed", None,
                    {"dispute_id": dispute["_id"], "contact": contact, "note": data.note}, now)
        self.dispatch("DisputeFiled", event(
            dispute_id=dispute["_id"], customer_id=customer_id,
            company_name=customer.get("company_name"), claimant_id=actor.id,
            claimant_team_id=actor.team_id, owner_id=customer.get("owner_id"),
            team_id=customer.get("team_id"), contact=contact, note=data.note))
        return views.dispute_out(dispute)

    @rpc
    def resolve_dispute(self, actor, dispute_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.DisputeResolveIn, body)
        dispute = rules.check_may_resolve_dispute(actor, storage.find_dispute(self.db, dispute_id))
        customer_id = dispute["customer_id"]
        customer = self._customer(customer_id)
        if rules.is_dispute_stale(dispute, customer):
            self._void_dispute(actor, dispute, customer)
            raise rules.dispute_stale()
        owner_level = (data.owner_level if data.owner_level is not None
                       else rules.best_decision_level(customer.get("contacts")))
        claimant_level = (data.claimant_level if data.claimant_level is not None
                          else dispute["contact"]["decision_level"])
        side = rules.check_dispute_decision(dispute, owner_level, claimant_level, data.winner_id)
        now = self.clock.now()
        resolved = storage.resolve_dispute(self.db, dispute_id, {
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
                rules.check_still_owned_by(current, dispute["owner_id"])
                return self._owner_fields(claimant, now)

            try:
                before, after = self._editor().update(customer_id, compute)
            except Exception as exc:
                # as for an alarm: open again, or void if the customer moved
                if not rules.moved(exc) and storage.reopen_dispute(self.db, dispute):
                    raise
                self._void_dispute(actor, dispute, self._customer(customer_id),
                                   rules.DISPUTE_RESOLVED)
                raise rules.dispute_stale() from exc
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
        return views.dispute_out(resolved)

    @rpc
    def list_disputes(self, actor, query=None):
        actor = Principal.of(actor)
        q = parse(schemas.ListQuery, query or {})
        filt = views.list_filter(views.dispute_filter(actor), q)
        docs, total, more = storage.list_disputes(self.db, filt, q.skip, q.page_size, q.after)
        return views.page_out([views.dispute_out(d) for d in docs], total, more)
