"""The tracked cases of each contract for the latest knowledge, one row per case: the fast path.

Every tracked case is assessed once with every week elapsed and stored as ONE row of
`latest_case_weeks`, whatever its number of weeks. Any `as_of` is then a prefix of that row:
a week whose last day is after `as_of` is pending, and a week whose last day is on or before it
reads as it does once elapsed (status and price depend on the latest knowledge, not on
`as_of`); a case is tracked at `as_of` when it is tracked at all and has engaged
`min_engagement_days` by then; caps take weeks in the order of their last days, so the weeks
owed by `as_of` are capped exactly as they are at any later date.

The row and its encoding are `latest_row.py`; the caps over the stored rows `latest_caps.py`.

Rows are refreshed by following the log, only for the cases an event touched: a case event
its case; a `CareDataReceived` the cases of its borough whose clipped coverage moved; a terms
event every case of the contract. The caps are re-allocated over the contract's stored weeks
only when they can bind. A rebuild from position 0 gives identical rows.

A build (or a refresh of more than a tenth of the contract's cases) reads the contract's case
facts in ONE pass sorted by case, assessing and writing case after case in batches: time
linear in the events, memory flat. A few cases are read by stream instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Table,
    case,
    delete,
    func,
    literal,
    select,
    update,
)

from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.events import CASE_EVENTS
from soc_ledger.domain.outcomes.assessment import Assessment, assess_case, week_statuses
from soc_ledger.domain.outcomes.caps import CapAllocator
from soc_ledger.domain.outcomes.facts import (
    CaseFacts,
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
    merge_refs,
)
from soc_ledger.domain.outcomes.liability import Liability, Tally, summarise
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import Tracking
from soc_ledger.domain.outcomes.weeks import Week
from soc_ledger.ledger import bulk, index
from soc_ledger.ledger.index import events_index, metadata, tracking
from soc_ledger.projections import claims_made, seals
from soc_ledger.projections.latest_caps import recap
from soc_ledger.projections.latest_row import (
    COLUMNS,
    NAME,
    NO_UNIT,
    case_row,
    count_digits,
    elapsed_blocks,
    latest_case_weeks,
    to_pounds,
)
from soc_ledger.projections.outcome_facts import knowledge, latest_case_facts, latest_facts

if TYPE_CHECKING:
    from soc_ledger.ledger.store import EventLog

# Far enough that every window has elapsed, near enough that date arithmetic cannot overflow.
FOREVER = date(9000, 1, 1)
TERMS_EVENTS = frozenset({"ContractAgreed", "VariationAgreed", "BoroughAcceded", "BoroughWithdrew"})
# Tables of the per-week layout this model replaces: dropped when it is first built.
OLD_TABLES = ("latest_weeks", "latest_cases")


# --- following the log -------------------------------------------------------------------------


def catch_up(engine: Engine, log: EventLog) -> int:
    """Refresh the rows of every case touched since the tracked position."""
    metadata.create_all(engine, tables=[latest_case_weeks])
    # The followers run in one order: the event index, the facts, the claims, these rows.
    claims_made.catch_up(engine, log)
    with engine.begin() as conn:
        started = seals.begin(conn, NAME)
        position = index.claim_position(conn, NAME)
        touched: dict[str, Touched] = {}
        if position == 0:
            drop_old_layout(conn)
            # From the start every case of every contract is new: no need to read each event.
            head, handled = conn.execute(
                select(func.max(events_index.c.position), func.count())
            ).one()
            for contract in conn.execute(select(events_index.c.contract).distinct()).scalars():
                touched[contract] = Touched(everything=True)
            position = head or 0
        else:
            new = unindexed(conn, position)
            handled = len(new)
            for r in new:
                position = r.position
                touch(touched.setdefault(r.contract, Touched()), r)
        for contract, what in sorted(touched.items()):
            if what.anything:
                _refresh(conn, contract, what)
        conn.execute(update(tracking).where(tracking.c.name == NAME).values(position=position))
        seals.seal(conn, NAME, started)
    return handled


def drop_old_layout(conn: Connection) -> None:
    """A ledger built before this layout still holds a week per row: millions of rows read by
    nothing now."""
    for name in OLD_TABLES:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    conn.execute(delete(tracking).where(tracking.c.name == "latest_weeks"))


def unindexed(conn: Connection, after: int) -> Sequence[Any]:
    """The indexed events after `after`, in log order, with only what `touch` needs (a
    payload only for care data and episodes)."""
    e = events_index.c
    wanted = e.type.in_(("CareDataReceived", *EPISODE_EVENTS))
    payload = case((wanted, e.payload), else_=None).label("payload")
    return conn.execute(
        select(
            e.position, e.contract, e.stream, e.type, e.case_id, e.target_version, e.effective,
            payload,
        )
        .where(e.position > after)
        .order_by(e.position)
    ).all()


EPISODE_EVENTS = frozenset({"CareEpisodeStarted", "CareEpisodeEnded"})


@dataclass
class Touched:
    everything: bool = False
    boroughs: set[str] = field(default_factory=set)
    cases: set[str] = field(default_factory=set)  # to assess again
    # case -> (type, day, episode) of its new care episode events: the case is assessed again
    # only if one can reach its window (`_episodes_matter`).
    episodes: dict[str, list[tuple[str, date, str]]] = field(default_factory=dict)

    @property
    def anything(self) -> bool:
        return self.everything or bool(self.boroughs) or bool(self.cases) or bool(self.episodes)


def touch(what: Touched, r) -> None:
    if r.target_version is not None:
        stream = json.loads(r.stream)
        if len(stream) == 2:
            what.cases.add(stream[1])
        else:
            what.everything = True  # a correction of the contract's terms or coverage
    elif r.type in EPISODE_EVENTS:
        what.episodes.setdefault(r.case_id, []).append(
            (r.type, r.effective, index.payload_of(r)["episode"])
        )
    elif r.type in CASE_EVENTS:
        what.cases.add(r.case_id)
    elif r.type in TERMS_EVENTS:
        what.everything = True
    elif r.type == "CareDataReceived":
        what.boroughs.add(index.payload_of(r)["borough"])


def _episodes_matter(conn: Connection, contract: str, what: Touched) -> set[str]:
    """The cases touched only by new care episodes whose row those episodes can change.

    A care episode never decides whether a case is tracked, so a case with no row stays
    without one; and a stay that starts after the window's last day has no day in it, open or
    ended. (SSDA903 returns bring whole years of stays, mostly of children whose windows are
    over.) An end whose start is not among this batch's late starts is assessed again.
    """
    t = latest_case_weeks.c
    only = sorted(set(what.episodes) - what.cases)
    matter = set()
    for chunk in _chunks(only):
        windows = conn.execute(
            select(t.case_id, t.first_day, t.weeks).where(
                t.contract == contract, t.case_id.in_(chunk)
            )
        ).all()
        for case_id, first, weeks in windows:
            last = first + 7 * weeks - 1
            events = what.episodes[case_id]
            late = {ep for kind, day, ep in events if kind == "CareEpisodeStarted" and
                    day.toordinal() > last}
            if any(
                day.toordinal() <= last if kind == "CareEpisodeStarted" else ep not in late
                for kind, day, ep in events
            ):
                matter.add(case_id)
    return matter


def _refresh(conn: Connection, contract: str, what: Touched) -> None:
    t = latest_case_weeks.c
    own = latest_facts(conn, contract)
    terms = contract_from_facts(contract, own)
    if terms.agreed is None:  # not agreed (or no longer, as now known): nothing is tracked
        conn.execute(delete(latest_case_weeks).where(t.contract == contract))
        return
    timeline = TermsTimeline(terms)
    coverage = coverage_from_facts(own, contract)
    caps = CapAllocator(timeline)
    cases: Iterable[CaseFacts]
    if what.everything:
        conn.execute(delete(latest_case_weeks).where(t.contract == contract))
        cases = _every_case(conn, contract)
    else:
        found = what.cases | _episodes_matter(conn, contract, what)
        for borough in sorted(what.boroughs):
            found |= _coverage_moved(conn, contract, borough, coverage.get(borough))
        ids = sorted(found)
        stored = conn.execute(select(func.count()).where(t.contract == contract)).scalar() or 0
        for chunk in _chunks(ids):
            conn.execute(
                delete(latest_case_weeks).where(t.contract == contract, t.case_id.in_(chunk))
            )
        if len(ids) * BY_STREAM_SHARE > stored:
            cases = _every_case(conn, contract, set(ids))
        else:
            cases = _these_cases(conn, contract, ids)
    # Rows go in batches: memory stays flat however many cases the contract has.
    batch: list[tuple] = []
    for facts in cases:
        assessed = week_statuses(facts, timeline, coverage, FOREVER)
        if assessed is None:
            continue
        covered = coverage.get(assessed.case.borough)
        verified_to = covered.toordinal() if covered is not None else 0
        batch.append(case_row(contract, assessed, timeline, verified_to, caps).values_row())
        if len(batch) == BATCH:
            bulk.insert_rows(conn, latest_case_weeks, COLUMNS, batch)
            batch = []
    if batch:
        bulk.insert_rows(conn, latest_case_weeks, COLUMNS, batch)
    if caps.any:
        recap(conn, contract, timeline)


# Rows written per batch, and cases read per batch by stream.
BATCH = 2000
# A refresh of more than 1 / BY_STREAM_SHARE of the contract's stored rows reads the
# contract's case facts in one sorted pass instead of by stream. A stream's rows lie scattered
# through the table, so reading by stream costs about 0.65 ms a case (decoded), while the pass
# costs about 1.6 s per 560,000 facts (35,000 cases) however few of its cases are wanted
# (SQLite, scale 100): they break even near one case in 14, a tenth stays on the safe side.
BY_STREAM_SHARE = 10


def _every_case(
    conn: Connection, contract: str, wanted: set[str] | None = None
) -> Iterator[CaseFacts]:
    """The contract's cases (or those `wanted`), folded from one sorted pass over its facts."""
    for _, facts in latest_case_facts(conn, contract, wanted):
        yield from cases_from_facts(facts, contract).values()


