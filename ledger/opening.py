"""Opening a store: is there a ledger at this URL, and may a command start one there?

Only a command that can start a ledger (`record`, `demo`) may create its file or tables; every
other command needs the ledger to exist already, so a mistyped path or database name is
refused in one line instead of leaving an empty ledger behind. Every failure to reach the store
(a missing folder, a file that is not a database, a directory, a server that is down, a
database that does not exist) is one line naming the URL, its password hidden.

Probed with the drivers alone (`sqlite3`, `psycopg`), before SQLAlchemy or the event library
touch the store, since both create what they open.
"""

from __future__ import annotations

import os
import sqlite3
from urllib.parse import quote

from soc_ledger.ledger.location import Location, StoreError

# The library's event table, whose presence makes a database a ledger.
SQLITE_EVENTS = "stored_events"
POSTGRES_EVENTS = "socledger_events"
SQLITE_HEADER = b"SQLite format 3\x00"
# The tables a ledger keeps beside the event library's own (and SQLite's bookkeeping): a file
# holding others and no event table belongs to another program.
LEDGER_TABLES = frozenset(
    {
        "stored_events",
        "ledger_events",
        "ledger_tracking",
        "ledger_meta",
        "fact_versions",
        "latest_case_weeks",
        "latest_weeks",
        "latest_cases",
        "readmodel_seals",
        "sqlite_sequence",
    }
)
# PostgreSQL's own databases: a ledger is never kept in one of them.
MAINTENANCE = frozenset({"postgres", "template0", "template1"})
CONNECT_TIMEOUT = 10  # seconds: a server that does not answer is reported, not waited on


def open_store(location: Location, create: bool) -> None:
    """Check that the ledger at `location` exists (or, when `create`, that one can be started
    there, creating an SQLite file owner-only); StoreError in one line otherwise."""
    if location.kind == "sqlite":
        exists = _sqlite(location, create)
    else:
        exists = _postgresql(location)
    if not exists and not create:
        raise StoreError(
            f"no ledger at {location.shown}: check --db / SOC_LEDGER_DB "
            f"(only record and demo start a new ledger)"
        )


def _sqlite(location: Location, create: bool) -> bool:
    path = os.path.abspath(location.path)
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise StoreError(f"no ledger at {location.shown}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise StoreError(f"no ledger at {location.shown}: {path} is a directory")
    if not os.path.exists(path):
        if create:
            _create_owner_only(location, path)
        return False
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"cannot open the ledger at {location.shown}: {exc.strerror}") from None
    if header == b"":
        return False  # an empty file is an empty SQLite database (one that was just created)
    if header != SQLITE_HEADER:
        raise StoreError(f"no ledger at {location.shown}: {path} is not an SQLite database")
    try:
        # mode=rw: opens an existing file only, never creates one.
        conn = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True)
        try:
            tables = {
                name
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the ledger at {location.shown}: {exc}") from None
    if SQLITE_EVENTS not in tables and tables - LEDGER_TABLES:
        # Another program's database: a ledger is never started inside it.
        others = ", ".join(sorted(tables - LEDGER_TABLES)[:3])
        raise StoreError(
            f"no ledger at {location.shown}: {path} is another program's database "
            f"(tables {others}); name a new file for the ledger"
        )
    return SQLITE_EVENTS in tables


def _create_owner_only(location: Location, path: str) -> None:
    """An empty file is a valid SQLite database; created here owner-only (0600), its journal
    and WAL files take the same permissions from it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another writer created it first: it is checked as it stands
    except OSError as exc:
        raise StoreError(f"cannot create the ledger at {location.shown}: {exc.strerror}") from None
    os.close(fd)


def _postgresql(location: Location) -> bool:
    import psycopg

    # PostgreSQL's own databases never hold a ledger, not even one an earlier version of this
    # program started there by mistake: a URL that names one is refused before connecting.
    if location.dbname in MAINTENANCE:
        raise StoreError(
            f"no ledger at {location.shown}: {location.dbname!r} is one of PostgreSQL's own "
            f"databases; create one for the ledger (createdb soc_ledger) and name it in the URL"
        )

    try:
        with location.connect(connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
            found = conn.execute("SELECT to_regclass(%s)", (POSTGRES_EVENTS,)).fetchone()
    except psycopg.Error as exc:
        raise StoreError(f"cannot open the ledger at {location.shown}: {one_line(exc)}") from None
    return found is not None and found[0] is not None


def one_line(exc: BaseException) -> str:
    """A driver's message on one line (psycopg's carry hints on further lines), without the
    'connection failed:' preamble that the reason says already."""
    text = " ".join(str(exc).split())
    return text.removeprefix("connection failed: ") or type(exc).__name__
