"""SPEC §8: investors' returns and the contract's finances, worked by hand, and the demo's.

Hand-worked figures are in the comments next to each assertion. The PNG tests render every
picture (`--plot`) and check the file is a PNG of a sensible size.
"""

from __future__ import annotations

import json
import struct
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soc_ledger.domain.events import EVENT_ADAPTER
from soc_ledger.domain.finances.allocation import allocate
from soc_ledger.domain.finances.avoided_costs import avoided_costs
from soc_ledger.domain.finances.co_commissioning_fees import co_commissioning_fees
from soc_ledger.domain.finances.finances import finances
from soc_ledger.domain.finances.returns import returns, xirr
from soc_ledger.domain.knowledge import Fact, Recorded
from soc_ledger.domain.outcomes.facts import (
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
)
from soc_ledger.domain.outcomes.liability import liability
from soc_ledger.ledger.demo import cohort as demo
from tests.helpers import run, write_lines
from tests.outcome_builders import History

D = Decimal


# --- pro rata in pennies ------------------------------------------------------------------------


def test_pro_rata_shares_are_pennies_by_largest_remainder():
    # 100.00 three ways: 33.333... each; floors 33.33 x 3 = 99.99; the one penny left goes to
    # the largest remainder, all equal, so to the first code: A.
    assert allocate(D("100.00"), {"B": D(1), "A": D(1), "C": D(1)}) == {
        "A": D("33.34"),
        "B": D("33.33"),
        "C": D("33.33"),
    }
    # The demo's fourth drawdown, 567,704.00 = 56,770,400 pennies, pro rata to commitments of
    # 2,500,000 / 1,500,000 / 875,000 / 300,000 (of 5,175,000):
    #   BRIDGEWAY 56,770,400 x 2,500,000 / 5,175,000 = 27,425,314.0097 -> 27,425,314
    #   CITYTRUST                                    = 16,455,188.4058 -> 16,455,188
    #   HEARTH                                       =  9,598,859.9034 ->  9,598,859 (+1)
    #   KESTREL                                      =  3,291,037.6812 ->  3,291,037 (+1)
    # floors add up to 56,770,398: the 2 pennies left go to the largest remainders .9034 and
    # .6812.
    shares = allocate(
        D("567704.00"),
        {"BRIDGEWAY": D(2_500_000), "CITYTRUST": D(1_500_000), "HEARTH": D(875_000),
         "KESTREL": D(300_000)},
    )
    assert shares == {
        "BRIDGEWAY": D("274253.14"),
        "CITYTRUST": D("164551.88"),
        "HEARTH": D("95988.60"),
        "KESTREL": D("32910.38"),
    }
    assert sum(shares.values()) == D("567704.00")


@given(
    st.integers(0, 10**9).map(lambda p: D(p) / 100),
    st.dictionaries(
        st.sampled_from(["A", "B", "C", "D", "E"]), st.integers(0, 10**8).map(D), min_size=1
    ),
)
def test_pro_rata_shares_add_up_exactly_and_are_within_a_penny_of_exact(amount, weights):
    shares = allocate(amount, weights)
    assert sum(shares.values()) == amount
    total = sum(weights.values())
    for name, share in shares.items():
        assert share == share.quantize(D("0.01"))
        exact = amount * weights[name] / total if total else amount / len(weights)
        assert abs(share - exact) < D("0.01")


# --- XIRR and money multiple ------------------------------------------------------------------

# The worked example of Microsoft Excel's XIRR documentation: -10,000 on 2008-01-01, then
# 2,750 on 2008-03-01, 4,250 on 2008-10-30, 3,250 on 2009-02-15 and 2,750 on 2009-04-01:
# XIRR = 0.373362535 (37.34%).
EXCEL_FLOWS = [
    (date(2008, 1, 1), D("-10000")),
    (date(2008, 3, 1), D("2750")),
    (date(2008, 10, 30), D("4250")),
    (date(2009, 2, 15), D("3250")),
    (date(2009, 4, 1), D("2750")),
]


def test_xirr_matches_the_excel_documentation_example():
    assert xirr(EXCEL_FLOWS) == D("0.373363")


def test_xirr_of_flows_all_one_way_is_none():
    assert xirr([(date(2008, 1, 1), D("-10"))]) is None
    assert xirr([]) is None


