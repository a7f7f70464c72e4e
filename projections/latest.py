"""The tracked cases of each contract for the latest knowledge, one row per case: the fast path.

Every tracked case is assessed once with every week elapsed and stored as ONE row of
`latest_case_weeks`, whatever its number of weeks. Any `as_of` is then a prefix of that row:
a week whose last day is after `as_of` is pending, and a week whose last day is on or before it
reads as it does once elapsed (status and price depend on the latest knowledge, not on
`as_of`); a case is tracked at `as_of` when it is tracked at all and has engaged
`min_engagement_days` by then; caps take weeks in the order of their last days, so the weeks
owed by `as_of` are capped exactly as they are at any later date.

The row (money in pence, as integers: exact in any database, never a binary float):

- the window: `first_day` (ordinal of the tracking start T) and `weeks`; fixed block k covers
  T+7k .. T+7k+6. `care` holds the window's days in care as intervals, for the day totals;
- `kinds` and `outline`: every week before caps as (last day - T, kind), a kind being
  (status, borough, top-up, provisional borough, provisional top-up); `verified`, the
  borough's care-data coverage clipped to the window (all its weeks' statuses depend on);
- `capped`: what the caps left owed of the outcome weeks they limited ({week: [borough,
  top-up, cap positions]}), NULL when none; `cap_gross`: the gross pence each cap covers in
  this case. Summed over the contract, it says whether a cap can bind at all;
- `counted` and `tally`, what `liability_at` reads: `counted` lists the kinds after caps
  (status and the six money columns of `Tally.money`); `tally` holds `weeks + 1` slices of
  `width` characters. Slice k counts, per counted kind, the weeks whose last day is before
  block k starts (the weeks owed once k blocks have elapsed) in `digits` decimal digits each;
  under `consecutive_runs` it then names the one 7-day unit, if any, whose last day falls on
  day d = 0..5 of block k (d, then its kind; d = 9: none): a unit lasts 7 days, so no other
  week ends there. The database hands over just slice k, k computed from `as_of` in SQL.

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
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    Column,
    Connection,
    Date,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    case,
    delete,
    func,
    literal,
    select,
    update,
)

from soc_ledger.domain.events import CASE_EVENTS
from soc_ledger.ledger import bulk, index
from soc_ledger.ledger.encryption import open_text, seal_text
from soc_ledger.ledger.index import events_index, metadata, tracking
from soc_ledger.projections import readmodel
from soc_ledger.projections.facts import (
    CaseFacts,
    cases_from_facts,
    contract_from_facts,
    coverage_from_facts,
    merge_refs,
)
from soc_ledger.projections.outcomes import Liability, Tally, summarise
from soc_ledger.projections.weeks import (
    Assessment,
    CapAllocator,
    TermsTimeline,
    Tracking,
    Week,
    _care_intervals,
    _Span,
    assess_case,
)

if TYPE_CHECKING:
    from soc_ledger.ledger.store import EventLog

NAME = "latest_case_weeks"
# Far enough that every window has elapsed, near enough that date arithmetic cannot overflow.
FOREVER = date(9000, 1, 1)
PENNY = Decimal("0.01")
TERMS_EVENTS = frozenset({"ContractAgreed", "VariationAgreed", "BoroughAcceded", "BoroughWithdrew"})
NO_UNIT = 9  # the day-of-block digit of a slice with no unit ending early in its block
# Tables of the per-week layout this model replaces: dropped when it is first built.
OLD_TABLES = ("latest_weeks", "latest_cases")

latest_case_weeks = Table(
    NAME,
    metadata,
    Column("contract", String(200), primary_key=True),
    Column("case_id", String(200), primary_key=True),
    Column("borough", String(200), nullable=False),
    Column("intervention", String(20), nullable=False),
    Column("first_meeting", Date, nullable=False),
    Column("tracked_from", Date, nullable=False),  # the first as_of at which it is tracked
    Column("tracking_start", Date, nullable=False),
    Column("first_day", Integer, nullable=False),  # ordinal of tracking_start
    Column("weeks", Integer, nullable=False),
    Column("week_rule", String(40), nullable=False),
    Column("care", Text, nullable=False),  # JSON [[first day, first day after], ...] ordinals
    Column("verified", Integer, nullable=False),  # coverage clipped to [first_day - 1, last]
    Column("kinds", Text, nullable=False),  # JSON [[status, 4 x pence], ...] before caps
    Column("outline", Text, nullable=False),  # JSON [last day - first_day, kind, ...]
    Column("capped", Text),  # JSON {week: [owed borough, owed top-up, [positions]]} or NULL
    Column("cap_gross", Text, nullable=False),  # JSON {cap: gross pence}, `seal_text`ed
    Column("counted", Text, nullable=False),  # JSON [[status, 6 x pence], ...] after caps
    Column("width", Integer, nullable=False),  # characters per slice of `tally`
    Column("tally", Text, nullable=False),  # weeks + 1 slices, see the module docstring
    Index("ix_latest_case_weeks_borough", "contract", "borough"),
)
COLUMNS = tuple(c.name for c in latest_case_weeks.columns)  # a row's values, in this order


def _pence(amount: Decimal) -> int:
    return int(amount / PENNY)


def _pounds(pence: int) -> Decimal:
    return Decimal(pence).scaleb(-2)


def _cache(pounds: dict[int, Decimal], pence: int) -> Decimal:
    amount = pounds[pence] = _pounds(pence)
    return amount


def _digits(weeks: int) -> int:
    """Digits per count in a slice: enough for any count of weeks or kinds of one case (a
    case has at most `weeks` fixed blocks and `weeks` 7-day units, so fewer than 2 x weeks + 1
    kinds)."""
    return len(str(2 * weeks + 1))


def _clip(day: int, first: int, weeks: int) -> int:
    """Coverage as far as the window's weeks can tell: clipped to [first - 1, its last day]."""
    return min(max(day, first - 1), first + 7 * weeks - 1)


