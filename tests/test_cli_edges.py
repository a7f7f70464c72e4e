"""The CLI's rough edges of issue 14, each checked against a figure worked out by hand.

The histories are the quickstart's and tests/test_claims.py's (its module docstring works
them out): C001 (Sutton) earns 169.00 a week from the borough and 45.00 from the top-up funder
CBO; CBO-2019Q1 claims C001 1,530.00 and C002 1,800.00.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from soc_ledger.domain import events as ev
from soc_ledger.domain.claims.claims import Claim
from tests.helpers import run

C = "plcip"


def _ok(*args: str, env: dict[str, str] | None = None):
    from click.testing import CliRunner

    from soc_ledger.cli import main

    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


# --- 7. an over-payment of a line settled lower stays on that line ----------------------------


def _cbo_claim(settled_at: str | None, paid: str) -> Claim:
    """CBO-2019Q1 (C001 1,530.00, C002 1,800.00), C001 disputed on 2019-06-15 and perhaps
    settled on 2019-08-01, one payment on 2019-09-01."""
    common = {"contract": C, "claim": "CBO-2019Q1", "case": "C001"}
    disputes = (
        ev.ClaimLineDisputed(
            type="ClaimLineDisputed",
            effective=date(2019, 6, 15),
            raised_by="CBO",
            reason="weeks questioned",
            **common,
        ),
    )
    resolutions = (
        ()
        if settled_at is None
        else (
            ev.DisputeResolved(
                type="DisputeResolved",
                effective=date(2019, 8, 1),
                outcome="upheld",
                amount=Decimal(settled_at),
                **common,
            ),
        )
    )
    return Claim(
        claim="CBO-2019Q1",
        payer="CBO",
        period_end=date(2019, 3, 31),
        submitted=date(2019, 6, 1),
        position=1,
        lines=(
            ev.ClaimLine(case="C001", weeks=34, amount=Decimal("1530.00")),
            ev.ClaimLine(case="C002", weeks=40, amount=Decimal("1800.00")),
        ),
        disputes=disputes,
        resolutions=resolutions,
        payments=(
            ev.PaymentReceived(
                type="PaymentReceived",
                contract=C,
                effective=date(2019, 9, 1),
                claim="CBO-2019Q1",
                payer="CBO",
                amount=Decimal(paid),
            ),
        ),
    )


def test_an_over_payment_of_a_line_settled_lower_stays_on_that_line():
    """C001 settled (upheld) at 1,300.00; CBO pays the claim as made, 3,330.00. C001 asks
    1,300.00 and C002 1,800.00: 3,100.00; the 230.00 beyond is what C001 was over-paid
    (1,530.00 - 1,300.00), so C001 is paid 1,530.00 and C002 1,800.00 (not 2,030.00 on the
    claim's last line, an unrelated case)."""
    paid = _cbo_claim("1300.00", "3330.00").allocate(date(2019, 12, 31))
    assert paid == {"C001": Decimal("1530.00"), "C002": Decimal("1800.00")}


def test_an_over_payment_beyond_the_claim_still_goes_on_the_last_line():
    """Paid 3,400.00 with C001 settled at 1,300.00: C001 takes back its 230.00 (1,530.00),
    C002 its 1,800.00, and the 70.00 beyond the whole claim (3,330.00) goes on the last line:
    C002 1,870.00. The lines still add up to the payment."""
    paid = _cbo_claim("1300.00", "3400.00").allocate(date(2019, 12, 31))
    assert paid == {"C001": Decimal("1530.00"), "C002": Decimal("1870.00")}
    assert sum(paid.values()) == Decimal("3400.00")


def test_a_short_payment_with_a_settled_line_is_unchanged():
    """Paid 3,000.00, C001 settled at 1,300.00: C001 1,300.00 first (claim order), C002 the
    rest, 1,700.00; nothing is over-paid."""
    paid = _cbo_claim("1300.00", "3000.00").allocate(date(2019, 12, 31))
    assert paid == {"C001": Decimal("1300.00"), "C002": Decimal("1700.00")}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('edges-demo') / 'ledger.db'}"
    _ok("demo", "--db", url, "--format", "json")
    return url


