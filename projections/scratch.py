"""Where `verify` rebuilds the read models to compare them, and how that copy never outlives it.

The copy is an SQLite database in a folder of its own, at a place fixed per ledger, so that the
next `verify` of the same ledger (which holds the writer lock, as this one did) finds a copy a
killed run left behind and removes it before it starts:

- an SQLite ledger: beside the database, `<ledger file>.verify-scratch/` (the same folder, so the
  copy is under the permissions that protect the ledger itself);
- a PostgreSQL ledger: in the temporary folder, `soc-ledger-verify-<uid>-<digest of the URL>/`.

The folder is owner-only. It is removed when verify ends in any way Python sees: an error,
Ctrl-C (SIGINT), SIGTERM or SIGHUP (turned into an exit while the copy exists). Only `kill -9`
leaves it, until that next verify.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from sqlalchemy import Engine, create_engine

from soc_ledger.ledger.location import Location, StoreError

SUFFIX = ".verify-scratch"
ENDING = (signal.SIGTERM, signal.SIGHUP)


def folder_for(location: Location) -> str:
    """The one place a verify of this ledger keeps its copy."""
    if location.kind == "sqlite":
        return os.path.abspath(location.path) + SUFFIX
    where = f"{location.host}:{location.port}/{location.dbname}"
    digest = hashlib.sha256(where.encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"soc-ledger-verify-{os.getuid()}-{digest}")


@contextmanager
def scratch_store(location: Location) -> Iterator[Engine]:
    """An empty SQLite store for the rebuild, removed on every way out. The caller holds the
    ledger's writer lock: no other verify of this ledger uses the folder meanwhile."""
    folder = folder_for(location)
    with _ended_by_signals():
        _remove(folder)
        try:
            os.mkdir(folder, 0o700)
        except OSError as exc:
            raise StoreError(
                f"cannot make verify's scratch folder {folder}: {exc.strerror}"
            ) from None
        engine = create_engine(f"sqlite:///{folder}/rebuilt.db")
        try:
            yield engine
        finally:
            engine.dispose()
            _remove(folder)


def _remove(folder: str) -> None:
    """Remove a scratch folder left by an earlier verify: only our own folder, never what a
    link points to."""
    try:
        found = os.lstat(folder)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
        raise StoreError(
            f"{folder} is in the way of verify's scratch copy and is not one it made: remove it"
        )
    shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _ended_by_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end the process through Python (so `finally` removes the copy)
    rather than at once. Signal handlers belong to the main thread: elsewhere, left as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {number: signal.signal(number, leave) for number in ENDING}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
