"""Claims, disputes, payments, reconciliation and statements (SPEC §7), worked by hand.

Longer than 500 lines because every test reads the same hand-worked history of case C001 set out
here, and splitting it would repeat that working in two places.

The history is examples/quickstart.jsonl (positions #1-#11) and the lines below (#12 on).

Case C001 (Sutton, MST): tracking starts T = 2018-07-11; week k covers T+7k .. T+7k+6, so
week k ends on T+7k+6. 2019-03-31 is T+263 (weeks 0-36 have ended: 37 weeks), 2019-06-30 is
T+354 (weeks 0-49: 50), 2019-09-30 is T+446 (weeks 0-62: 63), 2019-12-31 is T+538 (0-76).
A stay from 2019-01-07 (T+180, week 25), first recorded (#8, #9, 2019-05-20) as ending
2019-01-21 (in care to T+193, weeks 25-27), restated on 2019-09-02 (#11) as ending 2019-01-28
(to T+200: week 28 too). Sutton's care data covers to 2019-03-31 from 2019-05-20 (#10),
to 2019-06-30 from 2019-08-20, to 2019-09-30 from 2019-11-20.

Case C002 (Merton, FFT): first meeting 2018-04-02, so T = 2018-04-02 + 11 weeks = 2018-06-18;
2019-03-31 is T+286, so weeks 0-40 have ended (week 40 ends T+286): 41 weeks, never in care.
Merton's care data covers to 2019-03-31 from 2019-05-20 (and no further).

Prices: 214.00 a week, 169.00 from the borough, 45.00 from the top-up funder CBO.

At 2019-03-31:
- C001 as known on 2019-06-01 (before the restatement): 37 - 3 = 34 outcome weeks:
  SUT 34 x 169 = 5,746.00, CBO 34 x 45 = 1,530.00;
  as known now: 37 - 4 = 33 weeks: SUT 33 x 169 = 5,577.00, CBO 33 x 45 = 1,485.00.
- C002 either way: 41 weeks: MRT 41 x 169 = 6,929.00, CBO 41 x 45 = 1,845.00.

The claims, all for the quarter to 2019-03-31, submitted and recorded on 2019-06-01:
- SUT-2019Q1: C001 34 weeks 5,746.00 (right when made; the restatement lowers it): disputed
  by Sutton on 2019-06-15, the dispute rejected on 2019-08-01 at 5,746.00, paid 2019-08-15.
- MRT-2019Q1: C002 42 weeks 7,098.00 (= 42 x 169, one week too many: an over-claim):
  disputed by Merton, upheld on 2019-08-01 at 6,929.00, which Merton pays on 2019-08-15.
- CBO-2019Q1: C001 34 weeks 1,530.00 (right when made) and C002 40 weeks 1,800.00
  (= 40 x 45, one week short: an under-claim); CBO disputes the C001 line and pays 3,000.00
  on 2019-07-01.
- SUT-2019Q2 (to 2019-06-30, submitted 2019-09-15): C001 13 weeks 2,197.00.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from tests.helpers import line, run, write_lines

C = "plcip"


def _event(type: str, effective: str, key: str, recorded: str | None = None, **fields) -> str:
    return line(
        type=type, contract=C, effective=effective, recorded_on=recorded or effective, key=key,
        **fields,
    )


def _claim(name: str, payer: str, period_end: str, day: str, *lines: tuple) -> str:
    return _event(
        "ClaimSubmitted", day, f"claim-{name}", claim=name, payer=payer, period_end=period_end,
        lines=[{"case": case, "weeks": weeks, "amount": amount} for case, weeks, amount in lines],
    )


def _dispute(name: str, case: str, by: str, day: str) -> str:
    return _event(
        "ClaimLineDisputed", day, f"dispute-{name}-{case}", claim=name, case=case, raised_by=by,
        reason="weeks questioned",
    )


def _settle(name: str, case: str, outcome: str, amount: str, day: str) -> str:
    return _event(
        "DisputeResolved", day, f"settle-{name}-{case}", claim=name, case=case, outcome=outcome,
        amount=amount,
    )


def _pay(name: str, payer: str, amount: str, day: str, n: int = 1) -> str:
    return _event(
        "PaymentReceived", day, f"pay-{name}-{n}", claim=name, payer=payer, amount=amount
    )


def _cover(borough: str, until: str, day: str) -> str:
    return _event(
        "CareDataReceived", day, f"cover-{borough}-{until}", borough=borough, covers_until=until
    )


MERTON_CASE = [
    _event(
        "ReferralReceived", "2018-03-20", "ref-C002", case="C002", borough="MRT",
        child_ref="MRT-000456", date_of_birth="2005-01-10", behaviours=["offending"],
        in_care=False,
    ),
    _event("ReferralAccepted", "2018-03-23", "acc-C002", case="C002", intervention="FFT"),
    _event("FirstFamilyMeeting", "2018-04-02", "ffm-C002", "2018-04-03", case="C002"),
    _event("InterventionEnded", "2018-07-31", "end-C002", case="C002", reason="completed"),
    _cover("MRT", "2019-03-31", "2019-05-20"),
]
CLAIMS = [
    _claim("SUT-2019Q1", "SUT", "2019-03-31", "2019-06-01", ("C001", 34, "5746.00")),
    _claim("MRT-2019Q1", "MRT", "2019-03-31", "2019-06-01", ("C002", 42, "7098.00")),
    _claim(
        "CBO-2019Q1", "CBO", "2019-03-31", "2019-06-01",
        ("C001", 34, "1530.00"), ("C002", 40, "1800.00"),
    ),
    _dispute("SUT-2019Q1", "C001", "SUT", "2019-06-15"),
    _dispute("MRT-2019Q1", "C002", "MRT", "2019-06-15"),
    _dispute("CBO-2019Q1", "C001", "CBO", "2019-06-15"),
    _pay("CBO-2019Q1", "CBO", "3000.00", "2019-07-01"),
    _settle("SUT-2019Q1", "C001", "rejected", "5746.00", "2019-08-01"),
    _settle("MRT-2019Q1", "C002", "upheld", "6929.00", "2019-08-01"),
    _pay("SUT-2019Q1", "SUT", "5746.00", "2019-08-15"),
    _pay("MRT-2019Q1", "MRT", "6929.00", "2019-08-15"),
    _cover("SUT", "2019-06-30", "2019-08-20"),
    _claim("SUT-2019Q2", "SUT", "2019-06-30", "2019-09-15", ("C001", 13, "2197.00")),
    _cover("SUT", "2019-09-30", "2019-11-20"),
]


@pytest.fixture
def scenario(tmp_path, quickstart_lines) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _record(tmp_path, url, quickstart_lines + MERTON_CASE + CLAIMS)
    return url


def _record(tmp_path, url: str, lines: list[str]) -> None:
    result = run("record", write_lines(tmp_path / "claims.jsonl", lines), "--db", url)
    assert result.exit_code == 0, result.output


def _json(*args: str) -> dict:
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _reconcile(url: str, claim: str, *extra: str) -> dict:
    return _json("reconcile", claim, "--db", url, "--as-of", "2019-12-31", *extra)


def _statement(url: str, payer: str, *extra: str) -> dict:
    return _json("statement", payer, "--db", url, "--as-of", "2019-12-31", *extra)


def _lines(data: dict) -> dict[str, dict]:
    return {entry["case"]: entry for entry in data["lines"]}


# --- reconciliation: each difference classified, with exact amounts ---------------------------


def test_a_claim_right_when_made_changed_by_a_later_correction(scenario):
    """SUT-2019Q1: 34 weeks as known on 2019-06-01, 33 once the stay was restated (#11)."""
    data = _reconcile(scenario, "SUT-2019Q1")
    (c001,) = data["lines"]
    assert (c001["claimed"], c001["due_then"], c001["due_now"]) == ("5746.00", "5746.00", "5577.00")
    assert c001["difference"] == "later_correction"
    assert c001["because"] == ["#11"]
    assert data["events"]["#11"]["key"] == "fix-ep-C001-1-end"
    assert c001["weeks"] == {"claimed": 34, "due_then": 34, "due_now": 33}
    # Disputed by Sutton and rejected (the claim stood as known then); paid in full 5,746.00:
    # one week (169.00) is owed back to Sutton.
    assert (c001["dispute_outcome"], c001["disputed"], c001["paid"]) == ("rejected", "0.00",
                                                                        "5746.00")
    assert c001["adjustment"] == "-169.00"
    assert data["totals"] == {
        "claimed": "5746.00", "due_then": "5746.00", "due_now": "5577.00", "paid": "5746.00",
        "adjustment": "-169.00", "owed_by_payer": "0.00", "owed_to_payer": "169.00",
        "disputed": "0.00",
    }
    assert (data["claim"], data["payer"], data["period_end"]) == ("SUT-2019Q1", "SUT",
                                                                  "2019-03-31")


def test_an_over_claim_disputed_and_upheld(scenario):
    """MRT-2019Q1: 42 weeks claimed, 41 due (6,929.00) then and now: a claim error of 169.00.
    Upheld at 6,929.00 and paid that: nothing left either way."""
    (c002,) = _reconcile(scenario, "MRT-2019Q1")["lines"]
    assert (c002["claimed"], c002["due_then"], c002["due_now"]) == ("7098.00", "6929.00", "6929.00")
    assert c002["difference"] == "claim_error" and c002["because"] == []
    assert (c002["dispute_outcome"], c002["disputed"]) == ("upheld", "0.00")
    assert c002["dispute"]["settled_at"] == "6929.00"
    assert (c002["paid"], c002["adjustment"]) == ("6929.00", "0.00")


def test_an_under_claim_and_an_open_dispute_paid_last(scenario):
    """CBO-2019Q1 as of 2019-12-31. C002: 40 weeks claimed (1,800.00), 41 due (1,845.00):
    a claim error, 45.00 still owed by CBO. C001: 1,530.00 claimed and due then, 1,485.00 now
    (later correction). CBO paid 3,000.00 with the C001 line in dispute: the undisputed C002
    line is paid first up to its claim (1,800.00), C001 gets the rest (1,200.00)."""
    data = _reconcile(scenario, "CBO-2019Q1")
    lines = _lines(data)
    c001, c002 = lines["C001"], lines["C002"]
    assert (c002["claimed"], c002["due_then"], c002["due_now"], c002["paid"]) == (
        "1800.00", "1845.00", "1845.00", "1800.00")
    assert c002["difference"] == "claim_error" and c002["adjustment"] == "45.00"
    assert c002["dispute_outcome"] is None and c002["disputed"] == "0.00"
    assert (c001["claimed"], c001["due_then"], c001["due_now"], c001["paid"]) == (
        "1530.00", "1530.00", "1485.00", "1200.00")
    assert c001["difference"] == "later_correction" and c001["because"] == ["#11"]
    assert (c001["dispute_outcome"], c001["disputed"]) == ("open", "1530.00")
    assert c001["adjustment"] == "285.00"  # 1,485.00 - 1,200.00
    # 3,330.00 claimed, 3,375.00 due then, 3,330.00 due now, 3,000.00 paid: CBO owes 330.00.
    assert data["totals"] == {
        "claimed": "3330.00", "due_then": "3375.00", "due_now": "3330.00", "paid": "3000.00",
        "adjustment": "330.00", "owed_by_payer": "330.00", "owed_to_payer": "0.00",
        "disputed": "1530.00",
    }


def test_both_differences_on_one_line(tmp_path, quickstart_lines):
    """A CBO claim of 35 weeks (1,575.00) for C001: due then 34 weeks (1,530.00), now 33
    (1,485.00): a claim error and a later correction."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _record(tmp_path, url, quickstart_lines + [
        _claim("CBO-X", "CBO", "2019-03-31", "2019-06-01", ("C001", 35, "1575.00")),
    ])
    (c001,) = _reconcile(url, "CBO-X")["lines"]
    assert (c001["claimed"], c001["due_then"], c001["due_now"]) == ("1575.00", "1530.00", "1485.00")
    assert c001["difference"] == "both" and c001["adjustment"] == "1485.00"


def test_a_claim_covers_the_weeks_since_the_payers_previous_line(scenario):
    """SUT-2019Q2 asks for C001's weeks ending after 2019-03-31 up to 2019-06-30: weeks 37-49,
    13 outcome weeks = 2,197.00 (as known on 2019-09-15 and now). Not paid yet."""
    (c001,) = _reconcile(scenario, "SUT-2019Q2")["lines"]
    assert c001["weeks_after"] == "2019-03-31"
    assert (c001["claimed"], c001["due_then"], c001["due_now"], c001["paid"]) == (
        "2197.00", "2197.00", "2197.00", "0.00")
    assert c001["difference"] is None and c001["adjustment"] == "2197.00"


def test_as_of_before_payments_and_resolutions(scenario):
    """SUT-2019Q1 as of 2019-07-31: disputed (5,746.00 withheld), not paid yet, not resolved."""
    (c001,) = _reconcile(scenario, "SUT-2019Q1", "--as-of", "2019-07-31")["lines"]
    assert (c001["dispute_outcome"], c001["disputed"], c001["paid"]) == ("open", "5746.00",
                                                                        "0.00")
    assert c001["adjustment"] == "5577.00"


def test_due_now_as_known_at_an_earlier_date(scenario):
    """Known at 2019-08-31 the restatement of 2019-09-02 is not known: nothing moved."""
    (c001,) = _reconcile(scenario, "SUT-2019Q1", "--known-at", "2019-08-31")["lines"]
    assert c001["due_now"] == "5746.00" and c001["difference"] is None
    assert c001["adjustment"] == "0.00"


def test_an_unknown_claim_and_a_claim_not_yet_submitted_are_errors(scenario):
    missing = run("reconcile", "NOPE", "--db", scenario)
    assert missing.exit_code != 0 and "no claim 'NOPE'" in missing.stderr
    early = run("reconcile", "SUT-2019Q2", "--db", scenario, "--as-of", "2019-09-01")
    assert early.exit_code != 0
    assert "submitted on 2019-09-15, after 2019-09-01" in early.stderr
    unknown = run("statement", "XYZ", "--db", scenario)
    assert unknown.exit_code != 0 and "no payer 'XYZ'" in unknown.stderr


# --- statements of account ------------------------------------------------------------------


def test_a_boroughs_statement(scenario):
    """SUT at 2019-12-31. Q1: due 5,577.00, paid 5,746.00: -169.00. Q2: due 2,197.00, unpaid.
    Unclaimed: weeks 50-62 (ending 2019-07-02 .. 2019-09-24, verified to 2019-09-30), all out
    of care: 13 x 169 = 2,197.00; later weeks are unverified, not owed. Due 9,971.00 (59 outcome
    weeks of 0-62), paid 5,746.00: balance 4,225.00 = -169.00 + 2,197.00 + 2,197.00."""
    data = _statement(scenario, "SUT")
    claims = {c["claim"]: c for c in data["claims"]}
    assert {k: claims["SUT-2019Q1"][k] for k in ("claimed", "due", "paid", "adjustment")} == {
        "claimed": "5746.00", "due": "5577.00", "paid": "5746.00", "adjustment": "-169.00"}
    assert {k: claims["SUT-2019Q2"][k] for k in ("claimed", "due", "paid", "adjustment")} == {
        "claimed": "2197.00", "due": "2197.00", "paid": "0.00", "adjustment": "2197.00"}
    assert data["unclaimed"]["cases"] == [{"case": "C001", "due": "2197.00", "weeks": 13}]
    assert data["totals"] == {
        "claimed": "7943.00", "due": "9971.00", "paid": "5746.00", "disputed": "0.00",
        "adjustments": "2028.00", "unclaimed": "2197.00", "balance": "4225.00",
    }
    liability = _json("liability", "--db", scenario, "--as-of", "2019-12-31")
    assert liability["totals"]["by_payer"]["SUT"] == data["totals"]["due"]


def test_the_top_up_funders_statement(scenario):
    """CBO at 2019-12-31: CBO-2019Q1 due 3,330.00, paid 3,000.00, 1,530.00 in dispute: 330.00.
    Unclaimed: C001's weeks 37-62 out of care (26) x 45 = 1,170.00 (C002's later weeks are not
    verified). Due 4,500.00 = 59 x 45 + 41 x 45; balance 1,500.00 = 330.00 + 1,170.00."""
    data = _statement(scenario, "CBO")
    assert data["totals"] == {
        "claimed": "3330.00", "due": "4500.00", "paid": "3000.00", "disputed": "1530.00",
        "adjustments": "330.00", "unclaimed": "1170.00", "balance": "1500.00",
    }


def test_a_statement_as_known_at_an_earlier_date(scenario):
    """SUT at 2019-12-31 known at 2019-08-31: Q2 not yet claimed, the restatement not known,
    care data to 2019-06-30. Weeks 0-49 with 3 in care: 47 x 169 = 7,943.00 due; Q1 covers
    5,746.00 of it (paid), the rest (weeks 37-49: 2,197.00) is unclaimed."""
    data = _statement(scenario, "SUT", "--known-at", "2019-08-31")
    assert [c["claim"] for c in data["claims"]] == ["SUT-2019Q1"]
    assert data["totals"]["due"] == "7943.00" and data["totals"]["balance"] == "2197.00"
    assert data["claims"][0]["adjustment"] == "0.00"
    liability = _json(
        "liability", "--db", scenario, "--as-of", "2019-12-31", "--known-at", "2019-08-31"
    )
    assert liability["totals"]["by_payer"]["SUT"] == "7943.00"


# --- formats ---------------------------------------------------------------------------------


def test_csv_has_a_header_and_one_row_per_line_in_plain_numbers(scenario):
    out = run("reconcile", "CBO-2019Q1", "--db", scenario, "--as-of", "2019-12-31",
              "--format", "csv").stdout.splitlines()
    assert out[0].startswith("case,weeks_claimed,claimed,weeks_due_then,due_then,")
    # Each row ends with its context (contract, as_of, known_at, log position: #1-#30).
    assert out[1:] == [
        "C001,34,1530.00,34,1530.00,33,1485.00,1200.00,1530.00,open,later_correction,285.00,#11"
        ",plcip,2019-12-31,,30",
        "C002,40,1800.00,41,1845.00,41,1845.00,1800.00,0.00,,claim_error,45.00,"
        ",plcip,2019-12-31,,30",
        # The total row: weeks 34 + 40, 34 + 41, 33 + 41; money the two lines added up.
        "total,74,3330.00,75,3375.00,74,3330.00,3000.00,1530.00,,,330.00,"
        ",plcip,2019-12-31,,30",
    ]
    statement = run("statement", "SUT", "--db", scenario, "--as-of", "2019-12-31",
                    "--format", "csv").stdout
    context = ",plcip,2019-12-31,,30"
    assert statement.splitlines() == [
        "claim,period_end,submitted,claimed,due,paid,disputed,adjustment"
        ",contract,as_of,known_at,log_position",
        "SUT-2019Q1,2019-03-31,2019-06-01,5746.00,5577.00,5746.00,0.00,-169.00" + context,
        "SUT-2019Q2,2019-06-30,2019-09-15,2197.00,2197.00,0.00,0.00,2197.00" + context,
        "unclaimed,,,0.00,2197.00,0.00,0.00,2197.00" + context,
        # The total: claimed 5,746.00 + 2,197.00, due 5,577.00 + 2,197.00 + 2,197.00, paid
        # 5,746.00; the adjustments add up to the balance, -169.00 + 2,197.00 + 2,197.00.
        "total,,,7943.00,9971.00,5746.00,0.00,4225.00" + context,
    ]
    assert "\x1b" not in statement and "[" not in statement


def test_tables_for_people_end_with_the_adjustment_each_way(scenario):
    table = run("reconcile", "SUT-2019Q1", "--db", scenario, "--as-of", "2019-12-31")
    assert table.exit_code == 0
    assert "5,746.00" in table.stdout
    assert "SUT owes PFP 0.00; PFP owes SUT 169.00; net -169.00" in table.stdout
    assert "fix-ep-C001-1-end" in table.stdout
    statement = run("statement", "SUT", "--db", scenario, "--as-of", "2019-12-31")
    assert statement.exit_code == 0
    assert "balance 4,225.00 owed by SUT" in statement.stdout


def test_the_same_reconciliation_on_sqlite_and_postgres(db_url, tmp_path, quickstart_lines):
    _record(tmp_path, db_url, quickstart_lines + MERTON_CASE + CLAIMS)
    data = _reconcile(db_url, "CBO-2019Q1")
    assert data["totals"]["adjustment"] == "330.00"
    assert [(x["case"], x["difference"], x["adjustment"]) for x in data["lines"]] == [
        ("C001", "later_correction", "285.00"), ("C002", "claim_error", "45.00")]
    assert _statement(db_url, "SUT")["totals"]["balance"] == "4225.00"


# --- the rules a claim's events must keep -------------------------------------------------


BAD = {
    "payment against an unknown claim": (
        _pay("NOPE", "SUT", "10.00", "2019-08-01"), "claim", "claim 'NOPE' has not been submitted"
    ),
    "payment by another payer": (
        _pay("SUT-2019Q1", "MRT", "10.00", "2019-08-01", 9), "payer",
        "claim 'SUT-2019Q1' was made to 'SUT', not 'MRT'",
    ),
    "dispute of a line not in the claim": (
        _dispute("SUT-2019Q1", "C002", "SUT", "2019-08-01"), "case",
        "claim 'SUT-2019Q1' has no line for case 'C002'",
    ),
    "a second resolution": (
        _settle("SUT-2019Q1", "C001", "upheld", "1.00", "2019-09-01").replace(
            "settle-SUT", "again-SUT"
        ),
        "case", "already resolved",
    ),
    "a resolution without a dispute": (
        _settle("SUT-2019Q2", "C001", "upheld", "1.00", "2019-10-01"), "case", "is not disputed"
    ),
    "a second dispute of a line": (
        _dispute("SUT-2019Q1", "C001", "SUT", "2019-08-01").replace("dispute-", "again-"),
        "case", "already disputed",
    ),
    "an unknown case": (
        _claim("SUT-X", "SUT", "2019-03-31", "2019-06-01", ("C001", 1, "169.00"),
               ("C999", 1, "169.00")),
        "lines.1.case", "no case 'C999' in contract 'plcip'",
    ),
    "a claim without lines": (_claim("SUT-Y", "SUT", "2019-03-31", "2019-06-01"), "lines",
                              "claim 'SUT-Y' has no lines"),
    "a claim id used twice": (
        _claim("SUT-2019Q1", "SUT", "2019-03-31", "2019-06-01", ("C001", 1, "1.00")).replace(
            "claim-SUT", "other-SUT"
        ),
        "claim", "already been submitted",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_claim_event_that_breaks_a_rule_is_named_and_nothing_is_written(name, scenario,
                                                                          tmp_path):
    bad, field, message = BAD[name]
    path = write_lines(tmp_path / "bad.jsonl", [_pay("SUT-2019Q2", "SUT", "1.00", "2019-10-01"),
                                                 bad])
    result = run("record", path, "--db", scenario)
    assert result.exit_code != 0
    assert f"bad.jsonl:2: {field}: " in result.stderr and message in result.stderr, result.stderr
    assert "pay-SUT-2019Q2" not in run("events", "--db", scenario, "--format", "csv").stdout


def test_a_claim_may_name_a_case_recorded_earlier_in_the_same_file(tmp_path, quickstart_lines):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _record(tmp_path, url, quickstart_lines + MERTON_CASE + [
        _claim("MRT-1", "MRT", "2019-03-31", "2019-06-01", ("C002", 41, "6929.00")),
    ])
    (c002,) = _reconcile(url, "MRT-1")["lines"]
    assert c002["difference"] is None and c002["due_now"] == "6929.00"


def test_money_is_decimal_throughout(scenario):
    from soc_ledger.ledger.service import Ledger
    from soc_ledger.projections import claims, latest

    with Ledger(scenario) as ledger:
        ledger.follow(latest.catch_up, latest.NAME)
        result = claims.reconcile(ledger.engine, C, "CBO-2019Q1", date(2019, 12, 31))
    for entry in result.lines:
        for value in (entry.claimed, entry.due_then.amount, entry.due_now.amount, entry.paid,
                      entry.adjustment):
            assert isinstance(value, Decimal)


# --- properties -----------------------------------------------------------------------------
#
# 1. For every claim, its lines' adjustments add up to due now - paid (and the lines' paid to
#    what was paid on the claim).
# 2. A payer's statement balance is the sum of its claims' adjustments plus what it owes that
#    no claim line has covered, and its due is what `liability` gives that payer.
# Checked on the pure functions over random contracts (odd terms, binding caps, corrections,
# claims right and wrong, payments short and over, disputes open and settled), and through the
# store on random recorded histories.


def _claims_on(draw, h, first_day: date, cases: list[str], payers: list[str]) -> None:
    """Random claims of `h`'s cases, with payments, disputes and settlements."""
    from hypothesis import strategies as st

    from tests.outcome_builders import days

    for n in range(draw(st.integers(0, 5))):
        name = f"K{n}"
        payer = draw(st.sampled_from(payers))
        period_end = days(first_day, draw(st.integers(0, 60) | st.integers(0, 200)))
        submitted = days(period_end, draw(st.integers(0, 60)))
        chosen = draw(st.lists(st.sampled_from(cases), min_size=1, max_size=len(cases),
                               unique=True))
        lines = [
            {"case": case, "weeks": draw(st.integers(0, 20)),
             "amount": str(Decimal(draw(st.integers(0, 600_000))) / 100)}
            for case in chosen
        ]
        h.add("ClaimSubmitted", submitted, submitted, stream=h.contract, key=name, claim=name,
              payer=payer, period_end=str(period_end), lines=lines)
        for case in chosen:
            if draw(st.integers(0, 2)) == 0:
                raised = days(submitted, draw(st.integers(0, 60)))
                h.add("ClaimLineDisputed", raised, raised, stream=h.contract, claim=name,
                      case=case, raised_by=payer, reason="questioned")
                if draw(st.booleans()):
                    settled = days(raised, draw(st.integers(0, 90)))
                    h.add("DisputeResolved", settled, settled, stream=h.contract, claim=name,
                          case=case, outcome=draw(st.sampled_from(["upheld", "rejected",
                                                                   "adjusted"])),
                          amount=str(Decimal(draw(st.integers(0, 600_000))) / 100))
        for _ in range(draw(st.integers(0, 2))):
            paid = days(submitted, draw(st.integers(0, 120)))
            h.add("PaymentReceived", paid, paid, stream=h.contract, claim=name, payer=payer,
                  amount=str(Decimal(draw(st.integers(0, 900_000))) / 100))


