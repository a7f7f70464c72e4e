"""The contract's finances (SPEC §8): income due and received, costs, surplus, cost per user.

Fees and avoided costs are their own rules (`co_commissioning_fees`, `avoided_costs`); this
module puts them together with income and costs. The readings (also in docs/finances.md):

- **As of.** A payment, cost or unit-cost estimate counts at `as_of` when its effective date
  is on or before `as_of`; what is known is decided by `known_at` as everywhere.
- **Income due** is the outcome liability owed at (as_of, known_at), by payer, after caps;
  **income received** is the sum of `PaymentReceived` by payer. **Surplus** is income due -
  costs (negative: a deficit).
- **Cost per service user** is outcome payments (income due) / cases with a first family
  meeting on or before `as_of`, half-up to pence.
- **Shares of costs** are each category's amount / total, half-even to 4 places.

Before and after (tests/test_finances.py), as of 2019-06-30, with nothing owed yet (no care
data: every elapsed week is unverified):

    cases C1, C2 met (2018-07-02, 2018-07-09); C3 referred, never met
    PaymentReceived  SUT 500.00, 2019-02-28;  SUT 1.00, 2020-02-28 (after as_of)
    CostIncurred     delivery 3,000.00;  evaluation 1,000.00 (2018-12-31)

    finances(...): income due 0.00, received 500.00; costs delivery 3,000.00 (0.7500),
    evaluation 1,000.00 (0.2500); surplus -4,000.00; service users 2; cost per service
    user 0.00

and on the demo at 2023-12-31: income due 6,534,062.00, costs 6,544,740.00, surplus -10,678.00,
410 service users, cost per service user 15,936.74 (6,534,062.00 / 410 = 15,936.736...).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from soc_ledger.domain import events as ev
from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.finances.avoided_costs import AvoidedCosts, avoided_costs
from soc_ledger.domain.finances.co_commissioning_fees import Fee, co_commissioning_fees
from soc_ledger.domain.finances.rounding import ZERO, pence, ratio
from soc_ledger.domain.knowledge import Fact
from soc_ledger.domain.outcomes.facts import cases_from_facts
from soc_ledger.domain.outcomes.liability import Liability


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
