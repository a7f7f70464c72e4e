"""SPEC §9 forecasts: minimum, expected and maximum still to pay, per borough and top-up funder.

The hand-worked contract: price 214.00 (169.00 borough + 45.00 top-up), tracking 10 weeks
starting at the first family meeting (offset 0), 28 days' engagement. Case C1 (SUT, MST) meets
on Monday 2019-01-07 = T, so week k is T+7k .. T+7k+6; a stay in care 2019-01-14 .. 2019-01-16
(first day out 2019-01-17) puts week 1 in care. As of 2019-02-10 (T+34, the last day of week
4; 34 days engaged: tracked) weeks 0-4 have elapsed and 5-9 are pending.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soc_ledger.domain.forecast import forecast
from soc_ledger.domain.outcomes.facts import (
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
)
from soc_ledger.domain.outcomes.liability import liability
from soc_ledger.domain.outcomes.terms import TermsTimeline
from tests.helpers import run
from tests.outcome_builders import History, days

D = Decimal
T = date(2019, 1, 7)
AS_OF = date(2019, 2, 10)


def _history(cap: str | None = None, covers: date = date(2019, 12, 31)) -> History:
    h = History()
    caps = [{"cap": "c", "payer": "boroughs", "amount": cap}] if cap else []
    h.agree(caps=caps, tracking_weeks=10, tracking_offset_weeks={"MST": 0, "FFT": 0})
    h.accede("SUT")
    h.case("C1", T, borough="SUT")
    h.episode("C1", "E1", date(2019, 1, 14), date(2019, 1, 17))
    h.coverage("SUT", covers)
    return h


def _by_payer(result) -> dict[str, tuple]:
    rows = {p.payer: (p.owed, p.remaining_weeks, p.minimum, p.expected, p.maximum)
            for p in result.payers}
    t = result.total
    rows["total"] = (t.owed, t.remaining_weeks, t.minimum, t.expected, t.maximum)
    return rows


def test_hand_worked_forecast_with_all_data_in():
    result = forecast(_history().facts(), "plcip", AS_OF)
    # Weeks 0, 2, 3, 4 outcome (owed 4 x 169 = 676.00 + 4 x 45 = 180.00), week 1 in care:
    # the rate is 4 / 5 = 0.8. Five pending weeks remain:
    #   maximum SUT 5 x 169 = 845.00, CBO 5 x 45 = 225.00;
    #   expected SUT 845 x 0.8 = 676.00, CBO 225 x 0.8 = 180.00; minimum nothing more.
    assert (result.outcome_weeks, result.in_care_weeks, result.rate) == (4, 1, D("0.8"))
    assert result.weeks == {"pending": 5, "unverified": 0, "engaging": 0}
    assert _by_payer(result) == {
        "SUT": (D("676.00"), 5, D("0.00"), D("676.00"), D("845.00")),
        "CBO": (D("180.00"), 5, D("0.00"), D("180.00"), D("225.00")),
        "total": (D("856.00"), 5, D("0.00"), D("856.00"), D("1070.00")),
    }


def test_unverified_weeks_are_still_to_come_and_not_in_the_rate():
    # Care data to 2019-01-27, the last day of week 2: weeks 3 and 4 are unverified. Outcome
    # weeks 0 and 2, week 1 in care: rate 2 / 3. Remaining: 5 pending + 2 unverified = 7.
    #   maximum SUT 7 x 169 = 1,183.00; CBO 7 x 45 = 315.00
    #   expected SUT 1,183 x 2/3 = 788.666... -> 788.67; CBO 315 x 2/3 = 210.00
    result = forecast(_history(covers=date(2019, 1, 27)).facts(), "plcip", AS_OF)
    assert result.weeks == {"pending": 5, "unverified": 2, "engaging": 0}
    assert result.rate_shown == D("0.6667")
    assert _by_payer(result) == {
        "SUT": (D("338.00"), 7, D("0.00"), D("788.67"), D("1183.00")),
        "CBO": (D("90.00"), 7, D("0.00"), D("210.00"), D("315.00")),
        "total": (D("428.00"), 7, D("0.00"), D("998.67"), D("1498.00")),
    }


def test_a_cap_reduces_the_maximum():
    # A cap of 1,014.00 (6 weeks of 169.00) on the boroughs: 676.00 is owed, 338.00 is left.
    #   maximum SUT: 169 + 169 = 338 fills it: 338.00 (not 845.00)
    #   expected SUT: 135.20 + 135.20 + 67.60 (the room left) = 338.00
    # The top-up funder is not capped: 225.00 / 180.00 as before.
    result = forecast(_history(cap="1014.00").facts(), "plcip", AS_OF)
    assert _by_payer(result)["SUT"] == (D("676.00"), 5, D("0.00"), D("338.00"), D("338.00"))
    assert _by_payer(result)["CBO"] == (D("180.00"), 5, D("0.00"), D("180.00"), D("225.00"))


def test_engaging_cases_count_their_whole_window_and_unstarted_cases_are_counted():
    h = _history()
    # C2 met on 2019-02-01: 9 days engaged at as_of, still open: engaging. Its 10 weeks count
    # as if it goes on to be tracked (its week 0, 2019-02-01..07, has elapsed but nothing is
    # owed for an untracked case): SUT +10 x 169 = 1,690.00, CBO +10 x 45 = 450.00.
    h.case("C2", date(2019, 2, 1), borough="SUT")
    h.case("C3", None, borough="SUT")  # referred, accepted, not yet met: counted, no money
    h.add("ReferralReceived", "2018-06-01", case="C4", borough="SUT", child_ref="c4",
          date_of_birth="2006-01-15", behaviours=[], in_care=False)
    h.add("ReferralDeclined", "2018-06-02", case="C4", reason="not eligible")
    h.case("C5", None, borough="SUT", referred=date(2019, 3, 1))  # referred after as_of
    result = forecast(h.facts(), "plcip", AS_OF)
    assert result.cases == {"tracked": 1, "engaging": 1, "not_started": 1}
    assert result.weeks == {"pending": 5, "unverified": 0, "engaging": 10}
    sut = _by_payer(result)["SUT"]
    assert (sut[1], sut[3], sut[4]) == (15, D("2028.00"), D("2535.00"))  # x 0.8; 845 + 1,690


def test_no_decided_week_yet_means_no_expected_figure():
    result = forecast(_history().facts(), "plcip", date(2019, 1, 12))  # 5 days in: engaging
    assert result.rate is None and result.total.expected is None
    assert result.total.maximum == D("2140.00")  # 10 weeks x 214.00


# --- properties ---------------------------------------------------------------------------------


def money(pence: int) -> str:
    return f"{pence // 100}.{pence % 100:02d}"


BOROUGHS = ("A", "B")


@st.composite
def scenarios(draw) -> dict:
    """A random small contract, as a plan that can be built with or without its caps."""
    price = draw(st.integers(10_000, 30_000))
    caps = []
    for i in range(draw(st.integers(0, 2))):
        cap = {"cap": f"cap{i}", "payer": draw(st.sampled_from(["boroughs", "CBO", "A"])),
               "amount": money(draw(st.integers(0, 400_000)))}
        boroughs = draw(st.sampled_from([None, ["A"], ["B"], ["A", "B"]]))
        if boroughs is not None:
            cap["boroughs"] = boroughs
        caps.append(cap)
    terms = {
        "price_per_week": money(price),
        "top_up_per_week": money(draw(st.integers(0, price))),
        "tracking_weeks": draw(st.integers(1, 16)),
        "tracking_offset_weeks": {"MST": draw(st.integers(0, 3)), "FFT": draw(st.integers(0, 3))},
        "min_engagement_days": draw(st.sampled_from([0, 7, 28])),
        "week_rule": draw(st.sampled_from(["fixed_blocks", "consecutive_runs"])),
    }
    variation = None
    if draw(st.booleans()):
        new_price = draw(st.integers(10_000, 30_000))
        variation = {
            "effective": days(T, draw(st.integers(0, 200))),
            "price_per_week": money(new_price),
            "top_up_per_week": money(draw(st.integers(0, new_price))),
            "caps": [{**c, "amount": money(draw(st.integers(0, 400_000)))} for c in caps
                     if draw(st.booleans())],
        }
    cases = []
    for n in range(draw(st.integers(1, 5))):
        first = draw(st.none() | st.integers(0, 60).map(lambda d: days(T, d)))
        ended = None
        if first is not None:
            ended = draw(st.none() | st.integers(0, 60).map(lambda d, f=first: days(f, d)))
        spells, cursor = [], days(first or T, draw(st.integers(-10, 60)))
        for _ in range(draw(st.integers(0, 3))):
            cursor = days(cursor, draw(st.integers(0, 30)))
            end = days(cursor, draw(st.integers(1, 25)))
            spells.append((cursor, end, draw(st.sampled_from(["C2", "C2", "V3"]))))
            cursor = end
        cases.append({"case": f"C{n}", "borough": draw(st.sampled_from(BOROUGHS)),
                      "intervention": draw(st.sampled_from(["MST", "FFT"])),
                      "first": first, "ended": ended, "spells": spells})
    coverage = {b: draw(st.none() | st.integers(0, 250).map(lambda d: days(T, d)))
                for b in BOROUGHS}
    return {"caps": caps, "terms": terms, "variation": variation, "cases": cases,
            "coverage": coverage, "as_of": days(T, draw(st.integers(0, 250)))}


def build(plan: dict, with_caps: bool = True, covers: date | None = None) -> History:
    h = History()
    h.agree(caps=plan["caps"] if with_caps else [], **plan["terms"])
    for borough in BOROUGHS:
        h.accede(borough)
    v = plan["variation"]
    if v is not None:
        h.vary("v", v["effective"], caps=v["caps"] if with_caps else [],
               price_per_week=v["price_per_week"], top_up_per_week=v["top_up_per_week"])
    for c in plan["cases"]:
        h.case(c["case"], c["first"], borough=c["borough"], intervention=c["intervention"],
               ended=c["ended"])
        for i, (start, end, status) in enumerate(c["spells"]):
            h.episode(c["case"], f"E{i}", start, end, legal_status=status)
    for borough, day in plan["coverage"].items():
        if covers is not None:
            day = covers
        if day is not None:
            h.coverage(borough, day)
    return h


def _remaining_prices(h: History, as_of: date) -> dict[str, Decimal]:
    """Each payer's price of every remaining week: what the maximum is with no cap."""
    facts = h.facts()
    contract = contract_from_facts("plcip", facts)
    cases = cases_from_facts(facts, "plcip")
    result = liability(contract, cases, coverage_from_facts(facts, "plcip"), as_of)
    timeline = TermsTimeline(contract)
    due: dict[str, Decimal] = {}
    ends = [(w.case, w.end) for w in result.weeks if w.status in ("pending", "unverified")]
    for case_id, state in result.engagement.items():
        if state == "engaging":
            case = cases[case_id]
            first = case.first_meeting
            terms = timeline.at(first.toordinal()).terms
            start = days(first, 7 * terms.tracking_offset_weeks[case.intervention])
            ends += [(case_id, days(start, 7 * k + 6)) for k in range(terms.tracking_weeks)]
    for case_id, end in ends:
        seg = timeline.at(end.toordinal())
        borough = cases[case_id].borough
        due[borough] = due.get(borough, D("0.00")) + seg.borough_price
        due["CBO"] = due.get("CBO", D("0.00")) + seg.top_up_price
    return due


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scenarios())
def test_minimum_at_most_expected_at_most_maximum_for_every_payer(plan):
    result = forecast(build(plan).facts(), "plcip", plan["as_of"])
    for p in result.payers:
        assert p.minimum == D("0.00") and p.minimum <= p.maximum
        if p.expected is not None:
            assert p.minimum <= p.expected <= p.maximum, p
            assert p.expected == p.expected.quantize(D("0.01"))
    t = result.total
    assert t.maximum == sum(p.maximum for p in result.payers)
    assert t.owed == sum(p.owed for p in result.payers)
    if t.expected is not None:
        assert t.expected == sum(p.expected for p in result.payers)


