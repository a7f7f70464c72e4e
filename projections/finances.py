"""SPEC §8: investors' returns and the contract's finances, from the facts known at `known_at`.

Pure functions of facts (plus, for income due, the liability the outcome rules compute), and
thin `*_at` wrappers that read the facts from the bitemporal read model. Money is `Decimal`
end to end; the only float is the one `pyxirr` needs, made at that edge (`xirr`).

Readings of SPEC §8 implemented here (each also in docs/finances.md):

- **As of.** An investment, drawdown, distribution, payment or cost counts at `as_of` when its
  effective date is on or before `as_of`; what is known is decided by `known_at` as everywhere.
- **Pro rata.** A `CapitalDrawn` or `DistributionPaid` without an `allocation` is shared in
  proportion to the commitments in force on its effective date (commitments effective on or
  before it; if there are none, every commitment known), in pennies by largest remainder: each
  investor gets the whole pennies of their exact share, and the pennies left over go one each
  to the largest remainders (ties to the investor code first in alphabetical order). The
  shares add up to the amount exactly. An `allocation` given on the event is used as stated.
- **Net cash** is distributed - drawn. **Money multiple** is distributed / drawn, half-even to
  4 places; none while nothing is drawn.
- **IRR** is XIRR (`pyxirr`, actual/365 fixed) on the investor's dated cash flows: drawdowns
  negative, distributions positive, on their effective dates. None before the first
  distribution (and none without a drawdown, or if XIRR finds no rate). `pyxirr` takes floats:
  each amount is converted at that edge only, and the rate it returns is read back through its
  shortest decimal representation and rounded half-even to 6 places.
- **Income due** is the outcome liability owed at (as_of, known_at), by payer, after caps;
  **income received** is the sum of `PaymentReceived` by payer. **Surplus** is income due -
  costs (negative: a deficit).
- **Cost per service user** is outcome payments (income due) / cases with a first family
  meeting on or before `as_of`, half-up to pence.
- **Shares of costs** are each category's amount / total, half-even to 4 places.
- **Co-commissioning fees** accrue day by day: each non-lead borough owes, for each day of its
  membership (accession to withdrawal inclusive) up to `as_of`, the annual fee in force that
  day (the terms in force that day, the latest `co_commissioning_fee` entry `from` on or before
  it) divided by the number of days of that financial year (1 April - 31 March, 365 or 366).
  Each borough's fee for a financial year is rounded half-up to pence once. The lead
  commissioner pays none. A financial year in progress at `as_of` is charged for its elapsed
  days; the terms name no end date, so none is assumed.
- **Avoided care costs** = outcome weeks x `counterfactual_rate` x the mix-weighted weekly
  placement cost (sum over groups of `weekly_cost` x `placement_mix`), by the latest
  `UnitCostsSet` effective on or before `as_of` (a later estimate replaces an earlier one);
  half-up to pence once. None without unit costs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction

from sqlalchemy import Engine

from soc_ledger.domain import events as ev
from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.knowledge import EVERYTHING, Fact, KnownAt
from soc_ledger.domain.outcomes.facts import cases_from_facts, positions
from soc_ledger.domain.outcomes.liability import Liability
from soc_ledger.projections import queries, readmodel

ZERO = Decimal("0.00")
PENNY = Decimal("0.01")
RATIO_PLACES = Decimal("0.0001")
IRR_PLACES = Decimal("0.000001")

INVESTMENT_TYPES = ("InvestmentCommitted", "CapitalDrawn", "DistributionPaid")
FINANCE_TYPES = (
    "PaymentReceived",
    "CostIncurred",
    "UnitCostsSet",
    "ReferralReceived",
    "FirstFamilyMeeting",
    "CapitalDrawn",
)


def pence(value: Decimal | Fraction) -> Decimal:
    """Money rounded half-up to pence (the one rounding rule for money in this module)."""
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return value.quantize(PENNY, ROUND_HALF_UP)


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """numerator / denominator half-even to 4 places; None when the denominator is zero."""
    if denominator == 0:
        return None
    return (numerator / denominator).quantize(RATIO_PLACES, ROUND_HALF_EVEN)


# --- allocation --------------------------------------------------------------------------------


def allocate(amount: Decimal, weights: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """`amount` shared in proportion to `weights`, in pennies by largest remainder.

    Every share is a whole number of pennies and the shares add up to `amount` exactly. Each
    gets the whole pennies of its exact share; the pennies left over go one each to the
    largest remainders, ties to the first key in sorted order. Zero total weight: equal shares.
    """
    if not weights:
        raise ValueError("nothing to allocate to")
    total_pennies = int((amount / PENNY).to_integral_value())
    if Decimal(total_pennies) * PENNY != amount:
        raise ValueError(f"{amount} is not a whole number of pennies")
    keys = sorted(weights)
    scaled = {k: Fraction(weights[k]) for k in keys}
    total = sum(scaled.values(), Fraction(0))
    if total <= 0:
        scaled = dict.fromkeys(keys, Fraction(1))
        total = Fraction(len(keys))
    shares: dict[str, int] = {}
    remainders: list[tuple[Fraction, str]] = []
    for k in keys:
        exact = total_pennies * scaled[k] / total
        whole = math.floor(exact)
        shares[k] = whole
        remainders.append((exact - whole, k))
    left = total_pennies - sum(shares.values())
    for _, k in sorted(remainders, key=lambda r: (-r[0], r[1]))[:left]:
        shares[k] += 1
    return {k: Decimal(shares[k]) * PENNY for k in keys}


# --- returns -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CashFlow:
    """One investor's side of a drawdown (negative) or distribution (positive)."""

    day: date
    investor: str
    amount: Decimal  # negative: capital drawn from the investor; positive: paid to them
    kind: str  # "drawn" | "distributed"
    stated: bool  # True: the event's own allocation; False: pro rata to commitments
    refs: tuple[int, ...]  # log positions of the event and its corrections


