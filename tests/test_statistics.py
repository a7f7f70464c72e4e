"""PostgreSQL's planner statistics are gathered after a catch-up that followed many events
(projections/statistics.py): without them, right after a large `record`, the planner guesses
the read models' sizes. "Many" is lowered here so that the quick start's 11 events can show
both sides of it."""

from __future__ import annotations

import pytest

from soc_ledger.projections import statistics
from tests.helpers import run, write_lines
from tests.test_helper_tables import sql


def _analyzed(db: str) -> set[str]:
    rows = sql(db, "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")
    return {name for (name,) in rows}


@pytest.mark.postgres
def test_a_catch_up_of_many_events_gathers_the_read_models_statistics(
    pg_url, tmp_path, quickstart_lines, monkeypatch
):
    monkeypatch.setattr(statistics, "LARGE", 6)
    first = write_lines(tmp_path / "first.jsonl", quickstart_lines[:5])
    assert run("record", first, "--db", pg_url).exit_code == 0
    assert not _analyzed(pg_url) & set(statistics.TABLES)  # 5 events: not many
    rest = write_lines(tmp_path / "rest.jsonl", quickstart_lines[5:])
    assert run("record", rest, "--db", pg_url).exit_code == 0
    assert _analyzed(pg_url) >= set(statistics.TABLES)  # 6 events: many


@pytest.mark.postgres
def test_a_rebuild_gathers_them_too(pg_url, tmp_path, quickstart_lines, monkeypatch):
    path = write_lines(tmp_path / "quickstart.jsonl", quickstart_lines)
    assert run("record", path, "--db", pg_url).exit_code == 0
    assert not _analyzed(pg_url) & set(statistics.TABLES)
    monkeypatch.setattr(statistics, "LARGE", 11)
    assert run("rebuild", "--db", pg_url).exit_code == 0
    assert _analyzed(pg_url) >= set(statistics.TABLES)
