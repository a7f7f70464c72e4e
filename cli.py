"""The `soc-ledger` command: parse, call, render. No rule lives here."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from datetime import date

import click

FORMATS = click.Choice(["table", "json", "csv"])


class LedgerCommandError(click.ClickException):
    def show(self, file=None) -> None:  # one line on stderr, as SPEC §10 asks
        click.echo(f"error: {self.format_message()}", err=True)


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    from soc_ledger.domain.values import parse_iso_date

    try:
        return parse_iso_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


db_option = click.option(
    "--db",
    envvar="SOC_LEDGER_DB",
    default="sqlite:///ledger.db",
    show_default=True,
    help="sqlite:///path/to/ledger.db or postgresql://user@host:port/dbname",
)


def open_ledger(db: str):
    from soc_ledger.ledger.location import StoreError
    from soc_ledger.ledger.service import Ledger

    try:
        return Ledger(db)
    except StoreError as exc:
        raise LedgerCommandError(str(exc)) from None


class LedgerGroup(click.Group):
    """Store errors raised mid-command end as one line, like every other error."""

    def invoke(self, ctx: click.Context):
        from soc_ledger.ledger.location import StoreError

        # A report builds hundreds of thousands of objects that all live until it ends (facts,
        # weeks, rows) and makes almost no cyclic garbage. At the default threshold (a young
        # collection every 700 allocations) the collector keeps re-walking them: a quarter of
        # the time of `liability` at scale 10. Collect rarely instead; restored afterwards for
        # a process that runs commands in turn (the tests' CliRunner).
        threshold = gc.get_threshold()
        gc.set_threshold(50_000, 20, 100)
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            raise LedgerCommandError(str(exc)) from None
        finally:
            gc.set_threshold(*threshold)


@click.group(cls=LedgerGroup)
@click.version_option(package_name="soc-ledger")
def main() -> None:
    """soc-ledger: an event-sourced ledger for social outcomes contracts."""


@main.command()
@click.argument("file", type=click.File("r", encoding="utf-8"))
@db_option
def record(file, db: str) -> None:
    """Append events from a JSON Lines FILE (- for stdin): all or nothing."""
    from soc_ledger.ledger.recording import Rejected

    source = "<stdin>" if file.name == "<stdin>" else file.name

    def lines() -> Iterator[str]:
        """The file line by line, from its start (read again should the append be retried);
        never held whole, so a file of any size records in flat memory."""
        if file.seekable():
            file.seek(0)
        for text in file:
            yield text.removesuffix("\n")

    with open_ledger(db) as ledger:
        try:
            outcome = ledger.record_lines(lines if file.seekable() else lines(), source)
        except UnicodeDecodeError as exc:
            raise LedgerCommandError(f"{source}: not UTF-8 text ({exc.reason})") from None
        except Rejected as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            raise LedgerCommandError(f"{source}: {exc}") from None
    click.echo(
        f"{source}: appended {outcome.appended}, already present {outcome.already_present}"
        + (" (nothing new)" if outcome.appended == 0 else "")
    )


TRAIL_COLUMNS = [
    "position",
    "appended_at",
    "recorded_on",
    "effective",
    "type",
    "case",
    "key",
    "source",
]


@main.command()
@db_option
@click.option("--case", "case", help="only this case")
@click.option("--type", "types", multiple=True, help="only this event type (repeatable)")
@click.option("--known-at", callback=_date, help="only what was recorded on or before this date")
@click.option("--contract", help="only this contract")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def events(db: str, case, types, known_at, contract, fmt: str) -> None:
    """The audit trail: every event in log order, as stored."""
    from soc_ledger.domain.events import EVENT_TYPES
    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.projections.views.render import write_csv, write_json, write_table

    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise LedgerCommandError(f"--type: unknown event type {unknown[0]!r}")
    with open_ledger(db) as ledger:
        entries = list(ledger.trail(case, types, KnownAt.on(known_at), contract))
    if fmt == "json":
        write_json([dict(e.row(), event=e.event) for e in entries])
    elif fmt == "csv":
        write_csv(TRAIL_COLUMNS, (e.row() for e in entries))
    else:
        rows = []
        for e in entries:
            row = e.row()
            row["appended_at"] = row["appended_at"][:19]
            row["recorded_on"] = row["recorded_on"][:19]
            rows.append(row)
        write_table(f"{len(rows)} events", TRAIL_COLUMNS, rows, right=["position"])


@main.command()
@db_option
def rebuild(db: str) -> None:
    """Drop every read model and rebuild it from the event log (the log is never touched)."""
    import time

    from soc_ledger.ledger import index
    from soc_ledger.ledger.locks import writer_lock
    from soc_ledger.projections import latest, readmodel

    with open_ledger(db) as ledger, writer_lock(ledger.location):
        started = time.perf_counter()
        events = index.rebuild(ledger.engine, ledger.log)
        readmodel.rebuild(ledger.engine, ledger.log)
        latest.rebuild(ledger.engine, ledger.log)
        elapsed = time.perf_counter() - started
    click.echo(f"rebuilt the read models from {events} events in {elapsed:.2f} s")


# --- reports ---------------------------------------------------------------------------------


def as_of_option(default_help: str = "today"):
    return click.option(
        "--as-of", callback=_date, help=f"the world at the end of this day (default {default_help})"
    )


known_at_option = click.option(
    "--known-at", callback=_date, help="only what was recorded by this day (default: everything)"
)
contract_option = click.option("--contract", help="the contract (needed if the store has several)")
format_option = click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)


def _today() -> date:
    return date.today()


def _reporting(db: str):
    """Open the ledger with its read models caught up to the log."""
    from soc_ledger.projections import latest

    ledger = open_ledger(db)
    ledger.follow(latest.catch_up, latest.NAME)
    return ledger


def _query(fn, *args):
    from soc_ledger.domain.contract import DomainError
    from soc_ledger.domain.errors import QueryError

    try:
        return fn(*args)
    except (QueryError, DomainError) as exc:
        raise LedgerCommandError(str(exc)) from None


@main.command()
@db_option
@as_of_option()
@known_at_option
@contract_option
@click.option(
    "--by",
    "by",
    type=click.Choice(["contract", "borough", "case", "payer"]),
    default="contract",
    show_default=True,
    help="the rows of the table or CSV",
)
@click.option(
    "--week-rule",
    type=click.Choice(["fixed_blocks", "consecutive_runs"]),
    help="recompute every case under this rule (a what-if); default each case's own",
)
@format_option
@click.option("--plot", type=click.Path(dir_okay=False), help="also draw owed over time (PNG)")
def liability(db, as_of, known_at, contract, by, week_rule, fmt, plot=None) -> None:
    """What is owed for outcomes at (as_of, known_at): weeks, money, caps, days in care."""
    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.projections import queries
    from soc_ledger.projections.views.liability import liability_json

    as_of = as_of or _today()
    with _reporting(db) as ledger:
        contract = _query(queries.the_contract, ledger.engine, contract)
        known = KnownAt.on(known_at)
        result = _query(queries.liability_at, ledger.engine, contract, as_of, known, week_rule)
        rule = week_rule or _query(queries.terms, ledger.engine, contract, known).terms_on(
            as_of
        ).week_rule
        if plot:
            _plot_liability(ledger.engine, contract, as_of, known, known_at, week_rule, plot)
    data = liability_json(result, known_at, rule)
    _render_liability(data, by, fmt)


LIABILITY_COLUMNS = {
    "contract": [
        "cases_tracked",
        "outcome",
        "in_care",
        "unverified",
        "pending",
        "owed",
        "provisional",
        "capped",
        "share_out_of_care",
    ],
    "borough": [
        "borough",
        "cases_tracked",
        "outcome",
        "in_care",
        "unverified",
        "pending",
        "owed",
        "owed_top_up",
        "provisional",
        "capped",
        "share_out_of_care",
    ],
    "case": [
        "case",
        "borough",
        "intervention",
        "first_meeting",
        "tracking_start",
        "tracking_end",
        "outcome",
        "in_care",
        "unverified",
        "pending",
        "owed",
        "provisional",
        "capped",
    ],
    "payer": ["payer", "owed", "provisional", "capped"],
}
MONEY = [
    "owed",
    "owed_top_up",
    "provisional",
    "capped",
    "cases_tracked",
    "outcome",
    "in_care",
    "unverified",
    "pending",
    "share_out_of_care",
]


def _flat(row: dict) -> dict:
    out = dict(row)
    out.update(row.get("weeks", {}))
    return out


MONEY_FIELDS = {"owed", "owed_top_up", "provisional", "capped", "owed_borough", "owed_total"}


def _readable(row: dict) -> dict:
    from soc_ledger.projections.views.render import for_people

    return for_people(row, MONEY_FIELDS, ("share_out_of_care",))


def _render_liability(data: dict, by: str, fmt: str) -> None:
    from soc_ledger.projections.views.render import write_csv, write_json, write_table

    if fmt == "json":
        write_json(data)
        return
    rows = {
        "contract": [_flat(data["totals"])],
        "borough": [_flat(b) for b in data["boroughs"]],
        "case": [_flat(c) for c in data["cases"]],
        "payer": data["payers"],
    }[by]
    columns = LIABILITY_COLUMNS[by]
    if fmt == "csv":
        write_csv(columns, rows)
        return
    rows = [_readable(r) for r in rows]
    known = data["known_at"] or "everything recorded"
    title = (
        f"{data['contract']}: outcome liability as of {data['as_of']}, known at {known} "
        f"({data['week_rule']})"
    )
    write_table(title, columns, rows, right=MONEY)
    if by == "contract":
        write_table(
            "owed by payer",
            ["payer", "owed", "provisional", "capped"],
            [_readable(p) for p in data["payers"]],
            right=MONEY,
        )


@main.command()
@click.argument("case")
@db_option
@as_of_option()
@known_at_option
@contract_option
@click.option("--week", "week", type=int, help="only week K (0-based)")
@click.option("--week-rule", type=click.Choice(["fixed_blocks", "consecutive_runs"]))
@format_option
def explain(case, db, as_of, known_at, contract, week, week_rule, fmt) -> None:
    """Every week of CASE with its status, amounts and the events that decided it."""
    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.projections import queries
    from soc_ledger.projections.views.liability import ref_json, week_json
    from soc_ledger.projections.views.render import write_csv, write_json, write_table

    as_of = as_of or _today()
    with _reporting(db) as ledger:
        contract = _query(queries.the_contract, ledger.engine, contract)
        known = KnownAt.on(known_at)
        found = _query(queries.explain_case, ledger.engine, contract, case, as_of, known, week_rule)
        weeks = found.weeks
        if week is not None:
            weeks = [w for w in weeks if w.index == week]
            if not weeks:
                raise LedgerCommandError(f"case {case!r} has no week {week} at {as_of}")
        facts = found.facts
        refs = queries.event_refs(
            ledger.engine, [p for w in weeks for p in w.because] + list(facts.refs)
        )
    window = found.assessment.tracking if found.assessment else None
    data = {
        "contract": contract,
        "case": case,
        "as_of": as_of.isoformat(),
        "known_at": known_at.isoformat() if known_at else None,
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
    if fmt == "json":
        write_json(data)
        return
    rows = [
        {
            **w,
            "owed": w["owed"]["borough"] + " + " + w["owed"]["top_up"],
            "because": " ".join(w["because"]),
        }
        for w in data["weeks"]
    ]
    columns = [
        "week",
        "start",
        "end",
        "status",
        "days_in_care",
        "owed",
        "capped",
        "terms",
        "because",
    ]
    if fmt == "csv":
        write_csv(columns, rows)
        return
    status = data["engagement"]
    window = (
        f"; tracking {data['tracking_start']} to {data['tracking_end']}"
        if data["tracking_start"]
        else ""
    )
    click.echo(
        f"case {case} ({data['borough']}, {data['intervention']}): first meeting "
        f"{data['first_meeting']}, intervention ended {data['ended']}; {status}{window}"
    )
    for e in data["episodes"]:
        click.echo(
            f"  episode {e['episode']}: {e['start']} to {e['end'] or 'open'} "
            f"({e['legal_status']}, {e['placement']}) {' '.join(e['because'])}"
        )
    write_table(
        f"weeks as of {data['as_of']}",
        columns,
        rows,
        right=["week", "days_in_care", "owed", "capped"],
    )
    write_table(
        "events",
        ["event", "type", "key", "effective", "recorded_on"],
        list(data["events"].values()),
    )


@main.command()
@db_option
@click.option("--known-at", "k1", callback=_date, required=True, help="the earlier knowledge")
@click.option("--vs", "k2", callback=_date, help="the later knowledge (default: everything)")
@as_of_option("today")
@contract_option
@format_option
def diff(db, k1, k2, as_of, contract, fmt) -> None:
    """What changed between two states of knowledge, week by week, and which events did it."""
    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.projections import diff as diffs
    from soc_ledger.projections import queries
    from soc_ledger.projections.views.liability import diff_json
    from soc_ledger.projections.views.render import write_csv, write_json, write_table

    as_of = as_of or _today()
    first, second = KnownAt.on(k1), KnownAt.on(k2)
    with _reporting(db) as ledger:
        contract = _query(queries.the_contract, ledger.engine, contract)
        result = _query(diffs.diff, ledger.engine, contract, as_of, first, second)
    data = diff_json(result, first, second, k1, k2)
    if fmt == "json":
        write_json(data)
        return
    rows = [
        {
            "case": c["case"],
            "borough": c["borough"],
            "week": c["week"],
            "end": c["end"],
            "before": (c["before"] or {}).get("status", "-"),
            "after": (c["after"] or {}).get("status", "-"),
            "owed_change": c["owed_change"],
            "because": " ".join(c["because"]),
        }
        for c in data["changes"]
    ]
    columns = ["case", "borough", "week", "end", "before", "after", "owed_change", "because"]
    if fmt == "csv":
        write_csv(columns, rows)
        return
    write_table(
        f"changes as of {data['as_of']}: known at {k1} vs {data['vs'] or 'everything'}",
        columns,
        rows,
        right=["week", "owed_change"],
    )
    write_table(
        "events",
        ["event", "type", "key", "effective", "recorded_on"],
        list(data["events"].values()),
    )
    click.echo(
        f"owed {data['before']['owed']} -> {data['after']['owed']}: total change "
        f"{data['total_change']} ("
        + ", ".join(f"{p} {v}" for p, v in data["by_payer"].items())
        + ")"
    )


@main.command()
@db_option
@click.option(
    "--emit",
    type=click.Path(dir_okay=False, writable=True),
    help="write the history as JSON Lines to this file instead of recording it",
)
@click.option(
    "--scale",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="multiply the cohort (for benchmarks); the calibrated figures are for 1",
)
@format_option
def demo(db, emit, scale, fmt) -> None:
    """Build the reference contract (SPEC §12) into the store and print its statement."""
    from soc_ledger.ledger.demo import cohort as reference
    from soc_ledger.ledger.demo import history

    lines = list(history.emit(scale))
    if emit:
        with open(emit, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        click.echo(f"{emit}: {len(lines)} events of the reference contract (scale {scale})")
        return
    from soc_ledger.ledger.recording import Rejected

    with open_ledger(db) as ledger:
        try:
            outcome = ledger.record_lines(lines, f"demo(scale={scale})")
        except Rejected as exc:
            for problem in exc.problems[:20]:
                click.echo(str(problem), err=True)
            raise LedgerCommandError(f"demo: {exc}") from None
    if fmt == "table":
        click.echo(
            f"reference contract: appended {outcome.appended}, "
            f"already present {outcome.already_present}"
        )
    ctx = click.get_current_context()
    ctx.invoke(
        liability,
        db=db,
        as_of=reference.AS_OF,
        known_at=None,
        contract=reference.CONTRACT,
        by="borough" if fmt == "table" else "contract",
        week_rule=None,
        fmt=fmt,
    )
    if fmt == "table":
        ctx.invoke(
            liability,
            db=db,
            as_of=reference.AS_OF,
            known_at=None,
            contract=reference.CONTRACT,
            by="contract",
            week_rule=None,
            fmt=fmt,
        )


IMPORT_903_ROWS = [
    ("rows", "episode rows read"),
    ("header_children", "children in the header table"),
    ("children", "children in the episodes table"),
    ("children_matched", "children matched to referred cases"),
    ("cases_matched", "referred cases in the return"),
    ("cases_absent", "referred cases absent (not in care in the period)"),
    ("rows_unmatched", "rows discarded: child not referred (never stored)"),
    ("rows_outside", "rows ignored: no day in the period"),
    ("rows_used", "rows used"),
    ("episodes_new", "episodes new"),
    ("episodes_corrected", "episodes corrected"),
    ("episodes_retracted", "episodes retracted"),
    ("episodes_unchanged", "episodes unchanged"),
]


def _import_progress():
    """A rich progress bar on stderr, only when stderr is a terminal."""
    import contextlib

    if not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import Progress

    return Progress(console=Console(stderr=True), transient=True)


@main.command("import-903")
@click.argument("header", type=click.Path(exists=True, dir_okay=False))
@click.argument("episodes", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--borough", required=True, help="the borough whose return this is")
@click.option("--period-end", callback=_date, help="last day of the period the return covers")
@click.option(
    "--period-start", callback=_date, help="first day (default: the day after a year earlier)"
)
@click.option("--year", type=int, help="collection year ending 31 March of YEAR")
@click.option("--received-on", required=True, callback=_date, help="when the return came in")
@contract_option
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def import_903(
    header, episodes, borough, period_end, period_start, year, received_on, contract, db, fmt
) -> None:
    """Import an SSDA903 return: HEADER and EPISODES CSV tables, or one XML file.

    Only rows of the borough's referred children are used (the rest are counted and
    discarded, never stored); episodes are clipped to the period; a resubmission of a period
    supersedes the earlier return. All or nothing: any problem in a used row rejects the
    whole return and every problem is listed.
    """
    from soc_ledger.ledger.recording import Rejected
    from soc_ledger.ledger.ssda903.importing import import_return
    from soc_ledger.ledger.ssda903.period import Period, ReturnError
    from soc_ledger.ledger.ssda903.reading import read_return
    from soc_ledger.projections.facts_now import FACTS_NOW
    from soc_ledger.projections.views.render import write_json, write_table

    name = episodes or header
    try:
        period = Period.of(period_end, year, period_start)
        with _import_progress() as bar:
            progress = None
            if bar is not None:
                task = bar.add_task(f"reading {name}", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

            ret = read_return(header, episodes, progress)
        with open_ledger(db) as ledger:
            result = import_return(ledger, FACTS_NOW, ret, borough, period, received_on, contract)
    except ReturnError as exc:
        raise LedgerCommandError(str(exc)) from None
    except Rejected as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise LedgerCommandError(f"{name}: {exc}") from None
    summary, outcome = result.summary, result.outcome
    covered = result.covered_until.isoformat() if result.covered_until else None
    if fmt == "json":
        write_json(
            dict(
                summary.as_dict(),
                contract=result.contract,
                appended=outcome.appended,
                already_present=outcome.already_present,
                nothing_new=result.nothing_new,
                covered_until=covered,
            )
        )
        return
    click.echo(
        f"{name}: {borough} {period}, received {received_on}: appended {outcome.appended}, "
        f"already present {outcome.already_present}"
        + (" (nothing new: this return is already imported)" if result.nothing_new else "")
    )
    rows = [{"": label, "count": getattr(summary, field)} for field, label in IMPORT_903_ROWS]
    rows.append({"": f"care data of {borough} verified to", "count": covered or "-"})
    write_table(None, ["", "count"], rows, right=["count"])


# --- investors, finances, baselines and forecasts (SPEC §8, §9) ------------------------------

plot_option = click.option(
    "--plot", type=click.Path(dir_okay=False), help="also draw the picture to this PNG file"
)


def _people(row: dict, money_fields) -> dict:
    from soc_ledger.projections.views.render import for_people

    return for_people(row, money_fields, ("share", "attainment", "irr"))


def _plotted(path: str) -> None:
    click.echo(f"picture written to {path}", err=True)


def _plot_liability(engine, contract, as_of, known, known_at, week_rule, path) -> None:
    from soc_ledger.projections import finances as money_rules
    from soc_ledger.projections.queries import liability_with_weeks
    from soc_ledger.projections.views.plots import plot_liability

    result = _query(liability_with_weeks, engine, contract, as_of, known, week_rule)
    title = (
        f"{contract}: cumulative outcome payments owed by borough, as of {as_of.isoformat()}"
        f"\n(known at {known_at or 'everything recorded'}; each borough's own share, the "
        f"top-up funder's share dashed)"
    )
    plot_liability(
        money_rules.owed_over_time(result), title, path, top_up_funder=result.top_up_funder
    )
    _plotted(path)


RETURNS_COLUMNS = [
    "investor", "committed", "drawn", "distributed", "net", "money_multiple", "irr",
]


@main.command("returns")
@db_option
@as_of_option()
@known_at_option
@contract_option
@format_option
def returns_command(db, as_of, known_at, contract, fmt) -> None:
    """Investors' returns: committed, drawn, distributed, net cash, money multiple, IRR."""
    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.projections import finances as money_rules
    from soc_ledger.projections import queries
    from soc_ledger.projections.views.finance import returns_json
    from soc_ledger.projections.views.render import write_csv, write_json, write_table

    as_of = as_of or _today()
    with _reporting(db) as ledger:
        contract = _query(queries.the_contract, ledger.engine, contract)
        result = _query(
            money_rules.returns_at, ledger.engine, contract, as_of, KnownAt.on(known_at)
        )
    data = returns_json(result, known_at)
    if fmt == "json":
        write_json(data)
        return
    rows = [*data["investors"], data["total"]]
    if fmt == "csv":
        write_csv(RETURNS_COLUMNS, rows)
        return
    money_fields = ("committed", "drawn", "distributed", "net")
    write_table(
        f"{contract}: investors' returns as of {data['as_of']}, known at "
        f"{known_at or 'everything recorded'}",
        RETURNS_COLUMNS,
        [{**_people(r, money_fields), "irr": _irr_text(r["irr"])} for r in rows],
        right=RETURNS_COLUMNS[1:],
    )
    click.echo(
        "money multiple = distributed / drawn; IRR = XIRR of drawdowns (-) and distributions "
        "(+), actual/365, none before the first distribution"
    )


