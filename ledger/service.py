"""The ledger as the commands see it: open a store, record a batch, read the audit trail."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from soc_ledger.domain.knowledge import EVERYTHING, KnownAt
from soc_ledger.ledger import encryption, index
from soc_ledger.ledger.location import Location, StoreError
from soc_ledger.ledger.locks import writer_lock
from soc_ledger.ledger.opening import open_store
from soc_ledger.ledger.privacy import Pseudonymiser
from soc_ledger.ledger.progress import Progress, phase

if TYPE_CHECKING:
    from soc_ledger.ledger.problems import Problem
    from soc_ledger.ledger.recording import Incoming, Outcome
    from soc_ledger.ledger.store import Appending, EventLog

# Events are read, checked and sealed this many at a time (memory stays flat with file size).
CHUNK = 20_000

# A conflicting append (only possible from a writer that bypassed the lock) is retried from
# validation this many times in all before the batch is refused.
APPEND_ATTEMPTS = 3


class _CheckedOnly(Exception):
    """Rolls back a batch that was only checked (`--check`), carrying what it would append."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One line of the audit trail."""

    position: int
    appended_at: datetime
    recorded_on: datetime
    event: dict[str, Any]
    case: str | None  # a correction's case is its target's

    @property
    def type(self) -> str:
        return self.event["type"]

    @property
    def effective(self) -> date:
        return date.fromisoformat(self.event["effective"])


