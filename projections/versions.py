"""The tracked cases at every knowledge: one row per version of a case's answer, `case_versions`.

The latest read model (`latest.py`) keeps each tracked case's answer as the latest knowledge
reads it. This one keeps every answer a case has had over recorded time, the way
`fact_versions` keeps every reading of a fact: a row is the case's `latest_case_weeks` row as
the facts known between `known_from` (inclusive) and `known_until` (exclusive, NULL while
current) give it, before caps. A liability at (as_of, known_at) then reads one row per case, the
one whose range holds known_at, and a prefix of it, exactly as the latest does.

Knowledge is by recording instant, as in `fact_versions`: a case's answer can only change at an
instant where one of its facts' versions, or one of its contract's own facts' versions (terms,
boroughs, care data), starts or stops being known. So a case's versions are computed from every
version of those facts, at each such instant, and merged where consecutive answers are equal.
An event appended later but recorded earlier is no special case: its fact versions carry its
own recorded instants and the case's versions are computed again from them (a refresh always
recomputes a touched case's whole history, never only its tail).

Caps are not applied here: a row stores what each cap covers (`cap_gross`). At a knowledge
where no cap can bind (every cap's covered gross, all weeks of all cases, within its smallest
amount in force) every week is owed in full and the rows answer; where one can bind the query
falls back to the computation from the facts (`queries.liability_at`), which is exact.

Rows are refreshed by following the log, a touched case at a time (its whole history): a case
event its case; care data every case of its borough; a terms event, or a correction of the
contract's own stream, every case of the contract. A rebuild from position 0 gives identical
rows. A case is assessed once per basis (its facts and the terms known) with every week
verified, each coverage of its borough derived from that (`latest_row.covered_row`); a refresh
of thousands of cases hands them to forked workers, a hundred at a time (`_computed`).
"""

from __future__ import annotations

import json
import os
from bisect import bisect_right
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from itertools import accumulate, chain, groupby, islice
from multiprocessing import get_all_start_methods, get_context
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Index,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)

from soc_ledger.domain.claims.owed import NOTHING, Share
from soc_ledger.domain.knowledge import Fact, KnownAt
from soc_ledger.domain.outcomes.assessment import week_statuses
from soc_ledger.domain.outcomes.caps import CapAllocator
from soc_ledger.domain.outcomes.facts import (
    CaseFacts,
    ContractFacts,
    Coverage,
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
)
from soc_ledger.domain.outcomes.liability import Liability, liability
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.weeks import Week
from soc_ledger.ledger import bulk, index
from soc_ledger.ledger.batches import batched
from soc_ledger.ledger.encryption import open_text, seal_text
from soc_ledger.ledger.index import events_index, metadata, stream_name, tracking
from soc_ledger.projections import claims_made, latest, readmodel, seals, statistics
from soc_ledger.projections.latest_caps import recap
from soc_ledger.projections.latest_row import (
    COLUMNS,
    EVERY_DAY,
    CaseRow,
    case_row,
    clip,
    covered_row,
    latest_case_weeks,
    to_pounds,
)
from soc_ledger.projections.outcome_facts import (
    CASE_TYPES,
    CONTRACT_TYPES,
    OUTCOME_TYPES,
    latest_facts,
)

if TYPE_CHECKING:
    from soc_ledger.ledger.store import EventLog

NAME = "case_versions"

case_versions = Table(
    NAME,
    metadata,
    *(Column(c.name, c.type, nullable=c.nullable) for c in latest_case_weeks.columns),
    Column("known_from", DateTime, nullable=False),  # naive UTC, inclusive
    Column("known_until", DateTime),  # naive UTC, exclusive; NULL while current
    Index("ix_case_versions_known", "contract", "known_from", "known_until"),
    # `caps_may_bind` reads every version's cap gross known at a time: from this index alone,
    # never the rows (a tenth of a second, not a second, at scale 100).
    Index("ix_case_versions_caps", "contract", "known_from", "known_until", "cap_gross"),
    Index("ix_case_versions_case", "contract", "case_id"),
    Index("ix_case_versions_borough", "contract", "borough"),
)
VERSION_COLUMNS = (*COLUMNS, "known_from", "known_until")


# --- following the log -------------------------------------------------------------------------


