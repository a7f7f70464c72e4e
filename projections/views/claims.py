"""Reconciliations and statements as plain data: the JSON of SPEC §10, rows for CSV, and the
tables and sentences for people.

Money is a string with two decimals (negative: a leading minus), dates are ISO.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from soc_ledger.domain.claims.reconciliation import LineReconciliation, Reconciliation
from soc_ledger.domain.claims.statement import Statement
from soc_ledger.domain.values import money
from soc_ledger.projections.views.liability import EVENT_REF_COLUMNS, known_at_text, ref_json
from soc_ledger.projections.views.render import (
    TOTAL,
    for_people,
    write_for_machines,
    write_line,
    write_table,
)


def amount(value: Decimal) -> str:
    """Money for JSON and CSV: two decimals, never "-0.00"."""
    return money(value + 0)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def line_json(line: LineReconciliation) -> dict[str, Any]:
    d = line.dispute
    return {
        "case": line.case,
        "claimed": amount(line.claimed),
        "due_then": amount(line.due_then.amount),
        "due_now": amount(line.due_now.amount),
        "paid": amount(line.paid),
        "disputed": amount(line.disputed),
        "dispute_outcome": d.outcome if d is not None else None,
        "difference": line.difference,
        "because": [f"#{p}" for p in line.because],
        # Beyond SPEC's shape (nothing renamed):
        "adjustment": amount(line.adjustment),
        "weeks": {
            "claimed": line.claimed_weeks,
            "due_then": line.due_then.weeks,
            "due_now": line.due_now.weeks,
        },
        "weeks_after": _day(line.after),
        "dispute": None
        if d is None
        else {
            "raised": d.raised.effective.isoformat(),
            "raised_by": d.raised.raised_by,
            "reason": d.raised.reason,
            "resolved": _day(d.resolution.effective) if d.resolution else None,
            "settled_at": amount(d.resolution.amount) if d.resolution else None,
        },
    }


def reconcile_json(r: Reconciliation, known_at: date | None) -> dict[str, Any]:
    claim = r.claim
    return {
        "claim": claim.claim,
        "payer": claim.payer,
        "period_end": claim.period_end.isoformat(),
        "lines": [line_json(line) for line in r.lines],
        "totals": {
            "claimed": amount(r.total("claimed")),
            "due_then": amount(r.total("due_then")),
            "due_now": amount(r.total("due_now")),
            "paid": amount(r.paid),
            "adjustment": amount(r.adjustment),
            # Beyond SPEC's shape: the adjustment each way, and what is still in dispute.
            "owed_by_payer": amount(r.owed_by_payer),
            "owed_to_payer": amount(r.owed_to_payer),
            "disputed": amount(r.total("disputed")),
        },
        "contract": r.contract,
        "payee": r.payee,
        "submitted": claim.submitted.isoformat(),
        "recorded_on": r.recorded_on.isoformat(),
        "as_of": r.as_of.isoformat(),
        "known_at": known_at_text(known_at),
        "payments": [
            {"effective": p.effective.isoformat(), "amount": amount(p.amount), "key": p.key}
            for p in claim.payments
            if p.effective <= r.as_of
        ],
        "events": {f"#{p}": ref_json(ref) for p, ref in sorted(r.events.items())},
    }


def statement_json(s: Statement, known_at: date | None) -> dict[str, Any]:
    return {
        "contract": s.contract,
        "payer": s.payer,
        "as_of": s.as_of.isoformat(),
        "known_at": known_at_text(known_at),
        "claims": [
            {
                "claim": c.claim.claim,
                "period_end": c.claim.period_end.isoformat(),
                "submitted": c.claim.submitted.isoformat(),
                "lines": len(c.claim.lines),
                "claimed": amount(c.claimed),
                "due": amount(c.due),
                "paid": amount(c.paid),
                "disputed": amount(c.disputed),
                "adjustment": amount(c.adjustment),
            }
            for c in s.claims
        ],
        "unclaimed": {
            "due": amount(s.unclaimed_amount),
            "weeks": sum(share.weeks for _, share in s.unclaimed),
            "cases": [
                {"case": case, "due": amount(share.amount), "weeks": share.weeks}
                for case, share in s.unclaimed
            ],
        },
        "totals": {
            "claimed": amount(s.total("claimed")),
            "due": amount(s.due),
            "paid": amount(s.total("paid")),
            "disputed": amount(s.total("disputed")),
            "adjustments": amount(s.total("adjustment")),
            "unclaimed": amount(s.unclaimed_amount),
            "balance": amount(s.balance),
        },
    }


# --- rows for CSV and tables ----------------------------------------------------------------

RECONCILE_COLUMNS = [
    "case",
    "weeks_claimed",
    "claimed",
    "weeks_due_then",
    "due_then",
    "weeks_due_now",
    "due_now",
    "paid",
    "disputed",
    "dispute_outcome",
    "difference",
    "adjustment",
    "because",
]
RECONCILE_MONEY = ["claimed", "due_then", "due_now", "paid", "disputed", "adjustment"]

STATEMENT_COLUMNS = [
    "claim",
    "period_end",
    "submitted",
    "claimed",
    "due",
    "paid",
    "disputed",
    "adjustment",
]
STATEMENT_MONEY = ["claimed", "due", "paid", "disputed", "adjustment"]
UNCLAIMED = "unclaimed"  # the statement's row for weeks no claim has covered


def reconcile_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per claim line, then the claim's total row (first column `total`): its
    adjustments add up to the claim's."""
    return [*_line_rows(data), _total_row(data["lines"], data["totals"], "case")]


