"""What goes into an auditor's pack: the JSON reports' own shapes, read once, scoped to a payer.

Every figure of the pack is a value of a report's JSON (`liability_json`, `explain_json`,
`reconcile_json`, `statement_json`, `diff_json`, `returns_json`, `finances_json`, the verify
report), so the pack says exactly what those commands say, and any field they gain later comes
along. The scope is decided here and nowhere else: a borough's pack keeps only its own cases,
claims, statement, returns and the events behind them; the top-up funder's pack keeps every case
(it pays a share of each) but only its own claims and statement; neither holds the investors'
returns or the contract's finances, which are the prime contractor's business.

Before/after: `collect(ledger, "plcip", date(2023, 12, 31), payer="SUT")` gives a `Contents`
whose `liability["boroughs"]` is `[{"borough": "SUT", ...}]` and whose `cases` are SUT's only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from soc_ledger.domain.errors import QueryError
from soc_ledger.domain.knowledge import KnownAt

if TYPE_CHECKING:
    from soc_ledger.ledger.service import Ledger, TrailEntry

CARE_TYPES = ("CareEpisodeStarted", "CareEpisodeEnded")


@dataclass
class Contents:
    """The pack's data: each part as its report's JSON (scoped), plus the events behind it."""

    contract: str
    as_of: date
    known_at: date | None
    since: date | None
    payer: str | None
    scope: str  # "contract", "borough" or "top_up"
    top_up_funder: str | None
    head: tuple[int, str]
    verify: dict[str, Any]
    liability: dict[str, Any]
    cases: list[dict[str, Any]]
    claims: list[dict[str, Any]]
    statements: list[dict[str, Any]]
    diff: dict[str, Any] | None
    moves: dict[int, list[str]]  # index of a change in diff["changes"] -> claims it moves
    returns_903: list[dict[str, Any]]
    returns: dict[str, Any] | None
    finances: dict[str, Any] | None
    owed_series: dict[str, list[tuple[date, Any]]]
    drawn: tuple[Any, Any] | None = None  # (Returns, Finances) for the finances plot
    events: dict[int, dict[str, Any]] = field(default_factory=dict)  # position -> trail row

    @property
    def boroughs(self) -> list[str]:
        return [b["borough"] for b in self.liability["boroughs"]]


Step = Callable[[str], None]


def collect(
    ledger: Ledger,
    contract: str,
    as_of: date,
    known_at: date | None = None,
    since: date | None = None,
    payer: str | None = None,
    step: Step | None = None,
) -> Contents:
    """Every report of the pack at (as_of, known_at), scoped to PAYER if given."""
    from soc_ledger.domain.claims.claims import on_ledger
    from soc_ledger.projections import claims as claim_queries
    from soc_ledger.projections import diff as diffs
    from soc_ledger.projections import finances as money
    from soc_ledger.projections import queries, verification
    from soc_ledger.projections.views import finance
    from soc_ledger.projections.views.claims import reconcile_json, statement_json
    from soc_ledger.projections.views.liability import diff_json, explain_json, liability_json

    say = step or (lambda _: None)
    engine = ledger.engine
    known = KnownAt.on(known_at)
    if since is not None and known_at is not None and since > known_at:
        raise QueryError(f"--since-known-at {since} is after --known-at {known_at}")

    say("liability")
    result = queries.liability_with_weeks(engine, contract, as_of, known)
    rule = queries.week_rule_of(engine, contract, as_of, known, None)
    # The figures themselves come from the same query as `liability` (its totals).
    whole = liability_json(queries.liability_at(engine, contract, as_of, known), known_at, rule)
    funder = result.top_up_funder
    boroughs = [b["borough"] for b in whole["boroughs"]]
    scope = "contract"
    if payer is not None:
        if payer == funder:
            scope = "top_up"
        elif payer in boroughs:
            scope = "borough"
        else:
            raise QueryError(
                f"--payer: no payer {payer!r} in contract {contract!r} "
                f"(one of {', '.join([*boroughs, *([funder] if funder else [])])})"
            )
    mine = (lambda b: b == payer) if scope == "borough" else (lambda b: True)
    liability = _scoped_liability(whole, scope, payer)
    series = money.owed_over_time(result)
    if scope != "contract":
        series = {p: points for p, points in series.items() if p == payer}

    say("cases")
    tracked = [c["case"] for c in liability["cases"]]
    explained = queries.explain_cases(engine, contract, tracked, as_of, known)
    because = {
        case: {p for w in found.weeks for p in w.because} | set(found.facts.refs)
        for case, found in explained.items()
    }
    refs = queries.event_refs(engine, {p for named in because.values() for p in named})
    cases = [
        explain_json(
            contract,
            case,
            as_of,
            known_at,
            explained[case],
            explained[case].weeks,
            {p: refs[p] for p in because[case] if p in refs},
        )
        for case in tracked
    ]

    say("claims")
    wanted_payers = None if scope == "contract" else [payer]
    names = None
    if wanted_payers is not None:
        # Only the payer's own claims are reconciled (and so read): no other's is in the pack.
        held = claim_queries.claims_at(engine, contract, known)
        names = [c.claim for c in on_ledger(held.values(), as_of) if c.payer in wanted_payers]
    claims = [
        reconcile_json(r, known_at)
        for r in claim_queries.reconcile_many(engine, contract, as_of, known, names)
    ]
    statements = [
        statement_json(s, known_at)
        for s in claim_queries.statements(engine, contract, as_of, known, wanted_payers)
    ]

    diff = None
    moves: dict[int, list[str]] = {}
    if since is not None:
        say("changes")
        first, second = KnownAt.on(since), known
        found_diff, moved = diffs.diff_and_moves(engine, contract, as_of, first, second)
        data = diff_json(found_diff, first, second, since, known_at, moved)
        diff = _scoped_diff(data, scope, payer)
        in_pack = {c["claim"] for c in claims}
        moves = {
            i: [n for n in change["claims"] if n in in_pack]
            for i, change in enumerate(diff["changes"])
        }

    say("returns")
    trail = list(ledger.trail(known_at=known, contract=contract))
    borough_of = {
        e.event["case"]: e.event["borough"] for e in trail if e.type == "ReferralReceived"
    }
    care: dict[tuple[datetime, str], int] = {}
    for e in trail:
        if e.type in CARE_TYPES:
            key = (e.recorded_on, borough_of.get(e.case or "", ""))
            care[key] = care.get(key, 0) + 1
    returns_903 = [
        _receipt(e, care)
        for e in trail
        if e.type == "CareDataReceived"
        and date.fromisoformat(e.event["effective"]) <= as_of
        and mine(e.event["borough"])
    ]
    returns = finances = drawn = None
    if scope == "contract":
        drawn = (
            money.returns_at(engine, contract, as_of, known),
            money.finances_at(engine, contract, as_of, known),
        )
        returns = finance.returns_json(drawn[0], known_at)
        finances = finance.finances_json(drawn[1], known_at)

    say("verify")
    report = verification.verify(ledger)
    verified = report.as_json()
    contents = Contents(
        contract=contract,
        as_of=as_of,
        known_at=known_at,
        since=since,
        payer=payer,
        scope=scope,
        top_up_funder=funder,
        head=(verified["head"]["position"], verified["head"]["hash"]),
        verify=verified,
        liability=liability,
        cases=cases,
        claims=claims,
        statements=statements,
        diff=diff,
        moves=moves,
        returns_903=returns_903,
        returns=returns,
        finances=finances,
        owed_series=series,
        drawn=drawn,
    )
    contents.events = _events_behind(contents, trail, scope, payer, borough_of)
    return contents


def _scoped_liability(whole: dict[str, Any], scope: str, payer: str | None) -> dict[str, Any]:
    """A borough sees its own row, payer and cases; the contract's totals are everyone's, so a
    borough's pack leaves them out (they would tell it the other boroughs' sum)."""
    if scope != "borough":
        return whole
    scoped = dict(whole)
    scoped.pop("totals", None)
    scoped["boroughs"] = [b for b in whole["boroughs"] if b["borough"] == payer]
    scoped["payers"] = [p for p in whole["payers"] if p["payer"] == payer]
    scoped["cases"] = [c for c in whole["cases"] if c["borough"] == payer]
    return scoped


def _scoped_diff(diff: dict[str, Any], scope: str, payer: str | None) -> dict[str, Any]:
    if scope != "borough":
        return diff
    scoped = dict(diff)
    scoped["changes"] = [c for c in diff["changes"] if c["borough"] == payer]
    named = {p for c in scoped["changes"] for p in c["because"]}
    scoped["events"] = {p: r for p, r in diff["events"].items() if p in named}
    scoped["by_payer"] = {p: v for p, v in diff["by_payer"].items() if p == payer}
    for change in scoped["changes"]:
        change["payers"] = [p for p in change["payers"] if p == payer]
    scoped["payers_moved"] = [p for p in diff["payers_moved"] if p == payer]
    scoped["claims_moved"] = [c for c in diff["claims_moved"] if c.get("payer") == payer]
    for key in ("total_change", "before", "after"):
        scoped.pop(key, None)
    return scoped


def _receipt(entry: TrailEntry, care: dict[tuple[datetime, str], int]) -> dict[str, Any]:
    """One SSDA903 return as the ledger keeps it. The rows read and discarded are not kept (a
    discarded row is never stored, SPEC §6); the care events of the borough's cases recorded
    the day it was received are counted (CARE: (recorded_on, borough) -> events)."""
    e = entry.event
    received = entry.recorded_on
    recorded = care.get((received, e["borough"]), 0)
    return {
        "position": entry.position,
        "borough": e["borough"],
        "covers_until": e["covers_until"],
        "received_on": received.date().isoformat(),
        "key": e.get("key"),
        "source": e.get("source"),
        "care_events_recorded": recorded,
    }


def _events_behind(
    c: Contents,
    trail: list[TrailEntry],
    scope: str,
    payer: str | None,
    borough_of: dict[str, str],
) -> dict[int, dict[str, Any]]:
    """The events the pack's figures name, each with its stored fields. In a borough's pack a
    contract-level event shows only its type, key and dates (its body may name the others)."""
    named: set[int] = set()
    for case in c.cases:
        named |= {int(p[1:]) for p in case["events"]}
        for part in ("weeks", "episodes"):
            named |= {int(p[1:]) for x in case[part] for p in x["because"]}
    for claim in c.claims:
        named |= {int(p[1:]) for p in claim.get("events", {})}
        named |= {int(p[1:]) for line in claim["lines"] for p in line.get("because", [])}
    if c.diff is not None:
        named |= {int(p[1:]) for p in c.diff["events"]}
    if c.returns is not None:
        named |= {int(p[1:]) for f in c.returns.get("flows", []) for p in f.get("because", [])}
    named |= {r["position"] for r in c.returns_903}
    out: dict[int, dict[str, Any]] = {}
    for entry in trail:
        if entry.position not in named:
            continue
        e = entry.event
        whole = (
            scope != "borough"
            or (entry.case is not None and borough_of.get(entry.case) == payer)
            or e.get("borough") == payer
        )
        out[entry.position] = {
            "position": entry.position,
            "type": e["type"],
            "key": e.get("key") if whole else None,
            "case": entry.case,
            "effective": e["effective"],
            "recorded_on": entry.recorded_on.isoformat(),
            "appended_at": entry.appended_at.isoformat(),
            "source": e.get("source") if whole else None,
            "fields": e if whole else None,
        }
    return out
