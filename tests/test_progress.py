"""Progress of long work (issue 15): told to whoever shows it, drawn as bars only on a terminal."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections import defaultdict

from rich.console import Console

from soc_ledger.ledger.service import Ledger
from soc_ledger.projections import verification
from soc_ledger.projections.rebuild import rebuild_read_models
from soc_ledger.projections.views.progress import progress_bars, rows_read
from tests.conftest import EXAMPLES


class Told:
    """A Progress that remembers what it was told: per step, its total and the items done."""

    def __init__(self) -> None:
        self.totals: dict[str, int | None] = {}
        self.done: dict[str, int] = defaultdict(int)
        self.finished: set[str] = set()

    def start(self, step: str, total: int | None = None) -> None:
        self.totals[step] = total
        self.done[step] = 0

    def advance(self, step: str, done: int) -> None:
        self.done[step] += done

    def finish(self, step: str) -> None:
        self.finished.add(step)


def test_record_verify_and_rebuild_count_every_event(db_url, quickstart_lines):
    n = len(quickstart_lines)
    told = Told()
    with Ledger(db_url) as ledger:
        ledger.progress = told
        ledger.record_lines(quickstart_lines, "q.jsonl")
        assert told.done["recording"] == n and "recording" in told.finished
        report = verification.verify(ledger)
        assert report.ok
        # The chain walk and the aggregates each read every event once; the scratch rebuild
        # indexes the whole log.
        assert told.done["verify: chain"] == n and told.totals["verify: chain"] == n
        assert told.done["verify: aggregates"] == n
        assert told.done["indexing the log"] == n
        assert {"verify: rebuilding latest_case_weeks", "compare fact_versions"} <= told.finished
        told.done.clear()
        rebuild_read_models(ledger)
        assert told.done["indexing the log"] == n
        assert "rebuilding case_versions and latest_case_weeks" in told.finished


def test_a_readers_rows_are_told_as_they_grow():
    told = Told()
    read = rows_read(told, "reading r.csv")
    assert read is not None and rows_read(None, "x") is None
    for done in (0, 500, 1000, 1234):
        read(done, 1234)
    assert told.totals["reading r.csv"] == 1234 and told.done["reading r.csv"] == 1234


def test_a_terminal_shows_the_bars(sqlite_url, quickstart_lines):
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    with Ledger(sqlite_url) as ledger, progress_bars(console) as bars:
        assert bars is not None
        ledger.progress = bars
        ledger.record_lines(quickstart_lines, "q.jsonl")
        verification.verify(ledger)
        shown = {t.description: (t.completed, t.total) for t in bars.bar.tasks}
    n = len(quickstart_lines)
    assert shown["verify: chain"] == (n, n)
    assert shown["recording"] == (n, n)  # no total while reading; full once done
    drawn = screen.getvalue()
    assert "verify: chain" in drawn and "\x1b[" in drawn  # drawn, with terminal codes


def test_a_pipe_carries_no_bar(tmp_path):
    db = f"sqlite:///{tmp_path / 'l.db'}"
    env = {**os.environ, "SOC_LEDGER_KEY": "test-key-0123456789abcdef"}
    for args in (["record", str(EXAMPLES / "quickstart.jsonl")], ["verify"], ["rebuild"]):
        done = subprocess.run(
            [sys.executable, "-m", "soc_ledger.cli", *args, "--db", db],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        for stream in (done.stdout, done.stderr):
            assert "\x1b[" not in stream and "\r" not in stream
            assert "verify: chain" not in stream and "indexing the log" not in stream
    assert done.stderr == ""
