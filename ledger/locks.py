"""One writer at a time per ledger: validation and append see and change the same state.

Readers never wait. SQLite uses a lock file beside the database; PostgreSQL a session
advisory lock on its own connection, released when the connection closes (even on a crash).

The lock is re-entrant within a thread: an SSDA903 import plans under the lock and then
records (which takes it again), and neither a second flock on a new descriptor nor a second
advisory-lock session would let the same thread in.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from soc_ledger.ledger.location import Location, StoreError

_ADVISORY_KEY = 0x50C1ED6E  # "soc-ledger" writers

_held = threading.local()  # .stores: the stores whose lock this thread holds


def _store(location: Location) -> tuple[str, ...]:
    if location.kind == "sqlite":
        return ("sqlite", os.path.realpath(location.path))
    return ("postgresql", location.host, str(location.port), location.dbname)


@contextmanager
def writer_lock(location: Location) -> Iterator[None]:
    held: set[tuple[str, ...]] = _held.__dict__.setdefault("stores", set())
    store = _store(location)
    if store in held:
        yield
        return
    held.add(store)
    try:
        with _acquired(location):
            yield
    finally:
        held.discard(store)


@contextmanager
def _acquired(location: Location) -> Iterator[None]:
    if location.kind == "sqlite":
        try:
            fd = os.open(location.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(
                f"cannot take the writer lock {location.path}.lock of the ledger at "
                f"{location.shown}: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    with location.connect(autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_KEY,))