def _pure_scenarios():
    from hypothesis import strategies as st

    from tests.outcome_builders import days
    from tests.test_outcomes_property import BASE, BOROUGHS, histories

    @st.composite
    def scenarios(draw):
        h, as_of, known_at = draw(histories())
        cases = sorted({r.event.case_id for r in h.records if r.event.case_id})
        _claims_on(draw, h, BASE, cases, [*BOROUGHS, "CBO", "CBO", "ZZZ"])
        # News after the claims: a stay reported late, care data arriving late.
        if draw(st.booleans()):
            start = days(BASE, draw(st.integers(0, 150)))
            h.episode(draw(st.sampled_from(cases)), "late", start,
                      days(start, draw(st.integers(1, 20))),
                      recorded=days(BASE, draw(st.integers(30, 300))))
        if draw(st.booleans()):
            h.coverage(draw(st.sampled_from(BOROUGHS)), days(BASE, draw(st.integers(0, 300))),
                       recorded=days(BASE, draw(st.integers(30, 300))))
        return h, days(BASE, draw(st.integers(100, 450))), known_at

    return scenarios()


def _direct_share(h_facts, as_of: date, case: str, payer: str) -> Decimal:
    """What `liability(as_of)` gives `payer` for `case`: the reference for `Owed`."""
    from soc_ledger.domain.outcomes.facts import (
        cases_from_facts,
        contract_from_facts,
        coverage_from_facts,
    )
    from soc_ledger.domain.outcomes.liability import liability

    contract = contract_from_facts("plcip", h_facts)
    cases = cases_from_facts(h_facts, "plcip")
    result = liability(contract, cases, coverage_from_facts(h_facts, "plcip"), as_of)
    weeks = result.weeks_of(case)
    borough = cases[case].borough if case in cases else None
    return sum((w.borough_amount for w in weeks if payer == borough), Decimal("0.00")) + sum(
        (w.top_up_amount for w in weeks if payer == result.top_up_funder), Decimal("0.00")
    )


