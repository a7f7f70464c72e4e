"""The plan of an SSDA903 import: `plan_import` matches the return's rows to referred cases and
turns it into the events that make the ledger say what the return says: new, corrected and
retracted episodes, then `CareDataReceived`. Pure: the ledger is read before (`view`).

Readings (an auditor's, written down in docs/ssda903.md):

- **Matching.** A row is used only when its CHILD, pseudonymised with the ledger's key, is the
  `child_ref` of a referral of that borough (known now, corrections applied). Every other row
  is counted and discarded: nothing of it is stored. A child referred twice (two cases) gets
  the episodes in both cases.
- **Re-imports.** A re-import of the same return plans nothing; a different return with the
  same received date, an older return than one already imported for the period, or a period
  overlapping another imported period of the borough is refused.
- **Resubmission.** A return for a period imported before supersedes it: the planner compares
  it with the facts known now for that borough and period (episode ids with the period's
  prefix) and records only the differences, all with `recorded_on` = the received date, so
  answers known before that date still read the first return.
- **The period.** A return that does not fit the period given (a row starting after it, or
  most matched rows outside it) is refused, naming the period it looks like (`fitting`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from soc_ledger.ledger.problems import Problem
from soc_ledger.ledger.recording import Incoming
from soc_ledger.ledger.ssda903.clipping import clip_child
from soc_ledger.ledger.ssda903.fitting import check_matched, check_starts
from soc_ledger.ledger.ssda903.period import Period, ReturnError
from soc_ledger.ledger.ssda903.reading import EpisodeRow, Return
from soc_ledger.ledger.ssda903.view import LedgerView, episode_id
from soc_ledger.ledger.ssda903.writer import Stated, Summary, Writer


@dataclass(slots=True)
class Plan:
    incoming: list[Incoming]
    summary: Summary
    problems: list[Problem]


def check_receipts(
    view: LedgerView, borough: str, period: Period, received_on: date, digest: str
) -> bool:
    """Is this return already imported? ReturnError if it cannot supersede what is there."""
    known = False
    for receipt in view.receipts:
        if receipt.period == period:
            if receipt.received_on > received_on:
                raise ReturnError(
                    f"a later return for {borough} {period} (received {receipt.received_on}) "
                    f"is already imported; a return received on {received_on} cannot "
                    "supersede it"
                )
            if receipt.received_on == received_on:
                if receipt.digest != digest:
                    raise ReturnError(
                        f"a different return for {borough} {period} was already imported as "
                        f"received on {received_on}; give a resubmission its own --received-on"
                    )
                known = True
        elif receipt.period.overlaps(period):
            raise ReturnError(
                f"the period {period} overlaps the period {receipt.period} of a return of "
                f"{borough} already imported; a resubmission must name the same period"
            )
    return known


def plan_import(
    ret: Return,
    view: LedgerView,
    borough: str,
    period: Period,
    received_on: date,
    pseudonym: Callable[[str], str],
) -> Plan:
    """The events that make the ledger say what this return says about its period."""
    check_starts(ret, period)
    summary = Summary(borough, period, received_on, rows=len(ret.episodes))
    summary.header_children = ret.header_children
    summary.already_imported = check_receipts(view, borough, period, received_on, ret.digest)

    by_child: dict[str, list[EpisodeRow]] = defaultdict(list)
    for row in ret.episodes:
        by_child[row.child].append(row)
    summary.children = sum(1 for child in by_child if child)

    problems: list[Problem] = []
    stated: dict[str, dict[str, Stated]] = defaultdict(dict)
    matched_cases: set[str] = set()
    for child, rows in by_child.items():
        cases = view.referred.get(pseudonym(child), ()) if child else ()
        if not cases:
            summary.rows_unmatched += len(rows)
            continue
        summary.children_matched += 1
        matched_cases.update(cases)
        clips, outside, found = clip_child(rows, period)
        summary.rows_outside += outside
        summary.rows_used += len(rows) - outside
        problems.extend(found)
        for case in cases:
            for clip in clips:
                name = episode_id(borough, period, clip.decom)
                stated[case][name] = Stated(case, name, clip)
    all_cases = {case for found in view.referred.values() for case in found}
    summary.cases_matched = len(matched_cases)
    summary.cases_absent = len(all_cases - matched_cases)
    check_matched(ret, period, summary.rows_used, summary.rows_outside)
    if problems:
        return Plan([], summary, sorted(problems, key=lambda p: (p.source, p.line, p.field)))

    writer = Writer(ret, view, borough, period, received_on)
    for case in sorted(all_cases):
        writer.case(case, stated.get(case, {}), view.recorded.get(case, {}), summary)
    if writer.problems:
        return Plan([], summary, writer.problems)
    if not summary.already_imported:
        writer.receipt()
    return Plan(writer.incoming, summary, [])
