"""The finance reports for CSV and people: `returns`, `finances`, `baseline` and `forecast`
made from their JSON shapes (views/finance.py), with the sentences printed under the tables.

Nothing here decides a figure: every number is the JSON's own, only laid out (thousands
separators, percentages, which row goes in which table).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from soc_ledger.projections.views.render import (
    context_of,
    for_people,
    write_csv,
    write_for_machines,
    write_json,
    write_line,
    write_table,
)

RETURNS_COLUMNS = [
    "investor", "committed", "drawn", "distributed", "net", "money_multiple", "irr",
]
FINANCE_COLUMNS = ["section", "item", "amount", "share"]
BASELINE_COLUMNS = ["measure", "target", "actual", "difference", "attainment"]
PROFILE_COLUMNS = ["milestone", "referrals_target", "referrals_actual", "payments_target",
                   "payments_actual", "payments_difference"]
FORECAST_COLUMNS = ["payer", "owed", "remaining_weeks", "minimum", "expected", "maximum"]


def people(row: dict[str, Any], money_fields: Iterable[str]) -> dict[str, Any]:
    """For a table: thousands separators in money, shares and rates as percentages."""
    return for_people(row, money_fields, ("share", "attainment", "irr"))


def irr_text(irr: str | None) -> str:
    return "none" if irr is None else f"{Decimal(irr) * 100:.4f}%"


def pounds_text(value: str) -> str:
    return f"{Decimal(value):,.2f}"


def _known(data: dict[str, Any]) -> str:
    return data["known_at"] or "everything recorded"


# --- returns -----------------------------------------------------------------------------------


def render_returns(data: dict[str, Any], fmt: str) -> None:
    """One row per investor and the total, with how the multiple and IRR are reckoned."""
    rows = [*data["investors"], data["total"]]
    if write_for_machines(fmt, data, RETURNS_COLUMNS, lambda: rows):
        return
    money_fields = ("committed", "drawn", "distributed", "net")
    write_table(
        f"{data['contract']}: investors' returns as of {data['as_of']}, known at "
        f"{_known(data)}",
        RETURNS_COLUMNS,
        [{**people(r, money_fields), "irr": irr_text(r["irr"])} for r in rows],
        right=RETURNS_COLUMNS[1:],
    )
    write_line(
        "money multiple = distributed / drawn; IRR = XIRR of drawdowns (-) and distributions "
        "(+), actual/365, none before the first distribution"
    )


# --- finances ----------------------------------------------------------------------------------


def render_finances(data: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        write_json(data)
    elif fmt == "csv":
        write_csv(FINANCE_COLUMNS, finance_rows(data), context_of(data))
    else:
        finance_tables(data)


def finance_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The finances as one long CSV: a section per part, then the totals."""
    rows = []
    for payer, p in data["income"]["by_payer"].items():
        rows.append({"section": "income_due", "item": payer, "amount": p["due"]})
        rows.append({"section": "income_received", "item": payer, "amount": p["received"]})
    for category, c in data["costs"]["by_category"].items():
        rows.append({"section": "costs", "item": category, **c})
    fees = data["co_commissioning_fees"]
    for borough, f in fees["by_borough"].items():
        for year in f["years"]:
            rows.append(
                {"section": "co_commissioning_fee", "item": f"{borough} {year['year']}",
                 "amount": year["amount"]}
            )
    summary = [
        ("income_due", data["income"]["due"]),
        ("income_received", data["income"]["received"]),
        ("costs", data["costs"]["total"]),
        ("surplus", data["surplus"]),
        ("cost_per_service_user", data["cost_per_service_user"]),
        ("co_commissioning_fees", fees["total"]),
        ("avoided_care_costs", (data["avoided_care_costs"] or {}).get("amount")),
    ]
    rows.extend({"section": "total", "item": item, "amount": v} for item, v in summary)
    return rows


def finance_tables(data: dict[str, Any]) -> None:
    """Income by payer, costs by category, fees by year, a summary, and what it means."""
    income = [{"payer": payer, **p} for payer, p in data["income"]["by_payer"].items()]
    income.append({"payer": "total", "due": data["income"]["due"],
                   "received": data["income"]["received"],
                   "outstanding": data["income"]["outstanding"]})
    money_fields = ("due", "received", "outstanding", "amount")
    write_table(
        f"{data['contract']}: outcome income by payer as of {data['as_of']}, known at "
        f"{_known(data)}",
        ["payer", "due", "received", "outstanding"],
        [people(r, money_fields) for r in income],
        right=["due", "received", "outstanding"],
    )
    costs = [{"category": c, **v} for c, v in data["costs"]["by_category"].items()]
    costs.append({"category": "total", "amount": data["costs"]["total"],
                  "share": "1" if costs else None})
    write_table(
        "costs by category",
        ["category", "amount", "share"],
        [people(r, money_fields) for r in costs],
        right=["amount", "share"],
    )
    fees = data["co_commissioning_fees"]
    years = sorted({y["year"] for f in fees["by_borough"].values() for y in f["years"]})
    fee_rows = []
    for borough, f in fees["by_borough"].items():
        row = {"borough": borough, "total": pounds_text(f["total"])}
        row.update({y["year"]: pounds_text(y["amount"]) for y in f["years"]})
        fee_rows.append(row)
    write_table(
        f"co-commissioning fees owed to the lead commissioner ({fees['lead']}), by financial "
        "year, pro rata to days of membership",
        ["borough", *years, "total"],
        fee_rows,
        right=[*years, "total"],
    )
    surplus = Decimal(data["surplus"])
    avoided = data["avoided_care_costs"]
    summary = [
        ("outcome income due", data["income"]["due"]),
        ("costs", data["costs"]["total"]),
        ("surplus" if surplus >= 0 else "deficit (income due - costs)", data["surplus"]),
        ("service users (first family meetings)", str(data["service_users"])),
        ("cost per service user (outcome payments / service users)",
         data["cost_per_service_user"]),
        ("co-commissioning fees", fees["total"]),
        ("avoided care costs (outcome weeks x counterfactual rate x weekly cost)",
         avoided["amount"] if avoided else None),
    ]
    write_table(
        "summary",
        ["", "amount"],
        [
            {"": label, "amount": value if label.startswith("service users") or value is None
             else pounds_text(value)}
            for label, value in summary
        ],
        right=["amount"],
    )
    if surplus < 0:
        write_line(
            f"costs exceed outcome income due by {-surplus:,.2f}: a deficit of {-surplus:,.2f}"
        )
    if avoided:
        write_line(
            f"avoided care costs: {avoided['outcome_weeks']} outcome weeks x "
            f"{avoided['counterfactual_rate']} x {pounds_text(avoided['weekly_cost'])} a week "
            f"(unit costs of {avoided['unit_costs_effective']})"
        )


