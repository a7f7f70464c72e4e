"""The pack's tables as a workbook (XlsxWriter) and as CSV files beside it.

One `Sheet` per table, the same rows in both: money as numbers (a currency format in the
workbook, plain 2-place numbers in the CSV), and a total row whose cells in the workbook are
`=SUM(...)` formulas over the column (with the sum as the cached value), so a reviewer can re-check
them. The workbook is byte-identical run to run: its document dates are fixed to the end of the
as_of day (XlsxWriter writes its zip entries with a fixed date of its own).

Before/after: a sheet "Owed by payer" with rows BDG 478439.00 and CBO 1373985.00 gets a row
`total | =SUM(B2:B3)` whose cached value is 1852424.00.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from soc_ledger.projections.views.pack.collect import Contents


@dataclass
class Sheet:
    name: str  # at most 31 characters, as Excel allows
    columns: list[str]
    rows: list[list[Any]]
    money: set[str] = field(default_factory=set)
    totals: list[str] = field(default_factory=list)  # columns with a =SUM total row

    @property
    def file(self) -> str:
        return self.name.lower().replace(" ", "-").replace("'", "") + ".csv"


def _m(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def sheets(c: Contents) -> list[Sheet]:
    """Every table of the pack, in the order of the pages."""
    lia = c.liability
    out = [
        Sheet(
            "Owed by payer",
            ["payer", "owed", "provisional", "capped"],
            [
                [p["payer"], _m(p["owed"]), _m(p["provisional"]), _m(p["capped"])]
                for p in lia["payers"]
            ],
            {"owed", "provisional", "capped"},
            ["owed", "provisional", "capped"],
        ),
        Sheet(
            "Owed by borough",
            [
                "borough",
                "cases_tracked",
                "outcome_weeks",
                "owed_by_borough",
                "owed_by_top_up",
                "owed",
            ],
            [
                [
                    b["borough"],
                    b["cases_tracked"],
                    b["weeks"]["outcome"],
                    _m(b["owed_by_borough"]),
                    _m(b["owed_by_top_up"]),
                    _m(b["owed"]),
                ]
                for b in lia["boroughs"]
            ],
            {"owed_by_borough", "owed_by_top_up", "owed"},
            ["cases_tracked", "outcome_weeks", "owed_by_borough", "owed_by_top_up", "owed"],
        ),
        Sheet(
            "Cases",
            [
                "case",
                "borough",
                "intervention",
                "tracking_start",
                "tracking_end",
                "outcome_weeks",
                "in_care_weeks",
                "owed_by_borough",
                "owed_by_top_up",
                "owed",
            ],
            [
                [
                    x["case"],
                    x["borough"],
                    x["intervention"],
                    x["tracking_start"],
                    x["tracking_end"],
                    x["weeks"]["outcome"],
                    x["weeks"]["in_care"],
                    _m(x["owed_by_borough"]),
                    _m(x["owed_by_top_up"]),
                    _m(x["owed"]),
                ]
                for x in lia["cases"]
            ],
            {"owed_by_borough", "owed_by_top_up", "owed"},
            ["outcome_weeks", "in_care_weeks", "owed_by_borough", "owed_by_top_up", "owed"],
        ),
        Sheet(
            "Weeks",
            [
                "case",
                "week",
                "start",
                "end",
                "status",
                "days_in_care",
                "owed_by_borough",
                "owed_by_top_up",
                "capped",
                "terms",
                "because",
            ],
            [
                [
                    x["case"],
                    w["week"],
                    w["start"],
                    w["end"],
                    w["status"],
                    w["days_in_care"],
                    _m(w["owed"]["borough"]),
                    _m(w["owed"]["top_up"]),
                    _m(w["capped"]),
                    w["terms"],
                    " ".join(w["because"]),
                ]
                for x in c.cases
                for w in x["weeks"]
            ],
            {"owed_by_borough", "owed_by_top_up", "capped"},
            ["owed_by_borough", "owed_by_top_up"],
        ),
    ]
    money = ["claimed", "due_then", "due_now", "paid", "disputed", "adjustment"]
    out.append(
        Sheet(
            "Claims",
            ["claim", "payer", "period_end", *money],
            [
                [r["claim"], r["payer"], r["period_end"], *[_m(r["totals"][m]) for m in money]]
                for r in c.claims
            ],
            set(money),
            money,
        )
    )
    out.append(
        Sheet(
            "Claim lines",
            ["claim", "case", "weeks_after", *money, "because"],
            [
                [
                    r["claim"],
                    line["case"],
                    line.get("weeks_after"),
                    *[_m(line[m]) for m in money],
                    " ".join(line.get("because", [])),
                ]
                for r in c.claims
                for line in r["lines"]
            ],
            set(money),
            money,
        )
    )
    smoney = ["claimed", "due", "paid", "disputed", "adjustment"]
    out.append(
        Sheet(
            "Statements",
            ["payer", "claim", "period_end", "submitted", "lines", *smoney],
            [
                [
                    s["payer"],
                    x["claim"],
                    x["period_end"],
                    x["submitted"],
                    x["lines"],
                    *[_m(x[m]) for m in smoney],
                ]
                for s in c.statements
                for x in s["claims"]
            ],
            set(smoney),
        )
    )
    totals = ["claimed", "due", "paid", "disputed", "adjustments", "unclaimed", "balance"]
    out.append(
        Sheet(
            "Statement totals",
            ["payer", *totals],
            [[s["payer"], *[_m(s["totals"].get(k)) for k in totals]] for s in c.statements],
            set(totals),
        )
    )
    if c.diff is not None:
        out.append(
            Sheet(
                "Changes",
                [
                    "case",
                    "borough",
                    "week",
                    "end",
                    "status_before",
                    "status_after",
                    "owed_before",
                    "owed_after",
                    "owed_change",
                    "claims_moved",
                    "because",
                ],
                [
                    [
                        ch["case"],
                        ch["borough"],
                        ch["week"],
                        ch["end"],
                        (ch["before"] or {}).get("status"),
                        (ch["after"] or {}).get("status"),
                        _m((ch["before"] or {}).get("owed")),
                        _m((ch["after"] or {}).get("owed")),
                        _m(ch["owed_change"]),
                        " ".join(c.moves.get(i, [])),
                        " ".join(ch["because"]),
                    ]
                    for i, ch in enumerate(c.diff["changes"])
                ],
                {"owed_before", "owed_after", "owed_change"},
                ["owed_change"],
            )
        )
    out.append(
        Sheet(
            "SSDA903 returns",
            ["borough", "covers_until", "received_on", "care_events_recorded", "event", "source"],
            [
                [
                    r["borough"],
                    r["covers_until"],
                    r["received_on"],
                    r["care_events_recorded"],
                    f"#{r['position']}",
                    r["source"],
                ]
                for r in c.returns_903
            ],
        )
    )
    if c.returns is not None:
        fields = ["committed", "drawn", "distributed", "net"]
        out.append(
            Sheet(
                "Investors",
                ["investor", *fields, "money_multiple", "irr"],
                [
                    [
                        i["investor"],
                        *[_m(i[k]) for k in fields],
                        _m(i["money_multiple"]),
                        _m(i["irr"]),
                    ]
                    for i in c.returns["investors"]
                ],
                set(fields),
                fields,
            )
        )
        out.append(
            Sheet(
                "Capital flows",
                ["date", "investor", "kind", "amount", "allocation", "because"],
                [
                    [
                        x["date"],
                        x["investor"],
                        x["kind"],
                        _m(x["amount"]),
                        x["allocation"],
                        " ".join(x.get("because", [])),
                    ]
                    for x in c.returns["flows"]
                ],
                {"amount"},
                ["amount"],
            )
        )
    if c.finances is not None:
        income = c.finances["income"]
        out.append(
            Sheet(
                "Income",
                ["payer", "due", "received", "outstanding"],
                [
                    [p, _m(v["due"]), _m(v["received"]), _m(v["outstanding"])]
                    for p, v in income["by_payer"].items()
                ],
                {"due", "received", "outstanding"},
                ["due", "received", "outstanding"],
            )
        )
    return out


def cover_rows(c: Contents, command: str) -> list[tuple[str, str]]:
    return [
        ("contract", c.contract),
        ("as_of", c.as_of.isoformat()),
        ("known_at", c.known_at.isoformat() if c.known_at else "everything recorded"),
        ("since_known_at", c.since.isoformat() if c.since else ""),
        ("payer", c.payer or "(the whole contract)"),
        ("log head position", str(c.head[0])),
        ("log head chain hash", c.head[1]),
        ("verify", "verified" if c.verify["ok"] else f"FAILED: {c.verify['first_break']}"),
        ("command", command),
    ]


def write_csv(sheet: Sheet) -> bytes:
    """The sheet as CSV (with its total row when it has one): numbers as plain decimals."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(sheet.columns)
    for r in sheet.rows:
        writer.writerow(["" if v is None else v for v in r])
    if sheet.totals:
        writer.writerow(_total_row(sheet))
    return buffer.getvalue().encode("utf-8")