# --- 8. --plot draws in the format its suffix names, or refuses ----------------------------------


@pytest.mark.parametrize(
    ("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")]
)
def test_plot_writes_the_format_its_suffix_names(demo_db, tmp_path, suffix, magic):
    path = tmp_path / f"picture{suffix}"
    _ok("forecast", "--db", demo_db, "--as-of", "2021-06-30", "--plot", str(path))
    assert path.read_bytes().startswith(magic)


@pytest.mark.parametrize("command", [["liability"], ["finances"], ["forecast"]])
def test_plot_refuses_another_suffix_before_any_work(tmp_path, command):
    """No ledger at all: the suffix is refused first, in one line, and nothing is created."""
    path = tmp_path / "picture.jpg"
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = run(*command, "--db", url, "--plot", str(path))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --plot {path}: give a file ending in .png, .svg or .pdf (not .jpg)"
    ]
    assert list(tmp_path.iterdir()) == []


# --- the claims history of tests/test_claims.py ------------------------------------------------


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The quickstart (#1-#11), Merton's case (#12-#16) and the claims (#17-#30)."""
    from tests.helpers import write_lines
    from tests.test_claims import CLAIMS, MERTON_CASE

    folder = tmp_path_factory.mktemp("edges-claims")
    quickstart = (Path(__file__).parent.parent / "examples" / "quickstart.jsonl").read_text()
    quickstart = quickstart.splitlines()
    url = f"sqlite:///{folder / 'ledger.db'}"
    _ok("record", write_lines(folder / "all.jsonl", quickstart + MERTON_CASE + CLAIMS), "--db", url)
    return url


def _csv(*args: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_ok(*args, "--format", "csv").stdout)))


def _json(*args: str) -> dict:
    return json.loads(_ok(*args, "--format", "json").stdout)


def _money(value: str) -> Decimal:
    return Decimal(value)


# --- 1. numeric, summable CSV: a column per share, total rows ------------------------------------


def test_explain_csv_has_a_column_per_share_and_a_case_total(scenario):
    """C001 at 2019-03-31: weeks 0-36 have ended, 33 of them outcome weeks as known now (weeks
    25-28 in care): 33 x 169.00 = 5,577.00 from Sutton, 33 x 45.00 = 1,485.00 from CBO,
    7,062.00 in all. Every cell is a plain number; the total row adds the weeks up."""
    rows = _csv("explain", "C001", "--db", scenario, "--as-of", "2019-03-31")
    weeks, total = rows[:-1], rows[-1]
    assert total["week"] == "total"
    assert (total["owed_by_borough"], total["owed_by_top_up"], total["owed"]) == (
        "5577.00",
        "1485.00",
        "7062.00",
    )
    for name in ("owed_by_borough", "owed_by_top_up", "owed", "capped"):
        assert sum(_money(r[name]) for r in weeks) == _money(total[name])
    outcome = [r for r in weeks if r["status"] == "outcome"]
    assert len(outcome) == 33
    assert {(r["owed_by_borough"], r["owed_by_top_up"], r["owed"]) for r in outcome} == {
        ("169.00", "45.00", "214.00")
    }
    assert all("+" not in value for r in rows for value in r.values())


