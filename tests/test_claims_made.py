"""The claims read model (`projections/claims_made.py`): a row per claim line by payer, with
known from/until, kept by the log follower.

The history is tests/test_claims.py's (worked by hand there), with SUT-2019Q2 restated on
2019-10-01: C001's line lowered from 13 weeks (2,197.00) to 12 weeks, 12 x 169 = 2,028.00.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from soc_ledger.domain.knowledge import EVERYTHING, KnownAt
from soc_ledger.ledger.index import open_engine
from soc_ledger.ledger.location import Location
from soc_ledger.projections import claims, claims_made
from tests.helpers import run
from tests.test_claims import CLAIMS, MERTON_CASE, _event, _json, _record
from tests.test_helper_tables import one_line_error, sql

RESTATED = _event(
    "EventCorrected", "2019-10-01", "restate-SUT-2019Q2", target="claim-SUT-2019Q2",
    changes={"lines": [{"case": "C001", "weeks": 12, "amount": "2028.00"}]},
    reason="one week was in care",
)  # fmt: skip


@pytest.fixture
def restated(db_url, tmp_path, quickstart_lines) -> str:
    _record(tmp_path, db_url, quickstart_lines + MERTON_CASE + CLAIMS + [RESTATED])
    return db_url


def _engine(url: str):
    return open_engine(Location.parse(url))


def test_each_reading_of_a_claim_is_a_row_with_its_lines(restated):
    rows = sql(
        restated,
        "SELECT m.recorded_from, m.recorded_to, m.payer, l.case_id, l.weeks, l.amount "
        "FROM claims_made m JOIN claim_lines l ON l.stream = m.stream AND l.version = m.version "
        "AND l.recorded_from = m.recorded_from WHERE m.claim = 'SUT-2019Q2' "
        "ORDER BY m.recorded_from",
    )
    assert [(str(a)[:10], str(b)[:10] if b else None, *rest) for a, b, *rest in rows] == [
        ("2019-09-15", "2019-10-01", "SUT", "C001", 13, "2197.00"),
        ("2019-10-01", None, "SUT", "C001", 12, "2028.00"),
    ]
    # CBO-2019Q1 lists two cases, in claim order.
    lines = sql(
        restated,
        "SELECT l.line, l.case_id, l.amount FROM claim_lines l JOIN claims_made m "
        "ON l.stream = m.stream AND l.version = m.version WHERE m.claim = 'CBO-2019Q1' "
        "ORDER BY l.line",
    )
    assert [tuple(r) for r in lines] == [(0, "C001", "1530.00"), (1, "C002", "1800.00")]


def test_a_statement_reads_each_reading_at_its_own_knowledge(restated):
    """SUT-2019Q2 claimed 2,197.00 as known at 2019-09-30 and 2,028.00 from 2019-10-01; its
    due (13 weeks, 2,197.00, tests/test_claims.py) is the same either way. SUT's claims total
    5,746.00 + 2,197.00 = 7,943.00 then, 5,746.00 + 2,028.00 = 7,774.00 now."""
    then = _json("statement", "SUT", "--db", restated, "--as-of", "2019-12-31",
                 "--known-at", "2019-09-30")  # fmt: skip
    now = _json("statement", "SUT", "--db", restated, "--as-of", "2019-12-31")
    q2_then = next(c for c in then["claims"] if c["claim"] == "SUT-2019Q2")
    q2_now = next(c for c in now["claims"] if c["claim"] == "SUT-2019Q2")
    assert (q2_then["claimed"], q2_then["due"]) == ("2197.00", "2197.00")
    assert (q2_now["claimed"], q2_now["due"]) == ("2028.00", "2197.00")
    assert (then["totals"]["claimed"], now["totals"]["claimed"]) == ("7943.00", "7774.00")


KNOWN = [None, date(2019, 6, 1), date(2019, 8, 31), date(2019, 9, 30), date(2019, 10, 1)]


@pytest.mark.parametrize("day", KNOWN)
def test_the_claims_read_equal_the_claims_decoded_from_the_facts(restated, monkeypatch, day):
    engine = _engine(restated)
    assert claims_made.in_step(engine)
    known_at = EVERYTHING if day is None else KnownAt.on(day)
    asks = [(None, ()), (["SUT"], ()), (["CBO"], ()), (["MRT", "SUT"], ()), ([], ["CBO-2019Q1"])]
    from_table = [claims.claims_at(engine, "plcip", known_at, p, n) for p, n in asks]
    monkeypatch.setattr(claims_made, "in_step", lambda engine: False)
    decoded = [claims.claims_at(engine, "plcip", known_at, p, n) for p, n in asks]
    assert from_table == decoded
    if day is None:  # the payer filter did filter: SUT's claims only
        assert sorted(from_table[1]) == ["SUT-2019Q1", "SUT-2019Q2"]
        assert from_table[1]["SUT-2019Q2"].claimed == 2028


def test_an_edited_claim_line_is_refused_until_rebuild(restated):
    honest = run("statement", "CBO", "--db", restated, "--as-of", "2019-12-31")
    assert honest.exit_code == 0, honest.output
    sql(restated, "UPDATE claim_lines SET amount = '1.00' WHERE case_id = 'C002'")
    error = one_line_error(run("statement", "CBO", "--db", restated, "--as-of", "2019-12-31"))
    assert "the read model claim_lines does not match the log (" in error
    assert error.endswith("run `soc-ledger rebuild`")
    assert run("rebuild", "--db", restated).exit_code == 0
    assert run("statement", "CBO", "--db", restated, "--as-of", "2019-12-31").stdout == (
        honest.stdout
    )
    assert run("verify", "--db", restated).exit_code == 0


def test_a_store_from_before_the_claims_model_gets_it_on_the_next_read(restated):
    honest = run("reconcile", "--payer", "CBO", "--db", restated, "--as-of", "2019-12-31")
    assert honest.exit_code == 0, honest.output
    for statement in (
        "DROP TABLE claim_lines",
        "DROP TABLE claims_made",
        "DELETE FROM ledger_tracking WHERE name = 'claims_made'",
        "DELETE FROM readmodel_seals WHERE name IN ('claims_made', 'claim_lines')",
    ):
        sql(restated, statement)
    again = run("reconcile", "--payer", "CBO", "--db", restated, "--as-of", "2019-12-31")
    assert again.exit_code == 0 and again.stdout == honest.stdout
    assert claims_made.in_step(_engine(restated))
    assert sql(restated, "SELECT count(*) FROM claim_lines")[0][0] == 6  # 1 + 1 + 2 + 1 + 1


def test_a_line_missing_from_the_read_model_is_refused_not_left_out(restated, monkeypatch):
    # The seal catches a deleted row first; behind it, a head whose lines are not all stored
    # is never read as a shorter claim.
    engine = _engine(restated)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM claim_lines WHERE case_id = 'C002' AND line = 1")
    with pytest.raises(Exception, match="claim 'CBO-2019Q1' lists 2 lines, 1 are stored"):
        claims_made.submissions(engine, "plcip", KnownAt(datetime(2030, 1, 1)), ["CBO"])


def test_a_reconciliation_reads_no_claim_after_the_ones_it_names(restated):
    """SUT-2019Q1 (to 2019-03-31) is read before SUT-2019Q2 (to 2019-06-30): reconciling the
    first needs only it, the second needs both (the first decides where its line begins)."""
    engine = _engine(restated)
    first = claims.claims_at(engine, "plcip", EVERYTHING, (), ["SUT-2019Q1"], True)
    second = claims.claims_at(engine, "plcip", EVERYTHING, (), ["SUT-2019Q2"], True)
    assert sorted(first) == ["SUT-2019Q1"]
    assert sorted(second) == ["SUT-2019Q1", "SUT-2019Q2"]
    every = claims.claims_at(engine, "plcip", EVERYTHING, (), ["SUT-2019Q2"])
    assert second == every  # nothing SUT claimed comes after 2019Q2
    alone = claims.reconcile(engine, "plcip", "SUT-2019Q2", date(2019, 12, 31))
    together = claims.reconcile_many(engine, "plcip", date(2019, 12, 31))
    assert alone == next(r for r in together if r.claim.claim == "SUT-2019Q2")