def test_properties_on_the_pure_functions():
    from hypothesis import HealthCheck, given, settings

    from soc_ledger.domain.claims.claims import Windows, claims_from_facts, on_ledger
    from soc_ledger.domain.claims.owed import Owed
    from soc_ledger.domain.claims.reconciliation import reconcile_claim
    from soc_ledger.domain.claims.statement import statement_of
    from soc_ledger.domain.knowledge import KnownAt, known_facts
    from soc_ledger.domain.outcomes.facts import (
        cases_from_facts,
        contract_from_facts,
        coverage_from_facts,
    )
    from soc_ledger.domain.outcomes.liability import liability

    def owed_at(facts, horizon):
        return Owed(contract_from_facts("plcip", facts), cases_from_facts(facts, "plcip"),
                    coverage_from_facts(facts, "plcip"), horizon)

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_pure_scenarios())
    def check(scenario):
        h, as_of, known_at = scenario
        facts = h.facts(known_at)
        claims = claims_from_facts(facts, "plcip")
        ledger = on_ledger(claims.values(), as_of)
        horizon = max([as_of] + [c.period_end for c in ledger])
        statement_owed = owed_at(facts, horizon)
        adjustments: dict[str, Decimal] = {}
        for claim in ledger:
            instant = h.records[claim.position - 1].recorded_on
            then_facts = known_facts(h.records, KnownAt(instant))
            windows = Windows.of(ledger, claim.payer)
            r = reconcile_claim(
                "plcip", claim, windows, owed_at(then_facts, claim.period_end),
                owed_at(facts, claim.period_end), as_of, instant,
            )
            # Property 1, exactly.
            assert sum((x.adjustment for x in r.lines), Decimal(0)) == r.adjustment
            assert r.adjustment == r.total("due_now") - r.paid
            assert sum((x.paid for x in r.lines), Decimal(0)) == claim.paid(as_of)
            adjustments[claim.payer] = adjustments.get(claim.payer, Decimal(0)) + r.adjustment
            # Each line's due is liability's share at period_end less at the previous line's.
            for x in r.lines:
                for reading, due in ((then_facts, x.due_then), (facts, x.due_now)):
                    expected = _direct_share(reading, claim.period_end, x.case, claim.payer)
                    if x.after is not None:
                        expected -= _direct_share(reading, x.after, x.case, claim.payer)
                    assert due.amount == expected, (claim.claim, x.case)
        result = liability(contract_from_facts("plcip", facts), cases_from_facts(facts, "plcip"),
                           coverage_from_facts(facts, "plcip"), as_of)
        for payer in ("A", "B", "CBO", "ZZZ"):
            s = statement_of("plcip", payer, claims.values(), statement_owed, as_of)
            # Property 2, exactly; and the statement's due is liability's for the payer.
            assert s.balance == adjustments.get(payer, Decimal(0)) + s.unclaimed_amount
            assert s.due == result.by_payer.get(payer, Decimal("0.00"))
            assert s.balance == s.due - s.total("paid")

    check()