def catch_up(engine: Engine, log: EventLog) -> int:
    """Bring the case versions up to the log's head (the latest cases first, which follow the
    facts, which follow the event index). Built from nothing together with the latest cases,
    those are copied from the versions (`_built_with_latest`)."""
    metadata.create_all(engine, tables=[case_versions, latest.latest_case_weeks])
    for added in case_versions.indexes:  # an index added since the store was built
        added.create(engine, checkfirst=True)
    if not index.tracked_position(engine, latest.NAME) and not index.tracked_position(engine, NAME):
        return _built_with_latest(engine, log)
    handled = latest.catch_up(engine, log)
    with engine.begin() as conn:
        started = seals.begin(conn, NAME)
        position = index.claim_position(conn, NAME)
        touched: dict[str, latest.Touched] = {}
        e = events_index.c
        if position == 0:
            head = conn.execute(select(func.max(e.position))).scalar()
            for contract in conn.execute(select(e.contract).distinct()).scalars():
                touched[contract] = latest.Touched(everything=True)
            position = head or 0
        else:
            # What an event reaches is what it reaches in the latest model (`latest.touch`).
            for r in latest.unindexed(conn, position):
                position = r.position
                latest.touch(touched.setdefault(r.contract, latest.Touched()), r)
        for contract, what in sorted(touched.items()):
            if what.anything:
                _refresh(conn, contract, what)
        conn.execute(update(tracking).where(tracking.c.name == NAME).values(position=position))
        seals.seal(conn, NAME, started)
    statistics.gathered(engine, handled)
    return handled


def rebuild(engine: Engine, log: EventLog) -> int:
    """The case versions and the latest cases dropped and built again together from the
    log's first event, then sealed as the ledger's."""
    tables = (latest.latest_case_weeks, case_versions)
    metadata.create_all(engine, tables=list(tables))
    with engine.begin() as conn:
        for table in tables:
            conn.execute(delete(table))
        conn.execute(delete(tracking).where(tracking.c.name.in_([t.name for t in tables])))
    handled = catch_up(engine, log)
    with engine.begin() as conn:
        for table in tables:
            seals.reset(conn, table.name)
    return handled


def _built_with_latest(engine: Engine, log: EventLog) -> int:
    """The case versions and the latest cases of a store that has neither yet (a first
    `record`, a `rebuild`), in one pass: every case's versions computed, then each case's
    latest row copied from its version known now (`known_until` NULL), then the caps
    allocated over them as the latest model's own refresh does (`latest_caps.recap`).

    The two are the same row: the version known now reads the facts, terms and care data
    known now, as the latest row does, column for column (`verify` compares both with a
    rebuild; a property test, the rows followed event by event with the rows built so). The
    latest model's own computation would assess every case a second time: a sixth of a
    rebuild at scale 10. Later catch-ups follow the log as before, each model its own way."""
    claims_made.catch_up(engine, log)  # what the latest model follows first
    with engine.begin() as conn:
        started = {t: seals.begin(conn, t) for t in (latest.NAME, NAME)}
        for name in started:
            index.claim_position(conn, name)
        latest.drop_old_layout(conn)
        e = events_index.c
        head, handled = conn.execute(select(func.max(e.position), func.count())).one()
        for contract in sorted(conn.execute(select(e.contract).distinct()).scalars()):
            _refresh(conn, contract, latest.Touched(everything=True))
            _latest_copied(conn, contract)
        conn.execute(
            update(tracking).where(tracking.c.name.in_(list(started))).values(position=head or 0)
        )
        for name, edits in started.items():
            seals.seal(conn, name, edits)
    statistics.gathered(engine, handled)
    return handled


def _latest_copied(conn: Connection, contract: str) -> None:
    """The contract's latest rows, each its case's version known now, then capped."""
    lw = latest.latest_case_weeks
    terms = contract_from_facts(contract, latest_facts(conn, contract))
    conn.execute(delete(lw).where(lw.c.contract == contract))
    if terms.agreed is None:  # not agreed as now known: nothing is tracked (nor versioned)
        return
    t = case_versions.c
    conn.execute(
        insert(lw).from_select(
            list(COLUMNS),
            select(*(t[c] for c in COLUMNS)).where(t.contract == contract, t.known_until.is_(None)),
        )
    )
    timeline = TermsTimeline(terms)
    if CapAllocator(timeline).any:
        recap(conn, contract, timeline)