@dataclass(frozen=True, slots=True)
class InvestorReturns:
    investor: str  # "total" for the sum of all investors
    committed: Decimal
    drawn: Decimal
    distributed: Decimal
    money_multiple: Decimal | None
    irr: Decimal | None
    first_distribution: date | None

    @property
    def net(self) -> Decimal:
        return self.distributed - self.drawn


@dataclass(frozen=True, slots=True)
class Returns:
    contract: str
    as_of: date
    investors: tuple[InvestorReturns, ...]  # by investor code
    total: InvestorReturns
    flows: tuple[CashFlow, ...]  # by date, then investor


def xirr(flows: Iterable[tuple[date, Decimal]]) -> Decimal | None:
    """XIRR of dated cash flows (actual/365 fixed), half-even to 6 places; None if no rate.

    The one place money becomes a float: `pyxirr` takes floats. The rate comes back through
    its shortest decimal representation (`repr`), then is rounded.
    """
    import pyxirr

    flows = [(d, a) for d, a in flows if a != 0]
    if not any(a < 0 for _, a in flows) or not any(a > 0 for _, a in flows):
        return None
    days = [d for d, _ in flows]
    amounts = [float(a) for _, a in flows]
    try:
        rate = pyxirr.xirr(days, amounts, day_count=pyxirr.DayCount.ACT_365F, silent=True)
    except (pyxirr.InvalidPaymentsError, ValueError):  # pragma: no cover - checked above
        return None
    if rate is None or not math.isfinite(rate):
        return None
    return Decimal(repr(rate)).quantize(IRR_PLACES, ROUND_HALF_EVEN)


