"""customers: entering customers through the duplicate guard (撞单), the list,
follow-ups; the record's later life (amendments, stages, alarms, disputes,
reports) comes from the entrypoint mixins in `entrypoints/`."""

from __future__ import annotations

import logging

from services.common.errors import Conflict, Invalid
from services.common.events import event
from services.common.ids import new_id
from services.common.mongo import Mongo
from services.common.principal import Principal, require_admin
from services.common.schemas import CursorPage
from services.common.validation import parse
from services.customers import domain, listing, masking, reads, schemas, stages, storage
from services.customers.entrypoints.alarms import AlarmRpc
from services.customers.entrypoints.amendments import AmendmentRpc
from services.customers.entrypoints.base import rpc
from services.customers.entrypoints.disputes import DisputeRpc
from services.customers.entrypoints.handovers import HandoverRpc
from services.customers.entrypoints.reads import ReadRpc, address_of
from services.customers.entrypoints.reports import ReportRpc
from services.customers.entrypoints.stages import StageRpc

log = logging.getLogger(__name__)

CLAIM_ROUNDS = 3


class CustomersService(AmendmentRpc, StageRpc, AlarmRpc, DisputeRpc, ReportRpc, HandoverRpc, ReadRpc):
    name = "customers"

    db = Mongo(storage.ensure_indexes)

    # ------------------------------------------------------------ duplicate guard

    def _keys(self, data) -> tuple[dict, list[str]]:
        keys = domain.normalize_keys_input(data)
        shared = storage.shared_phones(self.db, keys["phones"])
        return keys, domain.claim_keys(keys, shared)

    def _matches(self, held: dict, exclude: str | None = None) -> list[dict]:
        ids = [c["customer_id"] for claims in held.values() for c in claims]
        return domain.exact_matches(held, storage.find_customers(self.db, ids), exclude)

    @rpc
    def check(self, actor, body):
        """Would these fields be refused? Exact matches block; similar names warn."""
        Principal.of(actor)
        data = parse(schemas.CheckIn, body)
        keys, claim = self._keys(data.model_dump())
        matches = self._matches(storage.holders(self.db, claim))
        similar = []
        if keys["name"] is not None:
            name = keys["name"]
            postings = storage.term_postings(self.db, domain.search_grams(name.core))
            ranked = domain.rank_similar(name, postings, {m["customer_id"] for m in matches})
            similar = domain.similar_matches(
                ranked, storage.find_customers(self.db, [cid for _, cid in ranked]))
        return {"available": not matches, "matches": matches, "similar": similar}

    def _stage_list(self) -> list[dict]:
        return self.current_stages()

    @rpc
    def create(self, actor, body):
        actor = Principal.of(actor)
        domain.check_may_create(actor)
        data = parse(schemas.CustomerIn, body)
        fields = data.model_dump()
        keys, claim = self._keys(fields)
        contacts = domain.normalize_contacts(fields["contacts"])
        stages.check_stage(self._stage_list(), fields["stage"])
        # Everything that can refuse the entry is checked before the first claim.
        domain.valid_month_day(fields["birthday"])
        domain.money_to_fen(fields["expected_value"])
        if fields["referred_by"] and not storage.customer_exists(self.db, fields["referred_by"]):
            raise Invalid.fields({"referred_by": "no such customer"})

        customer_id = new_id()
        now = self.clock.now()
        meta = {"owner_id": actor.id, "owner_name": actor.name,
                "company_name": fields["company_name"].strip()}
        try:
            conflicts = storage.claim_keys(self.db, customer_id, claim, now, meta)
            if not conflicts:
                doc = domain.new_customer(customer_id, fields, keys, contacts, claim, actor, now)
                # The chain's first entry goes before the document: once the
                # customer is stored anyone may append to its chain, and the
                # create entry must stay entry 1. If the insert fails, the
                # entry names an id nothing else will ever use.
                storage.start_audit(self.db, customer_id, actor.as_dict(), "create", None,
                                    domain.audit_snapshot(doc), now)
                storage.insert_customer(self.db, doc)
        except BaseException:
            # Every key is new to this id, so any of them it holds (the one
            # whose write failed included) belongs to a customer never stored.
            storage.release_quietly(self.db, customer_id, claim)
            raise
        if conflicts:
            matches = self._matches({**storage.holders(self.db, claim), **conflicts},
                                    exclude=customer_id)
            raise Conflict("duplicate_customer", domain.duplicate_message(matches),
                           {"matches": matches})
        storage.index_name(self.db, customer_id, doc["name_core"], doc["name_region"],
                           domain.search_grams(doc["name_core"]))
        self.dispatch("CustomerCreated", event(**domain.created_event(doc)))
        return domain.public_customer(doc)

    # ------------------------------------------------------------ reading

    @rpc
    def get_customer(self, actor, customer_id):
        """One customer for another service acting for `actor` (is it
        visible, who owns it): neither logged nor counted. What a user opens
        comes through `open_customer`."""
        actor = Principal.of(actor)
        doc = domain.check_visible(actor, storage.find_customer(self.db, str(customer_id)))
        return self._view(actor, doc)

    @rpc
    def list_customers(self, actor, query):
        """A page of customers, phones and e-mails masked; the ids on the
        page go to the read log."""
        address = address_of(actor)
        actor = Principal.of(actor)
        q = parse(schemas.CustomerQuery, query)
        flt = listing.list_filter(actor, q.status, q.stage, q.owner_id)
        flt.update(listing.query_terms(q.q))
        docs, total, more = storage.list_customers(self.db, flt, q.skip, q.page_size, q.after)
        self._log(actor, address, reads.LIST, [d["_id"] for d in docs])
        return {"items": [masking.masked(domain.public_customer(d)) for d in docs],
                "total": total, "next": docs[-1]["_id"] if more else None}

    # ------------------------------------------------------------ follow-ups

    @rpc
    def add_followup(self, actor, customer_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.FollowupIn, body)
        customer = domain.check_may_follow_up(
            actor, storage.find_customer(self.db, str(customer_id)))
        now = self.clock.now()
        doc = domain.new_followup(new_id(), customer["_id"], data.model_dump(), actor, now)
        storage.insert_followup(self.db, doc)
        storage.append_audit(self.db, customer["_id"], actor.as_dict(), "followup", None,
                             {k: doc[k] for k in ("_id", "content", "contact_name", "channel")},
                             now)
        return domain.public_followup(doc)

    @rpc
    def list_followups(self, actor, customer_id, page=1, page_size=20, after=None):
        actor = Principal.of(actor)
        paging = parse(CursorPage, {"page": page, "page_size": page_size, "after": after})
        customer = reads.check_may_read_followups(actor, domain.check_visible(
            actor, storage.find_customer(self.db, str(customer_id))))
        docs, total, more = storage.list_followups(self.db, customer["_id"], paging.skip,
                                                   paging.page_size, paging.after)
        return {"items": [domain.public_followup(d) for d in docs], "total": total,
                "next": docs[-1]["_id"] if more else None}

    # ------------------------------------------------------------ shared phones

    @rpc
    def mark_shared_phone(self, actor, body):
        actor = Principal.of(actor)
        require_admin(actor, "marks a phone number as shared")
        data = parse(schemas.SharedPhoneIn, body)
        phone = domain.normalize_shared_phone(data.phone)
        doc, released = storage.mark_shared_phone(self.db, phone, data.note, actor.as_dict(),
                                                  self.clock.now())
        log.info("phone %s marked shared by %s; %d claim(s) released", phone, actor.id, released)
        return domain.public_shared_phone(doc, released)

    @rpc
    def list_shared_phones(self, actor):
        Principal.of(actor)
        docs = storage.list_shared_phones(self.db)
        return {"items": [domain.public_shared_phone(d) for d in docs], "total": len(docs)}
