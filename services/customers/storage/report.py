"""The integrity report's counts per rep.
"""

from __future__ import annotations

from pymongo.database import Database

from services.common.mongo import (
    count,
)


def integrity_counts(db: Database, user_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per user of `user_ids`: customers owned now, entered, alarms raised,
    customers abandoned, alarms verified fake. Scoped by person rather than
    by the records' team, so a rep's history follows him and a manager sees
    each of his reps in full. Each figure is one count of one equality
    filter, which an index answers (a row of its count table on FerretDB
    here), not a read of his records."""
    out: dict[str, dict[str, int]] = {}
    for uid in dict.fromkeys(user_ids):
        figures = {
            # an owned customer is active (rules)
            "customers": count(db.customers, {"owner_id": uid}),
            # created_by is {id, name}: who entered it, whoever owns it now
            "created": count(db.customers, {"created_by.id": uid}),
            "alarms": count(db.alarms, {"owner_id": uid}),
            "abandoned": count(db.abandonments, {"owner_id": uid}),
            "verified_fake": count(db.alarms, {"owner_id": uid, "verified": "fake"}),
        }
        if any(figures.values()):
            out[uid] = figures
    return out
