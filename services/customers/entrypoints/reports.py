"""Reading a customer's surroundings: the referral tree, the audit trail, the
integrity report per rep, and the deals export the forecast rebuilds from."""

from __future__ import annotations

from services.common.errors import Forbidden
from services.common.principal import Principal
from services.common.validation import parse
from services.customers import reads, referrals, rules, schemas, storage, views
from services.customers.entrypoints.base import rpc
from services.customers.entrypoints.reads import ReadRpc, address_of

EXPORT_MAX = 1000


class ReportRpc(ReadRpc):
    @rpc
    def integrity_report(self, actor):
        actor = Principal.of(actor)
        rules.report_scope(actor)
        users = self._users_in_scope(actor)
        reps = [u for u in users if u.get("role") == "rep"]
        counts = storage.integrity_counts(self.db, [u["id"] for u in users])
        rows = rules.integrity_rows(reps, counts)
        names = {u["id"]: u.get("name") for u in users}
        for row in rows:
            if row["rep"]["name"] is None:
                row["rep"]["name"] = names.get(row["rep"]["id"])
        return {"items": rows, "total": len(rows)}

    def _users_in_scope(self, actor: Principal) -> list[dict]:
        return self.accounts.users_in_scope(actor.as_dict())

    @rpc
    def referrals(self, actor, customer_id, depth=referrals.DEFAULT_DEPTH,
                  limit=referrals.DEFAULT_NODES):
        actor = Principal.of(actor)
        root = rules.check_visible(actor, self._customer(customer_id))
        depth = referrals.clamp(depth, referrals.DEFAULT_DEPTH, referrals.MAX_DEPTH)
        limit = referrals.clamp(limit, referrals.DEFAULT_NODES, referrals.MAX_NODES)
        chain, _ = referrals.collect_ancestors(
            root.get("referred_by"), lambda cid: storage.referral_parent(self.db, cid))
        found = referrals.collect_descendants(
            customer_id, lambda ids, room: storage.referral_children(self.db, ids, room), depth, limit)
        asked = storage.referral_counts(self.db, [*found.count_needed, *(d["_id"] for d in chain)])
        counts = referrals.referred_counts(found, asked)
        def node(d: dict) -> dict:
            return views.node(d, rules.may_see(actor, d))

        tree, truncated = referrals.build_tree(root, found, counts, node)
        ancestors = [{**node(d), "referred_count": asked.get(d["_id"], 0)} for d in chain]
        return {"ancestors": ancestors, "tree": tree, "truncated": truncated}

    @rpc
    def audit_trail(self, actor, customer_id, page=1, page_size=20, after=None):
        """A customer's audit trail: its values before and after each change,
        phones included, so reading it is opening the customer (counted by
        the bulk-read guard, logged as a detail read)."""
        address = address_of(actor)
        actor = Principal.of(actor)
        customer = rules.check_visible(actor, self._customer(customer_id))
        if not (actor.role == "admin" or rules.is_owner(actor, customer)
                or (actor.role == "manager" and (
                    rules.is_team_manager(actor, customer.get("team_id"))
                    or customer.get("status") == rules.POOL))):
            raise Forbidden("forbidden", "the audit trail is for the owner, his manager and admins")
        paging = parse(schemas.AuditQuery, {"page": page, "page_size": page_size, "after": after})
        self._count_open(actor, address, customer["_id"])
        self._log(actor, address, reads.DETAIL, [customer["_id"]])
        after_seq = int(paging.after) if paging.after is not None else None
        docs, total, intact, more = storage.audit_trail(self.db, customer_id, paging.skip,
                                                      paging.page_size, after_seq)
        return {"items": [views.audit_out(d) for d in docs], "total": total, "intact": intact,
                "next": str(docs[-1]["seq"]) if more else None}

    @rpc
    def export_deals(self, after_id=None, limit=EXPORT_MAX):
        """Every customer as a deal, ordered by id, for the forecast service to
        rebuild or reconcile its read model; page with `after_id`."""
        limit = max(1, min(int(limit or EXPORT_MAX), EXPORT_MAX))
        docs = storage.customers_after(self.db, after_id, limit)
        changes = storage.stage_changes_of(self.db, [d["_id"] for d in docs])
        return [views.deal_out(d, changes.get(d["_id"], [])) for d in docs]
