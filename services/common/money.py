"""Money: integer fen (分) stored, `Decimal` yuan shown, never float.

Shared by customers (what a rep enters) and forecast (what it sums), so that
both read and show an amount the same way.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from services.common.field_error import FieldError

MAX_FEN = 2**63 - 1
_HUNDRED = Decimal(100)


class MoneyError(FieldError):
    """An amount that is not a valid number of yuan or fen; `field` names it."""


def yuan_to_fen(value: Any, field: str = "expected_value") -> int:
    """A number of yuan (API input) as integer fen.

    A float is read through its shortest repr (0.1 is 0.10 yuan); booleans,
    None, NaN, infinities, negatives, more than 2 decimals (by value) and
    amounts beyond int64 fen are refused.
    """
    if value is None or isinstance(value, bool):
        raise MoneyError("must be a number of yuan", field)
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise MoneyError("must be a finite number", field)
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise MoneyError("is not a number", field) from None
    else:
        raise MoneyError("must be a number of yuan", field)
    if not amount.is_finite():
        raise MoneyError("must be a finite number", field)
    if amount < 0:
        raise MoneyError("must not be negative", field)
    if amount != 0 and amount.adjusted() > 18:
        raise MoneyError("is too large", field)
    with localcontext() as ctx:
        ctx.prec = 60
        fen = amount * _HUNDRED
        if fen != fen.to_integral_value():
            raise MoneyError("has more than 2 decimals", field)
    result = int(fen)
    if result > MAX_FEN:
        raise MoneyError("is too large", field)
    return result


def fen_to_yuan(fen: int, *, allow_negative: bool = False) -> Decimal:
    """Integer fen as `Decimal` yuan with exactly 2 decimals (1000000 -> 10000.00);
    negative fen only with `allow_negative` (signed errors)."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise MoneyError("fen must be an integer", "fen")
    if fen < 0 and not allow_negative:
        raise MoneyError("must not be negative", "fen")
    with localcontext() as ctx:
        ctx.prec = 60
        return Decimal(fen).scaleb(-2)
