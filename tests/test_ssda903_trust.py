"""SSDA903 imports a careless user or an adversary cannot misuse (issue 13): a return of
another year is refused, two imports at once run one after the other, `--check` writes
nothing, an import can be reverted, and a hostile XML file is one line.

The scenario is test_ssda903.py's Sutton: period 2019-04-01 to 2020-03-31, cases S1 (child
SUT-CHILD-A) and S2 (SUT-CHILD-B).
"""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from pathlib import Path

from soc_ledger.ledger.service import Ledger
from soc_ledger.ledger.ssda903 import importing
from soc_ledger.ledger.ssda903.fitting import looks_like
from soc_ledger.ledger.ssda903.period import Period
from soc_ledger.ledger.ssda903.reading import EpisodeRow, Return, read_return
from soc_ledger.projections.facts_now import FACTS_NOW
from tests.conftest import EXAMPLES
from tests.helpers import line, run, trail, write_lines
from tests.test_ssda903 import (
    FIRST,
    RESUBMITTED,
    SUTTON,
    YEAR,
    C,
    contract_lines,
    days_in_care,
    episode,
    import_903,
    setup,
    write_return,
)

# The 2018-19 return of the same children: every episode ended before 1 April 2019.
RETURN_2019 = [
    episode("SUT-CHILD-A", "2018-05-01", "2018-07-01", "E11"),
    episode("SUT-CHILD-A", "2018-09-01", "2018-11-01", "E11"),
    episode("SUT-CHILD-B", "2018-06-01", "2019-01-10", "E11"),
]
# The 2020-21 return: episodes starting after 31 March 2020.
RETURN_2021 = [
    episode("SUT-CHILD-A", "2020-05-01", "2020-07-01", "E11"),
    episode("SUT-CHILD-B", "2020-01-10", "2020-06-01", "E11", ls="C1", place="U4"),
]


# === a wrong year ==============================================================================


def test_a_return_of_a_later_year_is_refused_naming_the_year_it_looks_like(db_url, tmp_path):
    setup(db_url, tmp_path, ["SUT"], SUTTON)
    assert import_903(db_url, "SUT", write_return(tmp_path / "a", "r", FIRST), "2020-06-30",
                      year=2020).exit_code == 0
    before = trail(db_url)
    files = write_return(tmp_path / "b", "r2021", RETURN_2021)
    # Given as a resubmission of 2019-20, it would have corrected and retracted the real one.
    result = import_903(db_url, "SUT", files, "2020-09-01", year=2020)
    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == [
        f"error: {files[1]}:2: DECOM: 1 episode row(s) start after the period 2019-04-01 to "
        "2020-03-31 ends, so this is not its return: the episodes look like 2020-04-01 to "
        "2021-03-31; --year 2021?"
    ]
    assert trail(db_url) == before
    assert days_in_care(db_url, "S1", *YEAR) == 122


def test_a_return_of_an_earlier_year_is_refused_naming_the_year_it_looks_like(db_url, tmp_path):
    setup(db_url, tmp_path, ["SUT"], SUTTON)
    assert import_903(db_url, "SUT", write_return(tmp_path / "a", "r", FIRST), "2020-06-30",
                      year=2020).exit_code == 0
    before = trail(db_url)
    files = write_return(tmp_path / "b", "r2019", RETURN_2019)
    result = import_903(db_url, "SUT", files, "2020-09-01", year=2020)
    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == [
        f"error: {files[1]}: 3 of the 3 rows of referred children have no day in the period "
        "2019-04-01 to 2020-03-31, so this is not its return: the episodes look like "
        "2018-04-01 to 2019-03-31; --year 2019?"
    ]
    assert trail(db_url) == before
    # With the right year it imports.
    assert import_903(db_url, "SUT", files, "2019-06-30", year=2019).exit_code == 0


def test_the_period_the_data_looks_like_holds_its_latest_date():
    def rows(*days: str) -> Return:
        found = tuple(EpisodeRow("e.csv", n, "c", {"DECOM": d}) for n, d in enumerate(days))
        return Return("csv", ("h.csv", "e.csv"), 0, found, "0")

    year = Period.of(year=2020)
    assert looks_like(rows("01/05/2017", "31/03/2018"), year) == Period.of(year=2018)
    assert looks_like(rows("01/04/2021"), year) == Period.of(year=2022)
    half = Period(date(2019, 1, 1), date(2019, 6, 30))
    assert looks_like(rows("01/03/2021"), half) == Period(date(2021, 1, 1), date(2021, 6, 30))
    assert looks_like(rows("not a date"), year) is None


# === two imports at once =======================================================================