@SETTINGS
@given(scenarios())
def test_caps_only_ever_reduce_the_maximum_and_without_caps_every_week_pays(plan):
    as_of = plan["as_of"]
    capped = {p.payer: p for p in forecast(build(plan).facts(), "plcip", as_of).payers}
    free_history = build(plan, with_caps=False)
    free = {p.payer: p for p in forecast(free_history.facts(), "plcip", as_of).payers}
    prices = _remaining_prices(free_history, as_of)
    for payer, p in free.items():
        assert p.maximum == prices.get(payer, D("0.00")), payer
        assert capped[payer].maximum <= p.maximum
        if p.expected is not None and capped[payer].expected is not None:
            assert capped[payer].expected <= p.expected


@SETTINGS
@given(scenarios())
def test_after_every_tracking_window_has_ended_all_three_are_zero(plan):
    # Every first meeting is by T + 60 days; tracking is at most 3 + 16 weeks after it; with
    # the care data of every borough in to a date after that, nothing is left to come.
    late = date(2020, 6, 30)
    result = forecast(build(plan, covers=late).facts(), "plcip", late)
    assert result.weeks == {"pending": 0, "unverified": 0, "engaging": 0}
    for p in (*result.payers, result.total):
        assert p.minimum == p.maximum == D("0.00")
        assert p.expected in (None, D("0.00"))


