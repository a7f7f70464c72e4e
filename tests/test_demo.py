"""The reference contract (SPEC §12): the demo reproduces the published figures exactly."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest

from tests.helpers import run


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'ledger.db'}"
    result = run("demo", "--db", url)
    assert result.exit_code == 0, result.output
    return url


@pytest.fixture(scope="module")
def statement(demo_db: str) -> dict:
    result = run("liability", "--db", demo_db, "--as-of", "2023-12-31", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_demo_reproduces_the_published_outcome_figures(statement):
    totals = statement["totals"]
    assert totals["cases_tracked"] == 345
    assert totals["weeks"]["outcome"] == 30_533
    # 30,533 weeks at 214.00 = 6,534,062.00: 169.00 from the boroughs, 45.00 from CBO.
    assert totals["owed"] == "6534062.00"
    assert totals["by_payer"]["CBO"] == "1373985.00"
    boroughs = sum(Decimal(b["owed_by_borough"]) for b in statement["boroughs"])
    assert f"{boroughs:.2f}" == "5160077.00"
    assert totals["capped"] == "0.00"  # the founding five stay under their 5,061,888.00 cap
    assert Decimal("0.885") <= Decimal(totals["share_out_of_care"]) <= Decimal("0.895")
    # Every window has ended by the end of 2023 and all care data is in.
    assert totals["weeks"]["pending"] == totals["weeks"]["unverified"] == 0
    assert totals["weeks"]["outcome"] + totals["weeks"]["in_care"] == 345 * 104


def test_the_demo_has_410_service_starts_between_february_2018_and_march_2021(tmp_path):
    path = tmp_path / "demo.jsonl"
    assert run("demo", "--emit", str(path)).exit_code == 0
    events = [json.loads(line) for line in path.read_text().splitlines()]
    starts = sorted(e["effective"] for e in events if e["type"] == "FirstFamilyMeeting")
    assert len(starts) == 410
    assert "2018-02-01" <= starts[0] and starts[-1] <= "2021-03-31"
    acceded = {e["borough"]: e["effective"] for e in events if e["type"] == "BoroughAcceded"}
    assert acceded == {
        "BEX": "2018-02-01",
        "MRT": "2018-02-01",
        "NWM": "2018-02-01",
        "SUT": "2018-02-01",
        "TWH": "2018-02-01",
        "BDG": "2018-09-01",
        "RIC": "2019-04-01",
        "KIN": "2019-04-01",
        "HNS": "2019-08-01",
        "HRY": "2019-08-01",
    }
    variations = [e["variation"] for e in events if e["type"] == "VariationAgreed"]
    # The original award's baseline is recorded as variation "2017" (no term changes) on the
    # contract's date, so the four variations of SPEC §12 each carry their targets.
    assert variations == ["2017", "2019", "2021", "2022"]
    # Like real data: late returns, restated end dates and episodes recorded in error.
    kinds = {e["type"] for e in events}
    assert {"EventCorrected", "EventRetracted", "CareDataReceived"} <= kinds


def test_the_demo_is_the_same_bytes_every_run(tmp_path):
    digests = []
    for name in ("a.jsonl", "b.jsonl"):
        path = tmp_path / name
        run("demo", "--emit", str(path))
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_the_emitted_history_records_to_the_same_statement(tmp_path, statement):
    path = tmp_path / "demo.jsonl"
    run("demo", "--emit", str(path))
    url = f"sqlite:///{tmp_path / 'other.db'}"
    assert run("record", str(path), "--db", url).exit_code == 0
    again = json.loads(
        run("liability", "--db", url, "--as-of", "2023-12-31", "--format", "json").stdout
    )
    assert again == statement


def test_running_the_demo_twice_appends_nothing_new(demo_db):
    result = run("demo", "--db", demo_db)
    assert result.exit_code == 0
    assert "appended 0" in result.stdout


def test_the_statement_as_known_earlier_differs_by_later_care_data(demo_db, statement):
    """Known at 1 September 2023 the returns for the summer had not arrived: weeks unverified."""
    result = run(
        "liability",
        "--db",
        demo_db,
        "--as-of",
        "2023-12-31",
        "--known-at",
        "2023-09-01",
        "--format",
        "json",
    )
    earlier = json.loads(result.stdout)["totals"]
    assert earlier["weeks"]["unverified"] > 0
    assert Decimal(earlier["owed"]) < Decimal(statement["totals"]["owed"])
    # Every week is accounted for either way.
    assert sum(earlier["weeks"].values()) == sum(statement["totals"]["weeks"].values())


def test_scale_multiplies_the_cohort_and_keeps_the_shape(tmp_path):
    url = f"sqlite:///{tmp_path / 'x2.db'}"
    assert run("demo", "--db", url, "--scale", "2", "--format", "json").exit_code == 0
    doubled = json.loads(
        run("liability", "--db", url, "--as-of", "2023-12-31", "--format", "json").stdout
    )["totals"]
    assert doubled["cases_tracked"] == 690
    assert doubled["weeks"]["outcome"] == 61_066
    assert doubled["owed"] == "13068124.00"


@pytest.mark.postgres
def test_the_demo_on_postgres_gives_the_same_statement(pg_url, statement):
    assert run("demo", "--db", pg_url, "--format", "json").exit_code == 0
    on_pg = json.loads(
        run("liability", "--db", pg_url, "--as-of", "2023-12-31", "--format", "json").stdout
    )
    assert on_pg == statement


def test_explain_names_the_events_that_decided_each_week(demo_db):
    result = run("explain", "PLC0002", "--db", demo_db, "--as-of", "2023-12-31", "--format", "json")
    data = json.loads(result.stdout)
    assert len(data["weeks"]) == 104
    assert data["engagement"] == "tracked"
    outcome = [w for w in data["weeks"] if w["status"] == "outcome"]
    assert all(w["owed"] == {"borough": "169.00", "top_up": "45.00"} for w in outcome)
    for week in data["weeks"]:
        assert set(week["because"]) <= set(data["events"])
    in_care = [w for w in data["weeks"] if w["status"] == "in_care"]
    episode_refs = {ref for e in data["episodes"] for ref in e["because"]}
    assert in_care and all(set(w["because"]) & episode_refs for w in in_care)


def test_explain_of_one_week_and_an_unknown_case(demo_db):
    one = json.loads(
        run(
            "explain",
            "PLC0002",
            "--db",
            demo_db,
            "--as-of",
            "2023-12-31",
            "--week",
            "3",
            "--format",
            "json",
        ).stdout
    )
    assert [w["week"] for w in one["weeks"]] == [3]
    missing = run("explain", "NOPE", "--db", demo_db)
    assert missing.exit_code != 0
    assert "no case 'NOPE'" in missing.stderr


def test_the_fast_and_the_computed_statement_agree(demo_db):
    """Latest knowledge is read from the weeks read model; a known_at far in the future is
    computed from the facts: the same figures either way."""
    for as_of in ("2019-06-30", "2021-03-31", "2023-12-31"):
        fast = json.loads(
            run("liability", "--db", demo_db, "--as-of", as_of, "--format", "json").stdout
        )
        slow = json.loads(
            run(
                "liability",
                "--db",
                demo_db,
                "--as-of",
                as_of,
                "--known-at",
                "2099-12-31",
                "--format",
                "json",
            ).stdout
        )
        fast.pop("known_at"), slow.pop("known_at")
        assert fast == slow


def test_week_rule_what_if_recomputes_every_case(demo_db, statement):
    runs = json.loads(
        run(
            "liability",
            "--db",
            demo_db,
            "--as-of",
            "2023-12-31",
            "--week-rule",
            "consecutive_runs",
            "--format",
            "json",
        ).stdout
    )
    assert runs["week_rule"] == "consecutive_runs"
    # Short stays break fewer 7-day runs than fixed blocks: never fewer days out of care.
    assert runs["totals"]["days_out_of_care"] == statement["totals"]["days_out_of_care"]
    assert runs["totals"]["weeks"]["outcome"] != statement["totals"]["weeks"]["outcome"]


def test_liability_by_borough_case_and_payer_as_csv(demo_db):
    for by, first in (("borough", "borough"), ("case", "case"), ("payer", "payer")):
        out = run(
            "liability", "--db", demo_db, "--as-of", "2023-12-31", "--by", by, "--format", "csv"
        ).stdout.splitlines()
        assert out[0].split(",")[0] == first
    payers = run(
        "liability", "--db", demo_db, "--as-of", "2023-12-31", "--by", "payer", "--format", "csv"
    ).stdout.splitlines()
    assert any(row.startswith("CBO,1373985.00,0.00,0.00,plcip,2023-12-31,,") for row in payers)


def test_diff_names_the_late_care_data_that_changed_weeks(demo_db):
    result = run(
        "diff",
        "--db",
        demo_db,
        "--known-at",
        "2020-03-01",
        "--vs",
        "2020-07-01",
        "--as-of",
        "2020-03-31",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["changes"]
    before = Decimal(data["before"]["owed"])
    after = Decimal(data["after"]["owed"])
    assert Decimal(data["total_change"]) == after - before
    assert sum(Decimal(c["owed_change"]) for c in data["changes"]) == after - before
    for change in data["changes"]:
        assert change["because"], change  # every change names the events that made it
        for ref in change["because"]:
            recorded = data["events"][ref]["recorded_on"][:10]
            assert "2020-03-01" < recorded <= "2020-07-01"
