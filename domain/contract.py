"""The Contract aggregate: terms, variations, boroughs, caps, claims — the write-time guard.

It rejects impossible facts; it computes no money. State is folded from facts (corrections
already applied) by `apply`, which raises `DomainError` naming the rule that was broken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from soc_ledger.domain import events as ev
from soc_ledger.domain.errors import LedgerError
from soc_ledger.domain.events import Cap, Event, Terms


class DomainError(LedgerError):
    """An impossible fact: the rule broken, in words a commissioner would use."""

    def __init__(self, message: str, field: str = "type") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Membership:
    acceded: date
    withdrew: date | None = None

    def member_on(self, day: date) -> bool:
        return self.acceded <= day and (self.withdrew is None or day <= self.withdrew)


@dataclass(frozen=True, slots=True)
class TermsChange:
    effective: date
    variation: str  # "original" for the agreed terms
    changes: dict  # the full terms for "original", a subset for a variation
    caps: tuple[Cap, ...]


@dataclass(slots=True)
class ClaimRecord:
    payer: str
    cases: frozenset[str]
    disputed: set[str] = field(default_factory=set)
    resolved: set[str] = field(default_factory=set)


@dataclass(slots=True)
class ContractState:
    contract: str
    agreed: ev.ContractAgreed | None = None
    terms_history: list[TermsChange] = field(default_factory=list)
    boroughs: dict[str, Membership] = field(default_factory=dict)
    claims: dict[str, ClaimRecord] = field(default_factory=dict)
    investors: set[str] = field(default_factory=set)
    # The terms built for each set of changes in force (keyed by their identities; the value
    # holds the changes too, so no identity is reused): a bulk record asks thousands of times.
    _terms: dict[tuple[int, ...], tuple[list[TermsChange], Terms]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def in_force(self, day: date) -> list[TermsChange]:
        """The agreed terms and every variation effective by `day`, in effective order."""
        if not self.terms_history:
            raise DomainError(f"contract {self.contract!r} has not been agreed", "contract")
        return [self.terms_history[0]] + [c for c in self.terms_history[1:] if c.effective <= day]

    def terms_on(self, day: date) -> Terms:
        """The terms in force on `day`: the agreed terms with every variation effective by then."""
        changes = self.in_force(day)
        key = tuple(map(id, changes))
        found = self._terms.get(key)
        if found is not None:
            return found[1]
        merged: dict = {}
        for change in changes:
            merged.update(change.changes)
        terms = Terms.model_validate(merged)
        self._terms[key] = (changes, terms)
        return terms

    def variation_on(self, day: date) -> str:
        return self.in_force(day)[-1].variation

    def caps_on(self, day: date) -> tuple[Cap, ...]:
        """Caps in force on `day`; a variation's cap replaces the one with the same id."""
        caps: dict[str, Cap] = {}
        for change in self.in_force(day):
            caps.update({c.cap: c for c in change.caps})
        return tuple(caps.values())

    def member_on(self, borough: str, day: date) -> bool:
        membership = self.boroughs.get(borough)
        return membership is not None and membership.member_on(day)


def apply(state: ContractState, event: Event) -> ContractState:
    """Check `event` against the contract and fold it in; raise DomainError if impossible."""
    if isinstance(event, ev.ContractAgreed):
        if state.agreed is not None:
            raise DomainError(f"contract {state.contract!r} is already agreed", "type")
        check_mechanisms(event.terms, "terms")
        state.agreed = event
        state.terms_history.append(
            TermsChange(
                event.effective,
                "original",
                event.terms.model_dump(by_alias=True),
                tuple(event.caps),
            )
        )
        return state
    if state.agreed is None:
        raise DomainError(
            f"contract {state.contract!r} has not been agreed (record ContractAgreed first)",
            "contract",
        )
    handler = _HANDLERS.get(type(event))
    if handler is not None:
        handler(state, event)
    return state


def _variation(state: ContractState, e: ev.VariationAgreed) -> None:
    if any(c.variation == e.variation for c in state.terms_history):
        raise DomainError(f"variation {e.variation!r} is already agreed", "variation")
    if e.effective < state.terms_history[0].effective:
        raise DomainError("a variation cannot take effect before the contract", "effective")
    changes = e.term_changes.model_dump(exclude_none=True, by_alias=True)
    # Each variation keeps only its own changes, so one recorded late slots in by date.
    state.terms_history.append(TermsChange(e.effective, e.variation, changes, tuple(e.caps)))
    state.terms_history[1:] = sorted(state.terms_history[1:], key=lambda c: c.effective)
    if e.term_changes.model_fields_set & _MECHANISM_TERMS:
        # The variation may complete terms a later one relies on: check every merged reading.
        for change in state.terms_history[1:]:
            check_mechanisms(state.terms_on(change.effective), "term_changes")


_MECHANISM_TERMS = frozenset(
    {"mechanism", "care_days_saved", "quality_bonus", "wellbeing_improvement", "reunification"}
)


