"""Routes of the customer-integrity part of API.md: amendments, audit, alarms,
the public pool, disputes, stages, referrals, the integrity report."""

from __future__ import annotations


class IntegrityRoutes:
    pass
