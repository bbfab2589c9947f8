"""The name claim: an append-only log per name core, made safe by _id uniqueness.

A name is filed under the stream `name:<core>`. Unlike phones, it cannot be a
plain unique key: a region-less claim conflicts with every region, which a
bounded set of keys cannot express, and FerretDB's findAndModify is not atomic
enough for one document per core. So every claim or release is an entry
`{_id: 'name:<core>#<seq>', stream, seq, op, region, customer_id, of}`; to
claim, read the stream, decide with `name_claim_decision`, insert entry
`next_seq` and start again on DuplicateKeyError: the unique `_id` makes the log
linearizable. Nothing is deleted; a release is an entry too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.customers.normalize.regions import region_key, regions_compatible

NAME_CLAIM_PREFIX = "name:"


@dataclass(frozen=True, slots=True)
class NameClaimDecision:
    allowed: bool
    next_seq: int
    conflicts: tuple[Mapping, ...] = ()
    retry: bool = False  # the read saw a gap in the log: read again


def _active_claims(entries: Iterable[Mapping]) -> tuple[dict[int, Mapping], int, bool]:
    claims: dict[int, Mapping] = {}
    released: set[int] = set()
    seqs: list[int] = []
    for entry in entries:
        seq = int(entry["seq"])
        seqs.append(seq)
        if entry.get("op", "claim") == "release":
            released.add(int(entry["of"]))
        else:
            claims[seq] = entry
    contiguous = sorted(seqs) == list(range(1, len(seqs) + 1))
    active = {s: e for s, e in claims.items() if s not in released}
    return active, len(seqs), contiguous


def name_claim_decision(
    entries: Iterable[Mapping],
    region: Sequence[str] | str | None,
    ignore_customer_id: str | None = None,
) -> NameClaimDecision:
    """Decide a name claim from the stream's log (see the module docstring).

    ``entries``: every document of the stream (any order). ``region``: the
    claimant's region path or region key ('' / None for none). A claim
    conflicts with every active claim of the same core whose region is
    compatible (:func:`regions_compatible`): equal, one containing the
    other, or either missing. Also usable read-only by the ``check`` endpoint.
    ``ignore_customer_id``: a customer renaming itself (an approved
    amendment) does not conflict with its own claims.
    """
    active, count, contiguous = _active_claims(entries)
    if not contiguous:
        return NameClaimDecision(allowed=False, next_seq=count + 1, retry=True)
    conflicts = tuple(
        e
        for _, e in sorted(active.items())
        if regions_compatible(e.get("region"), region)
        and (ignore_customer_id is None or e.get("customer_id") != ignore_customer_id)
    )
    return NameClaimDecision(allowed=not conflicts, next_seq=count + 1, conflicts=conflicts)


def name_claim_entry(
    stream: str, seq: int, region: Sequence[str] | str | None, customer_id: str
) -> dict:
    """The document to ``insert_one`` for an allowed claim."""
    reg = region if isinstance(region, str) else region_key(region)
    return {
        "_id": f"{stream}#{seq}",
        "stream": stream,
        "seq": seq,
        "op": "claim",
        "region": reg,
        "customer_id": customer_id,
    }


def name_release_entry(stream: str, seq: int, of_seq: int, customer_id: str) -> dict:
    """The document that releases claim ``of_seq`` (appended like a claim)."""
    return {
        "_id": f"{stream}#{seq}",
        "stream": stream,
        "seq": seq,
        "op": "release",
        "of": of_seq,
        "customer_id": customer_id,
    }


