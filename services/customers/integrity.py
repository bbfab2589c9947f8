"""RPC entrypoints of the customer lifecycle (amendments, alarms, the pool,
disputes, stages, referrals); CustomersService inherits them."""

from __future__ import annotations


class IntegrityRpc:
    pass
