"""Customer records: insert, read, list a scope by cursor, update by version,
claim from the pool, the near-match name index, exports.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database

from services.common.mongo import (
    after,
    count,
    delete_by_ids,
    find_by_ids,
    insert_new,
    page,
)

NAME_TERM_SLOTS = 8


log = logging.getLogger(__name__)


def insert_customer(db: Database, doc: dict) -> dict:
    db.customers.insert_one(doc)
    return doc


def find_customer(db: Database, customer_id: str) -> dict | None:
    return db.customers.find_one({"_id": customer_id})


def find_customers(db: Database, ids: Iterable[str]) -> dict[str, dict]:
    """By id, in one indexed $in (the few ids of a duplicate check)."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    return {d["_id"]: d for d in db.customers.find({"_id": {"$in": ids}})}


def customer_exists(db: Database, customer_id: str) -> bool:
    return db.customers.find_one({"_id": customer_id}, {"_id": 1}) is not None


NEWEST_FIRST = [("_id", DESCENDING)]


def list_customers(db: Database, flt: dict, skip: int, limit: int,
                   after_id: str | None = None) -> tuple[list[dict], int, bool]:
    """A page of `flt`, newest first (after `after_id`), its total, and
    whether more follow."""
    total = count(db.customers, flt)
    if after_id is not None:
        flt = after(flt, NEWEST_FIRST, {"_id": after_id})
    docs, more = page(db.customers, flt, NEWEST_FIRST, skip, limit)
    return docs, total, more


def customers_page(db: Database, flt: dict, after_id: str | None,
                   limit: int) -> tuple[list[dict], bool]:
    """A page of `flt`, newest first, after `after_id`, without a count (an
    export reads every page once), and whether more follow."""
    if after_id is not None:
        flt = after(flt, NEWEST_FIRST, {"_id": after_id})
    return page(db.customers, flt, NEWEST_FIRST, 0, limit)


def _slots(customer_id: str) -> tuple[int, int]:
    first = zlib.crc32(customer_id.encode()) % NAME_TERM_SLOTS
    return first, (first + 1) % NAME_TERM_SLOTS


def index_name(db: Database, customer_id: str, core: str, region: str,
               terms: Iterable[str]) -> None:
    """File a customer under its name's terms in the near-match index.

    A term has NAME_TERM_SLOTS slots, one document each: {_id: "<term>#<slot>",
    c: customer id, k: core, r: region}. A customer takes the first free of
    its two slots (chosen by its id), with plain inserts (all its first
    slots in one, the taken ones' second slots in another): no read, no
    update, nothing that waits for another writer. When both are taken the
    term is busy (many names share it, so it tells little) and the customer
    is not filed under it. A check reads every slot of its terms by _id: a
    bounded number of lookups whatever the number of customers.
    """
    posting = {"c": customer_id, "k": core, "r": region}
    terms = list(dict.fromkeys(terms))
    first, second = _slots(customer_id)
    taken = insert_new(db.name_terms, [{"_id": f"{t}#{first}", **posting} for t in terms])
    insert_new(db.name_terms, [{"_id": f"{terms[i]}#{second}", **posting} for i in taken])


def unindex_name(db: Database, customer_id: str, core: str, region: str,
                 terms: Iterable[str]) -> None:
    """Take a customer out of the near-match index (its name changed): the
    arguments of its index_name (`core` and `region` as filed). A slot
    is written once by one customer and freed only by that customer, so the
    read before the delete cannot race with another writer of the slot."""
    slots = _slots(customer_id)
    ids = [f"{t}#{slot}" for t in dict.fromkeys(terms) for slot in slots]
    delete_by_ids(db.name_terms, [d["_id"] for d in find_by_ids(db.name_terms, ids)
                                  if d.get("c") == customer_id])


def term_postings(db: Database, terms: Iterable[str]) -> list[dict]:
    """Every filed posting of the terms ({c, k, r}), in the terms' order:
    every slot of every term by _id, in one indexed $in (a thousand at a
    time), whatever the number of customers."""
    ids = [f"{t}#{slot}" for t in dict.fromkeys(terms) for slot in range(NAME_TERM_SLOTS)]
    by_id = {d["_id"]: d for d in find_by_ids(db.name_terms, ids)}
    return [by_id[i] for i in ids if i in by_id]


def update_customer(db: Database, customer: dict, fields: dict) -> dict | None:
    """Set `fields` on the customer if it is still at the version read,
    bumping `version`; None when someone else changed it first. Every
    record change goes through here, so a consumer can order a customer's
    events by `version`."""
    version = customer.get("version")
    query = {"_id": customer["_id"],
             "version": version if version is not None else {"$exists": False}}
    return db.customers.find_one_and_update(
        query, {"$set": fields, "$inc": {"version": 1}}, return_document=ReturnDocument.AFTER)


def claim_from_pool(db: Database, customer_id: str, fields: dict) -> dict | None:
    """Only the first of two racing claims finds the customer in the pool."""
    return db.customers.find_one_and_update(
        {"_id": customer_id, "status": "pool"},
        {"$set": fields, "$inc": {"version": 1}}, return_document=ReturnDocument.AFTER)


def customers_after(db: Database, after_id: str | None, limit: int) -> list[dict]:
    query = {"_id": {"$gt": after_id}} if after_id else {}
    return list(db.customers.find(query).sort("_id", ASCENDING).limit(limit))