def _these_cases(conn: Connection, contract: str, ids: Sequence[str]) -> Iterator[CaseFacts]:
    """The cases `ids`, read by stream a few thousand at a time."""
    for chunk in _chunks(ids, BATCH):
        cases = cases_from_facts(latest_facts(conn, contract, chunk), contract)
        for case_id in sorted(cases):
            yield cases[case_id]


def _coverage_moved(
    conn: Connection, contract: str, borough: str, covered: date | None
) -> set[str]:
    """The stored cases of `borough` some of whose weeks' verification differs under the
    borough's coverage now: those whose clipped coverage moved (verification only reads it
    through the window's weeks' last days)."""
    t = latest_case_weeks.c
    day = literal(covered.toordinal() if covered is not None else 0, Integer)
    last = t.first_day + 7 * t.weeks - 1
    clipped = case((day < t.first_day - 1, t.first_day - 1), (day > last, last), else_=day)
    return set(
        conn.execute(
            select(t.case_id).where(
                t.contract == contract, t.borough == borough, t.verified != clipped
            )
        ).scalars()
    )


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def rebuild(engine: Engine, log: EventLog) -> int:
    return seals.refollow(engine, log, latest_case_weeks, catch_up)


# --- answering -------------------------------------------------------------------------------


def _cache(pounds: dict[int, Decimal], pence: int) -> Decimal:
    amount = pounds[pence] = to_pounds(pence)
    return amount


