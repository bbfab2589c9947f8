"""The pipeline's stages: the list (admins define it) and a customer's stage."""

from __future__ import annotations

from services.common.events import event
from services.common.principal import Principal, require_admin
from services.common.validation import parse
from services.customers import rules, schemas, stages, storage
from services.customers.entrypoints.base import RecordRpc, rpc


class StageRpc(RecordRpc):
    @rpc
    def get_stages(self, actor=None):
        return stages.public(storage.get_stages(self.db))

    @rpc
    def put_stages(self, actor, body):
        actor = Principal.of(actor)
        require_admin(actor, "defines the stages")
        items = [s.model_dump() for s in parse(schemas.StagesIn, body).root]
        new = stages.validate(items)
        doc = storage.put_stages(self.db, new, actor.id, self.clock.now())
        out = stages.public(doc["stages"])
        self.dispatch("StagesChanged", event(stages=out, version=doc["version"],
                                             changed_by=actor.id))
        return out

    @rpc
    def change_stage(self, actor, customer_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.StageIn, body)
        defined = storage.get_stages(self.db)
        rules.check_may_change_stage(actor, self._customer(customer_id))
        stages.check_stage(defined, data.stage)
        moved = {}

        def compute(customer):
            rules.check_may_change_stage(actor, customer)
            if customer.get("stage") == data.stage:
                return None  # already there: no change, no event
            moved["from"] = customer.get("stage")
            return {"stage": data.stage}

        now = self.clock.now()
        before, after = self._editor().update(customer_id, compute)
        if after is None:
            return self._customer_out(before)
        storage.insert_stage_change(self.db, customer_id, now, moved["from"], data.stage, actor.id,
                                  after["version"], data.note)
        self._audit(customer_id, actor, "stage_changed", {"stage": moved["from"]},
                    {"stage": data.stage, "note": data.note}, now)
        self.dispatch("StageChanged", event(
            customer_id=customer_id, version=after["version"], **{"from": moved["from"]},
            to=data.stage, expected_value_fen=after.get("expected_value_fen"),
            owner_id=after.get("owner_id"), team_id=after.get("team_id"), changed_by=actor.id,
            note=data.note))
        return self._customer_out(after)
