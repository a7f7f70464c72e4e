"""The `soc-ledger` command: parse, call, render. No rule lives here."""

from __future__ import annotations

import sys
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


@click.group()
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
    try:
        lines = file.read().splitlines()
    except UnicodeDecodeError as exc:
        raise LedgerCommandError(f"{source}: not UTF-8 text ({exc.reason})") from None
    with open_ledger(db) as ledger:
        try:
            outcome = ledger.record_lines(lines, source)
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
    from soc_ledger.render import write_csv, write_json, write_table

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
    from soc_ledger.projections.queries import QueryError

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
def liability(db, as_of, known_at, contract, by, week_rule, fmt) -> None:
    """What is owed for outcomes at (as_of, known_at): weeks, money, caps, days in care."""
    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.projections import queries
    from soc_ledger.views import liability_json

    as_of = as_of or _today()
    with _reporting(db) as ledger:
        contract = _query(queries.the_contract, ledger.engine, contract)
        known = KnownAt.on(known_at)
        result = _query(queries.liability_at, ledger.engine, contract, as_of, known, week_rule)
        rule = week_rule or _query(queries.terms, ledger.engine, contract, known).terms_on(
            as_of
        ).week_rule
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
    """For people: thousands separators in money, a share as a percentage."""
    from decimal import Decimal

    out = dict(row)
    for name in MONEY_FIELDS & set(row):
        out[name] = f"{Decimal(row[name]):,.2f}"
    if row.get("share_out_of_care") is not None:
        out["share_out_of_care"] = f"{Decimal(row['share_out_of_care']) * 100:.2f}%"
    return out


def _render_liability(data: dict, by: str, fmt: str) -> None:
    from soc_ledger.render import write_csv, write_json, write_table

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
    from soc_ledger.render import write_csv, write_json, write_table
    from soc_ledger.views import ref_json, week_json

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
    from soc_ledger.projections import queries
    from soc_ledger.render import write_csv, write_json, write_table
    from soc_ledger.views import diff_json

    as_of = as_of or _today()
    first, second = KnownAt.on(k1), KnownAt.on(k2)
    with _reporting(db) as ledger:
        contract = _query(queries.the_contract, ledger.engine, contract)
        result = _query(queries.diff, ledger.engine, contract, as_of, first, second)
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
    from soc_ledger import demo as reference

    lines = list(reference.emit(scale))
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
    from soc_ledger.ledger import ssda903
    from soc_ledger.ledger.recording import Rejected
    from soc_ledger.render import write_json, write_table

    name = episodes or header
    try:
        period = ssda903.Period.of(period_end, year, period_start)
        with _import_progress() as bar:
            progress = None
            if bar is not None:
                task = bar.add_task(f"reading {name}", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

            ret = ssda903.read_return(header, episodes, progress)
        with open_ledger(db) as ledger:
            result = ssda903.import_return(ledger, ret, borough, period, received_on, contract)
    except ssda903.ReturnError as exc:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
