"""SMS escalation limits, shared by the scheduler (which validates a user's
setting) and notify (which asks for the escalation when it shows a reminder).
"""

from __future__ import annotations

from datetime import datetime, timedelta

DEFAULT_ESCALATE_AFTER_MINUTES = 10
#: One week; also keeps `timedelta` far from overflowing.
MAX_ESCALATE_AFTER_MINUTES = 7 * 24 * 60


def escalation_due(fired_at: datetime, minutes: float) -> datetime | None:
    """When an unacknowledged reminder shown at `fired_at` escalates to SMS;
    None when `minutes` is 0 ("no SMS")."""
    if not 0 <= minutes <= MAX_ESCALATE_AFTER_MINUTES:
        raise ValueError(f"escalate_after_minutes must be 0..{MAX_ESCALATE_AFTER_MINUTES}")
    if minutes == 0:
        return None
    return fired_at + timedelta(minutes=minutes)