@dataclass(frozen=True, slots=True)
class _State:
    """The contract's own facts as known from one instant: folded once for all its cases."""

    terms: tuple[int, ...]  # the known fact versions the terms fold from: equal terms, equal key
    timeline: TermsTimeline | None  # None: not agreed as known then (nothing is tracked)
    coverage: Coverage
    caps: CapAllocator | None


# One version of a fact: (recorded_from, recorded_to or None, the fact).
_Version = tuple[datetime, datetime | None, Fact]


def _known_ids(versions: Sequence[_Version], moment: datetime) -> tuple[int, ...]:
    """Which of a stream's versions are known at `moment`: `readmodel.facts_known_at`'s
    condition on stored versions, in log order."""
    return tuple(
        i
        for i, (start, end, _) in enumerate(versions)
        if start <= moment and (end is None or end > moment)
    )


def _instants(versions: Iterable[_Version]) -> set[datetime]:
    found: set[datetime] = set()
    for start, end, _ in versions:
        found.add(start)
        if end is not None:
            found.add(end)
    return found


@dataclass(frozen=True, slots=True)
class _States:
    """The contract's own facts at each instant one of their versions starts or ends, and the
    instants where what a case reads of them moves: the terms, or its borough's coverage."""

    instants: list[datetime]
    states: list[_State]
    terms_moved: list[datetime] = field(init=False)
    coverage_moved: dict[str, list[datetime]] = field(init=False)

    def __post_init__(self) -> None:
        terms: list[datetime] = []
        coverage: dict[str, list[datetime]] = {}
        before: _State | None = None
        for moment, state in zip(self.instants, self.states, strict=True):
            if before is None or state.terms != before.terms:
                terms.append(moment)
            for borough in state.coverage.keys() | (before.coverage.keys() if before else set()):
                if before is None or state.coverage.get(borough) != before.coverage.get(borough):
                    coverage.setdefault(borough, []).append(moment)
            before = state
        object.__setattr__(self, "terms_moved", terms)
        object.__setattr__(self, "coverage_moved", coverage)

    def at(self, moment: datetime) -> _State | None:
        at = bisect_right(self.instants, moment) - 1
        return self.states[at] if at >= 0 else None

    def moved(self, after: datetime, boroughs: Iterable[str]) -> set[datetime]:
        """The instants after `after` where the terms or a borough's coverage move."""
        found = {m for m in self.terms_moved if m > after}
        for borough in boroughs:
            found.update(m for m in self.coverage_moved.get(borough, ()) if m > after)
        return found


def _contract_states(conn: Connection, contract: str) -> _States:
    """The contract's own facts at each instant one of their versions starts or ends."""
    fv = readmodel.fact_versions.c
    rows = conn.execute(
        select(fv.recorded_from, fv.recorded_to, *readmodel.FACT_COLUMNS)
        .where(
            fv.stream == stream_name(contract),
            fv.case_id.is_(None),
            fv.type.in_(OUTCOME_TYPES),
        )
        .order_by(fv.position, fv.recorded_from)
    ).all()
    facts = readmodel.facts_of_rows(row[2:] for row in rows)
    versions = [(row[0], row[1], f) for row, f in zip(rows, facts, strict=True)]
    instants = sorted(_instants(versions))
    states: list[_State] = []
    timelines: dict[tuple[int, ...], tuple[TermsTimeline | None, CapAllocator | None]] = {}
    for moment in instants:
        known_ids = _known_ids(versions, moment)
        known = [versions[i][2] for i in known_ids]
        terms_key = tuple(i for i in known_ids if versions[i][2].event.type != "CareDataReceived")
        if terms_key not in timelines:
            folded = contract_from_facts(contract, known)
            if folded.agreed is None:
                timelines[terms_key] = (None, None)
            else:
                timeline = TermsTimeline(folded)
                timelines[terms_key] = (timeline, CapAllocator(timeline))
        timeline, caps = timelines[terms_key]
        states.append(_State(terms_key, timeline, coverage_from_facts(known, contract), caps))
    return _States(instants, states)


