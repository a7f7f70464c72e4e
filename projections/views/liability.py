"""The liability, explain and diff reports: their stable JSON shapes of SPEC §10 (money as
2-place strings), and the CSV rows and tables made from those shapes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from soc_ledger.domain.knowledge import EventRef, KnownAt
from soc_ledger.domain.outcomes.liability import Figures, Liability
from soc_ledger.domain.outcomes.weeks import Week
from soc_ledger.domain.values import money
from soc_ledger.projections.views.render import (
    TOTAL,
    Made,
    for_people,
    write_for_machines,
    write_line,
    write_table,
)

if TYPE_CHECKING:  # named for type hints only: `explain` need not load the diff module
    from soc_ledger.projections.diff import Diff, Moves, Side, WeekChange
    from soc_ledger.projections.queries import CaseExplained


def known_at_text(known_at: date | None) -> str | None:
    return known_at.isoformat() if known_at else None


def share(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.4f}"


def figures(f: Figures) -> dict[str, Any]:
    """Weeks, money and days. `owed`, `provisional` and `capped` are the totals on every row
    (contract, borough, case), as in the tables and CSVs; each share has its own name
    (`…_by_borough`, `…_by_top_up`). A borough's own bill is `owed_by_borough`: until issue 14
    a borough row's `owed` was that share, one name with two meanings."""
    owed, provisional, capped = money(f.owed), money(f.provisional), money(f.capped)
    borough, top_up = money(f.owed_borough), money(f.owed_top_up)
    return {
        "weeks": f.weeks.as_dict(),
        "owed": owed,
        "provisional": provisional,
        "capped": capped,
        "owed_borough": borough,
        "owed_top_up": top_up,
        "owed_total": owed,
        "days_in_care": f.days_in_care,
        "days_out_of_care": f.days_out_of_care,
        "share_out_of_care": share(f.share_out_of_care),
        # Beyond SPEC's shape (nothing renamed): one name, one meaning, on every row.
        "owed_by_borough": borough,
        "owed_by_top_up": top_up,
        "provisional_total": provisional,
        "provisional_by_borough": money(f.provisional_borough),
        "provisional_by_top_up": money(f.provisional_top_up),
        "capped_total": capped,
        "capped_by_borough": money(f.capped_borough),
        "capped_by_top_up": money(f.capped_top_up),
    }


def liability_json(result: Liability, known_at: date | None, week_rule: str) -> dict[str, Any]:
    t = result.totals
    return {
        "contract": result.contract,
        "as_of": result.as_of.isoformat(),
        "known_at": known_at_text(known_at),
        "week_rule": week_rule,
        "totals": {
            "cases_tracked": t.cases_tracked,
            **figures(t),
            "by_payer": {p.payer: money(p.owed) for p in result.payers},
        },
        "boroughs": [
            {"borough": b.borough, "cases_tracked": b.cases_tracked, **figures(b)}
            for b in result.boroughs
        ],
        "payers": [
            {
                "payer": p.payer,
                "owed": money(p.owed),
                "provisional": money(p.provisional),
                "capped": money(p.capped),
            }
            for p in result.payers
        ],
        "cases": [
            {
                "case": c.case,
                "borough": c.borough,
                "intervention": c.intervention,
                "first_meeting": c.first_meeting.isoformat(),
                "tracking_start": c.tracking_start.isoformat(),
                "tracking_end": c.tracking_end.isoformat(),
                "week_rule": c.week_rule,
                **figures(c),
            }
            for c in result.cases
        ],
    }


def ref_json(ref: EventRef) -> dict[str, Any]:
    return {
        "event": ref.ref,
        "type": ref.type,
        "key": ref.key,
        "effective": ref.effective.isoformat(),
        "recorded_on": ref.recorded_on,
    }


def week_json(week: Week) -> dict[str, Any]:
    return {
        "week": week.index,
        "start": week.start.isoformat(),
        "end": week.end.isoformat(),
        "status": week.status,
        "owed": {"borough": money(week.borough_amount), "top_up": money(week.top_up_amount)},
        "provisional": {
            "borough": money(week.provisional_borough),
            "top_up": money(week.provisional_top_up),
        },
        "capped": money(week.capped),
        "days_in_care": week.days_in_care,
        "terms": week.variation,
        "because": [f"#{p}" for p in week.because],
        # Beyond SPEC's shape: the shares flat, and their sum.
        "owed_by_borough": money(week.borough_amount),
        "owed_by_top_up": money(week.top_up_amount),
        "owed_total": money(week.borough_amount + week.top_up_amount),
    }


