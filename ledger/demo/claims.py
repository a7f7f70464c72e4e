"""The demo's claims, disputes and payments (SPEC §7): claimed at the time from the data then known.

Every quarter, 75 days after it ends (after every borough's return for it, which arrive 40-70
days after), the prime contractor claims from each borough and from the top-up funder what the
outcome rules give from the facts known that day: one line per case with outcome weeks since
the payer's previous line for it (`projections.claims`, the reading the ledger reconciles by).
Each payer pays a month later. A few borough lines are disputed 20 days after the claim and
withheld from the payment: some rejected (the line stands; paid when settled), some upheld
because a later care-data correction did lower what was due (settled at the corrected amount,
two quarters later). Later returns (stays reported a quarter late, end dates restated,
episodes retracted) make the reconciliations show real differences.

The claims are computed on the first copy of the cohort with the pure outcome rules on the
in-memory history; for `scale` N every other copy's lines repeat them (the caps scale with the
cohort and never bind, so every copy owes the same). Deterministic: the same bytes every run.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from soc_ledger.domain.claims.owed import Owed
from soc_ledger.domain.events import CASE_EVENTS, EVENT_ADAPTER
from soc_ledger.domain.knowledge import EVERYTHING, KnownAt, Recorded, known_facts
from soc_ledger.domain.outcomes.facts import (
    CaseFacts,
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
)
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import tracking
from soc_ledger.domain.values import parse_instant
from soc_ledger.ledger.demo.cohort import (
    CONTRACT,
    LAST_RETURN,
    SEED,
    Case,
    next_quarter,
    quarter_end,
)

GROUP = 5  # ordering group within a day: after care data (2-4)
CLAIM_LAG = timedelta(days=75)
DISPUTE_LAG = timedelta(days=20)
PAYMENT_LAG = timedelta(days=30)
REJECTED_SETTLED = timedelta(days=60)
DISPUTED_BEFORE = date(2022, 12, 31)  # disputes settle and are paid before the demo's as_of
DISPUTES = 3  # upheld, and as many rejected

Row = tuple[date, int, int, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Line:
    case: str
    weeks: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Dispute:
    case: str
    outcome: str  # "upheld" | "rejected"
    settled: date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PlannedClaim:
    claim: str
    payer: str
    period_end: date
    submitted: date
    lines: tuple[Line, ...]
    disputes: tuple[Dispute, ...] = ()


_PLANS: dict[int, tuple[PlannedClaim, ...]] = {}


def claim_rows(rows: Sequence[Row], cases: Sequence[Case], scale: int, seed: int = SEED,
               start: int = 0) -> list[Row]:
    """The claim, dispute and payment events for a history's `rows` (numbered from `start`)."""
    plan = _PLANS.get(seed)
    if plan is None:
        plan = _PLANS[seed] = plan_claims(_first_copy(rows, {c.case for c in cases}))
    out: list[Row] = []
    for recorded, event in _events(plan, scale):
        out.append((recorded, GROUP, start + len(out), event))
    return out


# --- the history as the ledger would hold it ---------------------------------------------------


def _first_copy(rows: Sequence[Row], cases: set[str]) -> list[Recorded]:
    """The contract's events and the first copy of every case, as log entries in log order."""
    kept: list[Recorded] = []
    where: dict[str, tuple[str, int]] = {}  # key -> (stream, version)
    versions: dict[str, int] = {}
    for *_, data in sorted(rows, key=lambda r: (r[0], r[1], r[2])):
        target = None
        if "target" in data:
            if data["target"] not in where:
                continue  # a correction of another copy's event
            stream, target = where[data["target"]]
        elif data["type"] in CASE_EVENTS:
            if data["case"] not in cases:
                continue
            stream = f"{CONTRACT}/{data['case']}"
        else:
            stream = CONTRACT
        versions[stream] = versions.get(stream, 0) + 1
        moment = parse_instant(data["recorded_on"])
        kept.append(
            Recorded(len(kept) + 1, stream, versions[stream], moment, moment,
                     EVENT_ADAPTER.validate_python(data), target)
        )
        if "key" in data:
            where[data["key"]] = (stream, versions[stream])
    return kept


def _fold(records: Sequence[Recorded], known_at: KnownAt):
    facts = known_facts(records, known_at)
    return (
        contract_from_facts(CONTRACT, facts),
        cases_from_facts(facts, CONTRACT),
        coverage_from_facts(facts, CONTRACT),
    )


def _owed(records: Sequence[Recorded], known_at: KnownAt, horizon: date) -> Owed:
    return Owed(*_fold(records, known_at), horizon)


