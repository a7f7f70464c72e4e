"""The `soc-ledger` command: parse, call, render. No rule lives here.

A command reads its options, calls a query or the ledger, and hands what comes back to a view
(`soc_ledger.projections.views`). Every module is imported inside the command that needs it,
so that `--help` and each report start with only what they use. That, and click's declarations
of seventeen commands' options and help, are why this file is about 650 lines: it holds no
layout and no rule, and the card keeps the CLI one module at the top level.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.ledger.service import Ledger

T = TypeVar("T")
FORMATS = click.Choice(["table", "json", "csv"])
WEEK_RULES = click.Choice(["fixed_blocks", "consecutive_runs"])


class LedgerCommandError(click.ClickException):
    """An expected failure (a `LedgerError`, or the CLI's own complaint) as one line, SPEC §10."""

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


INPUT = "soc_ledger.input"  # what a command records from: see `_records_from`


def _records_from(name: str, shown: int | None = None) -> None:
    """A batch rejected from here on is reported as `error: NAME: N problems; ...`, after its
    problems (the first SHOWN of them), one a line."""
    click.get_current_context().meta[INPUT] = (name, shown)


class LedgerGroup(click.Group):
    """Every expected failure (a `LedgerError`) is caught here, once, and ends as one line."""

    def invoke(self, ctx: click.Context):
        from soc_ledger.domain.errors import LedgerError

        # A report builds hundreds of thousands of objects that all live until it ends (facts,
        # weeks, rows) and makes almost no cyclic garbage. At the default threshold (a young
        # collection every 700 allocations) the collector keeps re-walking them: a quarter of
        # the time of `liability` at scale 10. Collect rarely instead; restored afterwards for
        # a process that runs commands in turn (the tests' CliRunner).
        threshold = gc.get_threshold()
        gc.set_threshold(50_000, 20, 100)
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            from soc_ledger.ledger.problems import Rejected

            # Its own lines first (a rejected batch: every problem), then its reason.
            lines, reason, named = exc.lines(), str(exc), ctx.meta.get(INPUT)
            if named is not None and isinstance(exc, Rejected):
                lines, reason = lines[: named[1]], f"{named[0]}: {reason}"
            for line in lines:
                click.echo(line, err=True)
            raise LedgerCommandError(reason) from None
        finally:
            gc.set_threshold(*threshold)


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    from soc_ledger.domain.values import parse_iso_date

    try:
        return parse_iso_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


db_option = click.option(
    "--db", envvar="SOC_LEDGER_DB", default="sqlite:///ledger.db", show_default=True,
    help="sqlite:///path/to/ledger.db or postgresql://user@host:port/dbname",
)


@contextmanager
def open_ledger(db: str, create: bool = False) -> Iterator[Ledger]:
    """The ledger at DB, which must exist unless the command can start one (`create`), with
    progress bars on stderr for its long work while it is open (only on a terminal)."""
    from soc_ledger.ledger.service import Ledger
    from soc_ledger.projections.views.progress import progress_bars

    with Ledger(db, create=create) as ledger, progress_bars() as bars:
        ledger.progress = bars
        yield ledger


@click.group(cls=LedgerGroup)
@click.version_option(package_name="soc-ledger")
def main() -> None:
    """soc-ledger: an event-sourced ledger for social outcomes contracts."""


check_option = click.option(
    "--check", is_flag=True,
    help="check everything and list every problem in line order; write nothing",
)


@main.command()
@click.argument("file", type=click.File("r", encoding="utf-8"))
@db_option
@check_option
def record(file, db: str, check: bool) -> None:
    """Append events from a JSON Lines FILE (- for stdin): all or nothing."""
    from soc_ledger.projections.views.imports import write_checked, write_recorded

    source = "<stdin>" if file.name == "<stdin>" else file.name

    def lines() -> Iterator[str]:
        """The file line by line, from its start (read again should the append be retried);
        never held whole, so a file of any size records in flat memory."""
        if file.seekable():
            file.seek(0)
        from soc_ledger.ledger.parsing import bounded_lines

        try:
            yield from bounded_lines(file)
        except UnicodeDecodeError as exc:
            raise LedgerCommandError(f"{source}: not UTF-8 text ({exc.reason})") from None

    _records_from(source)
    # A check writes nothing, so it needs a ledger already there; a record may start one.
    with open_ledger(db, create=not check) as ledger:
        outcome = ledger.record_lines(lines if file.seekable() else lines(), source, check)
        if not check:
            _catch_up(ledger)
    if check:
        write_checked(outcome)
        return
    write_recorded(source, outcome)


@main.command()
@db_option
@click.option("--case", "case", help="only this case")
@click.option("--type", "types", multiple=True, help="only this event type (repeatable)")
@click.option("--from", "since", callback=_date, help="only events effective on or after this day")
@click.option("--to", "until", callback=_date, help="only events effective on or before this day")
@click.option("--known-at", callback=_date, help="only what was recorded on or before this date")
@click.option("--contract", help="only this contract")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def events(db: str, case, types, since, until, known_at, contract, fmt: str) -> None:
    """The audit trail: every event in log order, as stored."""
    from soc_ledger.domain.events import EVENT_TYPES
    from soc_ledger.ledger import index
    from soc_ledger.projections.views.events import render_events
    from soc_ledger.projections.views.render import context_of, with_context

    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise LedgerCommandError(f"--type: unknown event type {unknown[0]!r}")
    if since and until and since > until:
        raise LedgerCommandError(f"--from {since} is after --to {until}")
    with open_ledger(db) as ledger:
        head = index.log_head(ledger.engine, ledger.location)
        entries = [
            e
            for e in ledger.trail(case, types, _known(known_at), contract)
            if (since is None or e.effective >= since) and (until is None or e.effective <= until)
        ]
    render_events(entries, fmt, context_of(with_context({}, contract, None, known_at, head)))


@main.command()
@db_option
def rebuild(db: str) -> None:
    """Drop every read model and rebuild it from the event log (the log is never touched)."""
    from soc_ledger.projections.rebuild import rebuild_read_models
    from soc_ledger.projections.views.imports import write_rebuilt

    with open_ledger(db) as ledger:
        events, elapsed = rebuild_read_models(ledger)
    write_rebuilt(events, elapsed)


# --- reports ---------------------------------------------------------------------------------


def _as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> date:
    """A report's --as-of: today unless given."""
    return _date(ctx, param, value) or date.today()


known_at_option = click.option(
    "--known-at", callback=_date, help="only what was recorded by this day (default: everything)"
)
contract_option = click.option("--contract", help="the contract (needed if the store has several)")
format_option = click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)