def test_two_imports_at_once_run_one_after_the_other(db_url, tmp_path, monkeypatch):
    """Import B starts while import A is planning: B waits for A (the plan is made under the
    writer lock), then supersedes it; neither refuses the other's rows."""
    setup(db_url, tmp_path, ["SUT"], SUTTON)
    first = write_return(tmp_path / "a", "sut-2020", FIRST)
    second = read_return(*write_return(tmp_path / "b", "sut-2020", RESUBMITTED))
    outcome: dict[str, object] = {}

    def import_b() -> None:
        try:
            with Ledger(db_url) as ledger:
                outcome["b"] = importing.import_return(
                    ledger, FACTS_NOW, second, "SUT", Period.of(year=2020), date(2020, 9, 1)
                )
        except Exception as exc:  # reported by the assertions below
            outcome["b"] = exc

    planned = importing.plan_import
    b = threading.Thread(target=import_b)

    def plan_while_b_runs(*args, **kwargs):
        if not b.is_alive() and "b" not in outcome:
            b.start()
            b.join(timeout=5)  # without the lock B is done by now; with it, B waits for A
        return planned(*args, **kwargs)

    monkeypatch.setattr(importing, "plan_import", plan_while_b_runs)
    result = import_903(db_url, "SUT", first, "2020-06-30", year=2020)
    b.join(timeout=120)
    assert result.exit_code == 0, result.output
    assert isinstance(outcome["b"], importing.ImportResult), outcome["b"]
    assert outcome["b"].summary.episodes_corrected == 1
    assert days_in_care(db_url, "S1", *YEAR) == 75
    assert days_in_care(db_url, "S1", *YEAR, known_at=date(2020, 8, 31)) == 122


# === hostile files =============================================================================


def test_a_deeply_nested_xml_file_is_one_line_naming_the_file(tmp_path, sqlite_url):
    from soc_ledger.ledger.service import Ledger

    with Ledger(sqlite_url) as ledger:  # the return is read once the store is known to be there
        ledger.record_lines((EXAMPLES / "quickstart.jsonl").read_text().splitlines(), "q")
    store = Path(sqlite_url.removeprefix("sqlite:///"))
    before = store.read_bytes()
    deep = tmp_path / "deep.xml"
    deep.write_text("<EXPSSDA903>" + "<a>" * 1000 + "</a>" * 1000 + "</EXPSSDA903>")
    result = import_903(sqlite_url, "SUT", (str(deep),), "2020-06-30", year=2020)
    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == [
        f"{deep}:1: (xml): elements nested more than 64 deep; an SSDA903 return nests 5 deep",
        f"error: {deep}: 1 problem; nothing was written",
    ]
    assert store.read_bytes() == before


# === --check ===================================================================================


def _care(kind: str, line_key: str, effective: str, **fields) -> str:
    return line(
        type=kind, contract=C, effective=effective, recorded_on="2019-08-01", key=line_key,
        case="S1", **fields,
    )


def test_record_check_lists_every_problem_in_line_order_and_writes_nothing(db_url, tmp_path):
    setup(db_url, tmp_path, ["SUT"], SUTTON)
    before = trail(db_url)
    path = write_lines(
        tmp_path / "check.jsonl",
        [
            # line 1: an open episode from 1 May
            _care("CareEpisodeStarted", "e1", "2019-05-01", episode="e1", legal_status="C2",
                  placement="U1"),
            # line 2: an open episode from 1 March, which would run on over line 1's: the case
            # as the batch leaves it is checked last, so without --check this comes second
            _care("CareEpisodeStarted", "e2", "2019-03-01", episode="e2", legal_status="C2",
                  placement="U1"),
            # line 3: a retraction of nothing
            line(type="EventRetracted", contract=C, effective="2019-08-01", key="r",
                 target="no-such-key", reason="test"),
        ],
    )
    result = run("record", "--check", path, "--db", db_url)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert [ln.split(":")[1] for ln in lines[:-1]] == ["2", "3"], lines
    assert lines[-1] == f"error: {path}: 2 problems; nothing was written"
    assert trail(db_url) == before


