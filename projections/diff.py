"""SPEC §10 `diff`: every case and week whose status or amount differs between two states of
knowledge, and the events recorded between them that did it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import chain
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Engine

from soc_ledger.domain.claims.claims import Windows, on_ledger
from soc_ledger.domain.claims.moved import ClaimMoved, ShareChange, claims_moved, covering
from soc_ledger.domain.knowledge import Fact, KnownAt
from soc_ledger.domain.outcomes.assessment import Statuses, priced
from soc_ledger.domain.outcomes.facts import CaseFacts, cases_from_facts
from soc_ledger.domain.outcomes.liability import Liability, LiabilityStream, liability
from soc_ledger.domain.outcomes.prices import ZERO
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.domain.outcomes.tracking import LIFECYCLE
from soc_ledger.domain.outcomes.weeks import Week, week_amounts
from soc_ledger.projections.outcome_facts import knowledge, known_case_facts
from soc_ledger.projections.queries import (
    EventRef,
    event_refs,
    liability_stream,
    recorded_between,
    refs_by_identity,
)

T = TypeVar("T")


class Side(NamedTuple):
    """What a diff keeps of a week on one side: its status, each payer's share and what the
    caps took (a wide diff holds millions of changes: a `Week` each side would be gigabytes,
    and equal sides are one object, `Shared`)."""

    status: str
    borough_amount: Decimal
    top_up_amount: Decimal
    capped: Decimal

    @property
    def owed(self) -> Decimal:
        return self.borough_amount + self.top_up_amount


class Shared:
    """Each distinct side, date and tuple of one diff held once: a wide diff's millions of
    changes share far fewer of each."""

    def __init__(self) -> None:
        self._held: dict[Any, Any] = {}

    def side(self, week: Week | None) -> Side | None:
        if week is None:
            return None
        return self.one(Side(week.status, week.borough_amount, week.top_up_amount, week.capped))

    def one(self, value: T) -> T:
        return self._held.setdefault(value, value)


class WeekChange(NamedTuple):
    """A week whose status or amount differs between the two readings. A tuple whose first
    items are the order changes are listed in (the week's last day, case, week; unique), so
    that millions of them sort as they are, with no key made for each."""

    end: date  # the week's last day
    case: str
    week: int
    borough: str
    start: date
    before: Side | None
    after: Side | None
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


@dataclass(frozen=True, slots=True)
class Moves:
    """What a diff's changes move: the claims (`claims_moved`), and for each change (in the
    order of the diff's changes) the payers whose share it changed and the claims that ask
    for that share."""

    claims: list[ClaimMoved]
    payers: list[tuple[str, ...]]
    claims_of: list[tuple[str, ...]]


def diff_and_moves(
    engine: Engine, contract: str, as_of: date, first: KnownAt, second: KnownAt
) -> tuple[Diff, Moves]:
    """`diff`, and the claims and payers its changes move."""
    d = diff(engine, contract, as_of, first, second)
    return d, moves(engine, d, first, second)


def moves(engine: Engine, d: Diff, first: KnownAt, second: KnownAt) -> Moves:
    """The claims and payers DIFF's changes move: of the claims on the ledger at its as_of
    as known at the later reading, those made by the earlier one (domain/claims/moved.py)."""
    from soc_ledger.projections.claims import claims_at

    earlier, later = _in_order(first, second)
    ledger = on_ledger(claims_at(engine, d.contract, later).values(), d.as_of)
    refs = event_refs(engine, [c.position for c in ledger])
    made = {
        c.claim
        for c in ledger
        if earlier.knows(datetime.fromisoformat(refs[c.position].recorded_on))
    }
    windows = {payer: Windows.of(ledger, payer) for payer in {c.payer for c in ledger}}
    funder = d.after.top_up_funder or d.before.top_up_funder
    payers: list[tuple[str, ...]] = []
    claims_of: list[tuple[str, ...]] = []
    shared = Shared()

    def shares() -> Iterator[ShareChange]:
        # Made one at a time, as `claims_moved` takes them (never all at once: two a change).
        for c in d.changes:
            paying: list[str] = []
            asking: list[str] = []
            for payer, share in ((c.borough, _borough_share), (funder, _top_up_share)):
                amount = share(c.after) - share(c.before)
                if payer is None or amount == 0:
                    continue
                change = ShareChange(c.case, c.end, payer, amount)
                paying.append(payer)
                claim = covering(change, windows[payer]) if payer in windows else None
                if claim is not None and claim.claim in made:
                    asking.append(claim.claim)
                yield change
            payers.append(shared.one(tuple(paying)))
            claims_of.append(shared.one(tuple(asking)))

    return Moves(claims_moved(shares(), ledger, made), payers, claims_of)


def _borough_share(side: Side | None) -> Decimal:
    return side.borough_amount if side is not None else ZERO


def _top_up_share(side: Side | None) -> Decimal:
    return side.top_up_amount if side is not None else ZERO


def _key(week: Week) -> tuple[str, int, date]:
    return (week.case, week.index, week.end)


def diff(engine: Engine, contract: str, as_of: date, first: KnownAt, second: KnownAt) -> Diff:
    """Every case and week whose status or amount differs between two states of knowledge."""
    # Both sides week by week from the facts: the weeks read model keeps no weeks list. Case
    # by case when no cap may bind on either side (a week then depends on its own case only);
    # else every week of both sides at once, as the caps take them in order across cases.
    # With the case versions in step and no cap able to bind on either side, both sides'
    # totals are two version reads and only the cases with a new version are assessed.
    stored = _stored_diff(engine, contract, as_of, first, second)
    if stored is not None:
        return stored
    streamed = _streamed_diff(engine, contract, as_of, first, second)
    if streamed is not None:
        return streamed
    return _full_diff(engine, contract, as_of, first, second)


def _full_diff(engine: Engine, contract: str, as_of: date, first: KnownAt, second: KnownAt) -> Diff:
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
    shared = Shared()
    found = [
        _found(shared, key, old.get(key), new.get(key), borough.get(key[0], ""))
        for key in sorted(set(old) | set(new), key=_change_order)
        if not _unchanged(old.get(key), new.get(key))
    ]
    changes = _explained(found, news, by_ref, shared)
    refs = event_refs(engine, (p for c in changes for p in c.because))
    return Diff(contract, as_of, before, after, changes, refs)


def _stored_diff(
    engine: Engine, contract: str, as_of: date, first: KnownAt, second: KnownAt
) -> Diff | None:
    """`diff` with both sides' totals read from the case versions (`versions.liability_at`)
    and the weeks compared only for the cases whose version differs between the two times
    (`versions.changed_cases`): a case with one version at both reads the same at both. None
    when the versions are behind the facts or a cap may bind on either side."""
    from soc_ledger.projections import versions

    if not versions.in_step(engine):
        return None
    sides = (
        liability_stream(engine, contract, as_of, first),
        liability_stream(engine, contract, as_of, second),
    )
    results = [
        versions.liability_at(engine, contract, as_of, k, side.timeline)
        for k, side in zip((first, second), sides, strict=True)
    ]
    before, after = results
    if before is None or after is None:
        return None
    changed = versions.changed_cases(engine, contract, first, second)
    compared = _compared(engine, contract, first, second, sides, changed)
    if compared is None:  # cannot happen when neither side's caps bind: the full way then
        return None
    changes, refs = compared
    return Diff(contract, as_of, before, after, changes, refs)


def _streamed_diff(
    engine: Engine, contract: str, as_of: date, first: KnownAt, second: KnownAt
) -> Diff | None:
    """`diff` from one pass over the cases known at either time, in case order: each case's
    weeks on both sides compared, then dropped, keeping only the changes. None as soon as a
    cap may bind on either side."""
    sides = (
        liability_stream(engine, contract, as_of, first),
        liability_stream(engine, contract, as_of, second),
    )
    compared = _compared(engine, contract, first, second, sides, None)
    if compared is None:
        return None
    changes, refs = compared
    return Diff(contract, as_of, sides[0].result(), sides[1].result(), changes, refs)


def _compared(
    engine: Engine,
    contract: str,
    first: KnownAt,
    second: KnownAt,
    sides: tuple[LiabilityStream, LiabilityStream],
    cases: set[str] | None,
) -> tuple[list[WeekChange], dict[int, EventRef]] | None:
    """The changes of the cases known at either time (or only `cases`), fed to both sides'
    streams, with the events they name; None as soon as a cap may bind on either side."""
    news = recorded_between(engine, contract, *_in_order(first, second))
    # `_full_diff` resolves every position deciding a week to find the events the news
    # correct or retract among them. Only those targets are ever looked up: resolve them (a
    # few), and note which of their positions decide some week as the weeks go by.
    targets = refs_by_identity(
        engine, {(e.stream, e.target_version) for e in news if e.target_version is not None}
    )
    wanted = {ref.position for ref in targets.values()}
    deciding: set[int] = set()
    found: list[WeekChange] = []
    shared = Shared()
    # With the totals read from the case versions (`cases` given), a case's weeks are priced
    # only where its two readings differ (`_priced_changes`), so which positions decide some
    # week is not known. `_explained` asks it only of a lifecycle event corrected by the news
    # (what decides any week of a case moves all of them): such cases are priced whole below.
    # A correction of any other event only matters to the weeks that event decides, which
    # then name it themselves: every such target may be kept.
    whole = {ref.case for ref in targets.values() if ref.type in LIFECYCLE}
    if cases is not None:
        deciding = {ref.position for ref in targets.values() if ref.type not in LIFECYCLE}
    with engine.connect() as conn:
        for case_id, readings in known_case_facts(conn, contract, (first, second), cases):
            if cases is not None and case_id not in whole:
                found.extend(_priced_changes(shared, contract, sides, readings))
                continue
            assessed = _each_side(contract, sides, readings, LiabilityStream.add)
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
                _found(shared, key, old.get(key), new.get(key), tracked.case.borough)
                for key in set(old) | set(new)
                if not _unchanged(old.get(key), new.get(key))
            )
    found.sort()  # by their first items, `_change_order` (unique): no key made per change
    by_ref = {identity: ref for identity, ref in targets.items() if ref.position in deciding}
    changes = _explained(found, news, by_ref, shared)
    return changes, event_refs(engine, (p for c in changes for p in c.because))


def _priced_changes(
    shared: Shared,
    contract: str,
    sides: tuple[LiabilityStream, LiabilityStream],
    readings: list[list[Fact]],
) -> Iterator[WeekChange]:
    """The changed weeks of one case between its two readings, as `_compared` finds them from
    every week of both, with only those weeks priced: the others are compared by status and
    amount owed (before caps: none can bind), not made into `Week`s."""
    statuses = _each_side(contract, sides, readings, LiabilityStream.statuses)
    before, after = statuses
    tracked = after or before
    if tracked is None:
        return
    pairs = zip(statuses, sides, strict=True)
    owed = [_owed_by_week(s, side.timeline) if s else {} for s, side in pairs]
    old, new = owed
    changed = [
        key
        for key in old.keys() | new.keys()
        if key not in old or key not in new or old[key][:2] != new[key][:2]
    ]
    if not changed:
        return
    weeks = [
        {
            (w.index, w.end.toordinal()): w
            for w in priced(s, side.timeline, side.coverage, (by[k][2] for k in changed if k in by))
        }
        if s
        else {}
        for s, side, by in zip(statuses, sides, owed, strict=True)
    ]
    borough = tracked.case.borough
    for key in changed:
        a, b = weeks[0].get(key), weeks[1].get(key)
        w = b or a
        assert w is not None
        yield _found(shared, (w.case, w.index, w.end), a, b, borough)


def _each_side(
    contract: str,
    sides: tuple[LiabilityStream, LiabilityStream],
    readings: list[list[Fact]],
    take: Callable[[LiabilityStream, CaseFacts], T | None],
) -> list[T | None]:
    """What `take` gives on each side for the case whose facts each reading holds (None for
    a reading with none)."""
    found: list[T | None] = []
    for side, facts in zip(sides, readings, strict=True):
        taken = None
        for facts_of_case in cases_from_facts(facts, contract).values():
            taken = take(side, facts_of_case)
        found.append(taken)
    return found


def _owed_by_week(found: Statuses, timeline: TermsTimeline) -> dict[tuple[int, int], tuple]:
    """Each week of a case by (block, last day): its status, what it owes before caps (as
    `Week.owed`: the week's price, `week_amounts`), and its dated status."""
    index, segments = timeline.index, timeline.segments
    by: dict[tuple[int, int], tuple] = {}
    for dated in found.dated:
        status, end = dated[3], dated[2]
        borough, top_up, _, _ = week_amounts(segments[index(end)], status)
        by[(dated[0], end)] = (status, borough + top_up, dated)
    return by


def _change_order(key: tuple[str, int, date]) -> tuple[date, str, int]:
    """Changes are listed by the week's last day, then case, then week."""
    return (key[2], key[0], key[1])


def _unchanged(a: Week | None, b: Week | None) -> bool:
    return (
        a is not None
        and b is not None
        and (a.status, a.owed, a.capped) == (b.status, b.owed, b.capped)
    )


def _found(
    shared: Shared, key: tuple[str, int, date], a: Week | None, b: Week | None, borough: str
) -> WeekChange:
    """A changed week kept small (its sides, not its weeks: `Side`), `because` for now the
    positions that decided it on either side (`_explained` keeps the news among them)."""
    w = b or a
    assert w is not None
    decided = tuple(sorted(set((a.because if a else ()) + (b.because if b else ()))))
    return WeekChange(
        shared.one(key[2]),
        key[0],
        key[1],
        borough,
        shared.one(w.start),
        shared.side(a),
        shared.side(b),
        shared.one(decided),
    )


def _explained(
    found: list[WeekChange],
    news: list[EventRef],
    by_ref: dict[tuple[str, int], EventRef],
    shared: Shared,
) -> list[WeekChange]:
    """The changes `found` (`_found`, in `_change_order`), each with the events recorded
    between the two times (`news`) responsible for it in place of the positions that decided
    it. `by_ref` holds, by (stream, version), the events deciding some week on either side
    (at least those the news correct or retract). Changed in place: a wide diff holds its
    changes once, not twice."""
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
    for i, change in enumerate(found):
        decided = change.because
        responsible = {p for p in decided if p in news_by_position}
        responsible |= lifecycle_news.get(change.case, set())
        # Corrections and retractions of what decided the week are responsible too.
        for p in decided:
            responsible.update(correctors.get(p, ()))
        found[i] = change._replace(because=shared.one(tuple(sorted(responsible))))
    return found


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