def _line(type_: str, effective: str, key: str, **fields) -> str:
    return json.dumps(
        {"type": type_, "contract": "plcip", "effective": effective, "recorded_on": effective,
         "key": key, **fields}
    )


def _contract() -> str:
    return json.dumps(
        {"type": "ContractAgreed", "contract": "plcip", "effective": "2007-09-01",
         "recorded_on": "2007-09-01", "key": "contract", "name": "Test",
         "lead_commissioner": "SUT", "prime_contractor": "PFP", "top_up_funder": "CBO",
         "terms": demo.terms(), "caps": []}
    )


@pytest.fixture
def excel_ledger(tmp_path: Path) -> str:
    """Investor X puts in the Excel example's 10,000 and gets its distributions back; investor
    Y commits 5,000, has 1,000 drawn on 2008-06-30 and gets nothing back."""
    lines = [
        _contract(),
        _line("InvestmentCommitted", "2007-12-01", "commit-X", investor="X", amount="10000.00"),
        _line("InvestmentCommitted", "2007-12-01", "commit-Y", investor="Y", amount="5000.00"),
        _line("CapitalDrawn", "2008-01-01", "draw-1", amount="10000.00", purpose="start",
              allocation={"X": "10000.00"}),
        _line("CapitalDrawn", "2008-06-30", "draw-2", amount="1000.00", purpose="more",
              allocation={"Y": "1000.00"}),
    ]
    for n, (day, amount) in enumerate(EXCEL_FLOWS[1:], start=1):
        lines.append(
            _line("DistributionPaid", day.isoformat(), f"dist-{n}", amount=f"{amount}.00",
                  allocation={"X": f"{amount}.00"})
        )
    url = f"sqlite:///{tmp_path / 'excel.db'}"
    assert run("record", write_lines(tmp_path / "x.jsonl", lines), "--db", url).exit_code == 0
    return url