def _output(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A file to write (--emit, --export, --plot): refused in one line before any work if it
    cannot be written, and nothing created."""
    if value is None:
        return None
    from soc_ledger.projections.views.render import output_path

    return output_path(param.opts[0], value)


def _plot(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--plot FILE: writable (`_output`) and ending in a format it can be drawn in."""
    path = _output(ctx, param, value)
    if path is not None:
        from soc_ledger.projections.views.plots import plot_format

        plot_format(path)
    return path


plot_option = click.option(
    "--plot", callback=_plot, metavar="FILE",
    help="also draw the picture to this file (.png, .svg or .pdf)",
)


def report_options(as_of_help: str = "today"):
    """--db, --as-of, --known-at and --contract, in that order, as every report takes them."""
    as_of = click.option(
        "--as-of", callback=_as_of, help=f"the world at the end of this day (default {as_of_help})"
    )

    def apply(command):
        for option in (contract_option, known_at_option, as_of, db_option):
            command = option(command)
        return command

    return apply


def _known(day: date | None) -> KnownAt:
    """What was recorded by the end of DAY (None: everything)."""
    from soc_ledger.domain.knowledge import KnownAt

    return KnownAt.on(day)


def _catch_up(ledger: Ledger) -> None:
    """Every read model brought up to the log: after a write, by the writer (the next reader
    should not pay for it; a crash before it leaves them behind, never wrong), and before a
    report, for any left behind."""
    from soc_ledger.projections import claims_made, versions

    ledger.follow(versions.catch_up, versions.NAME, claims_made.NAME)


@contextmanager
def _reporting(db: str, contract: str | None) -> Iterator[tuple[Engine, str]]:
    """The ledger's engine with its read models caught up to the log, and the contract named
    (or the store's only one)."""
    from soc_ledger.ledger import index
    from soc_ledger.projections import latest, queries, seals

    with open_ledger(db) as ledger:
        _catch_up(ledger)
        seals.check_followed(ledger)
        # The position the read models reached: what every CSV and JSON report says it read.
        click.get_current_context().meta[POSITION] = index.tracked_position(
            ledger.engine, latest.NAME
        )
        yield ledger.engine, queries.the_contract(ledger.engine, contract)


POSITION = "soc_ledger.log_position"  # set by `_reporting` (or `events`), read by `_stamped`


def _stamped(
    data: dict[str, Any], contract: str | None, as_of: date | None, known_at: date | None
) -> dict[str, Any]:
    """DATA with its context (contract, as_of, known_at, log position) for JSON and CSV."""
    from soc_ledger.projections.views.render import with_context

    position = click.get_current_context().meta.get(POSITION)
    return with_context(data, contract, as_of, known_at, position)


def _report(db: str, contract: str | None, query: Callable[..., T], *args: Any) -> T:
    """QUERY(engine, contract, *ARGS), as `_reporting` opens them."""
    with _reporting(db, contract) as (engine, contract):
        return query(engine, contract, *args)


@main.command()
@report_options()
@click.option(
    "--by", "by", type=click.Choice(["contract", "borough", "case", "payer"]), default="contract",
    show_default=True, help="the rows of the table or CSV",
)
@click.option(
    "--week-rule", type=WEEK_RULES,
    help="recompute every case under this rule (a what-if); default each case's own",
)
@format_option
@click.option(
    "--plot", callback=_plot, metavar="FILE", help="also draw owed over time (.png, .svg, .pdf)"
)
def liability(db, as_of, known_at, contract, by, week_rule, fmt, plot=None) -> None:
    """What is owed for outcomes at (as_of, known_at): weeks, money, caps, days in care."""
    from soc_ledger.projections import queries
    from soc_ledger.projections.views.liability import liability_json, render_liability

    known = _known(known_at)
    with _reporting(db, contract) as (engine, contract):
        if not _weeks_only(engine, contract, as_of, known):
            if week_rule or plot:
                raise LedgerCommandError(
                    f"--week-rule and --plot read weeks out of care alone; contract "
                    f"{contract!r} pays by other mechanisms too"
                )
            return _render_payments(engine, contract, as_of, known, known_at, fmt)
        result = queries.liability_at(engine, contract, as_of, known, week_rule)
        rule = queries.week_rule_of(engine, contract, as_of, known, week_rule)
        if plot:
            from soc_ledger.projections.finances import owed_over_time
            from soc_ledger.projections.views import plots

            weekly = queries.liability_with_weeks(engine, contract, as_of, known, week_rule)
            title = plots.liability_title(contract, as_of, known_at)
            plots.plot_liability(owed_over_time(weekly), title, plot, weekly.top_up_funder)
            plots.write_plotted(plot)
    data = _stamped(liability_json(result, known_at, rule), contract, as_of, known_at)
    render_liability(data, by, fmt)


def _weeks_only(engine: Engine, contract: str, as_of: date, known: KnownAt) -> bool:
    """Whether the contract pays by weeks out of care alone (every report's own shape)."""
    from soc_ledger.projections import mechanisms

    return mechanisms.is_weeks_only(engine, contract, as_of, known)


def _mechanisms(engine: Engine, contract: str, as_of: date, known: KnownAt) -> tuple[str, ...]:
    from soc_ledger.projections import mechanisms

    return mechanisms.mechanisms_at(engine, contract, as_of, known)


def _weeks_needed(
    command: str, engine: Engine, contract: str, as_of: date, known: KnownAt
) -> tuple[str, ...]:
    """The mechanisms in force, for a report that reads weeks out of care alone (refused for a
    contract paying otherwise: it would only print noughts)."""
    from soc_ledger.projections import mechanisms

    return mechanisms.weeks_only(engine, contract, as_of, known, command)


def _weeks_part(named: tuple[str, ...], fmt: str) -> None:
    """Under a table that reads the weeks of a contract paying by more than weeks, say so."""
    if fmt == "table" and len(named) > 1:
        from soc_ledger.projections.views.render import write_line

        others = ", ".join(m for m in named if m != "weeks_out_of_care")
        write_line(f"(weeks out of care only; {others}: see liability)")


def _render_payments(
    engine: Engine, contract: str, as_of: date, known: KnownAt, known_at: date | None, fmt: str
) -> None:
    """The liability of a contract paying by other mechanisms: each mechanism, each payer."""
    from soc_ledger.projections import mechanisms
    from soc_ledger.projections.views.mechanisms import payments_json, render_payments

    result = mechanisms.payments_at(engine, contract, as_of, known)
    render_payments(_stamped(payments_json(result, known_at), contract, as_of, known_at), fmt)


def _explain_mechanisms(
    engine: Engine, contract: str, case: str, as_of: date, known_at: date | None,
    week: int | None, fmt: str,
) -> None:
    """`explain CASE` for a contract paying no weeks: what the case counts for instead."""
    from soc_ledger.projections import mechanisms
    from soc_ledger.projections.views.mechanisms import case_json, render_case

    if week is not None:
        raise LedgerCommandError(f"contract {contract!r} pays no weeks: --week does not apply")
    result = mechanisms.payments_at(engine, contract, as_of, _known(known_at))
    data = case_json(result, case, known_at)
    if data is None:
        raise LedgerCommandError(
            f"case {case!r} counts for none of {', '.join(result.mechanisms)} at {as_of} "
            "(not tracked, or not a case of this contract)"
        )
    render_case(_stamped(data, contract, as_of, known_at), fmt)


@main.command()
@click.argument("case")
@report_options()
@click.option("--week", "week", type=int, help="only week K (0-based)")
@click.option("--week-rule", type=WEEK_RULES)
@format_option
def explain(case, db, as_of, known_at, contract, week, week_rule, fmt) -> None:
    """Every week of CASE with its status, amounts and the events that decided it."""
    from soc_ledger.projections import queries
    from soc_ledger.projections.views.liability import explain_json, render_explain

    with _reporting(db, contract) as (engine, contract):
        if "weeks_out_of_care" not in _mechanisms(engine, contract, as_of, _known(known_at)):
            return _explain_mechanisms(engine, contract, case, as_of, known_at, week, fmt)
        found = queries.explain_case(engine, contract, case, as_of, _known(known_at), week_rule)
        weeks = [w for w in found.weeks if week is None or w.index == week]
        if week is not None and not weeks:
            raise LedgerCommandError(f"case {case!r} has no week {week} at {as_of}")
        because = [p for w in weeks for p in w.because] + list(found.facts.refs)
        refs = queries.event_refs(engine, because)
    data = explain_json(contract, case, as_of, known_at, found, weeks, refs)
    render_explain(_stamped(data, contract, as_of, known_at), fmt)


@main.command()
@db_option
@click.option("--known-at", "k1", callback=_date, required=True, help="the earlier knowledge")
@click.option("--vs", "k2", callback=_date, help="the later knowledge (default: everything)")
@click.option("--as-of", callback=_as_of, help="the world at the end of this day (default today)")
@contract_option
@format_option
def diff(db, k1, k2, as_of, contract, fmt) -> None:
    """What changed between two states of knowledge, week by week, and which events did it."""
    from soc_ledger.projections import diff as diffs
    from soc_ledger.projections.views.liability import diff_json, render_diff

    first, second = _known(k1), _known(k2)
    with _reporting(db, contract) as (engine, contract):
        if not _weeks_only(engine, contract, as_of, second):
            from soc_ledger.projections import mechanisms
            from soc_ledger.projections.views.mechanisms import payments_diff_json
            from soc_ledger.projections.views.mechanisms import render_diff as render_payments

            before = mechanisms.payments_at(engine, contract, as_of, first)
            after = mechanisms.payments_at(engine, contract, as_of, second)
            data = payments_diff_json(before, after, k1, k2)
            return render_payments(_stamped(data, contract, as_of, k1), fmt)
        result, moved = diffs.diff_and_moves(engine, contract, as_of, first, second)
    data = diff_json(result, first, second, k1, k2, moved)
    render_diff(_stamped(data, contract, as_of, k1), fmt)


@main.command()
@db_option
@click.option(
    "--emit", callback=_output, metavar="FILE",
    help="write the history as JSON Lines to this file instead of recording it",
)
@click.option(
    "--scale", type=click.IntRange(1, 1000), default=1, show_default=True,
    help="multiply the cohort (for benchmarks); the calibrated figures are for 1",
)
@click.option(
    "--contract", "which", type=click.Choice(["plcip", "essex", "ttt", "bucks"]),
    default="plcip", show_default=True,
    help="which reference contract: plcip (SPEC §12), or one paying by another mechanism",
)
@format_option
def demo(db, emit, scale, which, fmt) -> None:
    """Build the reference contract (SPEC §12) into the store and print its statement."""
    import json

    from soc_ledger.ledger.demo import cohort as reference
    from soc_ledger.ledger.demo import history, mechanisms
    from soc_ledger.ledger.progress import phase
    from soc_ledger.projections.views.imports import write_demo_recorded, write_history
    from soc_ledger.projections.views.progress import progress_bars

    if which == "plcip":
        with progress_bars() as bars, phase(bars, f"building the demo history (scale {scale})"):
            lines = list(history.emit(scale))
        source, as_of = f"demo(scale={scale})", reference.AS_OF
        # The statement: the liability by borough and then in total as a table, else in total.
        by = ["borough", "contract"] if fmt == "table" else ["contract"]
    else:  # essex, ttt, bucks: a contract paying by another mechanism, printed in total
        if scale != 1:
            raise click.BadParameter("only the plcip demo can be scaled", param_hint="--scale")
        lines = [json.dumps(e, separators=(", ", ": ")) for e in mechanisms.HISTORIES[which]()]
        source, as_of, by = f"demo(contract={which})", mechanisms.AS_OF[which], ["contract"]
    if emit:
        write_history(emit, lines, scale)
        return
    _records_from("demo", shown=20)
    with open_ledger(db, create=True) as ledger:
        outcome = ledger.record_lines(lines, source)
    if fmt == "table":
        write_demo_recorded(outcome)
    for rows in by:
        click.get_current_context().invoke(
            liability, db=db, as_of=as_of, known_at=None, contract=which,
            by=rows, week_rule=None, fmt=fmt,
        )


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
@check_option
def import_903(
    header, episodes, borough, period_end, period_start, year, received_on, contract, db, fmt,
    check,
) -> None:
    """Import an SSDA903 return: HEADER and EPISODES CSV tables, or one XML file.

    Only rows of the borough's referred children are used (the rest are counted and
    discarded, never stored); episodes are clipped to the period; a resubmission of a period
    supersedes the earlier return. All or nothing: any problem in a used row rejects the
    whole return and every problem is listed.
    """
    from soc_ledger.ledger.ssda903.importing import import_return
    from soc_ledger.ledger.ssda903.period import Period
    from soc_ledger.ledger.ssda903.reading import read_return
    from soc_ledger.projections.facts_now import FACTS_NOW
    from soc_ledger.projections.views.imports import render_import, write_checked
    from soc_ledger.projections.views.progress import rows_read

    name = episodes or header
    _records_from(name)
    period = Period.of(period_end, year, period_start)
    # The store first: a wrong --db is told before a long return is read.
    with open_ledger(db) as ledger:
        ret = read_return(header, episodes, rows_read(ledger.progress, f"reading {name}"))
        result = import_return(
            ledger, FACTS_NOW, ret, borough, period, received_on, contract, check=check
        )
        if not check:
            _catch_up(ledger)
    if check:
        write_checked(result.outcome)
        return
    render_import(result, name, borough, period, received_on, fmt)


@main.command()
@click.argument("import_name", metavar="IMPORT")
@click.option("--reason", required=True, help="why it is undone (kept with every retraction)")
@db_option
def revert(import_name, reason, db) -> None:
    """Undo an SSDA903 IMPORT: retract what it recorded, with REASON (nothing is deleted).

    IMPORT is the key or the position (#N) of the import's CareDataReceived, as
    `soc-ledger events --type CareDataReceived` shows them. Answers known before the revert
    still read the import.
    """
    from soc_ledger.ledger.ssda903.reverting import revert_import
    from soc_ledger.projections.views.imports import write_reverted

    _records_from(import_name)
    with open_ledger(db) as ledger:
        reverted = revert_import(ledger, import_name, reason)
        _catch_up(ledger)
    write_reverted(reverted)


# --- investors, finances, baselines and forecasts (SPEC §8, §9) ------------------------------


@main.command("returns")
@report_options()
@format_option
def returns_command(db, as_of, known_at, contract, fmt) -> None:
    """Investors' returns: committed, drawn, distributed, net cash, money multiple, IRR."""
    from soc_ledger.projections import finances as money_rules
    from soc_ledger.projections.views import finance, finance_tables

    result = _report(db, contract, money_rules.returns_at, as_of, _known(known_at))
    data = _stamped(finance.returns_json(result, known_at), result.contract, as_of, known_at)
    finance_tables.render_returns(data, fmt)


@main.command("finances")
@report_options()
@format_option
@plot_option
def finances_command(db, as_of, known_at, contract, fmt, plot) -> None:
    """Contract finances: income due and received, costs, surplus, fees, avoided care costs."""
    from soc_ledger.projections import finances as money_rules
    from soc_ledger.projections.views import finance, finance_tables

    known = _known(known_at)
    with _reporting(db, contract) as (engine, contract):
        named = _weeks_needed("finances", engine, contract, as_of, known)
        result = money_rules.finances_at(engine, contract, as_of, known)
        if plot:
            from soc_ledger.projections.views.plots import plot_finances, write_plotted

            plot_finances(money_rules.returns_at(engine, contract, as_of, known), result, plot)
            write_plotted(plot)
    data = _stamped(finance.finances_json(result, known_at), contract, as_of, known_at)
    finance_tables.render_finances(data, fmt)
    _weeks_part(named, fmt)


@main.command("baseline")
@click.option("--variation", required=True, help="the variation whose targets to compare with")
@report_options()
@format_option
def baseline_command(variation, db, as_of, known_at, contract, fmt) -> None:
    """Actuals against a variation's baseline targets, in full and against its profile."""
    from soc_ledger.projections import baseline as baselines
    from soc_ledger.projections.views import finance, finance_tables

    known = _known(known_at)
    with _reporting(db, contract) as (engine, contract):
        _weeks_needed("baseline", engine, contract, as_of, known)
        result = baselines.baseline_at(engine, contract, variation, as_of, known)
    data = _stamped(finance.baseline_json(result, known_at), result.contract, as_of, known_at)
    finance_tables.render_baseline(data, fmt)


@main.command("forecast")
@report_options()
@format_option
@plot_option
def forecast_command(db, as_of, known_at, contract, fmt, plot) -> None:
    """Still to pay for cases already referred: minimum, expected, maximum, after caps."""
    from soc_ledger.projections import forecast as forecasts
    from soc_ledger.projections.views import finance, finance_tables

    known = _known(known_at)
    with _reporting(db, contract) as (engine, contract):
        named = _mechanisms(engine, contract, as_of, known)
        if "weeks_out_of_care" not in named:
            from soc_ledger.projections import mechanisms
            from soc_ledger.projections.views import mechanisms as view

            if plot:
                raise LedgerCommandError("--plot draws the forecast of weeks out of care alone")
            cohorts = mechanisms.forecast_at(engine, contract, as_of, known)
            return view.render_forecast(view.forecast_json(contract, as_of, cohorts, known_at), fmt)
        result = forecasts.forecast_at(engine, contract, as_of, known)
    if plot:
        from soc_ledger.projections.views.plots import plot_forecast, write_plotted

        plot_forecast(result, plot)
        write_plotted(plot)
    data = _stamped(finance.forecast_json(result, known_at), result.contract, as_of, known_at)
    finance_tables.render_forecast(data, fmt)
    _weeks_part(named, fmt)


# --- integrity (SPEC §11) ----------------------------------------------------------------------


@main.command()
@db_option
@click.option(
    "--export", "export_to", callback=_output, metavar="FILE",
    help="once the store verifies, write its chain heads to this file (JSON) for a later --against",
)
@click.option(
    "--against", type=click.File("r", encoding="utf-8"),
    help="chain heads exported earlier: nothing up to them may have changed",
)
@click.option(
    "--sample", type=click.IntRange(min=1), metavar="N",
    help="rebuild and compare the read models for N cases drawn at random (and every "
    "contract's own events), not every case: faster, but not proof for the cases not drawn",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def verify(db, export_to, against, sample, fmt) -> None:
    """Check the store: the hash chain, stream versions, privacy, every aggregate replayed,
    every projection rebuilt and compared, every balance assertion re-checked.

    Exits 1 naming the first break (by log position where there is one).
    """
    from soc_ledger.ledger import integrity
    from soc_ledger.projections import verification
    from soc_ledger.projections.views import integrity as view

    exported = None
    if against is not None:
        try:
            exported = integrity.load_export(against.read())
        except integrity.AssertionProblem as exc:
            # Not the store's fault but the file's: the error names the option it came with.
            raise LedgerCommandError(f"--against {against.name}: {exc}") from None
    with open_ledger(db) as ledger:
        report = verification.verify(ledger, exported, sample)
    view.render_verify(report, fmt)
    if report.first_break is not None:
        view.write_findings(report)
        raise LedgerCommandError(f"verify: {report.first_break}")
    view.write_verified(report, fmt, export_to)


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
    from soc_ledger.projections import verification
    from soc_ledger.projections.views.integrity import render_assertion

    expected = None
    if value is not None:
        try:
            expected = parse_number(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--value") from None
    _records_from("assert")
    with open_ledger(db) as ledger:
        contract, asserted = verification.figure_to_assert(
            ledger, contract, scope, figure, as_of, known_at, expected
        )
        position = integrity.assert_balance(
            ledger, contract, scope, figure, as_of, known_at, by, asserted
        )
    render_assertion(contract, scope, figure, as_of, known_at, asserted, by, position, fmt)


# --- the auditor's pack ------------------------------------------------------------------------


@main.command("audit-pack")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--as-of", required=True, callback=_date, help="the world at the end of this day")
@known_at_option
@click.option(
    "--since-known-at",
    "since",
    callback=_date,
    help="also show what changed since this state of knowledge, and which claims it moves",
)
@click.option("--payer", help="only this payer's pack (a borough, or the top-up funder)")
@contract_option
@db_option
def audit_pack(out, as_of, known_at, since, payer, contract, db) -> None:
    """Write an auditor's pack into the folder OUT (new or empty): HTML pages, workbook.xlsx,
    CSVs and manifest.json with every file's SHA-256. Opens offline, with no server."""
    import shlex

    from soc_ledger.projections.views.pack import build, collect

    build.check_folder(out)
    # The command as it can be run again (options in one order, every date spelt out).
    words = ["soc-ledger", "audit-pack", out, "--as-of", as_of.isoformat()]
    for option, value in (
        ("--known-at", known_at),
        ("--since-known-at", since),
        ("--payer", payer),
        ("--contract", contract),
        ("--db", db),
    ):
        if value is not None:
            words += [option, str(value)]
    command = shlex.join(words)
    with _reporting(db, contract) as (_, contract), open_ledger(db) as ledger:
        with build.progress(out) as step:
            contents = collect.collect(ledger, contract, as_of, known_at, since, payer, step)
            files = build.write_pack(out, contents, command, step)
    click.echo(f"{out}: audit pack of {contract} as of {as_of}, {len(files) + 1} files")


# --- claims (SPEC §7) ------------------------------------------------------------------------


@main.command()
@click.argument("claim", required=False)
@click.option("--payer", help="every claim to this payer instead of one CLAIM, with totals")
@report_options("today: payments and disputes by then")
@format_option
def reconcile(claim, payer, db, as_of, known_at, contract, fmt) -> None:
    """CLAIM line by line: claimed, due then and now, paid, disputed, and why they differ."""
    from soc_ledger.projections import claims
    from soc_ledger.projections.views import claims as view

    if (claim is None) == (payer is None):
        raise LedgerCommandError("reconcile: give one CLAIM or --payer P")
    known = _known(known_at)
    with _reporting(db, contract) as (engine, contract):
        if "weeks_out_of_care" not in _mechanisms(engine, contract, as_of, known):
            from soc_ledger.projections import mechanisms
            from soc_ledger.projections.views.mechanisms import (
                claim_check_json,
                render_claim_check,
            )

            if claim is None:
                raise LedgerCommandError(
                    "reconcile --payer reads claims for weeks out of care; give one CLAIM"
                )
            found = mechanisms.reconcile_on_account(engine, contract, claim, as_of, known)
            data = claim_check_json(found, known_at)
            return render_claim_check(_stamped(data, contract, as_of, known_at), fmt)
        if payer is not None:
            found = claims.reconcile_payer(engine, contract, payer, as_of, known)
            data = view.payer_reconciliation_json(contract, payer, as_of, known_at, found)
            return view.render_payer_reconciliation(_stamped(data, contract, as_of, known_at), fmt)
        result = claims.reconcile(engine, contract, claim, as_of, known)
    data = _stamped(view.reconcile_json(result, known_at), contract, as_of, known_at)
    view.render_reconcile(data, fmt)


@main.command()
@click.argument("payer")
@report_options()
@format_option
def statement(payer, db, as_of, known_at, contract, fmt) -> None:
    """PAYER's account (a borough or the top-up funder): claims, due, paid, balance."""
    from soc_ledger.projections import claims
    from soc_ledger.projections.views.claims import render_statement, statement_json

    known = _known(known_at)
    with _reporting(db, contract) as (engine, contract):
        named = _mechanisms(engine, contract, as_of, known)
        if "weeks_out_of_care" not in named:
            from soc_ledger.projections import mechanisms
            from soc_ledger.projections.views.mechanisms import account_json, render_account

            found = mechanisms.account_at(engine, contract, payer, as_of, known)
            data = account_json(found, known_at)
            return render_account(_stamped(data, contract, as_of, known_at), fmt)
        result = claims.statement(engine, contract, payer, as_of, known)
    data = _stamped(statement_json(result, known_at), result.contract, as_of, known_at)
    render_statement(data, fmt)
    _weeks_part(named, fmt)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
