"""SPEC §5 "tracked": engagement, and the tracking window T = F + 7 x offset.

Readings:

- **Tracked.** Accepted, first family meeting F on or before `as_of`, and engaged days
  (`InterventionEnded` date if on or before `as_of`, else `as_of`, minus F) at least
  `min_engagement_days`. An intervention end dated after `as_of` had not happened at `as_of`.
  A case still open and short of `min_engagement_days` is *engaging*; one that ended sooner is
  never tracked.
- **The window.** Tracking starts at T = F + 7 x `tracking_offset_weeks[intervention]` and lasts
  `tracking_weeks` weeks; fixed block k covers T + 7k .. T + 7k + 6. The tracking terms are
  those in force on F (SPEC §3), whatever varies later.

Before/after, the reference terms (MST 17 weeks, FFT 11, 104 weeks, 28 days):

    a case accepted for FFT, F = 2018-02-26, still open
      engagement(case, contract, as_of=2018-03-20) -> "engaging"    (22 days since F)
      engagement(case, contract, as_of=2018-03-26) -> "tracked"     (28 days)
      tracking(case, contract, 2018-03-26) -> Tracking(start=2018-05-14, weeks=104, ...)
        (F + 7 x 11 = F + 77 days), .end -> 2020-05-10: weeks 0..103, week 0 is May 14-20
    the same case ended 2018-03-10 -> "not_engaged" (12 days): never tracked
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from soc_ledger.domain.contract import ContractState, DomainError
from soc_ledger.domain.outcomes.facts import CaseFacts
from soc_ledger.domain.outcomes.terms import TermsTimeline

# The case events that decide whether and when a case is tracked: a change to one of them
# moves every week of the case.
LIFECYCLE = frozenset(
    {
        "ReferralReceived",
        "ReferralAccepted",
        "ReferralDeclined",
        "FirstFamilyMeeting",
        "InterventionEnded",
    }
)


@dataclass(frozen=True, slots=True)
class Tracking:
    """A tracked case's window, by the tracking terms in force on its first family meeting."""

    start: date  # T = F + 7 x tracking_offset_weeks[intervention]
    weeks: int  # tracking_weeks
    week_rule: str  # the case's own rule
    refs: tuple[int, ...]  # the terms changes that set the tracking terms

    @property
    def end(self) -> date:
        """The last day of tracking (inclusive)."""
        return date.fromordinal(self.start.toordinal() + 7 * self.weeks - 1)


def engagement(
    case: CaseFacts, contract: ContractState | TermsTimeline, as_of: date
) -> str:
    """Where the case stands at `as_of` (SPEC §5 "tracked"):

    `not_accepted` (no acceptance), `not_started` (no first family meeting F on or before
    `as_of`), `engaging` (still open, fewer than `min_engagement_days` since F), `not_engaged`
    (ended sooner: never tracked), or `tracked`. Engaged days are the intervention's end date,
    or `as_of` while it is open (an end dated after `as_of` had not happened yet), minus F.
    `min_engagement_days` is the one in force on F.
    """
    if case.accepted is None or case.intervention is None:
        return "not_accepted"
    first = case.first_meeting
    if first is None or first > as_of:
        return "not_started"
    terms = TermsTimeline.of(contract).at(first.toordinal()).terms
    ended = case.ended if case.ended is not None and case.ended <= as_of else None
    if ((ended or as_of) - first).days >= terms.min_engagement_days:
        return "tracked"
    return "not_engaged" if ended is not None else "engaging"


def tracking(
    case: CaseFacts, contract: ContractState | TermsTimeline, as_of: date
) -> Tracking | None:
    """The tracking window of a case tracked at `as_of`, else None."""
    timeline = TermsTimeline.of(contract)
    if engagement(case, timeline, as_of) != "tracked":
        return None
    assert case.first_meeting is not None and case.intervention is not None
    seg = timeline.at(case.first_meeting.toordinal())
    offsets = seg.terms.tracking_offset_weeks
    if case.intervention not in offsets:
        raise DomainError(
            f"case {case.case!r}: the terms in force on its first family meeting "
            f"({case.first_meeting}) set no tracking_offset_weeks for {case.intervention!r}",
            "tracking_offset_weeks",
        )
    start = date.fromordinal(case.first_meeting.toordinal() + 7 * offsets[case.intervention])
    return Tracking(start, seg.terms.tracking_weeks, seg.terms.week_rule, seg.tracking_refs)
