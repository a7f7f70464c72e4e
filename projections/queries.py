"""Questions at (as_of, known_at), answered from the read models and the outcome rules."""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import chain, groupby
from operator import itemgetter

from sqlalchemy import ColumnElement, Connection, Engine, and_, or_, select
from sqlalchemy import case as when

from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.events import CASE_EVENTS, LIFECYCLE
from soc_ledger.domain.knowledge import EVERYTHING, EventRef, Fact, KnownAt
from soc_ledger.ledger.index import aware_utc, events_index, naive_utc, stream_name
from soc_ledger.projections import readmodel
from soc_ledger.projections.facts import (
    CaseFacts,
    ContractFacts,
    Coverage,
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
)
from soc_ledger.projections.outcomes import Liability, LiabilityStream, Week, liability
from soc_ledger.projections.weeks import ZERO, Assessment, TermsTimeline, assess_case, engagement

OUTCOME_TYPES = (
    "ContractAgreed",
    "VariationAgreed",
    "BoroughAcceded",
    "BoroughWithdrew",
    "CareDataReceived",
    "ReferralReceived",
    "ReferralAccepted",
    "ReferralDeclined",
    "FirstFamilyMeeting",
    "InterventionEnded",
    "CareEpisodeStarted",
    "CareEpisodeEnded",
)


@dataclass(frozen=True, slots=True)
class Knowledge:
    """What the outcome rules read, as known at one time."""

    known_at: KnownAt
    facts: list[Fact]
    contract: ContractFacts
    cases: dict[str, CaseFacts]
    coverage: Coverage


def the_contract(engine: Engine, contract: str | None) -> str:
    """The contract a report is about: the one asked for, or the only one in the store."""
    held = readmodel.contracts(engine)
    if contract is not None:
        if contract not in held:
            raise QueryError(f"no contract {contract!r} in this ledger")
        return contract
    if not held:
        raise QueryError("the ledger holds no contract yet (record some events, or run demo)")
    if len(held) > 1:
        raise QueryError(f"the ledger holds {len(held)} contracts: choose one with --contract")
    return held[0]


CONTRACT_TYPES = tuple(t for t in OUTCOME_TYPES if t not in CASE_EVENTS)


def knowledge(
    engine: Engine, contract: str, known_at: KnownAt = EVERYTHING, case: str | None = None
) -> Knowledge:
    """The contract, its cases (or just `case`) and coverage as known at `known_at`."""
    facts = readmodel.facts_known_at(engine, contract, known_at, OUTCOME_TYPES, case)
    terms = contract_from_facts(contract, facts)
    if terms.agreed is None:
        raise QueryError(f"contract {contract!r} was not agreed as known at that time")
    return Knowledge(
        known_at,
        facts,
        terms,
        cases_from_facts(facts, contract),
        coverage_from_facts(facts, contract),
    )


def latest_facts(conn: Connection, contract: str, cases: Iterable[str] | None = None) -> list[Fact]:
    """The facts of `contract` known now (`readmodel.facts_known_at` at `EVERYTHING`), read on
    `conn`: the contract's own facts (terms, boroughs, care data), or with `cases` only those
    cases' facts, in log order.

    The latest read model refreshes a few thousand cases at a time: one indexed query (by
    stream) per 500 cases instead of one per case, and no other case's facts decoded.
    """
    fv = readmodel.fact_versions
    base = select(*readmodel.FACT_COLUMNS).where(
        fv.c.contract == contract, fv.c.recorded_to.is_(None), fv.c.type.in_(OUTCOME_TYPES)
    )
    if cases is None:
        queries = [base.where(fv.c.stream == stream_name(contract))]
    else:
        streams = sorted({stream_name(contract, case) for case in cases})
        queries = [
            base.where(fv.c.stream.in_(streams[i : i + 500])) for i in range(0, len(streams), 500)
        ]
    facts: list[Fact] = []
    for query in queries:
        facts.extend(readmodel.facts_of_rows(conn.execute(query.order_by(fv.c.position))))
    if cases is not None and len(queries) > 1:
        facts.sort(key=lambda f: f.recorded.position)
    return facts