def check_mechanisms(terms: Terms, where: str) -> None:
    """Each mechanism named has the terms it is paid by, and they make sense."""
    named = terms.mechanisms
    if len(set(named)) != len(named):
        raise DomainError("a mechanism is named twice", f"{where}.mechanism")
    for mechanism in named:
        if mechanism != "weeks_out_of_care" and getattr(terms, mechanism) is None:
            raise DomainError(
                f"mechanism {mechanism!r} needs its terms ({mechanism!r} is missing)",
                f"{where}.{mechanism}",
            )
    bonus = terms.quality_bonus
    if bonus is not None:
        if sum(bonus.weights.values()) != 100:
            raise DomainError(
                "the weights of the quality areas must add up to 100",
                f"{where}.quality_bonus.weights",
            )
        starts = [band.from_ for band in bonus.bands]
        if starts != sorted(set(starts)):
            raise DomainError(
                "bands must be listed by rising 'from', each once", f"{where}.quality_bonus.bands"
            )


def _acceded(state: ContractState, e: ev.BoroughAcceded) -> None:
    if e.borough in state.boroughs:
        raise DomainError(f"borough {e.borough!r} has already acceded", "borough")
    state.boroughs[e.borough] = Membership(e.effective)


def _withdrew(state: ContractState, e: ev.BoroughWithdrew) -> None:
    membership = state.boroughs.get(e.borough)
    if membership is None:
        raise DomainError(f"borough {e.borough!r} has not acceded", "borough")
    if membership.withdrew is not None:
        raise DomainError(f"borough {e.borough!r} has already withdrawn", "borough")
    if e.effective < membership.acceded:
        raise DomainError(
            f"borough {e.borough!r} cannot withdraw before it acceded on {membership.acceded}",
            "effective",
        )
    state.boroughs[e.borough] = Membership(membership.acceded, e.effective)


def _care_data(state: ContractState, e: ev.CareDataReceived) -> None:
    if e.borough not in state.boroughs:
        raise DomainError(f"borough {e.borough!r} has not acceded", "borough")


def _scored(state: ContractState, e: ev.QualityScored | ev.QualityPublished) -> None:
    bonus = state.terms_on(e.quarter_end).quality_bonus
    if bonus is None or "quality_bonus" not in state.terms_on(e.quarter_end).mechanisms:
        raise DomainError(
            f"contract {state.contract!r} pays no quality bonus for the quarter ending "
            f"{e.quarter_end}",
            "quarter_end",
        )
    if isinstance(e, ev.QualityScored) and e.area not in bonus.weights:
        raise DomainError(
            f"area {e.area!r} is not one of the weighted areas ({', '.join(bonus.weights)})",
            "area",
        )


def _claim(state: ContractState, e: ev.ClaimSubmitted) -> None:
    if e.claim in state.claims:
        raise DomainError(f"claim {e.claim!r} has already been submitted", "claim")
    cases = [line.case for line in e.lines]
    if len(set(cases)) != len(cases):
        raise DomainError(f"claim {e.claim!r} has more than one line for a case", "lines")
    state.claims[e.claim] = ClaimRecord(e.payer, frozenset(cases))


def _known_claim(state: ContractState, claim: str) -> ClaimRecord:
    record = state.claims.get(claim)
    if record is None:
        raise DomainError(f"claim {claim!r} has not been submitted", "claim")
    return record


def _disputed(state: ContractState, e: ev.ClaimLineDisputed) -> None:
    record = _known_claim(state, e.claim)
    if e.case not in record.cases:
        raise DomainError(f"claim {e.claim!r} has no line for case {e.case!r}", "case")
    if e.case in record.disputed:
        raise DomainError(
            f"the line for case {e.case!r} of claim {e.claim!r} is already disputed", "case"
        )
    record.disputed.add(e.case)


def _resolved(state: ContractState, e: ev.DisputeResolved) -> None:
    record = _known_claim(state, e.claim)
    if e.case not in record.disputed:
        raise DomainError(
            f"the line for case {e.case!r} of claim {e.claim!r} is not disputed", "case"
        )
    if e.case in record.resolved:
        raise DomainError(
            f"the dispute on case {e.case!r} of claim {e.claim!r} is already resolved", "case"
        )
    record.resolved.add(e.case)


def _payment(state: ContractState, e: ev.PaymentReceived) -> None:
    record = _known_claim(state, e.claim)
    if record.payer != e.payer:
        raise DomainError(
            f"claim {e.claim!r} was made to {record.payer!r}, not {e.payer!r}", "payer"
        )


def _committed(state: ContractState, e: ev.InvestmentCommitted) -> None:
    state.investors.add(e.investor)


def _allocated(state: ContractState, e: ev.CapitalDrawn | ev.DistributionPaid) -> None:
    if not state.investors:
        raise DomainError("no investor has committed capital", "type")
    if e.allocation is not None:
        unknown = sorted(set(e.allocation) - state.investors)
        if unknown:
            raise DomainError(f"investor {unknown[0]!r} has not committed capital", "allocation")
        if sum(e.allocation.values()) != e.amount:
            raise DomainError("the allocation does not add up to the amount", "allocation")


_HANDLERS = {
    ev.VariationAgreed: _variation,
    ev.BoroughAcceded: _acceded,
    ev.BoroughWithdrew: _withdrew,
    ev.CareDataReceived: _care_data,
    ev.QualityScored: _scored,
    ev.QualityPublished: _scored,
    ev.ClaimSubmitted: _claim,
    ev.ClaimLineDisputed: _disputed,
    ev.DisputeResolved: _resolved,
    ev.PaymentReceived: _payment,
    ev.InvestmentCommitted: _committed,
    ev.CapitalDrawn: _allocated,
    ev.DistributionPaid: _allocated,
}
