"""`verify --sample N`: the read models compared with a rebuild for N cases drawn at random
(and every contract's own events), not for every case, so that a national fund's store
verifies in under a minute instead of rebuilding everything.

Why a sample rebuilds exactly what the whole rebuild would, for what it draws: a case's rows
(its facts, its latest row, its versions) are a pure function of its own stream and its
contract's stream (`versions._computed`), and a contract's own rows (terms, coverage, claims
and their lines) of its contract's stream alone. So the contract streams and N case streams,
fed to the same followers as a rebuild (`DrawnLog`), give the rebuild's rows for those
streams and cases; they are compared with the stored ones row by row (`restricted`), as the
whole `verify` compares every row.

What a sample does not prove, said plainly:

- The log's own checks (chain, streams, privacy, aggregates) stay whole: every event is read.
- The rows of the cases not drawn are not recomputed. An edit made outside the ledger is
  still counted by the database's triggers (`projections/seals.py`), which a sampled verify
  checks for every guarded table; someone who can also rewrite those counts escapes one
  sampled run with the chance that none of the cases they edited is drawn (1 - N/M for one
  case among M). The draw uses the operating system's randomness (`random.SystemRandom`),
  so nobody can know beforehand which cases a run reads. `verify` without `--sample`
  recomputes every row and leaves no such chance: that is the proof.
- Balance assertions are recomputed from the stored facts (the rebuilt ones are a sample),
  which the seals and the sample vouch for, not a full rebuild.

Example: a store of 34,500 cases, `verify --sample 1000` rebuilds the contract's 7,000 own
events and the drawn cases' 16,000, about 4 % of the log, and compares their rows.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from eventsourcing.persistence import Notification
from sqlalchemy import ColumnElement, Table, tuple_

from soc_ledger.ledger.index import case_of, stream_parts

if TYPE_CHECKING:
    from soc_ledger.ledger.store import EventLog


class Sample(NamedTuple):
    """The streams a sampled verify follows (in log order), and how many cases of how many."""

    streams: list[str]
    cases: int
    of: int

    def drawn(self) -> list[dict[str, str]]:
        """The cases drawn, each as its contract and case id, in order."""
        pairs = sorted(tuple(p) for p in map(stream_parts, self.streams) if len(p) == 2)
        return [{"contract": contract, "case": case} for contract, case in pairs]


def draw(streams: Sequence[str], n: int, rng: random.Random) -> Sample:
    """Every contract's own stream and `n` case streams picked by `rng` (every case stream
    when there are no more than `n`), in the order of `streams`."""
    cases = [s for s in streams if case_of(s) is not None]
    picked = set(rng.sample(cases, min(n, len(cases))))
    drawn = [s for s in streams if s in picked or case_of(s) is None]
    return Sample(drawn, len(picked), len(cases))


class DrawnLog:
    """The log as the followers read it (`index.catch_up`: `notifications`, `mapper`,
    `progress`), holding only the drawn streams' events, in log order. Each stream is read
    back by its key a page at a time (`EventLog.by_stream`) and the streams are merged by
    position: memory holds a page of each drawn stream, never the log."""

    progress = None  # a sample's rebuild is short, and the log's length would overstate it

    def __init__(self, log: EventLog, drawn: Sequence[str]) -> None:
        self.mapper = log.mapper
        self._log = log
        self._drawn = drawn

    def notifications(self, after: int = 0) -> Iterator[Notification]:
        streams = (self._notes(stream) for stream in self._drawn)
        for note in heapq.merge(*streams, key=attrgetter("id")):
            if note.id > after:
                yield note

    def _notes(self, stream: str) -> Iterator[Notification]:
        for position, stored in self._log.by_stream(stream):
            yield Notification(
                originator_id=stored.originator_id,
                originator_version=stored.originator_version,
                topic=stored.topic,
                state=stored.state,
                id=position,
            )


def restricted(table: Table, drawn: Sequence[str]) -> ColumnElement[Any]:
    """The rows of `table` that belong to the drawn streams: by stream where the table names
    it, else by (contract, case) for the drawn cases."""
    if "stream" in table.c:
        return table.c.stream.in_(list(drawn))
    pairs = [tuple(parts) for parts in map(stream_parts, drawn) if len(parts) == 2]
    return tuple_(table.c.contract, table.c.case_id).in_(pairs)