def test_liability_csv_rows_add_up_to_a_total_row(scenario):
    """At 2019-03-31: SUT's C001 33 weeks (5,577.00 + 1,485.00 = 7,062.00), MRT's C002 41
    weeks (41 x 169.00 = 6,929.00 + 41 x 45.00 = 1,845.00 = 8,774.00): 15,836.00 in all, of
    which CBO owes 3,330.00."""
    args = ("liability", "--db", scenario, "--as-of", "2019-03-31", "--by")
    boroughs = _csv(*args, "borough")
    assert [
        (r["borough"], r["owed_by_borough"], r["owed_by_top_up"], r["owed"]) for r in boroughs
    ] == [
        ("MRT", "6929.00", "1845.00", "8774.00"),
        ("SUT", "5577.00", "1485.00", "7062.00"),
        ("total", "12506.00", "3330.00", "15836.00"),
    ]
    payers = _csv(*args, "payer")
    assert [(r["payer"], r["owed"]) for r in payers] == [
        ("MRT", "6929.00"),
        ("SUT", "5577.00"),
        ("CBO", "3330.00"),
        ("total", "15836.00"),
    ]
    cases = _csv(*args, "case")
    assert cases[-1]["case"] == "total" and cases[-1]["owed"] == "15836.00"
    assert sum(_money(r["owed"]) for r in cases[:-1]) == _money("15836.00")


def test_statement_csv_total_row_is_the_balance(scenario):
    """SUT at 2019-12-31: SUT-2019Q1 due 5,577.00 paid 5,746.00 (-169.00), SUT-2019Q2 due
    2,197.00 paid nothing, and C001's weeks to 2019-12-31 not yet claimed."""
    rows = _csv("statement", "SUT", "--db", scenario, "--as-of", "2019-12-31")
    data = _json("statement", "SUT", "--db", scenario, "--as-of", "2019-12-31")
    total = rows[-1]
    assert total["claim"] == "total"
    assert total["adjustment"] == data["totals"]["balance"]
    for name in ("claimed", "due", "paid", "disputed", "adjustment"):
        assert sum(_money(r[name]) for r in rows[:-1]) == _money(total[name])
    assert total["paid"] == "5746.00" and total["claimed"] == "7943.00"


# --- 2. one meaning per name: owed is the total, the shares are named -------------------------


def test_owed_is_the_total_on_every_table_and_csv_row_and_json_adds_the_named_shares(scenario):
    args = ("liability", "--db", scenario, "--as-of", "2019-03-31")
    data = _json(*args)
    sut = next(b for b in data["boroughs"] if b["borough"] == "SUT")
    # JSON's `owed` is the total on a borough row too (169.00 + 45.00 a week), as on a case
    # row and the contract; the borough's own bill is `owed_by_borough`.
    assert (sut["owed"], sut["owed_by_borough"], sut["owed_by_top_up"], sut["owed_total"]) == (
        "7062.00",
        "5577.00",
        "1485.00",
        "7062.00",
    )
    c001 = next(c for c in data["cases"] if c["case"] == "C001")
    assert (c001["owed"], c001["owed_by_borough"], c001["owed_by_top_up"]) == (
        "7062.00",
        "5577.00",
        "1485.00",
    )
    assert (data["totals"]["owed"], data["totals"]["owed_by_borough"]) == ("15836.00", "12506.00")
    table = _ok(*args, "--by", "borough").stdout
    header = next(line for line in table.splitlines() if "owed_by_borough" in line)
    names = [c.strip() for c in header.strip("┃").split("┃")]
    start = names.index("owed_by_borough")
    assert names[start : start + 3] == ["owed_by_borough", "owed_by_top_up", "owed"]
    assert "7,062.00" in table and "8,774.00" in table
    # CSV: every share of every figure, owed = owed_by_borough + owed_by_top_up on each row.
    for row in _csv(*args, "--by", "borough"):
        for figure in ("owed", "provisional", "capped"):
            assert _money(row[figure]) == _money(row[f"{figure}_by_borough"]) + _money(
                row[f"{figure}_by_top_up"]
            )


# --- 3. tables never cut a figure -------------------------------------------------------------


def _money_cells(rows: list[dict[str, str]]) -> set[str]:
    """Every money figure of a CSV (2 places), as a table shows it (thousands commas)."""
    import re

    return {
        f"{Decimal(v):,.2f}"
        for r in rows
        for v in r.values()
        if v and re.fullmatch(r"-?\d+\.\d\d", v)
    }