def _returns(url: str, *args: str) -> dict:
    result = run("returns", "--db", url, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_returns_match_the_excel_xirr_example_and_the_money_multiple_exactly(excel_ledger):
    data = _returns(excel_ledger, "--as-of", "2009-12-31")
    x, y = data["investors"]
    # X: drawn 10,000, distributed 2,750 + 4,250 + 3,250 + 2,750 = 13,000: net 3,000,
    # multiple 13,000 / 10,000 = 1.3000, IRR the Excel example's 0.373363.
    assert x == {
        "investor": "X", "committed": "10000.00", "drawn": "10000.00",
        "distributed": "13000.00", "net": "3000.00", "money_multiple": "1.3000",
        "irr": "0.373363", "first_distribution": "2008-03-01",
    }
    # Y: 1,000 drawn and nothing back: no IRR (null, not 0), multiple 0 / 1,000 = 0.0000.
    assert y["irr"] is None and y["money_multiple"] == "0.0000" and y["net"] == "-1000.00"
    # Total: drawn 11,000, distributed 13,000, multiple 1.1818 (13/11 = 1.181818...).
    assert data["total"]["drawn"] == "11000.00" and data["total"]["distributed"] == "13000.00"
    assert data["total"]["money_multiple"] == "1.1818"
    assert data["total"]["irr"] is not None
    assert Decimal(data["total"]["irr"]) < Decimal("0.373363")  # Y's 1,000 dilutes it
    assert set(data) >= {"as_of", "investors", "total"}
    assert set(data["total"]) >= {
        "investor", "committed", "drawn", "distributed", "net", "money_multiple", "irr"
    }


def test_no_irr_before_the_first_distribution(excel_ledger):
    data = _returns(excel_ledger, "--as-of", "2008-02-29")  # first distribution 2008-03-01
    assert all(i["irr"] is None for i in data["investors"]) and data["total"]["irr"] is None
    assert data["total"]["drawn"] == "10000.00" and data["total"]["money_multiple"] == "0.0000"
    # As of 2008-03-01 X has one distribution: -10,000 then +2,750 sixty days later.
    early = _returns(excel_ledger, "--as-of", "2008-03-01")
    assert early["investors"][0]["irr"] is not None
    assert Decimal(early["investors"][0]["irr"]) < 0


def test_returns_known_at_an_earlier_date_see_only_what_was_recorded(excel_ledger):
    data = _returns(excel_ledger, "--as-of", "2009-12-31", "--known-at", "2008-12-31")
    # Recorded by then: the draws and the distributions of 2008-03-01 and 2008-10-30.
    assert data["investors"][0]["distributed"] == "7000.00"


def test_returns_table_and_csv(excel_ledger):
    table = run("returns", "--db", excel_ledger, "--as-of", "2009-12-31")
    assert table.exit_code == 0 and "37.3363%" in table.stdout and "none" in table.stdout
    csv = run("returns", "--db", excel_ledger, "--as-of", "2009-12-31", "--format", "csv")
    lines = csv.stdout.splitlines()
    assert lines[0] == "investor,committed,drawn,distributed,net,money_multiple,irr" + (
        ",contract,as_of,known_at,log_position"  # what every row was read at
    )
    assert lines[1].startswith("X,10000.00,10000.00,13000.00,3000.00,1.3000,0.373363,")
    assert lines[2].startswith("Y,5000.00,1000.00,0.00,-1000.00,0.0000,,")


# --- pure functions on small histories -----------------------------------------------------


def _fact(position: int, **fields) -> Fact:
    event = EVENT_ADAPTER.validate_python({"contract": "plcip", **fields})
    moment = demo_instant(fields["effective"])
    record = Recorded(position, "plcip", position, moment, moment, event)
    return Fact(record, event, (record,))


def demo_instant(day: str):
    from datetime import UTC, datetime

    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def test_pro_rata_uses_the_commitments_in_force_on_the_day():
    facts = [
        _fact(1, type="InvestmentCommitted", effective="2018-01-01", investor="A",
              amount="300.00"),
        _fact(2, type="CapitalDrawn", effective="2018-02-01", amount="90.00", purpose="x"),
        _fact(3, type="InvestmentCommitted", effective="2018-03-01", investor="B",
              amount="100.00"),
        # Now A 300 and B 100: 40.00 splits 30.00 / 10.00.
        _fact(4, type="CapitalDrawn", effective="2018-04-01", amount="40.00", purpose="y"),
    ]
    result = returns(facts, "plcip", date(2018, 12, 31))
    a, b = result.investors
    assert (a.drawn, b.drawn) == (D("120.00"), D("10.00"))
    assert result.total.drawn == D("130.00") and result.total.committed == D("400.00")
    assert result.total.irr is None and result.total.money_multiple == D("0.0000")


def test_co_commissioning_fees_pro_rata_to_days_of_membership_lead_exempt():
    h = History()
    h.agree(co_commissioning_fee=[
        {"from": "2018-04-01", "annual_amount": "13000.00"},
        {"from": "2021-04-01", "annual_amount": "7500.00"},
    ])
    h.accede("SUT")  # the lead: pays none
    h.accede("BEX", "2018-02-01")
    h.accede("BDG", "2018-09-01")
    h.add("BoroughWithdrew", "2019-06-30", borough="BDG")
    contract = contract_from_facts("plcip", h.facts())
    fees = co_commissioning_fees(contract, date(2019, 12, 31))
    got = {(f.borough, f.year): (f.days, f.amount) for f in fees}
    assert got == {
        # BDG 2018-09-01..2019-03-31 = 212 days of 365: 13,000 x 212 / 365 = 7,550.684 -> 7,550.68
        ("BDG", "2018-19"): (212, D("7550.68")),
        # 2019-04-01..2019-06-30 (the day it withdrew included) = 91 days of 366 (FY 2019-20
        # holds 29 February 2020): 13,000 x 91 / 366 = 3,232.240 -> 3,232.24
        ("BDG", "2019-20"): (91, D("3232.24")),
        # BEX: no fee before 2018-04-01; the whole year 2018-19
        ("BEX", "2018-19"): (365, D("13000.00")),
        # 2019-04-01..2019-12-31 = 275 days of 366: 13,000 x 275 / 366 = 9,767.759 -> 9,767.76
        ("BEX", "2019-20"): (275, D("9767.76")),
    }


def test_finances_income_costs_surplus_and_cost_per_service_user():
    h = History()
    h.agree()
    h.accede("SUT")
    h.case("C1", date(2018, 7, 2))
    h.case("C2", date(2018, 7, 9))
    h.case("C3", None)  # referred, never met: not a service user
    h.add("ClaimSubmitted", "2019-01-31", claim="K1", payer="SUT", period_end="2018-12-31",
          lines=[])
    h.add("PaymentReceived", "2019-02-28", claim="K1", payer="SUT", amount="500.00")
    h.add("PaymentReceived", "2020-02-28", claim="K1", payer="SUT", amount="1.00")  # later
    h.add("CostIncurred", "2018-12-31", category="delivery", amount="3000.00", provider="PFP")
    h.add("CostIncurred", "2018-12-31", category="evaluation", amount="1000.00")
    h.add("UnitCostsSet", "2018-01-01", weekly_cost={"res": "1000.00", "foster": "500.00"},
          placement_mix={"res": "0.25", "foster": "0.75"}, counterfactual_rate="0.5")
    facts = h.facts()
    contract = contract_from_facts("plcip", facts)
    as_of = date(2019, 6, 30)
    owed = liability(contract, cases_from_facts(facts, "plcip"),
                     coverage_from_facts(facts, "plcip"), as_of)
    result = finances(facts, contract, owed, as_of)
    # No care data: every elapsed week is unverified, nothing is owed yet.
    assert result.income_due == D("0.00") and result.income_received == D("500.00")
    assert [(c.category, c.amount, c.share) for c in result.costs] == [
        ("delivery", D("3000.00"), D("0.7500")), ("evaluation", D("1000.00"), D("0.2500"))
    ]
    assert result.surplus == D("-4000.00")  # 0.00 - 4,000.00: a deficit
    assert result.service_users == 2 and result.cost_per_service_user == D("0.00")
    # Mix-weighted weekly cost 1,000 x 0.25 + 500 x 0.75 = 625.00; no outcome week: 0.00.
    assert result.avoided is not None and result.avoided.weekly_cost == D("625.00")
    assert result.avoided.amount == D("0.00")


def test_avoided_care_costs_are_weeks_times_rate_times_weighted_cost():
    fact = _fact(1, type="UnitCostsSet", effective="2019-08-01",
                 weekly_cost={"a": "4200.00", "b": "950.00", "c": "520.00", "d": "1600.00"},
                 placement_mix={"a": "0.15", "b": "0.45", "c": "0.30", "d": "0.10"},
                 counterfactual_rate="0.40")
    # 0.15 x 4,200 + 0.45 x 950 + 0.30 x 520 + 0.10 x 1,600 = 630 + 427.5 + 156 + 160 = 1,373.50
    # 30,533 x 0.40 x 1,373.50 = 16,774,830.20
    avoided = avoided_costs(fact, 30_533)
    assert avoided is not None
    assert (avoided.weekly_cost, avoided.amount) == (D("1373.50"), D("16774830.20"))
    assert avoided_costs(None, 10) is None


# --- the demo ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo-finance') / 'ledger.db'}"
    result = run("demo", "--db", url, "--format", "json")
    assert result.exit_code == 0, result.output
    return url


def _finances(url: str, *args: str) -> dict:
    result = run("finances", "--db", url, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_demo_finances_reproduce_the_published_figures(demo_db):
    data = _finances(demo_db, "--as-of", "2023-12-31")
    # 6,534,062.00 of outcome payments / 410 service users = 15,936.736... -> 15,936.74
    assert data["service_users"] == 410
    assert data["cost_per_service_user"] == "15936.74"
    assert data["income"]["due"] == "6534062.00"
    assert data["income"]["by_payer"]["CBO"]["due"] == "1373985.00"
    # The published cost lines, and their total 6,544,740.00: 10,678.00 over the income.
    assert {c: v["amount"] for c, v in data["costs"]["by_category"].items()} == {
        "delivery": "4762802.00",
        "management": "1018871.00",
        "soc_management": "281012.00",
        "investment_return": "217227.00",
        "evaluation": "138535.00",
        "overheads": "126293.00",
    }
    assert data["costs"]["total"] == "6544740.00"
    assert data["surplus"] == "-10678.00"
    # delivery 4,762,802 / 6,544,740 = 0.72773... -> 0.7277
    assert data["costs"]["by_category"]["delivery"]["share"] == "0.7277"
    assert data["avoided_care_costs"]["amount"] == "16774830.20"
    fees = data["co_commissioning_fees"]
    assert fees["lead"] == "SUT" and "SUT" not in fees["by_borough"]
    bdg = {y["year"]: y["amount"] for y in fees["by_borough"]["BDG"]["years"]}
    # 2018-19: 13,000 x 212/365 = 7,550.68; 2023-24 to 31 December: 7,500 x 275/366 = 5,635.25
    assert bdg["2018-19"] == "7550.68" and bdg["2023-24"] == "5635.25"


def test_the_demo_table_shows_the_gap(demo_db):
    result = run("finances", "--db", demo_db, "--as-of", "2023-12-31")
    assert result.exit_code == 0
    assert "15,936.74" in result.stdout and "-10,678.00" in result.stdout
    assert "costs exceed outcome income due by 10,678.00" in result.stdout


def test_the_demo_returns_reproduce_the_published_figures(demo_db):
    data = _returns(demo_db, "--as-of", "2023-12-31")
    total = data["total"]
    assert total["committed"] == "5175000.00"
    assert total["drawn"] == "2867704.00" and total["distributed"] == "3084931.00"
    assert total["net"] == "217227.00"  # the investment return cost line
    # 3,084,931 / 2,867,704 = 1.07574944... -> 1.0757
    assert total["money_multiple"] == "1.0757"
    assert Decimal(total["money_multiple"]) == (D(3_084_931) / D(2_867_704)).quantize(
        D("0.0001")
    )
    assert sum(D(i["drawn"]) for i in data["investors"]) == D("2867704.00")
    assert sum(D(i["distributed"]) for i in data["investors"]) == D("3084931.00")
    in_2020 = [f for f in data["flows"] if f["kind"] == "drawn" and f["date"][:4] == "2020"]
    assert sum(-D(f["amount"]) for f in in_2020) == D("200000.00")
    assert {f["allocation"] for f in in_2020} == {"stated"}
    assert all(i["irr"] is not None for i in data["investors"])


def test_the_demo_money_scales_exactly(tmp_path):
    path = tmp_path / "x3.jsonl"
    assert run("demo", "--emit", str(path), "--scale", "3").exit_code == 0
    events = [json.loads(line) for line in path.read_text().splitlines()]

    def total(kind: str) -> Decimal:
        return sum((D(e["amount"]) for e in events if e["type"] == kind), D(0))

    assert total("InvestmentCommitted") == 3 * D("5175000.00")
    assert total("CapitalDrawn") == 3 * D("2867704.00")
    assert total("DistributionPaid") == 3 * D("3084931.00")
    assert total("CostIncurred") == 3 * D("6544740.00")
    variation = next(e for e in events if e["type"] == "VariationAgreed")
    assert variation["variation"] == "2017" and variation["targets"]["referrals"] == 3 * 384
    facts = [_fact(i, **{k: v for k, v in e.items() if k not in ("contract", "recorded_on")})
             for i, e in enumerate(events, start=1)
             if e["type"] in ("InvestmentCommitted", "CapitalDrawn", "DistributionPaid")]
    result = returns(facts, "plcip", demo.AS_OF)
    assert result.total.money_multiple == D("1.0757")


# --- pictures ----------------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 20_000 < len(data) < 2_000_000, len(data)
    return width, height


@pytest.mark.parametrize(
    "command",
    [
        ("finances", "--as-of", "2023-12-31"),
        ("forecast", "--as-of", "2020-03-31"),
        ("liability", "--as-of", "2023-12-31"),
        ("liability", "--as-of", "2020-03-31", "--known-at", "2020-06-30", "--format", "json"),
    ],
    ids=["finances", "forecast", "liability", "liability-known-at"],
)
def test_every_picture_renders_as_a_png_of_sensible_size(demo_db, tmp_path, command):
    path = tmp_path / "picture.png"
    result = run(*command, "--db", demo_db, "--plot", str(path))
    assert result.exit_code == 0, result.output
    assert f"picture written to {path}" in result.stderr
    width, height = _png_size(path)
    assert 800 <= width <= 2000 and 500 <= height <= 1200
    if "--format" in command:  # the report itself is untouched by the picture
        assert json.loads(result.stdout)["totals"]["owed"]
