"""Issue 13, hostile input: every line is read strictly and once, and corrections obey the rules
of the events they correct through any chain. Each refusal is `file:line: field: what` with
nothing written; on SQLite and PostgreSQL.

- integers within 2^53 - 1 (one beyond 64 bits used to break the chain for good);
- no string read as a number or a flag, ASCII digits only, no `_`;
- printable ids, no control or bidi characters in ids or text (NUL was a PostgreSQL traceback);
- nesting and line length bounded (a 255-deep list in `changes` was a traceback);
- a correction may not change `case` or `target`, and a correction of a correction is checked
  on the event it finally reads as: a raw child id or a full birth date never reaches the store,
  and `verify` looks into nested corrections for them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, select

from soc_ledger.domain.values import MAX_INTEGER
from soc_ledger.ledger.location import Location
from soc_ledger.ledger.parsing import MAX_DEPTH, MAX_LINE
from tests.conftest import EXAMPLES
from tests.helpers import line, run, trail, write_lines

C = "plcip"


def record(db: str, tmp_path: Path, lines: list[str], name: str = "input.jsonl"):
    return run("record", write_lines(tmp_path / name, lines), "--db", db)


@pytest.fixture
def store(db_url: str, tmp_path: Path, quickstart_lines: list[str]) -> str:
    result = record(db_url, tmp_path, quickstart_lines, "quickstart.jsonl")
    assert result.exit_code == 0, result.output
    return db_url


def everything_stored(db: str) -> str:
    """Every row of every table of the store, as text (the log, the index, the read models)."""
    engine = create_engine(Location.parse(db).sqlalchemy_url())
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            rows = [
                row for table in meta.sorted_tables for row in conn.execute(select(table))
            ]
    finally:
        engine.dispose()
    return "\n".join(
        bytes(v).decode("utf-8", "replace") if isinstance(v, bytes | memoryview) else str(v)
        for row in rows
        for v in row
    )


def refused(result, path: str, expected: dict[int, str]) -> None:
    """Exit 1, each expected line refused naming its field, and nothing written."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("error: ") and "nothing was written" in lines[-1], result.stderr
    for number, field in expected.items():
        prefix = f"{path}:{number}: {field}: "
        assert any(ln.startswith(prefix) for ln in lines), (prefix, result.stderr)
    for text in lines[:-1]:
        assert text.startswith(f"{path}:"), text