class _ClaimDays:
    """The cohort as known on successive claim days, assessed only where something can be due.

    A case is left out of a day's `Owed` when nothing of it can be claimed, which is exact:
    when no cap can bind by the period's end (caps are contract-wide) and either it is not
    tracked, or every payer has claimed it to the end of its window, or its window ended by the
    previous period and its facts, the terms and whether its weeks are verified are as they were
    on the previous claim day (when nothing was due for it either).
    """

    def __init__(self, records: Sequence[Recorded], funder: str) -> None:
        self.records = records
        self.funder = funder
        self.seen: dict[str, tuple[CaseFacts, date]] = {}  # case -> (facts, coverage) last day
        self.terms: list | None = None
        self.previous: date | None = None

    def owed(
        self,
        day: date,
        period: date,
        last: Mapping[tuple[str, str], date],
        keep: set[str],
    ) -> Owed:
        contract, cases, coverage = _fold(self.records, KnownAt(parse_instant(day.isoformat())))
        timeline = TermsTimeline(contract)
        seen = {c: (f, coverage.get(f.borough, date.min)) for c, f in cases.items()}
        if not _caps_may_bind(timeline, cases, period):
            same_terms = contract.terms_history == self.terms
            cases = {
                c: f for c, f in cases.items()
                if c in keep or self._claimable(f, timeline, seen[c], period, last, same_terms)
            }
        self.seen, self.terms, self.previous = seen, contract.terms_history, period
        return Owed(contract, cases, coverage, period)

    def _claimable(
        self,
        case: CaseFacts,
        timeline: TermsTimeline,
        now: tuple[CaseFacts, date],
        period: date,
        last: Mapping[tuple[str, str], date],
        same_terms: bool,
    ) -> bool:
        window = tracking(case, timeline, period)
        if window is None:
            return False
        claimed = [last.get((payer, case.case)) for payer in (case.borough, self.funder)]
        if None not in claimed and min(claimed) >= window.end:  # type: ignore[type-var]
            return False
        before = self.seen.get(case.case)
        return not (
            same_terms
            and before is not None
            and self.previous is not None
            and window.end <= self.previous
            and before[0] == now[0]
            and min(before[1], window.end) == min(now[1], window.end)
        )