@pytest.mark.parametrize(
    "args",
    [
        ("liability", "--as-of", "2023-12-31", "--by", "borough"),
        ("liability", "--as-of", "2023-12-31"),
        ("reconcile", "BDG-2021Q2"),
        ("reconcile", "--payer", "SUT", "--as-of", "2023-12-31"),
        ("statement", "CBO", "--as-of", "2023-12-31"),
    ],
)
def test_an_80_column_table_shows_every_figure_whole(demo_db, args):
    """The table's rows are the CSV's (for --payer, the JSON's claims): each money figure must
    be a whole cell of the table drawn 80 columns wide (a cut one would read `2,…`)."""
    out = _ok(*args, "--db", demo_db, env={"COLUMNS": "80"}).stdout
    # The tables' lines (a sentence under a table is left to the terminal to wrap).
    lines = [line for line in out.splitlines() if any(c in line for c in "│┃━─")]
    assert max(len(line) for line in lines) <= 80
    assert "…" not in out
    cells = {cell.strip() for line in lines for cell in line.replace("┃", "│").split("│")}
    if "--payer" in args:  # its table has a row per claim (the CSV one per line)
        data = _json(*args, "--db", demo_db)
        rows = [{k: str(v) for k, v in c["totals"].items()} for c in data["claims"]]
        figures = _money_cells([*rows, {k: str(v) for k, v in data["totals"].items()}])
    else:
        figures = _money_cells(_csv(*args, "--db", demo_db))
    assert figures and not figures - cells


# --- 4. events: a correction's reason, target and changes; --from/--to --------------------------


def test_events_show_a_corrections_target_reason_and_changes(scenario):
    (row,) = _csv("events", "--db", scenario, "--type", "EventCorrected")
    assert (row["position"], row["key"], row["target"]) == (
        "11",
        "fix-ep-C001-1-end",
        "ep-C001-1-end",
    )
    assert row["reason"].startswith("903 resubmission: stay ended a week late")
    assert json.loads(row["changes"]) == {"effective": "2019-01-28"}
    table = _ok("events", "--db", scenario, "--type", "EventCorrected").stdout
    assert "effective=2019-01-28" in table and "ep-C001-1-end" in table


def test_events_filter_by_effective_date(scenario):
    """Disputes (2019-06-15 x 3) and payments (2019-07-01, 2019-08-15 x 2) between 2019-06-15
    and 2019-07-01, both days included: the three disputes and CBO's payment."""
    rows = _csv(
        "events",
        "--db",
        scenario,
        "--type",
        "ClaimLineDisputed",
        "--type",
        "PaymentReceived",
        "--from",
        "2019-06-15",
        "--to",
        "2019-07-01",
    )
    assert [(r["type"], r["effective"]) for r in rows] == [
        ("ClaimLineDisputed", "2019-06-15")
    ] * 3 + [("PaymentReceived", "2019-07-01")]
    later = _csv("events", "--db", scenario, "--from", "2019-11-20")
    assert [r["key"] for r in later] == ["cover-SUT-2019-09-30"]
    early = _csv("events", "--db", scenario, "--to", "2018-02-01")
    assert [r["position"] for r in early] == ["1", "2", "3"]


def test_a_bad_events_date_is_a_clear_error(scenario):
    bad = run("events", "--db", scenario, "--from", "2019-02-30")
    assert bad.exit_code == 2 and "--from" in bad.stderr and "2019-02-30" in bad.stderr
    backwards = run("events", "--db", scenario, "--from", "2019-07-01", "--to", "2019-06-01")
    assert backwards.exit_code == 1
    assert backwards.stderr.strip() == "error: --from 2019-07-01 is after --to 2019-06-01"


# --- 5. reconcile --payer -----------------------------------------------------------------------


