"""Issue 13, item 3: the helper tables (event index, read models, `ledger_meta`) are never
trusted as if they were the log, and a damaged stored event is named as the store's damage.

Each store is altered behind the ledger's back, with SQL, as a database administrator (or a
careless script) could; on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg

from soc_ledger.ledger.location import Location
from tests.helpers import run, write_lines


def sql(db: str, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
    """One statement on the store's own database, outside the ledger (`?` marks parameters)."""
    location = Location.parse(db)
    if location.kind == "sqlite":
        with closing(sqlite3.connect(location.path)) as conn, conn:
            return conn.execute(statement, params).fetchall()
    with psycopg.connect(db, autocommit=True) as conn:
        cursor = conn.execute(statement.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []


def events_table(db: str) -> tuple[str, str]:
    """The library's event table and its position column."""
    if Location.parse(db).kind == "sqlite":
        return "stored_events", "rowid"
    return "socledger_events", "notification_id"


def recorded(db: str, lines: list[str], tmp_path: Path, name: str = "events.jsonl"):
    return run("record", write_lines(tmp_path / name, lines), "--db", db)


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# --- a damaged stored event ---------------------------------------------------------------------


def test_a_stored_event_that_no_longer_decodes_is_named_as_the_stores_damage(
    db_url, tmp_path, quickstart_lines
):
    assert recorded(db_url, quickstart_lines[:10], tmp_path).exit_code == 0
    table, position = events_table(db_url)
    broken = b'{"x'
    sql(db_url, f"UPDATE {table} SET state = ? WHERE {position} = 10", (broken,))
    # The last event is the chain's head: the next record reads it first.
    error = one_line_error(recorded(db_url, quickstart_lines[10:], tmp_path, "fix.jsonl"))
    assert "the stored event at #10 cannot be read" in error
    assert "the store is damaged; run `soc-ledger verify`" in error
    assert "fix.jsonl" not in error  # the input is not blamed
    error = one_line_error(run("events", "--db", db_url))
    assert "#10" in error and "damaged" in error


def test_a_damaged_event_in_a_stream_being_recorded_on_is_named_by_its_stream(
    db_url, tmp_path, quickstart_lines
):
    assert recorded(db_url, quickstart_lines[:10], tmp_path).exit_code == 0
    table, position = events_table(db_url)
    sql(db_url, f"UPDATE {table} SET state = ? WHERE {position} = 5", (b"\xff\x00",))
    # The correction's target is in C001's stream, whose history is read from the log.
    error = one_line_error(recorded(db_url, quickstart_lines[10:], tmp_path, "fix.jsonl"))
    assert 'of stream ["plcip", "C001"] version 2 cannot be read' in error
    assert "the store is damaged" in error and "fix.jsonl" not in error


# --- the event index -----------------------------------------------------------------------------


def log_events(db: str) -> int:
    table, _ = events_table(db)
    return sql(db, f"SELECT COUNT(*) FROM {table}")[0][0]


def test_a_deleted_index_row_cannot_let_an_event_be_recorded_twice(
    db_url, tmp_path, quickstart_lines
):
    assert recorded(db_url, quickstart_lines, tmp_path).exit_code == 0
    sql(db_url, "DELETE FROM ledger_events WHERE key = 'cover-SUT-2019'")
    error = one_line_error(recorded(db_url, quickstart_lines, tmp_path))
    assert "the event index does not match the log (10 rows up to #11" in error
    assert "the log holds 11 events up to #11" in error
    assert "run `soc-ledger rebuild`" in error
    assert log_events(db_url) == 11  # nothing was written
    assert run("rebuild", "--db", db_url).exit_code == 0
    again = recorded(db_url, quickstart_lines, tmp_path)
    assert again.exit_code == 0 and "appended 0, already present 11" in again.output
    assert log_events(db_url) == 11


def test_an_index_row_whose_key_was_blanked_cannot_let_a_keyed_event_in_twice(
    db_url, tmp_path, quickstart_lines
):
    assert recorded(db_url, quickstart_lines, tmp_path).exit_code == 0
    # Same number of rows, positions and versions: only the log's own stream shows the key.
    sql(db_url, "UPDATE ledger_events SET key = NULL WHERE key = 'cover-SUT-2019'")
    error = one_line_error(recorded(db_url, quickstart_lines[9:10], tmp_path, "again.jsonl"))
    assert "key 'cover-SUT-2019' is in the log" in error and "not in the event index" in error
    assert "run `soc-ledger rebuild`" in error
    assert log_events(db_url) == 11


def test_an_index_row_added_behind_the_ledgers_back_is_refused(db_url, tmp_path, quickstart_lines):
    assert recorded(db_url, quickstart_lines[:10], tmp_path).exit_code == 0
    # A copy of #10 as if it were #11: the next record would think its key recorded.
    columns = (
        "contract, stream, version, type, case_id, key, digest, effective, recorded_on, "
        "appended_at, target_version, payload"
    )
    sql(
        db_url,
        f"INSERT INTO ledger_events (position, {columns}) "
        f"SELECT 11, {columns} FROM ledger_events WHERE position = 10",
    )
    sql(db_url, "UPDATE ledger_events SET key = 'fix-ep-C001-1-end' WHERE position = 11")
    error = one_line_error(recorded(db_url, quickstart_lines[10:], tmp_path, "fix.jsonl"))
    assert "the event index does not match the log (11 rows up to #11" in error
    assert log_events(db_url) == 10


# --- the pseudonym key's fingerprint ----------------------------------------------------------


def test_a_deleted_fingerprint_row_cannot_let_another_key_in(db_url, tmp_path, monkeypatch):
    from tests.test_privacy import a_return, referred
    from tests.test_ssda903 import import_903

    referred(db_url, tmp_path)
    sql(db_url, "DELETE FROM ledger_meta WHERE name = 'pseudonym_key'")
    before = log_events(db_url)
    monkeypatch.setenv("SOC_LEDGER_KEY", "a-different-key-0123456789")
    imported = import_903(db_url, "SUT", a_return(tmp_path), "2019-05-01", year=2019)
    error = one_line_error(imported)
    assert "the pseudonym key is not this ledger's" in error
    assert log_events(db_url) == before
    # With the right key the row is restored from the log's own record of the fingerprint.
    monkeypatch.undo()
    imported = import_903(db_url, "SUT", a_return(tmp_path), "2019-05-01", year=2019)
    assert imported.exit_code == 0, imported.output
    assert sql(db_url, "SELECT COUNT(*) FROM ledger_meta WHERE name = 'pseudonym_key'") == [(1,)]


def test_a_missing_fingerprint_of_an_older_log_is_refused_naming_what_to_do(
    db_url, tmp_path, monkeypatch
):
    from soc_ledger.ledger import recording
    from tests.test_privacy import referred
    from tests.test_ssda903 import referral

    sealed = recording.seal_envelope

    def as_before(*args, **kwargs):  # a referral sealed before envelopes named the key
        return sealed(*args[:8])

    monkeypatch.setattr(recording, "seal_envelope", as_before)
    referred(db_url, tmp_path)
    monkeypatch.undo()
    sql(db_url, "DELETE FROM ledger_meta WHERE name = 'pseudonym_key'")
    before = log_events(db_url)
    more = [referral("C2", "SUT", "CHILD-2", "2007-01-01", "2018-07-01")]
    result = recorded(db_url, more, tmp_path, "more.jsonl")
    assert result.exit_code == 1
    assert "the pseudonym key's fingerprint is missing from this ledger" in result.stderr
    assert "Restore that row from a backup of the store" in result.stderr
    assert "Traceback" not in result.output
    assert log_events(db_url) == before


# --- the read models ------------------------------------------------------------------------


def liability(db: str, *args: str):
    return run("liability", "--db", db, "--as-of", "2019-12-31", "--format", "json", *args)


def test_an_edited_latest_row_is_refused_until_rebuild(db_url, tmp_path, quickstart_lines):
    assert recorded(db_url, quickstart_lines, tmp_path).exit_code == 0
    honest = liability(db_url)
    assert honest.exit_code == 0, honest.output
    sql(
        db_url,
        "UPDATE latest_case_weeks SET counted = replace(counted, 'in_care', 'outcome') "
        "WHERE case_id = 'C001'",
    )
    error = one_line_error(liability(db_url))
    assert error == (
        "error: the read model latest_case_weeks does not match the log (1 change to it not "
        "made by the ledger): it was altered outside the ledger, and no answer is given from "
        "it; run `soc-ledger rebuild`"
    )
    assert run("rebuild", "--db", db_url).exit_code == 0
    assert liability(db_url).stdout == honest.stdout


def test_an_edited_fact_version_is_refused_by_every_query_that_reads_it(
    db_url, tmp_path, quickstart_lines
):
    assert recorded(db_url, quickstart_lines, tmp_path).exit_code == 0
    honest = liability(db_url, "--known-at", "2019-12-31")
    assert honest.exit_code == 0, honest.output
    statement = run("statement", "SUT", "--db", db_url, "--as-of", "2019-12-31")
    assert statement.exit_code == 0, statement.output
    sql(
        db_url,
        "UPDATE fact_versions SET payload = replace(payload, '2019-03-31', '2020-03-31') "
        "WHERE type = 'CareDataReceived'",
    )
    for result in (
        liability(db_url, "--known-at", "2019-12-31"),
        run("statement", "SUT", "--db", db_url, "--as-of", "2019-12-31"),
    ):
        error = one_line_error(result)
        assert "the read model fact_versions does not match the log" in error
        assert error.endswith("run `soc-ledger rebuild`")
    assert run("rebuild", "--db", db_url).exit_code == 0
    assert liability(db_url, "--known-at", "2019-12-31").stdout == honest.stdout


def test_read_model_rows_without_a_seal_are_not_answered_from(db_url, tmp_path, quickstart_lines):
    assert recorded(db_url, quickstart_lines, tmp_path).exit_code == 0
    assert liability(db_url).exit_code == 0
    sql(db_url, "DELETE FROM readmodel_seals WHERE name = 'fact_versions'")
    error = one_line_error(liability(db_url))
    assert "fact_versions does not match the log (its rows carry no seal" in error
    assert run("rebuild", "--db", db_url).exit_code == 0
    assert liability(db_url).exit_code == 0


def test_a_read_model_ahead_of_a_log_cut_back_is_not_answered_from(
    db_url, tmp_path, quickstart_lines
):
    assert recorded(db_url, quickstart_lines, tmp_path).exit_code == 0
    assert liability(db_url).exit_code == 0
    table, position = events_table(db_url)
    sql(db_url, f"DELETE FROM {table} WHERE {position} = 11")
    error = one_line_error(liability(db_url))
    assert "it follows the log to #11, the log ends at #10" in error


def test_a_claim_whose_stored_text_no_longer_parses_is_refused_not_read(
    db_url, tmp_path, quickstart_lines
):
    # A statement reads each claim's payer from its stored text before it decodes the claims
    # it wants: a text that no longer parses is the store's damage, named in one line.
    from tests.test_claims import _claim

    claim = _claim("SUT-2019Q1", "SUT", "2019-03-31", "2019-04-15", ("C001", 2, "338.00"))
    assert recorded(db_url, [*quickstart_lines, claim], tmp_path).exit_code == 0
    statement = run("statement", "SUT", "--db", db_url, "--as-of", "2019-12-31")
    assert statement.exit_code == 0 and "SUT-2019Q1" in statement.output, statement.output
    sql(db_url, "UPDATE fact_versions SET payload = 'not json' WHERE type = 'ClaimSubmitted'")
    for result in (
        run("statement", "SUT", "--db", db_url, "--as-of", "2019-12-31"),
        run("reconcile", "--payer", "SUT", "--db", db_url, "--as-of", "2019-12-31"),
    ):
        error = one_line_error(result)
        assert "the read model fact_versions does not match the log" in error
