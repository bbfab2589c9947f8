"""Handing a leaving rep's customers over (交接客户): who may, to whom, and
which customer goes to which new owner. Pure: unit-tested without a database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from services.common.principal import Principal
from services.customers.errors import InvalidFields, NotAllowed, NotVisible

POOL = "pool"
OWNER_ROLES = ("rep", "manager")


def check_may_hand_over(actor: Principal, from_user: Mapping | None) -> Mapping:
    """An admin hands anyone's customers over; a manager his own reps'."""
    if from_user is None:
        raise NotVisible("not_found", "no such user")
    if actor.role == "admin":
        return from_user
    if (actor.role == "manager" and from_user.get("role") == "rep"
            and from_user.get("team_id") == actor.team_id):
        return from_user
    raise NotAllowed("forbidden", "only an admin or the rep's manager hands his customers over")


def targets(actor: Principal, from_user: Mapping, to, users: Mapping[str, Mapping]) -> list:
    """The new owners, in the order given (`"pool"` alone, or users). A
    target must be an active rep or manager other than the leaving one; a
    manager hands over within his team."""
    if to == POOL:
        return [POOL]
    ids = [to] if isinstance(to, str) else list(to)
    if not ids:
        raise InvalidFields.fields({"to": "name a user, several users, or \"pool\""})
    if len(set(ids)) != len(ids):
        raise InvalidFields.fields({"to": "a user is named twice"})
    out = []
    for i, uid in enumerate(ids):
        where = "to" if isinstance(to, str) else f"to.{i}"
        user = users.get(uid)
        if uid == POOL:
            raise InvalidFields.fields({where: "\"pool\" cannot be mixed with users"})
        if user is None:
            raise InvalidFields.fields({where: "no such user"})
        if uid == from_user["id"]:
            raise InvalidFields.fields({where: "the customers are already his"})
        if not user.get("active", True):
            raise InvalidFields.fields({where: f"{user.get('name')} is disabled"})
        if user.get("role") not in OWNER_ROLES:
            raise InvalidFields.fields({where: "customers belong to reps and managers"})
        if actor.role == "manager" and user.get("team_id") != actor.team_id:
            raise InvalidFields.fields({where: "a manager hands over within his team"})
        out.append({"id": uid, "name": user.get("name"), "team_id": user.get("team_id")})
    return out


def plan(customer_ids: Sequence[str], new_owners: Sequence) -> list[tuple[str, object]]:
    """Round robin: the first customer to the first new owner, the second
    to the second, ...; with the order fixed, a resumed job agrees."""
    return [(cid, new_owners[i % len(new_owners)]) for i, cid in enumerate(customer_ids)]


def summary(moves: Sequence[tuple[str, object]]) -> list[dict]:
    counts = Counter(POOL if to == POOL else to["id"] for _, to in moves)
    seen: dict[str, dict] = {}
    for _, to in moves:
        key = POOL if to == POOL else to["id"]
        seen.setdefault(key, {"to": None if to == POOL else {"id": to["id"], "name": to["name"]},
                              "pool": to == POOL, "count": counts[key]})
    return list(seen.values())


def selection(owned: Sequence[str], requested: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(the customers to move, the requested ones that are not his)."""
    if requested is None:
        return list(owned), []
    mine = set(owned)
    chosen = list(dict.fromkeys(requested))
    return [c for c in chosen if c in mine], [c for c in chosen if c not in mine]


def still_his(customer: Mapping, from_id: str) -> bool:
    return customer.get("owner_id") == from_id and customer.get("status") == "active"