def test_reconcile_a_payers_claims_in_one_command(scenario):
    """SUT at 2019-12-31: SUT-2019Q1 claimed 5,746.00, due now 5,577.00, paid 5,746.00
    (-169.00); SUT-2019Q2 claimed and due 2,197.00, unpaid (+2,197.00). Together: claimed
    7,943.00, due now 7,774.00, paid 5,746.00, adjustment 2,028.00 (2,197.00 owed by SUT,
    169.00 owed back to it)."""
    args = ("reconcile", "--payer", "SUT", "--db", scenario, "--as-of", "2019-12-31")
    data = _json(*args)
    assert [c["claim"] for c in data["claims"]] == ["SUT-2019Q1", "SUT-2019Q2"]
    single = _json("reconcile", "SUT-2019Q1", "--db", scenario, "--as-of", "2019-12-31")
    assert (data["claims"][0]["lines"], data["claims"][0]["totals"]) == (
        single["lines"],
        single["totals"],
    )
    assert data["totals"] == {
        "claims": 2,
        "lines": 2,
        "claimed": "7943.00",
        "due_then": "7943.00",
        "due_now": "7774.00",
        "paid": "5746.00",
        "disputed": "0.00",
        "adjustment": "2028.00",
        "owed_by_payer": "2197.00",
        "owed_to_payer": "169.00",
    }
    rows = _csv(*args)
    assert [(r["claim"], r["case"], r["adjustment"]) for r in rows] == [
        ("SUT-2019Q1", "C001", "-169.00"),
        ("SUT-2019Q2", "C001", "2197.00"),
        ("total", "", "2028.00"),
    ]
    table = _ok(*args).stdout
    assert "SUT-2019Q1" in table and "2,028.00" in table


def test_reconcile_takes_one_claim_or_a_payer(scenario):
    for args in ((), ("SUT-2019Q1", "--payer", "SUT")):
        result = run("reconcile", *args, "--db", scenario)
        assert result.exit_code == 1
        assert result.stderr.strip() == "error: reconcile: give one CLAIM or --payer P"
    unknown = run("reconcile", "--payer", "XXX", "--db", scenario)
    assert unknown.exit_code == 1 and "no payer 'XXX'" in unknown.stderr


def test_a_payers_reconciled_claims_and_unclaimed_weeks_make_its_statement(demo_db):
    """Two roads to the same money: the due now of every claim to TWH (reconcile) and the
    weeks no claim covers make what the statement says TWH owes."""
    args = ("--db", demo_db, "--as-of", "2023-12-31")
    reconciled = _json("reconcile", "--payer", "TWH", *args)["totals"]
    statement = _json("statement", "TWH", *args)["totals"]
    assert _money(reconciled["due_now"]) + _money(statement["unclaimed"]) == _money(
        statement["due"]
    )
    assert _money(reconciled["paid"]) == _money(statement["paid"])


# --- 6. diff names the claims and payers a change moves --------------------------------------


