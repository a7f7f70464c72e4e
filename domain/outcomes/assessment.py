"""SPEC §5 for one case: its tracking window, its weeks under its week rule, its days in care.

Pure functions of (case facts, contract terms, care-data coverage, `as_of`), before caps (the
caps take every case's weeks at once: `caps.py`). The pieces: `tracking.tracking` (the window),
`care_days.care_intervals` (the days in care), `fixed_blocks.block_statuses` and
`consecutive_runs.run_statuses` (the week rules, as dated statuses), `weeks.WeekMaker` (a
status to a priced `Week`). `week_statuses` stops before pricing: the read models price a
case's weeks by kind, without a `Week` per week.

Before/after, the reference terms, a case of SUT with F = 2019-01-07 (MST), all verified, one
stay 2019-05-15 .. 2019-05-20:

    assess_case(case, contract, coverage, as_of=2019-07-31)
      -> Assessment(tracking=Tracking(start=2019-05-06, weeks=104, week_rule="fixed_blocks"),
                    weeks=104 weeks (11 outcome, 1 in_care, 92 pending),
                    days_in_care=5, days_out_of_care=82)
    the same at as_of 2019-01-31 (24 days since F) -> None: not tracked yet
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.outcomes.care_days import Span, care_intervals, touching
from soc_ledger.domain.outcomes.consecutive_runs import run_statuses, unit_refs
from soc_ledger.domain.outcomes.facts import CaseFacts, merge_refs
from soc_ledger.domain.outcomes.fixed_blocks import block_statuses
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import Tracking, tracking
from soc_ledger.domain.outcomes.weeks import WEEK_RULES, Dated, Week, WeekMaker


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


@dataclass(frozen=True, slots=True)
class Statuses:
    """§5 for one tracked case at `as_of` before pricing: its window, its rule, each week's
    dated status (`weeks.Dated`) ordered by last day, and its days in care as intervals."""

    case: CaseFacts
    tracking: Tracking
    week_rule: str
    dated: list[Dated]
    care: list[tuple[int, int]]
    spells: list[Span]
    upto: int  # the last elapsed day of the window (ordinal)


def week_statuses(
    case: CaseFacts,
    contract: ContractState | TermsTimeline,
    coverage: Mapping[str, date],
    as_of: date,
    week_rule: str | None = None,
) -> Statuses | None:
    """The dated statuses of one case's weeks (what `assess_case` prices); None if not
    tracked. The read models store these, priced by kind, without a `Week` per week."""
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
    spells = [Span.of(s) for s in case.spells]
    care = care_intervals(spells, timeline, first, count, upto)

    runs = rule == "consecutive_runs"
    dated = block_statuses(care, first, count, today, verified_to, not runs)
    if runs:
        dated.extend(run_statuses(care, first, upto, verified_to))
        dated.sort(key=lambda d: (d[2], d[1]))
    return Statuses(case, window, rule, dated, care, spells, upto)


def assess_case(
    case: CaseFacts,
    contract: ContractState | TermsTimeline,
    coverage: Mapping[str, date],
    as_of: date,
    week_rule: str | None = None,
) -> Assessment | None:
    """`case_weeks` with the tracking window and the day totals; None if not tracked."""
    timeline = TermsTimeline.of(contract)
    found = week_statuses(case, timeline, coverage, as_of, week_rule)
    if found is None:
        return None
    weeks = priced(found, timeline, coverage, found.dated)
    first = found.tracking.start.toordinal()
    days_in_care = sum(b - a for a, b in found.care)
    elapsed = max(0, found.upto - first + 1)
    return Assessment(
        case, found.tracking, found.week_rule, tuple(weeks), days_in_care, elapsed - days_in_care
    )


def priced(
    found: Statuses,
    timeline: TermsTimeline,
    coverage: Mapping[str, date],
    dated: Iterable[Dated],
) -> list[Week]:
    """The `Week`s of some of a case's dated statuses (all of `found.dated`, or the few a
    `diff` finds changed), each as `assess_case` makes it."""
    case, window, spells = found.case, found.tracking, found.spells
    maker = WeekMaker(
        case.case,
        timeline,
        merge_refs(case.refs, window.refs),
        getattr(coverage, "refs", {}).get(case.borough, ()),
    )
    return [
        maker.week(
            k,
            start,
            end,
            status,
            days_in,
            days_out,
            touching(spells, start, end) if run is None else unit_refs(spells, run, start, end),
        )
        for k, start, end, status, days_in, days_out, run in dated
    ]
