"""Pictures for people who would rather look than read (`--plot FILE.png`, `.svg` or `.pdf`).

matplotlib with the `Agg` backend, drawn on a `Figure` of its own (no pyplot state), imported
only when a plot is asked for. Every picture has a title saying what it shows, labelled axes
with pounds on the money axis, and a legend. The numbers are the reports' own: nothing here
computes a figure, it only draws one (floats are made here, for drawing only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from soc_ledger.projections.views.render import OutputError, write_line, writing

if TYPE_CHECKING:
    from soc_ledger.domain.finances.finances import Finances
    from soc_ledger.domain.finances.returns import Returns
    from soc_ledger.domain.forecast import Forecast

WIDTH, HEIGHT, DPI = 11.0, 6.5, 110
# The file's suffix decides matplotlib's format: a name that says PDF must hold a PDF.
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def plot_format(path: str) -> str:
    """The picture format PATH's suffix names; any other suffix is refused before any work."""
    import os

    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise OutputError(
            f"--plot {path}: give a file ending in .png, .svg or .pdf "
            f"(not {suffix or 'no suffix'})"
        )
    return FORMATS[suffix]


def write_plotted(path: str) -> None:
    """On stderr, so that the report on stdout stays as it is without --plot."""
    write_line(f"picture written to {path}", err=True)


def liability_title(contract: str, as_of: date, known_at: date | None) -> str:
    return (
        f"{contract}: cumulative outcome payments owed by borough, as of {as_of.isoformat()}"
        f"\n(known at {known_at or 'everything recorded'}; each borough's own share, the "
        f"top-up funder's share dashed)"
    )


def _figure(ncols: int = 1, width: float = WIDTH):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, HEIGHT), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _pounds_axis(axis) -> None:
    from matplotlib.ticker import FuncFormatter

    def fmt(value: float, _pos) -> str:
        if abs(value) >= 1_000_000:
            return f"£{value / 1_000_000:,.1f}m"
        if abs(value) >= 1_000:
            return f"£{value / 1_000:,.0f}k"
        return f"£{value:,.0f}"

    axis.set_major_formatter(FuncFormatter(fmt))


def _short(value: Decimal) -> str:
    v = float(value)
    if abs(v) >= 1_000_000:
        return f"£{v / 1_000_000:,.2f}m"
    if abs(v) >= 1_000:
        return f"£{v / 1_000:,.0f}k"
    return f"£{v:,.0f}"


def _save(fig, path: str) -> None:
    with writing("--plot", path):
        fig.savefig(path, format=plot_format(path))


def plot_liability(
    series: Mapping[str, Sequence[tuple[date, Decimal]]],
    title: str,
    path: str,
    top_up_funder: str | None = None,
) -> None:
    """Cumulative amount owed by each borough (and the top-up funder) over time."""
    fig, (ax,) = _figure()
    colours = _colours(len(series))
    for i, (payer, points) in enumerate(series.items()):
        if not points:
            continue
        days = [d for d, _ in points]
        values = [float(v) for _, v in points]
        funder = payer == top_up_funder
        ax.step(
            days,
            values,
            where="post",
            color="black" if funder else colours[i],
            linestyle="--" if funder else "-",
            linewidth=2.2 if funder else 1.6,
            label=f"{payer}{' (top-up)' if funder else ''}: {_short(points[-1][1])}",
        )
    ax.set_title(title, fontsize=13)
    ax.set_xlabel("last day of the outcome week")
    ax.set_ylabel("cumulative amount owed")
    _pounds_axis(ax.yaxis)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(title="payer: owed at the end", loc="upper left", fontsize=9, ncols=2)
    else:
        ax.text(0.5, 0.5, "nothing owed yet", transform=ax.transAxes, ha="center")
    _save(fig, path)