def diff_json(
    d: Diff, first: KnownAt, second: KnownAt, k1: date, k2: date | None, moved: Moves
) -> dict:
    def side(w: Side | None) -> dict[str, Any] | None:
        if w is None:
            return None
        return {"status": w.status, "owed": money(w.owed), "capped": money(w.capped)}

    def change(i: int, c: WeekChange) -> dict[str, Any]:
        return {
            "case": c.case,
            "borough": c.borough,
            "week": c.week,
            "start": c.start.isoformat(),
            "end": c.end.isoformat(),
            "before": side(c.before),
            "after": side(c.after),
            "owed_change": signed(c.owed_change),
            "because": [f"#{p}" for p in c.because],
            # Beyond SPEC's shape: whose share it changed, and the claims asking for it.
            "payers": list(moved.payers[i]),
            "claims": list(moved.claims_of[i]),
        }

    return {
        "contract": d.contract,
        "as_of": d.as_of.isoformat(),
        "known_at": k1.isoformat(),
        "vs": known_at_text(k2),
        # Each change's object made as it is written: a wide diff has millions.
        "changes": Made(d.changes, change),
        "events": {f"#{p}": ref_json(r) for p, r in sorted(d.refs.items())},
        "total_change": signed(d.total_change),
        "by_payer": {payer: signed(v) for payer, v in d.by_payer().items()},
        "before": {"owed": money(d.before.totals.owed), "weeks": d.before.totals.weeks.as_dict()},
        "after": {"owed": money(d.after.totals.owed), "weeks": d.after.totals.weeks.as_dict()},
        # The claims whose due the changes move (due then and due now differ by `change`).
        "claims_moved": [
            {
                "claim": m.claim,
                "payer": m.payer,
                "period_end": m.period_end.isoformat(),
                "change": signed(m.change),
                "lines": [{"case": case, "change": signed(v)} for case, v in m.lines],
            }
            for m in moved.claims
        ],
        "payers_moved": sorted({p for ps in set(moved.payers) for p in ps}),
    }


def signed(value: Decimal) -> str:
    return money(value) if value >= 0 else "-" + money(-value)


def explain_json(
    contract: str,
    case: str,
    as_of: date,
    known_at: date | None,
    found: CaseExplained,
    weeks: list[Week],
    refs: dict[int, EventRef],
) -> dict[str, Any]:
    """CASE's weeks (all, or the one asked for) with the events that decided them."""
    facts = found.facts
    window = found.assessment.tracking if found.assessment else None
    return {
        "contract": contract,
        "case": case,
        "as_of": as_of.isoformat(),
        "known_at": known_at_text(known_at),
        "borough": facts.borough,
        "intervention": facts.intervention,
        "first_meeting": facts.first_meeting.isoformat() if facts.first_meeting else None,
        "ended": facts.ended.isoformat() if facts.ended else None,
        "engagement": found.engagement,
        "tracking_start": window.start.isoformat() if window else None,
        "tracking_end": window.end.isoformat() if window else None,
        "episodes": [
            {
                "episode": s.episode,
                "start": s.start.isoformat(),
                "end": s.end.isoformat() if s.end else None,
                "legal_status": s.legal_status,
                "placement": s.placement,
                "because": [f"#{p}" for p in s.refs],
            }
            for s in facts.spells
        ],
        "weeks": [week_json(w) for w in weeks],
        "events": {f"#{p}": ref_json(r) for p, r in sorted(refs.items())},
    }


# --- for CSV and people ------------------------------------------------------------------------

