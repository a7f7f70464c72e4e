"""liability / explain / diff on a small history worked by hand (examples/quickstart.jsonl).

Case C001 (Sutton, MST): first family meeting 2018-03-14, so tracking starts 17 weeks later on
2018-07-11 (T) and week k covers T+7k .. T+7k+6. The intervention ended 2018-07-20 after 128
days: tracked. One stay in care from 2019-01-07, first recorded as ending 2019-01-21 and
restated on 2019-09-02 as ending 2019-01-28. Sutton's care data covers up to 2019-03-31
(received 2019-05-20).

  2019-01-07 is T+180: week 25 (T+175..T+181); the stay as first recorded is in care to
  2019-01-20 = T+193, week 27 (T+189..T+195): weeks 25, 26, 27 in care. Restated, in care to
  2019-01-27 = T+200: week 28 (T+196..T+202) too.
  As of 2019-03-31 (T+263) the elapsed weeks are 0..36 (week 36 ends T+258; week 37 ends
  T+265 > T+263): 37 weeks, all verified (last day T+258 <= 2019-03-31).
"""

from __future__ import annotations

import json

from tests.helpers import run, write_lines


def _ledger(tmp_path, lines) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run("record", write_lines(tmp_path / "q.jsonl", lines), "--db", url).exit_code == 0
    return url


def _liability(url: str, *extra: str) -> dict:
    result = run("liability", "--db", url, "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_weeks_and_money_as_of_the_end_of_march_2019(tmp_path, quickstart_lines):
    url = _ledger(tmp_path, quickstart_lines)
    now = _liability(url, "--as-of", "2019-03-31")["totals"]
    # 37 elapsed weeks, 4 in care (25-28 as restated), 33 outcome at 214.00 = 7,062.00.
    assert now["weeks"] == {"outcome": 33, "in_care": 4, "unverified": 0, "pending": 67}
    assert now["owed"] == "7062.00"
    assert now["by_payer"] == {"MRT": "0.00", "SUT": "5577.00", "CBO": "1485.00"}
    # Days: T..T+263 is 264 days; in care 2019-01-07..2019-01-27 = 21 days.
    assert (now["days_in_care"], now["days_out_of_care"]) == (21, 243)


def test_as_known_before_the_restatement_one_more_week_paid(tmp_path, quickstart_lines):
    url = _ledger(tmp_path, quickstart_lines)
    then = _liability(url, "--as-of", "2019-03-31", "--known-at", "2019-09-01")["totals"]
    assert then["weeks"]["in_care"] == 3 and then["weeks"]["outcome"] == 34
    assert then["owed"] == "7276.00"  # 34 x 214.00


def test_before_the_care_data_arrived_the_weeks_were_provisional(tmp_path, quickstart_lines):
    url = _ledger(tmp_path, quickstart_lines)
    early = _liability(url, "--as-of", "2019-03-31", "--known-at", "2019-05-19")["totals"]
    # No care data and no stay known yet: all 37 elapsed weeks unverified, nothing owed.
    assert early["weeks"] == {"outcome": 0, "in_care": 0, "unverified": 37, "pending": 67}
    assert early["owed"] == "0.00" and early["provisional"] == "7918.00"  # 37 x 214.00


def test_diff_names_the_restatement_that_moved_a_week_into_care(tmp_path, quickstart_lines):
    url = _ledger(tmp_path, quickstart_lines)
    result = run(
        "diff",
        "--db",
        url,
        "--known-at",
        "2019-09-01",
        "--vs",
        "2019-09-02",
        "--as-of",
        "2019-03-31",
        "--format",
        "json",
    )
    data = json.loads(result.stdout)
    (change,) = data["changes"]
    assert (change["case"], change["week"], change["end"]) == ("C001", 28, "2019-01-29")
    assert change["before"]["status"] == "outcome" and change["after"]["status"] == "in_care"
    assert change["owed_change"] == "-214.00"
    assert [data["events"][r]["key"] for r in change["because"]] == ["fix-ep-C001-1-end"]
    assert data["total_change"] == "-214.00"
    assert data["by_payer"] == {"CBO": "-45.00", "SUT": "-169.00"}


def test_explain_shows_each_week_and_why(tmp_path, quickstart_lines):
    url = _ledger(tmp_path, quickstart_lines)
    data = json.loads(
        run(
            "explain",
            "C001",
            "--db",
            url,
            "--as-of",
            "2019-03-31",
            "--week",
            "28",
            "--format",
            "json",
        ).stdout
    )
    (week,) = data["weeks"]
    assert (week["start"], week["end"], week["status"]) == ("2019-01-23", "2019-01-29", "in_care")
    assert data["tracking_start"] == "2018-07-11" and data["tracking_end"] == "2020-07-07"
    keys = {data["events"][r]["key"] for r in week["because"]}
    assert {"ep-C001-1-start", "ep-C001-1-end", "fix-ep-C001-1-end"} <= keys
    table = run("explain", "C001", "--db", url, "--as-of", "2019-03-31")
    assert table.exit_code == 0 and "in_care" in table.stdout


def test_a_report_on_an_empty_ledger_says_so(tmp_path):
    """A ledger started by a record of nothing (a report no longer starts one itself)."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    (tmp_path / "nothing.jsonl").write_text("")
    assert run("record", str(tmp_path / "nothing.jsonl"), "--db", url).exit_code == 0
    result = run("liability", "--db", url)
    assert result.exit_code != 0
    assert "holds no contract yet" in result.stderr


def test_diff_against_everything_known_compares_week_by_week(tmp_path, quickstart_lines):
    """Without --vs the later side is everything known: still one week changed, not all."""
    url = _ledger(tmp_path, quickstart_lines)
    data = json.loads(run("diff", "--db", url, "--known-at", "2019-09-01", "--as-of",
                          "2019-03-31", "--format", "json").stdout)
    assert [(c["case"], c["week"]) for c in data["changes"]] == [("C001", 28)]
    assert data["vs"] is None and data["total_change"] == "-214.00"
