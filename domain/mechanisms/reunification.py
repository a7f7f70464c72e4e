"""`reunification`: a price for a young person referred while in care who returns home and
stays home (docs/reunification.md).

Readings the contract leaves open:
- the cohort is the cases whose `ReferralReceived` says `in_care: true` (as corrected); it is
  paid for once a case is tracked (SPEC §5: accepted, first family meeting F, engaged);
- a return home is the end of a care spell (not excluded, with the exclusions in force on
  `as_of`) on or after F; it stays home when no care spell touches the `stay_home_weeks`
  weeks from that day; a return followed by care sooner does not pay, and the next return is
  looked at in turn. A case earns `price_per_return` once, for its first return that stays;
- that return is owed when the borough's care data covers its last day, provisional before;
  one still inside its weeks is `staying`; the borough of the referral pays it (no top-up);
- `min_referrals` is the commissioner's side of the bargain: the cohort's referrals known are
  reported against it (a shortfall is shown, never priced); they are not capped by the caps.

Before/after, price 5,000.00, 26 weeks; case R referred in care, F 2020-01-06, its episode
ends 2020-03-02 and it stays home; care data to 2020-12-31, `as_of` 2020-12-31:

    R -> returned 2020-03-02, home to 2020-08-30 (182 days), stayed, owed 5,000.00
    a case back in care on 2020-05-01 -> "returned_to_care", 0.00
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from soc_ledger.domain import events as ev
from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.knowledge import Fact
from soc_ledger.domain.outcomes.facts import CaseFacts
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import engagement

ZERO = Decimal("0.00")


def in_care_at_referral(facts: Iterable[Fact], contract: str, as_of: date) -> set[str]:
    """The cases referred by `as_of` while in care (the reunification cohort)."""
    return {
        f.event.case
        for f in facts
        if isinstance(f.event, ev.ReferralReceived)
        and f.event.contract == contract
        and f.event.in_care
        and f.event.effective <= as_of
    }


@dataclass(frozen=True, slots=True)
class CaseReturn:
    case: str
    borough: str
    # "stayed" (owed), "unverified" (stayed, care data not in yet), "staying" (inside its
    # weeks), "returned_to_care" (every return so far followed by care), "in_care"
    status: str
    returned: date | None
    home_until: date | None  # the last day of the weeks it had to stay home
    owed: Decimal
    provisional: Decimal


@dataclass(frozen=True, slots=True)
class Reunification:
    cases: tuple[CaseReturn, ...]
    referrals: int  # the cohort's referrals known (tracked or not)
    min_referrals: int

    @property
    def shortfall(self) -> int:
        return max(self.min_referrals - self.referrals, 0)


def reunification(
    contract: ContractState,
    cases: Mapping[str, CaseFacts],
    cohort: set[str],
    coverage: Mapping[str, date],
    as_of: date,
) -> Reunification:
    """Each tracked case of the cohort, its first lasting return home, and what it earns."""
    terms = contract.terms_on(as_of)
    rule = terms.reunification
    assert rule is not None
    excluded = {*terms.excluded_legal_statuses, *terms.excluded_placements}
    timeline = TermsTimeline(contract)
    weeks = timedelta(weeks=rule.stay_home_weeks)
    found = []
    for case_id in sorted(cohort & set(cases)):
        case = cases[case_id]
        if engagement(case, timeline, as_of) != "tracked":
            continue
        assert case.first_meeting is not None
        spells = [
            s for s in case.spells if s.legal_status not in excluded and s.placement not in excluded
        ]
        status, returned, until = "in_care", None, None
        ends = sorted({s.end for s in spells if s.end and case.first_meeting <= s.end <= as_of})
        for end in ends:
            returned, until = end, end + weeks - timedelta(days=1)
            # A spell starting on the day of the return is a move, not a return home.
            back = any(end <= s.start <= min(until, as_of) for s in spells)
            if back:
                status = "returned_to_care"
                continue
            if until > as_of:
                status = "staying"
            elif coverage.get(case.borough, date.min) >= until:
                status = "stayed"
            else:
                status = "unverified"
            break
        price = rule.price_per_return
        found.append(
            CaseReturn(
                case_id,
                case.borough,
                status,
                returned,
                until,
                price if status == "stayed" else ZERO,
                price if status == "unverified" else ZERO,
            )
        )
    return Reunification(tuple(found), len(cohort), rule.min_referrals)