def latest_case_facts(
    conn: Connection,
    contract: str,
    wanted: Container[str] | None = None,
    known_at: KnownAt = EVERYTHING,
) -> Iterator[tuple[str, list[Fact]]]:
    """Every case of `contract` with its facts known at `known_at` (by default now), case
    after case, each case's facts in log order (as `latest_facts` and
    `readmodel.facts_known_at` give them); with `wanted`, only those cases' decoded.

    For a pass over all (or much) of the contract: ONE query in (case, position) order, read
    a batch at a time. The database sorts the rows once, sequentially (a temporary B-tree in
    SQLite, an external sort in PostgreSQL: about a second for half a million facts), where
    `latest_facts`' reads by stream fetch rows from the table in random order, which dominates
    a rebuild once the table outgrows the page cache. Memory holds one batch of rows and one
    case's facts, however large the contract.
    """
    for case_id, (facts,) in known_case_facts(conn, contract, (known_at,), wanted):
        yield case_id, facts


def known_case_facts(
    conn: Connection,
    contract: str,
    readings: Sequence[KnownAt],
    wanted: Container[str] | None = None,
) -> Iterator[tuple[str, list[list[Fact]]]]:
    """`latest_case_facts` for several readings at once: every case with a fact known at any
    of them, and its facts known at each (in log order, one list per reading, possibly empty).

    One pass serves them all (`diff` compares two readings case by case): a fact version
    known at both is read and decoded once. Each reading is `readmodel.facts_known_at`'s
    condition, decided by the database for each row as it is for the query.
    """
    fv = readmodel.fact_versions
    conditions = [_known_condition(k) for k in readings]
    # With one reading every row read is known at it; with more, a 0/1 column per reading.
    flags = (
        [when((c, 1), else_=0).label(f"known_{i}") for i, c in enumerate(conditions)]
        if len(conditions) > 1
        else []
    )
    query = (
        select(fv.c.case_id, *flags, *readmodel.FACT_COLUMNS)
        .where(
            fv.c.contract == contract,
            conditions[0] if len(conditions) == 1 else or_(*conditions),
            fv.c.type.in_(OUTCOME_TYPES),
            fv.c.case_id.is_not(None),
        )
        .order_by(fv.c.case_id, fv.c.position)
        # On this statement alone (`Connection.execution_options` would change `conn` for
        # good): a server-side cursor where the driver has one, fetched 2,000 rows at a time.
        .execution_options(yield_per=2000)
    )
    rows = conn.execute(query)
    first = 1 + len(flags)  # where the `FACT_COLUMNS` start in a row
    seen: set[str] = set()
    for case_id, group in groupby(rows, key=itemgetter(0)):
        # Equal ids are adjacent under any deterministic collation: each case comes whole.
        assert case_id not in seen, f"case {case_id!r} read in two pieces"
        seen.add(case_id)
        if wanted is not None and case_id not in wanted:
            continue
        if not flags:
            yield case_id, [readmodel.facts_of_rows(row[first:] for row in group)]
            continue
        found = list(group)
        facts = readmodel.facts_of_rows(row[first:] for row in found)
        yield case_id, [
            [f for f, row in zip(facts, found, strict=True) if row[1 + i]]
            for i in range(len(flags))
        ]


def _known_condition(known_at: KnownAt) -> ColumnElement[bool]:
    """`readmodel.facts_known_at`'s condition: the fact version read at `known_at`."""
    fv = readmodel.fact_versions.c
    if known_at.until is None:
        return fv.recorded_to.is_(None)
    until = naive_utc(known_at.until)
    return and_(fv.recorded_from <= until, or_(fv.recorded_to.is_(None), fv.recorded_to > until))


def terms(engine: Engine, contract: str, known_at: KnownAt = EVERYTHING) -> ContractFacts:
    """The contract's terms, variations and boroughs alone (no case facts read)."""
    return _own(engine, contract, known_at)[1]


def _own(
    engine: Engine, contract: str, known_at: KnownAt
) -> tuple[list[Fact], ContractFacts]:
    """The contract's own facts as known at `known_at` (terms, boroughs, care data: a few
    hundred) and its terms folded from them; an unagreed contract is refused as `knowledge`
    refuses it."""
    facts = readmodel.facts_known_at(engine, contract, known_at, CONTRACT_TYPES)
    folded = contract_from_facts(contract, facts)
    if folded.agreed is None:
        raise QueryError(f"contract {contract!r} was not agreed as known at that time")
    return facts, folded


def liability_at(
    engine: Engine,
    contract: str,
    as_of: date,
    known_at: KnownAt = EVERYTHING,
    week_rule: str | None = None,
) -> Liability:
    """The totals of every tracked case at (as_of, known_at), after caps, by case, borough,
    payer and contract (`outcomes.liability`'s figures).

    Its weeks are not kept, as the totals need none (for the weeks: `knowledge` then
    `outcomes.liability`). With the latest knowledge and each case's own rule the answer is
    read from the weeks read model (`latest`); any other question is computed from the facts
    known then, case by case (`LiabilityStream`), or, when a cap may bind, from every week of
    the contract at once (the caps take the weeks of all cases in order).
    """
    if known_at.until is None and week_rule is None:
        from soc_ledger.projections import latest

        return latest.liability_at(engine, contract, as_of, TermsTimeline(terms(engine, contract)))
    streamed = _streamed_liability(engine, contract, as_of, known_at, week_rule)
    if streamed is not None:
        return streamed
    return liability_with_weeks(engine, contract, as_of, known_at, week_rule)


