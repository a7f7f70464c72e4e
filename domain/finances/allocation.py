"""Sharing an amount pro rata in pennies (SPEC §8): the largest remainder method.

The reading (also in docs/finances.md): an amount shared in proportion to weights (investors'
commitments, `returns`) is shared **in pennies by largest remainder**: each gets the whole
pennies of their exact share, and the pennies left over go one each to the largest remainders
(ties to the key first in alphabetical order). The shares add up to the amount exactly.

Before and after:

    >>> allocate(Decimal("100.00"), {"B": Decimal(1), "A": Decimal(1), "C": Decimal(1)})
    {'A': Decimal('33.34'), 'B': Decimal('33.33'), 'C': Decimal('33.33')}

The demo's fourth drawdown, 567,704.00, to commitments of 2,500,000 / 1,500,000 / 875,000 /
300,000: the floors add up to 567,703.98 and the two pennies left go to the largest remainders
(HEARTH's .9034 and KESTREL's .6812 of a penny):

    >>> allocate(Decimal("567704.00"), {"BRIDGEWAY": Decimal(2_500_000),
    ...     "CITYTRUST": Decimal(1_500_000), "HEARTH": Decimal(875_000),
    ...     "KESTREL": Decimal(300_000)})  # doctest: +NORMALIZE_WHITESPACE
    {'BRIDGEWAY': Decimal('274253.14'), 'CITYTRUST': Decimal('164551.88'),
     'HEARTH': Decimal('95988.60'), 'KESTREL': Decimal('32910.38')}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

from soc_ledger.domain.finances.rounding import PENNY


def allocate(amount: Decimal, weights: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """`amount` shared in proportion to `weights`, in pennies by largest remainder.

    Every share is a whole number of pennies and the shares add up to `amount` exactly. Each
    gets the whole pennies of its exact share; the pennies left over go one each to the
    largest remainders, ties to the first key in sorted order. Zero total weight: equal shares.
    """
    if not weights:
        raise ValueError("nothing to allocate to")
    total_pennies = int((amount / PENNY).to_integral_value())
    if Decimal(total_pennies) * PENNY != amount:
        raise ValueError(f"{amount} is not a whole number of pennies")
    keys = sorted(weights)
    scaled = {k: Fraction(weights[k]) for k in keys}
    total = sum(scaled.values(), Fraction(0))
    if total <= 0:
        scaled = dict.fromkeys(keys, Fraction(1))
        total = Fraction(len(keys))
    shares: dict[str, int] = {}
    remainders: list[tuple[Fraction, str]] = []
    for k in keys:
        exact = total_pennies * scaled[k] / total
        whole = math.floor(exact)
        shares[k] = whole
        remainders.append((exact - whole, k))
    left = total_pennies - sum(shares.values())
    for _, k in sorted(remainders, key=lambda r: (-r[0], r[1]))[:left]:
        shares[k] += 1
    return {k: Decimal(shares[k]) * PENNY for k in keys}
