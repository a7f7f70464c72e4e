"""The event store: `eventsourcing` 9.5's own SQLite and PostgreSQL recorders, our mapper.

One `LedgerApplication` per database (the library's SQLite table is always `stored_events`).
Each stored event is an `Envelope`: the event as received (normalised), the two clocks, its
place in its aggregate's stream, an idempotency digest and the hash chain (SPEC §11).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import (
    Mapper,
    Notification,
    OperationalError,
    RecordConflictError,
    StoredEvent,
    Transcoder,
)
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteApplicationRecorder
from eventsourcing.utils import get_topic

from soc_ledger.domain.events import EVENT_TYPES
from soc_ledger.domain.knowledge import Recorded
from soc_ledger.ledger.location import Location, StoreError, canonical
from soc_ledger.ledger.opening import one_line
from soc_ledger.ledger.progress import Progress

GENESIS = "0" * 64
_NAMESPACE = uuid.UUID("6f1d3c2e-7a51-4e0b-9a57-5c0c1ad9e1b3")


@functools.lru_cache(maxsize=65536)
def stream_id(stream: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, stream)


@dataclass(frozen=True, slots=True)
class Envelope:
    """What is stored for one event (the library's 'domain event'), sealed into the chain.

    `state` is the stored content: the event as received (normalised), the two clocks, its
    place in its aggregate's stream, an idempotency digest, the previous hash and its own.
    A plain dict, built once per event: a bulk append spends its time on the rules, not here.
    """

    originator_id: uuid.UUID
    originator_version: int
    topic: str
    state: dict[str, Any]

    @property
    def hash(self) -> str:
        return self.state["hash"]


def envelope(
    stream: str,
    version: int,
    appended_at: str,
    recorded_on: str,
    target_version: int | None,
    digest: str,
    prev_hash: str,
    event: dict[str, Any],
    pseudonym_key: str | None = None,
) -> Envelope:
    """Seal one event after `prev_hash` (times already in their stored ISO form).

    A referral's envelope also seals the fingerprint of the key its pseudonym was made with
    (`privacy.Pseudonymiser`): the log itself, not a helper table, says which key it is.
    """
    originator_id = stream_id(stream)
    state: dict[str, Any] = {
        "appended_at": appended_at,
        "digest": digest,
        "event": event,
        "originator_id": originator_id.hex,
        "originator_version": version,
        "prev_hash": prev_hash,
        "recorded_on": recorded_on,
        "stream": stream,
        "target_version": target_version,
    }
    if pseudonym_key is not None:
        state["pseudonym_key"] = pseudonym_key
    # `seal` over a state that has no hash yet, without copying it.
    state["hash"] = hashlib.sha256(prev_hash.encode() + canonical(state)).hexdigest()
    return Envelope(originator_id, version, event["type"], state)


def seal(state: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the canonical content (without its own hash)."""
    content = {k: v for k, v in state.items() if k != "hash"}
    return hashlib.sha256(state["prev_hash"].encode() + canonical(content)).hexdigest()


class CanonicalJSONTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return canonical(obj)

    def decode(self, data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:  # e.g. an integer beyond 64 bits: the slow, general way
            return json.loads(data)


class LedgerMapper(Mapper):
    """Pydantic envelopes to stored events and back (the library ships no pydantic mapper)."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        sealed: Envelope = domain_event
        stored = self.transcoder.encode(sealed.state)
        if self.compressor:
            stored = self.compressor.compress(stored)
        if self.cipher:
            stored = self.cipher.encrypt(stored)
        return StoredEvent(
            originator_id=sealed.originator_id,
            originator_version=sealed.originator_version,
            topic=sealed.topic,
            state=stored,
        )

    def decode_state(self, stored: StoredEvent) -> dict[str, Any]:
        """The stored envelope's content; a row that no longer decodes (or decrypts) is the
        store's damage, never the input's: `DamagedEvent`, naming where it lies."""
        try:
            data = stored.state
            if self.cipher:
                data = self.cipher.decrypt(data)
            if self.compressor:
                data = self.compressor.decompress(data)
            state = self.transcoder.decode(data)
            if not isinstance(state, dict):
                raise ValueError(f"a {type(state).__name__}, not an envelope")
            return state
        except Exception as exc:  # undecodable bytes, a failed decryption: many types
            raise DamagedEvent(_where(stored), exc) from exc

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return Envelope(
            stored_event.originator_id,  # type: ignore[arg-type]
            stored_event.originator_version,
            stored_event.topic,
            self.decode_state(stored_event),
        )


class DamagedEvent(StoreError):
    """A stored event that cannot be read back: the store was damaged after it was written."""

    def __init__(self, where: str, cause: BaseException) -> None:
        self.cause = cause
        reason = " ".join(f"{type(cause).__name__}: {cause}".split())[:200]
        super().__init__(
            f"the stored event {where} cannot be read ({reason}): the store is damaged; "
            "run `soc-ledger verify` to find every damaged event"
        )


def _where(stored: StoredEvent) -> str:
    """A stored event's place: its log position when read as a notification, else its
    stream's id and version."""
    if isinstance(stored, Notification):
        return f"at #{stored.id}"
    return f"of stream id {stored.originator_id} version {stored.originator_version}"


def recorded_at(state: dict[str, Any], position: int, where: str) -> Recorded:
    """`to_recorded`, a stored envelope that no longer reads as an event being damage."""
    try:
        return to_recorded(state, position)
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError included
        raise DamagedEvent(where, exc) from exc


class BulkSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder, inserting a batch with one `executemany`.

    The library's own inserts one row per `execute` to learn each row's id. Inside the
    transaction the database is write-locked from the first insert, so the rows of one
    `executemany` take consecutive rowids ending at `last_insert_rowid()`.
    """

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        SQLiteAggregateRecorder._insert_events(self, c, stored_events, **kwargs)
        c.execute("SELECT last_insert_rowid()")
        last = c.fetchone()[0]
        return list(range(last - len(stored_events) + 1, last + 1))


class LedgerApplication(Application):
    name = "SOCLedger"
    env: ClassVar[dict[str, str]] = {
        "TRANSCODER_TOPIC": get_topic(CanonicalJSONTranscoder),
        "MAPPER_TOPIC": get_topic(LedgerMapper),
    }


class EventLog:
    """Appends envelopes in one transaction and reads the log and streams back."""

    PAGE = 1000

    def __init__(self, location: Location) -> None:
        self.location = location
        self.progress: Progress | None = None  # told of long reads (`Ledger.progress`)
        if location.kind == "sqlite":
            folder = os.path.dirname(os.path.abspath(location.path))
            if not os.path.isdir(folder):
                raise StoreError(f"folder {folder!r} for the SQLite ledger does not exist")
        try:
            env = location.library_env()
            if location.kind == "sqlite":
                env["APPLICATION_RECORDER_TOPIC"] = get_topic(BulkSQLiteApplicationRecorder)
            self.app = LedgerApplication(env=env)
        except Exception as exc:  # the library wraps driver errors in many types
            raise StoreError(
                f"cannot open the ledger at {location.shown}: {one_line(exc)}"
            ) from exc
        self.mapper: LedgerMapper = self.app.mapper  # type: ignore[assignment]
        self.recorder = self.app.recorder

    def close(self) -> None:
        self.app.close()

    @contextmanager
    def appending(self) -> Iterator[Appending]:
        """One transaction of the library's recorder for a streamed append: chunks go in as
        they are checked, and commit together at the end or roll back together on any error.

        Uses the recorders' transaction-level API (`_insert_events` for SQLite; for PostgreSQL
        the library's table, its sequence and its NOTIFY, with the rows sent by binary COPY, see
        `Appending._copy`) so that a batch of any size need not be held whole. Appends are
        serialised by the caller's writer lock, so positions commit in the order drawn.
        """
        if self.location.kind == "sqlite":
            with self.recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
                yield Appending(self, cursor, "?")
            return
        with self.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            with conn.transaction(), conn.cursor() as cursor:
                yield Appending(self, cursor, "%s")

    def head(self) -> tuple[int, str]:
        """The last position and its hash (GENESIS for an empty log)."""
        last = self.recorder.max_notification_id()
        if not last:
            return 0, GENESIS
        (note,) = self.recorder.select_notifications(start=last, limit=1)
        hash_ = self.mapper.decode_state(note).get("hash")
        if not isinstance(hash_, str):
            raise DamagedEvent(f"at #{last}", KeyError("hash"))
        return last, hash_

    def notifications(
        self, after: int = 0, topics: Sequence[str] = (), stop: int | None = None
    ) -> Iterator[Notification]:
        start = after
        while True:
            page = self.recorder.select_notifications(
                start=start, limit=self.PAGE, stop=stop, topics=topics, inclusive_of_start=False
            )
            yield from page
            if len(page) < self.PAGE:
                return
            start = page[-1].id

    def first_of(self, topic: str) -> dict[str, Any] | None:
        """The stored content of the log's first event of type `topic` (None if none)."""
        page = self.recorder.select_notifications(start=1, limit=1, topics=(topic,))
        return self.mapper.decode_state(page[0]) if page else None

    def records(self, after: int = 0, topics: Sequence[str] = ()) -> Iterator[Recorded]:
        for note in self.notifications(after, topics):
            yield recorded_at(self.mapper.decode_state(note), note.id, f"at #{note.id}")

    def by_stream(self, stream: str | None = None) -> Iterator[tuple[int, StoredEvent]]:
        """(log position, stored event) of every event grouped by stream, each stream in version
        order (streams in the order of their ids, not of the log); with `stream`, that one.

        Read a page at a time on the table's primary key, so a check that replays each
        stream in turn holds one stream, never the log.
        """
        recorder: Any = self.recorder
        if self.location.kind == "sqlite":
            table, position, mark = recorder.events_table_name, "rowid", "?"
            key: Any = None if stream is None else stream_id(stream).hex
        else:
            table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
            position, mark = "notification_id", "%s"
            key = None if stream is None else stream_id(stream)
        columns = f"SELECT {position} AS position, originator_id, originator_version, topic, state"
        order = "ORDER BY originator_id, originator_version"
        if key is not None:
            where, after = f"originator_id = {mark} AND originator_version > {mark}", [key, 0]
        else:
            where = f"(originator_id, originator_version) > ({mark}, {mark})"
            after = ["" if self.location.kind == "sqlite" else uuid.UUID(int=0), 0]
        while True:
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(
                    f"{columns} FROM {table} WHERE {where} {order} LIMIT {self.PAGE}", after
                )
                page = cursor.fetchall()
            for row in page:
                found = row["originator_id"]
                yield (
                    row["position"],
                    StoredEvent(
                        found if isinstance(found, uuid.UUID) else uuid.UUID(found),
                        row["originator_version"],
                        row["topic"],
                        row["state"],
                    ),
                )
            if len(page) < self.PAGE:
                return
            last = page[-1]
            after = [key if key is not None else last["originator_id"], last["originator_version"]]


class Appending:
    """An open append transaction: insert sealed events, read streams as they now stand
    (this transaction's own events included), and run the caller's statements alongside."""

    def __init__(self, log: EventLog, cursor: Any, mark: str) -> None:
        self.log = log
        self.cursor = cursor
        self.mark = mark  # the driver's parameter marker
        self.kind = log.location.kind
        recorder: Any = log.recorder
        if self.kind == "sqlite":
            self.table = recorder.events_table_name
            self.id_column = "rowid"
        else:
            self.table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
            self.id_column = "notification_id"

    def insert(self, envelopes: Sequence[Envelope]) -> list[int]:
        if not envelopes:
            return []
        recorder: Any = self.log.recorder
        stored = [self.log.mapper.to_stored_event(e) for e in envelopes]
        if self.kind == "sqlite":
            positions = recorder._insert_events(self.cursor, stored)
        else:
            positions = self._copy(stored)
        assert positions is not None and len(positions) == len(stored)
        return list(positions)

    def _copy(self, stored: Sequence[StoredEvent]) -> list[int]:
        """PostgreSQL: the rows the library's insert function would write, by binary COPY.

        The function takes an array of composite values that psycopg writes as text (a
        regular expression per byte string): half the time of an append. Here the positions
        are drawn from the table's own sequence first, in order, and the rows copied with
        them; the primary key refuses a version taken by another writer exactly as the
        function's INSERT would, and its NOTIFY is sent alike.
        """
        from psycopg.sql import SQL, Identifier

        recorder: Any = self.log.recorder
        self.cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'notification_id')) AS position "
            "FROM generate_series(1, %s)",
            (self.table, len(stored)),
        )
        positions = [row["position"] for row in self.cursor.fetchall()]
        columns = "notification_id, originator_id, originator_version, topic, state"
        with self.cursor.copy(
            f"COPY {self.table} ({columns}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "uuid", "int8", "text", "bytea"])
            for position, e in zip(positions, stored, strict=True):
                copy.write_row(
                    (position, e.originator_id, e.originator_version, e.topic, e.state)
                )
        self.cursor.execute(SQL("NOTIFY {0}").format(Identifier(recorder.channel_name)))
        return positions

    def last_before(self, position: int) -> int:
        """The last position in the log before `position` (0 if none)."""
        self.cursor.execute(
            f"SELECT MAX({self.id_column}) FROM {self.table} WHERE {self.id_column} < {self.mark}",
            (position,),
        )
        row = self.cursor.fetchone()
        value = row[0] if not isinstance(row, dict) else next(iter(row.values()))
        return value or 0

    def stream(self, stream: str) -> list[Recorded]:
        """A stream's events in version order, read with the library's own statement."""
        recorder: Any = self.log.recorder
        if self.kind == "sqlite":
            statement = recorder.select_events_statement + "ORDER BY originator_version"
            key: Any = stream_id(stream).hex
        else:
            from psycopg.sql import SQL

            statement = recorder.select_events_statement + SQL(" ORDER BY originator_version")
            key = stream_id(stream)
        self.cursor.execute(statement, (key,))
        found = []
        for row in self.cursor.fetchall():
            version = row["originator_version"]
            where = f"of stream {stream} version {version}"
            try:
                state = self.log.mapper.decode_state(
                    StoredEvent(key, version, row["topic"], row["state"])
                )
            except DamagedEvent as exc:
                raise DamagedEvent(where, exc.cause) from exc.cause
            found.append(recorded_at(state, 0, where))
        return found

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        """A statement of the caller's, in this transaction (`?` marks its parameters)."""
        self.cursor.execute(statement.replace("?", self.mark), params)
        return self.cursor


def conflicting(exc: BaseException) -> bool:
    """Whether an append failed because another writer appended first: the library's
    conflict, or SQLite refusing to write on a snapshot that another writer has moved past
    (SQLITE_BUSY_SNAPSHOT)."""
    if isinstance(exc, RecordConflictError):
        return True
    cause = exc.__cause__
    return isinstance(exc, OperationalError) and getattr(cause, "sqlite_errorcode", None) == 517


def to_recorded(state: dict[str, Any], position: int) -> Recorded:
    payload = state["event"]
    return Recorded(
        position=position,
        stream=state["stream"],
        version=state["originator_version"],
        recorded_on=datetime.fromisoformat(state["recorded_on"]),
        appended_at=datetime.fromisoformat(state["appended_at"]),
        event=EVENT_TYPES[payload["type"]].model_validate(payload),
        target_version=state.get("target_version"),
    )
