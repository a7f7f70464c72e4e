"""Investors' returns (SPEC §8): committed, drawn, distributed, net cash, money multiple, IRR.

The readings (also in docs/finances.md):

- **As of.** An investment, drawdown or distribution counts at `as_of` when its effective date
  is on or before `as_of`; what is known is decided by `known_at` as everywhere.
- **Pro rata.** A `CapitalDrawn` or `DistributionPaid` without an `allocation` is shared in
  proportion to the commitments in force on its effective date (commitments effective on or
  before it; if there are none, every commitment known), in pennies by largest remainder
  (`allocation.allocate`). An `allocation` given on the event is used as stated.
- **Net cash** is distributed - drawn. **Money multiple** is distributed / drawn, half-even to
  4 places; none while nothing is drawn.
- **IRR** is XIRR (`pyxirr`, actual/365 fixed) on the investor's dated cash flows: drawdowns
  negative, distributions positive, on their effective dates. None before the first
  distribution (and none without a drawdown, or if XIRR finds no rate). `pyxirr` takes floats:
  each amount is converted at that edge only, and the rate it returns is read back through its
  shortest decimal representation and rounded half-even to 6 places.

Before and after, commitments in force on the day (tests/test_finances.py):

    InvestmentCommitted  A 300.00, 2018-01-01
    CapitalDrawn         90.00, 2018-02-01 (no allocation: A alone has committed: A 90.00)
    InvestmentCommitted  B 100.00, 2018-03-01
    CapitalDrawn         40.00, 2018-04-01 (no allocation: A 300 / B 100: A 30.00, B 10.00)

    returns(..., as_of=2018-12-31): A drawn 120.00, B drawn 10.00; total committed 400.00,
    drawn 130.00, money multiple 0.0000, IRR none (nothing distributed yet)

and the worked example of Microsoft Excel's XIRR documentation (Excel: 0.373362535):

    >>> xirr([(date(2008, 1, 1), Decimal("-10000")), (date(2008, 3, 1), Decimal("2750")),
    ...       (date(2008, 10, 30), Decimal("4250")), (date(2009, 2, 15), Decimal("3250")),
    ...       (date(2009, 4, 1), Decimal("2750"))])
    Decimal('0.373363')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from soc_ledger.domain import events as ev
from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.finances.allocation import allocate
from soc_ledger.domain.finances.rounding import ZERO, ratio
from soc_ledger.domain.knowledge import Fact
from soc_ledger.domain.outcomes.facts import positions

IRR_PLACES = Decimal("0.000001")


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
