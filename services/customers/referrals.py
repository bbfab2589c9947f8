"""The referral tree (客户关系树, who referred whom), as pure functions.

`referred_by` links a customer to the customer who referred it, so the links
form a forest. MongoDB's `$graphLookup` is not in the FerretDB subset, so the
tree is walked here: the storage layer supplies `children_of(ids, limit)` (one
`$in` query per level) and `parent_of(id)`, and these functions decide what
to fetch next, where to stop and what the answer looks like. They never loop
forever, even on a cycle that should not exist: every walk keeps a visited set
and a hard bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

DEFAULT_DEPTH = 10
MAX_DEPTH = 50
DEFAULT_NODES = 1000
MAX_NODES = 10000
# Longer referral chains than this do not happen in a sales team; the bound
# only keeps a corrupt chain from walking forever.
MAX_ANCESTORS = 200


def collect_ancestors(start_parent_id: str | None,
                      parent_of: Callable[[str], Mapping | None],
                      limit: int = MAX_ANCESTORS) -> tuple[list[Mapping], bool]:
    """Walk `referred_by` upwards from a customer's referrer.

    Returns (ancestors from the root referrer down to the direct referrer,
    truncated). Stops at a missing customer, a repeated id or `limit`."""
    chain: list[Mapping] = []
    seen: set[str] = set()
    current = start_parent_id
    truncated = False
    while current is not None:
        if current in seen:
            break
        if len(chain) >= limit:
            truncated = True
            break
        seen.add(current)
        doc = parent_of(current)
        if doc is None:
            break
        chain.append(doc)
        current = doc.get("referred_by")
    chain.reverse()
    return chain, truncated


def would_cycle(customer_id: str, new_parent_id: str | None,
                ancestor_ids_of_new_parent: list[str]) -> bool:
    """Would `customer.referred_by = new_parent` close a loop?

    It does when the new referrer is the customer itself or one of the new
    referrer's ancestors is the customer (the customer would become its own
    ancestor)."""
    if new_parent_id is None:
        return False
    return new_parent_id == customer_id or customer_id in ancestor_ids_of_new_parent


# A cycle check has to see the whole chain above the new referrer, so it walks
# much further than a display of the ancestors does.
MAX_CHAIN_CHECKED = 10000


def referrer_refusal(customer_id: str, new_parent_id: str | None,
                     parent_of: Callable[[str], Mapping | None]) -> str | None:
    """Why `customer.referred_by = new_parent` is refused, or None."""
    if new_parent_id is None:
        return None
    chain, truncated = collect_ancestors(new_parent_id, parent_of, MAX_CHAIN_CHECKED)
    if would_cycle(customer_id, new_parent_id, [d["_id"] for d in chain]):
        return "would make a referral cycle"
    if truncated:
        return "the referral chain above it is too long to check for a cycle"
    return None


@dataclass
class Descendants:
    children: dict[str, list[Mapping]] = field(default_factory=dict)
    # nodes whose shown children may be fewer than their real ones (not
    # expanded because of the depth or size bound): their count must be asked
    count_needed: set[str] = field(default_factory=set)
    size_truncated: bool = False
    total: int = 0
    depth: int = 0


def collect_descendants(root_id: str,
                        children_of: Callable[[list[str], int], list[Mapping]],
                        max_depth: int = DEFAULT_DEPTH,
                        max_nodes: int = DEFAULT_NODES) -> Descendants:
    """Breadth first, one `children_of(level_ids, limit)` call per level.

    `children_of` returns at most `limit` customers whose `referred_by` is in
    `level_ids`, each with `_id` and `referred_by`, in a stable order. Asking
    for one more than the room left tells whether the size bound cut a level.
    """
    out = Descendants()
    seen = {root_id}
    level = [root_id]
    while level:
        if out.depth >= max_depth:
            out.count_needed.update(level)
            break
        room = max_nodes - out.total
        if room <= 0:
            out.count_needed.update(level)
            break
        docs = children_of(level, room + 1)
        if len(docs) > room:
            docs = docs[:room]
            out.size_truncated = True
            out.count_needed.update(level)
        next_level = []
        for doc in docs:
            if doc["_id"] in seen:
                continue
            seen.add(doc["_id"])
            out.children.setdefault(doc["referred_by"], []).append(doc)
            next_level.append(doc["_id"])
        out.total += len(next_level)
        if not next_level:
            break
        out.depth += 1
        level = next_level
    return out


def referred_counts(found: Descendants, asked: Mapping[str, int]) -> dict[str, int]:
    """How many customers each node referred: counted from the fetched
    children where the walk saw them all, from `asked` (a `$group` count)
    where it stopped early."""
    counts = {parent: len(kids) for parent, kids in found.children.items()}
    for node_id in found.count_needed:
        counts[node_id] = max(asked.get(node_id, 0), counts.get(node_id, 0))
    return counts


def build_tree(root: Mapping, found: Descendants, counts: Mapping[str, int],
               summary: Callable[[Mapping], dict]) -> tuple[dict, bool]:
    """The nested `{customer, children}` tree and whether anything was left
    out. `summary(doc)` is the public shape of one customer; each gets its
    `referred_count`. Built iteratively: a 10,000-deep chain must not hit
    Python's recursion limit."""
    truncated = found.size_truncated

    def node(doc: Mapping) -> dict:
        nonlocal truncated
        n = counts.get(doc["_id"], 0)
        shown = found.children.get(doc["_id"], [])
        if n > len(shown):
            truncated = True
        return {"customer": {**summary(doc), "referred_count": n}, "children": [],
                "_kids": shown}

    top = node(root)
    stack = [top]
    while stack:
        current = stack.pop()
        for kid in current.pop("_kids"):
            child = node(kid)
            current["children"].append(child)
            stack.append(child)
    return top, truncated


def clamp(value: int | None, default: int, maximum: int) -> int:
    if value is None:
        return default
    return max(0, min(value, maximum))
