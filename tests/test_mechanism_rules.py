"""The payment mechanisms of issue 16 (domain/mechanisms/), on histories built in memory: each
figure worked out by hand in the comments, and properties that could fail.

The docstring examples of `quality_bonus.py`, `care_days_saved.py`, `wellbeing_improvement.py`
and `payments.py` are the hand-worked examples here: change them together.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from soc_ledger.domain.events import Band
from soc_ledger.domain.mechanisms.care_days_saved import add_months, care_days_saved
from soc_ledger.domain.mechanisms.payments import payments
from soc_ledger.domain.mechanisms.quality_bonus import (
    band_payment,
    quality_bonus,
    quality_from_facts,
    weighted_total,
)
from soc_ledger.domain.mechanisms.wellbeing_improvement import (
    readings_from_facts,
    wellbeing_improvement,
)
from soc_ledger.domain.outcomes.facts import (
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
)
from tests.outcome_builders import History

D = Decimal
WEIGHTS = {"home": "20", "school": "20", "outcomes_homes": "30", "outcomes_college": "20",
           "attendance": "10"}  # fmt: skip
BANDS = [
    {"from": "0", "payment": "0"},
    {"from": "80", "payment": "1"},
    {"from": "85", "payment": "1.5"},
    {"from": "90", "payment": "2"},
]
BONUS = {
    "weights": WEIGHTS,
    "bands": BANDS,
    "annual_value": "3125000.00",
    "max_percent_per_year": "2",
    "max_per_year": "60000.00",
}
# The published 2015-16 scores (issue 16), by area, Q1..Q4.
SCORES = {
    "home": (73, 67, 80, 80),
    "school": (60, 60, 76, 80),
    "outcomes_homes": (80, 80, 80, 84),
    "outcomes_college": (64, 64, 68, 72),
    "attendance": (80, 83, 85, 85),
}
QUARTERS = (date(2015, 6, 30), date(2015, 9, 30), date(2015, 12, 31), date(2016, 3, 31))


def bucks(scores=SCORES, published=(72, 70, 77, 80), **bonus) -> History:
    h = History("bucks")
    h.agree(mechanism=["quality_bonus"], quality_bonus={**BONUS, **bonus}, effective="2014-04-01")
    for q, quarter_end in enumerate(QUARTERS):
        for area, by_quarter in scores.items():
            h.add("QualityScored", quarter_end + timedelta(days=30), area=area,
                  quarter_end=str(quarter_end), score=str(by_quarter[q]),
                  key=f"{area}-{q}")  # fmt: skip
        if published:
            h.add("QualityPublished", quarter_end + timedelta(days=40),
                  quarter_end=str(quarter_end), weighted_total=str(published[q]),
                  payment="0")  # fmt: skip
    return h


def bonus_of(h: History, as_of: date = date(2016, 6, 30), known_at: date | None = None):
    facts = h.facts(known_at)
    return quality_bonus(contract_from_facts(h.contract, facts),
                         quality_from_facts(facts, h.contract), as_of)  # fmt: skip


# --- quality_bonus ---------------------------------------------------------------------------


def test_the_weighted_totals_of_2015_16_from_the_weights_and_scores():
    result = bonus_of(bucks())
    # Q1: 0.2*73 + 0.2*60 + 0.3*80 + 0.2*64 + 0.1*80 = 14.6 + 12 + 24 + 12.8 + 8 = 71.4
    # Q2: 0.2*67 + 0.2*60 + 0.3*80 + 0.2*64 + 0.1*83 = 13.4 + 12 + 24 + 12.8 + 8.3 = 70.5
    # Q3: 0.2*80 + 0.2*76 + 0.3*80 + 0.2*68 + 0.1*85 = 16 + 15.2 + 24 + 13.6 + 8.5 = 77.3
    # Q4: 0.2*80 + 0.2*80 + 0.3*84 + 0.2*72 + 0.1*85 = 16 + 16 + 25.2 + 14.4 + 8.5 = 80.1
    assert [q.weighted_total for q in result.quarters] == [D("71.4"), D("70.5"), D("77.3"),
                                                           D("80.1")]  # fmt: skip
    # Under the bands (nothing below 80%, 1% from 80%): 0, 0, 0, 1 percent, as published.
    assert [q.payment_percent for q in result.quarters] == [0, 0, 0, 1]
    # 1% of a quarter of 3,125,000.00 = 7,812.50; the year's cap is min(2% = 62,500, 60,000).
    assert [q.owed for q in result.quarters] == [0, 0, 0, D("7812.50")]
    assert result.owed == D("7812.50") and result.capped == 0
    assert result.quarters[0].year_cap == D("60000.00")
    assert result.payer == "SUT"  # the lead commissioner


def test_which_published_totals_follow_from_the_scores():
    result = bonus_of(bucks())
    # Q1 71.4 rounds to 71, not the published 72; Q2 70.5 rounds half-even to 70 (half-up
    # would give 71); Q3 77.3 -> 77 and Q4 80.1 -> 80 follow.
    assert [q.total_follows for q in result.quarters] == [False, True, True, True]


def test_the_year_cap_holds_back_what_passes_60000():
    # Every area scored 95 in every quarter: total 95 -> 2% a quarter = 15,625.00; the first
    # three quarters owe 46,875.00, the fourth only 60,000 - 46,875 = 13,125.00 (2,500.00 capped).
    all_95 = {area: (95, 95, 95, 95) for area in SCORES}
    result = bonus_of(bucks(all_95, published=()))
    assert [q.owed for q in result.quarters] == [D("15625.00")] * 3 + [D("13125.00")]
    assert result.quarters[-1].capped == D("2500.00")
    assert result.owed == D("60000.00")


def test_a_quarter_with_an_area_unscored_pays_nothing_and_says_so():
    partial = {area: s for area, s in SCORES.items() if area != "attendance"}
    result = bonus_of(bucks(partial, published=()))
    assert {q.status for q in result.quarters} == {"incomplete"}
    assert result.owed == 0


def test_a_rescored_area_moves_the_bonus_as_known_at():
    h = bucks()
    q4_home = next(r for r in h.records if r.event.key == "home-3")
    h.correct(q4_home, "2017-06-01", score="75")  # Q4 total 80.1 - 0.2*5 = 79.1: below 80%
    assert bonus_of(h, known_at=date(2017, 5, 31)).owed == D("7812.50")
    assert bonus_of(h).quarters[-1].weighted_total == D("79.1")
    assert bonus_of(h).owed == 0


@given(
    st.lists(st.integers(0, 100), min_size=5, max_size=5),
    st.lists(st.integers(0, 100), min_size=5, max_size=5),
)
def test_a_higher_score_never_pays_less(low, raise_by):
    weights = {a: D(w) for a, w in WEIGHTS.items()}
    before = dict(zip(weights, map(D, low), strict=True))
    after = {a: min(D(100), s + r) for (a, s), r in zip(before.items(), raise_by, strict=True)}
    bands = [Band.model_validate(b) for b in BANDS]
    total_before, total_after = weighted_total(weights, before), weighted_total(weights, after)
    assert min(before.values()) <= total_before <= max(before.values())
    assert total_before <= total_after
    assert band_payment(bands, total_before) <= band_payment(bands, total_after)


# --- care_days_saved ------------------------------------------------------------------------

ESSEX = {
    "price_per_day": "100.00",
    "comparison_care_share": "0.55",
    "target_care_share": "0.27",
    "tracking_months": 30,
}
F = date(2014, 1, 1)


def essex(caps: list[dict] | None = None) -> History:
    h = History("essex")
    h.agree(caps=caps, mechanism=["care_days_saved"], care_days_saved=ESSEX,
            effective="2013-02-01")  # fmt: skip
    h.accede("SUT", "2013-02-01")
    return h


def saving(h: History, as_of: date, known_at: date | None = None):
    facts = h.facts(known_at)
    contract = contract_from_facts(h.contract, facts)
    cases = cases_from_facts(facts, h.contract)
    return care_days_saved(contract, cases, coverage_from_facts(facts, h.contract), as_of)


def test_care_days_saved_by_hand():
    h = essex()
    h.case("A", F, referred=date(2013, 12, 1))
    h.episode("A", "E1", date(2014, 2, 1), date(2014, 2, 21))  # 2014-02-01 .. 02-20: 20 days
    h.coverage("SUT", "2014-06-30")
    (cohort,) = saving(h, date(2014, 4, 10))
    # 2014-01-01 .. 2014-04-10 is 31 + 28 + 31 + 10 = 100 days tracked, 20 in care.
    assert (cohort.days, cohort.days_in_care) == (100, 20)
    # saved 0.55 * 100 - 20 = 35 days at 100.00 = 3,500.00; care share 20%.
    assert cohort.days_saved == D("35.00")
    assert cohort.owed == D("3500.00") and cohort.capped == 0 and cohort.provisional == 0
    assert cohort.care_share == D("0.2000")


def test_thirty_months_from_the_first_meeting():
    assert add_months(F, 30) == date(2016, 7, 1)
    assert add_months(date(2014, 8, 31), 30) == date(2017, 2, 28)  # no 31 February
    h = essex()
    h.case("A", F, referred=date(2013, 12, 1))
    h.coverage("SUT", "2019-12-31")
    (cohort,) = saving(h, date(2019, 1, 1))
    # Tracked 2014-01-01 .. 2016-06-30: 365 + 365 + 182 (2016 is a leap year) = 912 days.
    assert cohort.cases[0].tracking_end == date(2016, 6, 30)
    assert cohort.days == 912
    assert cohort.owed == D("50160.00")  # 0.55 * 912 = 501.6 days * 100.00


def test_unverified_days_are_provisional_and_a_cohort_never_owes_back():
    h = essex()
    h.case("A", F, referred=date(2013, 12, 1))
    h.coverage("SUT", "2014-01-31")  # 31 days verified, none in care: 17.05 days, 1,705.00
    h.episode("A", "E1", date(2014, 2, 1))  # in care from 1 February, still open
    (cohort,) = saving(h, date(2014, 4, 10))
    assert cohort.owed == D("1705.00")
    # All 100 days: 0.55 * 100 - 69 in care = -14 days: nothing, never below nothing; so the
    # provisional extra is nil rather than a claw-back of the 1,705.00.
    assert cohort.provisional == 0
    assert cohort.days_in_care == 69  # 28 + 31 + 10 days from 1 February


def test_the_cap_holds_the_cohort_at_its_amount():
    h = essex([{"cap": "outcome-payments", "payer": "boroughs", "amount": "2000.00"}])
    h.case("A", F, referred=date(2013, 12, 1))
    h.coverage("SUT", "2014-06-30")
    (cohort,) = saving(h, date(2014, 4, 10))
    # 55 days saved = 5,500.00 gross: 2,000.00 owed, 3,500.00 capped.
    assert (cohort.owed, cohort.capped) == (D("2000.00"), D("3500.00"))


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(1, 200),
    offset=st.integers(0, 400),
    longer=st.booleans(),
)
def test_a_correction_moving_one_care_day_moves_the_payment_by_one_days_price(
    length, offset, longer
):
    """Issue 16: below the cap, a correction that moves one verified care day moves the Essex
    payment by exactly the price of one day."""
    h = essex([{"cap": "outcome-payments", "payer": "boroughs", "amount": "7100000.00"}])
    h.case("A", F, referred=date(2013, 12, 1))
    h.case("B", F + timedelta(days=3), referred=date(2013, 12, 1))
    start = F + timedelta(days=offset)
    _, end = h.episode("A", "E1", start, start + timedelta(days=length))
    h.coverage("SUT", "2016-12-31")
    assert end is not None
    moved = start + timedelta(days=length + (1 if longer else -1))
    h.correct(end, "2017-02-01", effective=str(moved))
    as_of = date(2016, 12, 31)
    (before,) = saving(h, as_of, known_at=date(2017, 1, 31))
    (after,) = saving(h, as_of)
    assert before.capped == after.capped == 0
    assert after.days_in_care - before.days_in_care == (1 if longer else -1)
    assert before.owed - after.owed == (D("100.00") if longer else D("-100.00"))


# --- wellbeing_improvement ------------------------------------------------------------------

WELLBEING = {
    "measure": "outcomes_star",
    "price_per_improvement": "1000.00",
    "min_improvement": "10",
    "min_weeks_between": 12,
}


def ttt() -> History:
    h = History("ttt")
    h.agree(mechanism=["weeks_out_of_care", "wellbeing_improvement"],
            wellbeing_improvement=WELLBEING)  # fmt: skip
    h.accede("SUT")
    for case in "ABC":
        h.case(case, date(2019, 12, 30))
    return h


def star(h: History, case: str, day: str, score: str):
    return h.add("WellbeingMeasured", day, case=case, measure="outcomes_star", score=score,
                 key=f"{case}-{day}")  # fmt: skip


def test_wellbeing_improvement_by_hand():
    h = ttt()
    star(h, "A", "2020-01-06", "40")
    star(h, "A", "2020-04-06", "55")  # 13 weeks on: +15 >= 10
    star(h, "B", "2020-01-06", "50")
    star(h, "B", "2020-04-06", "52")  # +2 < 10
    star(h, "C", "2020-01-06", "30")
    star(h, "C", "2020-02-03", "60")  # only 4 weeks on: not yet a later reading
    facts = h.facts()
    contract, cases = contract_from_facts("ttt", facts), cases_from_facts(facts, "ttt")
    readings = readings_from_facts(facts, "ttt")
    result = wellbeing_improvement(contract, cases, readings, date(2020, 6, 30))
    by_case = {w.case: w for w in result}
    assert by_case["A"].status == "improved" and by_case["A"].owed == D("1000.00")
    assert by_case["A"].improvement == 15
    assert by_case["B"].status == "not_improved" and by_case["B"].owed == 0
    assert by_case["C"].status == "awaiting"


def test_a_retracted_later_reading_takes_the_payment_back_as_known_now():
    h = ttt()
    star(h, "A", "2020-01-06", "40")
    later = star(h, "A", "2020-04-06", "55")
    h.retract(later, "2020-07-15")  # recorded after the readings (EARLY, 2017)
    facts = h.facts()
    contract = contract_from_facts("ttt", facts)
    combined = payments(contract, facts, date(2020, 6, 30), weeks=_weeks(h))
    line = next(p for p in combined.lines if p.mechanism == "wellbeing_improvement")
    assert line.owed == 0
    earlier = h.facts(date(2020, 7, 1))
    combined = payments(contract_from_facts("ttt", earlier), earlier, date(2020, 6, 30),
                        weeks=_weeks(h, date(2020, 7, 1)))  # fmt: skip
    line = next(p for p in combined.lines if p.mechanism == "wellbeing_improvement")
    assert line.owed == D("1000.00")


def _weeks(h: History, known_at: date | None = None):
    from soc_ledger.domain.outcomes.liability import liability

    facts = h.facts(known_at)
    return liability(contract_from_facts(h.contract, facts), cases_from_facts(facts, h.contract),
                     coverage_from_facts(facts, h.contract), date(2020, 6, 30))  # fmt: skip


def test_the_payers_total_every_mechanism():
    h = ttt()
    star(h, "A", "2020-01-06", "40")
    star(h, "A", "2020-04-06", "55")
    h.coverage("SUT", "2020-06-30")
    facts = h.facts()
    weeks = _weeks(h)
    combined = payments(contract_from_facts("ttt", facts), facts, date(2020, 6, 30), weeks)
    assert combined.mechanisms == ("weeks_out_of_care", "wellbeing_improvement")
    sut = next(p for p in combined.payers if p.payer == "SUT")
    # The weeks' own SUT bill plus one improvement.
    assert sut.owed == weeks.by_payer["SUT"] + D("1000.00")


def test_a_contract_without_mechanism_is_weeks_out_of_care_alone():
    h = History()
    h.agree()
    facts = h.facts()
    assert contract_from_facts("plcip", facts).terms_on(date(2020, 1, 1)).mechanisms == (
        "weeks_out_of_care",
    )


# --- reunification --------------------------------------------------------------------------

REUNIFICATION = {"price_per_return": "5000.00", "stay_home_weeks": 26, "min_referrals": 3}


def returns_of(h: History, as_of: date):
    from soc_ledger.domain.mechanisms.reunification import in_care_at_referral, reunification

    facts = h.facts()
    return reunification(
        contract_from_facts(h.contract, facts),
        cases_from_facts(facts, h.contract),
        in_care_at_referral(facts, h.contract, as_of),
        coverage_from_facts(facts, h.contract),
        as_of,
    )


def reunify() -> History:
    h = History("ttt")
    h.agree(mechanism=["weeks_out_of_care", "reunification"], reunification=REUNIFICATION)
    h.accede("SUT")
    for case in ("R", "S"):
        h.add("ReferralReceived", "2019-12-16", case=case, borough="SUT", child_ref=f"c-{case}",
              date_of_birth="2006-01-15", behaviours=[], in_care=True)  # fmt: skip
        h.add("ReferralAccepted", "2019-12-16", case=case, intervention="MST")
        h.add("FirstFamilyMeeting", "2020-01-06", case=case)
        h.episode(case, "E1", date(2019, 6, 1), date(2020, 3, 2))
    h.case("N", date(2020, 1, 6))  # referred out of care: not in the cohort
    return h


def test_a_return_home_that_lasts_26_weeks_pays_once():
    h = reunify()
    h.episode("S", "E2", date(2020, 5, 1), date(2020, 6, 1))  # S back in care after 60 days
    h.coverage("SUT", "2020-12-31")
    result = returns_of(h, date(2020, 12, 31))
    by_case = {c.case: c for c in result.cases}
    assert set(by_case) == {"R", "S"}
    # R: home from 2020-03-02; 26 weeks = 182 days, to 2020-08-30; covered by 2020-12-31.
    assert (by_case["R"].returned, by_case["R"].home_until) == (date(2020, 3, 2), date(2020, 8, 30))
    assert by_case["R"].status == "stayed" and by_case["R"].owed == D("5000.00")
    # S: home 2020-03-02 but in care again 2020-05-01; home again 2020-06-01, which must last
    # to 2020-11-29: it does, so S is paid for its second return.
    assert by_case["S"].returned == date(2020, 6, 1)
    assert by_case["S"].status == "stayed"
    # Two referrals in care against a minimum of three.
    assert (result.referrals, result.shortfall) == (2, 1)


def test_a_return_still_inside_its_weeks_or_not_yet_covered_is_not_owed():
    h = reunify()
    h.coverage("SUT", "2020-06-30")
    inside = returns_of(h, date(2020, 8, 1))  # 2020-08-01 < 2020-08-30
    assert {c.status for c in inside.cases} == {"staying"}
    later = returns_of(h, date(2020, 12, 31))  # lasted, but the care data ends 2020-06-30
    assert {c.status for c in later.cases} == {"unverified"}
    assert sum(c.provisional for c in later.cases) == D("10000.00")
    assert sum(c.owed for c in later.cases) == 0


def test_the_dispatch_pays_a_contract_by_the_mechanisms_its_terms_name():
    # payments.py's example: one SUT case, 100 days tracked, 20 in care: 3,500.00 owed by SUT.
    h = essex()
    h.case("A", F, referred=date(2013, 12, 1))
    h.episode("A", "E1", date(2014, 2, 1), date(2014, 2, 21))
    h.coverage("SUT", "2014-06-30")
    facts = h.facts()
    result = payments(contract_from_facts("essex", facts), facts, date(2014, 4, 10))
    assert result.mechanisms == ("care_days_saved",)
    assert [(p.mechanism, p.payer, p.owed) for p in result.payers] == [("all", "SUT", D("3500.00"))]
    assert result.weeks is None and result.quality is None


def test_an_account_on_account():
    # account.py's example: owing 7,100,000.00, one claim of 3,000,000.00 paid in full.
    from soc_ledger.domain.mechanisms.account import account, check_claim

    h = essex()
    h.add("ClaimSubmitted", "2016-05-20", claim="ESX-1", payer="SUT", period_end="2016-03-31",
          lines=[{"case": "to-2016-03-31", "weeks": 0, "amount": "3000000.00"}])  # fmt: skip
    h.add("PaymentReceived", "2016-06-20", claim="ESX-1", payer="SUT", amount="3000000.00")
    h.add("ClaimSubmitted", "2017-05-20", claim="ESX-2", payer="SUT", period_end="2017-03-31",
          lines=[{"case": "to-2017-03-31", "weeks": 0, "amount": "1000000.00"}])  # fmt: skip
    held = account("essex", "SUT", D("7100000.00"), h.facts(), date(2016, 12, 31))
    assert (held.claimed, held.paid) == (D("3000000.00"), D("3000000.00"))  # ESX-2 not yet
    assert held.unclaimed == held.balance == D("4100000.00")
    later = account("essex", "SUT", D("7100000.00"), h.facts(), date(2017, 6, 30))
    # ESX-2 after ESX-1's 3,000,000.00: with 3,900,000.00 owed by its period, 900,000.00 due,
    # so 100,000.00 over-claimed.
    check = check_claim(later, "ESX-2", D("3900000.00"), D("3900000.00"))
    assert (check.claimed_before, check.due_now, check.over_claimed) == (
        D("3000000.00"), D("900000.00"), D("100000.00"))  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    stays=st.lists(st.tuples(st.integers(0, 900), st.integers(1, 300)), min_size=1, max_size=6),
    cap=st.integers(0, 200_000),
    covered=st.integers(0, 1000),
)
def test_a_cohort_is_never_owed_more_than_its_cap_nor_less_than_nothing(stays, cap, covered):
    h = essex([{"cap": "outcome-payments", "payer": "boroughs", "amount": f"{cap}.00"}])
    for n, (offset, length) in enumerate(stays):
        case = f"C{n}"
        h.case(case, F + timedelta(days=n), referred=date(2013, 12, 1))
        start = F + timedelta(days=offset)
        h.episode(case, "E1", start, start + timedelta(days=length))
    h.coverage("SUT", str(F + timedelta(days=covered)))
    (cohort,) = saving(h, date(2017, 1, 1))
    assert 0 <= cohort.owed <= cap
    assert cohort.capped >= 0 and cohort.provisional >= 0
    assert cohort.owed + cohort.provisional <= cap
    # What is owed and capped together is the verified days saved at the price, or nothing.
    gross = max(cohort.days_saved * D("100.00"), D(0)).quantize(D("0.01"))
    assert cohort.owed + cohort.capped == gross


def test_the_care_days_forecast_by_hand():
    from soc_ledger.domain.mechanisms.care_days_forecast import care_days_forecast

    h = essex()
    h.case("A", F, referred=date(2013, 12, 1))
    h.episode("A", "E1", date(2014, 2, 1), date(2014, 2, 21))
    h.coverage("SUT", "2014-06-30")
    as_of = date(2014, 4, 10)
    cohorts = saving(h, as_of)
    (f,) = care_days_forecast(contract_from_facts("essex", h.facts()), cohorts, as_of)
    # 912 days tracked in all (2014-01-01 .. 2016-06-30), 100 elapsed: 812 to come.
    assert f.remaining_days == 812 and f.owed == D("3500.00")
    assert f.maximum == D("48160.00")  # (35 + 0.55 x 812) x 100.00 = 481.6 days
    assert f.expected == D("31920.00")  # (35 + (0.55 - 0.20) x 812) x 100.00 = 319.2 days
    assert f.minimum == 0  # 35 - 0.45 x 812 < 0: nothing, never less