WEEK_COUNTS = ["outcome", "in_care", "unverified", "pending"]
# `owed`, `provisional` and `capped` are the totals on every row of every table and CSV; the
# shares are named (`owed_by_borough`, `owed_by_top_up`, ...). A payer's row is what it owes.
SHARES = ["owed_by_borough", "owed_by_top_up", "owed", "provisional", "capped"]
# A borough's table shows its own bill too (the figures its row has always shown).
BOROUGH_SHARES = [
    "owed_by_borough",
    "owed_by_top_up",
    "owed",
    "provisional_by_borough",
    "provisional",
    "capped_by_borough",
    "capped",
]
# CSV: every share of every figure, for a spreadsheet to add up.
CSV_SHARES = [
    "owed_by_borough",
    "owed_by_top_up",
    "owed",
    "provisional_by_borough",
    "provisional_by_top_up",
    "provisional",
    "capped_by_borough",
    "capped_by_top_up",
    "capped",
]
CASE_COLUMNS = [
    "case",
    "borough",
    "intervention",
    "first_meeting",
    "tracking_start",
    "tracking_end",
]
LIABILITY_COLUMNS = {
    "contract": ["cases_tracked", *WEEK_COUNTS, *SHARES, "share_out_of_care"],
    "borough": ["borough", "cases_tracked", *WEEK_COUNTS, *BOROUGH_SHARES, "share_out_of_care"],
    "case": [*CASE_COLUMNS, *WEEK_COUNTS, *SHARES],
    "payer": ["payer", "owed", "provisional", "capped"],
}
LIABILITY_CSV_COLUMNS = {
    "contract": ["cases_tracked", *WEEK_COUNTS, *CSV_SHARES, "share_out_of_care"],
    "borough": ["borough", "cases_tracked", *WEEK_COUNTS, *CSV_SHARES, "share_out_of_care"],
    "case": [*CASE_COLUMNS, *WEEK_COUNTS, *CSV_SHARES],
    "payer": LIABILITY_COLUMNS["payer"],
}
# Right-aligned in a table: money, counts of cases and weeks, the share out of care.
LIABILITY_RIGHT = ["cases_tracked", *WEEK_COUNTS, *CSV_SHARES, "share_out_of_care"]
LIABILITY_MONEY = {"owed_top_up", "owed_borough", "owed_total", *CSV_SHARES}
EXPLAIN_COLUMNS = [
    "week",
    "start",
    "end",
    "status",
    "days_in_care",
    "owed_by_borough",
    "owed_by_top_up",
    "owed",
    "capped",
    "terms",
    "because",
]
EXPLAIN_MONEY = ["owed_by_borough", "owed_by_top_up", "owed", "capped"]
DIFF_COLUMNS = [
    "case",
    "borough",
    "week",
    "end",
    "before",
    "after",
    "owed_change",
    "payers",
    "claims",
    "because",
]
CLAIMS_MOVED_COLUMNS = ["claim", "payer", "period_end", "lines", "change"]
EVENT_REF_COLUMNS = ["event", "type", "key", "effective", "recorded_on"]


