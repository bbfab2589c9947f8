"""Phones and e-mails masked (防止资料外泄): what a list shows, and what a rep
sees of a pool customer he has not claimed. Pure.

A list is for finding a customer, not for copying his book: it shows
`138****5678` and `zh***@qq.com`. The whole value comes from opening the
record (GET /api/customers/{id}), which the read log records and the
bulk-read guard counts.

Phones are stored in E.164 (`+8613812345678`). A Chinese number is shown by
its national number, the first 3 and the last 4 digits kept (`138****5678`,
a landline `755****8888`); a foreign one keeps its country code in front
(`+1 415***0123`). A number too short for that keeps its first and last 2.
"""

from __future__ import annotations

from collections.abc import Mapping

import phonenumbers

MASK = "*"
CN = 86


def _mask_digits(digits: str) -> str:
    if len(digits) >= 10:
        head, tail = digits[:3], digits[-4:]
    elif len(digits) >= 6:
        head, tail = digits[:2], digits[-2:]
    else:
        head, tail = "", digits[-1:]
    return head + MASK * max(3, len(digits) - len(head) - len(tail)) + tail


def mask_phone(phone: str | None) -> str | None:
    """`+8613812345678` -> `138****5678`; `+14155550123` -> `+1 415***0123`."""
    if not phone:
        return phone
    try:
        number = phonenumbers.parse(phone, "CN")
    except phonenumbers.NumberParseException:
        digits = "".join(c for c in phone if c.isdigit())
        return _mask_digits(digits) if digits else MASK * 3
    masked = _mask_digits(str(number.national_number))
    if number.country_code == CN:
        return masked
    return f"+{number.country_code} {masked}"


def mask_email(email: str | None) -> str | None:
    """`zhangwei@qq.com` -> `zh***@qq.com`; a local part of 1 or 2
    characters keeps its first (`li@x.cn` -> `l***@x.cn`)."""
    if not email:
        return email
    local, at, domain = email.rpartition("@")
    if not at:
        return email[:1] + MASK * 3
    keep = local[:2] if len(local) > 2 else local[:1]
    return f"{keep}{MASK * 3}@{domain}"


def masked(customer: Mapping) -> dict:
    """A customer as the API shows it (domain.public_customer), its phones,
    e-mails and its contacts' phones and e-mails masked; `masked` says so."""
    out = dict(customer)
    out["phones"] = [mask_phone(p) for p in customer.get("phones") or []]
    out["emails"] = [mask_email(e) for e in customer.get("emails") or []]
    contacts = []
    for c in customer.get("contacts") or []:
        c = dict(c)
        if c.get("phone"):
            c["phone"] = mask_phone(c["phone"])
        if c.get("email"):
            c["email"] = mask_email(c["email"])
        contacts.append(c)
    out["contacts"] = contacts
    out["masked"] = True
    return out
