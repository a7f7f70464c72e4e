"""The pack's HTML pages: static, one stylesheet, no script, every text escaped.

Event fields are input from outside (a borough's file, a 903 return), so every value goes through
`html.escape` (`esc`) and every file name made from an id through `slug`, which keeps only
letters, digits and `-` and writes anything else as `_xxxx` (so two ids never share a file).
Each figure is a table cell with `data-figure="<what>"` and a link to the page it comes from.

Before/after: `money_cell("1234.50", "claims/S.html", "claim:S:due")` gives
`<td class="num" data-figure="claim:S:due"><a href="claims/S.html">1,234.50</a></td>`.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from soc_ledger.projections.views.pack.collect import Contents

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d2430; background: #f6f7f9; line-height: 1.4; }
header { background: #1f3a5f; color: #fff; padding: 0.8rem 1.5rem; }
header h1 { margin: 0; font-size: 1.25rem; font-weight: 600; }
header .context { font-size: 0.85rem; opacity: 0.85; }
nav { background: #e4e9f0; padding: 0.4rem 1.5rem; font-size: 0.9rem; }
nav a { margin-right: 1rem; color: #1f3a5f; text-decoration: none; }
nav a:hover { text-decoration: underline; }
main { padding: 1rem 1.5rem 3rem; max-width: 1200px; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 0.5rem; color: #1f3a5f; }
table { border-collapse: collapse; background: #fff; margin: 0.4rem 0 1rem;
        font-size: 0.88rem; box-shadow: 0 1px 2px rgba(0,0,0,0.08); }
th, td { padding: 0.3rem 0.6rem; border-bottom: 1px solid #e3e6ea; text-align: left;
         vertical-align: top; white-space: nowrap; }
td:last-child { white-space: normal; }
th { background: #f0f2f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 700; border-top: 2px solid #9aa5b1; }
a { color: #1f5fa8; }
.ok { color: #1b7f3b; font-weight: 600; }
.bad { color: #b3261e; font-weight: 600; }
.note { color: #5b6673; font-size: 0.85rem; max-width: 60rem; }
dl.cover { display: grid; grid-template-columns: max-content auto; gap: 0.25rem 1rem;
           background: #fff; padding: 0.8rem 1rem; box-shadow: 0 1px 2px rgba(0,0,0,0.08); }
dl.cover dt { font-weight: 600; } dl.cover dd { margin: 0; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.82rem; }
pre { background: #fff; padding: 0.4rem; margin: 0; white-space: pre-wrap;
      word-break: break-all; max-width: 48rem; }
img { max-width: 100%; background: #fff; }
"""


def esc(value: Any) -> str:
    return "" if value is None else html.escape(str(value), quote=True)


def slug(value: str) -> str:
    """A file name for an id: letters, digits and `-` kept, anything else as `_xxxx`."""
    return re.sub(r"[^A-Za-z0-9-]", lambda m: f"_{ord(m.group()):04x}", value)


def pounds(value: Any) -> str:
    return "" if value is None else f"{Decimal(value):,.2f}"


def link(text: str, href: str | None) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>' if href else esc(text)


def money_cell(value: Any, href: str | None = None, figure: str | None = None) -> str:
    data = f' data-figure="{esc(figure)}"' if figure else ""
    return f'<td class="num"{data}>{link(pounds(value), href)}</td>'


def num_cell(value: Any, href: str | None = None, figure: str | None = None) -> str:
    data = f' data-figure="{esc(figure)}"' if figure else ""
    return f'<td class="num"{data}>{link("" if value is None else str(value), href)}</td>'


def cell(value: Any, href: str | None = None) -> str:
    return f"<td>{link('' if value is None else str(value), href)}</td>"


