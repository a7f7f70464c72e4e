"""SPEC §5 "Totals": every week of every tracked case after caps, summed by case, borough, payer
and contract — pure, no I/O, no clock.

The pieces, each a pure function in its own module of `domain/outcomes/` (see `docs.md`):

- `facts`: `contract_from_facts`, `cases_from_facts`, `coverage_from_facts` fold the facts
  known at `known_at` (`domain.knowledge.known_facts`) into terms, cases and coverage;
- `assessment`: `assess_case` (one case's weeks and their status and price, before caps), and
  `caps`: `apply_caps` (the caps, over all cases of the contract);
- here: `liability`, every week of every tracked case after caps, with totals by case,
  borough, payer and contract; `LiabilityStream`, the same totals case by case.

All money is `Decimal` in pounds and pence (every price and cap is already pence, and the rules
only add and subtract, so nothing is ever rounded); the share of days out of care is the only
division and is rounded half-even to 4 places (0.8912 = 89.12%).

Usage::

    facts = known_facts(history, KnownAt.on(known_at))
    contract = contract_from_facts("plcip", facts)
    result = liability(contract, cases_from_facts(facts, "plcip"),
                       coverage_from_facts(facts, "plcip"), as_of)

Before/after, the reference terms, two SUT cases tracked from 2019-05-06 (one with a stay
2019-05-15 .. 2019-05-20), all verified, `as_of` 2019-07-31:

    totals.weeks -> outcome 23, in_care 1, unverified 0, pending 184
    payers -> SUT owed 3,887.00 (23 x 169.00), CBO owed 1,035.00 (23 x 45.00)
    totals.days_in_care 5, days_out_of_care 169, share_out_of_care 0.9713
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.outcomes.assessment import Assessment, Statuses, assess_case, week_statuses
from soc_ledger.domain.outcomes.caps import CapAllocator, apply_caps
from soc_ledger.domain.outcomes.facts import CaseFacts
from soc_ledger.domain.outcomes.prices import ZERO
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import engagement
from soc_ledger.domain.outcomes.weeks import STATUSES, Week

SHARE_PLACES = Decimal("0.0001")


def share_out_of_care(days_in_care: int, days_out_of_care: int) -> Decimal | None:
    """Tracked days out of care as a fraction, half-even to 4 places; None with no days."""
    days = days_in_care + days_out_of_care
    if days == 0:
        return None
    return (Decimal(days_out_of_care) / Decimal(days)).quantize(SHARE_PLACES, ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class WeekCounts:
    """Weeks by status (under `consecutive_runs`, `outcome`/`unverified` count 7-day units)."""

    outcome: int = 0
    in_care: int = 0
    unverified: int = 0
    pending: int = 0

    def as_dict(self) -> dict[str, int]:
        return {s: getattr(self, s) for s in STATUSES}


@dataclass(frozen=True, slots=True)
class Figures:
    """The §5 totals of a group of weeks: counts, money split by payer share, and days."""

    weeks: WeekCounts
    owed_borough: Decimal
    owed_top_up: Decimal
    provisional_borough: Decimal
    provisional_top_up: Decimal
    capped_borough: Decimal
    capped_top_up: Decimal
    days_in_care: int  # elapsed days of tracking windows in care
    days_out_of_care: int  # elapsed days of tracking windows out of care (verified or not)

    @property
    def owed(self) -> Decimal:
        return self.owed_borough + self.owed_top_up

    @property
    def provisional(self) -> Decimal:
        return self.provisional_borough + self.provisional_top_up

    @property
    def capped(self) -> Decimal:
        return self.capped_borough + self.capped_top_up

    @property
    def share_out_of_care(self) -> Decimal | None:
        return share_out_of_care(self.days_in_care, self.days_out_of_care)


@dataclass(frozen=True, slots=True)
class CaseSummary(Figures):
    case: str
    borough: str
    intervention: str
    first_meeting: date
    tracking_start: date
    tracking_end: date  # last day of tracking, inclusive
    week_rule: str  # the rule applied


@dataclass(frozen=True, slots=True)
class BoroughSummary(Figures):
    """The cases referred by one borough (money of both shares; the borough's own bill is in
    `Liability.payers`)."""

    borough: str
    cases_tracked: int


@dataclass(frozen=True, slots=True)
class ContractTotals(Figures):
    cases_tracked: int


@dataclass(frozen=True, slots=True)
class PayerTotals:
    """What one payer (a borough, or the top-up funder) owes, would owe, and has capped."""

    payer: str
    owed: Decimal
    provisional: Decimal
    capped: Decimal


@dataclass(frozen=True, slots=True)
class Liability:
    contract: str
    as_of: date
    week_rule: str | None  # the rule forced on every case, None: each case's own
    top_up_funder: str | None
    weeks: tuple[Week, ...]  # every week of every tracked case after caps, by case then end
    cases: tuple[CaseSummary, ...]  # tracked cases, by case id
    boroughs: tuple[BoroughSummary, ...]  # every member borough and every case's borough
    payers: tuple[PayerTotals, ...]  # boroughs by code, then the top-up funder
    totals: ContractTotals
    engagement: Mapping[str, str] = field(default_factory=dict)  # every case -> `engagement`
    by_case: Mapping[str, tuple[CaseSummary, tuple[Week, ...]]] = field(default_factory=dict)

    @property
    def by_payer(self) -> dict[str, Decimal]:
        """payer code -> amount owed."""
        return {p.payer: p.owed for p in self.payers}

    def case(self, case: str) -> CaseSummary | None:
        """The summary of a tracked case, None if it is not tracked."""
        found = self.by_case.get(case)
        return found[0] if found is not None else None

    def weeks_of(self, case: str) -> list[Week]:
        """The weeks of a case after caps, by last day ([] if it is not tracked)."""
        found = self.by_case.get(case)
        return list(found[1]) if found is not None else []


class Tally:
    """Running sums for one `Figures`."""

    __slots__ = ("counts", "money", "days_in", "days_out", "cases")

    def __init__(self) -> None:
        self.counts = dict.fromkeys(STATUSES, 0)
        self.money = [ZERO] * 6
        self.days_in = self.days_out = self.cases = 0

    def add_week(self, w: Week) -> None:
        self.counts[w.status] += 1
        m = self.money
        m[0] += w.borough_amount
        m[1] += w.top_up_amount
        m[2] += w.provisional_borough
        m[3] += w.provisional_top_up
        m[4] += w.capped_borough
        m[5] += w.capped_top_up

    def add(self, other: Tally) -> None:
        # Unrolled: summing 40,000 cases into their boroughs and the contract is a hot loop.
        counts, more = self.counts, other.counts
        counts["outcome"] += more["outcome"]
        counts["in_care"] += more["in_care"]
        counts["unverified"] += more["unverified"]
        counts["pending"] += more["pending"]
        m, n = self.money, other.money
        self.money = [m[0] + n[0], m[1] + n[1], m[2] + n[2], m[3] + n[3], m[4] + n[4], m[5] + n[5]]
        self.days_in += other.days_in
        self.days_out += other.days_out
        self.cases += 1

    def figures(self) -> dict:
        names = (
            "owed_borough", "owed_top_up", "provisional_borough", "provisional_top_up",
            "capped_borough", "capped_top_up",
        )
        return {
            "weeks": WeekCounts(**self.counts),
            **dict(zip(names, self.money, strict=True)),
            "days_in_care": self.days_in,
            "days_out_of_care": self.days_out,
        }


def liability(
    contract: ContractState,
    cases: Mapping[str, CaseFacts],
    coverage: Mapping[str, date],
    as_of: date,
    week_rule: str | None = None,
) -> Liability:
    """Every week of every case tracked at `as_of`, after caps, with totals.

    `week_rule` None applies each case's own rule; a rule name recomputes every case under it
    (the what-if of SPEC §10 `liability --week-rule`). Totals by payer give each borough the
    borough share of its cases and the top-up funder the top-up share of all.
    """
    timeline = TermsTimeline(contract)
    assessed: list[Assessment] = []
    states: dict[str, str] = {}
    for case_id in sorted(cases):
        case = cases[case_id]
        states[case_id] = engagement(case, timeline, as_of)
        if states[case_id] == "tracked":
            result = assess_case(case, timeline, coverage, as_of, week_rule)
            assert result is not None
            assessed.append(result)

    weeks = apply_caps([w for a in assessed for w in a.weeks], cases, timeline)
    per_case = []
    position = 0
    for a in assessed:
        own = tuple(weeks[position : position + len(a.weeks)])
        position += len(a.weeks)
        per_case.append((a, tally_weeks(a, own), own))
    return summarise(
        timeline, {c.borough for c in cases.values()}, per_case, as_of, week_rule, states
    )


def tally_weeks(a: Assessment, weeks: Iterable[Week]) -> Tally:
    """The totals of one assessed case from its (capped) weeks."""
    tally = Tally()
    tally.days_in, tally.days_out = a.days_in_care, a.days_out_of_care
    for w in weeks:
        tally.add_week(w)
    return tally


def summarise(
    timeline: TermsTimeline,
    boroughs_of_cases: Iterable[str],
    assessed: Sequence[tuple[Assessment, Tally, tuple[Week, ...]]],
    as_of: date,
    week_rule: str | None,
    states: Mapping[str, str],
) -> Liability:
    """Totals by case, borough, payer and contract from each tracked case's totals.

    Each item is a case's assessment, the totals of its weeks after caps, and those weeks
    (empty when the totals were read already summed).
    """
    contract = timeline.contract
    funder = timeline.top_up_funder
    payers: dict[str, list[Decimal]] = {
        code: [ZERO, ZERO, ZERO] for code in sorted({*contract.boroughs, *boroughs_of_cases})
    }
    if funder is not None:
        payers.setdefault(funder, [ZERO, ZERO, ZERO])
    boroughs: dict[str, Tally] = {code: Tally() for code in payers if code != funder}
    contract_tally = Tally()
    summaries: list[CaseSummary] = []
    by_case: dict[str, tuple[CaseSummary, tuple[Week, ...]]] = {}
    weeks: list[Week] = []
    for a, tally, own in assessed:
        m = tally.money
        borough = payers[a.case.borough]
        borough[0] += m[0]
        borough[1] += m[2]
        borough[2] += m[4]
        if funder is not None:
            top_up = payers[funder]
            top_up[0] += m[1]
            top_up[1] += m[3]
            top_up[2] += m[5]
        weeks.extend(own)
        boroughs.setdefault(a.case.borough, Tally()).add(tally)
        contract_tally.add(tally)
        assert a.case.intervention is not None and a.case.first_meeting is not None
        summaries.append(
            CaseSummary(
                **tally.figures(),
                case=a.case.case,
                borough=a.case.borough,
                intervention=a.case.intervention,
                first_meeting=a.case.first_meeting,
                tracking_start=a.tracking.start,
                tracking_end=a.tracking.end,
                week_rule=a.week_rule,
            )
        )
        by_case[a.case.case] = (summaries[-1], own)

    return Liability(
        contract=contract.contract,
        as_of=as_of,
        week_rule=week_rule,
        top_up_funder=funder,
        weeks=tuple(weeks),
        cases=tuple(summaries),
        boroughs=tuple(
            BoroughSummary(**t.figures(), borough=code, cases_tracked=t.cases)
            for code, t in sorted(boroughs.items())
        ),
        payers=tuple(PayerTotals(code, *money) for code, money in payers.items()),
        totals=ContractTotals(**contract_tally.figures(), cases_tracked=contract_tally.cases),
        engagement=states,
        by_case=by_case,
    )


class LiabilityStream:
    """`liability` fed one case at a time, keeping no week: for a report over every case of a
    large contract (SPEC §10 `liability --known-at`, `diff`), whose weeks would not fit in
    memory together.

    Each tracked case is assessed as it comes and only its totals are kept (its `Assessment`
    without weeks, and its `Tally`). That is the exact answer as long as no cap binds, since
    `apply_caps` leaves every week it does not limit as it was. A cap can only bind when the
    gross of the outcome weeks it covers exceeds its smallest amount in force
    (`CapAllocator.least_limits`; the reasoning of `latest_caps.recap`): the stream sums that gross
    per cap as it goes and sets `binds` the moment one exceeds it, and the caller must then
    answer with `liability` over every week instead. Cases may come in any order.
    """

    __slots__ = (
        "timeline", "coverage", "as_of", "week_rule", "binds", "_caps", "_least", "_gross",
        "_per_case", "_states", "_boroughs",
    )

    def __init__(
        self,
        contract: ContractState | TermsTimeline,
        coverage: Mapping[str, date],
        as_of: date,
        week_rule: str | None = None,
    ) -> None:
        self.timeline = TermsTimeline.of(contract)
        self.coverage = coverage
        self.as_of = as_of
        self.week_rule = week_rule
        self.binds = False  # True once some cap may limit a week: the totals are then wrong
        self._caps = CapAllocator(self.timeline)
        # Only caps ever in force can limit anything; one never in force only counts.
        self._least = {
            cap: limit for cap, limit in self._caps.least_limits().items() if limit is not None
        }
        self._gross: dict[str, Decimal] = dict.fromkeys(self._least, ZERO)
        self._per_case: list[tuple[Assessment, Tally, tuple[Week, ...]]] = []
        self._states: dict[str, str] = {}
        self._boroughs: set[str] = set()

    def add(self, case: CaseFacts) -> Assessment | None:
        """Take one case (every case, tracked or not: the engagement of each and the borough
        of each are part of the answer); its assessment with its weeks before caps, None if it
        is not tracked. A case must be given once."""
        self._boroughs.add(case.borough)
        state = self._states[case.case] = engagement(case, self.timeline, self.as_of)
        if state != "tracked":
            return None
        assessed = assess_case(case, self.timeline, self.coverage, self.as_of, self.week_rule)
        assert assessed is not None
        if self._least and not self.binds:
            self._count_gross(assessed)
        self._per_case.append(
            (replace(assessed, weeks=()), tally_weeks(assessed, assessed.weeks), ())
        )
        return assessed

    def statuses(self, case: CaseFacts) -> Statuses | None:
        """The case's dated statuses as `add` would assess it (None if not tracked), added to
        no total: for a `diff` whose totals are read from the case versions, which prices only
        the weeks that differ (`assessment.priced`)."""
        if engagement(case, self.timeline, self.as_of) != "tracked":
            return None
        found = week_statuses(case, self.timeline, self.coverage, self.as_of, self.week_rule)
        assert found is not None
        return found

    def _count_gross(self, assessed: Assessment) -> None:
        """Add the case's outcome weeks to the gross of the caps that cover them, as
        `apply_caps` would feed them to those caps (before caps, a week's amount is gross)."""
        plan, gross, borough = self._caps.plan, self._gross, assessed.case.borough
        for w in assessed.weeks:
            if w.status != "outcome":
                continue
            on_borough, on_top_up = plan(w.end.toordinal(), borough)
            for use in on_borough:
                if use.cap in gross:
                    gross[use.cap] += w.borough_amount
            for use in on_top_up:
                if use.cap in gross:
                    gross[use.cap] += w.top_up_amount
        least = self._least
        if any(total > least[cap] for cap, total in gross.items()):
            self.binds = True

    def result(self) -> Liability:
        """The answer `liability` gives for the cases added (no weeks kept: `weeks` and each
        case's weeks are empty); only while no cap `binds`."""
        if self.binds:
            raise ValueError("a cap may bind: the caps need every week (use `liability`)")
        per_case = sorted(self._per_case, key=lambda item: item[0].case.case)
        states = dict(sorted(self._states.items()))  # `liability` lists cases in id order
        return summarise(
            self.timeline, self._boroughs, per_case, self.as_of, self.week_rule, states
        )
