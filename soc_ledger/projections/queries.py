"""Questions at (as_of, known_at), answered from the read models and the outcome rules."""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import groupby
from operator import itemgetter

from sqlalchemy import Connection, Engine, select

from soc_ledger.domain.events import CASE_EVENTS
from soc_ledger.domain.knowledge import EVERYTHING, Fact, KnownAt
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
from soc_ledger.projections.outcomes import Liability, Week, liability
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


class QueryError(Exception):
    """A question that cannot be answered as asked (unknown contract, case, week)."""


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


LIFECYCLE = frozenset(
    {
        "ReferralReceived",
        "ReferralAccepted",
        "ReferralDeclined",
        "FirstFamilyMeeting",
        "InterventionEnded",
    }
)
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
    conn: Connection, contract: str, wanted: Container[str] | None = None
) -> Iterator[tuple[str, list[Fact]]]:
    """Every case of `contract` with its facts known now, case after case, each case's facts
    in log order (as `latest_facts` gives them); with `wanted`, only those cases' decoded.

    For a pass over all (or much) of the contract: ONE query in (case, position) order, read
    a batch at a time. The database sorts the rows once, sequentially (a temporary B-tree in
    SQLite, an external sort in PostgreSQL: about a second for half a million facts), where
    `latest_facts`' reads by stream fetch rows from the table in random order, which dominates
    a rebuild once the table outgrows the page cache. Memory holds one batch of rows and one
    case's facts, however large the contract.
    """
    fv = readmodel.fact_versions
    query = (
        select(fv.c.case_id, *readmodel.FACT_COLUMNS)
        .where(
            fv.c.contract == contract,
            fv.c.recorded_to.is_(None),
            fv.c.type.in_(OUTCOME_TYPES),
            fv.c.case_id.is_not(None),
        )
        .order_by(fv.c.case_id, fv.c.position)
        # On this statement alone (`Connection.execution_options` would change `conn` for
        # good): a server-side cursor where the driver has one, fetched 2,000 rows at a time.
        .execution_options(yield_per=2000)
    )
    rows = conn.execute(query)
    seen: set[str] = set()
    for case_id, group in groupby(rows, key=itemgetter(0)):
        # Equal ids are adjacent under any deterministic collation: each case comes whole.
        assert case_id not in seen, f"case {case_id!r} read in two pieces"
        seen.add(case_id)
        if wanted is None or case_id in wanted:
            yield case_id, readmodel.facts_of_rows(row[1:] for row in group)


def terms(engine: Engine, contract: str, known_at: KnownAt = EVERYTHING) -> ContractFacts:
    """The contract's terms, variations and boroughs alone (no case facts read)."""
    facts = readmodel.facts_known_at(engine, contract, known_at, CONTRACT_TYPES)
    folded = contract_from_facts(contract, facts)
    if folded.agreed is None:
        raise QueryError(f"contract {contract!r} was not agreed as known at that time")
    return folded


def liability_at(
    engine: Engine,
    contract: str,
    as_of: date,
    known_at: KnownAt = EVERYTHING,
    week_rule: str | None = None,
) -> Liability:
    """Every week of every tracked case at (as_of, known_at), after caps, with totals.

    With the latest knowledge and each case's own rule the answer is read from the weeks read
    model (`latest`); any other question is computed from the facts known then.
    """
    if known_at.until is None and week_rule is None:
        from soc_ledger.projections import latest

        return latest.liability_at(engine, contract, as_of, TermsTimeline(terms(engine, contract)))
    k = knowledge(engine, contract, known_at)
    return liability(k.contract, k.cases, k.coverage, as_of, week_rule)


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


@dataclass(frozen=True, slots=True)
class EventRef:
    position: int
    type: str
    key: str | None
    effective: date
    recorded_on: str
    case: str | None
    stream: str
    version: int
    target_version: int | None

    @property
    def ref(self) -> str:
        return f"#{self.position}"


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
    # Both sides week by week from the facts: the weeks read model keeps no weeks list.
    before = _computed(engine, contract, as_of, first)
    after = _computed(engine, contract, as_of, second)
    old = {_key(w): w for w in before.weeks}
    new = {_key(w): w for w in after.weeks}
    early, late = (first, second) if _earlier(first, second) else (second, first)
    news = recorded_between(engine, contract, early, late)
    by_ref = {
        (e.stream, e.version): e for e in event_refs(engine, _positions(before, after)).values()
    }
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
    borough = {c.case: c.borough for c in (*before.cases, *after.cases)}
    changes = []
    for key in sorted(set(old) | set(new), key=lambda k: (k[2], k[0], k[1])):
        a, b = old.get(key), new.get(key)
        if (
            a is not None
            and b is not None
            and (a.status, a.owed, a.capped)
            == (
                b.status,
                b.owed,
                b.capped,
            )
        ):
            continue
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
                key[0],
                borough.get(key[0], ""),
                w.index,
                w.start,
                w.end,
                a,
                b,
                tuple(sorted(responsible)),
            )
        )
    refs = event_refs(engine, (p for c in changes for p in c.because))
    return Diff(contract, as_of, before, after, changes, refs)


def _computed(engine: Engine, contract: str, as_of: date, known_at: KnownAt) -> Liability:
    k = knowledge(engine, contract, known_at)
    return liability(k.contract, k.cases, k.coverage, as_of)


def _positions(*results: Liability) -> set[int]:
    return {p for r in results for w in r.weeks for p in w.because}


def _earlier(a: KnownAt, b: KnownAt) -> bool:
    if a.until is None:
        return False
    return b.until is None or a.until <= b.until
