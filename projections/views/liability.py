"""Reports as plain data: the stable JSON shapes of SPEC §10 (money as 2-place strings)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from soc_ledger.domain.knowledge import EventRef, KnownAt
from soc_ledger.domain.outcomes.liability import Figures, Liability
from soc_ledger.domain.outcomes.weeks import Week
from soc_ledger.domain.values import money
from soc_ledger.projections.diff import Diff


def known_at_text(known_at: date | None) -> str | None:
    return known_at.isoformat() if known_at else None


def share(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.4f}"


def figures(f: Figures, own_share: str = "total") -> dict[str, Any]:
    """Weeks, money and days; `owed` is the payer's own bill for a borough, else the total."""
    owed = f.owed_borough if own_share == "borough" else f.owed
    provisional = f.provisional_borough if own_share == "borough" else f.provisional
    capped = f.capped_borough if own_share == "borough" else f.capped
    return {
        "weeks": f.weeks.as_dict(),
        "owed": money(owed),
        "provisional": money(provisional),
        "capped": money(capped),
        "owed_borough": money(f.owed_borough),
        "owed_top_up": money(f.owed_top_up),
        "owed_total": money(f.owed),
        "days_in_care": f.days_in_care,
        "days_out_of_care": f.days_out_of_care,
        "share_out_of_care": share(f.share_out_of_care),
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
        # A borough's `owed` is its own bill (the borough share of its cases); the top-up
        # funder's share of them is `owed_top_up`, both together `owed_total`.
        "boroughs": [
            {"borough": b.borough, "cases_tracked": b.cases_tracked, **figures(b, "borough")}
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
    }


def diff_json(d: Diff, first: KnownAt, second: KnownAt, k1: date, k2: date | None) -> dict:
    def side(w: Week | None) -> dict[str, Any] | None:
        if w is None:
            return None
        return {"status": w.status, "owed": money(w.owed), "capped": money(w.capped)}

    return {
        "contract": d.contract,
        "as_of": d.as_of.isoformat(),
        "known_at": k1.isoformat(),
        "vs": known_at_text(k2),
        "changes": [
            {
                "case": c.case,
                "borough": c.borough,
                "week": c.week,
                "start": c.start.isoformat(),
                "end": c.end.isoformat(),
                "before": side(c.before),
                "after": side(c.after),
                "owed_change": signed(c.owed_change),
                "because": [f"#{p}" for p in c.because],
            }
            for c in d.changes
        ],
        "events": {f"#{p}": ref_json(r) for p, r in sorted(d.refs.items())},
        "total_change": signed(d.total_change),
        "by_payer": {payer: signed(v) for payer, v in d.by_payer().items()},
        "before": {"owed": money(d.before.totals.owed), "weeks": d.before.totals.weeks.as_dict()},
        "after": {"owed": money(d.after.totals.owed), "weeks": d.after.totals.weeks.as_dict()},
    }


def signed(value: Decimal) -> str:
    return money(value) if value >= 0 else "-" + money(-value)