def verified(db: str) -> dict:
    result = run("verify", "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def variation(key: str, referrals: object, **changes: object) -> str:
    return line(
        type="VariationAgreed", contract=C, effective="2018-04-01", recorded_on="2019-10-01",
        key=key, variation=key, description="targets restated", term_changes=changes, caps=[],
        targets={"referrals": referrals, "tracked": 1, "outcome_weeks": 1,
                 "outcome_payments": {"low": "1.00", "medium": "2.00", "high": "3.00"},
                 "investment": "1.00"},
    )


def referral(case: str, **over: object) -> str:
    fields: dict[str, object] = dict(
        type="ReferralReceived", contract=C, effective="2018-03-05", recorded_on="2018-03-05",
        key=f"ref-{case}", case=case, borough="SUT", child_ref=f"SUT-{case}",
        date_of_birth="2005-06-14", behaviours=["offending"], in_care=False,
    )
    fields.update(over)
    return line(**fields)


def cost(amount: object, **over: object) -> str:
    fields: dict[str, object] = dict(
        type="CostIncurred", contract=C, effective="2018-09-30", recorded_on="2018-10-01",
        category="delivery", amount=amount,
    )
    fields.update(over)
    return line(**fields)


def correction(key: str, target: str, changes: dict, recorded_on: str = "2019-10-01") -> str:
    return line(
        type="EventCorrected", contract=C, effective=recorded_on, recorded_on=recorded_on,
        key=key, target=target, changes=changes, reason="restated",
    )


# --- integers -------------------------------------------------------------------------------


def test_an_integer_beyond_the_stores_range_is_refused_and_the_ledger_stays_whole(
    store, tmp_path
):
    path = str(tmp_path / "big.jsonl")
    result = record(store, tmp_path, [
        variation("var-big", 2**64),
        variation("var-edge", MAX_INTEGER + 1),
        variation("var-negative", -(2**63) - 1),
    ], "big.jsonl")
    refused(result, path, {1: "targets.referrals", 2: "targets.referrals",
                           3: "targets.referrals"})
    assert len(trail(store)) == 11
    # The largest integer kept exactly is accepted, and the contract records on afterwards.
    assert record(store, tmp_path, [variation("var-max", MAX_INTEGER)]).exit_code == 0
    later = record(store, tmp_path, [cost("10.00")], "later.jsonl")
    assert later.exit_code == 0, later.output
    assert verified(store)["ok"]


# --- no coercion ----------------------------------------------------------------------------

LAX = [
    (referral("C101", in_care="yes"), "in_care"),
    (referral("C102", in_care=1), "in_care"),
    (variation("var-weeks", 10, tracking_weeks="104"), "term_changes.tracking_weeks"),
    ('{"type": "VariationAgreed", "contract": "plcip", "effective": "2018-04-01", '
     '"recorded_on": "2019-10-01", "key": "var-float", "variation": "f", "description": "d", '
     '"term_changes": {"tracking_weeks": 104.0}, "caps": [], "targets": {"referrals": 1, '
     '"tracked": 1, "outcome_weeks": 1, "outcome_payments": {"low": "1", "medium": "2", '
     '"high": "3"}, "investment": "1"}}', "term_changes.tracking_weeks"),
    (variation("var-age", 10, age_at_referral={"min": True, "max": 16}),
     "term_changes.age_at_referral.min"),
    (cost("1_000.00"), "amount"),
    (cost("\u0661\u0662\u0663.00"), "amount"),  # Arabic-Indic digits
    (cost("\uff11\uff12.00"), "amount"),  # fullwidth digits
    (cost(" 12.00"), "amount"),
    (cost("+12.00"), "amount"),
    (cost(True), "amount"),
    (line(type="BalanceAsserted", contract=C, effective="2019-10-01", as_of="2019-03-31",
          scope="contract", figure="owed", value="7_276.00", by="AUDITOR"), "value"),
    (line(type="UnitCostsSet", contract=C, effective="2019-08-01", weekly_cost={},
          placement_mix={}, counterfactual_rate="\u0660.5"), "counterfactual_rate"),
    (referral("C103", date_of_birth="\u0662\u0660\u0660\u0665-06-14"), "date_of_birth"),
    (line(type="BoosterSession", contract=C, effective="2018-05-01",
          recorded_on="\u0662\u0660\u0661\u0668-05-02T00:00:00Z", case="C001"), "recorded_on"),
    (line(type="ClaimSubmitted", contract=C, effective="2019-10-01", claim="Q1", payer="SUT",
          period_end="2019-06-30", lines=[{"case": "C001", "weeks": "4", "amount": "856.00"}]),
     "lines.0.weeks"),
]


def test_no_string_is_read_as_a_number_or_a_flag_and_digits_are_ascii(store, tmp_path):
    before = trail(store)
    result = record(store, tmp_path, [text for text, _ in LAX], "lax.jsonl")
    refused(result, str(tmp_path / "lax.jsonl"),
            {n: field for n, (_, field) in enumerate(LAX, start=1)})
    assert trail(store) == before


def test_money_is_still_a_json_string_or_number_read_exactly(store, tmp_path):
    lines = [cost("1000.00"), cost(1000, key="int"), cost("1000", key="str-int"),
             '{"type": "CostIncurred", "contract": "plcip", "effective": "2018-09-30", '
             '"recorded_on": "2018-10-01", "category": "delivery", "amount": 1000.50}']
    result = record(store, tmp_path, lines, "money.jsonl")
    assert result.exit_code == 0, result.output
    amounts = [e["event"]["amount"] for e in trail(store) if e["type"] == "CostIncurred"]
    assert amounts == ["1000.00", "1000.00", "1000.00", "1000.50"]


# --- ids and text ---------------------------------------------------------------------------

UNPRINTABLE = [
    (line(type="BoosterSession", contract=C, effective="2018-05-01", key="boost\u0000",
          case="C001"), "key"),
    (line(type="BoosterSession", contract=C, effective="2018-05-01", case="C0\u000001"), "case"),
    (referral("C104", child_ref="SUT-\u0000123"), "child_ref"),
    (referral("C105", borough="SUT\u202e"), "borough"),
    (referral("C\u2066106"), "case"),
    (line(type="BoosterSession", contract=C, effective="2018-05-01", key="boost\u200b",
          case="C001"), "key"),
    (line(type="BoosterSession", contract=C, effective="2018-05-01", key="boost\n2",
          case="C001"), "key"),
    (line(type="BoosterSession", contract=C, effective="2018-05-01", case="C001",
          source="panel\u0000minutes"), "source"),
    (line(type="ReferralDeclined", contract=C, effective="2018-05-01", case="C001",
          reason="declined \u202egnissim"), "reason"),
    (line(type="BoosterSession", contract="pl\u0000cip", effective="2018-05-01", case="C001"),
     "contract"),
]


def test_ids_and_codes_are_printable_and_text_holds_no_nul_or_bidi_control(store, tmp_path):
    before = trail(store)
    result = record(store, tmp_path, [text for text, _ in UNPRINTABLE], "ids.jsonl")
    refused(result, str(tmp_path / "ids.jsonl"),
            {n: field for n, (_, field) in enumerate(UNPRINTABLE, start=1)})
    assert trail(store) == before


def test_text_may_still_hold_line_breaks_and_any_script(store, tmp_path):
    lines = [line(type="BoosterSession", contract=C, effective="2018-05-01", case="C001",
                  key="b-text", source="réunion\tnotes\npage 2 — 会議 🙂")]
    assert record(store, tmp_path, lines).exit_code == 0


# --- shape ----------------------------------------------------------------------------------


def test_deep_nesting_and_long_lines_are_refused_not_a_traceback(store, tmp_path):
    deep: list = []
    for _ in range(254):
        deep = [deep]
    just_too_deep: list = []
    for _ in range(MAX_DEPTH - 1):
        just_too_deep = [just_too_deep]
    lines = [
        correction("fix-deep", "ref-C001", {"behaviours": deep}),
        correction("fix-deep-2", "ref-C001", {"behaviours": just_too_deep}),
        "[" * 5000 + "]" * 5000,
        cost("1.00", source="x" * MAX_LINE),
    ]
    path = str(tmp_path / "shape.jsonl")
    result = record(store, tmp_path, lines, "shape.jsonl")
    refused(result, path, {1: "changes.behaviours", 2: "changes.behaviours", 3: "(line)",
                           4: "(line)"})
    assert f"nested more than {MAX_DEPTH} levels deep" in result.stderr
    assert len(trail(store)) == 11


# --- corrections ----------------------------------------------------------------------------


def test_a_correction_cannot_move_an_event_to_another_case_or_target(store, tmp_path):
    before = trail(store)
    lines = [
        correction("move", "ref-C001", {"case": "NO-SUCH-CASE"}),
        correction("retarget", "fix-ep-C001-1-end", {"target": "ep-C001-1-start"}),
        correction("deep-move", "fix-ep-C001-1-end", {"changes": {"case": "C002"}}),
    ]
    path = str(tmp_path / "moves.jsonl")
    result = record(store, tmp_path, lines, "moves.jsonl")
    refused(result, path, {1: "changes.case", 2: "changes.target", 3: "changes.changes.case"})
    assert trail(store) == before


def test_a_correction_of_a_correction_is_checked_on_the_event_it_finally_corrects(
    store, tmp_path
):
    assert record(store, tmp_path, [
        correction("fix-behaviours", "ref-C001", {"behaviours": ["offending"]}),
    ]).exit_code == 0
    before = trail(store)
    lines = [
        correction("bad-flag", "fix-behaviours", {"changes": {"in_care": "yes"}}),
        correction("bad-field", "fix-behaviours", {"changes": {"colour": "red"}}),
        correction("too-old", "fix-behaviours", {"changes": {"date_of_birth": "1990-01-01"}}),
        correction("bad-date", "fix-ep-C001-1-end", {"changes": {"effective": "2019-02-30"}}),
    ]
    path = str(tmp_path / "nested.jsonl")
    result = record(store, tmp_path, lines, "nested.jsonl")
    refused(result, path, {1: "changes.changes.in_care", 2: "changes.changes.colour",
                           4: "changes.changes.effective"})
    assert f"{path}:3: " in result.stderr  # the age rule, on the corrected reading
    assert trail(store) == before


def test_no_chain_of_corrections_writes_a_child_id_or_birth_date_in_clear(store, tmp_path):
    lines = [
        correction("fix-behaviours", "ref-C001", {"behaviours": ["offending"]}),
        correction("fix-fix", "fix-behaviours",
                   {"changes": {"child_ref": "SUT-000999", "date_of_birth": "2005-07-01"}},
                   recorded_on="2019-10-02"),
        correction("fix-fix-fix", "fix-fix",
                   {"changes": {"changes": {"child_ref": "SUT-000777"}}},
                   recorded_on="2019-10-03"),
        referral("C106", child_ref="hmac-sha256:SUT-000555"),
    ]
    result = record(store, tmp_path, lines)
    assert result.exit_code == 0, result.output
    stored = everything_stored(store)
    for clear in ("SUT-000999", "2005-07-01", "SUT-000777", "SUT-000555"):
        assert clear not in stored
    key = os.environ["SOC_LEDGER_KEY"].encode()

    def pseudonym(child: str) -> str:
        return "hmac-sha256:" + hmac.new(key, child.encode(), hashlib.sha256).hexdigest()

    events = {e["event"].get("key"): e["event"] for e in trail(store)}
    assert events["fix-fix"]["changes"]["changes"] == {
        "child_ref": pseudonym("SUT-000999"), "date_of_birth": "2005-07"
    }
    assert events["fix-fix-fix"]["changes"]["changes"]["changes"] == {
        "child_ref": pseudonym("SUT-000777")
    }
    assert events["ref-C106"]["child_ref"] == pseudonym("hmac-sha256:SUT-000555")
    report = verified(store)
    assert all(c["ok"] for c in report["checks"])


def test_verify_finds_a_child_id_in_clear_in_a_correction_of_a_correction(
    store, tmp_path, monkeypatch
):
    """A store written when a correction of a correction went unchecked (here: a pseudonymiser
    that lets the id through): `verify`'s privacy check looks into nested changes and names it."""
    from soc_ledger.ledger.privacy import Pseudonymiser

    assert record(store, tmp_path, [
        correction("fix-behaviours", "ref-C001", {"behaviours": ["offending"]}),
    ]).exit_code == 0
    monkeypatch.setattr(Pseudonymiser, "pseudonym", lambda self, child_ref: child_ref)
    assert record(store, tmp_path, [
        correction("fix-fix", "fix-behaviours", {"changes": {"child_ref": "SUT-000999"}}),
    ], "old.jsonl").exit_code == 0
    monkeypatch.undo()
    events = {e["event"].get("key"): e["position"] for e in trail(store)}
    result = run("verify", "--db", store, "--format", "json")
    assert result.exit_code == 1
    privacy = next(c for c in json.loads(result.stdout)["checks"] if c["check"] == "privacy")
    assert {(f["position"], f["message"]) for f in privacy["findings"]} == {
        (events["fix-fix"], "a child_ref is stored in clear, not as a pseudonym"),
        (events["ref-C001"], "a child_ref is read (as corrected) in clear, not as a pseudonym"),
    }


def test_an_over_long_line_is_refused_by_its_number_without_holding_it(tmp_path) -> None:
    """A line past MAX_LINE is cut as it is read (the rest dropped, not kept in memory) and
    refused as too long; the lines around it are still read and checked."""
    import io

    from soc_ledger.ledger.parsing import MAX_LINE, bounded_lines

    huge = '{"type": "' + "x" * (3 * MAX_LINE) + '"}'
    lines = list(bounded_lines(io.StringIO(f"first\n{huge}\nthird\n")))
    assert lines[0] == "first" and lines[2] == "third" and len(lines) == 3
    assert len(lines[1]) == MAX_LINE + 1  # cut, and still over the bound


def test_a_file_with_an_over_long_line_writes_nothing(tmp_path, sqlite_url) -> None:
    from click.testing import CliRunner

    from soc_ledger.cli import main
    from soc_ledger.ledger.parsing import MAX_LINE

    quickstart = (EXAMPLES / "quickstart.jsonl").read_text()
    path = tmp_path / "long.jsonl"
    path.write_text(quickstart + "[" * 10 + " " * (2 * MAX_LINE) + "\n")
    result = CliRunner().invoke(main, ["record", str(path), "--db", sqlite_url])
    assert result.exit_code == 1
    assert f"{path}:12: (line): longer than {MAX_LINE:,} characters" in result.output