def liability_with_weeks(
    engine: Engine,
    contract: str,
    as_of: date,
    known_at: KnownAt = EVERYTHING,
    week_rule: str | None = None,
) -> Liability:
    """The liability at (as_of, known_at) with every week (computed from the facts)."""
    k = knowledge(engine, contract, known_at)
    return liability(k.contract, k.cases, k.coverage, as_of, week_rule)


def _stream(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt, week_rule: str | None = None
) -> LiabilityStream:
    """A `LiabilityStream` for the contract's terms and care-data coverage as known at
    `known_at` (its own facts: a few hundred), to be fed its cases."""
    own, folded = _own(engine, contract, known_at)
    return LiabilityStream(folded, coverage_from_facts(own, contract), as_of, week_rule)


def _streamed_liability(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt, week_rule: str | None
) -> Liability | None:
    """`outcomes.liability` from one pass over the cases known at `known_at`, holding one
    case's facts and weeks at a time; None as soon as a cap may bind (then every week is
    needed). Half a million facts as `Fact`s and every case's hundred weeks would not fit in
    a report's memory together."""
    stream = _stream(engine, contract, as_of, known_at, week_rule)
    with engine.connect() as conn:
        for _, facts in latest_case_facts(conn, contract, known_at=known_at):
            # `knowledge` folds the same facts: a case's facts alone give the same case.
            for facts_of_case in cases_from_facts(facts, contract).values():
                stream.add(facts_of_case)
            if stream.binds:
                return None
    return stream.result()


@dataclass(frozen=True, slots=True)
class CaseExplained:
    facts: CaseFacts
    engagement: str
    assessment: Assessment | None
    weeks: list[Week]  # after caps


def explain_case(
    engine: Engine,
    contract: str,
    case: str,
    as_of: date,
    known_at: KnownAt = EVERYTHING,
    week_rule: str | None = None,
) -> CaseExplained:
    """One case's weeks with status, amounts after caps, and what decided them."""
    if known_at.until is None and week_rule is None:
        # Only this case's facts: caps come from the weeks read model, where the amount of a
        # week that has elapsed is final (caps take weeks in order of their last days).
        from soc_ledger.projections import latest

        k = knowledge(engine, contract, known_at, case)
        facts = _the_case(k, case)
        timeline = TermsTimeline(k.contract)
        assessed = assess_case(facts, timeline, k.coverage, as_of)
        stored = latest.weeks_of(engine, contract, case)
        weeks = [
            stored.get((w.index, w.end), w) if w.status == "outcome" else w
            for w in (assessed.weeks if assessed else ())
        ]
        return CaseExplained(facts, engagement(facts, timeline, as_of), assessed, weeks)
    k = knowledge(engine, contract, known_at)
    facts = _the_case(k, case)
    result = liability(k.contract, k.cases, k.coverage, as_of, week_rule)
    timeline = TermsTimeline(k.contract)
    assessed = assess_case(facts, timeline, k.coverage, as_of, week_rule)
    return CaseExplained(facts, result.engagement[case], assessed, result.weeks_of(case))


def _the_case(k: Knowledge, case: str) -> CaseFacts:
    if case not in k.cases:
        raise QueryError(f"no case {case!r} in contract {k.contract.contract!r} as known then")
    return k.cases[case]


def event_refs(engine: Engine, positions: Iterable[int]) -> dict[int, EventRef]:
    wanted = sorted(set(positions))
    found: dict[int, EventRef] = {}
    with engine.connect() as conn:
        for i in range(0, len(wanted), 500):
            rows = conn.execute(
                select(events_index).where(events_index.c.position.in_(wanted[i : i + 500]))
            )
            for r in rows:
                found[r.position] = _ref(r)
    return found


def _ref(r) -> EventRef:
    return EventRef(
        r.position,
        r.type,
        r.key,
        r.effective,
        aware_utc(r.recorded_on).isoformat(),
        r.case_id,
        r.stream,
        r.version,
        r.target_version,
    )


