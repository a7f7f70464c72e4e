"""Rounding money and ratios (SPEC §8): the two rules every figure of §8 and §9 is rounded by.

The readings (also in docs/finances.md):

- **Money is `Decimal` end to end.** The only float is the one `pyxirr` needs, made at that
  edge (`returns.xirr`).
- **Money** that has to be divided (cost per service user, a fee pro rata to days, avoided
  costs) is rounded half-up to pence once, at the end (`pence`). **Ratios** (cost shares, money
  multiple, attainment) are rounded half-even to 4 places (`ratio`).

Before and after:

    >>> pence(Decimal("6534062.00") / 410)  # cost per service user in the demo
    Decimal('15936.74')
    >>> pence(Fraction(13000 * 212, 365))  # a fee for 212 days of a 365-day year
    Decimal('7550.68')
    >>> ratio(Decimal("3084931.00"), Decimal("2867704.00"))  # the demo's money multiple
    Decimal('1.0757')
    >>> ratio(Decimal("1.00"), Decimal("0.00")) is None
    True
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction

ZERO = Decimal("0.00")
PENNY = Decimal("0.01")
RATIO_PLACES = Decimal("0.0001")


def pence(value: Decimal | Fraction) -> Decimal:
    """Money rounded half-up to pence (the one rounding rule for money in this module)."""
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return value.quantize(PENNY, ROUND_HALF_UP)


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """numerator / denominator half-even to 4 places; None when the denominator is zero."""
    if denominator == 0:
        return None
    return (numerator / denominator).quantize(RATIO_PLACES, ROUND_HALF_EVEN)
