"""Difficulty alarms (困难报警), abandoning a customer to the pool (公海) with
an alarm's licence, and claiming one from the pool."""

from __future__ import annotations

from services.common.errors import Conflict
from services.common.events import event
from services.common.principal import Principal
from services.common.validation import parse
from services.customers import reads, rules, schemas, storage, views
from services.customers.entrypoints.base import RecordRpc, rpc


class AlarmRpc(RecordRpc):
    @rpc
    def raise_alarm(self, actor, customer_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.AlarmIn, body)
        customer = rules.check_may_raise_alarm(actor, self._customer(customer_id))
        now = self.clock.now()
        doc = {"customer_id": customer_id, "company_name": customer.get("company_name"),
               "owner_id": actor.id, "owner_name": actor.name, "team_id": customer.get("team_id"),
               "reason": data.reason, "raised_at": now, "decision": None, "verified": None,
               "note": None, "new_owner_id": None, "resolved_by": None, "resolved_at": None}
        try:
            alarm = storage.insert_alarm(self.db, doc)
        except storage.AlarmOpen:
            # A previous owner's alarm still open is no alarm of this owner's.
            current = storage.open_alarm_of(self.db, customer_id)
            if current is None or not rules.alarm_overtaken(current, customer):
                raise Conflict("alarm_open", "an alarm on this customer is already open") from None
            self._void_alarm(actor, current, rules.ALARM_OPEN, customer)
            try:
                alarm = storage.insert_alarm(self.db, doc)
            except storage.AlarmOpen:
                raise Conflict("alarm_open", "an alarm on this customer is already open") from None
        self._audit(customer_id, actor, "alarm_raised", None,
                    {"alarm_id": alarm["_id"], "reason": data.reason}, now)
        self.dispatch("AlarmRaised", event(
            alarm_id=alarm["_id"], customer_id=customer_id,
            company_name=alarm["company_name"], owner_id=actor.id,
            team_id=alarm["team_id"], reason=data.reason, raised_by=actor.id))
        return views.alarm_out(alarm)

    @rpc
    def resolve_alarm(self, actor, alarm_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.AlarmResolveIn, body)
        alarm = rules.check_may_resolve_alarm(actor, storage.find_alarm(self.db, alarm_id))
        customer = self._customer(alarm["customer_id"])
        if rules.alarm_overtaken(alarm, customer):
            self._void_alarm(actor, alarm, rules.ALARM_OPEN, customer)
            raise rules.alarm_stale()
        new_owner = None
        if data.new_owner_id:
            new_owner = self.accounts.get_users([data.new_owner_id]).get(data.new_owner_id)
        rules.check_alarm_resolution(actor, alarm, data.decision, data.verified,
                                  data.new_owner_id, new_owner)
        now = self.clock.now()
        resolved = storage.resolve_alarm(self.db, alarm_id, {
            "decision": data.decision, "verified": data.verified, "note": data.note,
            "new_owner_id": data.new_owner_id, "resolved_by": actor.id,
            "resolved_by_name": actor.name, "resolved_at": now})
        if resolved is None:
            raise Conflict("alarm_not_open", "the alarm is already resolved")
        customer_id = alarm["customer_id"]
        if data.decision == "reassign":
            def compute(customer):
                rules.check_still_owned_by(customer, alarm["owner_id"])
                return self._owner_fields(new_owner, now)

            try:
                before, after = self._editor().update(customer_id, compute)
            except Exception as exc:
                # Open again for another try, unless the customer changed hands
                # since the alarm was read (then, too, when another alarm is open).
                if not rules.moved(exc) and storage.reopen_alarm(self.db, resolved):
                    raise
                self._void_alarm(actor, resolved, rules.ALARM_RESOLVED, self._customer(customer_id))
                raise rules.alarm_stale() from exc
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
        return views.alarm_out(resolved)

    def _void_alarm(self, actor: Principal, alarm: dict, status: str,
                    customer: dict | None) -> None:
        """Close an alarm overtaken by an owner change (rules.alarm_overtaken)."""
        now = self.clock.now()
        voided = storage.void_alarm(self.db, alarm["_id"], status, {
            "resolved_by": actor.id, "resolved_by_name": actor.name, "resolved_at": now,
            "note": "the customer changed hands before the alarm was resolved"})
        if voided is None:
            return  # resolved or voided by someone else meanwhile
        self._audit(alarm["customer_id"], actor, "alarm_voided",
                    {"alarm_id": alarm["_id"], "owner_id": alarm.get("owner_id")},
                    {"alarm_id": alarm["_id"], "owner_id": (customer or {}).get("owner_id"),
                     "status": (customer or {}).get("status")}, now)

    @rpc
    def list_alarms(self, actor, query=None):
        actor = Principal.of(actor)
        q = parse(schemas.ListQuery, query or {})
        filt = views.list_filter(views.scope_filter(actor), q)
        docs, total, more = storage.list_alarms(self.db, filt, q.skip, q.page_size, q.after)
        return views.page_out([views.alarm_out(d) for d in docs], total, more)

    @rpc
    def abandon_customer(self, actor, customer_id):
        actor = Principal.of(actor)
        customer = self._customer(customer_id)
        usable = None
        if customer is not None:
            usable = rules.abandon_alarm(customer, actor, storage.latest_alarm(self.db, customer_id))
        rules.check_may_abandon(actor, customer, usable)
        now = self.clock.now()
        alarm = storage.use_alarm(self.db, rules.spend_alarm_filter(usable), now)
        if alarm is None:  # spent by a concurrent abandon
            raise Conflict("alarm_required", "the alarm's abandon decision was already used")

        def compute(current):
            # again on the fresh record: a new alarm raised or an owner change
            # since the first read takes the licence away
            rules.check_may_abandon(actor, current, rules.abandon_alarm(
                current, actor, storage.latest_alarm(self.db, customer_id), spending=alarm["_id"]))
            return {"status": rules.POOL, "owner_id": None, "owner_name": None, "team_id": None,
                    "previous_owner_id": current["owner_id"],
                    "previous_team_id": current.get("team_id"), "pooled_at": now,
                    "abandoned": reads.abandoned_fields(alarm, actor, now)}

        try:
            before, after = self._editor().update(customer_id, compute)
        except Exception:
            storage.release_alarm(self.db, alarm["_id"])
            raise
        storage.insert_abandonment(self.db, before, alarm["_id"], now)
        self._audit(customer_id, actor, "abandoned",
                    {"status": rules.ACTIVE, "owner_id": before["owner_id"],
                     "team_id": before.get("team_id")},
                    {"status": rules.POOL, "owner_id": None, "alarm_id": alarm["_id"]}, now)
        self.dispatch("CustomerAbandoned", event(
            customer_id=customer_id, version=after["version"], owner_id=before["owner_id"],
            team_id=before.get("team_id"), company_name=after.get("company_name"),
            stage=after.get("stage"), expected_value_fen=after.get("expected_value_fen"),
            status=rules.POOL))
        return self._customer_out(after)

    @rpc
    def claim_customer(self, actor, customer_id):
        actor = Principal.of(actor)
        rules.check_may_claim(actor, self._customer(customer_id))
        now = self.clock.now()
        after = storage.claim_from_pool(self.db, customer_id, {
            **self._owner_fields(actor.as_dict(), now), "claimed_at": now})
        if after is None:
            raise Conflict("not_in_pool", "someone claimed the customer first")
        self._audit(customer_id, actor, "claimed", {"status": rules.POOL, "owner_id": None},
                    {"status": rules.ACTIVE, "owner_id": actor.id, "team_id": actor.team_id}, now)
        self._owner_changed({"owner_id": None, "team_id": None}, after, "claim", actor)
        return self._customer_out(after)