def recorded_between(
    engine: Engine, contract: str, after: KnownAt, until: KnownAt
) -> list[EventRef]:
    """Events of the contract recorded after `after` and by `until`."""
    query = select(events_index).where(events_index.c.contract == contract)
    if after.until is not None:
        query = query.where(events_index.c.recorded_on > naive_utc(after.until))
    if until.until is not None:
        query = query.where(events_index.c.recorded_on <= naive_utc(until.until))
    with engine.connect() as conn:
        return [_ref(r) for r in conn.execute(query.order_by(events_index.c.position))]


# --- diff -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WeekChange:
    case: str
    borough: str
    week: int
    start: date
    end: date
    before: Week | None
    after: Week | None
    because: tuple[int, ...]  # events recorded between the two times that decided the change

    @property
    def owed_change(self) -> Decimal:
        return (self.after.owed if self.after else ZERO) - (
            self.before.owed if self.before else ZERO
        )


@dataclass(frozen=True, slots=True)
class Diff:
    contract: str
    as_of: date
    before: Liability
    after: Liability
    changes: list[WeekChange]
    refs: dict[int, EventRef]

    @property
    def total_change(self) -> Decimal:
        return self.after.totals.owed - self.before.totals.owed

    def by_payer(self) -> dict[str, Decimal]:
        before, after = self.before.by_payer, self.after.by_payer
        return {
            payer: after.get(payer, ZERO) - before.get(payer, ZERO)
            for payer in sorted(set(before) | set(after))
            if after.get(payer, ZERO) != before.get(payer, ZERO)
        }


def _key(week: Week) -> tuple[str, int, date]:
    return (week.case, week.index, week.end)


def diff(engine: Engine, contract: str, as_of: date, first: KnownAt, second: KnownAt) -> Diff:
    """Every case and week whose status or amount differs between two states of knowledge."""
    # Both sides week by week from the facts: the weeks read model keeps no weeks list. Case
    # by case when no cap may bind on either side (a week then depends on its own case only);
    # else every week of both sides at once, as the caps take them in order across cases.
    streamed = _streamed_diff(engine, contract, as_of, first, second)
    if streamed is not None:
        return streamed
    return _full_diff(engine, contract, as_of, first, second)


def _full_diff(
    engine: Engine, contract: str, as_of: date, first: KnownAt, second: KnownAt
) -> Diff:
    """`diff` from both sides' liabilities with every week."""
    before = _computed(engine, contract, as_of, first)
    after = _computed(engine, contract, as_of, second)
    old = {_key(w): w for w in before.weeks}
    new = {_key(w): w for w in after.weeks}
    news = recorded_between(engine, contract, *_in_order(first, second))
    by_ref = {
        (e.stream, e.version): e for e in event_refs(engine, _positions(before, after)).values()
    }
    borough = {c.case: c.borough for c in (*before.cases, *after.cases)}
    found = [
        (key, old.get(key), new.get(key), borough.get(key[0], ""))
        for key in sorted(set(old) | set(new), key=_change_order)
        if not _unchanged(old.get(key), new.get(key))
    ]
    changes = _explained(found, news, by_ref)
    refs = event_refs(engine, (p for c in changes for p in c.because))
    return Diff(contract, as_of, before, after, changes, refs)


def _streamed_diff(
    engine: Engine, contract: str, as_of: date, first: KnownAt, second: KnownAt
) -> Diff | None:
    """`diff` from one pass over the cases known at either time, in case order: each case's
    weeks on both sides compared, then dropped, keeping only the changes. None as soon as a
    cap may bind on either side."""
    sides = (_stream(engine, contract, as_of, first), _stream(engine, contract, as_of, second))
    news = recorded_between(engine, contract, *_in_order(first, second))
    # `_full_diff` resolves every position deciding a week to find the events the news
    # correct or retract among them. Only those targets are ever looked up: resolve them (a
    # few), and note which of their positions decide some week as the weeks go by.
    targets = _refs_by_identity(
        engine, {(e.stream, e.target_version) for e in news if e.target_version is not None}
    )
    wanted = {ref.position for ref in targets.values()}
    deciding: set[int] = set()
    found: list[tuple[tuple[str, int, date], Week | None, Week | None, str]] = []
    with engine.connect() as conn:
        for _, readings in known_case_facts(conn, contract, (first, second)):
            assessed: list[Assessment | None] = []
            for side, facts in zip(sides, readings, strict=True):
                a = None
                for facts_of_case in cases_from_facts(facts, contract).values():
                    a = side.add(facts_of_case)
                assessed.append(a)
            if sides[0].binds or sides[1].binds:
                return None
            before, after = assessed
            old_weeks = before.weeks if before is not None else ()
            new_weeks = after.weeks if after is not None else ()
            if wanted:
                deciding |= wanted.intersection(
                    chain.from_iterable(w.because for w in (*old_weeks, *new_weeks))
                )
            # A case's weeks differ only if it is tracked on a side (with the same borough
            # `_full_diff` names: the later reading's, if tracked then).
            tracked = after or before
            if tracked is None:
                continue
            old = {_key(w): w for w in old_weeks}
            new = {_key(w): w for w in new_weeks}
            found.extend(
                (key, old.get(key), new.get(key), tracked.case.borough)
                for key in set(old) | set(new)
                if not _unchanged(old.get(key), new.get(key))
            )
    found.sort(key=lambda item: _change_order(item[0]))
    by_ref = {identity: ref for identity, ref in targets.items() if ref.position in deciding}
    changes = _explained(found, news, by_ref)
    refs = event_refs(engine, (p for c in changes for p in c.because))
    return Diff(contract, as_of, sides[0].result(), sides[1].result(), changes, refs)


