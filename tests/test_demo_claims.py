"""The demo's claims (SPEC §7): made at the time from the data then known, reconciled later.

Every claim line claims exactly what was due as known on its recorded date, so no reconciliation
shows a claim error; the differences are all later corrections (stays reported late, end dates
restated, episodes retracted), each naming the events that made it. Reconciling every claim and
summing the statements agrees to the penny with `liability`.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest

from soc_ledger.domain.knowledge import EVERYTHING, KnownAt
from soc_ledger.ledger.demo import cohort as demo
from soc_ledger.ledger.demo.history import history
from soc_ledger.ledger.service import Ledger
from soc_ledger.projections import claims, latest, queries
from tests.helpers import run

AS_OF = date(2023, 12, 31)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo-claims') / 'ledger.db'}"
    result = run("demo", "--db", url, "--format", "json")
    assert result.exit_code == 0, result.output
    return url


@pytest.fixture(scope="module")
def ledger(demo_db: str):
    with Ledger(demo_db) as opened:
        opened.follow(latest.catch_up, latest.NAME)
        yield opened


@pytest.fixture(scope="module")
def reconciled(ledger) -> list[claims.Reconciliation]:
    return claims.reconcile_many(ledger.engine, demo.CONTRACT, AS_OF)


def _agrees(ledger, reconciled, as_of: date, known: KnownAt) -> None:
    """Every statement adds up, and together they are `liability` to the penny."""
    statements = claims.statements(ledger.engine, demo.CONTRACT, as_of, known)
    result = queries.liability_at(ledger.engine, demo.CONTRACT, as_of, known)
    adjustments: Counter[str] = Counter()
    for r in reconciled:
        assert sum((x.adjustment for x in r.lines), Decimal(0)) == r.adjustment
        adjustments[r.claim.payer] += r.adjustment
    assert {s.payer: s.due for s in statements} == result.by_payer
    for s in statements:
        assert s.balance == adjustments[s.payer] + s.unclaimed_amount
        assert s.balance == s.due - s.total("paid")
    assert sum((s.due for s in statements), Decimal(0)) == result.totals.owed


def test_the_demo_claims_quarterly_and_is_paid_a_month_later(reconciled):
    payers = Counter(r.claim.payer for r in reconciled)
    assert set(payers) == {b[0] for b in demo.BOROUGHS} | {"CBO"}
    for r in reconciled:
        assert r.claim.period_end == demo.quarter_end(r.claim.period_end)
        assert r.claim.submitted == r.claim.period_end + timedelta(days=75)
        assert r.recorded_on.date() == r.claim.submitted
        first = min(p.effective for p in r.claim.payments)
        assert first == r.claim.submitted + timedelta(days=30)
    assert payers["CBO"] == max(payers.values())  # the top-up funder pays every quarter


def test_every_line_claims_what_was_due_as_known_when_it_was_made(reconciled):
    lines = [x for r in reconciled for x in r.lines]
    assert len(lines) > 5000
    assert all(x.claimed == x.due_then.amount for x in lines)
    assert all(x.claimed_weeks == x.due_then.weeks for x in lines)
    assert {x.difference for x in lines} == {None, "later_correction"}


def test_later_care_data_corrections_show_and_name_their_events(reconciled):
    moved = [(r, x) for r in reconciled for x in r.lines if x.difference == "later_correction"]
    assert len(moved) > 100
    kinds = Counter()
    for r, x in moved:
        assert x.because, (r.claim.claim, x.case)
        for p in x.because:
            ref = r.events[p]
            assert ref.recorded_on > r.recorded_on.isoformat()  # learnt after the claim
            kinds[ref.type] += 1
    # Late stays, restated end dates, retracted episodes.
    assert {"CareEpisodeStarted", "EventCorrected", "EventRetracted"} <= set(kinds)
    # Both ways: over-claims owed back, under-claims still owed.
    assert any(x.due_now.amount < x.due_then.amount for _, x in moved)
    assert any(x.due_now.amount > x.due_then.amount for _, x in moved)


def test_disputes_some_upheld_some_rejected_all_settled(reconciled):
    disputed = [(r, x) for r in reconciled for x in r.lines if x.dispute is not None]
    outcomes = Counter(x.dispute.outcome for _, x in disputed)
    assert outcomes == {"upheld": 3, "rejected": 3}
    for _, x in disputed:
        assert x.disputed == 0 and x.adjustment == 0
        settled = x.dispute.resolution.amount
        if x.dispute.outcome == "upheld":
            # The borough was right: a later correction lowered what was due.
            assert x.difference == "later_correction" and settled == x.due_now.amount
            assert x.due_now.amount < x.claimed
        else:
            assert x.difference is None and settled == x.claimed == x.due_now.amount


def test_reconciling_every_claim_and_summing_the_statements_is_liability(ledger, reconciled):
    _agrees(ledger, reconciled, AS_OF, EVERYTHING)
    total = claims.statements(ledger.engine, demo.CONTRACT, AS_OF)
    assert f"{sum((s.due for s in total), Decimal(0)):.2f}" == "6534062.00"
    assert all(s.unclaimed_amount == 0 for s in total)  # every outcome week has been claimed


def test_the_same_as_known_in_the_middle_of_the_contract(ledger):
    """As of 2021-03-31 as known on 2021-06-30: fewer claims, weeks still unclaimed."""
    as_of, known = date(2021, 3, 31), KnownAt.on(date(2021, 6, 30))
    reconciled = claims.reconcile_many(ledger.engine, demo.CONTRACT, as_of, known)
    assert reconciled and all(r.claim.submitted <= as_of for r in reconciled)
    _agrees(ledger, reconciled, as_of, known)
    statements = claims.statements(ledger.engine, demo.CONTRACT, as_of, known)
    assert sum((s.unclaimed_amount for s in statements), Decimal(0)) > 0


def test_the_command_gives_what_the_query_gives(demo_db, reconciled):
    r = next(r for r in reconciled if any(x.dispute for x in r.lines))
    data = json.loads(
        run("reconcile", r.claim.claim, "--db", demo_db, "--as-of", "2023-12-31",
            "--format", "json").stdout
    )
    assert data["totals"]["adjustment"] == f"{r.adjustment:.2f}"
    assert [x["case"] for x in data["lines"]] == [x.case for x in r.lines]
    rows = run("statement", "CBO", "--db", demo_db, "--as-of", "2023-12-31",
               "--format", "csv").stdout.splitlines()
    assert rows[0] == (
        "claim,period_end,submitted,claimed,due,paid,disputed,adjustment,"
        "contract,as_of,known_at,log_position"
    )
    assert rows[-2].startswith("unclaimed,") and rows[-1].startswith("total,")
    assert sum(Decimal(row.split(",")[4]) for row in rows[1:-1]) == Decimal("1373985.00")
    assert Decimal(rows[-1].split(",")[4]) == Decimal("1373985.00")


def test_claims_at_scale_repeat_for_every_copy_of_the_cohort():
    one = [e for e in history(1) if e["type"] == "ClaimSubmitted"]
    two = [e for e in history(2) if e["type"] == "ClaimSubmitted"]
    assert [e["claim"] for e in one] == [e["claim"] for e in two]
    for a, b in zip(one, two, strict=True):
        copies = [{**x, "case": x["case"] + "-1"} for x in a["lines"]]
        assert b["lines"] == a["lines"] + copies