def _recorded_scenarios():
    from datetime import time, timedelta

    from hypothesis import strategies as st

    from tests.history_strategies import LATEST, History, Line, histories, midnight, plus

    def stamp(moment) -> str:
        return moment.date().isoformat() if moment.time() == time.min else moment.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )

    @st.composite
    def scenarios(draw):
        history = draw(histories())
        referred: dict[str, tuple] = {}  # case -> (recorded, borough)
        for entry in history.lines:
            event = json.loads(entry.text)
            if event["type"] == "ReferralReceived":
                referred[event["case"]] = (entry.recorded, event["borough"])
        extra: list[Line] = []

        def add(recorded, rank, **event):
            event = {"contract": C, "effective": recorded.date().isoformat(),
                     "recorded_on": stamp(recorded), **event}
            extra.append(Line(recorded, rank, 10_000 + len(extra), json.dumps(event)))

        def later(moment, most: int):
            return min(moment + timedelta(days=draw(st.integers(0, most))), midnight(LATEST))

        payers = sorted({b for _, b in referred.values()}) + ["CBO", "CBO"]
        for n in range(draw(st.integers(1, 6))):
            name = f"K{n}"
            payer = draw(st.sampled_from(payers))
            # Mostly the payer's own cases (a borough pays for its own), sometimes any.
            own = [c for c, (_, b) in referred.items() if payer in ("CBO", b)]
            chosen = draw(st.lists(st.sampled_from(sorted(own if draw(st.integers(0, 4)) else
                                                          referred)),
                                   min_size=1, max_size=4, unique=True))
            period_end = plus(date(2018, 6, 30), draw(st.integers(0, 1200)))
            recorded = max([later(midnight(period_end), 200)] + [referred[c][0] for c in chosen])
            add(recorded, (5, n, 0), type="ClaimSubmitted", key=name, claim=name, payer=payer,
                period_end=period_end.isoformat(),
                lines=[{"case": c, "weeks": draw(st.integers(0, 30)),
                        "amount": str(Decimal(draw(st.integers(0, 900_000))) / 100)}
                       for c in chosen])
            for i, case in enumerate(chosen):
                if draw(st.integers(0, 2)) == 0:
                    raised = later(recorded, 90)
                    add(raised, (5, n, 1 + i), type="ClaimLineDisputed", claim=name, case=case,
                        raised_by=payer, reason="questioned")
                    if draw(st.booleans()):
                        add(later(raised, 200), (5, n, 10 + i), type="DisputeResolved",
                            claim=name, case=case,
                            outcome=draw(st.sampled_from(["upheld", "rejected", "adjusted"])),
                            amount=str(Decimal(draw(st.integers(0, 900_000))) / 100))
            for j in range(draw(st.integers(0, 2))):
                add(later(recorded, 200), (5, n, 20 + j), type="PaymentReceived", claim=name,
                    payer=payer, amount=str(Decimal(draw(st.integers(0, 900_000))) / 100))
        lines = sorted([*history.lines, *extra], key=lambda x: (x.recorded, x.rank, x.seq))
        days = sorted({x.recorded.date() for x in lines})
        as_of = plus(date(2018, 6, 30), draw(st.integers(400, 2200)))
        known_at = draw(st.one_of(st.none(), st.none(), st.sampled_from(days)))
        return History(tuple(lines)), as_of, known_at

    return scenarios()


