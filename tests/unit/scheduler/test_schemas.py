"""The scheduler's request shapes (no broker, no database)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.scheduler import domain, schemas


def test_a_birthday_reminders_own_id_is_accepted_back_as_a_cursor_and_by_escalation():
    """24-character ids make a 65-character birthday reminder id: notify's
    escalation request for its greeting was refused (and the ReminderDue
    handler retried for ever), and no page followed it."""
    rid = domain.birthday_id("6b17063972b1db0a0a4047d7", "6b17063972b1db0a0a4047d8",
                             datetime(2026, 3, 1, 1, 0, tzinfo=UTC))
    assert len(rid) == 65
    esc = schemas.EscalationIn.model_validate({
        "notification_id": "n1", "user_id": "u1", "reminder_id": rid,
        "due_at": "2026-03-01T01:10:00+00:00"})
    assert esc.reminder_id == rid
    assert schemas.ReminderQuery.model_validate({"after": rid}).after == rid
