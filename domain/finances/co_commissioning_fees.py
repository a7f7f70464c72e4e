"""Co-commissioning fees (SPEC §8): what each non-lead borough owes the lead commissioner.

The reading (also in docs/finances.md):

- **Co-commissioning fees** accrue day by day: each non-lead borough owes, for each day of its
  membership (accession to withdrawal inclusive) up to `as_of`, the annual fee in force that
  day (the terms in force that day, the latest `co_commissioning_fee` entry `from` on or before
  it) divided by the number of days of that financial year (1 April - 31 March, 365 or 366).
  Each borough's fee for a financial year is rounded half-up to pence once. The lead
  commissioner pays none. A financial year in progress at `as_of` is charged for its elapsed
  days; the terms name no end date, so none is assumed.

Before and after (tests/test_finances.py), fees of 13,000.00 a year from 2018-04-01, as of
2019-12-31:

    BoroughAcceded  SUT (the lead commissioner)
    BoroughAcceded  BEX, 2018-02-01
    BoroughAcceded  BDG, 2018-09-01
    BoroughWithdrew BDG, 2019-06-30

    co_commissioning_fees(...):
      BDG 2018-19  212 days  7,550.68   (13,000 x 212 / 365 = 7,550.684)
      BDG 2019-20   91 days  3,232.24   (to the day it withdrew; 2019-20 has 366 days)
      BEX 2018-19  365 days 13,000.00   (no fee before 2018-04-01)
      BEX 2019-20  275 days  9,767.76   (to as_of: 13,000 x 275 / 366 = 9,767.759)
      SUT none

    >>> financial_year(date(2019, 3, 31)), financial_year(date(2019, 4, 1))
    (datetime.date(2018, 4, 1), datetime.date(2019, 4, 1))
    >>> year_label(date(2018, 4, 1))
    '2018-19'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.finances.rounding import ZERO, pence


@dataclass(frozen=True, slots=True)
class Fee:
    """What one non-lead borough owes the lead for one financial year (or its elapsed part)."""

    borough: str
    year: str  # "2018-19"
    days: int  # days of membership in that year, up to as_of, with a fee in force
    amount: Decimal


def financial_year(day: date) -> date:
    """The first day (1 April) of the financial year holding `day`."""
    return date(day.year if day.month >= 4 else day.year - 1, 4, 1)


def year_label(start: date) -> str:
    return f"{start.year}-{(start.year + 1) % 100:02d}"


def co_commissioning_fees(contract: ContractState, as_of: date) -> list[Fee]:
    """Each non-lead borough's fee per financial year, pro rata to days of membership.

    Days are taken in runs that share one financial year and one set of terms: the runs break
    at each 1 April, each variation's effective date and each fee's `from` date, so a run's
    daily fee is one number.
    """
    assert contract.agreed is not None
    lead = contract.agreed.lead_commissioner
    breaks = {c.effective for c in contract.terms_history}
    for change in contract.terms_history:
        for entry in change.changes.get("co_commissioning_fee") or ():
            breaks.add(date.fromisoformat(str(entry["from"])))
    fees: list[Fee] = []
    for borough, membership in sorted(contract.boroughs.items()):
        if borough == lead:
            continue
        last = min(membership.withdrew or as_of, as_of)
        day = membership.acceded
        owed: dict[date, tuple[int, Fraction]] = {}
        while day <= last:
            year = financial_year(day)
            next_year = date(year.year + 1, 4, 1)
            stop = min([next_year - timedelta(days=1), last]
                       + [b - timedelta(days=1) for b in breaks if day < b <= last])
            days = (stop - day).days + 1
            annual = _annual_fee(contract, day)
            if annual:  # no fee in force (before the first `from`): not a day charged
                length = (next_year - year).days
                count, amount = owed.get(year, (0, Fraction(0)))
                owed[year] = (count + days, amount + Fraction(annual) * days / length)
            day = stop + timedelta(days=1)
        for year, (count, amount) in sorted(owed.items()):
            fees.append(Fee(borough, year_label(year), count, pence(amount)))
    return fees


def _annual_fee(contract: ContractState, day: date) -> Decimal:
    """The annual co-commissioning fee in force on `day` (zero before the first `from`)."""
    entries = [e for e in contract.terms_on(day).co_commissioning_fee if e.from_ <= day]
    if not entries:
        return ZERO
    return max(entries, key=lambda e: e.from_).annual_amount
