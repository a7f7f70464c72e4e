"""SPEC §8: investors' returns and the contract's finances at (as_of, known_at), as queries.

Thin `*_at` wrappers that read the facts known at `known_at` from the bitemporal read model and
hand them to the rules in `domain/finances/` (whose module docstrings hold the readings, also in
docs/finances.md); and the series the liability picture draws.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Engine

from soc_ledger.domain.finances.finances import Finances, finances
from soc_ledger.domain.finances.returns import Returns, returns
from soc_ledger.domain.finances.rounding import ZERO
from soc_ledger.domain.knowledge import EVERYTHING, KnownAt
from soc_ledger.domain.outcomes.liability import Liability
from soc_ledger.projections import queries, readmodel

INVESTMENT_TYPES = ("InvestmentCommitted", "CapitalDrawn", "DistributionPaid")
FINANCE_TYPES = (
    "PaymentReceived",
    "CostIncurred",
    "UnitCostsSet",
    "ReferralReceived",
    "FirstFamilyMeeting",
    "CapitalDrawn",
)


def returns_at(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> Returns:
    facts = readmodel.facts_known_at(engine, contract, known_at, INVESTMENT_TYPES)
    return returns(facts, contract, as_of)


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