def _refresh(conn: Connection, contract: str, what: latest.Touched) -> None:
    t = case_versions.c
    if what.everything:
        conn.execute(delete(case_versions).where(t.contract == contract))
        wanted: set[str] | None = None
    else:
        # A care episode may change any version of its case, not only the latest.
        wanted = set(what.cases) | set(what.episodes)
        for borough in sorted(what.boroughs):
            wanted |= set(
                conn.execute(
                    select(t.case_id).distinct().where(t.contract == contract, t.borough == borough)
                ).scalars()
            )
        if not wanted:
            return
        ids = sorted(wanted)
        for i in range(0, len(ids), 500):
            conn.execute(
                delete(case_versions).where(t.contract == contract, t.case_id.in_(ids[i : i + 500]))
            )
    states = _contract_states(conn, contract)
    batch: list[tuple] = []
    for rows in _computed(contract, states, _case_versions_of(conn, contract, wanted)):
        batch.extend(rows)
        if len(batch) >= latest.BATCH:
            bulk.insert_rows(conn, case_versions, VERSION_COLUMNS, batch)
            batch = []
    if batch:
        bulk.insert_rows(conn, case_versions, VERSION_COLUMNS, batch)


# Cases handed to a worker at a time, and the fewest cases to refresh that are worth workers.
PER_TASK = 100
PARALLEL_CASES = 2000
# The contract being refreshed, set before the workers fork so that they inherit it.
_WORK: tuple[str, _States] | None = None


def _computed(
    contract: str, states: _States, cases: Iterator[tuple[str, list[tuple]]]
) -> Iterator[list[tuple]]:
    """The version rows of each group of cases (raw fact rows, by case), in their order.

    A case's versions are a pure function of its facts and the contract's states, and cost
    most of a rebuild: with more than one core and enough cases they are computed by forked
    workers (which inherit the states and touch no connection), a hundred cases a task,
    while this process reads the facts and writes the rows."""
    global _WORK
    first = list(islice(cases, PARALLEL_CASES))
    tasks = batched(chain(first, cases), PER_TASK)
    workers = min(os.cpu_count() or 1, 4)
    alone = len(first) < PARALLEL_CASES or workers < 2 or "fork" not in get_all_start_methods()
    _WORK = (contract, states)
    try:
        if alone:
            yield from map(_versions_of_cases, tasks)
        else:
            with get_context("fork").Pool(workers) as pool:
                yield from pool.imap(_versions_of_cases, tasks)
    finally:
        _WORK = None


def _versions_of_cases(task: list[tuple[str, list[tuple]]]) -> list[tuple]:
    """The version rows of a few cases from their raw fact rows (`_WORK`'s contract)."""
    assert _WORK is not None
    contract, states = _WORK
    rows: list[tuple] = []
    for case_id, found in task:
        facts = readmodel.facts_of_rows(row[3:] for row in found)
        versions = [(row[1], row[2], f) for row, f in zip(found, facts, strict=True)]
        rows.extend(_versions_of_case(contract, case_id, versions, states))
    return rows


def _case_versions_of(
    conn: Connection, contract: str, wanted: set[str] | None
) -> Iterator[tuple[str, list[tuple]]]:
    """Every version of every fact of each case (or those `wanted`), case after case, in log
    order, as stored rows (case, recorded from, recorded to, the fact's columns): one pass
    sorted by case, a batch of rows at a time."""
    fv = readmodel.fact_versions.c
    query = select(fv.case_id, fv.recorded_from, fv.recorded_to, *readmodel.FACT_COLUMNS).where(
        fv.contract == contract, fv.type.in_(OUTCOME_TYPES), fv.case_id.is_not(None)
    )
    if wanted is not None and len(wanted) * latest.BY_STREAM_SHARE <= _stored_cases(conn, contract):
        ids = sorted(wanted)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            streams = [stream_name(contract, c) for c in chunk]
            rows = conn.execute(
                query.where(fv.stream.in_(streams), fv.case_id.in_(chunk)).order_by(
                    fv.case_id, fv.position, fv.recorded_from
                )
            ).all()
            yield from _grouped(rows, None)
        return
    rows = conn.execute(
        query.order_by(fv.case_id, fv.position, fv.recorded_from).execution_options(yield_per=2000)
    )
    yield from _grouped(rows, wanted)


def _stored_cases(conn: Connection, contract: str) -> int:
    t = latest_case_weeks.c
    return conn.execute(select(func.count()).where(t.contract == contract)).scalar() or 0


