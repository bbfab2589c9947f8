"""Phone numbers as E.164 keys (default region CN)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

from services.customers.normalize.text import InvalidField, _visible, normalize_each

# --------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------

_PHONE_LABEL = re.compile(r"^\s*(?:tel|phone|mobile|mob|电话|手机|座机)\s*[:.]?\s*", re.I)
# A country code in brackets, "(+86)" or "(0086)", as printed on cards; a bare
# "(010)" is an area code and stays.
_PHONE_CC_BRACKET = re.compile(r"^\(\s*(?:\+|00)\s*(\d{1,4})\s*\)\s*")
_EXT_MARK = r"(?:转|分机|ext\.?|extension|x|#)\s*\d{1,6}"
_PHONE_EXT = re.compile(rf"\s*(?:{_EXT_MARK}|\(\s*{_EXT_MARK}\s*\))\s*$", re.I)
_PHONE_TAIL = re.compile(r"^(.*\d)\s*(?:[-/.\s]\s*\d{1,6}|\(\s*\d{1,6}\s*\))$")
_PHONE_CHARS = re.compile(r"^\+?[\d\s()\-./]+$")
_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−～~"})
_EXT_OK_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.SHARED_COST,
        phonenumbers.PhoneNumberType.UAN,
        phonenumbers.PhoneNumberType.VOIP,
    }
)


def _parse_phone(text: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def normalize_phone(raw: str | None, field: str = "phone") -> str | None:
    """A phone number in E.164 ('+8675588888888'); None for a blank value.

    Accepts mobiles (138 0013 8000), landlines with their area code
    (0755-8888 8888, (010)12345678, 020 8765 4321), +86 / 0086 / 86 / (+86)
    prefixes, 400/800 numbers, foreign numbers with their + code, full-width
    digits, invisible characters pasted along.
    An extension is dropped: 转123, 分机 123, (分机8001), ext. 12, x12, #12, or
    a short group after a complete landline (0755-86013388-8001,
    0755-86013388(8001)) — never after a mobile, where a trailing group means
    a wrong number. A landline without its area code (8888 8888) is
    rejected: its city is unknown.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidField(field, "must be a string")
    text = _visible(raw).translate(_DASHES).strip()
    if not text:
        return None
    text = _PHONE_LABEL.sub("", text)
    text = _PHONE_CC_BRACKET.sub(r"+\1 ", text)
    text = _PHONE_EXT.sub("", text)
    if not _PHONE_CHARS.match(text) or "+" in text[1:]:
        raise InvalidField(field, "is not a phone number")
    digits = sum(c.isdigit() for c in text)
    if digits < 7 or digits > 20:
        raise InvalidField(field, "is not a complete phone number")
    number = _parse_phone(text)
    if number is None:
        m = _PHONE_TAIL.match(text)
        if m:
            base = _parse_phone(m.group(1))
            if base is not None and phonenumbers.number_type(base) in _EXT_OK_TYPES:
                number = base
    if number is None:
        raise InvalidField(field, "is not a valid phone number (a landline needs its area code)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phones(raws: Iterable[str | None] | None, field: str = "phones") -> list[str]:
    """Normalize a list of phones: blanks skipped, duplicates merged, order kept."""
    return normalize_each(raws, normalize_phone, field)


def phone_key(e164: str) -> str:
    """The plain unique claim key of a normalized phone."""
    return "phone:" + e164


