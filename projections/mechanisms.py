"""The dispatch on the read side: a contract's payments under every mechanism its terms name.

A contract paying by `weeks_out_of_care` alone is answered as it always was
(`queries.liability_at`), and `is_weeks_only` tells a report it may keep its weeks-only shape;
any other contract is answered by `domain/mechanisms/payments.py` from the facts known then.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Engine

from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.events import DEFAULT_MECHANISMS, ClaimSubmitted
from soc_ledger.domain.knowledge import EVERYTHING, KnownAt
from soc_ledger.domain.mechanisms.account import ZERO, Account, ClaimCheck, account, check_claim
from soc_ledger.domain.mechanisms.care_days_forecast import CohortForecast, care_days_forecast
from soc_ledger.domain.mechanisms.payments import Payments, mechanisms_on, payments
from soc_ledger.domain.outcomes.facts import contract_from_facts
from soc_ledger.projections import queries, readmodel
from soc_ledger.projections.outcome_facts import OUTCOME_TYPES

MECHANISM_TYPES = (*OUTCOME_TYPES, "WellbeingMeasured", "QualityScored", "QualityPublished")


def mechanisms_at(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> tuple[str, ...]:
    """The mechanisms named by the terms in force on `as_of`, as known at `known_at`."""
    return mechanisms_on(queries.terms(engine, contract, known_at), as_of)


def is_weeks_only(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> bool:
    return mechanisms_at(engine, contract, as_of, known_at) == DEFAULT_MECHANISMS


def payments_at(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> Payments:
    """What is owed at (as_of, known_at) under each mechanism, and by payer."""
    facts = readmodel.facts_known_at(engine, contract, known_at, MECHANISM_TYPES)
    folded = contract_from_facts(contract, facts)
    if folded.agreed is None:
        raise QueryError(f"contract {contract!r} was not agreed as known at that time")
    weeks = None
    if "weeks_out_of_care" in mechanisms_on(folded, as_of):
        weeks = queries.liability_at(engine, contract, as_of, known_at)
    return payments(folded, facts, as_of, weeks)


def weeks_only(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt, command: str
) -> tuple[str, ...]:
    """The mechanisms in force, once a report that reads weeks out of care alone is known to
    apply: refused for a contract paying otherwise."""
    named = mechanisms_at(engine, contract, as_of, known_at)
    if "weeks_out_of_care" not in named:
        raise QueryError(
            f"{command} reads weeks out of care; contract {contract!r} pays by "
            f"{', '.join(named)} (not applicable: see `liability` and `diff`)"
        )
    return named


def account_at(
    engine: Engine, contract: str, payer: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> Account:
    """PAYER's account at (as_of, known_at) for a contract paying by other mechanisms."""
    result = payments_at(engine, contract, as_of, known_at)
    facts = readmodel.facts_known_at(
        engine, contract, known_at, ("ClaimSubmitted", "PaymentReceived")
    )
    owed = {p.payer: p.owed for p in result.payers}
    claimed_from = {f.event.payer for f in facts if hasattr(f.event, "payer")}
    if payer not in owed and payer not in claimed_from:
        known = ", ".join(sorted({*owed, *claimed_from})) or "none yet"
        raise QueryError(f"no payer {payer!r} in contract {contract!r} (payers: {known})")
    return account(contract, payer, owed.get(payer, ZERO), facts, as_of)


def reconcile_on_account(
    engine: Engine, contract: str, claim: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> ClaimCheck:
    """CLAIM, made on account, against what its period owed then and owes now."""
    facts = readmodel.facts_known_at(engine, contract, known_at, ("ClaimSubmitted",))
    made = next((f for f in facts if getattr(f.event, "claim", None) == claim), None)
    if made is None:
        raise QueryError(f"no claim {claim!r} in contract {contract!r} as known then")
    event = made.event
    assert isinstance(event, ClaimSubmitted)
    held = account_at(engine, contract, event.payer, as_of, known_at)
    then = KnownAt(made.recorded.recorded_on)

    def owed(knowledge: KnownAt) -> Decimal:
        lines = payments_at(engine, contract, event.period_end, knowledge).payers
        return next((p.owed for p in lines if p.payer == event.payer), ZERO)

    return check_claim(held, claim, owed(then), owed(known_at))


def forecast_at(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> tuple[CohortForecast, ...]:
    """The care-days cohorts' final payments at three rates of care (a contract paying care
    days saved); refused for one paying by neither weeks nor care days."""
    result = payments_at(engine, contract, as_of, known_at)
    if result.care_days is None:
        raise QueryError(
            f"forecast reads weeks out of care or care days saved; contract {contract!r} pays "
            f"by {', '.join(result.mechanisms)} (not applicable: see `liability`)"
        )
    folded = queries.terms(engine, contract, known_at)
    return care_days_forecast(folded, result.care_days, as_of)
