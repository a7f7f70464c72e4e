"""Avoided care costs (SPEC §8): outcome weeks x counterfactual rate x weekly placement cost.

The reading (also in docs/finances.md):

- **Avoided care costs** = outcome weeks x `counterfactual_rate` x the mix-weighted weekly
  placement cost (sum over groups of `weekly_cost` x `placement_mix`), by the latest
  `UnitCostsSet` effective on or before `as_of` (a later estimate replaces an earlier one);
  half-up to pence once. None without unit costs. A placement group with a share but no cost
  is an error naming the group.

Before and after, the demo's unit costs of 2019-08-01 and its 30,533 outcome weeks at
2023-12-31 (tests/test_finances.py):

    UnitCostsSet  weekly_cost  a 4,200.00  b 950.00  c 520.00  d 1,600.00
                  placement_mix a 0.15     b 0.45    c 0.30    d 0.10
                  counterfactual_rate 0.40

    avoided_costs(that fact, 30_533):
      weekly_cost 1,373.50  (630 + 427.50 + 156 + 160)
      amount 16,774,830.20  (30,533 x 0.40 x 1,373.50)
    avoided_costs(None, 10) -> None
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from soc_ledger.domain import events as ev
from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.finances.rounding import pence
from soc_ledger.domain.knowledge import Fact
from soc_ledger.domain.outcomes.facts import positions


@dataclass(frozen=True, slots=True)
class AvoidedCosts:
    outcome_weeks: int
    counterfactual_rate: Decimal
    weekly_cost: Decimal  # mix-weighted weekly placement cost, exact
    amount: Decimal  # half-up to pence
    effective: date  # of the UnitCostsSet used
    refs: tuple[int, ...]


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
