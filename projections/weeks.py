"""SPEC §5 for one case: tracking, the weeks of its window, their status and price; the caps.

Pure functions of (case facts, contract terms, care-data coverage, `as_of`). Days are handled
as intervals of date ordinals, never one object per day: a case's care is a handful of
half-open intervals [first day in care, first day out of care), and a week's days in care are
its overlap with them.

Readings of SPEC §5 implemented here (each is also stated where it is applied):

- **Tracked.** Accepted, first family meeting F on or before `as_of`, and engaged days
  (`InterventionEnded` date if on or before `as_of`, else `as_of`, minus F) at least
  `min_engagement_days`. An intervention end dated after `as_of` had not happened at `as_of`.
  The tracking terms are those in force on F.
- **Days in care.** A day d of tracking week k is in care when a spell with start <= d < end
  (open: no end) is not excluded by the `excluded_legal_statuses`/`excluded_placements` in
  force on the *last day of week k*. The same classification of days serves both week rules,
  so switching the rule only regroups out-of-care days into paid weeks.
- **Days counted** are those of the tracking window on or before `as_of` ("elapsed"), whatever
  the weeks' statuses, so a pending week that is half over counts its elapsed days.
- **consecutive_runs.** Every maximal run of elapsed out-of-care days inside the window is cut
  into 7-day units from its first day; a unit is `outcome` when its 7th day is verified, else
  `unverified` (it would pay once the data arrives: coverage only moves forward, so the units
  that will pay start on the same days). Time that pays nothing is reported by the fixed
  blocks: the blocks with a day in care (`in_care`) and the blocks not yet over (`pending`).
  So `weeks.outcome` is the number of paid units; `in_care` and `pending` count fixed blocks;
  the leftover days of a run (fewer than 7) appear in no row but in the day totals. A row's
  `index` is the fixed block k its last day falls in (under `fixed_blocks`, simply k).
- **Prices.** By the terms in force on the week's last day: the borough owes
  `price_per_week - top_up_per_week`, the top-up funder `top_up_per_week`. Unverified weeks are
  priced the same way as `provisional_*`, before caps (caps limit what is owed; a forecast that
  wants provisional money after caps applies `apply_caps` to the weeks as if they paid).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from soc_ledger.domain.contract import ContractState, DomainError
from soc_ledger.domain.events import Cap, Terms
from soc_ledger.projections.facts import CaseFacts, Spell, merge_refs

ZERO = Decimal("0.00")
STATUSES = ("outcome", "in_care", "unverified", "pending")
WEEK_RULES = ("fixed_blocks", "consecutive_runs")
_OPEN = date.max.toordinal() + 1  # the end of an open spell: after every real day

# Terms that decide a week's price and status, and those that decide a case's tracking.
_PRICE_KEYS = (
    "price_per_week",
    "top_up_per_week",
    "excluded_legal_statuses",
    "excluded_placements",
)
_TRACKING_KEYS = ("tracking_weeks", "tracking_offset_weeks", "min_engagement_days", "week_rule")


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


# --- the terms as a step function of the day --------------------------------------------


@dataclass(frozen=True, slots=True)
class _Segment:
    """The terms in force from one variation date until the next, ready for pricing."""

    terms: Terms
    variation: str
    borough_price: Decimal
    top_up_price: Decimal
    excluded_statuses: frozenset[str]
    excluded_placements: frozenset[str]
    caps: dict[str, Cap]
    cap_refs: dict[str, tuple[int, ...]]
    price_refs: tuple[int, ...]
    tracking_refs: tuple[int, ...]


class TermsTimeline:
    """`ContractState.terms_on`/`caps_on`/`variation_on` computed once per variation date.

    `terms_on` validates a merged dict on every call; the weeks of 40,000 cases need a lookup
    instead. Each segment is built by the contract's own methods, so the rule stays in one
    place (`domain.contract`).
    """

    def __init__(self, contract: ContractState) -> None:
        self.contract = contract
        refs: Mapping[str, tuple[int, ...]] = getattr(contract, "refs", {})
        dates = sorted({c.effective for c in contract.in_force(date.max)[1:]})
        self.starts = [d.toordinal() for d in dates]
        self.segments = [_segment(contract, day, refs) for day in [date.min, *dates]]
        self.top_up_funder = contract.agreed.top_up_funder if contract.agreed else None
        # Every cap id, as first defined (in the earliest segment where it is in force).
        self.first_caps: dict[str, Cap] = {}
        for seg in self.segments:
            for cap_id, cap in seg.caps.items():
                self.first_caps.setdefault(cap_id, cap)

    def index(self, day: int) -> int:
        return bisect_right(self.starts, day)

    def at(self, day: int) -> _Segment:
        """The terms in force on the day with this ordinal."""
        return self.segments[bisect_right(self.starts, day)]


def _segment(contract: ContractState, day: date, refs: Mapping[str, tuple[int, ...]]) -> _Segment:
    in_force = contract.in_force(day)
    terms = contract.terms_on(day)

    def decided_by(keys: Iterable[str]) -> tuple[int, ...]:
        found = [refs.get(in_force[-1].variation, ())]
        for key in keys:
            setter = next((c for c in reversed(in_force) if key in c.changes), None)
            if setter is not None:
                found.append(refs.get(setter.variation, ()))
        return merge_refs(*found)

    cap_refs = {
        cap.cap: refs.get(change.variation, ()) for change in in_force for cap in change.caps
    }
    return _Segment(
        terms=terms,
        variation=contract.variation_on(day),
        borough_price=terms.price_per_week - terms.top_up_per_week,
        top_up_price=terms.top_up_per_week,
        excluded_statuses=frozenset(terms.excluded_legal_statuses),
        excluded_placements=frozenset(terms.excluded_placements),
        caps={c.cap: c for c in contract.caps_on(day)},
        cap_refs=cap_refs,
        price_refs=decided_by(_PRICE_KEYS),
        tracking_refs=decided_by(_TRACKING_KEYS),
    )


def _timeline(contract: ContractState | TermsTimeline) -> TermsTimeline:
    return contract if isinstance(contract, TermsTimeline) else TermsTimeline(contract)


# --- tracking ----------------------------------------------------------------------------


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
    terms = _timeline(contract).at(first.toordinal()).terms
    ended = case.ended if case.ended is not None and case.ended <= as_of else None
    if ((ended or as_of) - first).days >= terms.min_engagement_days:
        return "tracked"
    return "not_engaged" if ended is not None else "engaging"


def tracking(
    case: CaseFacts, contract: ContractState | TermsTimeline, as_of: date
) -> Tracking | None:
    """The tracking window of a case tracked at `as_of`, else None."""
    timeline = _timeline(contract)
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


# --- the weeks of one case -----------------------------------------------------------------


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
    timeline = _timeline(contract)
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
    maker = _WeekMaker(
        case.case,
        timeline,
        merge_refs(case.refs, window.refs),
        getattr(coverage, "refs", {}).get(case.borough, ()),
    )
    spells = [_Span.of(s) for s in case.spells]
    care = _care_intervals(spells, timeline, first, count, upto)

    weeks: list[Week] = []
    for k in range(count):
        start = first + 7 * k
        end = start + 6
        last = min(end, today)
        days_in = _overlap(care, start, last) if last >= start else 0
        days_out = max(0, last - start + 1) - days_in
        if end > today:
            status = "pending"
        elif days_in:
            status = "in_care"
        elif end <= verified_to:
            status = "outcome"
        else:
            status = "unverified"
        if rule == "consecutive_runs" and status in ("outcome", "unverified"):
            continue
        weeks.append(
            maker.week(k, start, end, status, days_in, days_out, _touching(spells, start, end))
        )

    if rule == "consecutive_runs":
        weeks.extend(_run_units(maker, spells, care, first, upto, verified_to))
        weeks.sort(key=lambda w: (w.end, w.start))

    days_in_care = sum(b - a for a, b in care)
    elapsed = max(0, upto - first + 1)
    return Assessment(case, window, rule, tuple(weeks), days_in_care, elapsed - days_in_care)


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int  # exclusive; _OPEN while open
    legal_status: str
    placement: str
    refs: tuple[int, ...]

    @classmethod
    def of(cls, spell: Spell) -> _Span:
        end = spell.end.toordinal() if spell.end is not None else _OPEN
        return cls(spell.start.toordinal(), end, spell.legal_status, spell.placement, spell.refs)


def _care_intervals(
    spells: list[_Span], timeline: TermsTimeline, first: int, count: int, upto: int
) -> list[tuple[int, int]]:
    """The window's elapsed days in care, [first day, first day after) ordinals, disjoint.

    Each day is judged by the exclusions in force on the last day of its fixed block, so the
    blocks are taken in groups that share one set of terms.
    """
    if upto < first or not spells:
        return []
    elapsed_blocks = min(count, (upto - first) // 7 + 1)
    pieces: list[tuple[int, int]] = []
    k = 0
    while k < elapsed_blocks:
        i = timeline.index(first + 7 * k + 6)
        seg = timeline.segments[i]
        if i < len(timeline.starts):  # blocks ending before the next variation share `seg`
            k_next = max(k + 1, -((first + 6 - timeline.starts[i]) // 7))
        else:
            k_next = elapsed_blocks
        k_next = min(k_next, elapsed_blocks)
        lo, hi = first + 7 * k, min(first + 7 * k_next, upto + 1)
        for s in spells:
            if s.legal_status in seg.excluded_statuses or s.placement in seg.excluded_placements:
                continue
            a, b = max(s.start, lo), min(s.end, hi)
            if a < b:
                pieces.append((a, b))
        k = k_next
    pieces.sort()
    merged: list[tuple[int, int]] = []
    for a, b in pieces:
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def _overlap(care: list[tuple[int, int]], first: int, last: int) -> int:
    """Days in care among the days first..last (inclusive)."""
    days = 0
    for a, b in care:  # a handful of intervals per case
        if a > last:
            break
        if b > first:
            days += min(b, last + 1) - max(a, first)
    return days


def _touching(spells: list[_Span], first: int, last: int) -> tuple[int, ...]:
    """Positions of the spells (excluded or not) with a day in first..last."""
    found: tuple[int, ...] = ()
    for s in spells:
        if s.start <= last and s.end > first:
            found += s.refs
    return found


def _run_units(
    maker: _WeekMaker,
    spells: list[_Span],
    care: list[tuple[int, int]],
    first: int,
    upto: int,
    verified_to: int,
) -> list[Week]:
    """`consecutive_runs`: each maximal run of elapsed out-of-care days in the window pays
    floor(length / 7) weeks, each dated by its 7th day; a unit whose 7th day is not verified
    is `unverified`. A unit's `because` names the spells around its run (the stay that ended
    where the run starts and the one that cuts it) and any it touches."""
    units: list[Week] = []
    cursor = first
    for a, b in [*care, (upto + 1, upto + 1)]:
        if a > cursor:
            bounds = tuple(p for s in spells if s.end == cursor or s.start == a for p in s.refs)
            for start in range(cursor, a - 6, 7):
                end = start + 6
                status = "outcome" if end <= verified_to else "unverified"
                units.append(
                    maker.week((end - first) // 7, start, end, status, 0, 7,
                               bounds + _touching(spells, start, end))
                )
        cursor = max(cursor, b)
    return units


class _WeekMaker:
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
        return Week(
            self.case,
            index,
            date.fromordinal(start),
            date.fromordinal(end),
            status,
            seg.variation,
            seg.borough_price if outcome else ZERO,
            seg.top_up_price if outcome else ZERO,
            ZERO,
            ZERO,
            seg.borough_price if unverified else ZERO,
            seg.top_up_price if unverified else ZERO,
            days_in,
            days_out,
            because,
        )


# --- caps --------------------------------------------------------------------------------


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
    timeline = _timeline(contract)
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
    feeds it the gross amounts it stores. Weeks must come in the order of their last day, then
    case id (see `apply_caps`).
    """

    __slots__ = ("timeline", "totals", "_plans")

    def __init__(self, timeline: TermsTimeline) -> None:
        self.timeline = timeline
        self.totals: dict[str, Decimal] = {cap_id: ZERO for cap_id in timeline.first_caps}
        self._plans: dict[tuple[int, str], tuple[tuple[_CapUse, ...], tuple[_CapUse, ...]]] = {}

    @property
    def any(self) -> bool:
        return bool(self.totals)

    def plan(self, end: int, borough: str) -> tuple[tuple[_CapUse, ...], tuple[_CapUse, ...]]:
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

    def least_limits(self) -> dict[str, Decimal | None]:
        """Each cap's smallest amount over the terms segments where it is in force (None if
        it never is): a cap whose covered weeks gross no more than this never binds."""
        least: dict[str, Decimal | None] = dict.fromkeys(self.totals)
        for seg in self.timeline.segments:
            for cap_id, cap in seg.caps.items():
                now = least.get(cap_id)
                least[cap_id] = cap.amount if now is None else min(now, cap.amount)
        return least


