"""Questions at (as_of, known_at), answered from the read models and the outcome rules."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, select

from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.knowledge import EVERYTHING, EventRef, Fact, KnownAt
from soc_ledger.domain.outcomes.assessment import Assessment, assess_case
from soc_ledger.domain.outcomes.facts import (
    CaseFacts,
    ContractFacts,
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
)
from soc_ledger.domain.outcomes.liability import Liability, LiabilityStream, liability
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import engagement
from soc_ledger.domain.outcomes.weeks import Week
from soc_ledger.ledger.index import aware_utc, events_index, naive_utc
from soc_ledger.projections import readmodel
from soc_ledger.projections.outcome_facts import (
    CONTRACT_TYPES,
    Knowledge,
    knowledge,
    latest_case_facts,
)


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


def terms(engine: Engine, contract: str, known_at: KnownAt = EVERYTHING) -> ContractFacts:
    """The contract's terms, variations and boroughs alone (no case facts read)."""
    return _own(engine, contract, known_at)[1]


def week_rule_of(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt, asked: str | None
) -> str:
    """The week rule a liability reads under: the one asked for (a what-if), else the rule of
    the terms in force on `as_of` as known then."""
    return asked or terms(engine, contract, known_at).terms_on(as_of).week_rule


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
    payer and contract (`liability.liability`'s figures).

    Its weeks are not kept, as the totals need none (for the weeks: `knowledge` then
    `liability.liability`). With the latest knowledge and each case's own rule the answer is
    read from the weeks read model (`latest`), and at an earlier knowledge from the case
    versions known then (`versions`) unless a cap may bind then; any other question (a
    `week_rule` what-if, or a binding cap at an earlier knowledge) is computed from the facts
    known then, case by case (`LiabilityStream`), or, when a cap may bind, from every week of
    the contract at once (the caps take the weeks of all cases in order).
    """
    if known_at.until is None and week_rule is None:
        from soc_ledger.projections import latest

        return latest.liability_at(engine, contract, as_of, TermsTimeline(terms(engine, contract)))
    if week_rule is None:
        from soc_ledger.projections import versions

        then = TermsTimeline(terms(engine, contract, known_at))
        stored = versions.liability_at(engine, contract, as_of, known_at, then)
        if stored is not None:
            return stored
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


def liability_stream(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt, week_rule: str | None = None
) -> LiabilityStream:
    """A `LiabilityStream` for the contract's terms and care-data coverage as known at
    `known_at` (its own facts: a few hundred), to be fed its cases (by `liability_at` and
    `diff`)."""
    own, folded = _own(engine, contract, known_at)
    return LiabilityStream(folded, coverage_from_facts(own, contract), as_of, week_rule)


def _streamed_liability(
    engine: Engine, contract: str, as_of: date, known_at: KnownAt, week_rule: str | None
) -> Liability | None:
    """`liability.liability` from one pass over the cases known at `known_at`, holding one
    case's facts and weeks at a time; None as soon as a cap may bind (then every week is
    needed). Half a million facts as `Fact`s and every case's hundred weeks would not fit in
    a report's memory together."""
    stream = liability_stream(engine, contract, as_of, known_at, week_rule)
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
    return explain_cases(engine, contract, [case], as_of, known_at, week_rule)[case]


def explain_cases(
    engine: Engine,
    contract: str,
    cases: Iterable[str],
    as_of: date,
    known_at: KnownAt = EVERYTHING,
    week_rule: str | None = None,
) -> dict[str, CaseExplained]:
    """`explain_case` for several cases (the auditor's pack: every tracked case), from the
    facts known then and the liability after caps computed once for all of them. With the latest
    knowledge `explain_case` reads the stored weeks instead; `verify` holds those equal to the
    ones computed here (the read model rebuilt and compared), and tests/test_audit_pack.py
    compares a pack's cases with `explain`."""
    k = knowledge(engine, contract, known_at)
    cases = list(cases)
    for case in cases:  # an unknown case is told before the whole liability is computed
        _the_case(k, case)
    result = liability(k.contract, k.cases, k.coverage, as_of, week_rule)
    timeline = TermsTimeline(k.contract)
    found = {}
    for case in cases:
        facts = k.cases[case]
        assessed = assess_case(facts, timeline, k.coverage, as_of, week_rule)
        found[case] = CaseExplained(facts, result.engagement[case], assessed, result.weeks_of(case))
    return found


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
                select(*REF_COLUMNS).where(events_index.c.position.in_(wanted[i : i + 500]))
            )
            for r in rows:
                found[r.position] = _ref(r)
    return found


# What an `EventRef` is read from: never the event's payload (a claim's can be megabytes,
# and a wide `diff` names hundreds of thousands of events).
REF_COLUMNS = tuple(
    events_index.c[name]
    for name in (
        "position", "type", "key", "effective", "recorded_on", "case_id", "stream", "version",
        "target_version",
    )
)  # fmt: skip


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
    query = select(*REF_COLUMNS).where(events_index.c.contract == contract)
    if after.until is not None:
        query = query.where(events_index.c.recorded_on > naive_utc(after.until))
    if until.until is not None:
        query = query.where(events_index.c.recorded_on <= naive_utc(until.until))
    with engine.connect() as conn:
        return [_ref(r) for r in conn.execute(query.order_by(events_index.c.position))]


def stream_events(
    engine: Engine, streams: Collection[str], until: KnownAt = EVERYTHING
) -> list[EventRef]:
    """The events of these streams recorded by `until`, in log order: a stream's events
    are found by the index on (stream, version), whatever the size of the log."""
    e = events_index.c
    found: list[EventRef] = []
    names = sorted(set(streams))
    with engine.connect() as conn:
        for i in range(0, len(names), 500):
            query = select(*REF_COLUMNS).where(e.stream.in_(names[i : i + 500]))
            if until.until is not None:
                query = query.where(e.recorded_on <= naive_utc(until.until))
            found.extend(_ref(r) for r in conn.execute(query))
    return sorted(found, key=lambda ref: ref.position)


def refs_by_identity(
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
                select(*REF_COLUMNS).where(
                    e.stream.in_(sorted({s for s, _ in chunk})),
                    e.version.in_(sorted({v for _, v in chunk})),
                )
            )
            for r in rows:  # a superset of the chunk's pairs: keep those asked for
                if (r.stream, r.version) in identities:
                    found[(r.stream, r.version)] = _ref(r)
    return found
