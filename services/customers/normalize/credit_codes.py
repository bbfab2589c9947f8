"""Unified social credit codes (统一社会信用代码, GB 32100-2015)."""

from __future__ import annotations

import re

from services.customers.normalize.text import InvalidField, _visible

# --------------------------------------------------------------------------
# Unified social credit code (统一社会信用代码, GB 32100-2015)
# --------------------------------------------------------------------------

_CC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I O S V Z
_CC_VALUE = {c: i for i, c in enumerate(_CC_ALPHABET)}
_CC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CC_SEPARATORS = re.compile(r"[\s\-]+")


def credit_code_check_char(first17: str) -> str:
    """The 18th character of a credit code: 31 - (sum(value * 3^i mod 31) mod 31), 31 -> 0."""
    total = sum(_CC_VALUE[c] * w for c, w in zip(first17, _CC_WEIGHTS, strict=True))
    return _CC_ALPHABET[(31 - total % 31) % 31]


def normalize_credit_code(raw: str | None, field: str = "credit_code") -> str | None:
    """An 18-character unified social credit code, upper case; None when blank.

    Full-width characters, spaces and hyphens are tolerated. Checked: length,
    alphabet (0-9, A-H, J-N, P-R, T-U, W-Y), positions 3-8 (the
    administrative division code) numeric, and the GB 32100-2015 check
    character. The old 15-digit registration numbers and 9-character
    organization codes are not credit codes and are rejected.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidField(field, "must be a string")
    code = _CC_SEPARATORS.sub("", _visible(raw)).upper()
    if not code:
        return None
    if len(code) != 18:
        raise InvalidField(field, "must be 18 characters")
    bad = sorted({c for c in code if c not in _CC_VALUE})
    if bad:
        raise InvalidField(field, f"contains invalid characters: {''.join(bad)}")
    if not code[2:8].isdigit():
        raise InvalidField(field, "characters 3-8 must be an area code")
    if credit_code_check_char(code[:17]) != code[17]:
        raise InvalidField(field, "check character does not match")
    return code


def credit_code_key(code: str) -> str:
    """The plain unique claim key of a normalized credit code."""
    return "credit:" + code


