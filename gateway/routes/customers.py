"""Routes of the customers part of API.md: the duplicate check, customers,
follow-ups, and shared phone numbers (an addition: a switchboard number an
admin marks as shared stops counting as a duplicate-guard key)."""

from __future__ import annotations

from gateway.http import Call, route
from services.common.schemas import CursorPage
from services.customers import schemas


class CustomersRoutes:
    @route("POST", "/api/customers/check", body=schemas.CheckIn, response=schemas.CheckOut,
           tag="customers",
           summary="Would these fields be refused as a duplicate (撞单)? Exact matches "
                   "block, similar names warn; matches show only id, name and owner")
    def check_customer(self, call: Call, body):
        return self.customers.check(call.actor, body.model_dump())

    @route("POST", "/api/customers", roles=("rep", "manager"), body=schemas.CustomerIn,
           response=schemas.Customer, status=201, tag="customers",
           summary="Enter a customer, owned by the caller; 409 duplicate_customer naming "
                   "the owner when its name, a phone, the credit code or an e-mail is taken")
    def create_customer(self, call: Call, body):
        return self.customers.create(call.actor, body.model_dump())

    @route("GET", "/api/customers", query=schemas.CustomerQuery, response=schemas.CustomerList,
           tag="customers",
           summary="Customers: a rep sees his own, a manager his team's, an admin all; "
                   "?status=pool lists the public pool. Phones and e-mails are masked "
                   "(138****5678); each page is in the read log")
    def list_customers(self, call: Call, query):
        return self.customers.list_customers(call.actor, query.model_dump(exclude_none=True))

    @route("GET", "/api/customers/{id}", response=schemas.Customer, tag="customers",
           summary="One customer, phones and e-mails whole (a rep sees a pool customer's "
                   "masked until he claims it); 404 when the caller may not see it. Logged; "
                   "429 read_limit (retry_after_seconds) past the hourly limit of different "
                   "customers opened")
    def get_customer(self, call: Call, id):  # noqa: A002 - the path parameter's name
        return self.customers.open_customer(call.actor, id)

    @route("POST", "/api/customers/{id}/followups", body=schemas.FollowupIn,
           response=schemas.Followup, status=201, tag="customers",
           summary="Append a follow-up (跟进记录); only the owner writes them, "
                   "nothing is ever edited or deleted")
    def add_followup(self, call: Call, id, body):  # noqa: A002
        return self.customers.add_followup(call.actor, id, body.model_dump())

    @route("GET", "/api/customers/{id}/followups", query=CursorPage,
           response=schemas.FollowupList,
           tag="customers", summary="A customer's follow-ups, newest first; 403 claim_first "
                                    "for a rep on a pool customer")
    def list_followups(self, call: Call, id, query):  # noqa: A002
        return self.customers.list_followups(call.actor, id, query.page, query.page_size,
                                            query.after)

    @route("POST", "/api/shared-phones", roles=("admin",), body=schemas.SharedPhoneIn,
           response=schemas.SharedPhone, status=201, tag="customers",
           summary="Mark a phone number as shared by many companies (a switchboard): it "
                   "stops counting as a duplicate-guard key and its claim is released")
    def mark_shared_phone(self, call: Call, body):
        return self.customers.mark_shared_phone(call.actor, body.model_dump())

    @route("GET", "/api/shared-phones", response=schemas.SharedPhoneList, tag="customers",
           summary="The phone numbers marked as shared")
    def list_shared_phones(self, call: Call):
        return self.customers.list_shared_phones(call.actor)