def _elapsed_blocks(today: int, first: int, weeks: int) -> int:
    """Fixed blocks of the window whose last day is on or before `today`."""
    return min(weeks, max(0, (today - first + 1) // 7))


# --- one case's row ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    """One case's row; written from an assessment, re-capped from its stored columns."""

    values: dict[str, Any]  # the columns that do not change with the caps
    kinds: list[tuple]  # (status, borough, top-up, provisional borough, provisional top-up)
    outline: list[tuple[int, int]]  # (last day - first_day, kind) per week, by last day
    capped: dict[int, tuple[int, int, list[int]]] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        """Every column, with the weeks counted after the caps in `capped`."""
        weeks = self.values["weeks"]
        runs = self.values["week_rule"] == "consecutive_runs"
        outline = _json([x for pair in self.outline for x in pair])
        kinds = self.kinds
        capped = None
        if not self.capped and len(set(kinds)) == len(kinds):
            # Nothing capped: the counted kinds are the kinds (none merged, distinct as they
            # are) in the order of their first week, so the tally depends on the outline
            # alone. Cases share a few hundred outlines among tens of thousands: each tally
            # is built once.
            key = (weeks, runs, outline)
            found = _UNCAPPED.get(key)
            if found is None:
                order = list(dict.fromkeys(kind for _, kind in self.outline))
                rank = {kind: i for i, kind in enumerate(order)}
                per_week = [rank[kind] for _, kind in self.outline]
                found = (order, _tally(self.outline, per_week, len(order), weeks, runs))
                if len(_UNCAPPED) >= 4096:  # bounded: a contract of many odd windows
                    _UNCAPPED.clear()
                _UNCAPPED[key] = found
            order, tally = found
            counted = [(*kinds[kind], 0, 0) for kind in order]
        else:
            keys: dict[tuple, int] = {}
            per_week = []
            for i, (_, kind) in enumerate(self.outline):
                status, borough, top_up, prov_borough, prov_top_up = kinds[kind]
                owed = self.capped.get(i)
                if owed is None:
                    key7 = (status, borough, top_up, prov_borough, prov_top_up, 0, 0)
                else:
                    key7 = (status, owed[0], owed[1], prov_borough, prov_top_up,
                            borough - owed[0], top_up - owed[1])
                per_week.append(keys.setdefault(key7, len(keys)))
            counted = list(keys)
            tally = _tally(self.outline, per_week, len(counted), weeks, runs)
            if self.capped:
                capped = _json(
                    {str(i): [b, t, refs] for i, (b, t, refs) in self.capped.items()}
                )
        return {
            **self.values,
            "kinds": _json(kinds),
            "outline": outline,
            "capped": capped,
            "counted": _json(counted),
            "width": len(tally) // (weeks + 1),
            "tally": tally,
        }

    def values_row(self) -> tuple:
        """Every column, in `COLUMNS` order (what `bulk.insert_rows` writes)."""
        columns = self.columns()
        return tuple(columns[name] for name in COLUMNS)


# (weeks, consecutive runs?, outline text) -> (kinds in order of first week, tally): see
# `_Row.columns`.
_UNCAPPED: dict[tuple[int, bool, str], tuple[list[int], str]] = {}


def _tally(
    outline: list[tuple[int, int]], per_week: list[int], kinds: int, weeks: int, runs: bool
) -> str:
    """The `tally` column (see the module docstring): `weeks + 1` slices of equal width, the
    weeks counted per counted kind (`per_week`, the counted kind of each week of `outline`)."""
    digits = _digits(weeks)
    counts = [0] * kinds
    zero = "0" * digits
    texts = [zero] * kinds  # `counts`, formatted (only when one changes)
    slices = []
    j, n = 0, len(outline)
    for k in range(weeks + 1):
        while j < n and outline[j][0] < 7 * k:
            kind = per_week[j]
            counts[kind] += 1
            texts[kind] = f"{counts[kind]:0{digits}d}"
            j += 1
        piece = "".join(texts)
        if runs:
            # Only a 7-day unit can end on days 0..5 of a block, and only one.
            if j < n and outline[j][0] <= 7 * k + 5:
                piece += f"{outline[j][0] - 7 * k}{per_week[j]:0{digits}d}"
                assert j + 1 == n or outline[j + 1][0] > 7 * k + 5, "two early ends"
            else:
                piece += f"{NO_UNIT}{zero}"
        slices.append(piece)
    return "".join(slices)


def _json(value: Any) -> str:
    """Compact JSON with sorted keys, as `json.dumps` writes it (ASCII only, `\\u` escapes):
    orjson writes the same text several times faster, except for characters past `~` (which
    it leaves raw) and integers beyond 64 bits, so those go the standard library's way and a
    row reads the same text whichever wrote it."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        if text.isascii() and b"\x7f" not in text:
            return text.decode()
    except (orjson.JSONEncodeError, TypeError):
        pass
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# A week's kind: (status, borough, top-up, provisional borough, provisional top-up).
_KIND = attrgetter(
    "status", "borough_amount", "top_up_amount", "provisional_borough", "provisional_top_up"
)


def _assessed_row(
    contract: str, a: Assessment, timeline: TermsTimeline, verified_to: int, caps: CapAllocator
) -> _Row:
    case = a.case
    assert case.first_meeting is not None and case.intervention is not None
    first = a.tracking.start.toordinal()
    weeks = a.tracking.weeks
    spans = [_Span.of(s) for s in case.spells]
    care = _care_intervals(spans, timeline, first, weeks, first + 7 * weeks - 1)
    engaged = timeline.at(case.first_meeting.toordinal()).terms.min_engagement_days
    # A hundred weeks a case, every case: comprehensions and C-level maps, not a loop body.
    kinds: dict[tuple, int] = {}  # (status, 4 x Decimal) -> kind: weeks share their prices
    per_week = [kinds.setdefault(key, len(kinds)) for key in map(_KIND, a.weeks)]
    outline = list(zip([w.end.toordinal() - first for w in a.weeks], per_week, strict=True))
    pence = [(k[0], *(_pence(m) for m in k[1:])) for k in kinds]
    cap_gross: dict[str, int] = {}
    outcome = [kind for key, kind in kinds.items() if key[0] == "outcome"]
    if caps.any and outcome:
        # The weeks come by last day, so each terms segment's are a slice of the outline,
        # cut where the segment starts; any last day in it stands for the segment, since the
        # caps covering a share depend on the segment only.
        cuts = [bisect_left(outline, (start - first,)) for start in timeline.starts]
        for segment, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, len(outline)], strict=True)):
            if lo == hi:
                continue
            found = Counter(map(itemgetter(1), outline[lo:hi]))
            day = timeline.starts[segment - 1] if segment else 0
            on_borough, on_top_up = caps.plan(day, case.borough)
            for kind in outcome:
                n = found.get(kind)
                if not n:  # a cap this case has no week under is not named in its row
                    continue
                for use in on_borough:
                    cap_gross[use.cap] = cap_gross.get(use.cap, 0) + n * pence[kind][1]
                for use in on_top_up:
                    cap_gross[use.cap] = cap_gross.get(use.cap, 0) + n * pence[kind][2]
    values = {
        "contract": contract,
        "case_id": case.case,
        "borough": case.borough,
        "intervention": case.intervention,
        "first_meeting": case.first_meeting,
        "tracked_from": date.fromordinal(case.first_meeting.toordinal() + engaged),
        "tracking_start": a.tracking.start,
        "first_day": first,
        "weeks": weeks,
        "week_rule": a.week_rule,
        "care": _json(care),
        "verified": _clip(verified_to, first, weeks),
        # Cap names are the contract's words: encrypted at rest like every payload column.
        "cap_gross": seal_text(_json(cap_gross)),
    }
    return _Row(values, pence, outline)


# --- following the log -------------------------------------------------------------------------


def catch_up(engine: Engine, log: EventLog) -> int:
    """Refresh the rows of every case touched since the tracked position."""
    metadata.create_all(engine, tables=[latest_case_weeks])
    readmodel.catch_up(engine, log)
    with engine.begin() as conn:
        position = index.claim_position(conn, NAME)
        touched: dict[str, _Touched] = {}
        if position == 0:
            _drop_old_layout(conn)
            # From the start every case of every contract is new: no need to read each event.
            head, handled = conn.execute(
                select(func.max(events_index.c.position), func.count())
            ).one()
            for contract in conn.execute(select(events_index.c.contract).distinct()).scalars():
                touched[contract] = _Touched(everything=True)
            position = head or 0
        else:
            new = _unindexed(conn, position)
            handled = len(new)
            for r in new:
                position = r.position
                _touch(touched.setdefault(r.contract, _Touched()), r)
        for contract, what in sorted(touched.items()):
            if what.anything:
                _refresh(conn, contract, what)
        conn.execute(update(tracking).where(tracking.c.name == NAME).values(position=position))
    return handled


def _drop_old_layout(conn: Connection) -> None:
    """A ledger built before this layout still holds a week per row: millions of rows read by
    nothing now."""
    for name in OLD_TABLES:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    conn.execute(delete(tracking).where(tracking.c.name == "latest_weeks"))


def _unindexed(conn: Connection, after: int) -> Sequence[Any]:
    """The indexed events after `after`, in log order, with only what `_touch` needs (a
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
class _Touched:
    everything: bool = False
    boroughs: set[str] = field(default_factory=set)
    cases: set[str] = field(default_factory=set)  # to assess again
    # case -> (type, day, episode) of its new care episode events: the case is assessed again
    # only if one can reach its window (`_episodes_matter`).
    episodes: dict[str, list[tuple[str, date, str]]] = field(default_factory=dict)

    @property
    def anything(self) -> bool:
        return self.everything or bool(self.boroughs) or bool(self.cases) or bool(self.episodes)


def _touch(what: _Touched, r) -> None:
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


def _episodes_matter(conn: Connection, contract: str, what: _Touched) -> set[str]:
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


def _refresh(conn: Connection, contract: str, what: _Touched) -> None:
    from soc_ledger.projections.queries import latest_facts

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
        assessed = assess_case(facts, timeline, coverage, FOREVER)
        if assessed is None:
            continue
        covered = coverage.get(assessed.case.borough)
        verified_to = covered.toordinal() if covered is not None else 0
        batch.append(_assessed_row(contract, assessed, timeline, verified_to, caps).values_row())
        if len(batch) == BATCH:
            bulk.insert_rows(conn, latest_case_weeks, COLUMNS, batch)
            batch = []
    if batch:
        bulk.insert_rows(conn, latest_case_weeks, COLUMNS, batch)
    if caps.any:
        _recap(conn, contract, timeline)


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
    from soc_ledger.projections.queries import latest_case_facts

    for _, facts in latest_case_facts(conn, contract, wanted):
        yield from cases_from_facts(facts, contract).values()


def _these_cases(conn: Connection, contract: str, ids: Sequence[str]) -> Iterator[CaseFacts]:
    """The cases `ids`, read by stream a few thousand at a time."""
    from soc_ledger.projections.queries import latest_facts

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


# --- caps ----------------------------------------------------------------------------------------


def _recap(conn: Connection, contract: str, timeline: TermsTimeline) -> None:
    """Allocate the caps over every stored outcome week of the contract, in cap order, and
    rewrite the rows whose capped amounts changed.

    Skipped when no cap can bind — every cap's covered gross within its smallest amount in
    force, so every week is owed in full — and no stored row is capped: the common case, a
    handful of JSON sums instead of a pass over every week of the contract.
    """
    t = latest_case_weeks.c
    caps = CapAllocator(timeline)
    gross: dict[str, int] = {}
    parsed: dict[str, dict[str, int]] = {}
    for text in conn.execute(select(t.cap_gross).where(t.contract == contract)).scalars():
        found = parsed.get(text)
        if found is None:
            found = parsed[text] = json.loads(open_text(text))
        for cap_id, pence in found.items():
            gross[cap_id] = gross.get(cap_id, 0) + pence
    least = caps.least_limits()
    binds = any(
        limit is not None and _pounds(gross.get(cap_id, 0)) > limit
        for cap_id, limit in least.items()
    )
    if not binds:
        still_capped = conn.execute(
            select(func.count()).where(t.contract == contract, t.capped.is_not(None))
        ).scalar()
        if not still_capped:
            return
    stored = conn.execute(
        select(
            t.case_id, t.borough, t.first_day, t.weeks, t.week_rule, t.kinds, t.outline, t.capped
        ).where(t.contract == contract)
    ).all()
    rows: list[_Row] = []
    order: list[tuple[int, str, int, int]] = []  # (last day, case, row, week)
    for r in stored:
        kinds = [tuple(k) for k in json.loads(r.kinds)]
        flat = json.loads(r.outline)
        outline = list(zip(flat[0::2], flat[1::2], strict=True))
        capped = {
            int(i): (b, t_, refs) for i, (b, t_, refs) in json.loads(r.capped or "{}").items()
        }
        values = {"case_id": r.case_id, "weeks": r.weeks, "week_rule": r.week_rule}
        row = _Row(values, kinds, outline, capped)
        for i, (offset, kind) in enumerate(outline):
            if kinds[kind][0] == "outcome":
                order.append((r.first_day + offset, r.case_id, len(rows), i))
        rows.append(row)
    boroughs = {r.case_id: r.borough for r in stored}
    now: list[dict[int, tuple[int, int, list[int]]]] = [{} for _ in rows]
    order.sort()
    for end, case_id, n, i in order:
        row = rows[n]
        _, borough_pence, top_up_pence, _, _ = row.kinds[row.outline[i][1]]
        taken = caps.take(end, boroughs[case_id], _pounds(borough_pence), _pounds(top_up_pence))
        if taken is None:
            continue
        owed_borough, owed_top_up, refs = _pence(taken[0]), _pence(taken[1]), taken[2]
        if (owed_borough, owed_top_up) != (borough_pence, top_up_pence):
            now[n][i] = (owed_borough, owed_top_up, list(merge_refs(refs)))
    changes = []
    for row, capped in zip(rows, now, strict=True):
        if capped != row.capped:
            row.capped = capped
            columns = row.columns()
            changes.append(
                {
                    "key": row.values["case_id"],
                    **{name: columns[name] for name in ("capped", "counted", "width", "tally")},
                }
            )
    if changes:
        conn.execute(
            update(latest_case_weeks)
            .where(t.contract == contract, t.case_id == bindparam("key"))
            .values(
                capped=bindparam("capped"),
                counted=bindparam("counted"),
                width=bindparam("width"),
                tally=bindparam("tally"),
            ),
            changes,
        )


def rebuild(engine: Engine, log: EventLog) -> int:
    metadata.create_all(engine, tables=[latest_case_weeks])
    with engine.begin() as conn:
        conn.execute(delete(latest_case_weeks))
        conn.execute(delete(tracking).where(tracking.c.name == NAME))
    return catch_up(engine, log)


# --- answering -------------------------------------------------------------------------------


def liability_at(engine: Engine, contract: str, as_of: date, timeline: TermsTimeline) -> Liability:
    """`outcomes.liability` for the latest knowledge, read one slice per case: same figures."""
    today = as_of.toordinal()
    t = latest_case_weeks.c
    day = literal(today, Integer)
    # Fixed blocks elapsed (`_elapsed_blocks`), in SQL both databases read alike: the
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
            .where(t.contract == contract, t.tracked_from <= as_of)
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
        elapsed = _elapsed_blocks(today, first, weeks)
        digits = _digits(weeks)
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
    from soc_ledger.projections.queries import QueryError, knowledge

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
        owed_borough, owed_top_up = _pounds(borough), _pounds(top_up)
        weeks[int(i)] = Week(
            w.case, w.index, w.start, w.end, w.status, w.variation,
            owed_borough, owed_top_up,
            w.borough_amount - owed_borough, w.top_up_amount - owed_top_up,
            w.provisional_borough, w.provisional_top_up,
            w.days_in_care, w.days_out_of_care,
            merge_refs(w.because, refs),
        )
    return {(w.index, w.end): w for w in weeks}
