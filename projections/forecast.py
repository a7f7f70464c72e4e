"""SPEC §9 forecasts for the CLI: the facts known at `known_at` read, then the pure rule
(`domain/forecast.py`) asked."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from soc_ledger.domain.forecast import Forecast, forecast
from soc_ledger.domain.knowledge import EVERYTHING, KnownAt
from soc_ledger.projections.outcome_facts import knowledge


def forecast_at(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> Forecast:
    k = knowledge(engine, contract, known_at)
    return forecast(k.facts, contract, as_of)