def _irr_text(irr: str | None) -> str:
    from decimal import Decimal

    return "none" if irr is None else f"{Decimal(irr) * 100:.4f}%"


@main.command("finances")
@db_option
@as_of_option()
@known_at_option
@contract_option
@format_option
@plot_option
def finances_command(db, as_of, known_at, contract, fmt, plot) -> None:
    """Contract finances: income due and received, costs, surplus, fees, avoided care costs."""
    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.projections import finances as money_rules
    from soc_ledger.projections import queries
    from soc_ledger.projections.views.finance import finances_json
    from soc_ledger.projections.views.render import write_csv, write_json

    as_of = as_of or _today()
    known = KnownAt.on(known_at)
    with _reporting(db) as ledger:
        contract = _query(queries.the_contract, ledger.engine, contract)
        result = _query(money_rules.finances_at, ledger.engine, contract, as_of, known)
        if plot:
            from soc_ledger.projections.views.plots import plot_finances

            invested = _query(money_rules.returns_at, ledger.engine, contract, as_of, known)
            plot_finances(invested, result, plot)
            _plotted(plot)
    data = finances_json(result, known_at)
    if fmt == "json":
        write_json(data)
    elif fmt == "csv":
        write_csv(["section", "item", "amount", "share"], _finance_rows(data))
    else:
        _finance_tables(data, known_at)


