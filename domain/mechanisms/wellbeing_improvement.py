"""`wellbeing_improvement`: a price for a tracked case whose wellbeing measure (an Outcomes Star
reading) has improved from its first reading to a later one (docs/wellbeing_improvement.md).

Readings the contract leaves open:
- readings are `WellbeingMeasured` facts of the contract's `measure`, as a percentage of the
  measure's maximum, dated by `effective`; a case's first reading (earliest effective) is its
  baseline and its later reading is the latest effective on or before `as_of` at least
  `min_weeks_between` weeks after the first;
- a tracked case (SPEC §5) whose later reading is at least `min_improvement` points above the
  first earns `price_per_improvement` once, owed by the borough of its referral (no top-up);
  a case not tracked earns nothing, whatever its readings;
- the payment stands as long as its readings do: a correction or retraction of a reading moves
  it like any other figure at (as_of, known_at); it is not capped by the weeks' caps.

Before/after, price 1,000.00, at least 10 points, 12 weeks apart; case A read 40 on
2020-01-06 and 55 on 2020-04-06 (13 weeks later), case B read 50 and 52:

    A -> improved by 15, owed 1,000.00;  B -> not_improved (2 < 10), owed 0.00
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from soc_ledger.domain import events as ev
from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.knowledge import Fact
from soc_ledger.domain.outcomes.facts import CaseFacts, merge_refs, positions
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import engagement

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class Reading:
    day: date
    measure: str
    score: Decimal
    refs: tuple[int, ...]


def readings_from_facts(facts: Iterable[Fact], contract: str) -> dict[str, tuple[Reading, ...]]:
    """case -> its readings of every measure, by date."""
    found: dict[str, list[Reading]] = {}
    for fact in facts:
        event = fact.event
        if isinstance(event, ev.WellbeingMeasured) and event.contract == contract:
            found.setdefault(event.case, []).append(
                Reading(event.effective, event.measure, event.score, positions(fact))
            )
    return {
        case: tuple(sorted(rows, key=lambda r: (r.day, r.refs)))
        for case, rows in sorted(found.items())
    }


@dataclass(frozen=True, slots=True)
class CaseWellbeing:
    case: str
    borough: str
    status: str  # "improved", "not_improved", "awaiting" (no later reading yet), "no_reading"
    first: Reading | None
    later: Reading | None
    owed: Decimal

    @property
    def improvement(self) -> Decimal | None:
        if self.first is None or self.later is None:
            return None
        return self.later.score - self.first.score

    @property
    def refs(self) -> tuple[int, ...]:
        return merge_refs(*(r.refs for r in (self.first, self.later) if r is not None))


def wellbeing_improvement(
    contract: ContractState,
    cases: Mapping[str, CaseFacts],
    readings: Mapping[str, tuple[Reading, ...]],
    as_of: date,
) -> tuple[CaseWellbeing, ...]:
    """Every case tracked at `as_of`, with its first and later readings and what it earns."""
    rule = contract.terms_on(as_of).wellbeing_improvement
    assert rule is not None
    timeline = TermsTimeline(contract)
    result = []
    for case_id in sorted(cases):
        case = cases[case_id]
        if engagement(case, timeline, as_of) != "tracked":
            continue
        known = [
            r for r in readings.get(case_id, ()) if r.day <= as_of and r.measure == rule.measure
        ]
        first = known[0] if known else None
        later = None
        if first is not None:
            due = first.day + timedelta(weeks=rule.min_weeks_between)
            later = next((r for r in reversed(known[1:]) if r.day >= due), None)
        if first is None:
            status = "no_reading"
        elif later is None:
            status = "awaiting"
        elif later.score - first.score >= rule.min_improvement:
            status = "improved"
        else:
            status = "not_improved"
        owed = rule.price_per_improvement if status == "improved" else ZERO
        result.append(CaseWellbeing(case_id, case.borough, status, first, later, owed))
    return tuple(result)
