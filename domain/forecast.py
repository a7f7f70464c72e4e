"""SPEC §9 forecasts: what each payer may still have to pay for cases already referred.

A pure function of the facts known at `known_at` and `as_of`, on top of the outcome rules
(`domain/outcomes/`); `projections/forecast.py` reads the facts and asks it.

Readings (each also in docs/finances.md):

- **Remaining weeks.** The weeks of cases already referred that could still pay: every
  `pending` and `unverified` week of a case tracked at `as_of`, and every week of the window of
  an *engaging* case (a first family meeting on or before `as_of`, fewer than
  `min_engagement_days` since, intervention still open at `as_of`), as if it goes on to be
  tracked. A case referred but not yet started (no first family meeting by `as_of`, not
  declined) has no dated window yet: it is counted (`not_started`) but carries no money.
  Under `consecutive_runs`, pending time counts fixed blocks and unverified time paid units.
- **Prices** are those in force on each remaining week's last day: the borough share and the
  top-up share.
- **Minimum** is nothing more: 0.00. **Maximum**: every remaining week pays in full.
  **Expected**: every remaining week pays `rate` x its price, where `rate` is the contract's
  own verified outcome rate to date: outcome weeks / (outcome + in_care weeks) of the cases
  tracked at (as_of, known_at). Pending and unverified weeks are not in the rate. With no
  outcome or in-care week yet there is no rate, and no expected figure (null).
- **After caps, settled first.** What is owed at `as_of` is settled: its amounts count
  towards every cap covering them, exactly as `caps.apply_caps` counts them. The remaining
  weeks then take the room left, in the order of their last days, then case id, each share
  limited by the caps in force on its last day (`caps.CapAllocator`: the same code as
  `apply_caps`, started from the settled totals). An unverified week that is dated
  before a week already owed therefore does not displace it.
- **Per payer.** The top-up funder's figures come from every remaining week. A borough's
  maximum is the most it could be billed: its own remaining weeks all pay and no other
  borough's do (under a cap shared by several boroughs, not all of them can reach their
  maximum at once). Its expected figure is its share when every borough's remaining weeks pay
  at `rate`. So minimum <= expected <= maximum holds for every payer. The contract's figures
  are the sums of the payers' (its maximum is an upper bound).
- **Exactness.** Maximum amounts are whole pennies. Expected amounts are carried at 50
  significant digits and each payer's total is rounded half-up to pence once; the exact
  value is a rational whose denominator is the number of weeks in the rate, so it is never
  within 10**-40 of a half-penny unless it is exactly on one, and the rounding is exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

from soc_ledger.domain import events as ev
from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.knowledge import Fact
from soc_ledger.domain.outcomes.caps import CapAllocator
from soc_ledger.domain.outcomes.facts import (
    CaseFacts,
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
)
from soc_ledger.domain.outcomes.liability import Liability, liability
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import tracking

ZERO = Decimal("0.00")
PENNY = Decimal("0.01")
RATE_PLACES = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class PayerForecast:
    payer: str  # a borough, the top-up funder, or "total"
    owed: Decimal  # owed at as_of, after caps
    remaining_weeks: int  # remaining weeks with a share for this payer
    minimum: Decimal
    expected: Decimal | None
    maximum: Decimal


@dataclass(frozen=True, slots=True)
class Forecast:
    contract: str
    as_of: date
    top_up_funder: str | None
    outcome_weeks: int  # the basis of the rate
    in_care_weeks: int
    rate: Decimal | None  # outcome / (outcome + in_care), exact to 50 digits
    cases: dict[str, int]  # tracked, engaging, not_started
    weeks: dict[str, int]  # remaining: pending, unverified, engaging
    payers: tuple[PayerForecast, ...]  # boroughs by code, then the top-up funder
    total: PayerForecast

    @property
    def rate_shown(self) -> Decimal | None:
        return None if self.rate is None else self.rate.quantize(RATE_PLACES, ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class _Remaining:
    end: date
    case: str
    borough: str
    borough_price: Decimal
    top_up_price: Decimal


def forecast(facts: Iterable[Fact], contract: str, as_of: date) -> Forecast:
    """Minimum, expected and maximum still to be paid, per borough and the top-up funder."""
    facts = list(facts)
    terms = contract_from_facts(contract, facts)
    if terms.agreed is None:
        raise QueryError(f"contract {contract!r} was not agreed as known at that time")
    cases = cases_from_facts(facts, contract)
    coverage = coverage_from_facts(facts, contract)
    timeline = TermsTimeline(terms)
    result = liability(terms, cases, coverage, as_of)
    referred: dict[str, date] = {}
    declined: set[str] = set()
    for fact in facts:
        e = fact.event
        if e.contract != contract or e.effective > as_of:
            continue
        if isinstance(e, ev.ReferralReceived):
            referred[e.case] = e.effective
        elif isinstance(e, ev.ReferralDeclined):
            declined.add(e.case)

    remaining: list[_Remaining] = []
    counts = {"pending": 0, "unverified": 0, "engaging": 0}
    outcome = in_care = 0
    for w in result.weeks:
        if w.status == "outcome":
            outcome += 1
        elif w.status == "in_care":
            in_care += 1
        else:
            counts[w.status] += 1
            remaining.append(_priced(timeline, w.end, w.case, cases[w.case].borough))
    states = {"tracked": 0, "engaging": 0, "not_started": 0}
    for case_id, state in result.engagement.items():
        if state == "tracked":
            states["tracked"] += 1
        elif state == "engaging":
            states["engaging"] += 1
            for end in _window_ends(cases[case_id], timeline):
                counts["engaging"] += 1
                remaining.append(_priced(timeline, end, case_id, cases[case_id].borough))
        elif (
            state in ("not_accepted", "not_started")
            and case_id in referred
            and case_id not in declined
        ):
            states["not_started"] += 1
    remaining.sort(key=lambda r: (r.end, r.case))

    with localcontext() as ctx:
        ctx.prec = 50
        rate = (
            Decimal(outcome) / Decimal(outcome + in_care) if outcome + in_care else None
        )
        payers = _payers(result, timeline, remaining, rate)
    total = PayerForecast(
        "total",
        sum((p.owed for p in payers), ZERO),
        len(remaining),
        ZERO,
        None if rate is None else sum((p.expected or ZERO for p in payers), ZERO),
        sum((p.maximum for p in payers), ZERO),
    )
    return Forecast(
        contract=contract,
        as_of=as_of,
        top_up_funder=result.top_up_funder,
        outcome_weeks=outcome,
        in_care_weeks=in_care,
        rate=rate,
        cases=states,
        weeks=counts,
        payers=tuple(payers),
        total=total,
    )


def _priced(timeline: TermsTimeline, end: date, case: str, borough: str) -> _Remaining:
    seg = timeline.at(end.toordinal())
    return _Remaining(end, case, borough, seg.borough_price, seg.top_up_price)


def _window_ends(case: CaseFacts, timeline: TermsTimeline) -> list[date]:
    """The last days of the weeks of an engaging case's window, as if it is tracked."""
    assert case.first_meeting is not None
    engaged = timeline.at(case.first_meeting.toordinal()).terms.min_engagement_days
    on = date.fromordinal(case.first_meeting.toordinal() + engaged)
    window = tracking(replace(case, ended=None), timeline, on)
    if window is None:  # pragma: no cover - an open case is tracked once engaged long enough
        return []
    first = window.start.toordinal()
    return [date.fromordinal(first + 7 * k + 6) for k in range(window.weeks)]