class Ledger:
    """A ledger opened for a command. With `create` False (every command but those that can
    start a ledger) the ledger must exist already: nothing is created at a mistyped URL."""

    def __init__(self, url: str | None = None, create: bool = True) -> None:
        self.location = Location.parse(url)
        open_store(self.location, create)
        self.engine = index.open_engine(self.location)
        try:
            encryption.check_store(
                self.engine, lambda: bool(index.log_head(self.engine, self.location))
            )
        except StoreError:
            self.engine.dispose()
            raise
        self.pseudonymiser = Pseudonymiser(
            self.location, self.engine, lambda: self.log.first_of("ReferralReceived")
        )
        self._log: EventLog | None = None
        # Told of long work (appends, catch-ups, verify) by whoever shows it: the command line
        # draws bars on a terminal. None: nothing is told.
        self.progress: Progress | None = None

    @property
    def log(self) -> EventLog:
        """The event log, opened on first use (a report whose read models are current never
        needs it)."""
        if self._log is None:
            from soc_ledger.ledger.store import EventLog

            self._log = EventLog(self.location)
        self._log.progress = self.progress
        return self._log

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record_lines(
        self,
        lines: Iterable[str] | Callable[[], Iterable[str]],
        source: str,
        check: bool = False,
    ) -> Outcome:
        """Record JSON Lines, read and checked CHUNK at a time (a callable gives the lines
        afresh, so that a conflicting append can be retried; so can a list). With `check`,
        everything is checked and appended in the transaction, which is then rolled back."""
        from soc_ledger.ledger.parsing import parsed_chunks

        def chunks() -> Iterator[tuple[list[Incoming], list[Problem]]]:
            return parsed_chunks(lines() if callable(lines) else lines, source, CHUNK)

        return self._record(
            chunks, None, retry=callable(lines) or isinstance(lines, list), check=check
        )

    def record(
        self, incoming: list[Incoming], now: datetime | None = None, check: bool = False
    ) -> Outcome:
        """Validate events already parsed and append them all, or none (`check`: none)."""

        def chunks() -> Iterator[tuple[list[Incoming], list[Problem]]]:
            for i in range(0, len(incoming), CHUNK):
                yield incoming[i : i + CHUNK], []

        return self._record(chunks, now, retry=True, check=check)

    def _record(
        self,
        chunks: Callable[[], Iterator[tuple[list[Incoming], list[Problem]]]],
        now: datetime | None,
        retry: bool,
        check: bool = False,
    ) -> Outcome:
        """Validate every event against the ledger and append them all, or none.

        Under the writer lock, so the chain's head and the aggregates validated against are
        the ones appended on. The events go in chunk by chunk, checked then sealed, inside
        one transaction of the library that commits only once the last is in (with the event
        index's rows, when it stood at the head): a problem anywhere rolls it all back. A file
        with lines that are not events is refused for those alone (the rest is not checked
        against the ledger: what it would say could only mislead).

        Should an append still conflict (a writer that bypassed the lock), the transaction
        rolls back whole and the batch is validated and appended again, up to APPEND_ATTEMPTS
        times in all, then refused.

        With `check` the transaction is rolled back once everything is in (nothing is
        written), and any problems are listed in line order.
        """
        from soc_ledger.ledger.problems import Problem, Rejected
        from soc_ledger.ledger.store import conflicting

        with writer_lock(self.location):
            for attempt in range(1, APPEND_ATTEMPTS + 1):
                index.catch_up(self.engine, self.log)
                # Keys and contents are looked up in the index: it must be the log's.
                index.check_covers(self.engine, self.location)
                first: list[Incoming] = []
                try:
                    outcome, indexed = self._append(chunks(), now, first, check)
                except Rejected as exc:
                    if check:
                        exc.problems.sort(key=lambda p: (p.source, p.line))
                    raise
                except Exception as exc:
                    if not conflicting(exc):
                        raise
                    if retry and attempt < APPEND_ATTEMPTS:
                        continue
                    where = (first[0].source, first[0].line) if first else ("(batch)", 0)
                    raise Rejected(
                        [
                            Problem(
                                *where,
                                "(append)",
                                f"another writer appended to the same streams at the same "
                                f"moment {attempt} times ({exc}); run the command again",
                            )
                        ]
                    ) from None
                break
            if not indexed:
                index.catch_up(self.engine, self.log)
        return outcome

    def _append(
        self,
        chunks: Iterator[tuple[list[Incoming], list[Problem]]],
        now: datetime | None,
        first: list[Incoming],
        check: bool = False,
    ) -> tuple[Outcome, bool]:
        from soc_ledger.ledger.recording import utc_now

        _, prev_hash = self.log.head()
        try:
            with self.log.appending() as txn:
                self.pseudonymiser.transaction = txn
                try:
                    done = self._append_in(txn, chunks, prev_hash, now or utc_now(), first)
                finally:
                    self.pseudonymiser.transaction = None
                if check:
                    raise _CheckedOnly(done[0])
                return done
        except _CheckedOnly as checked:
            return checked.outcome, True

    def _append_in(
        self,
        txn: Appending,
        chunks: Iterator[tuple[list[Incoming], list[Problem]]],
        prev_hash: str,
        now: datetime,
        first: list[Incoming],
    ) -> tuple[Outcome, bool]:
        from soc_ledger.ledger.problems import Rejected
        from soc_ledger.ledger.recording import Batch, Outcome

        not_events: list[Problem] = []
        indexed = True
        outcome = Outcome()
        batch = Batch(self.engine, self.pseudonymiser, now, txn.stream)
        if self.progress is not None:
            self.progress.start("recording")
        for incoming, problems in chunks:
            if self.progress is not None:
                self.progress.advance("recording", len(incoming))
            not_events.extend(problems)
            if not_events:
                continue
            if not first and incoming:
                first.append(incoming[0])
            self._check_key(incoming)
            batch.add_all(incoming)
            if batch.problems or not batch.pending:
                continue
            sealed = batch.envelopes(prev_hash)
            prev_hash = sealed[-1].hash
            positions = txn.insert(sealed)
            outcome.positions.extend(positions)
            indexed = indexed and index.appended_in(txn, batch.index_rows(positions))
            batch.flush()
        if self.progress is not None:
            self.progress.finish("recording")
        if not_events:
            raise Rejected(not_events)
        batch.check_cases()
        if batch.problems:
            raise Rejected(batch.problems)
        if outcome.positions:
            encryption.claim_in(txn)
        outcome.appended = len(outcome.positions)
        outcome.already_present = batch.already_present
        return outcome, indexed

    def _check_key(self, incoming: list[Incoming]) -> None:
        """A missing or wrong pseudonym key is named at the first line that needs it."""
        from soc_ledger.ledger.problems import Problem, Rejected

        for item in incoming:
            event = item.event
            if event.type == "ReferralReceived" or (
                event.type == "EventCorrected" and "child_ref" in event.changes  # type: ignore[attr-defined]
            ):
                try:
                    self.pseudonymiser.key  # noqa: B018 - loads and checks the key
                except StoreError as exc:
                    problem = Problem(item.source, item.line, "child_ref", str(exc))
                    raise Rejected([problem]) from None
                return

    def follow(self, project: Callable[[Engine, EventLog], int], *names: str) -> int:
        """Bring a read model (named first; the others it follows before its own rows) up to
        the head of the log.

        Only a model that is behind takes the writer lock (so two catching up at once cannot
        both write the same rows); an up-to-date one is read without waiting. A model added
        to the chain after a store was built is behind, so it is built on the next follow.
        """
        head = index.log_head(self.engine, self.location)
        if head is not None and all(index.tracked_position(self.engine, n) >= head for n in names):
            return 0
        with writer_lock(self.location), phase(self.progress, f"catching up {names[0]}"):
            return project(self.engine, self.log)

    def trail(
        self,
        case: str | None = None,
        types: Iterable[str] = (),
        known_at: KnownAt = EVERYTHING,
        contract: str | None = None,
    ) -> Iterator[TrailEntry]:
        """The audit trail read from the log itself, oldest first."""
        from soc_ledger.ledger.store import DamagedEvent

        for note in self.log.notifications(topics=tuple(types)):
            state = self.log.mapper.decode_state(note)
            try:
                entry = TrailEntry(
                    note.id,
                    datetime.fromisoformat(state["appended_at"]),
                    datetime.fromisoformat(state["recorded_on"]),
                    state["event"],
                    state["event"].get("case") or index.case_of(state["stream"]),
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise DamagedEvent(f"at #{note.id}", exc) from exc
            if not known_at.knows(entry.recorded_on):
                continue
            if case is not None and entry.case != case:
                continue
            if contract is not None and entry.event["contract"] != contract:
                continue
            yield entry