def _finance_rows(data: dict) -> list[dict]:
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


def _finance_tables(data: dict, known_at) -> None:
    from decimal import Decimal

    from soc_ledger.projections.views.render import write_table

    known = known_at or "everything recorded"
    income = [{"payer": payer, **p} for payer, p in data["income"]["by_payer"].items()]
    income.append({"payer": "total", "due": data["income"]["due"],
                   "received": data["income"]["received"],
                   "outstanding": data["income"]["outstanding"]})
    money_fields = ("due", "received", "outstanding", "amount")
    write_table(
        f"{data['contract']}: outcome income by payer as of {data['as_of']}, known at {known}",
        ["payer", "due", "received", "outstanding"],
        [_people(r, money_fields) for r in income],
        right=["due", "received", "outstanding"],
    )
    costs = [{"category": c, **v} for c, v in data["costs"]["by_category"].items()]
    costs.append({"category": "total", "amount": data["costs"]["total"],
                  "share": "1" if costs else None})
    write_table(
        "costs by category",
        ["category", "amount", "share"],
        [_people(r, money_fields) for r in costs],
        right=["amount", "share"],
    )
    fees = data["co_commissioning_fees"]
    years = sorted({y["year"] for f in fees["by_borough"].values() for y in f["years"]})
    fee_rows = []
    for borough, f in fees["by_borough"].items():
        row = {"borough": borough, "total": f"{Decimal(f['total']):,.2f}"}
        row.update({y["year"]: f"{Decimal(y['amount']):,.2f}" for y in f["years"]})
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
             else f"{Decimal(value):,.2f}"}
            for label, value in summary
        ],
        right=["amount"],
    )
    if surplus < 0:
        click.echo(
            f"costs exceed outcome income due by {-surplus:,.2f}: a deficit of {-surplus:,.2f}"
        )
    if avoided:
        click.echo(
            f"avoided care costs: {avoided['outcome_weeks']} outcome weeks x "
            f"{avoided['counterfactual_rate']} x {Decimal(avoided['weekly_cost']):,.2f} a week "
            f"(unit costs of {avoided['unit_costs_effective']})"
        )


