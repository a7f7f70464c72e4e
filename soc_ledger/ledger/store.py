"""The event store: `eventsourcing` 9.5's own SQLite and PostgreSQL recorders, our mapper.

One `LedgerApplication` per database (the library's SQLite table is always `stored_events`).
Each stored event is an `Envelope`: the event as received (normalised), the two clocks, its
place in its aggregate's stream, an idempotency digest and the hash chain (SPEC §11).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification, StoredEvent, Transcoder
from eventsourcing.utils import get_topic
from pydantic import BaseModel, ConfigDict

from soc_ledger.domain.events import EVENT_TYPES
from soc_ledger.domain.knowledge import Recorded
from soc_ledger.ledger.location import Location, StoreError, canonical

GENESIS = "0" * 64
_NAMESPACE = uuid.UUID("6f1d3c2e-7a51-4e0b-9a57-5c0c1ad9e1b3")


def stream_id(stream: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, stream)


class Envelope(BaseModel):
    """What is stored for one event (the library's 'domain event')."""

    model_config = ConfigDict(frozen=True)

    originator_id: uuid.UUID
    originator_version: int
    stream: str
    appended_at: datetime
    recorded_on: datetime
    target_version: int | None = None
    digest: str
    prev_hash: str
    hash: str = ""
    event: dict[str, Any]

    def chained(self, prev_hash: str) -> Envelope:
        unsealed = self.model_copy(update={"prev_hash": prev_hash, "hash": ""})
        return unsealed.model_copy(update={"hash": seal(unsealed.state())})

    def state(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"originator_id", "originator_version"})
        data["originator_id"] = self.originator_id.hex
        data["originator_version"] = self.originator_version
        return data


def seal(state: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the canonical content (without its own hash)."""
    content = {k: v for k, v in state.items() if k != "hash"}
    return hashlib.sha256(state["prev_hash"].encode() + canonical(content)).hexdigest()


class CanonicalJSONTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return canonical(obj)

    def decode(self, data: bytes) -> Any:
        return json.loads(data)


class LedgerMapper(Mapper):
    """Pydantic envelopes to stored events and back (the library ships no pydantic mapper)."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        envelope: Envelope = domain_event
        stored = self.transcoder.encode(envelope.state())
        if self.compressor:
            stored = self.compressor.compress(stored)
        if self.cipher:
            stored = self.cipher.encrypt(stored)
        return StoredEvent(
            originator_id=envelope.originator_id,
            originator_version=envelope.originator_version,
            topic=envelope.event["type"],
            state=stored,
        )

    def decode_state(self, stored: StoredEvent) -> dict[str, Any]:
        data = stored.state
        if self.cipher:
            data = self.cipher.decrypt(data)
        if self.compressor:
            data = self.compressor.decompress(data)
        return self.transcoder.decode(data)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return Envelope.model_validate(self.decode_state(stored_event))


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
        if location.kind == "sqlite":
            folder = os.path.dirname(os.path.abspath(location.path))
            if not os.path.isdir(folder):
                raise StoreError(f"folder {folder!r} for the SQLite ledger does not exist")
        try:
            self.app = LedgerApplication(env=location.library_env())
        except Exception as exc:  # the library wraps driver errors in many types
            raise StoreError(f"cannot open the ledger at {location.url}: {exc}") from exc
        self.mapper: LedgerMapper = self.app.mapper  # type: ignore[assignment]
        self.recorder = self.app.recorder

    def close(self) -> None:
        self.app.close()

    def append(self, envelopes: Sequence[Envelope]) -> list[int]:
        """All or nothing: one transaction through the library's recorder."""
        if not envelopes:
            return []
        recordings = self.app.events.put(list(envelopes))
        return [r.notification.id for r in recordings]

    def head(self) -> tuple[int, str]:
        """The last position and its hash (GENESIS for an empty log)."""
        last = self.recorder.max_notification_id()
        if not last:
            return 0, GENESIS
        (note,) = self.recorder.select_notifications(start=last, limit=1)
        return last, self.mapper.decode_state(note)["hash"]

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

    def records(self, after: int = 0, topics: Sequence[str] = ()) -> Iterator[Recorded]:
        for note in self.notifications(after, topics):
            yield to_recorded(self.mapper.decode_state(note), note.id)

    def stream(self, stream: str) -> list[Recorded]:
        return [
            to_recorded(self.mapper.decode_state(s), 0)
            for s in self.recorder.select_events(stream_id(stream))
        ]


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