def table(headers: Sequence[str], rows: Iterable[str], right: Iterable[str] = ()) -> str:
    aligned = set(right)
    head = "".join(f"<th{' class=num' if h in aligned else ''}>{esc(h)}</th>" for h in headers)
    body = "\n".join(rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def row(cells: Iterable[str], css: str | None = None) -> str:
    cls = f' class="{css}"' if css else ""
    return f"<tr{cls}>{''.join(cells)}</tr>"


def refs(because: Iterable[str], up: str) -> str:
    """Links to the events behind a figure (`#123` → events.html#e123)."""
    return " ".join(f'<a href="{up}events.html#e{esc(p[1:])}">{esc(p)}</a>' for p in because)


class Site:
    """Writes the pages of one pack: each `page` is a complete document with the shared header,
    the navigation of what this pack holds, and the stylesheet by relative path."""

    def __init__(self, c: Contents) -> None:
        self.c = c
        self.files: dict[str, str] = {"style.css": STYLE.lstrip()}
        links = [
            ("index.html", "Cover"),
            ("cases.html", "Cases"),
            ("claims.html", "Claims"),
            ("statements.html", "Statements"),
        ]
        if c.diff is not None:
            links.append(("changes.html", "Changes"))
        links.append(("returns-903.html", "SSDA903 returns"))
        if c.returns is not None:
            links.append(("investors.html", "Investors and finances"))
        links += [("plots.html", "Plots"), ("events.html", "Events")]
        self.nav = links

    def page(self, path: str, title: str, body: str) -> None:
        up = "../" * path.count("/")
        c = self.c
        context = (
            f"{esc(c.contract)} · as of {c.as_of} · known at {esc(c.known_at or 'everything')}"
            + (f" · pack of {esc(c.payer)}" if c.payer else "")
        )
        nav = "".join(f'<a href="{up}{href}">{esc(text)}</a>' for href, text in self.nav)
        self.files[path] = (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{esc(title)}</title>\n"
            f'<link rel="stylesheet" href="{up}style.css">\n</head>\n<body>\n'
            f'<header><h1>{esc(title)}</h1><div class="context">{context}</div></header>\n'
            f"<nav>{nav}</nav>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
        )


def build(c: Contents, plots: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Every page of the pack: path inside the pack -> HTML."""
    site = Site(c)
    site.page("index.html", f"Audit pack: {c.contract}", cover(c))
    site.page("cases.html", "Cases", cases(c))
    for case in c.cases:
        site.page(f"cases/{slug(case['case'])}.html", f"Case {case['case']}", case_page(case))
    site.page("claims.html", "Claims reconciled", claims(c))
    for claim in c.claims:
        site.page(
            f"claims/{slug(claim['claim'])}.html", f"Claim {claim['claim']}", claim_page(claim)
        )
    site.page("statements.html", "Statements of account", statements(c))
    if c.diff is not None:
        site.page("changes.html", f"What changed since known at {c.since}", changes(c))
    site.page("returns-903.html", "SSDA903 returns used", returns_903(c))
    if c.returns is not None and c.finances is not None:
        site.page("investors.html", "Investors' returns and finances", investors(c))
    site.page("plots.html", "Plots", plot_page(plots))
    site.page("events.html", "Events behind the figures", events(c))
    return site.files


# --- the cover ---------------------------------------------------------------------------------


def cover(c: Contents) -> str:
    v = c.verify
    verdict = (
        '<span class="ok">verified</span>'
        if v["ok"]
        else (f'<span class="bad">FAILED: {esc(v["first_break"])}</span>')
    )
    position, chain = c.head
    scope = {
        "contract": "the whole contract",
        "borough": f"borough {esc(c.payer)} only: its own cases, claims and statement",
        "top_up": f"the top-up funder {esc(c.payer)}: every case (it pays a share of each), "
        "its own claims and statement",
    }[c.scope]
    items = [
        ("Contract", esc(c.contract)),
        ("As of", esc(c.as_of)),
        ("Known at", esc(c.known_at or "everything recorded")),
        ("Changes since", esc(c.since or "not asked (--since-known-at)")),
        ("Scope", scope),
        ("Log head", f"position #{position}, chain hash <code>{esc(chain)}</code>"),
        ("verify", f"{verdict}: {esc(v['events'])} events"),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{val}</dd>" for k, val in items)
    checks = table(
        ["check", "result", "summary"],
        (
            row(
                [
                    cell(ch["check"]),
                    f'<td class="{"ok" if ch["ok"] else "bad"}">'
                    f"{'ok' if ch['ok'] else ('skipped' if ch['skipped'] else 'FAILED')}</td>",
                    cell(ch["summary"]),
                ]
            )
            for ch in v["checks"]
        ),
    )
    findings = [f for ch in v["checks"] for f in ch["findings"]]
    found = (
        "<ul>"
        + "".join(f"<li>{esc(json.dumps(f, sort_keys=True))}</li>" for f in findings)
        + "</ul>"
        if findings
        else ""
    )
    return (
        f'<dl class="cover">{dl}</dl>\n<h2>Integrity: the checks of <code>verify</code></h2>\n'
        f'<p class="note">The assertions check re-checks every recorded auditor sign-off '
        f"(BalanceAsserted) against the ledger as it stands.</p>\n{checks}{found}\n"
        f"{owed_tables(c)}"
    )


def owed_tables(c: Contents) -> str:
    lia = c.liability
    payer_rows = [
        row(
            [
                cell(p["payer"], f"statements.html#payer-{slug(p['payer'])}"),
                money_cell(
                    p["owed"],
                    f"statements.html#payer-{slug(p['payer'])}",
                    f"payer:{p['payer']}:owed",
                ),
                money_cell(p["provisional"], None, f"payer:{p['payer']}:provisional"),
                money_cell(p["capped"], None, f"payer:{p['payer']}:capped"),
            ]
        )
        for p in lia["payers"]
    ]
    if "totals" in lia:
        t = lia["totals"]
        payer_rows.append(
            row(
                [
                    cell("total"),
                    money_cell(t["owed"], "cases.html", "total:owed"),
                    money_cell(t["provisional"], None, "total:provisional"),
                    money_cell(t["capped"], None, "total:capped"),
                ],
                "total",
            )
        )
    borough_rows = [
        row(
            [
                cell(b["borough"], f"cases.html#borough-{slug(b['borough'])}"),
                num_cell(b["cases_tracked"], f"cases.html#borough-{slug(b['borough'])}"),
                num_cell(b["weeks"]["outcome"]),
                money_cell(
                    b["owed_by_borough"],
                    f"cases.html#borough-{slug(b['borough'])}",
                    f"borough:{b['borough']}:owed_by_borough",
                ),
                money_cell(b["owed_by_top_up"], None, f"borough:{b['borough']}:owed_by_top_up"),
                money_cell(b["owed"], None, f"borough:{b['borough']}:owed"),
            ]
        )
        for b in lia["boroughs"]
    ]
    return (
        "<h2>Owed by payer</h2>\n"
        + table(
            ["payer", "owed £", "provisional £", "capped £"],
            payer_rows,
            ["owed £", "provisional £", "capped £"],
        )
        + '\n<h2>Owed by borough</h2>\n<p class="note">A borough\'s own share, the top-up '
        "funder's share of its cases, and both together.</p>\n"
        + table(
            ["borough", "cases", "outcome weeks", "borough share £", "top-up share £", "total £"],
            borough_rows,
            ["cases", "outcome weeks", "borough share £", "top-up share £", "total £"],
        )
    )


# --- cases -------------------------------------------------------------------------------------


def cases(c: Contents) -> str:
    by_borough: dict[str, list[dict[str, Any]]] = {}
    for case in c.liability["cases"]:
        by_borough.setdefault(case["borough"], []).append(case)
    parts = []
    headers = [
        "case",
        "intervention",
        "tracking",
        "outcome weeks",
        "in care",
        "owed £",
        "borough share £",
        "top-up share £",
    ]
    for borough, rows in sorted(by_borough.items()):
        body = [
            row(
                [
                    cell(r["case"], f"cases/{slug(r['case'])}.html"),
                    cell(r["intervention"]),
                    cell(f"{r['tracking_start']} to {r['tracking_end']}"),
                    num_cell(r["weeks"]["outcome"]),
                    num_cell(r["weeks"]["in_care"]),
                    money_cell(
                        r["owed"], f"cases/{slug(r['case'])}.html", f"case:{r['case']}:owed"
                    ),
                    money_cell(r["owed_by_borough"], None, f"case:{r['case']}:owed_by_borough"),
                    money_cell(r["owed_by_top_up"], None, f"case:{r['case']}:owed_by_top_up"),
                ]
            )
            for r in rows
        ]
        parts.append(
            f'<h2 id="borough-{slug(borough)}">{esc(borough)}</h2>\n'
            + table(headers, body, headers[3:])
        )
    return "\n".join(parts) or "<p>No tracked case.</p>"


def case_page(case: dict[str, Any]) -> str:
    name = case["case"]
    facts = [
        ("Borough", case["borough"]),
        ("Intervention", case["intervention"]),
        ("First meeting", case["first_meeting"]),
        ("Ended", case["ended"]),
        ("Engagement", case["engagement"]),
        ("Tracking", f"{case['tracking_start']} to {case['tracking_end']}"),
    ]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    episodes = table(
        ["episode", "start", "end", "legal status", "placement", "events"],
        (
            row(
                [
                    cell(e["episode"]),
                    cell(e["start"]),
                    cell(e["end"]),
                    cell(e["legal_status"]),
                    cell(e["placement"]),
                    f"<td>{refs(e['because'], '../')}</td>",
                ]
            )
            for e in case["episodes"]
        ),
    )
    weeks = [
        row(
            [
                num_cell(w["week"]),
                cell(w["start"]),
                cell(w["end"]),
                cell(w["status"]),
                num_cell(w["days_in_care"]),
                money_cell(w["owed"]["borough"], None, f"week:{name}:{w['week']}:borough"),
                money_cell(w["owed"]["top_up"], None, f"week:{name}:{w['week']}:top_up"),
                money_cell(w["capped"]),
                cell(w["terms"]),
                f"<td>{refs(w['because'], '../')}</td>",
            ]
        )
        for w in case["weeks"]
    ]
    total_b = sum(Decimal(w["owed"]["borough"]) for w in case["weeks"])
    total_t = sum(Decimal(w["owed"]["top_up"]) for w in case["weeks"])
    weeks.append(
        row(
            [
                cell("total"),
                cell(""),
                cell(""),
                cell(""),
                cell(""),
                money_cell(total_b, None, f"case:{name}:weeks_borough"),
                money_cell(total_t, None, f"case:{name}:weeks_top_up"),
                cell(""),
                cell(""),
                cell(""),
            ],
            "total",
        )
    )
    headers = [
        "week",
        "start",
        "end",
        "status",
        "days in care",
        "borough £",
        "top-up £",
        "capped £",
        "terms",
        "events",
    ]
    return (
        f'<dl class="cover">{dl}</dl>\n<h2>Care episodes</h2>\n{episodes}\n'
        f"<h2>Weeks</h2>\n{table(headers, weeks, ['week', 'days in care', 'borough £', 'top-up £', 'capped £'])}"  # noqa: E501
    )


# --- claims and statements ---------------------------------------------------------------------

CLAIM_MONEY = ["claimed", "due_then", "due_now", "paid", "disputed", "adjustment"]


def claims(c: Contents) -> str:
    headers = ["claim", "payer", "period end", *[f"{m} £" for m in CLAIM_MONEY]]
    body = [
        row(
            [
                cell(r["claim"], f"claims/{slug(r['claim'])}.html"),
                cell(r["payer"]),
                cell(r["period_end"]),
                *[
                    money_cell(
                        r["totals"][m], f"claims/{slug(r['claim'])}.html", f"claim:{r['claim']}:{m}"
                    )
                    for m in CLAIM_MONEY
                ],
            ]
        )
        for r in c.claims
    ]
    return table(headers, body, headers[3:]) if body else "<p>No claim on the ledger.</p>"


def claim_page(r: dict[str, Any]) -> str:
    name = r["claim"]
    facts = [
        ("Payer", r["payer"]),
        ("Payee", r.get("payee")),
        ("Period end", r["period_end"]),
        ("Submitted", r.get("submitted")),
        ("Recorded on", r.get("recorded_on")),
    ]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    headers = ["case", "weeks after", *[f"{m} £" for m in CLAIM_MONEY], "why", "events"]
    lines = [
        row(
            [
                cell(line["case"], f"../cases/{slug(line['case'])}.html"),
                cell(line.get("weeks_after")),
                *[
                    money_cell(line[m], None, f"line:{name}:{line['case']}:{m}")
                    for m in CLAIM_MONEY
                ],
                cell(line.get("difference") or line.get("dispute_outcome")),
                f"<td>{refs(line.get('because', []), '../')}</td>",
            ]
        )
        for line in r["lines"]
    ]
    t = r["totals"]
    lines.append(
        row(
            [
                cell("total"),
                cell(""),
                *[money_cell(t[m], None, f"claim:{name}:{m}") for m in CLAIM_MONEY],
                cell(""),
                cell(""),
            ],
            "total",
        )
    )
    totals = table(["figure", "£"], (row([cell(k), money_cell(v)]) for k, v in t.items()), ["£"])
    payments = table(
        ["effective", "amount £", "key"],
        (
            row([cell(p["effective"]), money_cell(p["amount"]), cell(p["key"])])
            for p in r.get("payments", [])
        ),
        ["amount £"],
    )
    return (
        f'<dl class="cover">{dl}</dl>\n<h2>Lines</h2>\n{table(headers, lines, headers[2:-2])}\n'
        f"<h2>Totals</h2>\n{totals}\n<h2>Payments</h2>\n{payments}"
    )


STATEMENT_MONEY = ["claimed", "due", "paid", "disputed", "adjustment"]
STATEMENT_TOTALS = ["claimed", "due", "paid", "disputed", "adjustments", "unclaimed", "balance"]


def statements(c: Contents) -> str:
    parts = []
    for s in c.statements:
        payer = s["payer"]
        headers = [
            "claim",
            "period end",
            "submitted",
            "lines",
            *[f"{m} £" for m in STATEMENT_MONEY],
        ]
        body = [
            row(
                [
                    cell(r["claim"], f"claims/{slug(r['claim'])}.html"),
                    cell(r["period_end"]),
                    cell(r["submitted"]),
                    num_cell(r["lines"]),
                    *[
                        money_cell(
                            r[m],
                            f"claims/{slug(r['claim'])}.html",
                            f"statement:{payer}:{r['claim']}:{m}",
                        )
                        for m in STATEMENT_MONEY
                    ],
                ]
            )
            for r in s["claims"]
        ]
        totals = table(
            ["figure", "£"],
            (
                row([cell(k), money_cell(s["totals"][k], None, f"statement:{payer}:{k}")])
                for k in STATEMENT_TOTALS
                if k in s["totals"]
            ),
            ["£"],
        )
        unclaimed = s.get("unclaimed", {})
        note = ""
        if unclaimed.get("cases"):
            note = (
                "<p>Unclaimed cases: "
                + ", ".join(link(str(x), f"cases/{slug(str(x))}.html") for x in unclaimed["cases"])
                + "</p>"
            )
        parts.append(
            f'<h2 id="payer-{slug(payer)}">{esc(payer)}</h2>\n{totals}\n{note}'
            + table(headers, body, headers[3:])
        )
    return "\n".join(parts)


# --- changes, returns, investors, plots, events ------------------------------------------------


def changes(c: Contents) -> str:
    d = c.diff or {}
    by_payer = table(
        ["payer", "change £"],
        (
            row([cell(p, f"statements.html#payer-{slug(p)}"), money_cell(v, None, f"change:{p}")])
            for p, v in d.get("by_payer", {}).items()
        ),
        ["change £"],
    )
    rows = []
    for i, ch in enumerate(d.get("changes", [])):
        before, after = ch["before"] or {}, ch["after"] or {}
        rows.append(
            row(
                [
                    cell(ch["case"], f"cases/{slug(ch['case'])}.html"),
                    cell(ch["borough"]),
                    num_cell(ch["week"]),
                    cell(ch["end"]),
                    cell(f"{before.get('status', '—')} {pounds(before.get('owed'))}"),
                    cell(f"{after.get('status', '—')} {pounds(after.get('owed'))}"),
                    money_cell(ch["owed_change"]),
                    "<td>"
                    + " ".join(link(n, f"claims/{slug(n)}.html") for n in c.moves.get(i, []))
                    + "</td>",
                    f"<td>{refs(ch['because'], '')}</td>",
                ]
            )
        )
    total = f"<p>Total change: {esc(pounds(d['total_change']))}</p>" if "total_change" in d else ""
    return (
        f'<p class="note">Known at {esc(c.since)} against known at '
        f"{esc(c.known_at or 'everything')}, as of {esc(c.as_of)}.</p>\n{total}\n"
        f"<h2>Payers moved</h2>\n{by_payer}\n<h2>Weeks changed</h2>\n"
        + table(
            [
                "case",
                "borough",
                "week",
                "end",
                "before",
                "after",
                "change £",
                "claims moved",
                "events",
            ],
            rows,
            ["week", "change £"],
        )
    )


def returns_903(c: Contents) -> str:
    rows = [
        row(
            [
                cell(r["borough"]),
                cell(r["covers_until"]),
                cell(r["received_on"]),
                num_cell(r["care_events_recorded"]),
                cell(r["source"]),
                f"<td>{refs(['#' + str(r['position'])], '')}</td>",
            ]
        )
        for r in c.returns_903
    ]
    return (
        '<p class="note">Each return as the ledger keeps it (its CareDataReceived). Rows read '
        "and discarded are not kept: a row of a child who was not referred is counted and "
        "dropped at import and never stored (SPEC §6); <code>import-903</code> prints those "
        "counts when it runs. The care events recorded with a return are those of the "
        "borough's cases recorded the day it was received.</p>\n"
        + table(
            ["borough", "covers until", "received on", "care events recorded", "source", "event"],
            rows,
            ["care events recorded"],
        )
    )


def investors(c: Contents) -> str:
    r, f = c.returns or {}, c.finances or {}
    fields = ["committed", "drawn", "distributed", "net"]
    body = [
        row(
            [
                cell(i["investor"]),
                *[money_cell(i[k], None, f"investor:{i['investor']}:{k}") for k in fields],
                cell(i["money_multiple"]),
                cell(i["irr"]),
            ]
        )
        for i in r.get("investors", [])
    ]
    t = r.get("total")
    if t:
        body.append(
            row(
                [
                    cell("total"),
                    *[money_cell(t[k], None, f"investor:total:{k}") for k in fields],
                    cell(t["money_multiple"]),
                    cell(t["irr"]),
                ],
                "total",
            )
        )
    flows = [
        row(
            [
                cell(x["date"]),
                cell(x["investor"]),
                cell(x["kind"]),
                money_cell(x["amount"]),
                cell(x["allocation"]),
                f"<td>{refs(x.get('because', []), '')}</td>",
            ]
        )
        for x in r.get("flows", [])
    ]
    income = f.get("income", {})
    income_rows = [
        row(
            [
                cell(p, f"statements.html#payer-{slug(p)}"),
                *[
                    money_cell(v[k], None, f"income:{p}:{k}")
                    for k in ("due", "received", "outstanding")
                ],
            ]
        )
        for p, v in income.get("by_payer", {}).items()
    ]
    if income:
        income_rows.append(
            row(
                [
                    cell("total"),
                    *[
                        money_cell(income[k], None, f"income:{k}")
                        for k in ("due", "received", "outstanding")
                    ],
                ],
                "total",
            )
        )
    rest = {k: v for k, v in f.items() if k not in ("contract", "as_of", "known_at", "income")}
    return (
        "<h2>Investors' returns</h2>\n"
        + table(
            [
                "investor",
                "committed £",
                "drawn £",
                "distributed £",
                "net £",
                "money multiple",
                "IRR",
            ],
            body,
            ["committed £", "drawn £", "distributed £", "net £"],
        )
        + "\n<h2>Income by payer</h2>\n"
        + table(
            ["payer", "due £", "received £", "outstanding £"],
            income_rows,
            ["due £", "received £", "outstanding £"],
        )
        + "\n<h2>Finances (as the <code>finances</code> report gives them)</h2>\n"
        + f"<pre>{esc(json.dumps(rest, indent=2, sort_keys=True))}</pre>\n"
        + "<h2>Capital flows</h2>\n"
        + table(
            ["date", "investor", "kind", "amount £", "allocation", "events"], flows, ["amount £"]
        )
    )


def plot_page(plots: Sequence[tuple[str, str]]) -> str:
    return "\n".join(
        f'<h2>{esc(title)}</h2>\n<p><a href="{esc(path)}"><img src="{esc(path)}" '
        f'alt="{esc(title)}"></a></p>'
        for path, title in plots
    )


def events(c: Contents) -> str:
    tracked = {case["case"] for case in c.cases}
    rows = [
        f'<tr id="e{e["position"]}">'
        + "".join(
            [
                num_cell(f"#{e['position']}"),
                cell(e["type"]),
                cell(e["key"]),
                cell(e["case"], f"cases/{slug(e['case'])}.html" if e["case"] in tracked else None),
                cell(e["effective"]),
                cell(e["recorded_on"]),
                "<td><pre>"
                + esc(
                    json.dumps(e["fields"], indent=1, sort_keys=True, ensure_ascii=False)
                    if e["fields"]
                    else "(a contract-level event: its fields are left out of a borough's pack)"
                )
                + "</pre></td>",
            ]
        )
        + "</tr>"
        for e in sorted(c.events.values(), key=lambda e: e["position"])
    ]
    return (
        '<p class="note">Every event a figure of this pack names, as stored in the log.</p>\n'
        + table(
            ["position", "type", "key", "case", "effective", "recorded on", "fields"],
            rows,
            ["position"],
        )
    )
