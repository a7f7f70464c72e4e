"""`quality_bonus`: areas scored each quarter, weighted, mapped to a payment percentage by bands,
capped each year (docs/quality_bonus.md).

Readings the contract leaves open:
- the weighted total is Σ weight × score / 100, exact (never rounded before the bands);
- a band `{"from": F, "payment": P}` pays P% when the total is at or above F and below the next
  band's `from`; below the first band nothing is paid;
- the percentage applies to a quarter of `annual_value` (the contract's value for a year of
  placements), and a quarter pays once every weighted area has a score known for it and its
  `quarter_end` is on or before `as_of`; a quarter with an area unscored is `incomplete`;
- the year cap is per financial year (1 April - 31 March, by `quarter_end`): the lesser of
  `max_percent_per_year`% of `annual_value` and `max_per_year`; quarters are taken in order and
  what passes the cap is `capped` (shown, never owed);
- the terms of a quarter are those in force on its `quarter_end`; the payer is the lead
  commissioner;
- a published total "follows" when the computed total rounded half-even to the published
  figure's places equals it.

Before/after, weights 20/20/30/20/10, bands 0% from 0, 1% from 80, 1.5% from 85, 2% from 90,
annual value 3,125,000.00, scores for the quarter ending 2016-03-31 of 80, 80, 84, 72, 85:

    weighted_total -> 80.1 (16 + 16 + 25.2 + 14.4 + 8.5); band_payment -> 1
    the quarter owes 1% x 3,125,000.00 / 4 = 7,812.50 (year cap min(62,500.00, 60,000.00))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from soc_ledger.domain import events as ev
from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.events import Band
from soc_ledger.domain.knowledge import Fact
from soc_ledger.domain.outcomes.facts import merge_refs, positions

ZERO = Decimal("0.00")
PENNY = Decimal("0.01")
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Scored:
    score: Decimal
    refs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Published:
    weighted_total: Decimal
    payment: Decimal
    refs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class QualityFacts:
    """The quarterly scores and published figures known at `known_at`."""

    scores: Mapping[date, Mapping[str, Scored]] = field(default_factory=dict)
    published: Mapping[date, Published] = field(default_factory=dict)


def quality_from_facts(facts: Iterable[Fact], contract: str) -> QualityFacts:
    """Scores by quarter end and area; a later score of the same area and quarter in the log
    replaces the earlier one (a rescoring), as a correction would."""
    scores: dict[date, dict[str, Scored]] = {}
    published: dict[date, Published] = {}
    for fact in facts:
        event = fact.event
        if event.contract != contract:
            continue
        if isinstance(event, ev.QualityScored):
            scores.setdefault(event.quarter_end, {})[event.area] = Scored(
                event.score, positions(fact)
            )
        elif isinstance(event, ev.QualityPublished):
            published[event.quarter_end] = Published(
                event.weighted_total, event.payment, positions(fact)
            )
    return QualityFacts(scores, published)


def weighted_total(weights: Mapping[str, Decimal], scores: Mapping[str, Decimal]) -> Decimal:
    """Σ weight × score / 100 over the weighted areas (weights add up to 100)."""
    return sum((weights[a] * scores[a] for a in weights), Decimal(0)) / HUNDRED


def band_payment(bands: Iterable[Band], total: Decimal) -> Decimal:
    """The payment percentage of the highest band whose `from` the total reaches (0 below all)."""
    paid = Decimal(0)
    for band in bands:
        if total >= band.from_:
            paid = band.payment
    return paid


def follows(published: Decimal, computed: Decimal) -> bool:
    """Whether a published figure is the computed one rounded (half-even) to its places."""
    places = Decimal(1).scaleb(min(published.as_tuple().exponent, 0))  # type: ignore[arg-type]
    return computed.quantize(places, ROUND_HALF_EVEN) == published


def financial_year(day: date) -> int:
    """The year a financial year (1 April - 31 March) starts in."""
    return day.year if day.month >= 4 else day.year - 1


@dataclass(frozen=True, slots=True)
class QuarterBonus:
    quarter_end: date
    status: str  # "scored" (every area known), "incomplete", "pending" (after as_of)
    scores: Mapping[str, Decimal]
    weights: Mapping[str, Decimal]
    weighted_total: Decimal | None
    payment_percent: Decimal | None
    gross: Decimal  # the band's percentage of a quarter of the annual value
    owed: Decimal
    capped: Decimal
    year_cap: Decimal
    published_total: Decimal | None
    published_payment: Decimal | None
    refs: tuple[int, ...]

    @property
    def total_follows(self) -> bool | None:
        if self.published_total is None or self.weighted_total is None:
            return None
        return follows(self.published_total, self.weighted_total)

    @property
    def payment_follows(self) -> bool | None:
        if self.published_payment is None or self.payment_percent is None:
            return None
        return self.published_payment == self.payment_percent


@dataclass(frozen=True, slots=True)
class QualityBonus:
    payer: str
    quarters: tuple[QuarterBonus, ...]

    @property
    def owed(self) -> Decimal:
        return sum((q.owed for q in self.quarters), ZERO)

    @property
    def capped(self) -> Decimal:
        return sum((q.capped for q in self.quarters), ZERO)


def quality_bonus(contract: ContractState, quality: QualityFacts, as_of: date) -> QualityBonus:
    """Every quarter scored or published, in order, with its bonus after the year's cap."""
    assert contract.agreed is not None
    quarters: list[QuarterBonus] = []
    paid_in_year: dict[int, Decimal] = {}
    for quarter_end in sorted({*quality.scores, *quality.published}):
        terms = contract.terms_on(quarter_end)
        bonus = terms.quality_bonus
        if bonus is None or "quality_bonus" not in terms.mechanisms:
            continue
        scored = quality.scores.get(quarter_end, {})
        published = quality.published.get(quarter_end)
        known = {a: s.score for a, s in scored.items() if a in bonus.weights}
        complete = set(known) == set(bonus.weights)
        year_cap = min(
            (bonus.max_percent_per_year * bonus.annual_value / HUNDRED).quantize(PENNY),
            bonus.max_per_year,
        )
        total = weighted_total(bonus.weights, known) if complete else None
        percent = band_payment(bonus.bands, total) if total is not None else None
        status = "pending" if quarter_end > as_of else "scored" if complete else "incomplete"
        gross = owed = capped = ZERO
        if status == "scored" and percent is not None:
            gross = (percent * bonus.annual_value / HUNDRED / 4).quantize(PENNY, ROUND_HALF_EVEN)
            year = financial_year(quarter_end)
            room = max(year_cap - paid_in_year.get(year, ZERO), ZERO)
            owed = min(gross, room)
            capped = gross - owed
            paid_in_year[year] = paid_in_year.get(year, ZERO) + owed
        quarters.append(
            QuarterBonus(
                quarter_end=quarter_end,
                status=status,
                scores=dict(sorted(known.items())),
                weights=dict(bonus.weights),
                weighted_total=total,
                payment_percent=percent,
                gross=gross,
                owed=owed,
                capped=capped,
                year_cap=year_cap,
                published_total=published.weighted_total if published else None,
                published_payment=published.payment if published else None,
                refs=merge_refs(
                    *(s.refs for s in scored.values()), published.refs if published else ()
                ),
            )
        )
    return QualityBonus(contract.agreed.lead_commissioner, tuple(quarters))
