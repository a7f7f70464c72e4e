"""Fold the facts known at `known_at` into what the outcome rules read: terms, cases, coverage.

Pure functions: a list of `Fact` (from `domain.knowledge.known_facts`, corrections applied,
retracted events gone) in, plain frozen values out. Every value keeps the log positions of the
events that decided it (`fact.because`: the original and its live corrections), so any number
computed from it can say where it came from.

Before/after, a log (positions 1..7) of the contract's agreement (1) and SUT's accession (2),
case A referred by SUT (3), accepted for FFT on 2018-02-01 (4), its first family meeting on
2018-02-26 (5), corrected to 2018-02-27 on 2018-04-01 (6), and SUT's care data covering
2018-03-31 recorded on 2018-04-10 (7):

    known at 2018-03-01: cases_from_facts -> CaseFacts(case="A", borough="SUT",
        intervention="FFT", accepted=2018-02-01, first_meeting=2018-02-26, ended=None,
        spells=(), refs=(3, 4, 5)); coverage_from_facts -> {} (no care data known yet)
    known now: the same case with first_meeting=2018-02-27, refs=(3, 4, 5, 6);
        coverage_from_facts -> {"SUT": 2018-03-31}, .refs {"SUT": (7,)}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from soc_ledger.domain import events as ev
from soc_ledger.domain.contract import ContractState, DomainError, apply
from soc_ledger.domain.events import CASE_EVENTS
from soc_ledger.domain.knowledge import Fact


def positions(fact: Fact) -> tuple[int, ...]:
    """Log positions that decided a fact: the original event and its live corrections."""
    return tuple(r.position for r in fact.because) or (fact.recorded.position,)


def merge_refs(*groups: Iterable[int]) -> tuple[int, ...]:
    """One sorted tuple of distinct log positions."""
    return tuple(sorted(set().union(*groups)))  # the union in C: called per week and case


# --- contract -----------------------------------------------------------------------------


@dataclass(slots=True)
class ContractFacts(ContractState):
    """A `ContractState` that also remembers which log positions set each terms change.

    `refs` maps a terms change's id ("original" for `ContractAgreed`, else the variation id)
    to the positions of its event and corrections. Anything taking a `ContractState` takes
    this; the outcome rules use `refs` when present to explain prices, exclusions and caps.
    """

    refs: dict[str, tuple[int, ...]] = field(default_factory=dict)


def contract_from_facts(contract_id: str, facts: Iterable[Fact]) -> ContractFacts:
    """The contract `contract_id` folded from its contract-level facts, in log order.

    Case events and other contracts' events are skipped. Facts were validated by the ledger
    when they were appended, so the fold normally never fails; if a reading at an earlier
    `known_at` (or a correction) makes one inconsistent, the aggregate's rule wins and that
    fact is left out rather than failing every report (the ledger's `verify` reports it).
    """
    state = ContractFacts(contract_id)
    for fact in facts:
        event = fact.event
        if event.contract != contract_id or event.type in CASE_EVENTS:
            continue
        try:
            apply(state, event)
        except DomainError:
            continue
        if isinstance(event, ev.ContractAgreed):
            state.refs["original"] = positions(fact)
        elif isinstance(event, ev.VariationAgreed):
            state.refs[event.variation] = positions(fact)
    return state


# --- cases --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spell:
    """One care episode as read at `known_at`: in care from `start` up to, not including, `end`.

    `end` is the SSDA903 DEC, the first day out of care; None while the episode is open.
    """

    episode: str
    start: date
    end: date | None
    legal_status: str
    placement: str
    refs: tuple[int, ...]  # positions of its start, end and their corrections


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """One case (young person) folded from the facts known at `known_at`."""

    case: str
    borough: str
    intervention: str | None
    accepted: date | None
    first_meeting: date | None
    ended: date | None  # the intervention's end (InterventionEnded), whatever `as_of`
    spells: tuple[Spell, ...]  # ordered by start, then episode id
    refs: tuple[int, ...]  # referral, acceptance, first meeting and end, with corrections


@dataclass(slots=True)
class _CaseDraft:
    case: str
    borough: str | None = None
    intervention: str | None = None
    accepted: date | None = None
    first_meeting: date | None = None
    ended: date | None = None
    refs: list[int] = field(default_factory=list)
    starts: dict[str, Fact] = field(default_factory=dict)
    ends: dict[str, Fact] = field(default_factory=dict)


def cases_from_facts(facts: Iterable[Fact], contract: str | None = None) -> dict[str, CaseFacts]:
    """Every referred case, folded from its case-level facts (of `contract`, if given).

    Readings:
    - a case whose `ReferralReceived` is not known (never recorded, or retracted) is left out:
      without a referral there is no borough to bill and nothing to track;
    - facts were validated on append, so each lifecycle event occurs at most once; should a
      reading hold two (e.g. two starts of one episode), the later one in the log wins and both
      are kept in `refs`;
    - an episode end whose start is not known is ignored (nothing to end);
    - `BoosterSession` and `ReferralDeclined` decide nothing here (a declined case has no
      acceptance, so it is never tracked).
    """
    drafts: dict[str, _CaseDraft] = {}
    for fact in facts:
        event = fact.event
        if event.type not in CASE_EVENTS or (contract is not None and event.contract != contract):
            continue
        case_id = event.case_id
        assert case_id is not None
        draft = drafts.get(case_id)
        if draft is None:
            draft = drafts[case_id] = _CaseDraft(case_id)
        if isinstance(event, ev.ReferralReceived):
            draft.borough = event.borough
        elif isinstance(event, ev.ReferralAccepted):
            draft.intervention, draft.accepted = event.intervention, event.effective
        elif isinstance(event, ev.FirstFamilyMeeting):
            draft.first_meeting = event.effective
        elif isinstance(event, ev.InterventionEnded):
            draft.ended = event.effective
        elif isinstance(event, ev.CareEpisodeStarted):
            draft.starts[event.episode] = fact
            continue
        elif isinstance(event, ev.CareEpisodeEnded):
            draft.ends[event.episode] = fact
            continue
        else:
            continue
        draft.refs.extend(positions(fact))

    cases: dict[str, CaseFacts] = {}
    for case_id in sorted(drafts):
        draft = drafts[case_id]
        if draft.borough is None:
            continue
        spells = []
        for episode, start_fact in draft.starts.items():
            start = start_fact.event
            assert isinstance(start, ev.CareEpisodeStarted)
            end_fact = draft.ends.get(episode)
            spells.append(
                Spell(
                    episode=episode,
                    start=start.effective,
                    end=end_fact.event.effective if end_fact is not None else None,
                    legal_status=start.legal_status,
                    placement=start.placement,
                    refs=merge_refs(
                        positions(start_fact), positions(end_fact) if end_fact else ()
                    ),
                )
            )
        spells.sort(key=lambda s: (s.start, s.episode))
        cases[case_id] = CaseFacts(
            case=case_id,
            borough=draft.borough,
            intervention=draft.intervention,
            accepted=draft.accepted,
            first_meeting=draft.first_meeting,
            ended=draft.ended,
            spells=tuple(spells),
            refs=merge_refs(draft.refs),
        )
    return cases


# --- care data coverage ------------------------------------------------------------------


class Coverage(dict[str, date]):
    """borough -> the greatest `CareDataReceived.covers_until` known: its data is complete up to
    that day. A plain `dict[str, date]`, plus `refs`: borough -> positions of the fact(s) that
    set that date (the first fact in the log to reach it, with its corrections)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: dict[str, tuple[int, ...]] = {}


def coverage_from_facts(facts: Iterable[Fact], contract: str | None = None) -> Coverage:
    """Care-data coverage by borough: the greatest `covers_until` among the known facts.

    Reading: verification never goes backwards. A later `CareDataReceived` with an earlier
    `covers_until` (say a resubmitted older period) does not unverify weeks already verified;
    only a correction or retraction of the fact that set the date can move it back, and then
    only for `known_at` on or after that correction. The effective date of `CareDataReceived`
    does not matter, only what is known at `known_at` (SPEC §5 "Verified").
    """
    coverage = Coverage()
    for fact in facts:
        event = fact.event
        if not isinstance(event, ev.CareDataReceived):
            continue
        if contract is not None and event.contract != contract:
            continue
        current = coverage.get(event.borough)
        if current is None or event.covers_until > current:
            coverage[event.borough] = event.covers_until
            coverage.refs[event.borough] = positions(fact)
    return coverage