def returns(facts: Iterable[Fact], contract: str, as_of: date) -> Returns:
    """Per investor and in total at `as_of`: committed, drawn, distributed, net, multiple, IRR."""
    commitments: list[tuple[date, str, Decimal]] = []
    moves: list[Fact] = []
    for fact in facts:
        e = fact.event
        if e.contract != contract or e.effective > as_of:
            continue
        if isinstance(e, ev.InvestmentCommitted):
            commitments.append((e.effective, e.investor, e.amount))
        elif isinstance(e, ev.CapitalDrawn | ev.DistributionPaid):
            moves.append(fact)

    def in_force(day: date) -> dict[str, Decimal]:
        found: dict[str, Decimal] = {}
        for effective, investor, amount in commitments:
            if effective <= day:
                found[investor] = found.get(investor, ZERO) + amount
        if found:
            return found
        for _, investor, amount in commitments:
            found[investor] = found.get(investor, ZERO) + amount
        return found

    flows: list[CashFlow] = []
    for fact in moves:
        e = fact.event
        assert isinstance(e, ev.CapitalDrawn | ev.DistributionPaid)
        kind = "drawn" if isinstance(e, ev.CapitalDrawn) else "distributed"
        if e.allocation is not None:
            shares, stated = dict(e.allocation), True
        else:
            weights = in_force(e.effective)
            if not weights:
                raise QueryError(
                    f"{e.type} {e.key or '#' + str(fact.recorded.position)} on {e.effective}: "
                    "no investor has committed capital to share it"
                )
            shares, stated = allocate(e.amount, weights), False
        sign = -1 if kind == "drawn" else 1
        for investor, amount in sorted(shares.items()):
            flows.append(
                CashFlow(e.effective, investor, sign * amount, kind, stated, positions(fact))
            )
    flows.sort(key=lambda f: (f.day, f.investor, f.kind))

    committed: dict[str, Decimal] = {}
    for _, investor, amount in commitments:
        committed[investor] = committed.get(investor, ZERO) + amount
    names = sorted(set(committed) | {f.investor for f in flows})
    rows = tuple(
        _investor(name, committed.get(name, ZERO), [f for f in flows if f.investor == name])
        for name in names
    )
    total = _investor("total", sum(committed.values(), ZERO), flows)
    return Returns(contract, as_of, rows, total, tuple(flows))


def _investor(name: str, committed: Decimal, flows: list[CashFlow]) -> InvestorReturns:
    drawn = sum((-f.amount for f in flows if f.kind == "drawn"), ZERO)
    distributed = sum((f.amount for f in flows if f.kind == "distributed"), ZERO)
    first = min((f.day for f in flows if f.kind == "distributed" and f.amount), default=None)
    return InvestorReturns(
        investor=name,
        committed=committed,
        drawn=drawn,
        distributed=distributed,
        money_multiple=ratio(distributed, drawn),
        irr=xirr((f.day, f.amount) for f in flows) if first is not None else None,
        first_distribution=first,
    )


