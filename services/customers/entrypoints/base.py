"""What every customers entrypoint shares: `rpc` (domain errors mapped to RPC
errors), the dependencies, the audit append,
the OwnerChanged and CustomerAmended events, and the service layer
(`editing.RecordEditor`) bound to this worker's database and clock.

Order of every change: the conditional write (the one place a race is
decided), then the audit entry, then the event, so an event never announces a
change that lost its race.
"""

from __future__ import annotations

from services.common.events import event
from services.common.mongo import Mongo
from services.common.principal import Principal
from services.common.rpc import Rpc
from services.common.service import ServiceBase, rpc_mapping
from services.customers import domain, rules, storage
from services.customers.editing import RecordEditor
from services.customers.errors import CustomerError, to_rpc

# nameko's rpc, with the customers domain's errors mapped to typed RPC errors
rpc = rpc_mapping(CustomerError, to_rpc)


class RecordRpc(ServiceBase):
    db = Mongo()
    accounts = Rpc("accounts")

    def _editor(self) -> RecordEditor:
        return RecordEditor(self.db, self.clock, storage)

    def _customer(self, customer_id: str) -> dict | None:
        return storage.find_customer(self.db, customer_id)

    def _audit(self, customer_id, actor: Principal | None, action, before, after, at=None):
        storage.append_audit(self.db, customer_id, actor.as_dict() if actor else None, action,
                             before, after, at or self.clock.now())

    def _customer_out(self, doc: dict) -> dict:
        return domain.public_customer(doc)

    def current_stages(self) -> list[dict]:
        """The stage list create validates against."""
        return storage.get_stages(self.db)

    def _owner_changed(self, before: dict, after: dict, reason: str, actor: Principal,
                       event_id: str | None = None):
        payload = event(
            customer_id=after["_id"], version=after["version"],
            old_owner_id=before.get("owner_id"), new_owner_id=after.get("owner_id"),
            old_team_id=before.get("team_id"), new_team_id=after.get("team_id"),
            reason=reason, company_name=after.get("company_name"), stage=after.get("stage"),
            expected_value_fen=after.get("expected_value_fen"), status=after.get("status"),
            birthday=after.get("birthday"), birthday_label=after.get("birthday_label"),
            birthday_kind=after.get("birthday_kind"), changed_by=actor.id)
        if event_id:  # a resumable job's: the same move, the same event
            payload["event_id"] = event_id
        self.dispatch("OwnerChanged", payload)

    def _void_dispute(self, actor: Principal, dispute: dict, customer: dict | None,
                      status: str = rules.DISPUTE_OPEN) -> None:
        """Close a dispute overtaken by an owner change (a resolve that finds it
        stale, a handover): left open, it would
        keep its claimant from filing again and answer every resolve with 409."""
        now = self.clock.now()
        voided = storage.void_dispute(self.db, dispute["_id"], status, {
            "resolved_by": actor.id, "resolved_by_name": actor.name, "resolved_at": now,
            "resolution_note": "the customer changed hands before the dispute was settled"})
        if voided is None or customer is None:
            return  # settled by someone else meanwhile, or nothing to audit on
        self._audit(customer["_id"], actor, "dispute_voided",
                    {"dispute_id": dispute["_id"], "owner_id": dispute["owner_id"]},
                    {"dispute_id": dispute["_id"], "owner_id": customer.get("owner_id"),
                     "status": customer.get("status")}, now)

    def _owner_fields(self, user: dict, now) -> dict:
        # owner_since: an alarm raised before it is no licence for the new owner
        return {"owner_id": user["id"], "owner_name": user.get("name"),
                "team_id": user.get("team_id"), "status": rules.ACTIVE, "owner_since": now}

    def _amended(self, after: dict, diff: dict, actor: Principal) -> None:
        self.dispatch("CustomerAmended", event(
            customer_id=after["_id"], version=after["version"], changes=diff,
            **rules.snapshot(after), amended_by=actor.id))
