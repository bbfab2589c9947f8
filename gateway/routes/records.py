"""Routes of a customer record's later life (API.md): PATCH and DELETE,
amendments, the audit trail, alarms, the public pool, disputes, stages,
referrals, the integrity report."""

from __future__ import annotations

from gateway.http import ROUTES, Call, body_text, parse_body, route
from services.customers import schemas as s
from services.customers.schemas import Customer


def _document_body(model, required: bool = True) -> None:
    """Show a body in the OpenAPI document that the route parses itself:
    PATCH must answer a rep 403 before it could answer 422 about his body;
    approve and reject take an optional one."""
    ROUTES[-1].body = model
    ROUTES[-1].body_required = required


def _optional_body(call: Call, model):
    """Approve and reject take an optional note: no body is no note."""
    request = call.request
    if not request.content_length and request.headers.get("Transfer-Encoding") != "chunked":
        return model()
    return parse_body(request, model)


class RecordRoutes:
    # ------------------------------------------------------ immutability

    @route("PATCH", "/api/customers/{id}", response=Customer, tag="customers",
           summary="Correct a customer record (manager, admin; a rep gets 403 "
                   "records_are_immutable and asks for an amendment)")
    def patch_customer(self, call: Call, id):
        # customers answers a rep 403 before it looks at the body
        return self.customers.patch_customer(call.actor, id, body_text(call.request))

    _document_body(s.PatchIn)

    @route("DELETE", "/api/customers/{id}", tag="customers",
           summary="Refused for everyone (403): nothing is ever deleted")
    def delete_customer(self, call: Call, id):
        return self.customers.delete_customer(call.actor, id)

    @route("POST", "/api/customers/{id}/amendments", body=s.AmendmentIn, response=s.Amendment,
           status=201, tag="customers",
           summary="The owner asks his manager to correct the record")
    def request_amendment(self, call: Call, id, body):
        return self.customers.request_amendment(call.actor, id, body.model_dump(exclude_unset=True))

    @route("GET", "/api/amendments", query=s.ListQuery, response=s.AmendmentList,
           tag="customers",
           summary="Amendments (?status=pending): a manager his team's, an admin all, a rep his")
    def list_amendments(self, call: Call, query):
        return self.customers.list_amendments(call.actor, query.model_dump(exclude_none=True))

    @route("POST", "/api/amendments/{id}/approve", roles=("manager", "admin"),
           response=s.Amendment, tag="customers",
           summary="Approve: the changes are applied (through the duplicate guard) and audited")
    def approve_amendment(self, call: Call, id):
        body = _optional_body(call, s.DecisionIn)
        return self.customers.approve_amendment(call.actor, id, body.model_dump())

    _document_body(s.DecisionIn, required=False)

    @route("POST", "/api/amendments/{id}/reject", roles=("manager", "admin"),
           response=s.Amendment, tag="customers", summary="Reject an amendment")
    def reject_amendment(self, call: Call, id):
        body = _optional_body(call, s.DecisionIn)
        return self.customers.reject_amendment(call.actor, id, body.model_dump())

    _document_body(s.DecisionIn, required=False)

    # ------------------------------------------------------------ stages

    @route("POST", "/api/customers/{id}/stage", body=s.StageIn, response=Customer,
           tag="customers", summary="The owner moves the customer to a stage of the list")
    def change_stage(self, call: Call, id, body):
        return self.customers.change_stage(call.actor, id, body.model_dump())

    @route("GET", "/api/stages", response=list[s.Stage], tag="forecast",
           summary="The pipeline's stages: [{stage, label, probability (percent), active}]")
    def get_stages(self, call: Call):
        return self.customers.get_stages(call.actor)

    @route("PUT", "/api/stages", roles=("admin",), response=list[s.Stage], tag="forecast",
           summary="Redefine the stages (admin); customers in a removed stage keep it")
    def put_stages(self, call: Call):
        body = parse_body(call.request, s.StagesIn)
        return self.customers.put_stages(call.actor, body.model_dump())

    _document_body(s.StagesIn)

    # ------------------------------------------------------------ alarms

    @route("POST", "/api/customers/{id}/alarms", body=s.AlarmIn, response=s.Alarm, status=201,
           tag="customers", summary="The owner raises a difficulty alarm (困难报警)")
    def raise_alarm(self, call: Call, id, body):
        return self.customers.raise_alarm(call.actor, id, body.model_dump())

    @route("GET", "/api/alarms", query=s.ListQuery, response=s.AlarmList, tag="customers",
           summary="Alarms (?status=open): a manager his team's, an admin all, a rep his")
    def list_alarms(self, call: Call, query):
        return self.customers.list_alarms(call.actor, query.model_dump(exclude_none=True))

    @route("POST", "/api/alarms/{id}/resolve", roles=("manager", "admin"),
           body=s.AlarmResolveIn, response=s.Alarm, tag="customers",
           summary="The owner's manager decides: continue, reassign (to a rep) or abandon")
    def resolve_alarm(self, call: Call, id, body):
        return self.customers.resolve_alarm(call.actor, id, body.model_dump())

    @route("POST", "/api/customers/{id}/abandon", response=Customer, tag="customers",
           summary="The owner gives the customer up to the public pool; 409 alarm_required "
                   "unless an alarm on it was resolved with abandon")
    def abandon(self, call: Call, id):
        return self.customers.abandon_customer(call.actor, id)

    @route("POST", "/api/customers/{id}/claim", roles=("rep",), response=Customer,
           tag="customers", summary="A rep takes a customer from the public pool (公海)")
    def claim(self, call: Call, id):
        return self.customers.claim_customer(call.actor, id)

    @route("GET", "/api/reports/integrity", roles=("manager", "admin"),
           response=s.IntegrityReport, tag="reports",
           summary="Per rep: customers, alarms, abandoned, verified fake")
    def integrity_report(self, call: Call):
        return self.customers.integrity_report(call.actor)

    # ---------------------------------------------------------- disputes

    @route("POST", "/api/customers/{id}/disputes", roles=("rep",), body=s.DisputeIn,
           response=s.Dispute, status=201, tag="customers",
           summary="A rep who lost a claim names his contact and its decision level (争单)")
    def file_dispute(self, call: Call, id, body):
        return self.customers.file_dispute(call.actor, id, body.model_dump())

    @route("GET", "/api/disputes", query=s.ListQuery, response=s.DisputeList, tag="customers",
           summary="Disputes: a manager his team's, an admin all, a rep his own")
    def list_disputes(self, call: Call, query):
        return self.customers.list_disputes(call.actor, query.model_dump(exclude_none=True))

    @route("POST", "/api/disputes/{id}/resolve", roles=("manager", "admin"),
           body=s.DisputeResolveIn, response=s.Dispute, tag="customers",
           summary="Settle a dispute: the contact with more decision power wins")
    def resolve_dispute(self, call: Call, id, body):
        return self.customers.resolve_dispute(call.actor, id, body.model_dump())

    # --------------------------------------------------- referrals, audit

    @route("GET", "/api/customers/{id}/referrals", query=s.ReferralQuery, response=s.Referrals,
           tag="customers",
           summary="Who referred it (ancestors) and whom it referred (a bounded tree)")
    def referrals(self, call: Call, id, query):
        return self.customers.referrals(call.actor, id, query.depth, query.limit)

    @route("GET", "/api/customers/{id}/audit", query=s.AuditQuery, response=s.AuditOut,
           tag="customers",
           summary="The audit trail, oldest first; intact is false when the chain is broken")
    def audit(self, call: Call, id, query):
        return self.customers.audit_trail(call.actor, id, query.page, query.page_size, query.after)

