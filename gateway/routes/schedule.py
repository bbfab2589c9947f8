"""Routes of the schedule part of API.md: reminders, revisits and the inbox
(the live stream is `stream.py`)."""

from __future__ import annotations

from gateway.http import Call, route
from services.notify import schemas as notify_schemas
from services.scheduler import schemas


class ScheduleRoutes:
    # ------------------------------------------------------------------
    # reminders

    @route("POST", "/api/reminders", body=schemas.ReminderIn, response=schemas.Reminder,
           status=201, tag="schedule",
           summary="A reminder of one's own; escalate_after_minutes defaults to the user's "
                   "setting (null in the answer), may be fractional, 0 = never an SMS")
    def create_reminder(self, call: Call, body):
        return self.scheduler.create_reminder(call.actor, body.model_dump(mode="json"))

    @route("GET", "/api/reminders", query=schemas.ReminderQuery, response=schemas.ReminderList,
           tag="schedule", summary="One's own reminders by due time; ?from=&to=&status=&kind=")
    def list_reminders(self, call: Call, query):
        return self.scheduler.list_reminders(
            call.actor, query.model_dump(mode="json", by_alias=True, exclude_none=True))

    @route("GET", "/api/reminders/{id}", response=schemas.Reminder, tag="schedule",
           summary="One of one's own reminders")
    def get_reminder(self, call: Call, id):  # noqa: A002 - the path parameter's name
        return self.scheduler.get_reminder(call.actor, id)

    @route("PATCH", "/api/reminders/{id}", body=schemas.ReminderPatch,
           response=schemas.Reminder, tag="schedule",
           summary="Change one's own reminder while it is pending (409 otherwise)")
    def update_reminder(self, call: Call, id, body):  # noqa: A002
        return self.scheduler.update_reminder(
            call.actor, id, body.model_dump(mode="json", include=body.model_fields_set))

    @route("DELETE", "/api/reminders/{id}", response=schemas.Reminder, tag="schedule",
           summary="Cancel one's own pending reminder (kept, status cancelled)")
    def cancel_reminder(self, call: Call, id):  # noqa: A002
        return self.scheduler.cancel_reminder(call.actor, id)

    @route("POST", "/api/customers/{id}/revisits", body=schemas.RevisitIn,
           response=schemas.Reminder, status=201, tag="schedule",
           summary="Plan a revisit (回访) of one's own customer with the contact to call")
    def create_revisit(self, call: Call, id, body):  # noqa: A002
        return self.scheduler.create_revisit(call.actor, id, body.model_dump(mode="json"))

    # ------------------------------------------------------------------
    # the inbox

    @route("GET", "/api/notifications", query=notify_schemas.NotificationQuery,
           response=notify_schemas.NotificationList, tag="schedule",
           summary="One's inbox, newest first; ?unread=true; `sms` shows the escalation")
    def list_notifications(self, call: Call, query):
        return self.notify.list_notifications(call.actor, query.model_dump(exclude_none=True))

    @route("POST", "/api/notifications/{id}/ack", response=notify_schemas.Notification,
           tag="schedule", summary="Acknowledge: stops the SMS escalation (idempotent)")
    def acknowledge_notification(self, call: Call, id):  # noqa: A002
        return self.notify.acknowledge(call.actor, id)

    @route("POST", "/api/notifications/{id}/read", response=notify_schemas.Notification,
           tag="schedule", summary="Mark read (without acknowledging)")
    def read_notification(self, call: Call, id):  # noqa: A002
        return self.notify.mark_read(call.actor, id)