def test_diff_names_the_claims_and_payers_a_change_moves(scenario):
    """Known at 2019-06-30 vs everything, as of 2019-12-31. The restatement of 2019-09-02 (#11)
    puts C001's week 28 (ending 2019-01-27) in care: Sutton's share -169.00, CBO's -45.00,
    in SUT-2019Q1's and CBO-2019Q1's window (to 2019-03-31), both made on 2019-06-01. Sutton's
    care data to 2019-09-30 verifies C001's later weeks: those move Sutton's and CBO's accounts
    but no claim made by 2019-06-30 (SUT-2019Q2 was made on 2019-09-15)."""
    data = _json("diff", "--db", scenario, "--known-at", "2019-06-30", "--as-of", "2019-12-31")
    assert data["claims_moved"] == [
        {
            "claim": "SUT-2019Q1",
            "payer": "SUT",
            "period_end": "2019-03-31",
            "change": "-169.00",
            "lines": [{"case": "C001", "change": "-169.00"}],
        },
        {
            "claim": "CBO-2019Q1",
            "payer": "CBO",
            "period_end": "2019-03-31",
            "change": "-45.00",
            "lines": [{"case": "C001", "change": "-45.00"}],
        },
    ]
    assert data["payers_moved"] == ["CBO", "SUT"]
    week28 = next(c for c in data["changes"] if c["case"] == "C001" and c["week"] == 28)
    assert (week28["payers"], week28["claims"]) == (["SUT", "CBO"], ["SUT-2019Q1", "CBO-2019Q1"])
    later = [c for c in data["changes"] if c["end"] > "2019-03-31"]
    assert later and all(c["claims"] == [] for c in later)
    rows = _csv("diff", "--db", scenario, "--known-at", "2019-06-30", "--as-of", "2019-12-31")
    assert rows[-1]["case"] == "total" and rows[-1]["owed_change"] == data["total_change"]
    assert sum(_money(r["owed_change"]) for r in rows[:-1]) == _money(data["total_change"])


def test_the_claims_a_diff_moves_are_those_whose_due_moved(demo_db):
    """Through `reconcile`'s road: a claim made by 2020-06-30 moved between then and now by
    exactly its due now less its due as known on 2020-06-30."""
    diff = _json("diff", "--db", demo_db, "--known-at", "2020-06-30", "--as-of", "2021-06-30")
    moved = {m["claim"]: _money(m["change"]) for m in diff["claims_moved"]}
    assert moved
    args = ("--db", demo_db, "--as-of", "2021-06-30")
    for payer in ("SUT", "CBO"):  # a borough and the top-up funder, both moved
        then = _json("reconcile", "--payer", payer, *args, "--known-at", "2020-06-30")
        now = {c["claim"]: c for c in _json("reconcile", "--payer", payer, *args)["claims"]}
        for claim in then["claims"]:
            change = _money(now[claim["claim"]]["totals"]["due_now"]) - _money(
                claim["totals"]["due_now"]
            )
            assert moved.get(claim["claim"], Decimal("0.00")) == change, claim["claim"]


# --- 9. every CSV and JSON report states what it was read at ----------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("liability", "--as-of", "2019-12-31"),
        ("explain", "C001", "--as-of", "2019-12-31"),
        ("reconcile", "CBO-2019Q1", "--as-of", "2019-12-31"),
        ("reconcile", "--payer", "CBO", "--as-of", "2019-12-31"),
        ("statement", "SUT", "--as-of", "2019-12-31"),
        ("diff", "--known-at", "2019-06-30", "--as-of", "2019-12-31"),
        ("returns", "--as-of", "2019-12-31"),
        ("finances", "--as-of", "2019-12-31"),
        ("forecast", "--as-of", "2019-12-31"),
    ],
)
def test_every_report_states_its_contract_as_of_known_at_and_log_position(scenario, args):
    """30 events recorded (11 + 5 + 14): the log position every report was read at."""
    data = _json(*args, "--db", scenario)
    known = "2019-06-30" if args[0] == "diff" else None
    assert (data["contract"], data["as_of"], data["known_at"], data["log_position"]) == (
        "plcip",
        "2019-12-31",
        known,
        30,
    )
    rows = _csv(*args, "--db", scenario)
    assert rows
    assert {(r["contract"], r["as_of"], r["known_at"], r["log_position"]) for r in rows} == {
        ("plcip", "2019-12-31", known or "", "30")
    }


def test_known_at_is_stated_and_events_csv_carries_the_head(scenario):
    data = _json("liability", "--db", scenario, "--as-of", "2019-12-31", "--known-at", "2019-06-30")
    assert (data["known_at"], data["log_position"]) == ("2019-06-30", 30)
    rows = _csv("events", "--db", scenario, "--type", "ContractAgreed")
    assert [(r["contract"], r["log_position"]) for r in rows] == [("plcip", "30")]
