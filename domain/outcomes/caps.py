"""SPEC §5 "Caps": what each payer owes in total, over the life of the contract, at most.

The one place the caps are allocated is `CapAllocator`: `apply_caps` feeds it the outcome weeks
of `Week` rows (`liability.liability`), the latest read model the gross amounts it stores
(`projections/latest_caps.py`), the forecast the weeks still to come after the weeks already
owed (`domain/forecast.py`), and `liability.LiabilityStream` asks it which caps cover a week.
Its running totals, `plan` (the caps covering each share of a week) and `least_limits` are
the whole of the rule's public face.

Readings (also on `apply_caps`): weeks go in the order of their last day, then case id; a week
counts towards every cap covering its share, as the cap is defined on its last day or as first
defined; only a cap in force on its last day limits it; what a cap removes is `capped`, and a
week can be partly capped.

Before/after, the reference terms (SUT owes 169.00 a week), a cap {cap: "c1", payer:
"boroughs", boroughs: ["SUT"], amount: 2000.00}, 12 outcome weeks of SUT cases:

    weeks 1..11 (by last day, then case) -> owed 169.00 each: 1,859.00 so far
    week 12 -> owed 141.00, capped 28.00 (2,000.00 reached); any later SUT week -> capped 169.00
    the CBO top-up share (45.00) is not covered by "c1": owed in full
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.events import Cap
from soc_ledger.domain.outcomes.facts import CaseFacts, merge_refs
from soc_ledger.domain.outcomes.prices import ZERO
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.weeks import Week


@dataclass(frozen=True, slots=True)
class CapUse:
    """A cap covering one payer share of the weeks ending in one terms segment."""

    cap: str
    limit: Decimal | None  # the amount in force, None if not yet in force (it only counts)
    refs: tuple[int, ...]


# The caps covering the borough share and the top-up share of a week (`CapAllocator.plan`).
CapPlan = tuple[tuple[CapUse, ...], tuple[CapUse, ...]]


def apply_caps(
    weeks: Iterable[Week],
    cases: Mapping[str, CaseFacts],
    contract: ContractState | TermsTimeline,
) -> list[Week]:
    """SPEC §5 caps over all the outcome weeks of the contract; the weeks in the same order.

    Readings:
    - weeks are taken in the order of their last day, then case id;
    - a cap covers a share of a week when the case's borough is in the cap's `boroughs` (or the
      list is omitted) and the cap's payer is that share's payer: `boroughs` (or the borough's
      own code) for the borough's share, the top-up funder's code for the top-up share;
    - the cap is read as defined on the week's last day, or as first defined (its earliest
      terms change) if not yet in force; only a cap in force on the week's last day limits it;
    - a running total per cap adds what each covered share actually owes (after caps): a cap
      limits what a payer owes, so money another cap removed does not use up its room. Weeks
      owed before a cap came into force stay owed but count toward its total, so once it is in
      force only the room left (if any) is owed;
    - a share is owed up to the smallest room left among the caps limiting it; the rest is
      `capped` (recorded, never owed), so a week can be partly capped. A cap whose amount is
      varied takes the amount in force on the week's last day.
    Weeks passed in already capped are recapped from their gross price (owed + capped).
    """
    timeline = TermsTimeline.of(contract)
    weeks = list(weeks)
    caps = CapAllocator(timeline)
    if not caps.any:
        return weeks
    because: dict[tuple, tuple[int, ...]] = {}
    order = sorted((w.end, w.case, i) for i, w in enumerate(weeks) if w.status == "outcome")
    for _, _, i in order:
        week = weeks[i]
        gross_borough = week.borough_amount + week.capped_borough
        gross_top_up = week.top_up_amount + week.capped_top_up
        taken = caps.take(
            week.end.toordinal(), cases[week.case].borough, gross_borough, gross_top_up
        )
        if taken is None:
            continue
        owed_borough, owed_top_up, refs = taken
        if owed_borough == week.borough_amount and owed_top_up == week.top_up_amount:
            continue
        key = (week.because, *refs)
        if key not in because:
            because[key] = merge_refs(week.because, refs)
        weeks[i] = Week(
            week.case,
            week.index,
            week.start,
            week.end,
            week.status,
            week.variation,
            owed_borough,
            owed_top_up,
            gross_borough - owed_borough,
            gross_top_up - owed_top_up,
            week.provisional_borough,
            week.provisional_top_up,
            week.days_in_care,
            week.days_out_of_care,
            because[key],
        )
    return weeks


class CapAllocator:
    """The running totals of every cap of a contract, fed outcome weeks in cap order.

    The one place the caps are allocated: `apply_caps` feeds it `Week`s, the latest read model
    feeds it the gross amounts it stores, the forecast the weeks still to come. Weeks must come
    in the order of their last day, then case id (see `apply_caps`).
    """

    __slots__ = ("timeline", "totals", "_plans")

    def __init__(self, timeline: TermsTimeline) -> None:
        self.timeline = timeline
        self.totals: dict[str, Decimal] = {cap_id: ZERO for cap_id in timeline.first_caps}
        self._plans: dict[tuple[int, str], CapPlan] = {}

    @property
    def any(self) -> bool:
        return bool(self.totals)

    def plan(self, end: int, borough: str) -> CapPlan:
        """The caps covering the borough share and the top-up share of a week of a case of
        `borough` whose last day has ordinal `end`."""
        segment = self.timeline.index(end)
        plan = self._plans.get((segment, borough))
        if plan is None:
            plan = self._plans[(segment, borough)] = _cap_plan(self.timeline, segment, borough)
        return plan

    def take(
        self, end: int, borough: str, gross_borough: Decimal, gross_top_up: Decimal
    ) -> tuple[Decimal, Decimal, list[int]] | None:
        """What is owed of an outcome week's two shares and the positions of the caps that
        bound; None when no cap covers it. Adds what is owed to the caps' running totals."""
        plan = self.plan(end, borough)
        if not plan[0] and not plan[1]:
            return None
        refs: list[int] = []
        owed_borough = _limit(plan[0], gross_borough, self.totals, refs)
        owed_top_up = _limit(plan[1], gross_top_up, self.totals, refs)
        return owed_borough, owed_top_up, refs

    def limit(self, uses: tuple[CapUse, ...], gross: Decimal) -> Decimal:
        """What is owed of one share of `gross` under the caps `uses` (one half of a `plan`),
        added to their running totals: `take` for a caller allocating the shares apart."""
        return _limit(uses, gross, self.totals, [])

    def settle(
        self, end: int, borough: str, owed_borough: Decimal, owed_top_up: Decimal
    ) -> None:
        """Count a week already owed (its amounts after caps) towards every cap covering it,
        as `take` counted it, limiting nothing: the weeks settled before those still to come."""
        on_borough, on_top_up = self.plan(end, borough)
        totals = self.totals
        for use in on_borough:
            totals[use.cap] += owed_borough
        for use in on_top_up:
            totals[use.cap] += owed_top_up

    def copy(self) -> CapAllocator:
        """The same caps and running totals so far, to be allocated on apart (a what-if)."""
        twin = CapAllocator(self.timeline)
        twin.totals = dict(self.totals)
        twin._plans = self._plans  # plans depend on the terms alone: shared
        return twin

    def least_limits(self) -> dict[str, Decimal | None]:
        """Each cap's smallest amount over the terms segments where it is in force (None if
        it never is): a cap whose covered weeks gross no more than this never binds."""
        least: dict[str, Decimal | None] = dict.fromkeys(self.totals)
        for seg in self.timeline.segments:
            for cap_id, cap in seg.caps.items():
                now = least.get(cap_id)
                least[cap_id] = cap.amount if now is None else min(now, cap.amount)
        return least


