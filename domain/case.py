"""The Case aggregate: one young person's lifecycle and care episodes — the write-time guard.

Rules that depend on the contract (borough membership, age range, referrals close) read the
contract's state on the event's effective date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from soc_ledger.domain import events as ev
from soc_ledger.domain.contract import ContractState, DomainError
from soc_ledger.domain.events import Event


@dataclass(frozen=True, slots=True)
class Episode:
    start: date
    end: date | None = None  # the SSDA903 DEC: first day out of care; None while open

    def overlaps(self, other: Episode) -> bool:
        return (other.end is None or self.start < other.end) and (
            self.end is None or other.start < self.end
        )


@dataclass(slots=True)
class CaseState:
    case: str
    referral: ev.ReferralReceived | None = None
    accepted: ev.ReferralAccepted | None = None
    declined: bool = False
    first_meeting: date | None = None
    ended: date | None = None
    episodes: dict[str, Episode] = field(default_factory=dict)


def age_on(date_of_birth: str, day: date) -> int:
    """Whole years of age on `day`; a stored year-month birth date counts from the 1st."""
    year, month = int(date_of_birth[:4]), int(date_of_birth[5:7])
    dom = int(date_of_birth[8:10]) if len(date_of_birth) == 10 else 1
    return day.year - year - ((day.month, day.day) < (month, dom))


def apply(
    state: CaseState, event: Event, contract: ContractState, refold: bool = False
) -> CaseState:
    """Check `event` against the case and contract, then fold it in; DomainError if impossible."""
    if isinstance(event, ev.ReferralReceived):
        _referral(state, event, contract)
        return state
    if state.referral is None:
        raise DomainError(f"case {state.case!r} has no referral", "case")
    if refold and isinstance(event, ev.CareEpisodeEnded) and event.episode not in state.episodes:
        # Re-reading history: the start of this episode has been retracted, so its end is moot.
        return state
    handler = _HANDLERS.get(type(event))
    if handler is not None:
        handler(state, event, contract)
        if not refold and isinstance(event, ev.CareEpisodeStarted | ev.CareEpisodeEnded):
            _no_overlap(state, event.episode, event.type == "CareEpisodeStarted")
    return state


def check_episodes(state: CaseState) -> None:
    """No two episodes of the case overlap (an open one runs on): the state a batch leaves.

    While a batch is applied an episode can be open for a moment (a start before its end, a
    retracted end before its start), so the full check is made once the batch is complete.
    """
    names = sorted(state.episodes, key=lambda n: (state.episodes[n].start, n))
    for i, name in enumerate(names):
        for other in names[i + 1 :]:
            if state.episodes[name].overlaps(state.episodes[other]):
                _overlap_error(state, other, name)


def _referral(state: CaseState, e: ev.ReferralReceived, contract: ContractState) -> None:
    if state.referral is not None:
        raise DomainError(f"case {e.case!r} has already been referred", "case")
    if not contract.member_on(e.borough, e.effective):
        membership = contract.boroughs.get(e.borough)
        why = (
            "has not acceded"
            if membership is None
            else f"is not a member on {e.effective} (acceded {membership.acceded}"
            + (f", withdrew {membership.withdrew})" if membership.withdrew else ")")
        )
        raise DomainError(f"borough {e.borough!r} {why}", "borough")
    if len(e.date_of_birth) == 10:
        # Stored referrals keep only the birth month; they were checked on the full date.
        check_age(e, contract)
    state.referral = e


def check_age(e: ev.ReferralReceived, contract: ContractState) -> None:
    """Age at referral within the range, or up to `exception_max` with a recorded exception."""
    ages = contract.terms_on(e.effective).age_at_referral
    age = age_on(e.date_of_birth, e.effective)
    if ages.min <= age <= ages.max:
        return
    limit = ages.exception_max if ages.exception_max is not None else ages.max
    if e.age_exception is not None and ages.min <= age <= limit:
        return
    allowed = f"{ages.min}-{ages.max}"
    if ages.exception_max is not None:
        allowed += f" (up to {ages.exception_max} with a recorded age_exception)"
    raise DomainError(f"age {age} at referral is outside {allowed}", "date_of_birth")


def _accepted(state: CaseState, e: ev.ReferralAccepted, contract: ContractState) -> None:
    if state.accepted is not None:
        raise DomainError(f"case {e.case!r} has already been accepted", "type")
    if state.declined:
        raise DomainError(f"case {e.case!r} was declined", "type")
    assert state.referral is not None
    if e.effective < state.referral.effective:
        raise DomainError("a referral cannot be accepted before it is received", "effective")
    close = contract.terms_on(e.effective).referrals_close
    if e.effective > close:
        raise DomainError(f"referrals closed on {close}", "effective")
    state.accepted = e


def _declined(state: CaseState, e: ev.ReferralDeclined, contract: ContractState) -> None:
    if state.accepted is not None:
        raise DomainError(f"case {e.case!r} has already been accepted", "type")
    if state.declined:
        raise DomainError(f"case {e.case!r} has already been declined", "type")
    state.declined = True


def _first_meeting(state: CaseState, e: ev.FirstFamilyMeeting, contract: ContractState) -> None:
    if state.accepted is None:
        raise DomainError(f"case {e.case!r} has not been accepted", "type")
    if e.effective < state.accepted.effective:
        raise DomainError(
            f"the first family meeting is before acceptance on {state.accepted.effective}",
            "effective",
        )
    if state.first_meeting is not None:
        raise DomainError(f"case {e.case!r} already had its first family meeting", "type")
    state.first_meeting = e.effective


def _ended(state: CaseState, e: ev.InterventionEnded, contract: ContractState) -> None:
    if state.first_meeting is None:
        raise DomainError(f"case {e.case!r} has had no first family meeting", "type")
    if e.effective < state.first_meeting:
        raise DomainError(
            f"the intervention cannot end before the first meeting on {state.first_meeting}",
            "effective",
        )
    if state.ended is not None:
        raise DomainError(f"the intervention of case {e.case!r} has already ended", "type")
    state.ended = e.effective


def _episode_started(state: CaseState, e: ev.CareEpisodeStarted, contract: ContractState) -> None:
    if e.episode in state.episodes:
        raise DomainError(
            f"episode {e.episode!r} of case {e.case!r} has already started", "episode"
        )
    state.episodes[e.episode] = Episode(e.effective)


def _episode_ended(state: CaseState, e: ev.CareEpisodeEnded, contract: ContractState) -> None:
    episode = state.episodes.get(e.episode)
    if episode is None:
        raise DomainError(f"episode {e.episode!r} of case {e.case!r} has not started", "episode")
    if episode.end is not None:
        raise DomainError(f"episode {e.episode!r} of case {e.case!r} has already ended", "episode")
    if e.effective < episode.start:
        raise DomainError(
            f"episode {e.episode!r} ends on {e.effective}, before it starts on {episode.start}",
            "effective",
        )
    state.episodes[e.episode] = Episode(episode.start, e.effective)


def _measured(state: CaseState, e: ev.WellbeingMeasured, contract: ContractState) -> None:
    terms = contract.terms_on(e.effective)
    wellbeing = terms.wellbeing_improvement
    if wellbeing is None or "wellbeing_improvement" not in terms.mechanisms:
        raise DomainError(
            f"contract {contract.contract!r} pays for no wellbeing measure on {e.effective}",
            "type",
        )
    if e.measure != wellbeing.measure:
        raise DomainError(
            f"the contract's wellbeing measure is {wellbeing.measure!r}, not {e.measure!r}",
            "measure",
        )


def _no_overlap(state: CaseState, name: str, starting: bool) -> None:
    """A start must not fall inside another episode; an end must not make two overlap.

    (A start is not yet compared with later episodes: its end may follow in the same batch.)
    """
    episode = state.episodes[name]
    for other_name, other in state.episodes.items():
        if other_name == name:
            continue
        inside = other.start <= episode.start and (other.end is None or episode.start < other.end)
        if inside or (not starting and episode.overlaps(other)):
            _overlap_error(state, name, other_name)


def _overlap_error(state: CaseState, name: str, other_name: str) -> None:
    other = state.episodes[other_name]
    span = f"{other.start} to {other.end or 'open'}"
    raise DomainError(
        f"episode {name!r} overlaps episode {other_name!r} ({span}) of case {state.case!r}",
        "effective",
    )


_HANDLERS = {
    ev.ReferralAccepted: _accepted,
    ev.ReferralDeclined: _declined,
    ev.FirstFamilyMeeting: _first_meeting,
    ev.InterventionEnded: _ended,
    ev.CareEpisodeStarted: _episode_started,
    ev.CareEpisodeEnded: _episode_ended,
    ev.WellbeingMeasured: _measured,
}
