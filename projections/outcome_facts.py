"""The facts known at K, as the outcome rules read them from the facts read model.

`knowledge` answers one question's reading (the contract, its cases and coverage, folded); the
latest read model (`latest.py`) and the 903 import refresh from the readers of the facts known
now, by stream (`latest_facts`) or in one pass sorted by case (`latest_case_facts`), and `diff`
reads two readings in one pass (`known_case_facts`).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter

from sqlalchemy import ColumnElement, Connection, Engine, or_, select
from sqlalchemy import case as when

from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.events import CASE_EVENTS
from soc_ledger.domain.knowledge import EVERYTHING, Fact, KnownAt
from soc_ledger.domain.outcomes.facts import (
    CaseFacts,
    ContractFacts,
    Coverage,
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
)
from soc_ledger.ledger.index import stream_name
from soc_ledger.projections import readmodel

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
# A case's own facts, and the contract's (terms, boroughs, care data).
CASE_TYPES = tuple(t for t in OUTCOME_TYPES if t in CASE_EVENTS)
CONTRACT_TYPES = tuple(t for t in OUTCOME_TYPES if t not in CASE_EVENTS)


@dataclass(frozen=True, slots=True)
class Knowledge:
    """What the outcome rules read, as known at one time."""

    known_at: KnownAt
    facts: list[Fact]
    contract: ContractFacts
    cases: dict[str, CaseFacts]
    coverage: Coverage


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
    # The stream stands for the contract (a stream names its contract): filtering on `contract`
    # too leads PostgreSQL's planner to the wider index, every current fact of the contract
    # read to find a few hundred cases' (15 s a query at scale 100, as `rows_known_at` found).
    base = select(*readmodel.FACT_COLUMNS).where(
        fv.c.recorded_to.is_(None), fv.c.type.in_(OUTCOME_TYPES)
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
        yield (
            case_id,
            [
                [f for f, row in zip(facts, found, strict=True) if row[1 + i]]
                for i in range(len(flags))
            ],
        )


def _known_condition(known_at: KnownAt) -> ColumnElement[bool]:
    """`readmodel.facts_known_at`'s condition: the fact version read at `known_at`."""
    fv = readmodel.fact_versions.c
    return readmodel.known_between(fv.recorded_from, fv.recorded_to, known_at)