def test_properties_through_the_store():
    """The same properties on random recorded histories (binding caps, late and restated care
    data), through the query functions the commands use; the statements agree with
    `liability` (its read-model fast path when nothing limits the knowledge)."""
    import tempfile

    from hypothesis import HealthCheck, given, settings

    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.ledger.service import Ledger
    from soc_ledger.projections import claims, latest, queries

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_recorded_scenarios())
    def check(scenario):
        history, as_of, known_at = scenario
        known = KnownAt.on(known_at)
        with tempfile.TemporaryDirectory() as where, Ledger(f"sqlite:///{where}/l.db") as ledger:
            ledger.record_lines(history.texts, "generated")
            ledger.follow(latest.catch_up, latest.NAME)
            reconciled = claims.reconcile_many(ledger.engine, C, as_of, known)
            statements = claims.statements(ledger.engine, C, as_of, known)
            result = queries.liability_at(ledger.engine, C, as_of, known)
        adjustments: dict[str, Decimal] = {}
        for r in reconciled:
            assert sum((x.adjustment for x in r.lines), Decimal(0)) == r.adjustment
            assert r.adjustment == r.total("due_now") - r.paid
            payer = r.claim.payer
            adjustments[payer] = adjustments.get(payer, Decimal(0)) + r.adjustment
        for s in statements:
            assert s.balance == adjustments.get(s.payer, Decimal(0)) + s.unclaimed_amount
            assert s.due == result.by_payer.get(s.payer, Decimal("0.00")), s.payer
        assert sum((s.due for s in statements), Decimal(0)) == result.totals.owed

    check()
