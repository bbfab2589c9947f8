"""Forecast errors, limits and the exact-number helpers every part shares.

- Money is integer fen (分) in here; ``fen_to_yuan`` makes the ``Decimal`` yuan
  (2 decimals) the HTTP API shows, ``yuan_to_fen`` validates what comes in.
- Probabilities are ``Decimal`` fractions 0..1 when shown (``Decimal("0.25")``)
  and exact ``Fraction`` while computing. No float is ever used for money or
  probabilities. Every total is computed exactly and rounded once, half up
  (四舍五入), at the end; so a stage row's ``weighted`` is rounded on its own
  and the rows may differ from ``forecast`` by a fen.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from services.common.field_error import FieldError
from services.common.money import MAX_FEN, fen_to_yuan
from services.common.timezones import DEFAULT_TIMEZONE

DEFAULT_TZ = DEFAULT_TIMEZONE
MIN_ACTIVE = 14
DEFAULT_PRIOR_WEIGHT = 10
METHOD = "beta-shrinkage"
WON_STAGE = 100
LOST_STAGE = 0
ORPHAN_POLICIES = ("nearest_lower", "exclude")


# --------------------------------------------------------------------------
# errors


class ForecastError(FieldError):
    """Invalid input. ``field`` names the offending field; ``fields`` is the
    ``{"field": "why"}`` map a 422 carries (``Invalid.fields(e.fields)``)."""


class StageError(ForecastError):
    """A stage list or a stage that breaks the rules."""


class EventError(ForecastError):
    """An event payload that cannot be applied (a poison message: dead-letter it)."""


_HUNDRED = Decimal(100)


def _check_fen(value: Any, field: str, err: type[ForecastError] = ForecastError) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise err("must be an integer number of fen", field)
    if value < 0 or value > MAX_FEN:
        raise err("is out of range", field)
    return value


def _round_half_up(x: Fraction) -> int:
    if x >= 0:
        return math.floor(x + Fraction(1, 2))
    return -math.floor(-x + Fraction(1, 2))


def _yuan(fen_exact: Fraction | int, *, signed: bool = False) -> Decimal:
    return fen_to_yuan(_round_half_up(Fraction(fen_exact)), allow_negative=signed)


def _ratio(x: Fraction, places: int = 4) -> Decimal:
    """A fraction shown with ``places`` decimals, rounded half up."""
    with localcontext() as ctx:
        ctx.prec = 60
        return Decimal(_round_half_up(x * 10**places)).scaleb(-places)


def _number_out(x: Fraction) -> int | Decimal:
    if x.denominator == 1:
        return int(x)
    with localcontext() as ctx:
        ctx.prec = 28
        return Decimal(x.numerator) / Decimal(x.denominator)

def _parse_stage(value: Any, field: str, err: type[ForecastError] = StageError) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise err("must be an integer percent", field)
    if not 0 <= value <= 100:
        raise err("must be between 0 and 100", field)
    return value