def _grouped(rows: Iterable[Any], wanted: set[str] | None) -> Iterator[tuple[str, list[tuple]]]:
    for case_id, group in groupby(rows, key=itemgetter(0)):
        if wanted is not None and case_id not in wanted:
            continue
        yield case_id, [tuple(row) for row in group]


def _versions_of_case(
    contract: str, case_id: str, versions: list[_Version], states: _States
) -> Iterator[tuple]:
    """The rows of one case: its answer at each instant where its facts, the terms or its
    borough's coverage change, consecutive equal answers merged.

    A case is assessed once per basis (the facts and terms known), with every week verified;
    its answer under each coverage of its borough is derived from that (`covered_row`), since
    coverage moves a week only between `outcome` and `unverified`: a version that only new
    care data makes costs a derivation, not an assessment. (On the demo a case has about 9
    bases, one per event of its own, and 12 versions.)
    """
    own = sorted(_instants(versions))
    # The facts known at each of the case's own instants (they change only there), and the
    # case folded from each set of them.
    knowing = {moment: _known_ids(versions, moment) for moment in own}
    folds: dict[tuple[int, ...], CaseFacts | None] = {}
    boroughs: set[str] = set()
    for known in knowing.values():
        if known not in folds:
            facts = [versions[i][2] for i in known]
            folds[known] = folded = cases_from_facts(facts, contract).get(case_id)
            if folded is not None:
                boroughs.add(folded.borough)
    moments = sorted(knowing.keys() | states.moved(own[0], boroughs))
    answers: list[tuple[datetime, tuple | None]] = []
    known = ()
    # basis (facts known, terms) -> the case's row with every week verified (None: untracked)
    assessed: dict[tuple, CaseRow | None] = {}
    basis: tuple | None = None
    seen: int | None = None  # the coverage, clipped to the window, the last answer read
    for moment in moments:
        state = states.at(moment)
        known = knowing.get(moment, known)
        folded = folds.get(known)
        answer: tuple | None = None
        if state is not None and state.timeline is not None and folded is not None:
            assert state.caps is not None
            key = (known, state.terms)
            if key not in assessed:
                everywhere = {folded.borough: date.max}
                every = week_statuses(folded, state.timeline, everywhere, latest.FOREVER)
                assessed[key] = (
                    None
                    if every is None
                    else case_row(contract, every, state.timeline, EVERY_DAY, state.caps)
                )
            verified = assessed[key]
            if verified is not None:
                covered = state.coverage.get(folded.borough)
                day = covered.toordinal() if covered is not None else 0
                clipped = clip(day, verified.values["first_day"], verified.values["weeks"])
                if key == basis and clipped == seen:
                    continue  # coverage moved outside the window: the answer stands
                basis, seen = key, clipped
                row = covered_row(verified, day, state.timeline, state.caps)
                answer = row.values_row(sealed=False)
            else:
                basis, seen = key, None
        else:
            basis, seen = None, None
        if answers and answers[-1][1] == answer:
            continue
        answers.append((moment, answer))
    for i, (moment, answer) in enumerate(answers):
        if answer is None:
            continue
        until = answers[i + 1][0] if i + 1 < len(answers) else None
        yield (*_sealed(answer), moment, until)


_CAP_GROSS = COLUMNS.index("cap_gross")


def _sealed(answer: tuple) -> tuple:
    return (*answer[:_CAP_GROSS], seal_text(answer[_CAP_GROSS]), *answer[_CAP_GROSS + 1 :])


# --- answering -------------------------------------------------------------------------------


def known_condition(known_at: KnownAt) -> ColumnElement[bool]:
    """The version of each case read at `known_at` (as `fact_versions` is read)."""
    t = case_versions.c
    return readmodel.known_between(t.known_from, t.known_until, known_at)


def in_step(engine: Engine) -> bool:
    """Whether the versions follow the log exactly as far as the facts they are made from."""
    return readmodel.follows_facts(engine, NAME)


def caps_may_bind(
    engine: Engine, contract: str, known_at: KnownAt, timeline: TermsTimeline
) -> bool:
    """Whether a cap can bind at `known_at`: some cap's covered gross over every week of every
    case's version then exceeds its smallest amount in force."""
    caps = CapAllocator(timeline)
    if not caps.any:
        return False
    t = case_versions.c
    gross: dict[str, int] = {}
    parsed: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        texts = conn.execute(
            select(t.cap_gross).where(t.contract == contract, known_condition(known_at))
        ).scalars()
        for text in texts:
            found = parsed.get(text)
            if found is None:
                found = parsed[text] = json.loads(open_text(text))
            for cap_id, pence in found.items():
                gross[cap_id] = gross.get(cap_id, 0) + pence
    return any(
        limit is not None and to_pounds(gross.get(cap_id, 0)) > limit
        for cap_id, limit in caps.least_limits().items()
    )


