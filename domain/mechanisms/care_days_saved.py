"""`care_days_saved`: a price for each care-placement day saved against a comparison group's
share of days in care (docs/care_days_saved.md).

Readings the contract leaves open:
- a case counts once it is tracked as SPEC §5 says (accepted, first family meeting F,
  `min_engagement_days` engaged); it is then tracked for `tracking_months` calendar months from
  F: the days F .. F + `tracking_months` months - 1 (a day the month lacks is its last day);
- the baseline is applied to the cohort, in days: the cohort of a borough is its tracked cases,
  and the days saved are `comparison_care_share` x the cohort's elapsed tracked days minus the
  days they spent in care (SPEC §5 "in care on day d", with the exclusions in force on
  `as_of`). A case with more care than the comparison offsets a case with less;
- a cohort never owes back: fewer days saved than none pays nothing (and what was paid on an
  earlier claim is a matter for reconciliation, not a negative liability);
- days up to the borough's care-data coverage are verified and owed; elapsed days after it are
  provisional, priced as the extra the cohort would be owed if they stayed as known;
- money is the days saved x `price_per_day`, rounded half-even to the penny once per cohort,
  so moving one care day of a verified case moves the payment by exactly one day's price;
- the caps of the contract (SPEC §3) in force on `as_of` with payer `boroughs` that cover the
  borough limit it (a cap over several boroughs is used by their cohorts in borough order);
  the borough of the referral pays it all (no top-up share).

Before/after, price 100.00 a day, comparison 55%, 30 months; one SUT case with F 2014-01-01,
all verified, `as_of` 2014-04-10 (100 days tracked) and 20 days in care:

    saved = 0.55 x 100 - 20 = 35 days -> owed 3,500.00; care share 20%
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.events import Cap
from soc_ledger.domain.outcomes.facts import CaseFacts, Spell
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import engagement

ZERO = Decimal("0.00")
PENNY = Decimal("0.01")
SHARE = Decimal("0.0001")


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later (the month's last day if it is shorter)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def care_days(spells: tuple[Spell, ...], first: date, last: date, excluded: set[str]) -> int:
    """Days in first .. last (inclusive) on which some spell not excluded holds the case."""
    if last < first:
        return 0
    days: set[int] = set()
    for spell in spells:
        if spell.legal_status in excluded or spell.placement in excluded:
            continue
        start = max(spell.start, first)
        end = min(spell.end - timedelta(days=1) if spell.end else last, last)
        days.update(range(start.toordinal(), end.toordinal() + 1))
    return len(days)


@dataclass(frozen=True, slots=True)
class CaseDays:
    case: str
    borough: str
    tracking_start: date
    tracking_end: date  # last day tracked, inclusive
    days: int  # elapsed tracked days by as_of
    days_in_care: int
    verified_days: int  # elapsed tracked days up to the coverage
    verified_in_care: int


@dataclass(frozen=True, slots=True)
class CohortSaving:
    """One borough's cohort at `as_of`."""

    borough: str
    cases: tuple[CaseDays, ...]
    comparison_share: Decimal
    target_share: Decimal
    price_per_day: Decimal
    days_saved: Decimal  # verified
    owed: Decimal
    provisional: Decimal
    capped: Decimal

    @property
    def days(self) -> int:
        return sum(c.days for c in self.cases)

    @property
    def days_in_care(self) -> int:
        return sum(c.days_in_care for c in self.cases)

    @property
    def care_share(self) -> Decimal | None:
        if not self.days:
            return None
        return (Decimal(self.days_in_care) / Decimal(self.days)).quantize(SHARE, ROUND_HALF_EVEN)


def case_days(
    case: CaseFacts, months: int, coverage: date | None, as_of: date, excluded: set[str]
) -> CaseDays:
    """The tracked days of a tracked case, and its days in care, elapsed and verified."""
    assert case.first_meeting is not None
    start = case.first_meeting
    end = add_months(start, months) - timedelta(days=1)
    elapsed = min(as_of, end)
    verified = min(elapsed, coverage) if coverage is not None else start - timedelta(days=1)
    return CaseDays(
        case=case.case,
        borough=case.borough,
        tracking_start=start,
        tracking_end=end,
        days=max((elapsed - start).days + 1, 0),
        days_in_care=care_days(case.spells, start, elapsed, excluded),
        verified_days=max((verified - start).days + 1, 0),
        verified_in_care=care_days(case.spells, start, verified, excluded),
    )


def priced(days_saved: Decimal, price: Decimal) -> Decimal:
    """Days saved at the day's price, never below nothing, to the penny."""
    return max(days_saved * price, ZERO).quantize(PENNY, ROUND_HALF_EVEN)


def _covers(cap: Cap, borough: str) -> bool:
    return cap.payer == "boroughs" and (cap.boroughs is None or borough in cap.boroughs)


def care_days_saved(
    contract: ContractState,
    cases: Mapping[str, CaseFacts],
    coverage: Mapping[str, date],
    as_of: date,
) -> tuple[CohortSaving, ...]:
    """Each borough's cohort of tracked cases, its days saved and its payment after caps."""
    terms = contract.terms_on(as_of)
    rule = terms.care_days_saved
    assert rule is not None
    excluded = {*terms.excluded_legal_statuses, *terms.excluded_placements}
    timeline = TermsTimeline(contract)
    cohorts: dict[str, list[CaseDays]] = {}
    for case_id in sorted(cases):
        case = cases[case_id]
        if engagement(case, timeline, as_of) != "tracked":
            continue
        cohorts.setdefault(case.borough, []).append(
            case_days(case, rule.tracking_months, coverage.get(case.borough), as_of, excluded)
        )
    caps = contract.caps_on(as_of)
    used: dict[str, Decimal] = {}  # a cap over several boroughs is used in borough order
    result = []
    for borough, found in sorted(cohorts.items()):
        share, price = rule.comparison_care_share, rule.price_per_day
        saved = share * sum(c.verified_days for c in found) - sum(c.verified_in_care for c in found)
        saved_all = share * sum(c.days for c in found) - sum(c.days_in_care for c in found)
        gross = priced(saved, price)
        gross_all = max(priced(saved_all, price), gross)
        covering = [c for c in caps if _covers(c, borough)]
        limit = min((max(c.amount - used.get(c.cap, ZERO), ZERO) for c in covering), default=None)
        owed = gross if limit is None else min(gross, limit)
        for c in covering:
            used[c.cap] = used.get(c.cap, ZERO) + owed
        provisional = gross_all - gross
        if limit is not None:
            provisional = min(provisional, max(limit - owed, ZERO))
        result.append(
            CohortSaving(
                borough=borough,
                cases=tuple(found),
                comparison_share=share,
                target_share=rule.target_care_share,
                price_per_day=price,
                days_saved=saved,
                owed=owed,
                provisional=provisional,
                capped=gross - owed,
            )
        )
    return tuple(result)
