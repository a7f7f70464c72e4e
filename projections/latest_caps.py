"""The caps over the latest read model's stored rows (SPEC §5 "Caps", allocated by
`domain.outcomes.caps.CapAllocator`): a case's row stores its weeks before caps, and what the
caps left owed of the weeks they limit (`capped`), rewritten here when the caps move."""

from __future__ import annotations

import json

from sqlalchemy import Connection, bindparam, func, select, update

from soc_ledger.domain.outcomes.caps import CapAllocator
from soc_ledger.domain.outcomes.facts import merge_refs
from soc_ledger.domain.outcomes.terms import TermsTimeline
from soc_ledger.ledger.encryption import open_text
from soc_ledger.projections.latest_row import CaseRow, latest_case_weeks, to_pence, to_pounds


def recap(conn: Connection, contract: str, timeline: TermsTimeline) -> None:
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
        limit is not None and to_pounds(gross.get(cap_id, 0)) > limit
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
    rows: list[CaseRow] = []
    order: list[tuple[int, str, int, int]] = []  # (last day, case, row, week)
    for r in stored:
        kinds = [tuple(k) for k in json.loads(r.kinds)]
        flat = json.loads(r.outline)
        outline = list(zip(flat[0::2], flat[1::2], strict=True))
        capped = {
            int(i): (b, t_, refs) for i, (b, t_, refs) in json.loads(r.capped or "{}").items()
        }
        values = {"case_id": r.case_id, "weeks": r.weeks, "week_rule": r.week_rule}
        row = CaseRow(values, kinds, outline, capped)
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
        taken = caps.take(end, boroughs[case_id], to_pounds(borough_pence), to_pounds(top_up_pence))
        if taken is None:
            continue
        owed_borough, owed_top_up, refs = to_pence(taken[0]), to_pence(taken[1]), taken[2]
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
