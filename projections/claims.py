"""Claims, disputes and payments (SPEC §7): the `reconcile` and `statement` queries.

They read the claims and the facts known at (as_of, known_at) from the read models and hand
them to the rules in `domain/claims/` (`claims`, `owed`, `reconciliation`, `statement`), whose
module docstrings hold the readings (also in docs/claims.md).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import Engine

from soc_ledger.domain.claims.claims import (
    Claim,
    Windows,
    asked,
    claims_from_facts,
    on_ledger,
)
from soc_ledger.domain.claims.owed import Owed
from soc_ledger.domain.claims.reconciliation import (
    Reconciliation,
    correcting_events,
    reconcile_claim,
)
from soc_ledger.domain.claims.statement import Statement, statement_of
from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.knowledge import EVERYTHING, KnownAt
from soc_ledger.domain.outcomes.facts import ContractFacts, cases_from_facts
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.ledger.encryption import open_text
from soc_ledger.ledger.index import stream_name
from soc_ledger.projections import claims_made, queries, readmodel, versions
from soc_ledger.projections.outcome_facts import knowledge
from soc_ledger.projections.versions import StoredOwed

CLAIM_TYPES = ("ClaimSubmitted", "ClaimLineDisputed", "DisputeResolved", "PaymentReceived")


def claims_at(
    engine: Engine,
    contract: str,
    known_at: KnownAt = EVERYTHING,
    payers: Collection[str] | None = None,
    named: Collection[str] = (),
    through_named: bool = False,
) -> dict[str, Claim]:
    """The contract's claims with what is recorded about them by `known_at`.

    With `payers` (and the payers of the claims `named`), only the claims made to them, and
    any other claim of the same id (the rules refuse a second submission of an id) are
    decoded: a claim lists a line per case, and a statement or a reconciliation reads one
    payer's. The rest of a claim's facts are few and all decoded; the rules leave out those
    of a claim not read. The submissions come from the claims read model (`claims_made`)
    when it follows the log as far as the facts, else from the facts themselves; from the
    read model, `through_named` leaves out the claims read after the last one `named`
    (`claims_made.submissions`)."""
    if claims_made.in_step(engine):
        # The submissions from the claims read model (a payer's found by a column, lines read
        # as rows); their disputes, resolutions and payments are few and all decoded.
        types = ("ContractAgreed", *CLAIM_TYPES[1:])
        facts = readmodel.facts_known_at(engine, contract, known_at, types)
        facts += claims_made.submissions(
            engine, contract, known_at, payers, named, through_named
        )
        facts.sort(key=lambda f: f.recorded.position)
        return claims_from_facts(facts, contract)
    types = ("ContractAgreed", *CLAIM_TYPES)
    rows = readmodel.rows_known_at(engine, contract, known_at, types)
    if payers is not None or named:
        heads = {row[0]: _head(row) for row in rows if row[3] == "ClaimSubmitted"}
        ids = asked((head for head in heads.values() if head is not None), payers, named)
        rows = [
            row
            for row in rows
            if row[3] != "ClaimSubmitted" or (head := heads[row[0]]) is None or head[0] in ids
        ]
    return claims_from_facts(readmodel.facts_of_rows(rows), contract)


def _head(row: Sequence[Any]) -> tuple[str, str] | None:
    """A submission's (claim, payer) from its stored text alone, no line validated; None if
    the text is damaged (the row is then decoded in full, which reports the damage)."""
    try:
        found = orjson.loads(open_text(row[5]))
        return str(found["claim"]), str(found["payer"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


def _owed(
    engine: Engine,
    contract: str,
    known_at: KnownAt,
    horizon: date,
    cases: Collection[str] | None = None,
    boroughs: Collection[str] | None = None,
) -> Owed | StoredOwed:
    """What each payer owes for each case (or only `cases`) at `known_at`: from the case
    versions known then when they are in step with the facts and no cap can bind then (a few
    rows per case), else every week of the contract computed from the facts (`Owed`)."""
    if versions.in_step(engine):
        terms = queries.terms(engine, contract, known_at)  # refuses as `knowledge` does
        if not versions.caps_may_bind(engine, contract, known_at, TermsTimeline(terms)):
            return StoredOwed(engine, contract, known_at, terms, cases, boroughs)
    k = knowledge(engine, contract, known_at)
    return Owed(k.contract, k.cases, k.coverage, horizon)


def reconcile(
    engine: Engine, contract: str, claim: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> Reconciliation:
    """One claim at (as_of, known_at): due then, due now, paid, disputed, adjustments."""
    return reconcile_many(engine, contract, as_of, known_at, [claim])[0]


def reconcile_many(
    engine: Engine,
    contract: str,
    as_of: date,
    known_at: KnownAt = EVERYTHING,
    claims: Sequence[str] | None = None,
) -> list[Reconciliation]:
    """Several claims (default: every claim on the ledger at as_of), reading each state of
    knowledge once: the facts known now, and those known at each distinct recording instant."""
    # A claim's lines' windows are decided by the payer's claims before it: no later one.
    held = claims_at(
        engine, contract, known_at, None if claims is None else (), claims or (), True
    )
    ledger = on_ledger(held.values(), as_of)
    wanted = [c.claim for c in ledger] if claims is None else list(claims)
    for name in wanted:
        if name not in held:
            when = "" if known_at.until is None else f" as known at {known_at.until.date()}"
            raise QueryError(f"no claim {name!r} in contract {contract!r}{when}")
        if held[name].submitted > as_of:
            raise QueryError(
                f"claim {name!r} was submitted on {held[name].submitted}, after {as_of}"
            )
    if not wanted:
        return []
    # The claims are the contract's own events; the events that can explain a moved line are
    # the contract's and its case's (`correcting_events`): read by stream, never the whole log.
    own = queries.stream_events(engine, [stream_name(contract)], known_at)
    by_position = {e.position: e for e in own}
    targets = [held[name] for name in wanted]
    instants = {
        c.claim: datetime.fromisoformat(by_position[c.position].recorded_on) for c in targets
    }

    lines = {line.case for c in targets for line in c.lines}
    now = _owed(engine, contract, known_at, max(c.period_end for c in targets), lines)
    then: dict[datetime, Owed | StoredOwed] = {}
    for instant in sorted(set(instants.values())):
        horizon = max(c.period_end for c in targets if instants[c.claim] == instant)
        then[instant] = _owed(engine, contract, KnownAt(instant), horizon, lines)
    windows = {payer: Windows.of(ledger, payer) for payer in {c.payer for c in targets}}
    payee = now.contract.agreed.prime_contractor if now.contract.agreed else None

    results = []
    for claim in targets:
        instant = instants[claim.claim]
        result = reconcile_claim(
            contract, claim, windows[claim.payer], then[instant], now, as_of, instant, payee
        )
        moved = [line for line in result.lines if line.due_then != line.due_now]
        if moved:
            streams = [stream_name(contract, line.case) for line in moved]
            events = sorted(
                [*own, *queries.stream_events(engine, streams, known_at)],
                key=lambda e: e.position,
            )
            by_position = {e.position: e for e in events}
            by_ref = {(e.stream, e.version): e for e in events}
            news = [e for e in events if datetime.fromisoformat(e.recorded_on) > instant]
            because = {
                line.case: correcting_events(
                    line.case,
                    then[instant].weeks(line.case, line.after, claim.period_end),
                    now.weeks(line.case, line.after, claim.period_end),
                    news,
                    by_ref,
                )
                for line in moved
            }
            named = sorted({p for refs in because.values() for p in refs})
            result = replace(
                result,
                lines=tuple(
                    replace(line, because=because.get(line.case, ())) for line in result.lines
                ),
                events={p: by_position[p] for p in named},
            )
        results.append(result)
    return results


def reconcile_payer(
    engine: Engine, contract: str, payer: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> list[Reconciliation]:
    """Every claim made to PAYER on the ledger at (as_of, known_at), reconciled (in order of
    period end, then of recording); a payer the contract does not know is an error."""
    held = claims_at(engine, contract, known_at, [payer])
    _payers(engine, contract, known_at, held, [payer])
    mine = [c.claim for c in on_ledger(held.values(), as_of) if c.payer == payer]
    return reconcile_many(engine, contract, as_of, known_at, mine)


def _check_payers(
    contract: str,
    terms: ContractFacts,
    boroughs: set[str],
    held: dict[str, Claim],
    payers: Sequence[str] | None,
) -> list[str]:
    """Every payer of the contract (its boroughs and its cases', from `_payers`, the top-up
    funder, anyone a claim was made to); any of PAYERS not among them is an error."""
    known = sorted({*terms.boroughs, *boroughs})
    if terms.agreed is not None:
        known.append(terms.agreed.top_up_funder)
    known += sorted({c.payer for c in held.values()} - set(known))
    for payer in payers or ():
        if payer not in known:
            raise QueryError(
                f"no payer {payer!r} in contract {contract!r} (a borough or the top-up funder)"
            )
    return known


def _payers(
    engine: Engine,
    contract: str,
    known_at: KnownAt,
    held: dict[str, Claim],
    payers: Sequence[str] | None,
) -> tuple[ContractFacts, list[str]]:
    """The contract's terms and its payers as known at `known_at` (`_check_payers`: any of
    PAYERS not among them is an error). The boroughs its cases name are read from the
    referrals (a referral names its borough; no other fact moves it) only when every payer is
    wanted or one of PAYERS is none of the boroughs, the top-up funder and the claims' payers:
    a national contract's referrals are tens of thousands of facts."""
    terms = queries.terms(engine, contract, known_at)  # refuses a contract not agreed then
    assert terms.agreed is not None
    named = {*terms.boroughs, terms.agreed.top_up_funder, *(c.payer for c in held.values())}
    boroughs: set[str] = set()
    if payers is None or any(payer not in named for payer in payers):
        wanted = (*queries.CONTRACT_TYPES, "ReferralReceived")
        facts = readmodel.facts_known_at(engine, contract, known_at, wanted)
        boroughs = {c.borough for c in cases_from_facts(facts, contract).values()}
    return terms, _check_payers(contract, terms, boroughs, held, payers)


def statement(
    engine: Engine, contract: str, payer: str, as_of: date, known_at: KnownAt = EVERYTHING
) -> Statement:
    """A payer's statement of account at (as_of, known_at)."""
    return statements(engine, contract, as_of, known_at, [payer])[0]


def statements(
    engine: Engine,
    contract: str,
    as_of: date,
    known_at: KnownAt = EVERYTHING,
    payers: Sequence[str] | None = None,
) -> list[Statement]:
    """Statements of account at (as_of, known_at), reading the facts once (default: every
    payer: the boroughs, the top-up funder, and anyone a claim was made to)."""
    held = claims_at(engine, contract, known_at, payers)
    terms, known = _payers(engine, contract, known_at, held, payers)
    ledger = on_ledger(held.values(), as_of)
    horizon = max([as_of] + [c.period_end for c in ledger])
    # Boroughs' statements need only their own cases; the top-up funder shares in every case.
    funder = terms.agreed.top_up_funder if terms.agreed else None
    only = set(payers) if payers and funder not in payers else None
    owed = _owed(engine, contract, known_at, horizon, None, only)
    return [statement_of(contract, payer, ledger, owed, as_of) for payer in payers or known]