def _line_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            **line,
            "weeks_claimed": line["weeks"]["claimed"],
            "weeks_due_then": line["weeks"]["due_then"],
            "weeks_due_now": line["weeks"]["due_now"],
            "because": " ".join(line["because"]),
        }
        for line in data["lines"]
    ]


def _total_row(lines: list[dict[str, Any]], totals: dict[str, Any], first: str) -> dict[str, Any]:
    """The lines' total row: the JSON's totals, and the weeks added up."""
    return {
        first: TOTAL,
        **{name: totals[name] for name in RECONCILE_MONEY},
        **{
            f"weeks_{name}": sum(line["weeks"][name] for line in lines)
            for name in ("claimed", "due_then", "due_now")
        },
    }


def statement_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per claim, then one for the unclaimed weeks, then the total row (first column
    `total`): the adjustments add up to the balance."""
    unclaimed = data["unclaimed"]["due"]
    totals = data["totals"]
    return [
        *data["claims"],
        {
            "claim": UNCLAIMED,
            "claimed": "0.00",
            "due": unclaimed,
            "paid": "0.00",
            "disputed": "0.00",
            "adjustment": unclaimed,
        },
        {
            "claim": TOTAL,
            "claimed": totals["claimed"],
            "due": totals["due"],
            "paid": totals["paid"],
            "disputed": totals["disputed"],
            "adjustment": totals["balance"],
        },
    ]


def readable(row: dict[str, Any], money_columns: list[str]) -> dict[str, Any]:
    """For people: thousands separators in money."""
    return for_people(row, money_columns)


def render_reconcile(data: dict[str, Any], fmt: str) -> None:
    """A claim as JSON, CSV lines, or its lines, totals, adjustment and correcting events."""
    if write_for_machines(fmt, data, RECONCILE_COLUMNS, lambda: reconcile_rows(data)):
        return
    rows = reconcile_rows(data)
    write_line(
        f"claim {data['claim']} to {data['payer']} for weeks to {data['period_end']}: "
        f"submitted {data['submitted']}, recorded {data['recorded_on'][:19]}; "
        f"as of {data['as_of']}, known at {data['known_at'] or 'everything recorded'}"
    )
    write_table(
        None,
        RECONCILE_COLUMNS,
        [readable(r, RECONCILE_MONEY) for r in rows],
        right=RECONCILE_MONEY + ["weeks_claimed", "weeks_due_then", "weeks_due_now"],
    )
    totals = readable(data["totals"], list(data["totals"]))
    write_line(
        f"claimed {totals['claimed']}, due then {totals['due_then']}, due now "
        f"{totals['due_now']}, paid {totals['paid']}, still disputed {totals['disputed']}"
    )
    payee = data["payee"] or "the provider"
    write_line(
        f"adjustment: {data['payer']} owes {payee} {totals['owed_by_payer']}; {payee} owes "
        f"{data['payer']} {totals['owed_to_payer']}; net {totals['adjustment']}"
    )
    if data["events"]:
        write_table("correcting events", EVENT_REF_COLUMNS, list(data["events"].values()))


def render_statement(data: dict[str, Any], fmt: str) -> None:
    """A payer's account as JSON, CSV rows, or a table and its balance in words."""
    if write_for_machines(fmt, data, STATEMENT_COLUMNS, lambda: statement_rows(data)):
        return
    rows = statement_rows(data)
    payer = data["payer"]
    known = data["known_at"] or "everything recorded"
    write_table(
        f"{data['contract']}: statement of account of {payer} as of {data['as_of']}, "
        f"known at {known}",
        STATEMENT_COLUMNS,
        [readable(r, STATEMENT_MONEY) for r in rows],
        right=STATEMENT_MONEY,
    )
    totals = readable(data["totals"], list(data["totals"]))
    balance = totals["balance"]
    write_line(
        f"due {totals['due']} ({totals['unclaimed']} not yet claimed), paid {totals['paid']}, "
        f"in dispute {totals['disputed']}: balance {balance} "
        + (f"({balance[1:]} owed to {payer})" if balance.startswith("-") else f"owed by {payer}")
    )