def liability_at(engine: Engine, contract: str, as_of: date, timeline: TermsTimeline) -> Liability:
    """`liability.liability` for the latest knowledge, read one slice per case: same figures."""
    return liability_from(
        engine, latest_case_weeks, latest_case_weeks.c.contract == contract, as_of, timeline
    )


def liability_from(
    engine: Engine,
    table: Table,
    rows: ColumnElement[bool],
    as_of: date,
    timeline: TermsTimeline,
) -> Liability:
    """The liability summed from the rows of `table` (`latest_case_weeks` or a table with its
    columns, such as the case versions) that `rows` selects, one slice per case."""
    today = as_of.toordinal()
    t = table.c
    day = literal(today, Integer)
    # Fixed blocks elapsed (`elapsed_blocks`), in SQL both databases read alike: the
    # division only ever sees a positive number, where truncation is the floor.
    blocks = case(
        (day < t.first_day + 6, 0),
        (day >= t.first_day + 7 * t.weeks - 1, t.weeks),
        else_=(day - t.first_day + 1) // 7,
    )
    piece = func.substr(t.tally, blocks * t.width + 1, t.width).label("piece")
    with engine.connect() as conn:
        cases = conn.execute(
            select(
                t.case_id, t.borough, t.intervention, t.first_meeting, t.tracking_start,
                t.first_day, t.weeks, t.week_rule, t.care, t.counted, piece,
            )
            .where(rows, t.tracked_from <= as_of)
            .order_by(t.case_id)
        ).all()
    # Most cases share their kinds, their care intervals (none) and their sums: parse and
    # convert each distinct text or amount once.
    kinds: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    cares: dict[str, list[list[int]]] = {}
    pounds: dict[int, Decimal] = {}
    per_case = []
    for c in cases:
        counted = kinds.get(c.counted)
        if counted is None:
            counted = kinds[c.counted] = [(k[0], tuple(k[1:])) for k in json.loads(c.counted)]
        first, weeks = c.first_day, c.weeks
        elapsed = elapsed_blocks(today, first, weeks)
        digits = count_digits(weeks)
        piece = c.piece
        counts = [int(piece[i : i + digits]) for i in range(0, digits * len(counted), digits)]
        if c.week_rule == "consecutive_runs":
            at = digits * len(counted)
            early = int(piece[at])
            if early != NO_UNIT and today >= first + 7 * elapsed + early:
                counts[int(piece[at + 1 :])] += 1
        tally = Tally()
        money = [0, 0, 0, 0, 0, 0]
        for (status, amounts), n in zip(counted, counts, strict=True):
            if n:
                tally.counts[status] += n
                for i, amount in enumerate(amounts):
                    money[i] += n * amount
        tally.money = [pounds[p] if p in pounds else _cache(pounds, p) for p in money]
        tally.counts["pending"] += weeks - elapsed
        upto = min(first + 7 * weeks - 1, today)
        care = cares.get(c.care)
        if care is None:
            care = cares[c.care] = json.loads(c.care)
        days_in = 0
        for a, b in care:  # disjoint, sorted, within the window
            if a > upto:
                break
            days_in += min(b, upto + 1) - max(a, first)
        tally.days_in, tally.days_out = days_in, max(0, upto - first + 1) - days_in
        facts = CaseFacts(c.case_id, c.borough, c.intervention, None, c.first_meeting, None, (), ())
        window = Tracking(c.tracking_start, weeks, c.week_rule, ())
        assessed = Assessment(facts, window, c.week_rule, (), tally.days_in, tally.days_out)
        per_case.append((assessed, tally, ()))
    states = {c.case_id: "tracked" for c in cases}
    return summarise(timeline, (c.borough for c in cases), per_case, as_of, None, states)


