"""SPEC §9 baselines: actuals at (as_of, known_at) against any variation's targets.

Readings (each also in docs/finances.md):

- **Actuals.** `referrals` are first family meetings on or before `as_of` (SPEC §9 defines the
  target so), by borough for `per_borough`; `tracked`, `outcome_weeks` and `outcome_payments`
  (owed, after caps) come from the liability at (as_of, known_at); `investment` is the capital
  drawn (`CapitalDrawn`) on or before `as_of`.
- **In full** compares the actuals at `as_of` with the variation's full targets: difference
  (actual - target) and attainment (actual / target, 4 places half-even; none for a zero
  target), figured where the comparison is shown (`projections/views/finance.py`). Outcome
  payments are set against each of low, medium and high.
- **Profile.** The profile is cumulative milestones. Each milestone on or before `as_of` is
  compared with the actuals *at its own date* (same `known_at`); later ones are shown with no
  actuals yet. "Against its profile at `as_of`" is the actuals at `as_of` against the latest
  milestone on or before `as_of` (the cumulative target then due; none before the first).
- **Which variation.** Any `VariationAgreed` known at `known_at`, by its id, whatever its
  effective date: a baseline is a plan to compare with, not a term in force. The original
  award's targets are recorded as a `VariationAgreed` effective on the contract's date with no
  term changes (the demo's "2017"), because `ContractAgreed` has no targets.

Before and after, the demo's variation 2019 as of 2020-03-31 (`soc-ledger baseline --variation
2019 --as-of 2020-03-31`):

    VariationAgreed 2019 targets: referrals 410, tracked 345, outcome_weeks 36000, ...
                    profile: 2019-03-31 120 referrals / 150,000.00; 2020-03-31 250 /
                    1,500,000.00; 2021-03-31 410 / 3,500,000.00; ...

    baseline(that fact, actual_at, 2020-03-31):
      actual at 2020-03-31: referrals 247, tracked 198, outcome_weeks 6225,
                            outcome_payments 1,332,150.00, investment 2,667,704.00
      milestones: 2019-03-31 with the actuals at 2019-03-31 (108 referrals, 278,628.00),
                  2020-03-31 with those at 2020-03-31, 2021-03-31 and later: None (not reached)
      due: the 2020-03-31 milestone (referrals 247 against 250)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from soc_ledger.domain import events as ev
from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.events import ProfilePoint, Targets
from soc_ledger.domain.knowledge import Fact
from soc_ledger.domain.outcomes.facts import cases_from_facts, positions
from soc_ledger.domain.outcomes.liability import Liability

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class Actuals:
    as_of: date
    referrals: int  # first family meetings on or before as_of
    tracked: int
    outcome_weeks: int
    outcome_payments: Decimal  # owed, after caps
    investment: Decimal  # capital drawn
    per_borough: dict[str, int]  # first family meetings by borough


@dataclass(frozen=True, slots=True)
class Milestone:
    point: ProfilePoint
    actual: Actuals | None  # at the milestone's date; None if after as_of


@dataclass(frozen=True, slots=True)
class Baseline:
    contract: str
    variation: str
    description: str
    effective: date
    refs: tuple[int, ...]
    targets: Targets
    as_of: date
    actual: Actuals
    milestones: tuple[Milestone, ...]  # by date
    due: ProfilePoint | None  # the latest milestone on or before as_of

    @property
    def variation_ref(self) -> str:
        return " ".join(f"#{p}" for p in self.refs)


def the_variation(facts: Iterable[Fact], contract: str, variation: str) -> Fact:
    """The `VariationAgreed` fact with this id (as known), or a QueryError naming the ids."""
    known: dict[str, Fact] = {}
    for fact in facts:
        e = fact.event
        if isinstance(e, ev.VariationAgreed) and e.contract == contract:
            known.setdefault(e.variation, fact)
    if variation not in known:
        ids = ", ".join(sorted(known)) or "none"
        hint = (
            "; ContractAgreed has no targets: record the original award's baseline as a "
            "VariationAgreed effective on the contract's date with no term changes"
            if variation == "original"
            else ""
        )
        raise QueryError(
            f"no variation {variation!r} in contract {contract!r} as known then "
            f"(variations with targets: {ids}){hint}"
        )
    return known[variation]


def actuals(facts: Iterable[Fact], contract: str, as_of: date, owed: Liability) -> Actuals:
    """The actuals at `as_of`: facts for starts and drawdowns, the liability for the rest."""
    facts = list(facts)
    per_borough: dict[str, int] = {}
    for case in cases_from_facts(facts, contract).values():
        if case.first_meeting is not None and case.first_meeting <= as_of:
            per_borough[case.borough] = per_borough.get(case.borough, 0) + 1
    drawn = sum(
        (
            f.event.amount
            for f in facts
            if isinstance(f.event, ev.CapitalDrawn)
            and f.event.contract == contract
            and f.event.effective <= as_of
        ),
        ZERO,
    )
    t = owed.totals
    return Actuals(
        as_of=as_of,
        referrals=sum(per_borough.values()),
        tracked=t.cases_tracked,
        outcome_weeks=t.weeks.outcome,
        outcome_payments=t.owed,
        investment=drawn,
        per_borough=dict(sorted(per_borough.items())),
    )


def baseline(
    variation: Fact, actual_at: Callable[[date], Actuals], as_of: date
) -> Baseline:
    """The variation's targets against the actuals at `as_of` and at each milestone."""
    e = variation.event
    assert isinstance(e, ev.VariationAgreed)
    points = sorted(e.targets.profile or (), key=lambda p: p.date)
    milestones = tuple(
        Milestone(p, actual_at(p.date) if p.date <= as_of else None) for p in points
    )
    due = max((p for p in points if p.date <= as_of), key=lambda p: p.date, default=None)
    return Baseline(
        contract=e.contract,
        variation=e.variation,
        description=e.description,
        effective=e.effective,
        refs=positions(variation),
        targets=e.targets,
        as_of=as_of,
        actual=actual_at(as_of),
        milestones=milestones,
        due=due,
    )