@dataclass(frozen=True, slots=True)
class _CapUse:
    """A cap covering one payer share of the weeks ending in one terms segment."""

    cap: str
    limit: Decimal | None  # the amount in force, None if not yet in force (it only counts)
    refs: tuple[int, ...]


def _cap_plan(
    timeline: TermsTimeline, segment: int, borough: str
) -> tuple[tuple[_CapUse, ...], tuple[_CapUse, ...]]:
    """The caps covering the borough share and the top-up share of a week of a case of
    `borough` whose last day falls in `segment`: as in force then, else as first defined."""
    seg = timeline.segments[segment]
    shares: tuple[list[_CapUse], list[_CapUse]] = ([], [])
    for cap_id, first_cap in timeline.first_caps.items():
        in_force = seg.caps.get(cap_id)
        cap = in_force or first_cap
        use = _CapUse(
            cap_id,
            in_force.amount if in_force is not None else None,
            seg.cap_refs.get(cap_id, ()),
        )
        for n, share in enumerate(("borough", "top_up")):
            if _covers(cap, share, timeline.top_up_funder, borough):
                shares[n].append(use)
    return tuple(shares[0]), tuple(shares[1])


def _limit(uses: tuple[_CapUse, ...], gross: Decimal, totals: dict[str, Decimal], refs: list[int]):
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
