"""`Windows.covering` (domain/claims/claims.py): the claim whose line covers a week, found by
bisecting the case's lines, is the one SPEC §7's reading names, which is the first claim (in
ledger order) whose line for the case has the week in its window (previous line's period end,
its own period end]. Checked against that reading, scanned claim by claim as `diff` did before,
on random claims of two payers (equal period ends included)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from soc_ledger.domain.claims.claims import Claim, Line, Windows, on_ledger
from soc_ledger.domain.outcomes.prices import ZERO

START = date(2019, 1, 1)
CASES = ("C1", "C2", "C3")


def scanned(claims: list[Claim], windows: Windows, payer: str, case: str, end: date):
    """The reading itself: every claim in order, its payer's, with a line for the case whose
    window holds the week."""
    for claim in claims:
        if claim.payer != payer or end > claim.period_end:
            continue
        if (claim.claim, case) not in windows.previous:
            continue
        after = windows.previous[(claim.claim, case)]
        if after is None or end > after:
            return claim
    return None


claims_drawn = st.lists(
    st.tuples(
        st.sampled_from(("SUT", "CBO")),
        st.integers(0, 8),  # the period end, in quarters (several claims may share one)
        st.sets(st.sampled_from(CASES), min_size=1),
    ),
    max_size=8,
)


@given(claims_drawn, st.sampled_from(CASES), st.integers(-10, 1000))
def test_the_bisected_claim_is_the_scanned_one(drawn, case, day):
    claims = on_ledger(
        [
            Claim(
                f"K{i}", payer, START + timedelta(days=91 * quarter),
                START + timedelta(days=91 * quarter + 30), i,
                tuple(Line(c, 13, ZERO) for c in sorted(cases)),
            )
            for i, (payer, quarter, cases) in enumerate(drawn)
        ],
        date.max,
    )  # fmt: skip
    end = START + timedelta(days=day)
    for payer in ("SUT", "CBO"):
        windows = Windows.of(claims, payer)
        assert windows.covering(case, end) == scanned(claims, windows, payer, case, end)


def test_a_week_falls_to_the_line_whose_window_holds_it():
    # C1 claimed to 2019-03-31 (K0) then to 2019-06-30 (K1): the week ending 2019-04-07 is
    # K1's, 2019-03-31 is K0's, and 2019-07-07 no claim's yet.
    k0 = Claim("K0", "SUT", date(2019, 3, 31), date(2019, 4, 30), 1, (Line("C1", 13, ZERO),))
    k1 = Claim("K1", "SUT", date(2019, 6, 30), date(2019, 7, 30), 2, (Line("C1", 13, ZERO),))
    windows = Windows.of([k0, k1], "SUT")
    assert windows.covering("C1", date(2019, 3, 31)) is k0
    assert windows.covering("C1", date(2019, 4, 7)) is k1
    assert windows.covering("C1", date(2019, 7, 7)) is None
    assert windows.covering("C2", date(2019, 3, 31)) is None