# --- all of a payer's claims (`reconcile --payer P`) ----------------------------------------------

PAYER_CLAIM_MONEY = [
    "claimed",
    "due_then",
    "due_now",
    "paid",
    "disputed",
    "adjustment",
    "owed_by_payer",
    "owed_to_payer",
]
PAYER_CLAIM_COLUMNS = ["claim", "period_end", "submitted", "lines", *PAYER_CLAIM_MONEY, "moved"]


def payer_reconciliation_json(
    contract: str,
    payer: str,
    as_of: date,
    known_at: date | None,
    results: list[Reconciliation],
) -> dict[str, Any]:
    """Every claim to PAYER reconciled (each as `reconcile CLAIM` gives it), and the totals."""

    def total(name: str) -> Decimal:
        return sum(
            (getattr(r, name) if name in PROPERTIES else r.total(name) for r in results),
            Decimal("0.00"),
        )

    return {
        "contract": contract,
        "payer": payer,
        "as_of": as_of.isoformat(),
        "known_at": known_at_text(known_at),
        "claims": [reconcile_json(r, known_at) for r in results],
        "totals": {
            "claims": len(results),
            "lines": sum(len(r.lines) for r in results),
            **{name: amount(total(name)) for name in PAYER_CLAIM_MONEY},
        },
    }


# The claim-level figures a `Reconciliation` has as properties (the rest are its lines' sums).
PROPERTIES = {"paid", "adjustment", "owed_by_payer", "owed_to_payer"}


def payer_claim_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per claim (its totals, and how many of its lines moved since it was made),
    then the payer's total row."""
    rows = [
        {
            "claim": c["claim"],
            "period_end": c["period_end"],
            "submitted": c["submitted"],
            "lines": len(c["lines"]),
            **{name: c["totals"][name] for name in PAYER_CLAIM_MONEY},
            "moved": sum(1 for line in c["lines"] if line["due_then"] != line["due_now"]),
        }
        for c in data["claims"]
    ]
    totals = data["totals"]
    rows.append(
        {
            "claim": TOTAL,
            "lines": totals["lines"],
            **{name: totals[name] for name in PAYER_CLAIM_MONEY},
            "moved": sum(r["moved"] for r in rows),
        }
    )
    return rows


def payer_line_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """For CSV: every line of every claim (the claim named first), then the payer's total row
    (first column `total`), whose figures add the lines up."""
    rows = [{"claim": c["claim"], **row} for c in data["claims"] for row in _line_rows(c)]
    lines = [line for c in data["claims"] for line in c["lines"]]
    return [*rows, _total_row(lines, data["totals"], "claim")]


def render_payer_reconciliation(data: dict[str, Any], fmt: str) -> None:
    """All of a payer's claims: JSON, CSV of every line, or a table of one row per claim."""
    if write_for_machines(fmt, data, ["claim", *RECONCILE_COLUMNS], lambda: payer_line_rows(data)):
        return
    known = data["known_at"] or "everything recorded"
    write_table(
        f"{data['contract']}: every claim to {data['payer']} reconciled as of {data['as_of']}, "
        f"known at {known}",
        PAYER_CLAIM_COLUMNS,
        [readable(r, PAYER_CLAIM_MONEY) for r in payer_claim_rows(data)],
        right=[*PAYER_CLAIM_MONEY, "lines", "moved"],
    )
    totals = readable(data["totals"], PAYER_CLAIM_MONEY)
    write_line(
        f"{data['totals']['claims']} claims: claimed {totals['claimed']}, due now "
        f"{totals['due_now']}, paid {totals['paid']}, still disputed {totals['disputed']}; "
        f"net adjustment {totals['adjustment']} (positive: {data['payer']} owes it); "
        "each claim line by line: reconcile CLAIM"
    )
