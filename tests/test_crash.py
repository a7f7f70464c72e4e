"""SPEC §11 crash safety: a `record` or `import-903` killed at any moment (SIGKILL: no cleanup,
no handler) leaves the store with all or none of its batch, and the read models catch up
correctly on the next command; `verify` is clean either way, and running the command again
completes the batch (or finds it all there).

The 50,000-event kill is aimed, not guessed: the test watches the SQLite files from outside and
kills the process the moment the append's transaction is being written (the WAL grows) or the
moment it has committed (the log's head moves, the read models not yet followed). Smaller runs
are killed after fixed delays spread over their start-up, validation, append and catch-up.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soc_ledger.ledger.location import Location
from soc_ledger.ledger.service import Ledger
from soc_ledger.projections import latest, verification
from tests import concurrent_writer
from tests.helpers import run, write_lines

GIVE_UP = 60  # seconds: the record must reach the awaited moment by then


def big_file(tmp_path: Path, cases: int) -> str:
    """`cases` x 5 events, each case its own stream."""
    lines = [x for i in range(cases) for x in concurrent_writer.case_lines(0, i)]
    return write_lines(tmp_path / f"big-{len(lines)}.jsonl", lines)


def base_store(url: str) -> int:
    with Ledger(url) as ledger:
        ledger.record_lines(concurrent_writer.setup_lines(), "setup")
    return len(concurrent_writer.setup_lines())


def head(path: str) -> int:
    """The log's last position, read from outside the writer (a WAL reader never blocks it)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
        return conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM stored_events").fetchone()[0]


def wal_size(path: str) -> int:
    try:
        return os.path.getsize(path + "-wal")
    except FileNotFoundError:
        return 0


def record_and_kill(url: str, file: str, moment: str, base: int) -> str:
    """Start `soc-ledger record FILE`, SIGKILL it at `moment`; what it reached."""
    path = Location.parse(url).path
    start_wal = wal_size(path)
    process = subprocess.Popen(
        [sys.executable, "-m", "soc_ledger.cli", "record", file, "--db", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + GIVE_UP
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"record ended before it was killed: {process.stderr.read()!r}")
            if moment == "appending" and wal_size(path) > start_wal + (1 << 20):
                break  # 1 MiB of the append's transaction written, not committed
            if moment == "committed" and head(path) > base:
                break  # the append committed; the read models not yet followed
            time.sleep(0.002)
        else:
            pytest.fail(f"record did not reach {moment!r} within {GIVE_UP} s")
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(10)
    assert process.returncode == -signal.SIGKILL
    return moment


def check_all_or_none(url: str, base: int, batch: int) -> int:
    """The log holds none or all of the batch; the read models follow; verify is clean."""
    path = Location.parse(url).path
    found = head(path) - base
    assert found in (0, batch), f"{found} of {batch} events survived the kill"
    verified = run("verify", "--db", url)
    assert verified.exit_code == 0, verified.output
    with Ledger(url) as ledger:
        report = verification.verify(ledger)
        assert report.ok and report.events == base + found
        ledger.follow(latest.catch_up, latest.NAME)
        keys = {e.event["key"] for e in ledger.trail()}
    assert len(keys) == base + found
    return found


def test_a_record_of_50000_events_killed_mid_append_leaves_all_or_none(sqlite_url, tmp_path):
    base = base_store(sqlite_url)
    file = big_file(tmp_path, 10_000)
    record_and_kill(sqlite_url, file, "appending", base)
    found = check_all_or_none(sqlite_url, base, 50_000)
    assert found == 0  # killed inside the append's transaction: nothing of it is left


def test_a_record_killed_after_its_commit_is_whole_and_the_read_models_catch_up(
    sqlite_url, tmp_path
):
    base = base_store(sqlite_url)
    file = big_file(tmp_path, 1_000)
    record_and_kill(sqlite_url, file, "committed", base)
    assert check_all_or_none(sqlite_url, base, 5_000) == 5_000
    # Recording the file again finds every event already there.
    again = run("record", file, "--db", sqlite_url)
    assert again.exit_code == 0, again.output
    assert "appended 0, already present 5000 (nothing new)" in again.stdout


def kill_after(args: list[str], delay: float) -> None:
    """Run `soc-ledger ARGS` and SIGKILL it after `delay` seconds unless it ended by then."""
    process = subprocess.Popen(
        [sys.executable, "-m", "soc_ledger.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


@pytest.mark.parametrize("delay", [0.7, 1.1])
def test_a_record_killed_at_any_moment_leaves_all_or_none(sqlite_url, tmp_path, delay):
    base = base_store(sqlite_url)
    file = big_file(tmp_path, 400)
    kill_after(["record", file, "--db", sqlite_url], delay)
    check_all_or_none(sqlite_url, base, 2_000)
    again = run("record", file, "--db", sqlite_url)
    assert again.exit_code == 0, again.output
    assert check_all_or_none(sqlite_url, base, 2_000) == 2_000


# --- import-903 ---------------------------------------------------------------------------------


def referred_store(url: str, tmp_path: Path, children: int) -> None:
    from tests.test_ssda903 import contract_lines, referral

    lines = contract_lines(["SUT"]) + [
        referral(f"K{i:04d}", "SUT", f"SUT-CHILD-{i:04d}", "2006-05-17", "2018-06-01")
        for i in range(children)
    ]
    result = run("record", write_lines(tmp_path / "setup.jsonl", lines), "--db", url)
    assert result.exit_code == 0, result.output


def big_return(tmp_path: Path, children: int) -> tuple[str, str]:
    from tests.test_ssda903 import episode, write_return

    rows = []
    for i in range(children):
        rows.append(episode(f"SUT-CHILD-{i:04d}", "2018-07-01", "2018-08-15", "E11"))
        rows.append(episode(f"SUT-CHILD-{i:04d}", "2019-01-10", "", ""))
    return write_return(tmp_path / "903", "sut-2019", rows)


@pytest.mark.parametrize("delay", [0.7, 1.1])
def test_an_import_903_killed_at_any_moment_leaves_all_or_none(sqlite_url, tmp_path, delay):
    children = 500
    referred_store(sqlite_url, tmp_path, children)
    base = head(Location.parse(sqlite_url).path)
    files = big_return(tmp_path, children)
    args = ["import-903", *files, "--db", sqlite_url, "--borough", "SUT", "--year", "2019",
            "--received-on", "2019-06-30"]
    kill_after(args, delay)
    # Two stays clipped to the period per child, each a start and an end, and the receipt.
    whole = children * 4 + 1
    found = check_all_or_none(sqlite_url, base, whole)
    again = run(*args)
    assert again.exit_code == 0, again.output
    assert check_all_or_none(sqlite_url, base, whole) == whole
    if found:
        assert "nothing new: this return is already imported" in again.stdout
