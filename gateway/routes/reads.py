"""Routes of "reads are records too" (API.md, Staff and the data-leak guard):
the customer export, the read limits, the reads report. Opening a customer
(GET /api/customers/{id}, logged and counted) is in routes/customers.py."""

from __future__ import annotations

import eventlet
from werkzeug.wrappers import Response

from gateway import exports
from gateway.http import Call, route
from services.common.clock import now
from services.customers import schemas as s

EXPORT_PAGE = 500


class ReadRoutes:
    @route("GET", "/api/customers/export", roles=("manager", "admin"), query=s.ExportQuery,
           tag="customers",
           summary="The customers as a file (?format=xlsx|csv): a manager his team's, an admin "
                   "all; a rep gets 403. The file says who exported it and when (a first line, "
                   "the workbook's properties); each page read is in the read log and the "
                   "export is audited")
    def export_customers(self, call: Call, query):
        actor = call.actor
        at = now()
        me = self.accounts.me(actor)
        tz = me.get("timezone") or (me.get("settings") or {}).get("timezone")
        out = exports.writer(query.format, call.user.name or call.user.username,
                             call.user.username, at, tz)
        run = self.customers.start_export(actor, query.format)
        try:
            after = None
            while True:
                page = self.customers.export_page(actor, run["id"], after, EXPORT_PAGE)
                for customer in page["items"]:
                    out.add(customer)
                after = page["next"]
                if after is None:
                    break
                eventlet.sleep(0)  # a big export lets the gateway's other requests through
        finally:
            # audited with what was read, even when the file never left
            self.customers.finish_export(actor, run["id"])
        name = exports.filename(query.format, at, tz)
        return Response(out.finish(), status=200, content_type=out.content_type, headers={
            "Content-Disposition": exports.content_disposition(name),
            "Cache-Control": "no-store", "X-Export-Count": str(out.count)})

    @route("GET", "/api/settings/reads", roles=("manager", "admin"), response=s.ReadSettings,
           tag="settings",
           summary="How many different customers a rep and a manager may open per hour "
                   "(defaults 60 and 300; an admin has no limit)")
    def get_read_settings(self, call: Call):
        return self.customers.get_read_settings(call.actor)

    @route("PUT", "/api/settings/reads", roles=("admin",), body=s.ReadSettings,
           response=s.ReadSettings, tag="settings",
           summary="Set the hourly limits of customers opened; the next open counts against "
                   "them (no restart). Past the limit GET /api/customers/{id} answers 429 "
                   "read_limit until the hour ends")
    def put_read_settings(self, call: Call, body):
        return self.customers.put_read_settings(call.actor, body.model_dump())

    @route("GET", "/api/reports/reads", roles=("manager", "admin"), query=s.ReadReportQuery,
           response=s.ReadReport, tag="reports",
           summary="The read log (who opened, listed or exported which customers, when, from "
                   "where), newest first: a manager his team's, an admin all; with the "
                   "bulk-read alerts (alerts) of the same users and window")
    def read_report(self, call: Call, query):
        return self.customers.read_report(
            call.actor, query.model_dump(mode="json", by_alias=True, exclude_none=True))