def flat(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its week counts beside its money (one column each), and `owed`,
    `provisional` and `capped` the totals whatever the row (a borough's JSON row has them as
    its own share)."""
    out = dict(row)
    out.update(row.get("weeks", {}))
    if "owed_total" in row:
        out.update(
            owed=row["owed_total"],
            provisional=row["provisional_total"],
            capped=row["capped_total"],
        )
    return out


def readable(row: dict[str, Any]) -> dict[str, Any]:
    return for_people(row, LIABILITY_MONEY, ("share_out_of_care",))


def liability_rows(data: dict[str, Any], by: str) -> list[dict[str, Any]]:
    """The liability's rows `by` contract, borough, case or payer, flat; by borough, case or
    payer they end with a total row (the contract's totals, first column `total`)."""
    if by == "contract":
        return [flat(data["totals"])]
    total = {**flat(data["totals"]), LIABILITY_COLUMNS[by][0]: TOTAL}
    if by == "borough":
        return [*(flat(b) for b in data["boroughs"]), total]
    if by == "case":
        return [*(flat(c) for c in data["cases"]), total]
    return [*data["payers"], total]


def render_liability(data: dict[str, Any], by: str, fmt: str) -> None:
    """The liability as JSON, or its rows `by` contract, borough, case or payer."""
    columns = LIABILITY_COLUMNS[by]
    if write_for_machines(fmt, data, LIABILITY_CSV_COLUMNS[by], lambda: liability_rows(data, by)):
        return
    rows = [readable(r) for r in liability_rows(data, by)]
    known = data["known_at"] or "everything recorded"
    title = (
        f"{data['contract']}: outcome liability as of {data['as_of']}, known at {known} "
        f"({data['week_rule']})"
    )
    write_table(title, columns, rows, right=LIABILITY_RIGHT)
    if by == "contract":
        write_table(
            "owed by payer",
            LIABILITY_COLUMNS["payer"],
            [readable(r) for r in liability_rows(data, "payer")],
            right=LIABILITY_RIGHT,
        )


def explain_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """A case's weeks, one row each with each share of `owed` in its own column, then the
    case's total row (first column `total`)."""
    rows = [
        {
            **w,
            "owed_by_borough": w["owed"]["borough"],
            "owed_by_top_up": w["owed"]["top_up"],
            "owed": money(Decimal(w["owed"]["borough"]) + Decimal(w["owed"]["top_up"])),
            "because": " ".join(w["because"]),
        }
        for w in data["weeks"]
    ]
    total: dict[str, Any] = {"week": TOTAL, "days_in_care": sum(r["days_in_care"] for r in rows)}
    for name in EXPLAIN_MONEY:
        total[name] = money(sum((Decimal(r[name]) for r in rows), Decimal("0.00")))
    return [*rows, total]


def render_explain(data: dict[str, Any], fmt: str) -> None:
    """A case's weeks as JSON, CSV, or its story, weeks and events as tables."""
    if write_for_machines(fmt, data, EXPLAIN_COLUMNS, lambda: explain_rows(data)):
        return
    rows = explain_rows(data)
    window = (
        f"; tracking {data['tracking_start']} to {data['tracking_end']}"
        if data["tracking_start"]
        else ""
    )
    write_line(
        f"case {data['case']} ({data['borough']}, {data['intervention']}): first meeting "
        f"{data['first_meeting']}, intervention ended {data['ended']}; "
        f"{data['engagement']}{window}"
    )
    for e in data["episodes"]:
        write_line(
            f"  episode {e['episode']}: {e['start']} to {e['end'] or 'open'} "
            f"({e['legal_status']}, {e['placement']}) {' '.join(e['because'])}"
        )
    write_table(
        f"weeks as of {data['as_of']}",
        EXPLAIN_COLUMNS,
        [for_people(r, EXPLAIN_MONEY) for r in rows],
        right=["week", "days_in_care", *EXPLAIN_MONEY],
    )
    write_table("events", EVENT_REF_COLUMNS, list(data["events"].values()))


def diff_rows(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per changed week: its status before and after, the change, whose share and
    which claims it moves, the events; then the total row (first column `total`). Made as
    they are read."""
    for c in data["changes"]:
        yield {
            "case": c["case"],
            "borough": c["borough"],
            "week": c["week"],
            "end": c["end"],
            "before": (c["before"] or {}).get("status", "-"),
            "after": (c["after"] or {}).get("status", "-"),
            "owed_change": c["owed_change"],
            "payers": " ".join(c["payers"]),
            "claims": " ".join(c["claims"]),
            "because": " ".join(c["because"]),
        }
    yield {"case": TOTAL, "owed_change": data["total_change"]}


def claims_moved_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**m, "lines": " ".join(f"{x['case']} {x['change']}" for x in m["lines"])}
        for m in data["claims_moved"]
    ]


def render_diff(data: dict[str, Any], fmt: str) -> None:
    """The changes as JSON, or one row per changed week, its events, the claims moved and the
    totals."""
    if write_for_machines(fmt, data, DIFF_COLUMNS, lambda: diff_rows(data)):
        return
    rows = diff_rows(data)
    write_table(
        f"changes as of {data['as_of']}: known at {data['known_at']} vs "
        f"{data['vs'] or 'everything'}",
        DIFF_COLUMNS,
        rows,
        right=["week", "owed_change"],
    )
    write_table("events", EVENT_REF_COLUMNS, list(data["events"].values()))
    if data["claims_moved"]:
        write_table(
            "claims moved (their due then and due now differ by the change)",
            CLAIMS_MOVED_COLUMNS,
            claims_moved_rows(data),
            right=["change"],
        )
    write_line(
        f"owed {data['before']['owed']} -> {data['after']['owed']}: total change "
        f"{data['total_change']} ("
        + ", ".join(f"{p} {v}" for p, v in data["by_payer"].items())
        + ")"
    )
    claims = " ".join(m["claim"] for m in data["claims_moved"]) or "none"
    write_line(f"payers moved: {' '.join(data['payers_moved']) or 'none'}; claims moved: {claims}")
