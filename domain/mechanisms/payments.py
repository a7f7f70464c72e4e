"""The dispatch: what a contract owes under each mechanism its terms name, and by payer.

`weeks_out_of_care` is computed as it always was (`domain/outcomes/liability.py`) and passed in
whole; the others are computed here from the facts known at `known_at`. Which mechanisms apply
is read from the terms in force on `as_of` (a variation changes them from its date), except that
a quarter of `quality_bonus` is paid under the terms of its own quarter end.

Before/after, a contract whose terms name `["care_days_saved"]` (price 100.00 a day, comparison
55%), one SUT case tracked 100 days by `as_of`, 20 of them in care, all verified:

    payments(...).mechanisms -> ("care_days_saved",); .payers -> SUT owed 3,500.00
    a contract without `mechanism` -> ("weeks_out_of_care",) and the weeks' own payers
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.knowledge import Fact
from soc_ledger.domain.mechanisms.care_days_saved import CohortSaving, care_days_saved
from soc_ledger.domain.mechanisms.quality_bonus import (
    QualityBonus,
    quality_bonus,
    quality_from_facts,
)
from soc_ledger.domain.mechanisms.reunification import (
    Reunification,
    in_care_at_referral,
    reunification,
)
from soc_ledger.domain.mechanisms.wellbeing_improvement import (
    CaseWellbeing,
    readings_from_facts,
    wellbeing_improvement,
)
from soc_ledger.domain.outcomes.facts import cases_from_facts, coverage_from_facts
from soc_ledger.domain.outcomes.liability import Liability

ZERO = Decimal("0.00")


def mechanisms_on(contract: ContractState, as_of: date) -> tuple[str, ...]:
    """The mechanisms the terms in force on `as_of` name (`weeks_out_of_care` if none)."""
    return contract.terms_on(as_of).mechanisms


@dataclass(frozen=True, slots=True)
class PayerLine:
    """What one payer owes under one mechanism."""

    mechanism: str
    payer: str
    owed: Decimal
    provisional: Decimal
    capped: Decimal


@dataclass(frozen=True, slots=True)
class Payments:
    contract: str
    as_of: date
    mechanisms: tuple[str, ...]
    weeks: Liability | None
    care_days: tuple[CohortSaving, ...] | None
    wellbeing: tuple[CaseWellbeing, ...] | None
    quality: QualityBonus | None
    reunification: Reunification | None
    lines: tuple[PayerLine, ...]  # by mechanism (in the terms' order), then payer

    @property
    def payers(self) -> tuple[PayerLine, ...]:
        """Every payer's total over the mechanisms (mechanism "all"), by payer."""
        totals: dict[str, list[Decimal]] = {}
        for line in self.lines:
            money = totals.setdefault(line.payer, [ZERO, ZERO, ZERO])
            money[0] += line.owed
            money[1] += line.provisional
            money[2] += line.capped
        return tuple(PayerLine("all", p, *m) for p, m in sorted(totals.items()))

    @property
    def owed(self) -> Decimal:
        return sum((line.owed for line in self.lines), ZERO)

    @property
    def provisional(self) -> Decimal:
        return sum((line.provisional for line in self.lines), ZERO)

    @property
    def capped(self) -> Decimal:
        return sum((line.capped for line in self.lines), ZERO)


def payments(
    contract: ContractState,
    facts: Iterable[Fact],
    as_of: date,
    weeks: Liability | None = None,
) -> Payments:
    """Every mechanism the terms name at `as_of`, from the facts (corrections applied) of
    the contract; `weeks` is the weeks-out-of-care liability, needed when that is named."""
    facts = list(facts)
    named = mechanisms_on(contract, as_of)
    name = contract.contract
    lines: list[PayerLine] = []
    care = wellbeing = quality = returns = None
    needs_cases = {"care_days_saved", "wellbeing_improvement", "reunification"} & set(named)
    cases = cases_from_facts(facts, name) if needs_cases else {}
    for mechanism in named:
        if mechanism == "weeks_out_of_care":
            if weeks is None:
                raise ValueError("weeks_out_of_care needs the weeks' liability")
            lines += [
                PayerLine(mechanism, p.payer, p.owed, p.provisional, p.capped) for p in weeks.payers
            ]
        elif mechanism == "care_days_saved":
            care = care_days_saved(contract, cases, coverage_from_facts(facts, name), as_of)
            lines += [
                PayerLine(mechanism, c.borough, c.owed, c.provisional, c.capped) for c in care
            ]
        elif mechanism == "wellbeing_improvement":
            wellbeing = wellbeing_improvement(
                contract, cases, readings_from_facts(facts, name), as_of
            )
            owed: dict[str, Decimal] = {}
            for w in wellbeing:
                owed[w.borough] = owed.get(w.borough, ZERO) + w.owed
            lines += [PayerLine(mechanism, b, o, ZERO, ZERO) for b, o in sorted(owed.items())]
        elif mechanism == "reunification":
            cohort = in_care_at_referral(facts, name, as_of)
            coverage = coverage_from_facts(facts, name)
            returns = reunification(contract, cases, cohort, coverage, as_of)
            money: dict[str, list[Decimal]] = {}
            for r in returns.cases:
                due = money.setdefault(r.borough, [ZERO, ZERO])
                due[0] += r.owed
                due[1] += r.provisional
            lines += [PayerLine(mechanism, b, o, p, ZERO) for b, (o, p) in sorted(money.items())]
        elif mechanism == "quality_bonus":
            quality = quality_bonus(contract, quality_from_facts(facts, name), as_of)
            lines.append(PayerLine(mechanism, quality.payer, quality.owed, ZERO, quality.capped))
    return Payments(
        name,
        as_of,
        named,
        weeks if "weeks_out_of_care" in named else None,
        care,
        wellbeing,
        quality,
        returns,
        tuple(lines),
    )
