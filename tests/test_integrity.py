"""SPEC §11 tamper evidence and §4 balance assertions: `verify`, `verify --export/--against`
and `assert`.

A stored event is edited by one byte behind the ledger's back (in the SQLite file itself, or
with SQL in PostgreSQL): `verify` exits 1 naming that event's position. Untouched stores verify
clean. Every `BalanceAsserted` is re-checked: a correction recorded after its `known_at` cannot
break it, a correction recorded on or before it (backfilled later) does, and is named.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg
import pytest

from soc_ledger.ledger.location import Location
from tests.helpers import line, run, trail, write_lines

C = "plcip"
MARKER = b"panel minutes 2018-03"  # the `source` of the quick-start referral


def record(db: str, path: str):
    result = run("record", path, "--db", db)
    assert result.exit_code == 0, result.output
    return result


def verify(db: str, *args: str):
    return run("verify", "--db", db, *args)


def position_of(db: str, key: str) -> int:
    return next(e["position"] for e in trail(db) if e["key"] == key)


def quickstart(tmp_path: Path, lines: list[str]) -> str:
    return write_lines(tmp_path / "quickstart.jsonl", lines)


# --- untouched stores -------------------------------------------------------------------------


def test_an_untouched_store_verifies_clean(db_url, tmp_path, quickstart_lines):
    record(db_url, quickstart(tmp_path, quickstart_lines))
    result = verify(db_url, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["first_break"] is None
    assert report["events"] == 11 and report["head"]["position"] == 11
    checks = {c["check"]: c for c in report["checks"]}
    assert set(checks) == {
        "chain", "streams", "privacy", "aggregates", "projections", "assertions"
    }
    assert all(c["ok"] for c in checks.values())
    assert "latest_case_weeks 1," in checks["projections"]["summary"]

    table = verify(db_url)
    assert table.exit_code == 0
    assert f"verified: 11 events, head #11 {report['head']['hash']}" in table.stdout


def test_an_empty_or_missing_store_does_not_verify(db_url, tmp_path):
    """Nothing appended is nothing proven (issue 13: a new file said `verified: 0 events`)."""
    missing = verify(db_url)
    assert missing.exit_code == 1 and missing.stdout == ""
    assert missing.stderr.startswith("error: no ledger at ") and missing.stderr.count("\n") == 1
    (tmp_path / "nothing.jsonl").write_text("")
    assert run("record", str(tmp_path / "nothing.jsonl"), "--db", db_url).exit_code == 0
    empty = verify(db_url)
    assert empty.exit_code == 1 and "verified" not in empty.stdout
    assert empty.stderr == f"error: nothing to verify: the ledger at {db_url} holds no events\n"


# --- one byte edited ----------------------------------------------------------------------------


def _edit_sqlite_event(db: str, position: int) -> None:
    """Change one letter of the event's `source` inside the SQLite file, as an editor would."""
    path = Location.parse(db).path
    with sqlite3.connect(path) as conn:
        (state,) = conn.execute(
            "SELECT state FROM stored_events WHERE rowid = ?", (position,)
        ).fetchone()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(Path(path).read_bytes())
    start = data.find(state)
    assert start >= 0 and data.find(state, start + 1) < 0, "the stored event is one run of bytes"
    at = start + state.find(MARKER)
    assert data[at : at + 1] == b"p"
    data[at] = ord("q")  # "panel minutes" -> "qanel minutes": still valid JSON
    Path(path).write_bytes(bytes(data))


def _edit_postgres_event(db: str, position: int) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        (state,) = conn.execute(
            "SELECT state FROM socledger_events WHERE notification_id = %s", (position,)
        ).fetchone()
        at = bytes(state).find(MARKER)
        assert at >= 0
        conn.execute(
            "UPDATE socledger_events SET state = set_byte(state, %s, %s) "
            "WHERE notification_id = %s",
            (at, ord("q"), position),
        )


def test_one_edited_byte_of_one_stored_event_is_named_by_its_position(
    db_url, tmp_path, quickstart_lines
):
    record(db_url, quickstart(tmp_path, quickstart_lines))
    position = position_of(db_url, "ref-C001")
    assert position == 4
    if db_url.startswith("sqlite"):
        _edit_sqlite_event(db_url, position)
    else:
        _edit_postgres_event(db_url, position)

    result = verify(db_url)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: verify: chain: #4: its content does not match its hash: the event was altered "
        "after it was written"
    )
    assert "aggregates" in result.stdout and "skipped" in result.stdout  # nothing built on it

    report = json.loads(verify(db_url, "--format", "json").stdout)
    assert report["ok"] is False
    assert report["first_break"]["position"] == 4
    assert report["first_break"]["check"] == "chain"