def liability_at(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt, timeline: TermsTimeline
) -> Liability | None:
    """`liability.liability` at (as_of, known_at) read one slice per case from the versions
    known then; None when a cap may bind then, or when the versions do not follow the log as
    far as the facts do (the caller computes it from the facts: never an answer from behind).

    Every figure is `liability`'s; as with the latest model's read, `engagement` names only the
    tracked cases (no report shows the others' from a liability)."""
    if not in_step(engine) or caps_may_bind(engine, contract, known_at, timeline):
        return None
    return latest.liability_from(engine, case_versions, known_condition(known_at), as_of, timeline)


def changed_cases(engine: Engine, contract: str, first: KnownAt, second: KnownAt) -> set[str]:
    """The cases whose version at `first` is not their version at `second` (a case with a
    version at only one of them included)."""
    t = case_versions.c
    with engine.connect() as conn:
        at_first = dict(
            conn.execute(
                select(t.case_id, t.known_from).where(
                    t.contract == contract, known_condition(first)
                )
            ).all()
        )
        at_second = dict(
            conn.execute(
                select(t.case_id, t.known_from).where(
                    t.contract == contract, known_condition(second)
                )
            ).all()
        )
    return {c for c in at_first.keys() | at_second.keys() if at_first.get(c) != at_second.get(c)}


def _runs(kinds_text: str, outline_text: str) -> tuple[list[int], list[int], list[int]]:
    """A version's outcome weeks' last days (counted from its first day) and the running
    borough and top-up pence after each, from its kinds and outline."""
    pays = [(k[1], k[2]) if k[0] == "outcome" else None for k in orjson.loads(kinds_text)]
    flat = orjson.loads(outline_text)
    paid = [
        (offset, pence)
        for offset, kind in zip(flat[0::2], flat[1::2], strict=True)
        if (pence := pays[kind]) is not None
    ]
    return (
        [offset for offset, _ in paid],
        list(accumulate((pence[0] for _, pence in paid), initial=0)),
        list(accumulate((pence[1] for _, pence in paid), initial=0)),
    )


def _owed_pence(
    entry: tuple[str, date, int, list[int], list[int], list[int]],
    payer: str,
    funder: str | None,
    day: date,
) -> tuple[int, int]:
    """(pence, outcome weeks) a case (a `StoredOwed.table` entry) owes PAYER by `day`: its
    share of the outcome weeks ended by then, nothing before the case is tracked, and nothing
    to a payer neither its borough nor the top-up funder."""
    borough, tracked_from, first, ends, on_borough, on_top_up = entry
    if tracked_from > day or (payer != borough and payer != funder):
        return 0, 0
    i = bisect_right(ends, day.toordinal() - first)
    pence = on_borough[i] if payer == borough else 0
    if payer == funder:
        pence += on_top_up[i]
    return pence, i