def weeks_of(engine: Engine, contract: str, case_id: str) -> dict[tuple[int, date], Week]:
    """The weeks of one case with every week elapsed, after caps, by (index, last day).

    Only the caps' part is stored per week; the rest is the case assessed again from its
    facts (one case: a few events), which also gives each week its days and `because`.
    """
    try:
        k = knowledge(engine, contract, case=case_id)
    except QueryError:
        return {}
    facts = k.cases.get(case_id)
    assessed = (
        assess_case(facts, TermsTimeline(k.contract), k.coverage, FOREVER) if facts else None
    )
    if assessed is None:
        return {}
    t = latest_case_weeks.c
    with engine.connect() as conn:
        stored = conn.execute(
            select(t.capped).where(t.contract == contract, t.case_id == case_id)
        ).scalar()
    weeks = list(assessed.weeks)
    for i, (borough, top_up, refs) in json.loads(stored or "{}").items():
        w = weeks[int(i)]
        owed_borough, owed_top_up = to_pounds(borough), to_pounds(top_up)
        weeks[int(i)] = Week(
            w.case, w.index, w.start, w.end, w.status, w.variation,
            owed_borough, owed_top_up,
            w.borough_amount - owed_borough, w.top_up_amount - owed_top_up,
            w.provisional_borough, w.provisional_top_up,
            w.days_in_care, w.days_out_of_care,
            merge_refs(w.because, refs),
        )
    return {(w.index, w.end): w for w in weeks}