def returns_at(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> Returns:
    facts = readmodel.facts_known_at(engine, contract, known_at, INVESTMENT_TYPES)
    return returns(facts, contract, as_of)


# --- contract finances -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PayerIncome:
    payer: str
    due: Decimal  # outcome payments owed at as_of, after caps
    received: Decimal  # PaymentReceived

    @property
    def outstanding(self) -> Decimal:
        return self.due - self.received


@dataclass(frozen=True, slots=True)
class CostLine:
    category: str
    amount: Decimal
    share: Decimal | None  # of all costs, 4 places


@dataclass(frozen=True, slots=True)
class Fee:
    """What one non-lead borough owes the lead for one financial year (or its elapsed part)."""

    borough: str
    year: str  # "2018-19"
    days: int  # days of membership in that year, up to as_of, with a fee in force
    amount: Decimal


@dataclass(frozen=True, slots=True)
class AvoidedCosts:
    outcome_weeks: int
    counterfactual_rate: Decimal
    weekly_cost: Decimal  # mix-weighted weekly placement cost, exact
    amount: Decimal  # half-up to pence
    effective: date  # of the UnitCostsSet used
    refs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Finances:
    contract: str
    as_of: date
    lead_commissioner: str
    income: tuple[PayerIncome, ...]  # boroughs by code, then the top-up funder, then others
    costs: tuple[CostLine, ...]  # largest first
    service_users: int  # cases with a first family meeting on or before as_of
    fees: tuple[Fee, ...]  # by borough, then year
    avoided: AvoidedCosts | None

    @property
    def income_due(self) -> Decimal:
        return sum((p.due for p in self.income), ZERO)

    @property
    def income_received(self) -> Decimal:
        return sum((p.received for p in self.income), ZERO)

    @property
    def costs_total(self) -> Decimal:
        return sum((c.amount for c in self.costs), ZERO)

    @property
    def surplus(self) -> Decimal:
        """Income due - costs; negative is a deficit."""
        return self.income_due - self.costs_total

    @property
    def cost_per_service_user(self) -> Decimal | None:
        if not self.service_users:
            return None
        return pence(self.income_due / Decimal(self.service_users))

    def fees_by_borough(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for fee in self.fees:
            totals[fee.borough] = totals.get(fee.borough, ZERO) + fee.amount
        return totals


def finances(
    facts: Iterable[Fact], contract: ContractState, owed: Liability, as_of: date
) -> Finances:
    """The contract's finances at `as_of` from the facts and the outcome liability at as_of."""
    facts = [f for f in facts if f.event.contract == contract.contract]
    received: dict[str, Decimal] = {}
    costs: dict[str, Decimal] = {}
    unit_costs: Fact | None = None
    for fact in facts:
        e = fact.event
        if e.effective > as_of:
            continue
        if isinstance(e, ev.PaymentReceived):
            received[e.payer] = received.get(e.payer, ZERO) + e.amount
        elif isinstance(e, ev.CostIncurred):
            costs[e.category] = costs.get(e.category, ZERO) + e.amount
        elif isinstance(e, ev.UnitCostsSet):
            if unit_costs is None or e.effective >= unit_costs.event.effective:
                unit_costs = fact
    due = {p.payer: p.owed for p in owed.payers}
    payers = list(due) + sorted(set(received) - set(due))
    income = tuple(
        PayerIncome(p, due.get(p, ZERO), received.get(p, ZERO)) for p in payers
    )
    total = sum(costs.values(), ZERO)
    lines = tuple(
        CostLine(c, a, ratio(a, total))
        for c, a in sorted(costs.items(), key=lambda item: (-item[1], item[0]))
    )
    cases = cases_from_facts(facts, contract.contract)
    users = sum(1 for c in cases.values() if c.first_meeting and c.first_meeting <= as_of)
    assert contract.agreed is not None
    return Finances(
        contract=contract.contract,
        as_of=as_of,
        lead_commissioner=contract.agreed.lead_commissioner,
        income=income,
        costs=lines,
        service_users=users,
        fees=tuple(co_commissioning_fees(contract, as_of)),
        avoided=avoided_costs(unit_costs, owed.totals.weeks.outcome),
    )


def financial_year(day: date) -> date:
    """The first day (1 April) of the financial year holding `day`."""
    return date(day.year if day.month >= 4 else day.year - 1, 4, 1)


def year_label(start: date) -> str:
    return f"{start.year}-{(start.year + 1) % 100:02d}"


def co_commissioning_fees(contract: ContractState, as_of: date) -> list[Fee]:
    """Each non-lead borough's fee per financial year, pro rata to days of membership.

    Days are taken in runs that share one financial year and one set of terms: the runs break
    at each 1 April, each variation's effective date and each fee's `from` date, so a run's
    daily fee is one number.
    """
    assert contract.agreed is not None
    lead = contract.agreed.lead_commissioner
    breaks = {c.effective for c in contract.terms_history}
    for change in contract.terms_history:
        for entry in change.changes.get("co_commissioning_fee") or ():
            breaks.add(date.fromisoformat(str(entry["from"])))
    fees: list[Fee] = []
    for borough, membership in sorted(contract.boroughs.items()):
        if borough == lead:
            continue
        last = min(membership.withdrew or as_of, as_of)
        day = membership.acceded
        owed: dict[date, tuple[int, Fraction]] = {}
        while day <= last:
            year = financial_year(day)
            next_year = date(year.year + 1, 4, 1)
            stop = min([next_year - timedelta(days=1), last]
                       + [b - timedelta(days=1) for b in breaks if day < b <= last])
            days = (stop - day).days + 1
            annual = _annual_fee(contract, day)
            if annual:  # no fee in force (before the first `from`): not a day charged
                length = (next_year - year).days
                count, amount = owed.get(year, (0, Fraction(0)))
                owed[year] = (count + days, amount + Fraction(annual) * days / length)
            day = stop + timedelta(days=1)
        for year, (count, amount) in sorted(owed.items()):
            fees.append(Fee(borough, year_label(year), count, pence(amount)))
    return fees


def _annual_fee(contract: ContractState, day: date) -> Decimal:
    """The annual co-commissioning fee in force on `day` (zero before the first `from`)."""
    entries = [e for e in contract.terms_on(day).co_commissioning_fee if e.from_ <= day]
    if not entries:
        return ZERO
    return max(entries, key=lambda e: e.from_).annual_amount


def avoided_costs(unit_costs: Fact | None, outcome_weeks: int) -> AvoidedCosts | None:
    """Outcome weeks x counterfactual rate x mix-weighted weekly placement cost."""
    if unit_costs is None:
        return None
    e = unit_costs.event
    assert isinstance(e, ev.UnitCostsSet)
    missing = sorted(set(e.placement_mix) - set(e.weekly_cost))
    if missing:
        raise QueryError(
            f"UnitCostsSet {e.key or e.effective}: placement group {missing[0]!r} has a share "
            "in placement_mix but no weekly_cost"
        )
    weekly = sum((e.weekly_cost[g] * share for g, share in e.placement_mix.items()), Decimal(0))
    amount = pence(Decimal(outcome_weeks) * e.counterfactual_rate * weekly)
    return AvoidedCosts(
        outcome_weeks, e.counterfactual_rate, weekly, amount, e.effective, positions(unit_costs)
    )


def finances_at(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> Finances:
    owed = queries.liability_at(engine, contract, as_of, known_at)
    terms = queries.terms(engine, contract, known_at)
    facts = readmodel.facts_known_at(engine, contract, known_at, FINANCE_TYPES)
    return finances(facts, terms, owed, as_of)


# --- series for pictures -----------------------------------------------------------------------


def owed_over_time(result: Liability) -> dict[str, list[tuple[date, Decimal]]]:
    """Cumulative amount owed by each payer by the last day of each outcome week.

    Each borough's series is its own bill (the borough share of its cases); the top-up
    funder's is the top-up share of all. Any `as_of` is a prefix (caps take weeks in order of
    their last days), so the series at a date is what was owed at that date, as known then.
    """
    borough_of = {c.case: c.borough for c in result.cases}
    steps: dict[str, dict[date, Decimal]] = {}
    for w in result.weeks:
        if w.status != "outcome":
            continue
        for payer, amount in (
            (borough_of[w.case], w.borough_amount),
            (result.top_up_funder, w.top_up_amount),
        ):
            if payer is None or not amount:
                continue
            by_day = steps.setdefault(payer, {})
            by_day[w.end] = by_day.get(w.end, ZERO) + amount
    series: dict[str, list[tuple[date, Decimal]]] = {}
    for payer in sorted(steps, key=lambda p: (p == result.top_up_funder, p)):
        running = ZERO
        points = []
        for day in sorted(steps[payer]):
            running += steps[payer][day]
            points.append((day, running))
        series[payer] = points
    return series
