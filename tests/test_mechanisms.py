"""Issue 16 through the CLI: mechanisms as terms at `record` (refusals name file, line and field
and write nothing), the three reference contracts of `demo --contract`, and what every report
command does on them. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from tests.conftest import EXAMPLES
from tests.helpers import line, run, trail, write_lines
from tests.test_strict_input import refused

D = Decimal


def agreed(contract: str = "bucks", **terms) -> str:
    base = json.loads((EXAMPLES / "quickstart.jsonl").read_text().splitlines()[0])
    base["contract"] = contract
    base["terms"].update(terms)
    base["caps"] = []
    return json.dumps(base)


BONUS = {
    "weights": {"home": "60", "school": "40"},
    "bands": [{"from": "0", "payment": "0"}, {"from": "80", "payment": "1"}],
    "annual_value": "400000.00",
    "max_percent_per_year": "2",
    "max_per_year": "60000.00",
}


def scored(area: str, score, quarter_end: str = "2018-03-31", key: str | None = None) -> str:
    return line(type="QualityScored", contract="bucks", effective="2018-04-15",
                recorded_on="2018-04-15", key=key or f"{area}-{quarter_end}", area=area,
                quarter_end=quarter_end, score=score)  # fmt: skip


def test_an_unknown_mechanism_or_one_without_its_terms_is_refused_at_record(db_url, tmp_path):
    # What the line's shape refuses (read before any rule is checked) ...
    shapes = [
        agreed("a", mechanism=["weeks_out_of_care", "pay_by_magic"]),
        agreed("d", mechanism=[]),
    ]
    path = write_lines(tmp_path / "shapes.jsonl", shapes)
    refused(
        run("record", path, "--db", db_url), path, {1: "terms.mechanism.1", 2: "terms.mechanism"}
    )
    # ... and what the contract's rules refuse.
    rules = [
        agreed("b", mechanism=["quality_bonus"]),
        agreed("c", mechanism=["quality_bonus"], quality_bonus={**BONUS, "weights": {"x": "90"}}),
        agreed("e", mechanism=["care_days_saved", "care_days_saved"]),
    ]
    path = write_lines(tmp_path / "rules.jsonl", rules)
    result = run("record", path, "--db", db_url)
    refused(result, path, {1: "terms.quality_bonus", 2: "terms.quality_bonus.weights",
                           3: "terms.mechanism"})  # fmt: skip
    assert trail(db_url) == []


def test_a_score_outside_0_to_100_is_refused_and_nothing_written(db_url, tmp_path):
    first = write_lines(tmp_path / "agreed.jsonl", [agreed(mechanism=["quality_bonus"],
                                                          quality_bonus=BONUS)])  # fmt: skip
    assert run("record", first, "--db", db_url).exit_code == 0
    before = trail(db_url)
    lines = [
        scored("home", "101"),
        scored("school", "-1"),
        scored("home", "50", quarter_end="2018-13-31"),
        line(
            type="QualityPublished",
            contract="bucks",
            effective="2018-04-15",
            quarter_end="2018-03-31",
            weighted_total="100.5",
            payment="0",
        ),  # fmt: skip
        scored("school", "80"),  # fine, but nothing of a refused file is written
    ]
    path = write_lines(tmp_path / "scores.jsonl", lines)
    result = run("record", path, "--db", db_url)
    refused(result, path, {1: "score", 2: "score", 3: "quarter_end", 4: "weighted_total"})
    path = write_lines(tmp_path / "areas.jsonl", [scored("school", "80"), scored("garden", "50")])
    refused(run("record", path, "--db", db_url), path, {2: "area"})  # not a weighted area
    assert trail(db_url) == before


def test_a_rescoring_is_a_correction_and_the_bonus_moves_only_from_when_it_is_known(
    db_url, tmp_path
):
    lines = [
        agreed(mechanism=["quality_bonus"], quality_bonus=BONUS),
        scored("home", "85"),
        scored("school", "80"),
        line(
            type="EventCorrected",
            contract="bucks",
            effective="2018-04-15",
            recorded_on="2018-06-01",
            target="home-2018-03-31",
            changes={"score": "70"},
            reason="moderated",
        ),  # fmt: skip
    ]
    assert run("record", write_lines(tmp_path / "b.jsonl", lines), "--db", db_url).exit_code == 0

    def owed(known_at: str | None) -> dict:
        args = ["liability", "--db", db_url, "--as-of", "2018-06-30", "--format", "json"]
        result = run(*args, *(["--known-at", known_at] if known_at else []))
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    # Before the correction: 0.6*85 + 0.4*80 = 51 + 32 = 83 -> 1% of 400,000 / 4 = 1,000.00.
    early = owed("2018-05-31")
    assert D(early["quality_bonus"]["quarters"][0]["weighted_total"]) == 83
    assert early["totals"]["owed"] == "1000.00"
    # After: 0.6*70 + 32 = 74 -> below 80%: nothing.
    late = owed(None)
    assert D(late["quality_bonus"]["quarters"][0]["weighted_total"]) == 74
    assert late["totals"]["owed"] == "0.00"
    diff = run("diff", "--db", db_url, "--known-at", "2018-05-31", "--as-of", "2018-06-30",
               "--format", "json")  # fmt: skip
    assert diff.exit_code == 0, diff.output
    assert json.loads(diff.output)["owed_change"] == "-1000.00"


# --- the reference contracts ----------------------------------------------------------------


def demo(db: str, which: str) -> dict:
    result = run("demo", "--db", db, "--contract", which, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_bucks_demo_gives_the_weighted_totals_and_pays_0_0_0_1(sqlite_url):
    data = demo(sqlite_url, "bucks")
    quarters = data["quality_bonus"]["quarters"]
    # 71.4, 70.5, 77.3, 80.1 by hand (tests/test_mechanism_rules.py); published 72, 70, 77, 80.
    assert [q["weighted_total"] for q in quarters] == ["71.4", "70.5", "77.3", "80.1"]
    assert [q["published_total"] for q in quarters] == ["72", "70", "77", "80"]
    assert [q["total_follows"] for q in quarters] == [False, True, True, True]
    assert [q["payment_percent"] for q in quarters] == ["0", "0", "0", "1"]
    assert [q["payment_follows"] for q in quarters] == [True] * 4
    # 1% of a quarter of the annual 3,125,000.00 (£25m over 8 years).
    assert data["totals"]["owed"] == "7812.50"
    table = run("liability", "--db", sqlite_url, "--as-of", "2016-06-30")
    assert "the published total 72% does not follow" in table.output


def test_the_essex_demo_respects_its_cap_and_reports_the_care_share(sqlite_url):
    data = demo(sqlite_url, "essex")
    (cohort,) = data["care_days_saved"]
    assert cohort["comparison_share"] == "0.55" and cohort["target_share"] == "0.27"
    share = D(cohort["care_share"])
    assert D("0.09") <= share <= D("0.13") < D("0.27")  # about 11%, well under the target
    # Every tracked day is verified by as_of: days saved = 0.55 x days - days in care exactly.
    saved = D("0.55") * cohort["days_tracked"] - cohort["days_in_care"]
    assert D(cohort["days_saved"]) == saved
    gross = (saved * D("140.00")).quantize(D("0.01"))
    assert gross > D("7100000.00")  # the cohort would earn more than the cap ...
    assert D(cohort["owed"]) == D("7100000.00")  # ... and is paid the cap
    assert D(cohort["capped"]) == gross - D("7100000.00")
    assert data["totals"]["owed"] == "7100000.00"


def test_the_essex_demo_returns_its_investors_1_45_times_their_capital(sqlite_url):
    demo(sqlite_url, "essex")

    def returns(as_of: str) -> dict:
        result = run("returns", "--db", sqlite_url, "--as-of", as_of, "--format", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    data = returns("2019-06-30")
    total = data["total"]
    # By hand: drawn 600,000 + 600,000 + 600,000 + 360,000 + 240,000 = 2,400,000.00;
    # distributed 360,000 + 900,000 + 1,020,000 + 1,200,000 = 3,480,000.00;
    # 3,480,000 / 2,400,000 = 1.45 (issue 16: "investors received 1.45x their capital").
    assert (total["committed"], total["drawn"], total["distributed"]) == (
        "3000000.00",
        "2400000.00",
        "3480000.00",
    )
    assert total["net"] == "1080000.00" and total["money_multiple"] == "1.4500"
    # Commitments 1,500,000 / 1,000,000 / 500,000 (3:2:1) share every amount in whole pounds,
    # so each investor's multiple is the contract's: BLACKWATER drawn 2,400,000 x 3/6.
    by = {i["investor"]: i for i in data["investors"]}
    assert [(by[i]["drawn"], by[i]["distributed"]) for i in ("BLACKWATER", "COLNE", "DENGIE")] == [
        ("1200000.00", "1740000.00"), ("800000.00", "1160000.00"), ("400000.00", "580000.00")
    ]  # fmt: skip
    assert {i["money_multiple"] for i in data["investors"]} == {"1.4500"}
    # Every flow within the contract's life (agreed 2013-02-01, the demo's as_of 2019-06-30).
    assert all("2013-02-01" <= f["date"] <= "2019-06-30" for f in data["flows"])
    # Midway, after the 2016 and before the 2017 distribution: all capital drawn, 360,000 +
    # 900,000 = 1,260,000.00 back, 1,260,000 / 2,400,000 = 0.5250.
    mid = returns("2017-06-30")["total"]
    assert (mid["drawn"], mid["distributed"], mid["money_multiple"]) == (
        "2400000.00",
        "1260000.00",
        "0.5250",
    )
    # Never distributed more than the outcome payments received by then.
    events = [e["event"] for e in trail(sqlite_url)]
    for paid_out in (e for e in events if e["type"] == "DistributionPaid"):
        day = paid_out["effective"]
        out = sum(D(e["amount"]) for e in events
                  if e["type"] == "DistributionPaid" and e["effective"] <= day)  # fmt: skip
        received = sum(D(e["amount"]) for e in events
                       if e["type"] == "PaymentReceived" and e["effective"] <= day)  # fmt: skip
        assert out <= received, day


def test_the_ttt_demo_pays_weeks_wellbeing_and_returns_home_by_payer(sqlite_url):
    data = demo(sqlite_url, "ttt")
    assert data["mechanisms"] == ["weeks_out_of_care", "wellbeing_improvement", "reunification"]
    weeks = data["weeks_out_of_care"]
    wellbeing = data["wellbeing_improvement"]
    improved = [w for w in wellbeing if w["status"] == "improved"]
    for w in wellbeing:  # improved exactly when the later reading is 10 points up or more
        if w["improvement"] is not None:
            assert (w["status"] == "improved") == (D(w["improvement"]) >= 10)
    returns = data["reunification"]
    # 12 synthetic referrals in care against the minimum of 15 the terms set.
    assert (returns["referrals"], returns["min_referrals"], returns["shortfall"]) == (12, 15, 3)
    stayed = [c for c in returns["cases"] if c["status"] == "stayed"]
    # 150.00 a week (no top-up) for each outcome week, 1,000.00 a case improved and 5,000.00 a
    # return home that lasted.
    assert D(weeks["totals"]["owed"]) == 150 * weeks["totals"]["weeks"]["outcome"]
    (nsm,) = data["payers"]
    assert D(nsm["owed"]) == D(weeks["totals"]["owed"]) + 1000 * len(improved) + 5000 * len(stayed)


@pytest.mark.parametrize("which", ["bucks", "essex"])
def test_weeks_reports_say_they_do_not_apply_to_other_mechanisms(sqlite_url, which):
    demo(sqlite_url, which)
    as_of = {"bucks": "2016-06-30", "essex": "2019-06-30"}[which]
    for args in (
        ["finances"],
        ["baseline", "--variation", "v1"],
    ):
        result = run(*args, "--db", sqlite_url, "--as-of", as_of)
        assert result.exit_code == 1, (args, result.output)
        assert "Traceback" not in result.output
        assert f"reads weeks out of care; contract {which!r} pays by" in result.output, args
    signed = run("assert", "--db", sqlite_url, "--scope", "contract", "--figure", "owed",
                 "--as-of", as_of, "--by", "AUDITOR")  # fmt: skip
    assert signed.exit_code == 1 and "weeks out of care alone" in signed.output
    returns = run("returns", "--db", sqlite_url, "--as-of", as_of)
    assert returns.exit_code == 0, returns.output  # investors' money is the same for any


def test_weeks_reports_still_answer_a_contract_that_pays_weeks_and_more(sqlite_url):
    data = demo(sqlite_url, "ttt")
    case = data["weeks_out_of_care"]["cases"][0]["case"]
    for args in (["explain", case], ["forecast"], ["finances"]):
        result = run(*args, "--db", sqlite_url, "--as-of", "2022-03-31")
        assert result.exit_code == 0, (args, result.output)


def test_explain_tells_what_a_case_counts_for_when_no_weeks_are_paid(sqlite_url):
    demo(sqlite_url, "essex")
    result = run("explain", "ESX001", "--db", sqlite_url, "--as-of", "2019-06-30",
                 "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    days = json.loads(result.output)["care_days_saved"]
    # 30 months from the first meeting, all elapsed and verified by 2019-06-30.
    assert days["days_verified"] == days["days_tracked"] > 900
    saved = D("0.55") * days["days_verified"] - days["days_in_care_verified"]
    assert D(days["days_saved_verified"]) == saved
    missing = run("explain", "NOBODY", "--db", sqlite_url, "--as-of", "2019-06-30")
    assert missing.exit_code == 1 and "counts for none of care_days_saved" in missing.output


def variation(key: str, effective: str, **changes) -> str:
    return line(type="VariationAgreed", contract="bucks", effective=effective,
                recorded_on=effective, key=key, variation=key,
                description="a quality bonus from this date",
                term_changes=changes, caps=[],
                targets={"referrals": 0, "tracked": 0, "outcome_weeks": 0,
                         "outcome_payments": {"low": "0", "medium": "0", "high": "0"},
                         "investment": "0"})  # fmt: skip


def test_a_variation_changes_the_mechanism_from_its_date(db_url, tmp_path):
    first = write_lines(tmp_path / "agreed.jsonl", [agreed()])  # weeks out of care alone
    assert run("record", first, "--db", db_url).exit_code == 0
    before = trail(db_url)
    bad = variation("v1", "2018-01-01", mechanism=["quality_bonus"])
    path = write_lines(tmp_path / "bad.jsonl", [bad])
    refused(run("record", path, "--db", db_url), path, {1: "term_changes.quality_bonus"})
    assert trail(db_url) == before
    # Scores for a quarter before the variation are refused: no bonus was payable then.
    lines = [
        variation("v2", "2018-01-01", mechanism=["quality_bonus"], quality_bonus=BONUS),
        scored("home", "90", quarter_end="2017-12-31"),
    ]
    path = write_lines(tmp_path / "early.jsonl", lines)
    refused(run("record", path, "--db", db_url), path, {2: "quarter_end"})
    ok = write_lines(
        tmp_path / "ok.jsonl", [lines[0], scored("home", "90"), scored("school", "90")]
    )
    assert run("record", ok, "--db", db_url).exit_code == 0
    result = run("liability", "--db", db_url, "--as-of", "2018-06-30", "--format", "json")
    data = json.loads(result.output)
    assert data["mechanisms"] == ["quality_bonus"]
    # 0.6*90 + 0.4*90 = 90 -> 1% (the highest band of BONUS) of 400,000.00 / 4 = 1,000.00.
    assert data["totals"]["owed"] == "1000.00"
    # Before the variation the contract paid by weeks alone, and the weeks' report answers.
    early = run("liability", "--db", db_url, "--as-of", "2017-12-31", "--format", "json")
    assert "mechanisms" not in json.loads(early.output)  # the weeks' own shape (SPEC §10)
    assert json.loads(early.output)["week_rule"] == "fixed_blocks"


def test_a_payers_statement_on_account_for_a_contract_paying_no_weeks(sqlite_url):
    data = demo(sqlite_url, "essex")

    def statement(as_of: str, *known: str) -> dict:
        result = run("statement", "ESX", "--db", sqlite_url, "--as-of", as_of, *known,
                     "--format", "json")  # fmt: skip
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    now = statement("2019-06-30")
    # Due is what ESX owes under every mechanism (the liability), the claims add up, and the
    # demo's claims, each for what was owed at a year end less what was claimed before, were
    # all paid: nothing outstanding.
    assert now["due"] == data["totals"]["owed"] == "7100000.00"
    assert sum(D(c["claimed"]) for c in now["claims"]) == D(now["claimed"])
    assert D(now["balance"]) == D(now["due"]) - D(now["paid"]) == 0
    # As known on 2017-06-30: the claims made by then, and the cohort's due at that date.
    then = statement("2017-06-30", "--known-at", "2017-06-30")
    assert [c["period_end"] for c in then["claims"]][-1] == "2017-03-31"
    assert D(then["due"]) < D(now["due"])
    unknown = run("statement", "XXX", "--db", sqlite_url, "--as-of", "2019-06-30")
    assert unknown.exit_code == 1 and "no payer 'XXX'" in unknown.output


def test_a_claim_on_account_reconciled_after_a_restated_care_episode(sqlite_url, tmp_path):
    demo(sqlite_url, "essex")
    ends = [e["event"] for e in trail(sqlite_url) if e["event"]["type"] == "CareEpisodeEnded"]
    # An episode that ended well inside a case's 30 months, before the 2015-16 claim's period.
    end = next(e for e in ends if "2015-06-01" <= e["effective"] <= "2015-12-31")
    later = (date.fromisoformat(end["effective"]) + timedelta(days=10)).isoformat()
    fix = line(type="EventCorrected", contract="essex", effective=end["effective"],
               recorded_on="2019-07-01", target=end["key"], changes={"effective": later},
               reason="end date restated")  # fmt: skip
    assert (
        run("record", write_lines(tmp_path / "fix.jsonl", [fix]), "--db", sqlite_url).exit_code == 0
    )
    result = run("reconcile", "ESX-2016-03-31", "--db", sqlite_url, "--as-of", "2019-07-31",
                 "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    check = json.loads(result.output)
    # Ten more days in care by 2016-03-31 (below the cap then): 10 x 140.00 less owed now.
    assert D(check["owed_then"]) - D(check["owed_now"]) == D("1400.00")
    assert D(check["over_claimed"]) == D("1400.00")
    assert D(check["claimed"]) == D(check["due_then"])  # claimed what was owed, as then known


def test_forecast_of_care_days_saved_and_where_it_does_not_apply(sqlite_url, tmp_path):
    demo(sqlite_url, "essex")
    result = run("forecast", "--db", sqlite_url, "--as-of", "2015-06-30", "--format", "json")
    assert result.exit_code == 0, result.output
    (cohort,) = json.loads(result.output)["cohorts"]
    # Ordered as they must be, none above the cap, and still-to-pay is final less owed.
    money = [D(cohort[k]) for k in ("minimum", "expected", "maximum")]
    assert money == sorted(money) and money[-1] <= D("7100000.00")
    assert D(cohort["still_to_pay"]["maximum"]) == money[-1] - D(cohort["owed"])
    bucks = tmp_path / "bucks.db"
    demo(f"sqlite:///{bucks}", "bucks")
    refused = run("forecast", "--db", f"sqlite:///{bucks}", "--as-of", "2016-06-30")
    assert refused.exit_code == 1
    assert "contract 'bucks' pays by quality_bonus (not applicable" in refused.output
