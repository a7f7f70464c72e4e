"""Forecast for `care_days_saved` (`forecast` of a contract paying care days saved): what a
borough's cohort of tracked cases will be owed when their 30 months are over, at three rates of
care for the days still to come (docs/care_days_saved.md).

Readings:
- only cases tracked at `as_of` are forecast (an engaging or not yet started case has no
  window yet); their remaining days are those of their windows after `as_of`;
- minimum: every remaining day in care (days saved fall by 1 - comparison a day); expected:
  the remaining days in care at the cohort's share to date; maximum: none in care;
- each is the cohort's final days saved at the price, never below nothing, limited by the
  caps in force on `as_of` that cover the borough; still to pay = final - owed now (negative:
  the cohort's liability would fall below what it is owed today, a matter for reconciliation).

Before/after, price 100.00, comparison 55%; one case tracked 100 of its 912 days, 20 in care,
owed 3,500.00 now; 812 days to come:

    maximum: 35 + 0.55 x 812 = 481.6 days -> 48,160.00 final, 44,660.00 still to pay
    expected: care at 20% -> 35 + 0.35 x 812 = 319.2 days -> 31,920.00 (28,420.00 to pay)
    minimum: 35 - 0.45 x 812 = -330.4 days -> 0.00 final, -3,500.00 still to pay
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.mechanisms.care_days_saved import ZERO, CohortSaving, priced

ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class CohortForecast:
    borough: str
    remaining_days: int
    care_share: Decimal | None  # the cohort's to date, the expected rate
    owed: Decimal  # now
    minimum: Decimal  # final, after caps
    expected: Decimal
    maximum: Decimal


def _final(
    c: CohortSaving, saved_now: Decimal, remaining: int, care: Decimal, limit: Decimal | None
) -> Decimal:
    saved = saved_now + (c.comparison_share - care) * remaining
    amount = priced(saved, c.price_per_day)
    return amount if limit is None else min(amount, limit)


def care_days_forecast(
    contract: ContractState, cohorts: Sequence[CohortSaving], as_of: date
) -> tuple[CohortForecast, ...]:
    """Each cohort's final payment at three rates of care, under the caps in force on `as_of`
    that cover its borough (a cap shared by several boroughs' cohorts limits each alone)."""
    caps = contract.caps_on(as_of)
    result = []
    for c in cohorts:
        remaining = sum((case.tracking_end - case.tracking_start).days + 1 - case.days
                        for case in c.cases)  # fmt: skip
        # Priced on every elapsed day (verified or not): the forecast is of the final answer.
        saved_now = c.comparison_share * c.days - c.days_in_care
        rate = Decimal(c.days_in_care) / Decimal(c.days) if c.days else ZERO
        limit = min(
            (cap.amount for cap in caps
             if cap.payer == "boroughs" and (cap.boroughs is None or c.borough in cap.boroughs)),
            default=None,
        )  # fmt: skip
        result.append(
            CohortForecast(
                borough=c.borough,
                remaining_days=remaining,
                care_share=c.care_share,
                owed=c.owed,
                minimum=_final(c, saved_now, remaining, ONE, limit),
                expected=_final(c, saved_now, remaining, rate, limit),
                maximum=_final(c, saved_now, remaining, ZERO, limit),
            )
        )
    return tuple(result)