class StoredOwed:
    """`domain.claims.owed.Owed`'s answers (`share`, `due`, `weeks`) at one knowledge, read
    from the case versions known then instead of every week of the contract computed.

    A case's share at `as_of` is what `liability(as_of)` gives its payer: nothing before the
    case is tracked (`tracked_from`), else the payer's share of its outcome weeks whose last
    day is on or before `as_of`, every week reading as it does once elapsed (as the latest
    model reads a prefix). Only valid where no cap can bind at that knowledge (`caps_may_bind`):
    the caller checks. `weeks` (the few lines whose due moved) recomputes that case alone.
    With `boroughs`, only the cases of those boroughs are read: a case of any other borough
    owes those boroughs nothing, so their answers are the same.
    """

    def __init__(
        self,
        engine: Engine,
        contract: str,
        known_at: KnownAt,
        terms: ContractFacts,
        cases: Collection[str] | None = None,
        boroughs: Collection[str] | None = None,
    ) -> None:
        self.engine = engine
        self.name = contract
        self.known_at = known_at
        self.contract = terms
        self.timeline = TermsTimeline(terms)
        self.funder = self.timeline.top_up_funder
        self._coverage: Coverage | None = None  # the care data known then, once `weeks` asks
        # case -> its facts known then, once `weeks` asks (a case moved in several claims is
        # explained in each: `reconcile --payer`)
        self._facts: dict[str, dict[str, CaseFacts]] = {}
        # case -> (borough, tracked from, first day, its outcome weeks' last days counted from
        # the first day, running borough and top-up pence)
        self.table: dict[str, tuple[str, date, int, list[int], list[int], list[int]]] = {}
        t = case_versions.c
        query = select(t.case_id, t.borough, t.tracked_from, t.first_day, t.kinds, t.outline)
        query = query.where(t.contract == contract, known_condition(known_at))
        if boroughs is not None:
            # Only these boroughs' cases: any other case owes them nothing (`share`).
            query = query.where(t.borough.in_(sorted(set(boroughs))))
        wanted = None if cases is None else sorted(set(cases))
        queries = (
            [query]
            if wanted is None
            else [
                query.where(t.case_id.in_(wanted[i : i + 500])) for i in range(0, len(wanted), 500)
            ]
        )
        # Cases share few (kinds, outline) texts (344 among 34,500 at scale 100: weeks are
        # counted from each case's first day), so each is read once: its outcome weeks' last
        # days from the first day, and the running borough and top-up pence.
        read: dict[tuple[str, str], tuple[list[int], list[int], list[int]]] = {}
        with engine.connect() as conn:
            for q in queries:
                for case_id, borough, tracked_from, first, kinds_text, outline_text in conn.execute(
                    q
                ):
                    runs = read.get((kinds_text, outline_text))
                    if runs is None:
                        runs = read[(kinds_text, outline_text)] = _runs(kinds_text, outline_text)
                    self.table[case_id] = (borough, tracked_from, first, *runs)
        self.cases = sorted(self.table)

    def share(self, case: str, payer: str, as_of: date | None) -> Share:
        """The payer's share of the case's outcome weeks at `as_of` (None: nothing yet)."""
        if as_of is None:
            return NOTHING
        entry = self.table.get(case)
        if entry is None:
            return NOTHING
        pence, weeks = _owed_pence(entry, payer, self.funder, as_of)
        # As `Owed` adds them: each week's amount (2 places) once one is owed. Pence add
        # exactly, so one conversion gives the same Decimal as adding the two shares' pounds.
        return Share(to_pounds(pence), weeks) if weeks else NOTHING

    def due(self, case: str, payer: str, after: date | None, upto: date) -> Share:
        """A claim line's due: the share at `upto` less the share at `after`."""
        return self.share(case, payer, upto) - self.share(case, payer, after)

    def claimed_due(
        self, payer: str, lines: Iterable[tuple[str, date | None]], upto: date
    ) -> Decimal:
        """`Owed.claimed_due`: the lines' `due`s added, in pence (exact), converted once. A
        claim to the top-up funder lists every case: this is most of its statement."""
        pence = 0
        table, funder = self.table, self.funder
        for case, after in lines:
            entry = table.get(case)
            if entry is None:
                continue
            pence += _owed_pence(entry, payer, funder, upto)[0]
            if after is not None:
                pence -= _owed_pence(entry, payer, funder, after)[0]
        return to_pounds(pence)

    def weeks(self, case: str, after: date | None, upto: date) -> list[Week]:
        """The case's weeks (any status) ending in (after, upto], as read at `upto`: that case
        alone computed from its facts (no cap binds, so no other case changes its weeks). The
        contract's own facts (its care data above all) are read once for every case asked, and
        each case's once however often it is asked."""
        if self._coverage is None:
            own = readmodel.facts_known_at(self.engine, self.name, self.known_at, CONTRACT_TYPES)
            self._coverage = coverage_from_facts(own, self.name)
        cases = self._facts.get(case)
        if cases is None:
            facts = readmodel.facts_known_at(
                self.engine, self.name, self.known_at, CASE_TYPES, case
            )
            found = cases_from_facts(facts, self.name)
            cases = self._facts[case] = {case: found[case]} if case in found else {}
        result = liability(self.contract, cases, self._coverage, upto)
        return [
            w for w in result.weeks_of(case) if w.end <= upto and (after is None or w.end > after)
        ]
