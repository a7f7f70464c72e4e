"""SPEC §5 for one case: its tracking window, its weeks under its week rule, its days in care.

Pure functions of (case facts, contract terms, care-data coverage, `as_of`), before caps (the
caps take every case's weeks at once: `caps.py`). The pieces: `tracking.tracking` (the window),
`care_days.care_intervals` (the days in care), `fixed_blocks.block_weeks` and
`consecutive_runs.run_units` (the week rules), `weeks.WeekMaker` (status to priced `Week`).

Before/after, the reference terms, a case of SUT with F = 2019-01-07 (MST), all verified, one
stay 2019-05-15 .. 2019-05-20:

    assess_case(case, contract, coverage, as_of=2019-07-31)
      -> Assessment(tracking=Tracking(start=2019-05-06, weeks=104, week_rule="fixed_blocks"),
                    weeks=104 weeks (11 outcome, 1 in_care, 92 pending),
                    days_in_care=5, days_out_of_care=82)
    the same at as_of 2019-01-31 (24 days since F) -> None: not tracked yet
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.outcomes.care_days import Span, care_intervals
from soc_ledger.domain.outcomes.consecutive_runs import run_units
from soc_ledger.domain.outcomes.facts import CaseFacts, merge_refs
from soc_ledger.domain.outcomes.fixed_blocks import block_weeks
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import Tracking, tracking
from soc_ledger.domain.outcomes.weeks import WEEK_RULES, Week, WeekMaker


@dataclass(frozen=True, slots=True)
class Assessment:
    """Everything §5 says about one tracked case at `as_of`, before caps."""

    case: CaseFacts
    tracking: Tracking
    week_rule: str  # the rule applied (the case's own unless overridden)
    weeks: tuple[Week, ...]  # ordered by last day
    days_in_care: int  # elapsed days of the window in care
    days_out_of_care: int  # elapsed days of the window out of care


def case_weeks(
    case: CaseFacts,
    contract: ContractState | TermsTimeline,
    coverage: Mapping[str, date],
    as_of: date,
    week_rule: str | None = None,
) -> list[Week]:
    """The weeks of one case at `as_of`, before caps; [] if the case is not tracked.

    `week_rule` None applies the case's own rule (the terms in force on its first meeting);
    "fixed_blocks" or "consecutive_runs" recomputes under that rule (a what-if).
    """
    assessed = assess_case(case, contract, coverage, as_of, week_rule)
    return list(assessed.weeks) if assessed is not None else []


def assess_case(
    case: CaseFacts,
    contract: ContractState | TermsTimeline,
    coverage: Mapping[str, date],
    as_of: date,
    week_rule: str | None = None,
) -> Assessment | None:
    """`case_weeks` with the tracking window and the day totals; None if not tracked."""
    if week_rule is not None and week_rule not in WEEK_RULES:
        raise ValueError(f"week_rule must be one of {', '.join(WEEK_RULES)}, got {week_rule!r}")
    timeline = TermsTimeline.of(contract)
    window = tracking(case, timeline, as_of)
    if window is None:
        return None
    rule = week_rule or window.week_rule
    first = window.start.toordinal()
    count = window.weeks
    today = as_of.toordinal()
    upto = min(first + 7 * count - 1, today)  # the last elapsed day of the window
    covered = coverage.get(case.borough)
    verified_to = covered.toordinal() if covered is not None else 0
    maker = WeekMaker(
        case.case,
        timeline,
        merge_refs(case.refs, window.refs),
        getattr(coverage, "refs", {}).get(case.borough, ()),
    )
    spells = [Span.of(s) for s in case.spells]
    care = care_intervals(spells, timeline, first, count, upto)

    runs = rule == "consecutive_runs"
    weeks = block_weeks(maker, spells, care, first, count, today, verified_to, not runs)
    if runs:
        weeks.extend(run_units(maker, spells, care, first, upto, verified_to))
        weeks.sort(key=lambda w: (w.end, w.start))

    days_in_care = sum(b - a for a, b in care)
    elapsed = max(0, upto - first + 1)
    return Assessment(case, window, rule, tuple(weeks), days_in_care, elapsed - days_in_care)
