"""`verify` reads the log and the read models a page at a time (issue 15): the report must not
depend on where the pages fall, and a difference is still named by its row."""

from __future__ import annotations

import json
import uuid

from soc_ledger.ledger import index
from soc_ledger.ledger.service import Ledger
from soc_ledger.ledger.store import EventLog
from soc_ledger.projections import verification
from tests.helpers import run


def _verified(db: str) -> dict:
    result = run("verify", "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_report_is_the_same_with_pages_of_two_or_three_rows(
    db_url, quickstart_lines, monkeypatch
):
    with Ledger(db_url) as ledger:
        ledger.record_lines(quickstart_lines, "q.jsonl")
    whole = _verified(db_url)
    monkeypatch.setattr(EventLog, "PAGE", 3)
    monkeypatch.setattr(verification, "PAGE", 2)
    paged = _verified(db_url)
    assert paged == whole
    assert paged["ok"] and paged["events"] == len(quickstart_lines)


def test_every_stream_is_read_back_whole_and_in_version_order_across_pages(
    db_url, quickstart_lines, monkeypatch
):
    monkeypatch.setattr(EventLog, "PAGE", 2)
    with Ledger(db_url) as ledger:
        ledger.record_lines(quickstart_lines, "q.jsonl")
        seen: dict[object, list[int]] = {}
        order = []
        for position, stored in ledger.log.by_stream():
            if stored.originator_id not in seen:
                order.append(stored.originator_id)
            seen.setdefault(stored.originator_id, []).append(stored.originator_version)
            assert ledger.log.mapper.decode_state(stored)["originator_version"] == (
                stored.originator_version
            )
            assert position > 0
        case = json.dumps(["plcip", "C001"])
        alone = [s.originator_version for _, s in ledger.log.by_stream(case)]
    assert sum(len(v) for v in seen.values()) == len(quickstart_lines)
    assert all(v == list(range(1, len(v) + 1)) for v in seen.values())
    assert len(order) == len(seen)  # each stream comes as one run, never split
    assert len(alone) > 2 and alone == list(range(1, len(alone) + 1))


def test_the_first_differing_row_is_named_from_two_row_streams():
    table = index.tracking  # columns (name, position), keyed by name
    changed = verification._compare(
        table, ("name",), iter([("a", 1), ("b", 2)]), iter([("a", 1), ("b", 3)])
    )
    assert changed == (2, ("ledger_tracking row {'name': 'b'}: position stored 2, rebuilt 3", None))
    missing = verification._compare(table, ("name",), iter([("a", 1)]), iter([("a", 1), ("c", 5)]))
    assert missing[0] == 1
    assert missing[1] is not None and "{'name': 'c'} is missing from the stored" in missing[1][0]
    extra = verification._compare(
        table, ("name",), iter([("a", 1), ("b", 2), ("d", 4)]), iter([("a", 1), ("c", 3)])
    )
    assert extra[0] == 3
    assert extra[1] is not None and "{'name': 'b'} is only in the stored" in extra[1][0]
    assert verification._compare(table, ("name",), iter([("a", 1)]), iter([("a", 1)])) == (1, None)


def test_rows_line_up_on_a_database_whose_collation_is_not_code_point_order(
    pg_server, quickstart_lines
):
    """PostgreSQL under an ICU collation sorts `a` before `Z` and `_` before `A`; the scratch
    rebuild (SQLite) sorts by code point. The comparison orders both sides by code point, so a
    sound store verifies whatever its database's collation."""
    import psycopg

    name = f"soc_ledger_icu_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server + "/postgres", autocommit=True) as admin:
        admin.execute(
            f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
            "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
    try:
        url = f"{pg_server}/{name}"
        referral = json.loads(quickstart_lines[3])
        extra = []
        for n, case in enumerate(["a1", "Z1", "_1", "b1", "B1"], start=1):
            extra.append(
                json.dumps(
                    {
                        **referral,
                        "key": f"ref-{case}",
                        "case": case,
                        "child_ref": f"SUT-{900000 + n}",
                    }
                )
            )
        with Ledger(url) as ledger:
            ledger.record_lines([*quickstart_lines, *extra], "q.jsonl")
        with psycopg.connect(url) as conn:
            streams = [r[0] for r in conn.execute("SELECT stream FROM ledger_events ORDER BY 1")]
        assert streams != sorted(streams)  # the database's own order is not Python's
        report = _verified(url)
        assert report["ok"], report["first_break"]
    finally:
        with psycopg.connect(pg_server + "/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
