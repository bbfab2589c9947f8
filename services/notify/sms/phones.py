"""Phone numbers as the vendors want them (E.164, or Aliyun's national form).
"""

from __future__ import annotations

import re

_PHONE_JUNK = re.compile(r"[\s\-().]")


def _clean_phone(to: object) -> str:
    if not isinstance(to, str) or not to.strip():
        raise ValueError("an SMS needs a non-empty phone number")
    phone = _PHONE_JUNK.sub("", to.strip())
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if not re.fullmatch(r"\+?[0-9]{5,16}", phone):
        raise ValueError(f"not a phone number: {to!r}")
    return phone


def e164_phone(to: str) -> str:
    """``+86…`` form: bare 11-digit mainland mobiles (1xxxxxxxxxx) get +86;
    ``0086…`` becomes ``+86…``; spaces, dashes and brackets are dropped."""
    phone = _clean_phone(to)
    if phone.startswith("+"):
        return phone
    if re.fullmatch(r"1[0-9]{10}", phone):
        return "+86" + phone
    if re.fullmatch(r"861[0-9]{10}", phone):
        return "+" + phone
    return phone


def aliyun_phone_number(to: str) -> str:
    """Aliyun's ``PhoneNumbers`` form: mainland numbers without the country
    code (``13800138000``); others as country code + number without ``+``
    or ``00`` (``85200000000``)."""
    phone = e164_phone(to)
    if phone.startswith("+86"):
        return phone[3:]
    return phone.lstrip("+")


def _require_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("an SMS needs a non-empty text")
    return text
