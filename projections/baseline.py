"""SPEC §9 baselines as a query: a variation's targets against the actuals at (as_of, known_at).

Reads the facts known at `known_at` and the liability at each date it needs, and hands them to
the rules in `domain/baseline.py` (whose docstring holds the readings, also in
docs/finances.md).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from soc_ledger.domain.baseline import Actuals, Baseline, actuals, baseline, the_variation
from soc_ledger.domain.knowledge import EVERYTHING, KnownAt
from soc_ledger.projections import queries, readmodel

BASELINE_TYPES = ("VariationAgreed", "ReferralReceived", "FirstFamilyMeeting", "CapitalDrawn")


def baseline_at(
    engine: Engine,
    contract: str,
    variation: str,
    as_of: date,
    known_at: KnownAt = EVERYTHING,
) -> Baseline:
    facts = readmodel.facts_known_at(engine, contract, known_at, BASELINE_TYPES)
    chosen = the_variation(facts, contract, variation)
    computed: dict[date, Actuals] = {}

    def actual_at(day: date) -> Actuals:
        if day not in computed:
            owed = queries.liability_at(engine, contract, day, known_at)
            computed[day] = actuals(facts, contract, day, owed)
        return computed[day]

    return baseline(chosen, actual_at, as_of)
