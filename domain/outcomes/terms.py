"""SPEC §3: which terms apply, as a step function of the day.

The contract's terms change only on the effective dates of its variations, so the terms in force
are a handful of segments: the agreed terms, then one segment per variation date. A case's
tracking terms (`tracking_weeks`, `tracking_offset_weeks`, `min_engagement_days`, `week_rule`)
are those in force on its first family meeting (`tracking.py` reads `timeline.at(F)`); a week's
prices, exclusions and caps are those in force on its last day (`weeks.py`, `care_days.py` and
`caps.py` read `timeline.at(last day)`), so a variation applies to the weeks whose last day is
on or after its effective date.

Each segment also remembers the log positions of the terms changes that decided it, so a week
can name the variation behind its price.

Before/after, the reference terms agreed 2017-09-01 and a variation "v1" effective 2019-06-01
setting `price_per_week` to 250.00:

    timeline.at(date(2019, 5, 31).toordinal()).variation     -> "original", borough 169.00
    timeline.at(date(2019, 6, 1).toordinal()).variation      -> "v1", borough 205.00
    len(timeline.segments) -> 2, timeline.starts -> [date(2019, 6, 1).toordinal()]
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from soc_ledger.domain.contract import ContractState
from soc_ledger.domain.events import Cap, Terms
from soc_ledger.domain.outcomes.facts import merge_refs
from soc_ledger.domain.outcomes.prices import borough_share, top_up_share

# Terms that decide a week's price and status, and those that decide a case's tracking.
_PRICE_KEYS = (
    "price_per_week",
    "top_up_per_week",
    "excluded_legal_statuses",
    "excluded_placements",
)
_TRACKING_KEYS = ("tracking_weeks", "tracking_offset_weeks", "min_engagement_days", "week_rule")


@dataclass(frozen=True, slots=True)
class TermsSegment:
    """The terms in force from one variation date until the next, ready for pricing."""

    terms: Terms
    variation: str
    borough_price: Decimal
    top_up_price: Decimal
    excluded_statuses: frozenset[str]
    excluded_placements: frozenset[str]
    caps: dict[str, Cap]
    cap_refs: dict[str, tuple[int, ...]]
    price_refs: tuple[int, ...]
    tracking_refs: tuple[int, ...]


class TermsTimeline:
    """`ContractState.terms_on`/`caps_on`/`variation_on` computed once per variation date.

    `terms_on` validates a merged dict on every call; the weeks of 40,000 cases need a lookup
    instead. Each segment is built by the contract's own methods, so the rule stays in one
    place (`domain.contract`).
    """

    def __init__(self, contract: ContractState) -> None:
        self.contract = contract
        refs: Mapping[str, tuple[int, ...]] = getattr(contract, "refs", {})
        dates = sorted({c.effective for c in contract.in_force(date.max)[1:]})
        self.starts = [d.toordinal() for d in dates]
        self.segments = [_segment(contract, day, refs) for day in [date.min, *dates]]
        self.top_up_funder = contract.agreed.top_up_funder if contract.agreed else None
        # Every cap id, as first defined (in the earliest segment where it is in force).
        self.first_caps: dict[str, Cap] = {}
        for seg in self.segments:
            for cap_id, cap in seg.caps.items():
                self.first_caps.setdefault(cap_id, cap)

    @staticmethod
    def of(contract: ContractState | TermsTimeline) -> TermsTimeline:
        """The timeline of `contract`, or `contract` itself if it is one already (the rules
        take either, so a caller assessing many cases builds the timeline once)."""
        return contract if isinstance(contract, TermsTimeline) else TermsTimeline(contract)

    def index(self, day: int) -> int:
        return bisect_right(self.starts, day)

    def at(self, day: int) -> TermsSegment:
        """The terms in force on the day with this ordinal."""
        return self.segments[bisect_right(self.starts, day)]


def _segment(
    contract: ContractState, day: date, refs: Mapping[str, tuple[int, ...]]
) -> TermsSegment:
    in_force = contract.in_force(day)
    terms = contract.terms_on(day)

    def decided_by(keys: Iterable[str]) -> tuple[int, ...]:
        found = [refs.get(in_force[-1].variation, ())]
        for key in keys:
            setter = next((c for c in reversed(in_force) if key in c.changes), None)
            if setter is not None:
                found.append(refs.get(setter.variation, ()))
        return merge_refs(*found)

    cap_refs = {
        cap.cap: refs.get(change.variation, ()) for change in in_force for cap in change.caps
    }
    return TermsSegment(
        terms=terms,
        variation=contract.variation_on(day),
        borough_price=borough_share(terms),
        top_up_price=top_up_share(terms),
        excluded_statuses=frozenset(terms.excluded_legal_statuses),
        excluded_placements=frozenset(terms.excluded_placements),
        caps={c.cap: c for c in contract.caps_on(day)},
        cap_refs=cap_refs,
        price_refs=decided_by(_PRICE_KEYS),
        tracking_refs=decided_by(_TRACKING_KEYS),
    )