def _refs_by_identity(
    engine: Engine, identities: set[tuple[str, int]]
) -> dict[tuple[str, int], EventRef]:
    """The events with these (stream, version), by (stream, version)."""
    found: dict[tuple[str, int], EventRef] = {}
    pairs = sorted(identities)
    e = events_index.c
    with engine.connect() as conn:
        for i in range(0, len(pairs), 500):
            chunk = pairs[i : i + 500]
            rows = conn.execute(
                select(events_index).where(
                    e.stream.in_(sorted({s for s, _ in chunk})),
                    e.version.in_(sorted({v for _, v in chunk})),
                )
            )
            for r in rows:  # a superset of the chunk's pairs: keep those asked for
                if (r.stream, r.version) in identities:
                    found[(r.stream, r.version)] = _ref(r)
    return found


def _change_order(key: tuple[str, int, date]) -> tuple[date, str, int]:
    """Changes are listed by the week's last day, then case, then week."""
    return (key[2], key[0], key[1])


def _unchanged(a: Week | None, b: Week | None) -> bool:
    return (
        a is not None
        and b is not None
        and (a.status, a.owed, a.capped) == (b.status, b.owed, b.capped)
    )


def _explained(
    found: list[tuple[tuple[str, int, date], Week | None, Week | None, str]],
    news: list[EventRef],
    by_ref: dict[tuple[str, int], EventRef],
) -> list[WeekChange]:
    """The changes `found` (key, week before, week after, borough; in `_change_order`), each
    with the events recorded between the two times (`news`) responsible for it. `by_ref`
    holds, by (stream, version), the events deciding some week on either side (at least
    those the news correct or retract)."""
    news_by_position = {e.position: e for e in news}
    lifecycle_news: dict[str, set[int]] = {}
    for e in news:
        if e.case is None:
            continue
        target = by_ref.get((e.stream, e.target_version)) if e.target_version else None
        if e.type in LIFECYCLE or (target is not None and target.type in LIFECYCLE):
            # Whether and when a case is tracked moves every one of its weeks.
            lifecycle_news.setdefault(e.case, set()).add(e.position)
    # The new correctors and retractors of each position, found once (not once per week).
    correctors: dict[int, list[int]] = {}
    for e in news:
        if e.target_version is not None:
            target = by_ref.get((e.stream, e.target_version))
            if target is not None:
                correctors.setdefault(target.position, []).append(e.position)
    changes = []
    for key, a, b, borough in found:
        decided = set((a.because if a else ()) + (b.because if b else ()))
        responsible = {p for p in decided if p in news_by_position}
        responsible |= lifecycle_news.get(key[0], set())
        # Corrections and retractions of what decided the week are responsible too.
        for p in decided:
            responsible.update(correctors.get(p, ()))
        w = b or a
        assert w is not None
        changes.append(
            WeekChange(
                key[0], borough, w.index, w.start, w.end, a, b, tuple(sorted(responsible))
            )
        )
    return changes


def _computed(engine: Engine, contract: str, as_of: date, known_at: KnownAt) -> Liability:
    k = knowledge(engine, contract, known_at)
    return liability(k.contract, k.cases, k.coverage, as_of)


def _positions(*results: Liability) -> set[int]:
    return {p for r in results for w in r.weeks for p in w.because}


def _in_order(a: KnownAt, b: KnownAt) -> tuple[KnownAt, KnownAt]:
    """The two readings, the earlier first."""
    return (a, b) if _earlier(a, b) else (b, a)


def _earlier(a: KnownAt, b: KnownAt) -> bool:
    if a.until is None:
        return False
    return b.until is None or a.until <= b.until