def _total_row(sheet: Sheet) -> list[Any]:
    out: list[Any] = []
    for i, name in enumerate(sheet.columns):
        if i == 0:
            out.append("total")
        elif name in sheet.totals:
            out.append(sum((r[i] or 0 for r in sheet.rows), Decimal(0)))
        else:
            out.append("")
    return out


def write_workbook(path: str, c: Contents, tables: Sequence[Sheet], command: str) -> None:
    import xlsxwriter
    from xlsxwriter.utility import xl_rowcol_to_cell

    day = datetime(c.as_of.year, c.as_of.month, c.as_of.day, 23, 59, 59)
    book = xlsxwriter.Workbook(
        path, {"strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False}
    )
    book.set_properties(
        {
            "title": f"Audit pack {c.contract} as of {c.as_of}",
            "author": "soc-ledger",
            "created": day,
        }
    )
    bold = book.add_format({"bold": True})
    pounds = book.add_format({"num_format": "£#,##0.00;-£#,##0.00"})
    total_pounds = book.add_format({"num_format": "£#,##0.00;-£#,##0.00", "bold": True, "top": 1})
    total_plain = book.add_format({"bold": True, "top": 1})

    cover = book.add_worksheet("Cover")
    cover.set_column(0, 0, 22)
    cover.set_column(1, 1, 80)
    for r, (k, v) in enumerate(cover_rows(c, command)):
        cover.write_string(r, 0, k, bold)
        cover.write_string(r, 1, v)
    base = len(cover_rows(c, command)) + 1
    cover.write_string(base, 0, "sheets", bold)
    for i, t in enumerate(tables):
        cover.write_url(base + i, 1, f"internal:'{t.name}'!A1", string=t.name)

    for t in tables:
        ws = book.add_worksheet(t.name)
        ws.freeze_panes(1, 0)
        for col, name in enumerate(t.columns):
            ws.write_string(0, col, name, bold)
            ws.set_column(col, col, max(12, len(name) + 2))
        for r, values in enumerate(t.rows, start=1):
            for col, value in enumerate(values):
                if value is None:
                    continue
                if isinstance(value, Decimal):
                    fmt = pounds if t.columns[col] in t.money else None
                    ws.write_number(r, col, float(value), fmt)
                elif isinstance(value, int):
                    ws.write_number(r, col, value)
                else:
                    ws.write_string(r, col, str(value))
        if t.totals:
            last = len(t.rows) + 1
            ws.write_string(last, 0, "total", total_plain)
            for col, name in enumerate(t.columns):
                if name not in t.totals:
                    continue
                cached = sum((v[col] or 0 for v in t.rows), Decimal(0))
                top = xl_rowcol_to_cell(1, col)
                bottom = xl_rowcol_to_cell(max(1, last - 1), col)
                formula = f"=SUM({top}:{bottom})" if t.rows else "=0"
                fmt = total_pounds if name in t.money else total_plain
                ws.write_formula(last, col, formula, fmt, float(cached))
    book.close()