@pytest.mark.postgres
def test_a_removed_event_breaks_the_chain_at_the_next_one(pg_url, tmp_path, quickstart_lines):
    record(pg_url, quickstart(tmp_path, quickstart_lines))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM socledger_events WHERE notification_id = 6")
    result = verify(pg_url)
    assert result.exit_code == 1
    assert "error: verify: chain: #7: its prev_hash" in result.stderr
    assert "an event before it was removed, inserted or reordered" in result.stderr


@pytest.mark.postgres
def test_exported_heads_prove_later_that_nothing_before_them_moved(
    pg_url, tmp_path, quickstart_lines
):
    record(pg_url, quickstart(tmp_path, quickstart_lines[:10]))
    heads = tmp_path / "heads.json"
    exported = verify(pg_url, "--export", str(heads))
    assert exported.exit_code == 0, exported.output
    assert f"chain heads written to {heads}" in exported.stdout
    data = json.loads(heads.read_text())
    assert data["format"] == "soc-ledger chain heads"
    assert data["head"]["position"] == 10 and data["events"] == 10
    assert data["contracts"]["plcip"] == data["head"]

    # The log grows: the export still holds.
    record(pg_url, quickstart(tmp_path, quickstart_lines))
    assert verify(pg_url, "--against", str(heads)).exit_code == 0

    # The last two events vanish. The chain that is left is intact; the read models still
    # remember them, and the export proves the cut whatever else was cleaned up.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM socledger_events WHERE notification_id >= 10")
    cut = verify(pg_url)
    assert cut.exit_code == 1
    assert cut.stderr.splitlines()[-1].startswith(
        "error: verify: projections: #10: ledger_events row {'position': 10} is only in the "
        "stored read model"
    )
    cut = verify(pg_url, "--against", str(heads))
    assert cut.exit_code == 1
    assert "error: verify: export: #10: the head exported at" in cut.stderr
    assert "is gone: the log now ends at #9 (events were removed)" in cut.stderr
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for table in ("ledger_events", "fact_versions", "latest_case_weeks"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("DELETE FROM ledger_tracking")
    assert verify(pg_url).exit_code == 0
    assert verify(pg_url, "--against", str(heads)).exit_code == 1


def test_a_store_that_does_not_verify_is_not_exported(sqlite_url, tmp_path, quickstart_lines):
    record(sqlite_url, quickstart(tmp_path, quickstart_lines))
    _edit_sqlite_event(sqlite_url, 4)
    heads = tmp_path / "heads.json"
    assert verify(sqlite_url, "--export", str(heads)).exit_code == 1
    assert not heads.exists()


def test_a_read_model_edited_behind_the_ledgers_back_is_named_and_left_alone(
    sqlite_url, tmp_path, quickstart_lines
):
    record(sqlite_url, quickstart(tmp_path, quickstart_lines))
    assert verify(sqlite_url).exit_code == 0  # the read models are built
    path = Location.parse(sqlite_url).path
    with sqlite3.connect(path) as conn:
        # Week 28 of C001 (in care) recounted as paid: its kind's status edited.
        conn.execute(
            "UPDATE latest_case_weeks SET counted = replace(counted, 'in_care', 'outcome') "
            "WHERE case_id = 'C001'"
        )
    result = verify(sqlite_url)
    assert result.exit_code == 1
    assert (
        "error: verify: projections: latest_case_weeks row {'contract': 'plcip', 'case_id': "
        "'C001'}" in result.stderr
    )
    assert "counted stored '[[\"outcome\"" in result.stderr
    # verify compares; it does not repair (or destroy) the user's read model.
    with sqlite3.connect(path) as conn:
        assert "in_care" not in conn.execute(
            "SELECT counted FROM latest_case_weeks WHERE case_id = 'C001'"
        ).fetchone()[0]


# --- balance assertions ------------------------------------------------------------------------


def _assert(db: str, *args: str):
    return run("assert", "--db", db, "--by", "AUDITOR", *args)


def test_an_assertion_records_the_figure_and_checks_an_expected_value(
    sqlite_url, tmp_path, quickstart_lines
):
    record(sqlite_url, quickstart(tmp_path, quickstart_lines))
    # Hand-worked (README): as of 2019-03-31, known now, 33 outcome weeks owe 33 x 214 = 7,062.
    result = _assert(
        sqlite_url, "--scope", "contract", "--figure", "owed", "--as-of", "2019-03-31",
        "--value", "7062", "--format", "json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "contract": C, "scope": "contract", "figure": "owed", "as_of": "2019-03-31",
        "known_at": None, "value": "7062.00", "by": "AUDITOR", "position": 12,
    }
    # The borough's own bill: 33 x 169; the top-up funder's: 33 x 45; weeks of SUT's cases.
    for scope, figure, value in (
        ("SUT", "owed", "5577.00"), ("CBO", "owed", "1485.00"), ("SUT", "outcome_weeks", "33"),
    ):
        ok = _assert(
            sqlite_url, "--scope", scope, "--figure", figure, "--as-of", "2019-03-31",
            "--value", value,
        )
        assert ok.exit_code == 0, ok.output
        assert f": {value} (BalanceAsserted #" in ok.stdout

    before = len(trail(sqlite_url))
    wrong = _assert(
        sqlite_url, "--scope", "contract", "--figure", "owed", "--as-of", "2019-03-31",
        "--value", "7276.00",
    )
    assert wrong.exit_code == 1
    assert wrong.stderr == (
        "error: owed of contract as of 2019-03-31, known at everything, is 7062.00, not 7276.00: "
        "nothing was recorded\n"
    )
    unknown = _assert(
        sqlite_url, "--scope", "XYZ", "--figure", "owed", "--as-of", "2019-03-31"
    )
    assert unknown.exit_code == 1
    assert "scope 'XYZ' is not 'contract', a borough or a payer" in unknown.stderr
    assert len(trail(sqlite_url)) == before

    checked = verify(sqlite_url, "--format", "json")
    assert checked.exit_code == 0, checked.output
    checks = {c["check"]: c for c in json.loads(checked.stdout)["checks"]}
    assert checks["assertions"]["summary"] == "4 balance assertions re-checked"


def test_a_correction_recorded_after_known_at_cannot_break_an_assertion_one_within_does(
    db_url, tmp_path, quickstart_lines
):
    # Everything but the restated end of the stay (recorded 2019-09-02).
    record(db_url, quickstart(tmp_path, quickstart_lines[:10]))
    args = ("--scope", "contract", "--figure", "owed", "--as-of", "2019-03-31")
    pinned = _assert(db_url, *args, "--known-at", "2019-06-30", "--format", "json")
    latest = _assert(db_url, *args, "--format", "json")
    assert pinned.exit_code == latest.exit_code == 0, pinned.output + latest.output
    # 2019-01-07 to 2019-01-21 in care: weeks 25-27 in care, 34 outcome weeks x 214 = 7,276.
    assert json.loads(pinned.stdout)["value"] == json.loads(latest.stdout)["value"] == "7276.00"
    pinned_at, latest_at = json.loads(pinned.stdout)["position"], json.loads(latest.stdout)[
        "position"
    ]

    # The stay is restated a week longer, recorded 2019-09-02: after the pinned known_at.
    record(db_url, quickstart(tmp_path, quickstart_lines))
    result = verify(db_url)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: verify: assertions: #{latest_at}: BalanceAsserted by AUDITOR: owed of contract "
        "as of 2019-03-31, known at everything, was 7276.00, is now 7062.00; appended since and "
        "known by then: #13"
    )
    assert f"#{pinned_at}" not in result.stderr  # the pinned one still holds

    # A correction backfilled to 2019-06-01 (on or before the pinned known_at) breaks it too:
    # the stay is restated to have started a week earlier, putting week 24 in care.
    backfill = line(
        type="EventCorrected", contract=C, effective="2019-06-01", recorded_on="2019-06-01",
        key="fix-ep-C001-1-start", target="ep-C001-1-start", changes={"effective": "2018-12-31"},
        reason="903 resubmission: stay began a week earlier",
    )
    record(db_url, write_lines(tmp_path / "backfill.jsonl", [backfill]))
    result = verify(db_url, "--format", "json")
    assert result.exit_code == 1
    findings = {
        f["position"]: f["message"]
        for c in json.loads(result.stdout)["checks"]
        for f in c["findings"]
    }
    assert findings[pinned_at] == (
        "BalanceAsserted by AUDITOR: owed of contract as of 2019-03-31, known at 2019-06-30, "
        "was 7276.00, is now 7062.00; appended since and known by then: #14"
    )
    assert set(findings) == {pinned_at, latest_at}
