"""Wrong paths and URLs (issue 13): every command, every bad `--db` and output file, one line.

Each case asserts: a non-zero exit, exactly one line on stderr (`error: ...`), no traceback,
and nothing created: no file on disk, and on PostgreSQL no database and no table. No ledger is
built per case; the few that need one share a quickstart ledger.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soc_ledger.ledger.location import hidden
from soc_ledger.projections import scratch
from tests.conftest import EXAMPLES
from tests.helpers import run

DATA = Path(__file__).resolve().parent / "data" / "ssda903"

# Every command, with the arguments it needs to get as far as opening its store.
COMMANDS: dict[str, list[str]] = {
    "record": ["record", "{empty}"],
    "events": ["events"],
    "rebuild": ["rebuild"],
    "liability": ["liability"],
    "explain": ["explain", "C001"],
    "diff": ["diff", "--known-at", "2019-01-01"],
    "demo": ["demo"],
    "import-903": [
        "import-903", str(DATA / "validator-fake-header.csv"),
        str(DATA / "validator-fake-episodes.csv"), "--borough", "SUT", "--year", "2020",
        "--received-on", "2020-06-01",
    ],
    "returns": ["returns"],
    "finances": ["finances"],
    "baseline": ["baseline", "--variation", "v1"],
    "forecast": ["forecast"],
    "verify": ["verify"],
    "assert": ["assert", "--scope", "contract", "--figure", "owed", "--as-of", "2019-03-31",
               "--by", "auditor"],
    "reconcile": ["reconcile", "CL-1"],
    "statement": ["statement", "SUT"],
}
# Only these may start a ledger where there is none.
STARTING = {"record", "demo"}


def _args(command: str, db: str, tmp_path: Path) -> list[str]:
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    return [a.replace("{empty}", str(empty)) for a in COMMANDS[command]] + ["--db", db]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _one_line_refusal(result, *expected: str) -> None:
    # `run` lets any other exception through: a traceback fails the test by itself.
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


# --- SQLite ----------------------------------------------------------------------------------


def _sqlite_case(case: str, tmp_path: Path) -> tuple[str, str]:
    """A bad SQLite URL and the words its one line must hold."""
    if case == "missing folder":
        return f"sqlite:///{tmp_path}/no/such/folder/ledger.db", "does not exist"
    if case == "directory":
        (tmp_path / "adir").mkdir()
        return f"sqlite:///{tmp_path}/adir", "is a directory"
    if case == "not a database":
        (tmp_path / "notes.txt").write_text("not a ledger\n")
        return f"sqlite:///{tmp_path}/notes.txt", "is not an SQLite database"
    if case == "missing file":
        return f"sqlite:///{tmp_path}/mistyped.db", "no ledger at"
    if case == "no file":
        return "sqlite:///", "no file in"
    raise AssertionError(case)


SQLITE_CASES = ["missing folder", "directory", "not a database", "missing file", "no file"]


def _sweep(cases: list[str], starts_a_ledger: str) -> list[tuple[str, str]]:
    """Every command with every case, but record and demo where they may start a ledger."""
    return [
        (command, case)
        for command in sorted(COMMANDS)
        for case in cases
        if not (case == starts_a_ledger and command in STARTING)
    ]


@pytest.mark.parametrize(("command", "case"), _sweep(SQLITE_CASES, "missing file"))
def test_a_bad_sqlite_url_is_one_line_and_creates_nothing(command, case, tmp_path):
    db, words = _sqlite_case(case, tmp_path)
    _args(command, db, tmp_path)  # the files the command reads exist before the snapshot
    before = _files(tmp_path)
    result = run(*_args(command, db, tmp_path))
    _one_line_refusal(result, words)
    assert _files(tmp_path) == before


def test_a_read_of_a_missing_store_names_it_and_leaves_no_file(tmp_path):
    db = f"sqlite:///{tmp_path}/mistyped.db"
    result = run("liability", "--db", db)
    assert result.stderr == (
        f"error: no ledger at {db}: check --db / SOC_LEDGER_DB "
        f"(only record and demo start a new ledger)\n"
    )
    assert list(tmp_path.iterdir()) == []


# --- PostgreSQL -----------------------------------------------------------------------------


def _databases(server: str) -> set[str]:
    import psycopg

    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def _tables(url: str) -> set[tuple[str, str]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        return {(r[0], r[1]) for r in rows}


def _port_with_no_server() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PG_CASES = ["wrong port", "missing database", "maintenance database", "no database name",
            "password", "empty database"]


@pytest.mark.postgres
@pytest.mark.parametrize(("command", "case"), _sweep(PG_CASES, "empty database"))
def test_a_bad_postgresql_url_is_one_line_and_creates_nothing(
    command, case, tmp_path, pg_server, pg_url
):
    host = pg_server.split("://", 1)[1].rsplit("@", 1)[-1].split(":")[0]
    if case == "wrong port":
        db, words = f"postgresql://postgres@{host}:{_port_with_no_server()}/x", "cannot open"
    elif case == "missing database":
        db, words = f"{pg_server}/soc_ledger_no_such_db", "does not exist"
    elif case == "maintenance database":
        db, words = f"{pg_server}/postgres", "no ledger at"
    elif case == "no database name":
        db, words = pg_server, "no database name"
    elif case == "password":
        db = f"postgresql://nobody:s3cret@{host}:{_port_with_no_server()}/x"
        words = "postgresql://nobody:***@"
    else:
        db, words = pg_url, "no ledger at"
    # Other test runs make databases on the same server meanwhile: only the named one counts.
    named = db.rsplit("/", 1)[-1]
    missing = case in ("missing database", "wrong port", "password")
    assert not missing or named not in _databases(pg_server)
    maintenance = _tables(f"{pg_server}/postgres")
    ours = _tables(pg_url)
    result = run(*_args(command, db, tmp_path))
    _one_line_refusal(result, words)
    assert "s3cret" not in result.output
    assert not missing or named not in _databases(pg_server)
    assert _tables(f"{pg_server}/postgres") == maintenance
    assert _tables(pg_url) == ours


# --- files to write --------------------------------------------------------------------------

OUTPUTS = {
    "demo --emit": ["demo"],
    "verify --export": ["verify"],
    "liability --plot": ["liability"],
    "finances --plot": ["finances"],
    "forecast --plot": ["forecast"],
}
OUTPUT_CASES = [
    (option, case)
    for option in sorted(OUTPUTS)
    for case in ("missing folder", "directory", "full device", "no name")
    # One report is enough to reach the plot's write.
    if not (case == "full device" and option in ("finances --plot", "forecast --plot"))
]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("quickstart")
    url = f"sqlite:///{folder}/ledger.db"
    assert run("record", str(EXAMPLES / "quickstart.jsonl"), "--db", url).exit_code == 0
    return url


@pytest.mark.parametrize(("command", "case"), OUTPUT_CASES)
def test_an_unwritable_output_is_one_line(command, case, tmp_path, quickstart):
    option = command.split()[1]
    if case == "missing folder":
        path, words = str(tmp_path / "no" / "such" / "out.png"), "does not exist"
    elif case == "directory":
        path, words = str(tmp_path), "is a directory"
    elif case == "full device":
        path, words = "/dev/full", "cannot write (No space left on device)"
    else:
        path, words = "", "give a file name"
    before = _files(tmp_path)
    args = [*OUTPUTS[command], option, path]
    if option != "--emit":
        args += ["--db", quickstart]
        if option == "--plot":
            args += ["--as-of", "2019-03-31"]
    result = run(*args)
    _one_line_refusal(result, f"{option} {path}".strip() + ":", words)
    assert _files(tmp_path) == before


# --- what is created, and how ----------------------------------------------------------------


def test_a_new_sqlite_ledger_is_owner_only(tmp_path, monkeypatch):
    """The database, its WAL files, its lock file and its key file: none readable by others."""
    monkeypatch.delenv("SOC_LEDGER_KEY")
    os.umask(old := os.umask(0o022))
    try:
        db = f"sqlite:///{tmp_path}/ledger.db"
        assert run("record", str(EXAMPLES / "quickstart.jsonl"), "--db", db).exit_code == 0
    finally:
        os.umask(old)
    made = sorted(tmp_path.iterdir())
    assert tmp_path / "ledger.db" in made and tmp_path / "ledger.db.key" in made
    for path in made:
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} {oct(path.stat().st_mode)}"


def test_the_password_is_hidden_wherever_a_url_is_shown():
    assert hidden("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert hidden("postgresql://u@h/db") == "postgresql://u@h/db"
    assert hidden("sqlite:////tmp/a:b@c.db") == "sqlite:////tmp/a:b@c.db"
    result = run("liability", "--db", "postgresql://u:topsecret@127.0.0.1")
    assert "topsecret" not in result.output and "u:***@" in result.stderr


# --- verify's scratch copy -------------------------------------------------------------------

# A verify that stops in its rebuild until killed (the rebuild is too quick to catch).
SLOW_VERIFY = """
import sys, time
from soc_ledger.projections import verification
started, db = sys.argv[1:3]
def slow(ledger, scratch):
    open(started, "w").close()
    time.sleep(60)
