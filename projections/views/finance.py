"""The finance reports as plain data: the stable JSON shapes of SPEC §10 for `returns`,
`finances`, `baseline` and `forecast` (money as 2-place strings, dates ISO), and the rows of
their tables."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from soc_ledger.domain.baseline import Actuals, Baseline
from soc_ledger.domain.finances.finances import Finances
from soc_ledger.domain.finances.returns import InvestorReturns, Returns
from soc_ledger.domain.finances.rounding import ratio
from soc_ledger.domain.forecast import Forecast, PayerForecast
from soc_ledger.domain.values import money
from soc_ledger.projections.views.liability import known_at_text, share, signed


def multiple(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.4f}"


def rate(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.6f}"


def optional_money(value: Decimal | None) -> str | None:
    return None if value is None else signed(value)


# --- returns -----------------------------------------------------------------------------------


def investor_json(r: InvestorReturns) -> dict[str, Any]:
    return {
        "investor": r.investor,
        "committed": money(r.committed),
        "drawn": money(r.drawn),
        "distributed": money(r.distributed),
        "net": signed(r.net),
        "money_multiple": multiple(r.money_multiple),
        "irr": rate(r.irr),
        "first_distribution": r.first_distribution.isoformat() if r.first_distribution else None,
    }


def returns_json(r: Returns, known_at: date | None) -> dict[str, Any]:
    return {
        "contract": r.contract,
        "as_of": r.as_of.isoformat(),
        "known_at": known_at_text(known_at),
        "investors": [investor_json(i) for i in r.investors],
        "total": investor_json(r.total),
        "flows": [
            {
                "date": f.day.isoformat(),
                "investor": f.investor,
                "kind": f.kind,
                "amount": signed(f.amount),
                "allocation": "stated" if f.stated else "pro_rata",
                "because": [f"#{p}" for p in f.refs],
            }
            for f in r.flows
        ],
    }


# --- finances ----------------------------------------------------------------------------------


def finances_json(f: Finances, known_at: date | None) -> dict[str, Any]:
    fees = f.fees_by_borough()
    avoided = f.avoided
    return {
        "contract": f.contract,
        "as_of": f.as_of.isoformat(),
        "known_at": known_at_text(known_at),
        "income": {
            "due": money(f.income_due),
            "received": money(f.income_received),
            "outstanding": signed(f.income_due - f.income_received),
            "by_payer": {
                p.payer: {
                    "due": money(p.due),
                    "received": money(p.received),
                    "outstanding": signed(p.outstanding),
                }
                for p in f.income
            },
        },
        "costs": {
            "total": money(f.costs_total),
            "by_category": {
                c.category: {"amount": money(c.amount), "share": share(c.share)} for c in f.costs
            },
        },
        "surplus": signed(f.surplus),
        "service_users": f.service_users,
        "cost_per_service_user": optional_money(f.cost_per_service_user),
        "co_commissioning_fees": {
            "lead": f.lead_commissioner,
            "total": money(sum(fees.values(), Decimal(0))),
            "by_borough": {
                borough: {
                    "total": money(total),
                    "years": [
                        {"year": fee.year, "days": fee.days, "amount": money(fee.amount)}
                        for fee in f.fees
                        if fee.borough == borough
                    ],
                }
                for borough, total in fees.items()
            },
        },
        "avoided_care_costs": None
        if avoided is None
        else {
            "amount": money(avoided.amount),
            "outcome_weeks": avoided.outcome_weeks,
            "counterfactual_rate": str(avoided.counterfactual_rate),
            "weekly_cost": money(avoided.weekly_cost)
            if avoided.weekly_cost == avoided.weekly_cost.quantize(Decimal("0.01"))
            else str(avoided.weekly_cost),
            "unit_costs_effective": avoided.effective.isoformat(),
            "because": [f"#{p}" for p in avoided.refs],
        },
    }


# --- baseline ----------------------------------------------------------------------------------


def _compare(measure: str, target: int | Decimal, actual: int | Decimal, is_money: bool) -> dict:
    def show(v):
        return money(v) if is_money else v

    difference = actual - target
    return {
        "measure": measure,
        "target": show(target),
        "actual": show(actual),
        "difference": signed(Decimal(difference)) if is_money else difference,
        "attainment": share(ratio(Decimal(actual), Decimal(target))),
    }


def _actuals_json(a: Actuals) -> dict[str, Any]:
    return {
        "as_of": a.as_of.isoformat(),
        "referrals": a.referrals,
        "tracked": a.tracked,
        "outcome_weeks": a.outcome_weeks,
        "outcome_payments": money(a.outcome_payments),
        "investment": money(a.investment),
    }


def baseline_json(b: Baseline, known_at: date | None) -> dict[str, Any]:
    t, a = b.targets, b.actual
    payments = t.outcome_payments
    in_full = [
        _compare("referrals", t.referrals, a.referrals, False),
        _compare("tracked", t.tracked, a.tracked, False),
        _compare("outcome_weeks", t.outcome_weeks, a.outcome_weeks, False),
        _compare("outcome_payments_low", payments.low, a.outcome_payments, True),
        _compare("outcome_payments_medium", payments.medium, a.outcome_payments, True),
        _compare("outcome_payments_high", payments.high, a.outcome_payments, True),
        _compare("investment", t.investment, a.investment, True),
    ]
    per_borough = [
        {"borough": borough, **_compare("referrals", target, a.per_borough.get(borough, 0), False)}
        for borough, target in sorted((t.per_borough or {}).items())
    ]
    for row in per_borough:
        row.pop("measure")
    due = b.due
    return {
        "contract": b.contract,
        "variation": b.variation,
        "description": b.description,
        "effective": b.effective.isoformat(),
        "because": [f"#{p}" for p in b.refs],
        "as_of": b.as_of.isoformat(),
        "known_at": known_at_text(known_at),
        "targets": t.model_dump(mode="json", exclude_none=True),
        "actual": _actuals_json(a),
        "in_full": in_full,
        "per_borough": per_borough,
        "profile": [
            {
                "date": m.point.date.isoformat(),
                "reached": m.actual is not None,
                "referrals": {
                    "target": m.point.referrals,
                    "actual": m.actual.referrals if m.actual else None,
                    "difference": m.actual.referrals - m.point.referrals if m.actual else None,
                },
                "outcome_payments": {
                    "target": money(m.point.outcome_payments),
                    "actual": money(m.actual.outcome_payments) if m.actual else None,
                    "difference": signed(m.actual.outcome_payments - m.point.outcome_payments)
                    if m.actual
                    else None,
                },
            }
            for m in b.milestones
        ],
        "at_as_of": None
        if due is None
        else {
            "milestone": due.date.isoformat(),
            "referrals": _compare("referrals", due.referrals, a.referrals, False),
            "outcome_payments": _compare(
                "outcome_payments", due.outcome_payments, a.outcome_payments, True
            ),
        },
    }


# --- forecast ----------------------------------------------------------------------------------


def payer_forecast_json(p: PayerForecast) -> dict[str, Any]:
    return {
        "payer": p.payer,
        "owed": money(p.owed),
        "remaining_weeks": p.remaining_weeks,
        "minimum": money(p.minimum),
        "expected": None if p.expected is None else money(p.expected),
        "maximum": money(p.maximum),
    }


def forecast_json(f: Forecast, known_at: date | None) -> dict[str, Any]:
    return {
        "contract": f.contract,
        "as_of": f.as_of.isoformat(),
        "known_at": known_at_text(known_at),
        "outcome_rate": share(f.rate_shown),
        "rate_basis": {"outcome_weeks": f.outcome_weeks, "in_care_weeks": f.in_care_weeks},
        "cases": dict(f.cases),
        "remaining_weeks": dict(f.weeks),
        "payers": [payer_forecast_json(p) for p in f.payers],
        "total": payer_forecast_json(f.total),
    }
