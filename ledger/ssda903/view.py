"""What the ledger knows, as an SSDA903 import needs it: `view_from_facts` folds the facts known
now (corrections applied) into the borough's referred children, its cases' episodes, this
period's episodes recorded by earlier imports and the returns imported before.

- **Episode ids** are `903:<borough>:<period start>:<DECOM>`: stable across resubmissions of the
  period, so a changed DEC, REC, LS or PLACE is a correction of the same episode, and a new
  DECOM a new episode (the old one vanishes). One long stay spanning several returns is one
  clipped episode per period.
- **Receipts.** A `CareDataReceived` this importer recorded has the key
  `903:<borough>:<period start>:<period end>:<received>:<digest>`, where the digest (16 hex
  digits of SHA-256) is over the return's episode rows, whatever the form.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from soc_ledger.domain import events as ev
from soc_ledger.domain.case import Episode
from soc_ledger.domain.knowledge import Fact
from soc_ledger.domain.outcomes.facts import coverage_from_facts
from soc_ledger.ledger.ssda903.period import Period

PREFIX = "903"


def episode_id(borough: str, period: Period, decom: date) -> str:
    return f"{PREFIX}:{borough}:{period.start}:{decom}"


def episode_prefix(borough: str, period: Period) -> str:
    return f"{PREFIX}:{borough}:{period.start}:"


def receipt_key(borough: str, period: Period, received_on: date, digest: str) -> str:
    return f"{PREFIX}:{borough}:{period.start}:{period.end}:{received_on}:{digest}"


_RECEIPT = re.compile(
    r"^903:(?P<borough>[^:]+):(?P<start>\d{4}-\d{2}-\d{2}):(?P<end>\d{4}-\d{2}-\d{2}):"
    r"(?P<received>\d{4}-\d{2}-\d{2}):(?P<digest>[0-9a-f]+)$"
)


@dataclass(frozen=True, slots=True)
class Receipt:
    """A return imported before: a `CareDataReceived` this importer recorded."""

    period: Period
    received_on: date
    digest: str


def read_receipt_key(key: str | None) -> tuple[str, Receipt] | None:
    """The borough and the return a key made by `receipt_key` names; None for any other key."""
    match = _RECEIPT.match(key or "")
    if match is None:
        return None
    period = Period(date.fromisoformat(match["start"]), date.fromisoformat(match["end"]))
    return match["borough"], Receipt(
        period, date.fromisoformat(match["received"]), match["digest"]
    )


@dataclass(frozen=True, slots=True)
class Recorded903:
    """An episode of this borough and period as the ledger reads it now."""

    case: str
    episode: str
    start: ev.CareEpisodeStarted
    end: ev.CareEpisodeEnded | None
    start_target: str  # its key (or #position) for corrections and retractions
    end_target: str | None

    @property
    def decom(self) -> str:
        return self.episode.rsplit(":", 1)[-1]


@dataclass(frozen=True, slots=True)
class LedgerView:
    """What the planner needs from the facts known now, for one borough and period."""

    contract: str
    referred: Mapping[str, tuple[str, ...]]  # child pseudonym -> the borough's cases
    episodes: Mapping[str, Mapping[str, Episode]]  # case -> every episode it has (any source)
    recorded: Mapping[str, Mapping[str, Recorded903]]  # case -> this period's episodes
    receipts: tuple[Receipt, ...]  # this borough's returns imported before
    coverage: date | None  # the borough's care data verified up to


def _target(fact: Fact) -> str:
    return fact.event.key or f"#{fact.recorded.position}"


def view_from_facts(
    facts: Iterable[Fact], contract: str, borough: str, period: Period
) -> LedgerView:
    """Fold the facts known now (corrections applied) into the planner's view."""
    cases: dict[str, str] = {}
    starts: dict[tuple[str, str], Fact] = {}
    ends: dict[tuple[str, str], Fact] = {}
    receipts: list[Receipt] = []
    facts = list(facts)
    for fact in facts:
        e = fact.event
        if e.contract != contract:
            continue
        if isinstance(e, ev.ReferralReceived):
            if e.borough == borough:
                cases[e.case] = e.child_ref
        elif isinstance(e, ev.CareEpisodeStarted):
            starts[(e.case, e.episode)] = fact
        elif isinstance(e, ev.CareEpisodeEnded):
            ends[(e.case, e.episode)] = fact
        elif isinstance(e, ev.CareDataReceived) and e.borough == borough:
            read = read_receipt_key(e.key)
            if read is not None and read[0] == borough:
                receipts.append(read[1])
    referred: dict[str, list[str]] = defaultdict(list)
    for case, child_ref in sorted(cases.items()):
        referred[child_ref].append(case)
    prefix = episode_prefix(borough, period)
    episodes: dict[str, dict[str, Episode]] = defaultdict(dict)
    recorded: dict[str, dict[str, Recorded903]] = defaultdict(dict)
    for (case, name), start_fact in starts.items():
        if case not in cases:
            continue
        end_fact = ends.get((case, name))
        start = start_fact.event
        end = end_fact.event if end_fact is not None else None
        assert isinstance(start, ev.CareEpisodeStarted)
        assert end is None or isinstance(end, ev.CareEpisodeEnded)
        episodes[case][name] = Episode(start.effective, end.effective if end else None)
        if name.startswith(prefix):
            recorded[case][name] = Recorded903(
                case,
                name,
                start,
                end,
                _target(start_fact),
                _target(end_fact) if end_fact is not None else None,
            )
    return LedgerView(
        contract,
        {ref: tuple(found) for ref, found in referred.items()},
        episodes,
        recorded,
        tuple(receipts),
        coverage_from_facts(facts, contract).get(borough),
    )