def plot_finances(returns: Returns, finances: Finances, path: str) -> None:
    """Capital drawn from investors against capital returned to them, and costs vs income."""
    fig, (left, right) = _figure(2, width=13.0)
    by_kind: dict[str, dict[date, Decimal]] = {"drawn": {}, "distributed": {}}
    for flow in returns.flows:
        days = by_kind[flow.kind]
        days[flow.day] = days.get(flow.day, Decimal(0)) + abs(flow.amount)
    start = min((f.day for f in returns.flows), default=returns.as_of)
    for kind, label, colour in (
        ("drawn", "capital drawn", "tab:red"),
        ("distributed", "returned to investors", "tab:green"),
    ):
        days, values, running = [start], [0.0], Decimal(0)
        for day in sorted(by_kind[kind]):
            running += by_kind[kind][day]
            days.append(day)
            values.append(float(running))
        days.append(returns.as_of)
        values.append(float(running))
        left.step(days, values, where="post", color=colour, linewidth=2,
                  label=f"{label}: £{running:,.2f}")
    total = returns.total
    multiple = f"{total.money_multiple:.4f}" if total.money_multiple is not None else "-"
    irr = f"{total.irr * 100:.2f}%" if total.irr is not None else "none yet"
    left.set_title(
        f"Capital drawn from investors and returned to them\n(money multiple {multiple}, "
        f"IRR {irr})",
        fontsize=12,
    )
    left.set_xlabel("date")
    left.set_ylabel("cumulative amount")
    _pounds_axis(left.yaxis)
    left.grid(True, alpha=0.3)
    left.legend(loc="upper left")

    labels = ["outcome income due", "all costs"] + [
        c.category.replace("_", " ") for c in finances.costs
    ]
    amounts = [finances.income_due, finances.costs_total] + [c.amount for c in finances.costs]
    colours = ["tab:green", "tab:red"] + ["tab:blue"] * len(finances.costs)
    bars = right.barh(labels, [float(a) for a in amounts], color=colours)
    full = [f" £{finances.income_due:,.2f}", f" £{finances.costs_total:,.2f}"]
    notes = ["", ""] + [
        f" ({c.share * 100:.1f}%)" if c.share is not None else "" for c in finances.costs
    ]
    for i, (bar, amount, note) in enumerate(zip(bars, amounts, notes, strict=True)):
        text = full[i] if i < 2 else f" {_short(amount)}{note}"
        right.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, text, va="center",
                   fontsize=9)
    right.invert_yaxis()
    right.set_xlabel("amount (blue: cost lines, with their share of all costs)")
    _pounds_axis(right.xaxis)
    surplus = finances.surplus
    verdict = "surplus" if surplus >= 0 else "deficit"
    right.set_title(
        f"Costs by category against outcome income due\n({verdict}: income due - costs = "
        f"{'-' if surplus < 0 else ''}£{abs(surplus):,.2f})",
        fontsize=12,
    )
    right.grid(True, axis="x", alpha=0.3)
    right.margins(x=0.25)
    fig.suptitle(f"{finances.contract}: finances as of {finances.as_of.isoformat()}",
                 fontsize=14)
    _save(fig, path)


def plot_forecast(forecast: Forecast, path: str) -> None:
    """Per payer: owed so far, and the range still to come (minimum, expected, maximum)."""
    fig, (ax,) = _figure()
    rows = [p for p in forecast.payers if p.owed or p.maximum]
    labels = [p.payer for p in rows]
    owed = [float(p.owed) for p in rows]
    expected = [float(p.expected or 0) for p in rows]
    maximum = [float(p.maximum) for p in rows]
    ax.barh(labels, owed, color="tab:gray", label="owed at as_of")
    ax.barh(labels, expected, left=owed, color="tab:orange",
            label="expected still to come" if forecast.rate is not None else "_")
    ax.errorbar(
        [o + m for o, m in zip(owed, maximum, strict=True)],
        labels,
        xerr=[[m for m in maximum], [0.0] * len(rows)],
        fmt="none",
        ecolor="black",
        capsize=4,
        label="range still to come: minimum (nothing more) to maximum (every week pays)",
    )
    for label, o, p in zip(labels, owed, rows, strict=True):
        expected_text = _short(p.expected) if p.expected is not None else "-"
        ax.text(o + float(p.maximum), label, f"  to come: expected {expected_text}, "
                f"max {_short(p.maximum)}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.margins(x=0.3)
    rate = f"{forecast.rate_shown * 100:.2f}%" if forecast.rate is not None else "no rate yet"
    ax.set_title(
        f"{forecast.contract}: forecast still to pay for cases already referred, as of "
        f"{forecast.as_of.isoformat()}\n(expected at the verified outcome rate to date, "
        f"{rate}; after caps)",
        fontsize=12,
    )
    ax.set_xlabel("amount")
    ax.set_ylabel("payer")
    _pounds_axis(ax.xaxis)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=3, fontsize=9)
    if not rows:
        ax.text(0.5, 0.5, "nothing owed and nothing to come", transform=ax.transAxes,
                ha="center")
    _save(fig, path)


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab20" if n > 10 else "tab10"]
    return [cmap(i % cmap.N) for i in range(max(n, 1))]