# --- baseline ----------------------------------------------------------------------------------


def render_baseline(data: dict[str, Any], fmt: str) -> None:
    """Actuals against the targets in full, by borough, and against the profile's milestones."""
    if write_for_machines(fmt, data, BASELINE_COLUMNS, lambda: data["in_full"]):
        return
    money_fields = ("target", "actual", "difference")

    def readable(row: dict[str, Any]) -> dict[str, Any]:
        is_money = isinstance(row["target"], str)
        return people(row, money_fields if is_money else ())

    write_table(
        f"{data['contract']}: actuals as of {data['as_of']} (known at "
        f"{_known(data)}) against the baseline of variation "
        f"{data['variation']} ({data['description']}; effective {data['effective']})",
        BASELINE_COLUMNS,
        [readable(r) for r in data["in_full"]],
        right=BASELINE_COLUMNS[1:],
    )
    if data["per_borough"]:
        write_table(
            "referrals (first family meetings) by borough",
            ["borough", "target", "actual", "difference", "attainment"],
            [people(r, ()) for r in data["per_borough"]],
            right=["target", "actual", "difference", "attainment"],
        )
    if data["profile"]:
        write_table(
            "cumulative profile: each milestone against the actuals at its date "
            "(blank: not reached by as_of)",
            PROFILE_COLUMNS,
            profile_rows(data["profile"]),
            right=PROFILE_COLUMNS[1:],
        )
    due = data["at_as_of"]
    if due:
        ref, pay = due["referrals"], due["outcome_payments"]
        write_line(
            f"against the profile at {data['as_of']} (milestone {due['milestone']}): referrals "
            f"{ref['actual']} against {ref['target']}; outcome payments "
            f"{pounds_text(pay['actual'])} against {pounds_text(pay['target'])}"
        )
    elif data["profile"]:
        write_line(f"no profile milestone falls on or before {data['as_of']}")


def profile_rows(profile: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per milestone of the baseline's profile, for people."""
    rows = []
    for m in profile:
        ref, pay = m["referrals"], m["outcome_payments"]
        rows.append(
            people(
                {
                    "milestone": m["date"],
                    "referrals_target": ref["target"],
                    "referrals_actual": ref["actual"],
                    "payments_target": pay["target"],
                    "payments_actual": pay["actual"],
                    "payments_difference": pay["difference"],
                },
                ("payments_target", "payments_actual", "payments_difference"),
            )
        )
    return rows


# --- forecast ----------------------------------------------------------------------------------


def render_forecast(data: dict[str, Any], fmt: str) -> None:
    """Still to pay by payer, with the rate and weeks behind `expected`."""
    rows = [*data["payers"], data["total"]]
    if write_for_machines(fmt, data, FORECAST_COLUMNS, lambda: rows):
        return
    write_table(
        f"{data['contract']}: still to pay for cases already referred, as of {data['as_of']}, "
        f"known at {_known(data)} (after caps)",
        FORECAST_COLUMNS,
        [people(r, ("owed", "minimum", "expected", "maximum")) for r in rows],
        right=FORECAST_COLUMNS[1:],
    )
    rate = data["outcome_rate"]
    basis = data["rate_basis"]
    cases, weeks = data["cases"], data["remaining_weeks"]
    write_line(
        "expected = remaining weeks x the verified outcome rate to date "
        + (
            f"{float(rate) * 100:.2f}% ({basis['outcome_weeks']} outcome weeks of "
            f"{basis['outcome_weeks'] + basis['in_care_weeks']} decided)"
            if rate is not None
            else "(none yet: no week decided)"
        )
        + f"; remaining weeks: {weeks['pending']} pending, {weeks['unverified']} unverified, "
        f"{weeks['engaging']} weeks of {cases['engaging']} engaging cases; "
        f"{cases['not_started']} "
        "referred cases not yet started (no dated window, not in the money)"
    )
    write_line(
        "a borough's maximum is the most it alone could be billed; the total is the sum"
    )
