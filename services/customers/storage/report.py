"""The integrity report's counts per rep.
"""

from __future__ import annotations

from eventlet.greenpool import GreenPool
from pymongo.database import Database

from services.common.mongo import count

REPORT_CONCURRENCY = 8


def integrity_counts(db: Database, user_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per user of `user_ids`: customers owned now, entered, alarms raised,
    customers abandoned, alarms verified fake. Scoped by person rather than
    by the records' team, so a rep's history follows him and a manager sees
    each of his reps in full. Each figure is one count of one equality
    filter, which an index answers (a row of its count table on FerretDB
    here), not a read of his records."""
    def figures(uid: str) -> tuple[str, dict[str, int]]:
        return uid, {
            # an owned customer is active (rules)
            "customers": count(db.customers, {"owner_id": uid}),
            # created_by is {id, name}: who entered it, whoever owns it now
            "created": count(db.customers, {"created_by.id": uid}),
            "alarms": count(db.alarms, {"owner_id": uid}),
            "abandoned": count(db.abandonments, {"owner_id": uid}),
            "verified_fake": count(db.alarms, {"owner_id": uid, "verified": "fake"}),
        }

    # A company's 200 reps are 1,000 counts: a few at a time, each on a
    # connection of its own, rather than one after another.
    pool = GreenPool(REPORT_CONCURRENCY)
    return {uid: got for uid, got in pool.imap(figures, dict.fromkeys(user_ids))
            if any(got.values())}