def _payers(
    result: Liability,
    timeline: TermsTimeline,
    remaining: list[_Remaining],
    rate: Decimal | None,
) -> list[PayerForecast]:
    funder = result.top_up_funder
    borough_of = {c.case: c.borough for c in result.cases}

    def settled() -> CapAllocator:
        """Every cap's running total after the weeks owed at as_of (as apply_caps adds them)."""
        caps = CapAllocator(timeline)
        for w in result.weeks:
            if w.status != "outcome":
                continue
            caps.settle(w.end.toordinal(), borough_of[w.case], w.borough_amount, w.top_up_amount)
        return caps

    base = settled()

    def run(weeks: list[_Remaining], factor: Decimal, shares: str) -> dict[str, Decimal]:
        """Each payer's total when `weeks` pay `factor` x their price, after caps."""
        caps = base.copy()
        paid: dict[str, Decimal] = {}
        for r in weeks:
            on_borough, on_top_up = caps.plan(r.end.toordinal(), r.borough)
            if shares in ("both", "borough"):
                owed = caps.limit(on_borough, r.borough_price * factor)
                paid[r.borough] = paid.get(r.borough, ZERO) + owed
            if shares in ("both", "top_up") and funder is not None:
                owed = caps.limit(on_top_up, r.top_up_price * factor)
                paid[funder] = paid.get(funder, ZERO) + owed
        return paid

    one = Decimal(1)
    expected = run(remaining, rate, "both") if rate is not None else {}
    funder_max = run(remaining, one, "top_up").get(funder, ZERO) if funder else ZERO
    by_borough: dict[str, list[_Remaining]] = {}
    for r in remaining:
        by_borough.setdefault(r.borough, []).append(r)

    rows = []
    for p in result.payers:
        if p.payer == funder:
            weeks, maximum = len(remaining), funder_max
        else:
            own = by_borough.get(p.payer, [])
            weeks = len(own)
            maximum = run(own, one, "borough").get(p.payer, ZERO)
        exp = None
        if rate is not None:
            exp = expected.get(p.payer, ZERO).quantize(PENNY, ROUND_HALF_UP)
        rows.append(PayerForecast(p.payer, p.owed, weeks, ZERO, exp, maximum))
    return rows