# --- the demo through the command line --------------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo-forecast') / 'ledger.db'}"
    assert run("demo", "--db", url, "--format", "json").exit_code == 0
    return url


def _forecast(url: str, *args: str) -> dict:
    result = run("forecast", "--db", url, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_demo_forecast_is_zero_once_every_window_has_ended(demo_db):
    data = _forecast(demo_db, "--as-of", "2023-12-31")
    assert data["remaining_weeks"] == {"pending": 0, "unverified": 0, "engaging": 0}
    for row in (*data["payers"], data["total"]):
        assert row["minimum"] == row["expected"] == row["maximum"] == "0.00"
    assert data["total"]["owed"] == "6534062.00"
    # 30,533 outcome weeks of 30,533 + 5,347 decided: 0.8510
    assert data["outcome_rate"] == "0.8510"


def test_the_demo_forecast_after_the_last_start_bounds_what_actually_came(demo_db):
    # Every first family meeting is by 2021-03-31: from then on no new case can add money, so
    # what was owed then plus the maximum still to come bounds each payer's final bill.
    then = _forecast(demo_db, "--as-of", "2021-03-31")
    final = {p["payer"]: Decimal(p["owed"]) for p in _forecast(demo_db, "--as-of",
                                                                "2023-12-31")["payers"]}
    assert then["cases"]["not_started"] == 0
    for p in then["payers"]:
        owed, exp, top = (Decimal(p[k]) for k in ("owed", "expected", "maximum"))
        assert Decimal(p["minimum"]) == 0 <= exp <= top
        assert owed <= final[p["payer"]] <= owed + top, p["payer"]
    total = then["total"]
    assert Decimal(total["maximum"]) == sum(Decimal(p["maximum"]) for p in then["payers"])


def test_the_demo_forecast_known_earlier_has_unverified_weeks_to_come(demo_db):
    # As known on 2021-04-30 the returns for January-March 2021 had not all arrived.
    data = _forecast(demo_db, "--as-of", "2021-03-31", "--known-at", "2021-04-30")
    assert data["remaining_weeks"]["unverified"] > 0
    table = run("forecast", "--db", demo_db, "--as-of", "2021-03-31")
    assert table.exit_code == 0 and "verified outcome rate" in table.stdout
    csv = run("forecast", "--db", demo_db, "--as-of", "2021-03-31", "--format", "csv")
    assert csv.stdout.splitlines()[0] == "payer,owed,remaining_weeks,minimum,expected,maximum" + (
        ",contract,as_of,known_at,log_position"  # what every row was read at
    )
