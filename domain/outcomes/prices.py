"""SPEC §5 "Pricing": what an outcome week costs each payer.

An outcome week is priced by the terms in force on its last day (SPEC §3): the borough that
referred the case owes `price_per_week - top_up_per_week`, the top-up funder owes
`top_up_per_week`. An unverified week is priced the same way, as a provisional amount, before
caps; pending and in-care weeks cost nothing. Caps limit what is owed (`caps.py`); a forecast
that wants provisional money after caps applies the caps to the weeks as if they paid
(`domain/forecast.py`).

The shares are worked out once per terms change (`terms.TermsTimeline`), and each week takes
the shares of the terms in force on its last day (`weeks.WeekMaker.week`).

Before/after, the reference terms (price 214.00, top-up 45.00):

    borough_share(terms) -> Decimal("169.00")   # owed by the referring borough, e.g. SUT
    top_up_share(terms)  -> Decimal("45.00")    # owed by the top-up funder, CBO

and after a variation effective 2019-06-01 setting `price_per_week` to 250.00, a week ending
2019-05-31 still costs SUT 169.00, a week ending 2019-06-01 costs it 205.00.
"""

from __future__ import annotations

from decimal import Decimal

from soc_ledger.domain.events import Terms

ZERO = Decimal("0.00")


def borough_share(terms: Terms) -> Decimal:
    """The referring borough's share of an outcome week under `terms`."""
    return terms.price_per_week - terms.top_up_per_week


def top_up_share(terms: Terms) -> Decimal:
    """The top-up funder's share of an outcome week under `terms`."""
    return terms.top_up_per_week