def _cap_plan(timeline: TermsTimeline, segment: int, borough: str) -> CapPlan:
    """The caps covering the borough share and the top-up share of a week of a case of
    `borough` whose last day falls in `segment`: as in force then, else as first defined."""
    seg = timeline.segments[segment]
    shares: tuple[list[CapUse], list[CapUse]] = ([], [])
    for cap_id, first_cap in timeline.first_caps.items():
        in_force = seg.caps.get(cap_id)
        cap = in_force or first_cap
        use = CapUse(
            cap_id,
            in_force.amount if in_force is not None else None,
            seg.cap_refs.get(cap_id, ()),
        )
        for n, share in enumerate(("borough", "top_up")):
            if _covers(cap, share, timeline.top_up_funder, borough):
                shares[n].append(use)
    return tuple(shares[0]), tuple(shares[1])


def _limit(uses: tuple[CapUse, ...], gross: Decimal, totals: dict[str, Decimal], refs: list[int]):
    """What is owed of a share of `gross` under the caps `uses`; adds it to their totals and
    the positions of the caps that bound to `refs`."""
    owed = gross
    for use in uses:
        if use.limit is not None:
            room = use.limit - totals[use.cap]
            if room < gross:
                refs.extend(use.refs)
                if room < owed:
                    owed = room if room > ZERO else ZERO
    for use in uses:
        totals[use.cap] += owed
    return owed


def _covers(cap: Cap, share: str, funder: str | None, borough: str) -> bool:
    """Does `cap` cover the `share` ("borough" or "top_up") of a week of a case of `borough`?"""
    if cap.boroughs is not None and borough not in cap.boroughs:
        return False
    if share == "borough":
        return cap.payer in ("boroughs", borough)
    return funder is not None and cap.payer == funder