def test_record_check_of_a_good_file_says_what_would_be_appended(db_url, tmp_path):
    setup(db_url, tmp_path, ["SUT"], SUTTON)
    before = trail(db_url)
    path = write_lines(
        tmp_path / "good.jsonl",
        [
            *contract_lines(["SUT"]),  # already present
            _care("CareEpisodeStarted", "e1", "2019-05-01", episode="e1", legal_status="C2",
                  placement="U1"),
        ],
    )
    result = run("record", "--check", path, "--db", db_url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "no problems: 1 events would be appended, 2 already present\n"
    assert trail(db_url) == before
    # And it records as it said.
    assert "appended 1, already present 2" in run("record", path, "--db", db_url).stdout


def test_import_check_lists_every_problem_in_line_order_and_writes_nothing(db_url, tmp_path):
    setup(db_url, tmp_path, ["SUT"], SUTTON)
    before = trail(db_url)
    rows = [
        episode("SUT-CHILD-B", "2019-05-01", "2019-06-01", "E11"),  # line 2
        episode("SUT-CHILD-B", "2019-05-20", "2019-07-01", "E11"),  # line 3: overlaps line 2
        episode("SUT-CHILD-A", "2019-06-01", "2019-06-10", "X9"),  # line 4: no such REC
    ]
    files = write_return(tmp_path, "bad", rows)
    result = import_903(db_url, "SUT", files, "2020-06-30", year=2020, check="")
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert [ln.split(":")[1] for ln in lines[:-1]] == ["3", "4"], lines
    assert trail(db_url) == before

    good = write_return(tmp_path / "good", "sut-2020", FIRST)
    result = import_903(db_url, "SUT", good, "2020-06-30", year=2020, check="")
    assert result.exit_code == 0, result.output
    assert result.stdout == "no problems: 7 events would be appended, 0 already present\n"
    assert trail(db_url) == before


# === revert ====================================================================================


def receipts(db: str) -> list[dict]:
    return [e for e in trail(db) if e["type"] == "CareDataReceived"]


def test_reverting_an_import_retracts_what_it_recorded_and_earlier_knowledge_keeps_it(
    db_url, tmp_path
):
    setup(db_url, tmp_path, ["SUT"], SUTTON)
    files = write_return(tmp_path / "a", "sut-2020", FIRST)
    done = import_903(db_url, "SUT", files, "2020-06-30", year=2020, format="json")
    assert done.exit_code == 0, done.output
    (receipt,) = receipts(db_url)
    assert json.loads(done.stdout)["receipt"] == receipt["key"]
    imported = [e for e in trail(db_url) if e["recorded_on"].startswith("2020-06-30")]
    assert len(imported) == 7

    result = run("revert", receipt["key"], "--reason", "wrong borough", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"{receipt['key']}: reverted the return of SUT for 2019-04-01 to 2020-03-31, received "
        "2020-06-30: 7 events retracted"
    )
    retractions = trail(db_url)[-7:]
    assert {e["event"]["target"] for e in retractions} == {e["event"]["key"] for e in imported}
    assert {e["event"]["reason"] for e in retractions} == {"wrong borough"}
    # Known now: no care; known before the revert: the import, as it was.
    assert days_in_care(db_url, "S1", *YEAR) == 0
    assert days_in_care(db_url, "S1", *YEAR, known_at=date.today() - timedelta(days=1)) == 122
    coverage = run("liability", "--db", db_url, "--by", "borough", "--format", "json")
    assert coverage.exit_code == 0, coverage.output

    # Twice: refused, naming the revert; nothing written.
    before = trail(db_url)
    again = run("revert", f"#{receipt['position']}", "--reason", "again", "--db", db_url)
    assert again.exit_code != 0
    assert again.stderr.startswith(f"error: import {receipt['key']} is already reverted (#")
    assert "wrong borough" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert trail(db_url) == before

    # The same return cannot come back under the same received date, but can under its own.
    same = import_903(db_url, "SUT", files, "2020-06-30", year=2020)
    assert same.exit_code != 0
    assert "was imported and then reverted" in same.stderr
    assert trail(db_url) == before
    assert import_903(db_url, "SUT", files, "2020-07-01", year=2020).exit_code == 0
    assert days_in_care(db_url, "S1", *YEAR) == 122


def test_reverting_a_resubmission_restores_the_first_return_and_a_superseded_one_is_refused(
    db_url, tmp_path
):
    setup(db_url, tmp_path, ["SUT"], SUTTON)
    first = write_return(tmp_path / "a", "sut-2020", FIRST)
    second = write_return(tmp_path / "b", "sut-2020", RESUBMITTED)
    assert import_903(db_url, "SUT", first, "2020-06-30", year=2020).exit_code == 0
    assert import_903(db_url, "SUT", second, "2020-09-01", year=2020).exit_code == 0
    assert days_in_care(db_url, "S1", *YEAR) == 75
    old, new = receipts(db_url)

    refused = run("revert", old["key"], "--reason", "x", "--db", db_url)
    assert refused.exit_code != 0
    assert refused.stderr.strip() == (
        f"error: import {old['key']} was superseded by the return received 2020-09-01 "
        f"({new['key']}, #{new['position']}); revert that one first"
    )

    # The resubmission's correction and two retractions, and its receipt, are retracted.
    result = run("revert", new["key"], "--reason", "sent in error", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert "4 events retracted" in result.stdout
    assert days_in_care(db_url, "S1", *YEAR) == 122  # the first return again
    assert days_in_care(db_url, "S2", *YEAR) == 82
    assert days_in_care(db_url, "S1", *YEAR, known_at=date.today() - timedelta(days=1)) == 75
    verified = run("verify", "--db", db_url)
    assert verified.exit_code == 0, verified.output

    # Then the first can go too.
    result = run("revert", f"#{old['position']}", "--reason", "wrong year", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert days_in_care(db_url, "S1", *YEAR) == 0
    assert days_in_care(db_url, "S2", *YEAR) == 0


def test_reverting_what_is_not_an_import_is_one_line(db_url, tmp_path):
    setup(db_url, tmp_path, ["SUT"], SUTTON)
    before = trail(db_url)
    for name in ("nope", "#1", "#99"):
        result = run("revert", name, "--reason", "x", "--db", db_url)
        assert result.exit_code != 0
        assert result.stderr.startswith(f"error: no SSDA903 import {name!r}: name it by")
        assert len(result.stderr.strip().splitlines()) == 1
    assert trail(db_url) == before