def _caps_may_bind(timeline: TermsTimeline, cases: Mapping[str, CaseFacts], as_of: date) -> bool:
    """Could any cap bind by `as_of`? Not if every week that has ended by then of the cases it
    covers, paid at the highest price of the share it limits, stays under its lowest amount."""
    if not timeline.first_caps:
        return False
    weeks: dict[str, int] = {}
    for case in cases.values():
        window = tracking(case, timeline, as_of)
        if window is not None:
            elapsed = min(window.weeks, max(0, (as_of - window.start).days + 1) // 7)
            weeks[case.borough] = weeks.get(case.borough, 0) + elapsed
    for cap_id, cap in timeline.first_caps.items():
        lowest = min(seg.caps[cap_id].amount for seg in timeline.segments if cap_id in seg.caps)
        covered = sum(n for b, n in weeks.items() if cap.boroughs is None or b in cap.boroughs)
        top_up = cap.payer == timeline.top_up_funder
        price = max(seg.top_up_price if top_up else seg.borough_price for seg in timeline.segments)
        if covered * price >= lowest:
            return True
    return False


def _claim_id(payer: str, period_end: date) -> str:
    return f"{payer}-{period_end.year}Q{(period_end.month - 1) // 3 + 1}"


# --- the plan -------------------------------------------------------------------------------


def plan_claims(records: Sequence[Recorded]) -> tuple[PlannedClaim, ...]:
    """Quarterly claims per payer from what was known on each claim day, then the disputes."""
    first = min(r.event.effective for r in records if r.event.type == "FirstFamilyMeeting")
    funder = next(r.event.top_up_funder for r in records if r.event.type == "ContractAgreed")
    claims: list[PlannedClaim] = []
    last: dict[tuple[str, str], date] = {}  # (payer, case) -> period end of its latest line
    after: dict[tuple[str, str], date | None] = {}  # (claim, case) -> its previous line's end
    later: dict[tuple[str, str], Decimal] = {}  # (claim, case) -> due two claim days on
    days = _ClaimDays(records, funder)
    period = quarter_end(first)
    while period <= LAST_RETURN:
        day = period + CLAIM_LAG
        earlier = _quarters_before(period, 2)
        recheck = {line.case for c in claims if c.period_end == earlier for line in c.lines}
        owed = days.owed(day, period, last, recheck)
        for old in claims:
            if old.period_end == earlier:
                for line in old.lines:
                    later[(old.claim, line.case)] = owed.due(
                        line.case, old.payer, after[(old.claim, line.case)], old.period_end
                    ).amount
        for payer in _payers(owed):
            name = _claim_id(payer, period)
            lines = []
            for case in sorted(owed.cases):
                share = owed.due(case, payer, last.get((payer, case)), period)
                if share.weeks:
                    lines.append(Line(case, share.weeks, share.amount))
                    after[(name, case)] = last.get((payer, case))
                    last[(payer, case)] = period
            if lines:
                claims.append(PlannedClaim(name, payer, period, day, tuple(lines)))
        period = next_quarter(period)

    final = _owed(records, EVERYTHING, max(c.period_end for c in claims))
    upheld, rejected = [], []
    for claim in claims:
        if claim.payer == funder or claim.period_end > DISPUTED_BEFORE:
            continue
        for line in claim.lines:
            now = final.due(line.case, claim.payer, after[(claim.claim, line.case)],
                            claim.period_end).amount
            if now < line.amount and later.get((claim.claim, line.case)) == now:
                upheld.append((claim.claim, line.case, now))
            elif now == line.amount:
                rejected.append((claim.claim, line.case, now))
    rng = random.Random(SEED + 7)
    chosen: dict[str, list[Dispute]] = {}
    for name, case, now in sorted(rng.sample(upheld, min(DISPUTES, len(upheld)))):
        day = _claim_day(claims, name)
        settled = _quarters_after(day, 2) + timedelta(days=7)
        chosen.setdefault(name, []).append(Dispute(case, "upheld", settled, now))
    for name, case, now in sorted(rng.sample(rejected, min(DISPUTES, len(rejected)))):
        settled = _claim_day(claims, name) + REJECTED_SETTLED
        chosen.setdefault(name, []).append(Dispute(case, "rejected", settled, now))
    return tuple(
        PlannedClaim(c.claim, c.payer, c.period_end, c.submitted, c.lines,
                     tuple(sorted(chosen.get(c.claim, ()), key=lambda d: d.case)))
        for c in claims
    )


def _payers(owed: Owed) -> list[str]:
    boroughs = sorted(owed.contract.boroughs)
    return boroughs + ([owed.funder] if owed.funder else [])


def _quarters_before(period: date, n: int) -> date:
    """The end of the quarter `n` quarters before the one ending on `period`."""
    for _ in range(n):
        period = quarter_end(period - timedelta(days=92))
    return period


def _quarters_after(day: date, n: int) -> date:
    """The claim day `n` quarters after the claim day `day`."""
    period = day - CLAIM_LAG
    for _ in range(n):
        period = next_quarter(period)
    return period + CLAIM_LAG


def _claim_day(claims: Iterable[PlannedClaim], name: str) -> date:
    return next(c.submitted for c in claims if c.claim == name)


# --- events ---------------------------------------------------------------------------------


def _events(plan: Sequence[PlannedClaim], scale: int) -> list[tuple[date, dict[str, Any]]]:
    out: list[tuple[date, dict[str, Any]]] = []

    def add(kind: str, day: date, key: str, source: str, **fields: Any) -> None:
        out.append((day, {"type": kind, "contract": CONTRACT, "effective": day.isoformat(),
                          "recorded_on": day.isoformat(), "key": key, "source": source,
                          **fields}))

    for claim in plan:
        lines = [
            {"case": line.case if copy == 0 else f"{line.case}-{copy}", "weeks": line.weeks,
             "amount": str(line.amount)}
            for copy in range(scale)
            for line in claim.lines
        ]
        add("ClaimSubmitted", claim.submitted, f"claim-{claim.claim}", "quarterly claim",
            claim=claim.claim, payer=claim.payer, period_end=claim.period_end.isoformat(),
            lines=lines)
        claimed = {line.case: line.amount for line in claim.lines}
        raised = claim.submitted + DISPUTE_LAG
        for d in claim.disputes:
            add("ClaimLineDisputed", raised, f"dispute-{claim.claim}-{d.case}",
                f"{claim.payer} remittance advice", claim=claim.claim, case=d.case,
                raised_by=claim.payer, reason="outcome weeks questioned: the young person "
                "was reported in care in the period")
        withheld = sum((claimed[d.case] for d in claim.disputes), Decimal("0.00"))
        total = sum(Decimal(line["amount"]) for line in lines)
        add("PaymentReceived", claim.submitted + PAYMENT_LAG, f"pay-{claim.claim}",
            f"{claim.payer} remittance advice", claim=claim.claim, payer=claim.payer,
            amount=str(total - withheld))
        for d in claim.disputes:
            add("DisputeResolved", d.settled, f"settle-{claim.claim}-{d.case}",
                "disputes panel", claim=claim.claim, case=d.case, outcome=d.outcome,
                amount=str(d.amount))
            if d.amount:
                add("PaymentReceived", d.settled + timedelta(days=14),
                    f"pay-{claim.claim}-{d.case}", f"{claim.payer} remittance advice",
                    claim=claim.claim, payer=claim.payer, amount=str(d.amount))
    return out

