"""SPEC §9 baselines: actuals against any variation's targets, in full and against its profile.

The hand-worked history: SUT and MRT; C1 (SUT, MST) meets on 2018-07-02, so its tracking starts
17 weeks later on 2018-10-29 and week k ends 2018-11-04 + 7k; C2 (MRT) meets on 2018-08-01 and
C3 (SUT) on 2019-02-01. SUT's care data covers to 2018-12-31 (weeks 0-8 of C1, the last ending
2018-12-30, are verified); MRT's none. 600.00 of capital is drawn on 2018-05-01.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from soc_ledger.domain.baseline import actuals, baseline, the_variation
from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.outcomes.facts import (
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
)
from soc_ledger.domain.outcomes.liability import liability
from soc_ledger.projections.views.finance import baseline_json
from tests.helpers import run
from tests.outcome_builders import TARGETS, History

D = Decimal

PLAN = {
    "referrals": 4,
    "tracked": 3,
    "outcome_weeks": 100,
    "outcome_payments": {"low": "1000.00", "medium": "2000.00", "high": "3000.00"},
    "investment": "1000.00",
    "per_borough": {"SUT": 2, "MRT": 2},
    "profile": [
        {"date": "2019-12-31", "referrals": 4, "outcome_payments": "10000.00"},
        {"date": "2018-07-31", "referrals": 1, "outcome_payments": "0.00"},
        {"date": "2018-12-31", "referrals": 3, "outcome_payments": "2000.00"},
    ],
}


def _history() -> History:
    h = History()
    h.agree()
    h.accede("SUT")
    h.accede("MRT")
    h.add("VariationAgreed", "2018-06-01", variation="plan", description="a plan",
          term_changes={}, caps=[], targets=PLAN)
    h.vary("other", "2019-01-01")
    h.case("C1", date(2018, 7, 2), borough="SUT")
    h.case("C2", date(2018, 8, 1), borough="MRT")
    h.case("C3", date(2019, 2, 1), borough="SUT")
    h.coverage("SUT", date(2018, 12, 31))
    h.add("InvestmentCommitted", "2018-04-01", investor="X", amount="5000.00")
    h.add("CapitalDrawn", "2018-05-01", amount="600.00", purpose="start")
    return h


def _report(as_of: date):
    facts = _history().facts()
    contract = contract_from_facts("plcip", facts)
    cases = cases_from_facts(facts, "plcip")
    coverage = coverage_from_facts(facts, "plcip")

    def actual_at(day: date):
        return actuals(facts, "plcip", day, liability(contract, cases, coverage, day))

    return baseline(the_variation(facts, "plcip", "plan"), actual_at, as_of)


def test_actuals_against_the_targets_in_full():
    b = _report(date(2019, 1, 31))
    a = b.actual
    # First family meetings by 2019-01-31: C1 and C2 (C3 meets the next day).
    assert (a.referrals, a.per_borough) == (2, {"MRT": 1, "SUT": 1})
    # C1 and C2 tracked. C1's weeks 0-12 have elapsed (week 12 ends 2019-01-27); weeks 0-8
    # are verified and out of care: 9 x 214.00 = 1,926.00. C2's weeks are unverified.
    assert (a.tracked, a.outcome_weeks, a.outcome_payments) == (2, 9, D("1926.00"))
    assert a.investment == D("600.00")
    rows = {r["measure"]: r for r in baseline_json(b, None)["in_full"]}
    assert rows["referrals"] == {
        "measure": "referrals", "target": 4, "actual": 2, "difference": -2,
        "attainment": "0.5000",
    }
    # 1,926.00 against the medium 2,000.00: -74.00, 96.30%
    assert rows["outcome_payments_medium"] == {
        "measure": "outcome_payments_medium", "target": "2000.00", "actual": "1926.00",
        "difference": "-74.00", "attainment": "0.9630",
    }
    assert rows["outcome_payments_low"]["difference"] == "926.00"
    assert rows["investment"]["attainment"] == "0.6000"  # 600 / 1,000


def test_each_milestone_is_compared_with_the_actuals_at_its_own_date():
    b = _report(date(2019, 1, 31))
    data = baseline_json(b, None)
    # The profile in date order; 2018-07-31: C1 met; no tracking week over yet.
    first, second, third = data["profile"]
    assert (first["date"], first["reached"], first["referrals"]["actual"]) == (
        "2018-07-31", True, 1
    )
    assert first["outcome_payments"]["actual"] == "0.00"
    # 2018-12-31: C1 and C2 met; C1's weeks 0-8 (to 2018-12-30) verified and paid: 1,926.00.
    assert second["referrals"] == {"target": 3, "actual": 2, "difference": -1}
    assert second["outcome_payments"] == {
        "target": "2000.00", "actual": "1926.00", "difference": "-74.00"
    }
    assert third["reached"] is False and third["referrals"]["actual"] is None
    # Against the profile at as_of: the latest milestone on or before 2019-01-31, 2018-12-31.
    due = data["at_as_of"]
    assert due["milestone"] == "2018-12-31"
    assert (due["referrals"]["target"], due["referrals"]["actual"]) == (3, 2)


def test_before_the_first_milestone_nothing_is_due_yet():
    data = baseline_json(_report(date(2018, 7, 30)), None)
    assert data["at_as_of"] is None
    assert not any(m["reached"] for m in data["profile"])


def test_any_variation_can_be_the_baseline_and_an_unknown_one_is_named():
    facts = _history().facts()
    assert the_variation(facts, "plcip", "other").event.targets.model_dump(
        mode="json", exclude_none=True
    ) == TARGETS
    with pytest.raises(QueryError, match=r"no variation 'nope'.*other, plan"):
        the_variation(facts, "plcip", "nope")
    with pytest.raises(QueryError, match="ContractAgreed has no targets"):
        the_variation(facts, "plcip", "original")


# --- the demo ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo-baseline') / 'ledger.db'}"
    assert run("demo", "--db", url, "--format", "json").exit_code == 0
    return url


def _baseline(url: str, *args: str) -> dict:
    result = run("baseline", "--db", url, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_2019_baseline_of_the_demo(demo_db):
    data = _baseline(demo_db, "--variation", "2019", "--as-of", "2023-12-31")
    rows = {r["measure"]: r for r in data["in_full"]}
    # SPEC §12: 410 referrals against 410, outcome payments against 7,704,119.00 (medium),
    # investment 4,234,000.00.
    assert (rows["referrals"]["target"], rows["referrals"]["actual"]) == (410, 410)
    medium = rows["outcome_payments_medium"]
    assert (medium["target"], medium["actual"]) == ("7704119.00", "6534062.00")
    assert medium["difference"] == "-1170057.00"  # 6,534,062 - 7,704,119
    assert (rows["investment"]["target"], rows["investment"]["actual"]) == (
        "4234000.00", "2867704.00"
    )
    assert data["at_as_of"]["milestone"] == "2023-12-31"
    assert data["at_as_of"]["outcome_payments"]["target"] == "7704119.00"


def test_every_variation_of_the_demo_has_a_baseline(demo_db):
    for variation, referrals in (("2017", 384), ("2019", 410), ("2021", 384), ("2022", 410)):
        data = _baseline(demo_db, "--variation", variation, "--as-of", "2023-12-31")
        assert data["targets"]["referrals"] == referrals
        assert data["actual"]["referrals"] == 410
    original = _baseline(demo_db, "--variation", "2017", "--as-of", "2023-12-31")
    assert original["effective"] == "2017-09-01"
    assert {r["borough"] for r in original["per_borough"]} == {
        "BEX", "MRT", "NWM", "SUT", "TWH", "BDG"
    }


def test_a_milestone_reads_the_liability_at_its_own_date(demo_db):
    data = _baseline(demo_db, "--variation", "2019", "--as-of", "2023-12-31")
    milestone = next(m for m in data["profile"] if m["date"] == "2020-03-31")
    owed = json.loads(
        run("liability", "--db", demo_db, "--as-of", "2020-03-31", "--format", "json").stdout
    )["totals"]["owed"]
    assert milestone["outcome_payments"]["actual"] == owed


def test_a_variation_not_yet_known_is_refused_with_the_known_ones(demo_db):
    # The 2019 variation was recorded on 2019-07-15.
    result = run("baseline", "--db", demo_db, "--variation", "2019", "--known-at", "2019-07-01")
    assert result.exit_code != 0
    assert "no variation '2019'" in result.stderr and "2017" in result.stderr


def test_baseline_table_and_csv(demo_db):
    table = run("baseline", "--db", demo_db, "--variation", "2019", "--as-of", "2023-12-31")
    assert table.exit_code == 0
    assert "7,704,119.00" in table.stdout and "6,534,062.00" in table.stdout
    csv = run("baseline", "--db", demo_db, "--variation", "2019", "--as-of", "2023-12-31",
              "--format", "csv")
    lines = csv.stdout.splitlines()
    # Each row ends with what it was read at (contract, as_of, known_at, log position).
    assert lines[0] == (
        "measure,target,actual,difference,attainment,contract,as_of,known_at,log_position"
    )
    assert lines[1].startswith("referrals,410,410,0,1.0000,plcip,2023-12-31,,")
