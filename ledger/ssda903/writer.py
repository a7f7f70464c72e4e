"""The events of one SSDA903 import, written case by case with the Case rule on episodes
simulated as they go, and the counts of what the import changed.

- **Keys.** Starts and ends: `903:<borough>:<period start>:<case>:<DECOM>:start@<received>`
  (`:end@`); corrections `...:start-fix@<received>`, retractions `...:start-retracted@<received>`
  (and `end-`); `CareDataReceived`: `903:<borough>:<period start>:<period end>:<received>:<digest>`
  (`view.receipt_key`). Every event is recorded with `recorded_on` = the received date.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from pydantic import ValidationError

from soc_ledger.domain import events as ev
from soc_ledger.domain.case import Episode
from soc_ledger.ledger.problems import Problem
from soc_ledger.ledger.recording import Incoming
from soc_ledger.ledger.ssda903.clipping import Clip
from soc_ledger.ledger.ssda903.period import Period
from soc_ledger.ledger.ssda903.reading import Return
from soc_ledger.ledger.ssda903.view import PREFIX, LedgerView, Recorded903, receipt_key


@dataclass(slots=True)
class Summary:
    """What an import read, matched, discarded and changed."""

    borough: str
    period: Period
    received_on: date
    rows: int = 0  # episode rows read
    header_children: int = 0  # children in the header table
    children: int = 0  # distinct CHILD ids among the episode rows
    children_matched: int = 0  # ... that are referred children of the borough
    cases_matched: int = 0  # referred cases with at least one row in the return
    cases_absent: int = 0  # referred cases of the borough with no row: not in care
    rows_unmatched: int = 0  # discarded, never stored
    rows_outside: int = 0  # matched rows with no day in the period: ignored
    rows_used: int = 0
    episodes_new: int = 0
    episodes_corrected: int = 0
    episodes_retracted: int = 0
    episodes_unchanged: int = 0
    already_imported: bool = False  # the same return was imported before (same received date)

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["period"] = {
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
        }
        data["received_on"] = self.received_on.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class Stated:
    """One clipped episode of a case, as the return states it."""

    case: str
    episode: str
    clip: Clip


class Writer:
    """Builds the events of one import, simulating the Case rule on episodes as it goes."""

    def __init__(
        self, ret: Return, view: LedgerView, borough: str, period: Period, received_on: date
    ) -> None:
        self.ret = ret
        self.view = view
        self.borough = borough
        self.period = period
        self.received_on = received_on
        self.incoming: list[Incoming] = []
        self.problems: list[Problem] = []

    # -- events ------------------------------------------------------------------------------

    def _add(self, line: int, data: dict[str, Any]) -> None:
        data.update(
            contract=self.view.contract,
            recorded_on=self.received_on,
        )
        data.setdefault("effective", self.received_on)
        try:
            event = ev.EVENT_ADAPTER.validate_python(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"][1:]) or "(event)"
            self.problems.append(Problem(self.ret.episodes_file, line, where, err["msg"]))
            return
        self.incoming.append(Incoming(self.ret.episodes_file, line, event))

    def _key(self, case: str, decom: str, what: str) -> str:
        return (
            f"{PREFIX}:{self.borough}:{self.period.start}:{case}:{decom}:{what}@{self.received_on}"
        )

    def _source(self, clip: Clip) -> str:
        return f"{os.path.basename(clip.row.source)}:{clip.row.line}"

    def _why(self) -> str:
        return f"903 return of {self.borough} for {self.period}, received {self.received_on}"

    def receipt(self) -> None:
        self._add(
            0,
            {
                "type": "CareDataReceived",
                "key": receipt_key(self.borough, self.period, self.received_on, self.ret.digest),
                "borough": self.borough,
                "covers_until": self.period.end,
                "source": f"{self._why()}: {self.ret.names}",
            },
        )

    # -- one case ----------------------------------------------------------------------------

    def case(
        self,
        case: str,
        wanted: Mapping[str, Stated],
        recorded: Mapping[str, Recorded903],
        summary: Summary,
    ) -> None:
        state = dict(self.view.episodes.get(case, {}))
        vanished = sorted(
            (recorded[n] for n in recorded if n not in wanted),
            key=lambda r: (r.start.effective, r.episode),
            reverse=True,  # latest first: an earlier one is never reopened over a later one
        )
        for gone in vanished:
            self._retract(case, gone, state)
            summary.episodes_retracted += 1
        for name in sorted(set(wanted) & set(recorded), key=lambda n: wanted[n].clip.start):
            if self._correct(case, wanted[name], recorded[name], state):
                summary.episodes_corrected += 1
            else:
                summary.episodes_unchanged += 1
        for name in sorted(set(wanted) - set(recorded), key=lambda n: wanted[n].clip.start):
            self._start(case, wanted[name], state)
            summary.episodes_new += 1

    def _blocking(self, name: str, episode: Episode, state: Mapping[str, Episode]) -> str | None:
        for other, span in sorted(state.items(), key=lambda kv: kv[1].start):
            if other != name and episode.overlaps(span):
                return f"episode {other!r} ({span.start} to {span.end or 'open'})"
        return None

    def _retract(self, case: str, gone: Recorded903, state: dict[str, Episode]) -> None:
        # The start goes first: a case re-read without its start ignores the orphaned end,
        # and no reading ever has the episode open over a later one.
        reason = f"{self._why()}: the episode is no longer in the return"
        source = f"{self._why()}: {self.ret.names}"
        parts = [("start-retracted", gone.start_target)]
        if gone.end_target is not None:
            parts.append(("end-retracted", gone.end_target))
        for part, target in parts:
            self._add(
                0,
                {
                    "type": "EventRetracted",
                    "key": self._key(case, gone.decom, part),
                    "target": target,
                    "reason": reason,
                    "source": source,
                },
            )
        state.pop(gone.episode, None)

    def _correct(
        self, case: str, want: Stated, have: Recorded903, state: dict[str, Episode]
    ) -> bool:
        clip = want.clip
        decom = str(clip.decom)
        start_changes = _changes(
            have.start,
            {
                "effective": clip.start,
                "legal_status": clip.legal_status,
                "placement": clip.placement,
            },
        )
        changed = bool(start_changes)
        if start_changes:
            self._add(
                clip.row.line,
                {
                    "type": "EventCorrected",
                    "key": self._key(case, decom, "start-fix"),
                    "target": have.start_target,
                    "changes": _jsonable(start_changes),
                    "reason": f"{self._why()}: {_described(have.start, start_changes)}",
                    "source": self._source(clip),
                },
            )
        if have.end is None:
            changed = True
            self._end(case, want)
        else:
            end_changes = _changes(have.end, {"effective": clip.end, "reason": clip.reason})
            if end_changes:
                changed = True
                self._add(
                    clip.row.line,
                    {
                        "type": "EventCorrected",
                        "key": self._key(case, decom, "end-fix"),
                        "target": have.end_target,
                        "changes": _jsonable(end_changes),
                        "reason": f"{self._why()}: {_described(have.end, end_changes)}",
                        "source": self._source(clip),
                    },
                )
        if changed:
            episode = Episode(clip.start, clip.end)
            blocker = self._blocking(want.episode, episode, state)
            if blocker is not None:
                self.problems.append(
                    Problem(
                        clip.row.source,
                        clip.row.line,
                        "DEC",
                        f"as corrected, episode {want.episode!r} of case {case!r} ({clip.start} "
                        f"to {clip.end}) would overlap {blocker} already in the ledger",
                    )
                )
            state[want.episode] = episode
        return changed

    def _start(self, case: str, want: Stated, state: dict[str, Episode]) -> None:
        clip = want.clip
        overlapping = self._blocking(want.episode, Episode(clip.start, clip.end), state)
        if overlapping is not None:
            self.problems.append(
                Problem(
                    clip.row.source,
                    clip.row.line,
                    "DECOM",
                    f"episode {want.episode!r} of case {case!r} ({clip.start} to {clip.end}) "
                    f"overlaps {overlapping} already in the ledger",
                )
            )
            return
        self._add(
            clip.row.line,
            {
                "type": "CareEpisodeStarted",
                "effective": clip.start,
                "key": self._key(case, str(clip.decom), "start"),
                "case": case,
                "episode": want.episode,
                "legal_status": clip.legal_status,
                "placement": clip.placement,
                "source": self._source(clip),
            },
        )
        self._end(case, want)
        state[want.episode] = Episode(clip.start, clip.end)

    def _end(self, case: str, want: Stated) -> None:
        clip = want.clip
        self._add(
            clip.row.line,
            {
                "type": "CareEpisodeEnded",
                "effective": clip.end,
                "key": self._key(case, str(clip.decom), "end"),
                "case": case,
                "episode": want.episode,
                "reason": clip.reason,
                "source": self._source(clip),
            },
        )


def _changes(event: ev.Event, wanted: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in wanted.items() if getattr(event, name) != value}


def _jsonable(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in changes.items()}


def _described(event: ev.Event, changes: Mapping[str, Any]) -> str:
    parts = [f"{name} {getattr(event, name)} -> {value}" for name, value in changes.items()]
    return "; ".join(parts)