BASELINE_COLUMNS = ["measure", "target", "actual", "difference", "attainment"]


@main.command("baseline")
@click.option("--variation", required=True, help="the variation whose targets to compare with")
@db_option
@as_of_option()
@known_at_option
@contract_option
@format_option
def baseline_command(variation, db, as_of, known_at, contract, fmt) -> None:
    """Actuals against a variation's baseline targets, in full and against its profile."""
    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.projections import baseline as baselines
    from soc_ledger.projections import queries
    from soc_ledger.projections.views.finance import baseline_json
    from soc_ledger.projections.views.render import write_csv, write_json, write_table

    as_of = as_of or _today()
    with _reporting(db) as ledger:
        contract = _query(queries.the_contract, ledger.engine, contract)
        result = _query(
            baselines.baseline_at, ledger.engine, contract, variation, as_of,
            KnownAt.on(known_at),
        )
    data = baseline_json(result, known_at)
    if fmt == "json":
        write_json(data)
        return
    if fmt == "csv":
        write_csv(BASELINE_COLUMNS, data["in_full"])
        return
    money_fields = ("target", "actual", "difference")

    def readable(row: dict) -> dict:
        is_money = isinstance(row["target"], str)
        return _people(row, money_fields if is_money else ())

    write_table(
        f"{contract}: actuals as of {data['as_of']} (known at "
        f"{known_at or 'everything recorded'}) against the baseline of variation "
        f"{data['variation']} ({data['description']}; effective {data['effective']})",
        BASELINE_COLUMNS,
        [readable(r) for r in data["in_full"]],
        right=BASELINE_COLUMNS[1:],
    )
    if data["per_borough"]:
        write_table(
            "referrals (first family meetings) by borough",
            ["borough", "target", "actual", "difference", "attainment"],
            [_people(r, ()) for r in data["per_borough"]],
            right=["target", "actual", "difference", "attainment"],
        )
    if data["profile"]:
        rows = []
        for m in data["profile"]:
            ref, pay = m["referrals"], m["outcome_payments"]
            rows.append(
                _people(
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
        columns = ["milestone", "referrals_target", "referrals_actual", "payments_target",
                   "payments_actual", "payments_difference"]
        write_table(
            "cumulative profile: each milestone against the actuals at its date "
            "(blank: not reached by as_of)",
            columns,
            rows,
            right=columns[1:],
        )
    due = data["at_as_of"]
    if due:
        ref, pay = due["referrals"], due["outcome_payments"]
        click.echo(
            f"against the profile at {data['as_of']} (milestone {due['milestone']}): referrals "
            f"{ref['actual']} against {ref['target']}; outcome payments "
            f"{_pounds_text(pay['actual'])} against {_pounds_text(pay['target'])}"
        )
    elif data["profile"]:
        click.echo(f"no profile milestone falls on or before {data['as_of']}")


def _pounds_text(value: str) -> str:
    from decimal import Decimal

    return f"{Decimal(value):,.2f}"


FORECAST_COLUMNS = ["payer", "owed", "remaining_weeks", "minimum", "expected", "maximum"]


@main.command("forecast")
@db_option
@as_of_option()
@known_at_option
@contract_option
@format_option
@plot_option
def forecast_command(db, as_of, known_at, contract, fmt, plot) -> None:
    """Still to pay for cases already referred: minimum, expected, maximum, after caps."""
    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.projections import forecast as forecasts
    from soc_ledger.projections import queries
    from soc_ledger.projections.views.finance import forecast_json
    from soc_ledger.projections.views.render import write_csv, write_json, write_table

    as_of = as_of or _today()
    with _reporting(db) as ledger:
        contract = _query(queries.the_contract, ledger.engine, contract)
        result = _query(
            forecasts.forecast_at, ledger.engine, contract, as_of, KnownAt.on(known_at)
        )
    if plot:
        from soc_ledger.projections.views.plots import plot_forecast

        plot_forecast(result, plot)
        _plotted(plot)
    data = forecast_json(result, known_at)
    if fmt == "json":
        write_json(data)
        return
    rows = [*data["payers"], data["total"]]
    if fmt == "csv":
        write_csv(FORECAST_COLUMNS, rows)
        return
    write_table(
        f"{contract}: still to pay for cases already referred, as of {data['as_of']}, known "
        f"at {known_at or 'everything recorded'} (after caps)",
        FORECAST_COLUMNS,
        [_people(r, ("owed", "minimum", "expected", "maximum")) for r in rows],
        right=FORECAST_COLUMNS[1:],
    )
    rate = data["outcome_rate"]
    basis = data["rate_basis"]
    cases, weeks = data["cases"], data["remaining_weeks"]
    click.echo(
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
    click.echo(
        "a borough's maximum is the most it alone could be billed; the total is the sum"
    )


# --- integrity (SPEC §11) ----------------------------------------------------------------------


@main.command()
@db_option
@click.option(
    "--export",
    "export_to",
    type=click.Path(dir_okay=False, writable=True),
    help="once the store verifies, write its chain heads to this file (JSON) for a later --against",
)
@click.option(
    "--against",
    type=click.File("r", encoding="utf-8"),
    help="chain heads exported earlier: nothing up to them may have changed",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def verify(db, export_to, against, fmt) -> None:
    """Check the store: the hash chain, stream versions, privacy, every aggregate replayed,
    every projection rebuilt and compared, every balance assertion re-checked.

    Exits 1 naming the first break (by log position where there is one).
    """
    import json

    from soc_ledger.ledger import integrity
    from soc_ledger.ledger.location import StoreError
    from soc_ledger.projections import verification
    from soc_ledger.projections.views.render import write_json, write_table

    exported = None
    if against is not None:
        try:
            exported = integrity.load_export(against.read())
        except integrity.AssertionProblem as exc:
            raise LedgerCommandError(f"--against {against.name}: {exc}") from None
    with open_ledger(db) as ledger:
        try:
            report = verification.verify(ledger, exported)
        except StoreError as exc:
            raise LedgerCommandError(str(exc)) from None
    if fmt == "json":
        write_json(report.as_json())
    else:
        write_table(None, ["check", "result", "detail"], integrity.describe(report.checks))
    first = report.first_break
    if first is not None:
        for finding in report.findings:
            click.echo(str(finding), err=True)
        raise LedgerCommandError(f"verify: {first}")
    position, head = report.head
    if export_to:
        with open(export_to, "w", encoding="utf-8") as handle:
            json.dump(report.export(), handle, indent=2)
            handle.write("\n")
    if fmt == "table":
        click.echo(f"verified: {report.events} events, head #{position} {head}")
        if export_to:
            click.echo(f"chain heads written to {export_to}")


@main.command("assert")
@db_option
@click.option("--scope", required=True, help="contract, a borough code, or the top-up funder")
@click.option(
    "--figure", required=True, type=click.Choice(["owed", "provisional", "outcome_weeks"])
)
@click.option("--as-of", required=True, callback=_date, help="the world at the end of this day")
@known_at_option
@click.option("--by", "by", required=True, help="who signs the figure off (e.g. the auditor)")
@click.option("--value", help="the figure expected: if it differs, nothing is recorded")
@contract_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def assert_balance(db, scope, figure, as_of, known_at, by, value, contract, fmt) -> None:
    """Record an auditor's sign-off (BalanceAsserted) of a figure at (as_of, known_at).

    Every later `verify` re-checks it: a correction recorded after --known-at cannot break it;
    anything that does is reported.
    """
    from soc_ledger.domain.values import parse_number
    from soc_ledger.ledger import integrity
    from soc_ledger.ledger.location import StoreError
    from soc_ledger.ledger.recording import Rejected
    from soc_ledger.projections import verification
    from soc_ledger.projections.views.render import write_json

    expected = None
    if value is not None:
        try:
            expected = parse_number(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--value") from None
    with open_ledger(db) as ledger:
        try:
            contract, asserted = verification.figure_to_assert(
                ledger, contract, scope, figure, as_of, known_at, expected
            )
            position = integrity.assert_balance(
                ledger, contract, scope, figure, as_of, known_at, by, asserted
            )
        except (integrity.AssertionProblem, StoreError) as exc:
            raise LedgerCommandError(str(exc)) from None
        except Rejected as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            raise LedgerCommandError(f"assert: {exc}") from None
    known = known_at.isoformat() if known_at else None
    if fmt == "json":
        write_json(
            {
                "contract": contract,
                "scope": scope,
                "figure": figure,
                "as_of": as_of.isoformat(),
                "known_at": known,
                "value": str(asserted),
                "by": by,
                "position": position,
            }
        )
        return
    click.echo(
        f"asserted: {figure} of {scope} in {contract} as of {as_of}, known at "
        f"{known or 'everything'}: {asserted} (BalanceAsserted #{position} by {by})"
    )


# --- claims (SPEC §7) ------------------------------------------------------------------------


@main.command()
@click.argument("claim")
@db_option
@as_of_option("today: payments and disputes by then")
@known_at_option
@contract_option
@format_option
def reconcile(claim, db, as_of, known_at, contract, fmt) -> None:
    """CLAIM line by line: claimed, due then and now, paid, disputed, and why they differ."""
    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.projections import claims, queries
    from soc_ledger.projections.views.claims import (
        RECONCILE_COLUMNS,
        RECONCILE_MONEY,
        readable,
        reconcile_json,
        reconcile_rows,
    )
    from soc_ledger.projections.views.render import write_csv, write_json, write_table

    as_of = as_of or _today()
    with _reporting(db) as ledger:
        contract = _query(queries.the_contract, ledger.engine, contract)
        result = _query(
            claims.reconcile, ledger.engine, contract, claim, as_of, KnownAt.on(known_at)
        )
    data = reconcile_json(result, known_at)
    if fmt == "json":
        write_json(data)
        return
    rows = reconcile_rows(data)
    if fmt == "csv":
        write_csv(RECONCILE_COLUMNS, rows)
        return
    click.echo(
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
    click.echo(
        f"claimed {totals['claimed']}, due then {totals['due_then']}, due now "
        f"{totals['due_now']}, paid {totals['paid']}, still disputed {totals['disputed']}"
    )
    payee = data["payee"] or "the provider"
    click.echo(
        f"adjustment: {data['payer']} owes {payee} {totals['owed_by_payer']}; {payee} owes "
        f"{data['payer']} {totals['owed_to_payer']}; net {totals['adjustment']}"
    )
    if data["events"]:
        write_table(
            "correcting events",
            ["event", "type", "key", "effective", "recorded_on"],
            list(data["events"].values()),
        )


@main.command()
@click.argument("payer")
@db_option
@as_of_option()
@known_at_option
@contract_option
@format_option
def statement(payer, db, as_of, known_at, contract, fmt) -> None:
    """PAYER's account (a borough or the top-up funder): claims, due, paid, balance."""
    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.projections import claims, queries
    from soc_ledger.projections.views.claims import (
        STATEMENT_COLUMNS,
        STATEMENT_MONEY,
        readable,
        statement_json,
        statement_rows,
    )
    from soc_ledger.projections.views.render import write_csv, write_json, write_table

    as_of = as_of or _today()
    with _reporting(db) as ledger:
        contract = _query(queries.the_contract, ledger.engine, contract)
        result = _query(
            claims.statement, ledger.engine, contract, payer, as_of, KnownAt.on(known_at)
        )
    data = statement_json(result, known_at)
    if fmt == "json":
        write_json(data)
        return
    rows = statement_rows(data)
    if fmt == "csv":
        write_csv(STATEMENT_COLUMNS, rows)
        return
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
    click.echo(
        f"due {totals['due']} ({totals['unclaimed']} not yet claimed), paid {totals['paid']}, "
        f"in dispute {totals['disputed']}: balance {balance} "
        + (f"({balance[1:]} owed to {payer})" if balance.startswith("-") else f"owed by {payer}")
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