verification._projections = slow
from soc_ledger.cli import main
sys.argv = ["soc-ledger", "verify", "--db", db]
main()
"""


@pytest.fixture
def recorded(db_url: str) -> str:
    assert run("record", str(EXAMPLES / "quickstart.jsonl"), "--db", db_url).exit_code == 0
    return db_url


def _stopped_in_rebuild(db: str, tmp_path: Path) -> subprocess.Popen:
    started = tmp_path / "started"
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_VERIFY, str(started), db],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not started.exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    return process


def test_verify_leaves_no_scratch_copy(recorded):
    from soc_ledger.ledger.location import Location

    assert run("verify", "--db", recorded).exit_code == 0
    assert not os.path.lexists(scratch.folder_for(Location.parse(recorded)))


@pytest.mark.parametrize("ending", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_verify_ended_by_a_signal_removes_its_scratch_copy(recorded, tmp_path, ending):
    from soc_ledger.ledger.location import Location

    folder = scratch.folder_for(Location.parse(recorded))
    process = _stopped_in_rebuild(recorded, tmp_path)
    assert os.path.isdir(folder) and os.stat(folder).st_mode & 0o077 == 0
    process.send_signal(ending)
    assert process.wait(30) != 0
    assert not os.path.lexists(folder)


def test_a_scratch_copy_left_by_kill_9_is_removed_by_the_next_verify(recorded, tmp_path):
    from soc_ledger.ledger.location import Location

    folder = scratch.folder_for(Location.parse(recorded))
    process = _stopped_in_rebuild(recorded, tmp_path)
    process.kill()
    process.wait(30)
    assert os.path.isdir(folder)  # what kill -9 leaves, where the next verify looks
    assert run("verify", "--db", recorded).exit_code == 0
    assert not os.path.lexists(folder)


def test_a_writer_lock_that_cannot_be_taken_is_one_line(tmp_path):
    db = f"sqlite:///{tmp_path}/ledger.db"
    assert run("record", str(EXAMPLES / "quickstart.jsonl"), "--db", db).exit_code == 0
    (tmp_path / "ledger.db.lock").unlink()
    (tmp_path / "ledger.db.lock").mkdir()  # in the way of the lock file
    _one_line_refusal(run("rebuild", "--db", db), "cannot take the writer lock")


def test_a_record_never_starts_a_ledger_inside_another_programs_database(tmp_path: Path) -> None:
    """An SQLite file with tables of its own and no event table is not a ledger to start."""
    import sqlite3

    from click.testing import CliRunner

    from soc_ledger.cli import main

    path = tmp_path / "accounts.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount TEXT)")
    before = path.read_bytes()
    quickstart = Path(__file__).resolve().parent.parent / "examples" / "quickstart.jsonl"
    result = CliRunner().invoke(main, ["record", str(quickstart), "--db", f"sqlite:///{path}"])
    assert result.exit_code == 1
    assert "is another program's database (tables invoices)" in result.output
    assert path.read_bytes() == before
