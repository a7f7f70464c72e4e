"""The weeks of every tracked case for the latest knowledge, kept as rows: the fast path.

Every week is stored as it reads once elapsed (status, amounts after caps, what decided it),
with each case's tracking window and its days in care as intervals. Any `as_of` is then a
prefix: a week whose last day is after `as_of` is pending; a case is tracked at `as_of` when it
is tracked at all and has engaged `min_engagement_days` by then; caps take weeks in the order
of their last days, so the weeks owed by `as_of` are capped exactly as they are at any later
date. A query at (as_of, latest knowledge) reads rows instead of recomputing the rules.

Rows are refreshed by following the log, only for the cases an event touched (all cases of a
borough for its care-data coverage, all cases of the contract for its terms), then the caps
are re-run over the contract's weeks. A rebuild from position 0 gives identical rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from soc_ledger.domain.events import CASE_EVENTS
from soc_ledger.ledger import index
from soc_ledger.ledger.index import metadata, tracking
from soc_ledger.projections import readmodel
from soc_ledger.projections.facts import CaseFacts
from soc_ledger.projections.outcomes import Liability, Tally, summarise
from soc_ledger.projections.weeks import (
    Assessment,
    TermsTimeline,
    Tracking,
    Week,
    _care_intervals,
    _Span,
    apply_caps,
    assess_case,
)

if TYPE_CHECKING:
    from soc_ledger.ledger.store import EventLog

NAME = "latest_weeks"
# Far enough that every window has elapsed, near enough that date arithmetic cannot overflow.
FOREVER = date(9000, 1, 1)
PENNY = Decimal("0.01")
TERMS_EVENTS = frozenset({"ContractAgreed", "VariationAgreed", "BoroughAcceded", "BoroughWithdrew"})

latest_cases = Table(
    "latest_cases",
    metadata,
    Column("contract", String(200), primary_key=True),
    Column("case_id", String(200), primary_key=True),
    Column("borough", String(200), nullable=False),
    Column("intervention", String(20), nullable=False),
    Column("first_meeting", Date, nullable=False),
    Column("tracked_from", Date, nullable=False),  # the first as_of at which it is tracked
    Column("tracking_start", Date, nullable=False),
    Column("weeks", Integer, nullable=False),
    Column("week_rule", String(40), nullable=False),
    Column("care", Text, nullable=False),  # JSON [[first day, first day after], ...] ordinals
)

MONEY_COLUMNS = (
    "borough_amount",
    "top_up_amount",
    "capped_borough",
    "capped_top_up",
    "provisional_borough",
    "provisional_top_up",
)

latest_weeks = Table(
    NAME,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contract", String(200), nullable=False),
    Column("case_id", String(200), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("start", Date, nullable=False),
    Column("end", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("variation", String(200), nullable=False),
    # Money in pence: exact sums in any database, never a binary float.
    *(Column(name, BigInteger, nullable=False) for name in MONEY_COLUMNS),
    Column("days_in_care", Integer, nullable=False),
    Column("days_out_of_care", Integer, nullable=False),
    Column("because", Text, nullable=False),
    Index("ix_latest_weeks_end", "contract", "end"),
    Index("ix_latest_weeks_case", "contract", "case_id"),
)


def _pence(amount: Decimal) -> int:
    return int(amount / PENNY)


def _pounds(pence: int) -> Decimal:
    return Decimal(pence).scaleb(-2)


def _week_row(contract: str, w: Week) -> dict:
    return {
        "contract": contract,
        "case_id": w.case,
        "idx": w.index,
        "start": w.start,
        "end": w.end,
        "status": w.status,
        "variation": w.variation,
        **{name: _pence(getattr(w, name)) for name in MONEY_COLUMNS},
        "days_in_care": w.days_in_care,
        "days_out_of_care": w.days_out_of_care,
        "because": json.dumps(list(w.because)),
    }


def _week(row) -> Week:
    return Week(
        case=row.case_id,
        index=row.idx,
        start=row.start,
        end=row.end,
        status=row.status,
        variation=row.variation,
        **{name: _pounds(getattr(row, name)) for name in MONEY_COLUMNS},
        days_in_care=row.days_in_care,
        days_out_of_care=row.days_out_of_care,
        because=tuple(json.loads(row.because)),
    )


# --- following the log -------------------------------------------------------------------------


def catch_up(engine: Engine, log: EventLog) -> int:
    """Refresh the weeks of every case touched since the tracked position."""
    metadata.create_all(engine, tables=[latest_cases, latest_weeks])
    readmodel.catch_up(engine, log)
    with engine.begin() as conn:
        position = index.claim_position(conn, NAME)
        new = index.unindexed(conn, position)
        touched: dict[str, _Touched] = {}
        for r in new:
            position = r.position
            _touch(touched.setdefault(r.contract, _Touched()), r)
        for contract, what in touched.items():
            if what.anything:
                _refresh(conn, engine, contract, what)
        conn.execute(update(tracking).where(tracking.c.name == NAME).values(position=position))
    return len(new)


@dataclass
class _Touched:
    everything: bool = False
    boroughs: set[str] | None = None
    cases: set[str] | None = None

    def __post_init__(self) -> None:
        self.boroughs = set()
        self.cases = set()

    @property
    def anything(self) -> bool:
        return self.everything or bool(self.boroughs) or bool(self.cases)


def _touch(what: _Touched, r) -> None:
    if r.target_version is not None:
        stream = json.loads(r.stream)
        if len(stream) == 2:
            what.cases.add(stream[1])
        else:
            what.everything = True  # a correction of the contract's terms or coverage
    elif r.type in CASE_EVENTS:
        what.cases.add(r.case_id)
    elif r.type in TERMS_EVENTS:
        what.everything = True
    elif r.type == "CareDataReceived":
        what.boroughs.add(index.payload_of(r)["borough"])


def _refresh(conn, engine: Engine, contract: str, what: _Touched) -> None:
    from soc_ledger.projections.queries import QueryError, knowledge

    try:
        k = knowledge(engine, contract)
    except QueryError:
        return  # not agreed (yet): nothing to track
    timeline = TermsTimeline(k.contract)
    if what.everything:
        ids = set(k.cases)
        conn.execute(delete(latest_weeks).where(latest_weeks.c.contract == contract))
        conn.execute(delete(latest_cases).where(latest_cases.c.contract == contract))
    else:
        ids = set(what.cases) | {c.case for c in k.cases.values() if c.borough in what.boroughs}
        for chunk in _chunks(sorted(ids)):
            conn.execute(
                delete(latest_weeks).where(
                    latest_weeks.c.contract == contract, latest_weeks.c.case_id.in_(chunk)
                )
            )
            conn.execute(
                delete(latest_cases).where(
                    latest_cases.c.contract == contract, latest_cases.c.case_id.in_(chunk)
                )
            )
    case_rows, weeks = [], []
    for case_id in sorted(ids & set(k.cases)):
        assessed = assess_case(k.cases[case_id], timeline, k.coverage, FOREVER)
        if assessed is None:
            continue
        case_rows.append(_case_row(contract, assessed, timeline))
        weeks.extend(assessed.weeks)
    if what.everything and timeline.first_caps:
        # Every week of the contract is here: cap them before they are written.
        weeks = apply_caps(weeks, k.cases, timeline)
    if case_rows:
        conn.execute(insert(latest_cases), case_rows)
    if weeks:
        conn.execute(insert(latest_weeks), [_week_row(contract, w) for w in weeks])
    if timeline.first_caps and not what.everything:
        _recap(conn, contract, k.cases, timeline)


def _case_row(contract: str, a: Assessment, timeline: TermsTimeline) -> dict:
    case = a.case
    assert case.first_meeting is not None and case.intervention is not None
    first = a.tracking.start.toordinal()
    spans = [_Span.of(s) for s in case.spells]
    last = first + 7 * a.tracking.weeks - 1
    care = _care_intervals(spans, timeline, first, a.tracking.weeks, last)
    engaged = timeline.at(case.first_meeting.toordinal()).terms.min_engagement_days
    return {
        "contract": contract,
        "case_id": case.case,
        "borough": case.borough,
        "intervention": case.intervention,
        "first_meeting": case.first_meeting,
        "tracked_from": date.fromordinal(case.first_meeting.toordinal() + engaged),
        "tracking_start": a.tracking.start,
        "weeks": a.tracking.weeks,
        "week_rule": a.week_rule,
        "care": json.dumps(care),
    }


def _recap(conn, contract: str, cases, timeline: TermsTimeline) -> None:
    rows = conn.execute(
        select(latest_weeks).where(latest_weeks.c.contract == contract).order_by(latest_weeks.c.id)
    ).all()
    weeks = [_week(r) for r in rows]
    capped = apply_caps(weeks, cases, timeline)
    changes = []
    for row, before, after in zip(rows, weeks, capped, strict=True):
        if before != after:
            changes.append(
                {"row_id": row.id, **{n: _pence(getattr(after, n)) for n in MONEY_COLUMNS},
                 "new_because": json.dumps(list(after.because))}
            )
    if changes:
        conn.execute(
            update(latest_weeks)
            .where(latest_weeks.c.id == bindparam("row_id"))
            .values(**{n: bindparam(n) for n in MONEY_COLUMNS}, because=bindparam("new_because")),
            changes,
        )


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def rebuild(engine: Engine, log: EventLog) -> int:
    with engine.begin() as conn:
        conn.execute(delete(latest_weeks))
        conn.execute(delete(latest_cases))
        conn.execute(delete(tracking).where(tracking.c.name == NAME))
    return catch_up(engine, log)


# --- answering -------------------------------------------------------------------------------


def liability_at(engine: Engine, contract: str, as_of: date, timeline: TermsTimeline) -> Liability:
    """`outcomes.liability` for the latest knowledge, summed by the database: same figures."""
    today = as_of.toordinal()
    # In the order of `Tally.money`.
    order = (
        "borough_amount",
        "top_up_amount",
        "provisional_borough",
        "provisional_top_up",
        "capped_borough",
        "capped_top_up",
    )
    sums = [func.sum(latest_weeks.c[name]) for name in order]
    with engine.connect() as conn:
        cases = conn.execute(
            select(latest_cases)
            .where(latest_cases.c.contract == contract, latest_cases.c.tracked_from <= as_of)
            .order_by(latest_cases.c.case_id)
        ).all()
        grouped = conn.execute(
            select(latest_weeks.c.case_id, latest_weeks.c.status, func.count(), *sums)
            .where(latest_weeks.c.contract == contract, latest_weeks.c.end <= as_of)
            .group_by(latest_weeks.c.case_id, latest_weeks.c.status)
        ).all()
    tallies: dict[str, Tally] = {}
    for case_id, status, count, *money in grouped:
        tally = tallies.setdefault(case_id, Tally())
        tally.counts[status] += count
        tally.money = [a + _pounds(int(b)) for a, b in zip(tally.money, money, strict=True)]
    per_case = []
    for c in cases:
        tally = tallies.get(c.case_id) or Tally()
        first = c.tracking_start.toordinal()
        elapsed_blocks = min(c.weeks, max(0, (today - first + 1) // 7))
        tally.counts["pending"] += c.weeks - elapsed_blocks
        upto = min(first + 7 * c.weeks - 1, today)
        days_in = sum(max(0, min(b, upto + 1) - max(a, first)) for a, b in json.loads(c.care))
        tally.days_in, tally.days_out = days_in, max(0, upto - first + 1) - days_in
        facts = CaseFacts(c.case_id, c.borough, c.intervention, None, c.first_meeting, None, (), ())
        window = Tracking(c.tracking_start, c.weeks, c.week_rule, ())
        assessed = Assessment(facts, window, c.week_rule, (), tally.days_in, tally.days_out)
        per_case.append((assessed, tally, ()))
    states = {c.case_id: "tracked" for c in cases}
    return summarise(timeline, (c.borough for c in cases), per_case, as_of, None, states)


def weeks_of(engine: Engine, contract: str, case: str) -> dict[tuple[int, date], Week]:
    """The stored (capped) weeks of one case, by (index, last day)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(latest_weeks).where(
                latest_weeks.c.contract == contract, latest_weeks.c.case_id == case
            )
        ).all()
    return {(r.idx, r.end): _week(r) for r in rows}
