"""SPEC §5: a week of a tracked case, its status, its price and what decided them.

Each week has one status at (as_of, known_at):

- `pending`: its last day is after `as_of`;
- `in_care`: elapsed, with a day in care (`care_days.py`);
- `unverified`: elapsed, no day in care known, but its last day is after the borough's care
  data coverage (the greatest `covers_until` known: `facts.coverage_from_facts`);
- `outcome`: elapsed, verified, no day in care: it pays.

Which weeks there are is the week rule's: a fixed block per week (`fixed_blocks.py`) or a unit
per 7 days of a run out of care (`consecutive_runs.py`); `assessment.assess_case` applies the
case's rule. `WeekMaker.week` turns a dated status into a `Week` priced by the terms in force on
its last day (`prices.py`): outcome weeks owe, unverified weeks are provisional (priced the
same way, before caps), the others cost nothing. Caps come later (`caps.py`).

Before/after, the reference terms, a case of SUT with T = 2019-05-06, care data covering
2019-07-14, `as_of` 2019-07-31, no stay in care:

    weeks 0..9 (May 6 .. Jul 14)  -> outcome, borough_amount 169.00, top_up_amount 45.00
    weeks 10, 11 (Jul 15 .. 28)   -> unverified, provisional_borough 169.00, owed 0.00
    weeks 12..103 (Jul 29 ..)     -> pending, 0.00
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from soc_ledger.domain.outcomes.facts import merge_refs
from soc_ledger.domain.outcomes.prices import ZERO
from soc_ledger.domain.outcomes.terms import TermsSegment, TermsTimeline

STATUSES = ("outcome", "in_care", "unverified", "pending")
WEEK_RULES = ("fixed_blocks", "consecutive_runs")

# A dated status, before pricing: (fixed block k of its last day, first day, last day (both
# ordinals), status, days in care, days out of care, and under `consecutive_runs` its run's
# (first day, first day after), else None).
Dated = tuple[int, int, int, str, int, int, tuple[int, int] | None]


def week_amounts(seg: TermsSegment, status: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """(borough, top-up, provisional borough, provisional top-up) of a week with this status
    whose last day falls in `seg`, before caps: outcome weeks owe, unverified weeks are
    provisional, priced the same way, the others cost nothing."""
    if status == "outcome":
        return seg.borough_price, seg.top_up_price, ZERO, ZERO
    if status == "unverified":
        return ZERO, ZERO, seg.borough_price, seg.top_up_price
    return ZERO, ZERO, ZERO, ZERO


@dataclass(frozen=True, slots=True)
class Week:
    """One week of a tracked case (a fixed block, or a paid unit under `consecutive_runs`)."""

    case: str
    index: int  # the fixed block k (0-based) that contains `end`
    start: date
    end: date  # the week's last day, inclusive
    status: str  # "pending" | "in_care" | "unverified" | "outcome"
    variation: str  # id of the terms in force on `end` ("original" for the agreed terms)
    borough_amount: Decimal  # owed by the referring borough, after caps (outcome weeks only)
    top_up_amount: Decimal  # owed by the top-up funder, after caps (outcome weeks only)
    capped_borough: Decimal  # the part of the borough's share removed by caps
    capped_top_up: Decimal  # the part of the top-up funder's share removed by caps
    provisional_borough: Decimal  # unverified weeks priced as if they paid, before caps
    provisional_top_up: Decimal
    days_in_care: int  # within this week's elapsed days (<= as_of)
    days_out_of_care: int
    because: tuple[int, ...]  # log positions that decided its status and price

    @property
    def owed(self) -> Decimal:
        return self.borough_amount + self.top_up_amount

    @property
    def provisional(self) -> Decimal:
        return self.provisional_borough + self.provisional_top_up

    @property
    def capped(self) -> Decimal:
        return self.capped_borough + self.capped_top_up


class WeekMaker:
    """Builds the `Week` rows of one case, sharing each distinct `because` tuple."""

    __slots__ = ("case", "timeline", "base_refs", "coverage_refs", "_because")

    def __init__(
        self,
        case: str,
        timeline: TermsTimeline,
        base_refs: tuple[int, ...],
        coverage_refs: tuple[int, ...],
    ) -> None:
        self.case = case
        self.timeline = timeline
        self.base_refs = base_refs  # the case's lifecycle and tracking terms
        self.coverage_refs = coverage_refs  # the care-data fact verifying its borough
        self._because: dict[tuple, tuple[int, ...]] = {}

    def week(
        self,
        index: int,
        start: int,
        end: int,
        status: str,
        days_in: int,
        days_out: int,
        spell_refs: tuple[int, ...],
    ) -> Week:
        i = self.timeline.index(end)
        seg = self.timeline.segments[i]
        outcome = status == "outcome"
        unverified = status == "unverified"
        key = (i, outcome or unverified, spell_refs)
        because = self._because.get(key)
        if because is None:
            because = self._because[key] = merge_refs(
                self.base_refs,
                spell_refs,
                seg.price_refs,
                self.coverage_refs if outcome or unverified else (),
            )
        borough, top_up, provisional_borough, provisional_top_up = week_amounts(seg, status)
        return Week(
            self.case,
            index,
            date.fromordinal(start),
            date.fromordinal(end),
            status,
            seg.variation,
            borough,
            top_up,
            ZERO,
            ZERO,
            provisional_borough,
            provisional_top_up,
            days_in,
            days_out,
            because,
        )
