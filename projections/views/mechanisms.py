"""The liability of a contract paying by mechanisms other than weeks out of care alone: its JSON
shape (money as 2-place strings, shares and percentages as strings) and its tables."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from soc_ledger.domain.mechanisms.account import Account, ClaimCheck
from soc_ledger.domain.mechanisms.care_days_forecast import CohortForecast
from soc_ledger.domain.mechanisms.payments import PayerLine, Payments
from soc_ledger.domain.values import money
from soc_ledger.projections.views.liability import known_at_text, liability_json, share
from soc_ledger.projections.views.render import (
    for_people,
    write_for_machines,
    write_line,
    write_table,
)

PAYER_COLUMNS = ("mechanism", "payer", "owed", "provisional", "capped")
MONEY = ("owed", "provisional", "capped")


def number(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _line(p: PayerLine) -> dict[str, Any]:
    return {
        "mechanism": p.mechanism,
        "payer": p.payer,
        "owed": money(p.owed),
        "provisional": money(p.provisional),
        "capped": money(p.capped),
    }


def payments_json(result: Payments, known_at: date | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "contract": result.contract,
        "as_of": result.as_of.isoformat(),
        "known_at": known_at_text(known_at),
        "mechanisms": list(result.mechanisms),
        "totals": {
            "owed": money(result.owed),
            "provisional": money(result.provisional),
            "capped": money(result.capped),
        },
        "payers": [_line(p) for p in result.payers],
        "by_mechanism": [_line(p) for p in result.lines],
    }
    if result.weeks is not None:
        weeks = result.weeks
        # The rule the cases were read under (the terms' rule; no what-if for mechanisms).
        rule = weeks.week_rule or next((c.week_rule for c in weeks.cases), "fixed_blocks")
        data["weeks_out_of_care"] = liability_json(result.weeks, known_at, rule)
    if result.care_days is not None:
        data["care_days_saved"] = [
            {
                "borough": c.borough,
                "cases_tracked": len(c.cases),
                "days_tracked": c.days,
                "days_in_care": c.days_in_care,
                "care_share": share(c.care_share),
                "comparison_share": number(c.comparison_share),
                "target_share": number(c.target_share),
                "days_saved": number(c.days_saved),
                "price_per_day": money(c.price_per_day),
                "owed": money(c.owed),
                "provisional": money(c.provisional),
                "capped": money(c.capped),
            }
            for c in result.care_days
        ]
    if result.wellbeing is not None:
        data["wellbeing_improvement"] = [
            {
                "case": w.case,
                "borough": w.borough,
                "status": w.status,
                "first": number(w.first.score) if w.first else None,
                "first_on": w.first.day.isoformat() if w.first else None,
                "later": number(w.later.score) if w.later else None,
                "later_on": w.later.day.isoformat() if w.later else None,
                "improvement": number(w.improvement),
                "owed": money(w.owed),
            }
            for w in result.wellbeing
        ]
    if result.reunification is not None:
        r = result.reunification
        data["reunification"] = {
            "referrals": r.referrals,
            "min_referrals": r.min_referrals,
            "shortfall": r.shortfall,
            "cases": [
                {
                    "case": c.case,
                    "borough": c.borough,
                    "status": c.status,
                    "returned": c.returned.isoformat() if c.returned else None,
                    "home_until": c.home_until.isoformat() if c.home_until else None,
                    "owed": money(c.owed),
                    "provisional": money(c.provisional),
                }
                for c in r.cases
            ],
        }
    if result.quality is not None:
        data["quality_bonus"] = {
            "payer": result.quality.payer,
            "quarters": [
                {
                    "quarter_end": q.quarter_end.isoformat(),
                    "status": q.status,
                    "scores": {a: number(s) for a, s in q.scores.items()},
                    "weighted_total": number(q.weighted_total),
                    "published_total": number(q.published_total),
                    "total_follows": q.total_follows,
                    "payment_percent": number(q.payment_percent),
                    "published_payment": number(q.published_payment),
                    "payment_follows": q.payment_follows,
                    "gross": money(q.gross),
                    "owed": money(q.owed),
                    "capped": money(q.capped),
                    "year_cap": money(q.year_cap),
                }
                for q in result.quality.quarters
            ],
        }
    return data


def _percent(value: str | None) -> str | None:
    return None if value is None else f"{Decimal(value) * 100:.2f}%"


def render_payments(data: dict[str, Any], fmt: str) -> None:
    """The payments as JSON, CSV (a row per mechanism and payer), or tables."""
    if write_for_machines(fmt, data, PAYER_COLUMNS, lambda: data["by_mechanism"]):
        return
    known = data["known_at"] or "everything recorded"
    title = (
        f"{data['contract']}: outcome liability as of {data['as_of']}, known at {known} "
        f"({' + '.join(data['mechanisms'])})"
    )
    rows = [for_people(r, MONEY) for r in data["by_mechanism"]]
    write_table(title, PAYER_COLUMNS, rows, right=MONEY)
    if len(data["by_mechanism"]) > 1:
        rows = [for_people(r, MONEY) for r in data["payers"]]
        write_table("owed by payer, all mechanisms", PAYER_COLUMNS, rows, right=MONEY)
    for cohort in data.get("care_days_saved", []):
        columns = (
            "borough", "cases_tracked", "days_tracked", "days_in_care", "care_share",
            "comparison_share", "target_share", "days_saved", "owed", "capped",
        )  # fmt: skip
        row = {
            **for_people(cohort, MONEY),
            "care_share": _percent(cohort["care_share"]),
            "comparison_share": _percent(cohort["comparison_share"]),
            "target_share": _percent(cohort["target_share"]),
        }
        write_table("care days saved, by cohort", columns, [row], right=columns[1:])
    if "wellbeing_improvement" in data:
        counts: dict[str, int] = {}
        for w in data["wellbeing_improvement"]:
            counts[w["status"]] = counts.get(w["status"], 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        write_line(f"wellbeing improvement: {summary or 'no case tracked'}")
    if "reunification" in data:
        r = data["reunification"]
        counts = {}
        for c in r["cases"]:
            counts[c["status"]] = counts.get(c["status"], 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        shortfall = f", {r['shortfall']} short" if r["shortfall"] else ", met"
        write_line(
            f"reunification: {summary or 'no case tracked'}; referrals in care {r['referrals']} "
            f"against a minimum of {r['min_referrals']}{shortfall}"
        )
    if "quality_bonus" in data:
        columns = (
            "quarter_end", "status", "weighted_total", "published_total", "follows",
            "payment_percent", "published_payment", "owed", "capped",
        )  # fmt: skip
        rows = []
        for q in data["quality_bonus"]["quarters"]:
            follows = {True: "yes", False: "NO", None: ""}[q["total_follows"]]
            rows.append({**for_people(q, MONEY), "follows": follows})
        write_table("quality bonus, by quarter (totals in %)", columns, rows, right=columns[2:])
        for q in data["quality_bonus"]["quarters"]:
            if q["total_follows"] is False:
                write_line(
                    f"quarter ending {q['quarter_end']}: the published total "
                    f"{q['published_total']}% does not follow from the scores and weights "
                    f"({q['weighted_total']}%)"
                )


DIFF_COLUMNS = (
    "mechanism", "payer", "owed_before", "owed_after", "owed_change",
    "provisional_before", "provisional_after", "capped_before", "capped_after",
)  # fmt: skip


def payments_diff_json(
    before: Payments, after: Payments, k1: date | None, k2: date | None
) -> dict[str, Any]:
    """What each mechanism owed each payer at the two states of knowledge, and the change."""
    old = {(p.mechanism, p.payer): p for p in before.lines}
    new = {(p.mechanism, p.payer): p for p in after.lines}
    rows = []
    for key in sorted({*old, *new}):
        a, b = old.get(key), new.get(key)
        owed_a, owed_b = (a.owed if a else Decimal(0)), (b.owed if b else Decimal(0))
        rows.append(
            {
                "mechanism": key[0],
                "payer": key[1],
                "owed_before": money(owed_a),
                "owed_after": money(owed_b),
                "owed_change": money(owed_b - owed_a),
                "provisional_before": money(a.provisional if a else 0),
                "provisional_after": money(b.provisional if b else 0),
                "capped_before": money(a.capped if a else 0),
                "capped_after": money(b.capped if b else 0),
            }
        )
    return {
        "contract": after.contract,
        "as_of": after.as_of.isoformat(),
        "known_at": known_at_text(k1),
        "vs": known_at_text(k2),
        "mechanisms": list(after.mechanisms),
        "owed_change": money(after.owed - before.owed),
        "lines": rows,
    }


def render_diff(data: dict[str, Any], fmt: str) -> None:
    if write_for_machines(fmt, data, DIFF_COLUMNS, lambda: data["lines"]):
        return
    vs = data["vs"] or "everything recorded"
    title = (
        f"{data['contract']}: what changed as of {data['as_of']}, known at {data['known_at']} "
        f"vs {vs} ({' + '.join(data['mechanisms'])})"
    )
    money_columns = DIFF_COLUMNS[2:]
    rows = [for_people(r, money_columns) for r in data["lines"]]
    write_table(title, DIFF_COLUMNS, rows, right=money_columns)
    write_line(f"owed changed by {Decimal(data['owed_change']):,.2f}")


def case_json(result: Payments, case: str, known_at: date | None) -> dict[str, Any] | None:
    """What one case counts for under each mechanism other than weeks; None if it counts for
    none (not tracked, or not a case of this contract)."""
    found: dict[str, Any] = {}
    for cohort in result.care_days or ():
        for c in cohort.cases:
            if c.case == case:
                found["care_days_saved"] = {
                    "borough": c.borough,
                    "tracking_start": c.tracking_start.isoformat(),
                    "tracking_end": c.tracking_end.isoformat(),
                    "days_tracked": c.days,
                    "days_in_care": c.days_in_care,
                    "days_verified": c.verified_days,
                    "days_in_care_verified": c.verified_in_care,
                    # The case's own part of its cohort's saving (the cohort is what is paid).
                    "days_saved_verified": number(
                        cohort.comparison_share * c.verified_days - c.verified_in_care
                    ),
                }
    for w in result.wellbeing or ():
        if w.case == case:
            found["wellbeing_improvement"] = {
                "status": w.status,
                "first": number(w.first.score) if w.first else None,
                "later": number(w.later.score) if w.later else None,
                "improvement": number(w.improvement),
                "owed": money(w.owed),
            }
    for r in result.reunification.cases if result.reunification else ():
        if r.case == case:
            found["reunification"] = {
                "status": r.status,
                "returned": r.returned.isoformat() if r.returned else None,
                "home_until": r.home_until.isoformat() if r.home_until else None,
                "owed": money(r.owed),
                "provisional": money(r.provisional),
            }
    if not found:
        return None
    return {
        "contract": result.contract,
        "case": case,
        "as_of": result.as_of.isoformat(),
        "known_at": known_at_text(known_at),
        **found,
    }


def render_case(data: dict[str, Any], fmt: str) -> None:
    rows = [
        {"mechanism": name, "figure": key, "value": value}
        for name, figures in data.items()
        if isinstance(figures, dict)
        for key, value in figures.items()
    ]
    if write_for_machines(fmt, data, ("mechanism", "figure", "value"), lambda: rows):
        return
    known = data["known_at"] or "everything recorded"
    title = f"{data['contract']}: case {data['case']} as of {data['as_of']}, known at {known}"
    write_table(title, ("mechanism", "figure", "value"), rows, right=("value",))


ACCOUNT_COLUMNS = ("claim", "period_end", "claimed", "paid", "outstanding")


def account_json(result: Account, known_at: date | None) -> dict[str, Any]:
    return {
        "contract": result.contract,
        "payer": result.payer,
        "as_of": result.as_of.isoformat(),
        "known_at": known_at_text(known_at),
        "claims": [
            {
                "claim": c.claim,
                "period_end": c.period_end.isoformat(),
                "claimed": money(c.claimed),
                "paid": money(c.paid),
                "outstanding": money(c.claimed - c.paid),
            }
            for c in result.claims
        ],
        "due": money(result.due),
        "claimed": money(result.claimed),
        "paid": money(result.paid),
        "unclaimed": money(result.unclaimed),
        "balance": money(result.balance),
    }


def render_account(data: dict[str, Any], fmt: str) -> None:
    if write_for_machines(fmt, data, ACCOUNT_COLUMNS, lambda: data["claims"]):
        return
    known = data["known_at"] or "everything recorded"
    title = (
        f"{data['contract']}: {data['payer']}'s account as of {data['as_of']}, known at {known} "
        "(claims on account)"
    )
    money_columns = ("claimed", "paid", "outstanding")
    rows = [for_people(c, money_columns) for c in data["claims"]]
    write_table(title, ACCOUNT_COLUMNS, rows, right=money_columns)
    figures = for_people(data, ("due", "claimed", "paid", "unclaimed", "balance"))
    write_line(
        f"due {figures['due']} (every mechanism), claimed {figures['claimed']}, "
        f"paid {figures['paid']}, unclaimed {figures['unclaimed']}, balance {figures['balance']}"
    )


def claim_check_json(result: ClaimCheck, known_at: date | None) -> dict[str, Any]:
    return {
        "contract": result.contract,
        "claim": result.claim,
        "payer": result.payer,
        "period_end": result.period_end.isoformat(),
        "known_at": known_at_text(known_at),
        "claimed": money(result.claimed),
        "paid": money(result.paid),
        "claimed_before": money(result.claimed_before),
        "owed_then": money(result.owed_then),
        "owed_now": money(result.owed_now),
        "due_then": money(result.due_then),
        "due_now": money(result.due_now),
        "over_claimed": money(result.over_claimed),
    }


def render_claim_check(data: dict[str, Any], fmt: str) -> None:
    rows = [{"figure": k, "amount": v} for k, v in data.items() if k not in {
        "contract", "claim", "payer", "period_end", "known_at"}]  # fmt: skip
    if write_for_machines(fmt, data, ("figure", "amount"), lambda: rows):
        return
    known = data["known_at"] or "everything recorded"
    title = (
        f"{data['contract']}: claim {data['claim']} to {data['payer']} for the period to "
        f"{data['period_end']}, on account, known at {known}"
    )
    write_table(title, ("figure", "amount"), [for_people(r, ("amount",)) for r in rows],
                right=("amount",))  # fmt: skip


FORECAST_COLUMNS = ("borough", "remaining_days", "care_share", "owed", "minimum", "expected",
                    "maximum")  # fmt: skip


def forecast_json(
    contract: str, as_of: date, result: tuple[CohortForecast, ...], known_at: date | None
) -> dict[str, Any]:
    return {
        "contract": contract,
        "as_of": as_of.isoformat(),
        "known_at": known_at_text(known_at),
        "cohorts": [
            {
                "borough": f.borough,
                "remaining_days": f.remaining_days,
                "care_share": share(f.care_share),
                "owed": money(f.owed),
                "minimum": money(f.minimum),
                "expected": money(f.expected),
                "maximum": money(f.maximum),
                "still_to_pay": {
                    "minimum": money(f.minimum - f.owed),
                    "expected": money(f.expected - f.owed),
                    "maximum": money(f.maximum - f.owed),
                },
            }
            for f in result
        ],
    }


def render_forecast(data: dict[str, Any], fmt: str) -> None:
    if write_for_machines(fmt, data, FORECAST_COLUMNS, lambda: data["cohorts"]):
        return
    known = data["known_at"] or "everything recorded"
    title = (
        f"{data['contract']}: care days saved when every tracked case's window is over, as of "
        f"{data['as_of']}, known at {known} (after caps)"
    )
    money_columns = ("owed", "minimum", "expected", "maximum")
    rows = [
        {**for_people(c, money_columns), "care_share": _percent(c["care_share"])}
        for c in data["cohorts"]
    ]
    write_table(title, FORECAST_COLUMNS, rows, right=FORECAST_COLUMNS[1:])
    write_line(
        "final payment if every remaining day were in care (minimum), in care at the cohort's "
        "share to date (expected), or out of care (maximum); still to pay = final - owed"
    )
