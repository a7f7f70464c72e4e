"""The scale benchmark: the demo at several scales, into SQLite and PostgreSQL, side by side with
the raw `eventsourcing` library and a naive replay-everything approach. Plain timing, no asserts.
Longer than 500 lines because it is one script a reader runs top to bottom: building each
scale, timing every command, and printing the tables the README quotes.

    python benchmarks/run.py                         # scales 1 10 100, both stores, 3 runs
    python benchmarks/run.py --scales 1 10 --stores sqlite --repeats 2

Every command is run as its own process (start-up included, as a user sees it); each figure is
the median of the runs; peak resident memory is the child process's `ru_maxrss`. Prints a table
and writes JSON (default benchmarks/results.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

PG = os.environ.get("SOC_LEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
KEY = "benchmark-key-0123456789abcdef"
# Commands run as a user's would: with Python's bytecode cache (a sandbox may switch it off).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["SOC_LEDGER_KEY"] = KEY


class StepTimeout(RuntimeError):
    """A command ran past the step's time limit and was killed."""


# Every command is killed past this many seconds (`--timeout`): an unattended run goes on.
TIMEOUT = [1800.0]


def run_measured(args: list[str], output: bool = False) -> tuple[float, int, str]:
    """Wall seconds, peak resident KiB (the child's own, from wait4) and, with `output`, the
    stdout of a command run as its own process, killed after TIMEOUT seconds.

    Stdout is read back only when asked: a wide `diff` prints hundreds of megabytes, and a
    parent grown by reading it would lend its size to every later child's peak (Linux counts
    a child's peak from the parent's size at fork)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(args, stdout=out, stderr=err, env=ENV)
        timer = threading.Timer(TIMEOUT[0], process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            if elapsed >= TIMEOUT[0]:
                raise StepTimeout(f"killed after {TIMEOUT[0]:.0f} s: {' '.join(args[2:5])}")
            raise RuntimeError(f"{' '.join(args)} failed: {err.read().decode()[-2000:]}")
        return elapsed, usage.ru_maxrss, out.read().decode() if output else ""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "soc_ledger.cli", *args]


def median(values: list[float]) -> float:
    return statistics.median(values)


# --- stores ----------------------------------------------------------------------------------


class Store:
    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.folder = folder
        self.names: list[str] = []

    def fresh(self) -> str:
        if self.kind == "sqlite":
            path = self.folder / f"{uuid.uuid4().hex[:8]}.db"
            return f"sqlite:///{path}"
        import psycopg

        name = f"soc_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG + "/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return f"{PG}/{name}"

    def drop_all(self) -> None:
        if self.kind != "postgres":
            return
        import psycopg

        with psycopg.connect(PG + "/postgres", autocommit=True) as conn:
            for name in self.names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the 903 return for the catch-up measure ----------------------------------------------------


def return_903(history: Path, folder: Path, episodes: int = 5000) -> tuple[str, Path, Path]:
    """A return of `episodes` short stays in 2025-26 for one borough's referred children."""
    children: dict[str, list[str]] = {}
    cases: dict[str, tuple[str, str]] = {}
    started: dict[str, set[str]] = {}
    ended: dict[str, set[str]] = {}
    with history.open() as lines:  # line by line: the benchmark process stays small
        for line in lines:
            if "ReferralReceived" not in line and "CareEpisode" not in line:
                continue
            event = json.loads(line)
            if event["type"] == "ReferralReceived":
                cases[event["case"]] = (event["borough"], event["child_ref"])
            elif event["type"] == "CareEpisodeStarted":
                started.setdefault(event["case"], set()).add(event["episode"])
            elif event["type"] == "CareEpisodeEnded":
                ended.setdefault(event["case"], set()).add(event["episode"])
    for case, (borough, ref) in cases.items():
        # A child still in care (an open episode) cannot have new stays in 2025-26.
        if not started.get(case, set()) - ended.get(case, set()):
            children.setdefault(borough, []).append(ref)
    borough, refs = max(children.items(), key=lambda kv: len(kv[1]))
    header = folder / "header.csv"
    rows = folder / "episodes.csv"
    header.write_text(
        "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n"
        + "".join(f"{ref},1,01/01/2008,WBRI,,,\n" for ref in refs)
    )
    per_child = -(-episodes // len(refs))
    lines = [
        "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,"
        "HOME_POST,PL_POST,URN"
    ]
    written = 0
    for ref in refs:
        day = date(2025, 4, 2)
        for _ in range(per_child):
            if written == episodes:
                break
            end = day + timedelta(days=2)
            lines.append(f"{ref},{day:%d/%m/%Y},S,C2,N1,U1,PR1,{end:%d/%m/%Y},E11,,,,")
            day = end + timedelta(days=1)
            written += 1
    rows.write_text("\n".join(lines) + "\n")
    return borough, header, rows


# --- side by side: the raw library, and a naive replay ---------------------------------------


def _stream_class() -> type:
    """One plain library aggregate class for every stream (defined once: topics are global)."""
    global _STREAM
    if _STREAM is None:
        from eventsourcing.domain import Aggregate, event

        class Stream(Aggregate):
            @event("Happened")
            def happened(self, payload: dict) -> None:
                self.last = payload

        _STREAM = Stream
    return _STREAM


_STREAM: type | None = None


def raw_library(lines: list[str]) -> dict[str, float]:
    """The same events through `eventsourcing` alone: plain aggregates, no projections."""
    from eventsourcing.application import Application

    with tempfile.TemporaryDirectory() as folder:
        app = Application(
            env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": f"{folder}/raw.db"}
        )
        Stream = _stream_class()  # noqa: N806
        streams: dict[str, Any] = {}
        started = time.perf_counter()
        batch: list[Any] = []
        for text in lines:
            payload = json.loads(text)
            name = payload.get("case") or payload["contract"]
            aggregate = streams.get(name)
            if aggregate is None:
                aggregate = streams[name] = Stream()
            aggregate.happened(payload=payload)
            if aggregate not in batch:
                batch.append(aggregate)
            if len(batch) >= 100:
                app.save(*batch)
                batch = []
        if batch:
            app.save(*batch)
        written = time.perf_counter() - started
        started = time.perf_counter()
        count = 0
        start = 0
        while True:
            page = app.recorder.select_notifications(start, 1000, inclusive_of_start=False)
            for note in page:
                app.mapper.to_domain_event(note)
                count += 1
            if len(page) < 1000:
                break
            start = page[-1].id
        replayed = time.perf_counter() - started
        app.close()
    stored = count
    return {
        "append_events_per_s": stored / written,
        "replay_events_per_s": stored / replayed,
        "events": stored,
    }


def floor(source: str, target: str, page: int = 20_000) -> dict[str, float]:
    """The raw floor of an append: the rows a `record` wrote (the library's event table and
    the event index), read back from `source` and written into an empty store at `target` by
    the driver alone, in one transaction: `executemany` on SQLite, `COPY` on PostgreSQL. Only
    the writes and the commit are timed."""
    from sqlalchemy import create_engine

    from soc_ledger.ledger.index import events_index, metadata

    columns = [c.name for c in events_index.columns]
    if source.startswith("sqlite"):
        import sqlite3

        src = sqlite3.connect(source.removeprefix("sqlite:///"))
        engine = create_engine(target)
        metadata.create_all(engine, tables=[events_index])
        engine.dispose()
        dst = sqlite3.connect(target.removeprefix("sqlite:///"), isolation_level=None)
        dst.execute(
            "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
            "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
        )
        tables = [
            ("stored_events", "originator_id, originator_version, topic, state", "rowid"),
            ("ledger_events", ", ".join(f'"{c}"' for c in columns), "position"),
        ]
        spent = {}
        for table, names, order in tables:
            took = 0.0
            dst.execute("BEGIN")
            marks = ", ".join("?" for _ in names.split(", "))
            cursor = src.execute(f"SELECT {names} FROM {table} ORDER BY {order}")
            while rows := cursor.fetchmany(page):
                started = time.perf_counter()
                dst.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
                took += time.perf_counter() - started
            started = time.perf_counter()
            dst.execute("COMMIT")
            spent[table] = took + time.perf_counter() - started
        events = src.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    else:
        import psycopg

        engine = create_engine(target.replace("postgresql://", "postgresql+psycopg://", 1))
        metadata.create_all(engine, tables=[events_index])
        engine.dispose()
        src = psycopg.connect(source)
        dst = psycopg.connect(target)
        dst.execute(
            "CREATE TABLE socledger_events (originator_id uuid NOT NULL, originator_version "
            "bigint NOT NULL, topic text, state bytea, notification_id bigserial, "
            "PRIMARY KEY (originator_id, originator_version))"
        )
        dst.execute("CREATE UNIQUE INDEX ON socledger_events (notification_id)")
        dst.commit()
        tables = [
            (
                "socledger_events",
                "notification_id, originator_id, originator_version, topic, state",
                "notification_id",
            ),
            ("ledger_events", ", ".join(f'"{c}"' for c in columns), "position"),
        ]
        spent = {}
        for table, names, order in tables:
            took = 0.0
            with src.cursor(name=f"read_{table}") as cursor:
                cursor.execute(f"SELECT {names} FROM {table} ORDER BY {order}")
                while rows := cursor.fetchmany(page):
                    started = time.perf_counter()
                    with dst.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                    took += time.perf_counter() - started
            started = time.perf_counter()
            dst.commit()
            spent[table] = took + time.perf_counter() - started
        events = src.execute("SELECT COUNT(*) FROM socledger_events").fetchone()[0]
    src.close()
    dst.close()
    log_table = tables[0][0]
    return {
        "floor_events_per_s": events / spent[log_table],
        "floor_with_index_events_per_s": events / sum(spent.values()),
    }


def naive_liability(url: str, as_of: date) -> float:
    """Replay the whole log to answer one liability question (no read model)."""
    from soc_ledger.domain.knowledge import known_facts
    from soc_ledger.domain.outcomes.facts import (
        cases_from_facts,
        contract_from_facts,
        coverage_from_facts,
    )
    from soc_ledger.domain.outcomes.liability import liability
    from soc_ledger.ledger.service import Ledger

    started = time.perf_counter()
    with Ledger(url) as ledger:
        facts = known_facts(list(ledger.log.records()))
    contract = contract_from_facts("plcip", facts)
    liability(
        contract, cases_from_facts(facts, "plcip"), coverage_from_facts(facts, "plcip"), as_of
    )
    return time.perf_counter() - started


def read_model_liability(url: str, as_of: date, known_at: date | None) -> float:
    from soc_ledger.domain.knowledge import KnownAt
    from soc_ledger.ledger.service import Ledger
    from soc_ledger.projections import queries

    with Ledger(url) as ledger:
        started = time.perf_counter()
        queries.liability_at(ledger.engine, "plcip", as_of, KnownAt.on(known_at))
        return time.perf_counter() - started


def demo_history(folder: Path, scale: int) -> Path:
    """The demo's JSON Lines at `scale`, emitted once per run."""
    history = folder / f"demo-{scale}.jsonl"
    if not history.exists():
        subprocess.run(
            cli("demo", "--emit", str(history), "--scale", str(scale)),
            check=True,
            env=ENV,
            capture_output=True,
        )
    return history


def sampled(n: int, command: Callable[[], list[str]]) -> tuple[list[float], list[int]]:
    """The wall seconds and peak KiB of `n` runs, each of the command made afresh."""
    times, peaks = [], []
    for _ in range(n):
        elapsed, peak, _ = run_measured(command())
        times.append(elapsed)
        peaks.append(peak)
    return times, peaks


def liability(url: str, as_of: str, known_at: str | None = None) -> list[str]:
    known = ["--known-at", known_at] if known_at else []
    return cli("liability", "--db", url, "--as-of", as_of, *known, "--format", "json")


# --- one scale, one store --------------------------------------------------------------------

# What the demo holds to ask about: a borough's account, one of its claims, and a knowledge
# range wide enough to touch most cases (the issue's own examples).
PAYER = "TWH"
CLAIM = "TWH-2019Q3"
SAMPLE = 1000  # cases `verify --sample` draws (every case below scale 10)
WIDE_DIFF = ("2020-06-30", "2021-06-30")  # --known-at, --as-of (against everything known)


class Steps:
    """Runs the steps of one store at one scale: a progress line each (with its time), its
    figures into `result`, and a failure or timeout noted there rather than ending the run."""

    def __init__(self, label: str, result: dict[str, Any], total: int) -> None:
        self.label = label
        self.result = result
        self.total = total
        self.done = 0
        self.seconds: dict[str, float] = result.setdefault("step_seconds", {})

    def __call__(self, name: str, work: Callable[[], None]) -> bool:
        self.done += 1
        print(f"[{self.label}] {self.done}/{self.total} {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            work()
            ok = True
        except (RuntimeError, OSError) as exc:  # StepTimeout included
            self.result.setdefault("failed", {})[name] = str(exc)[-300:]
            print(f"[{self.label}] {name} FAILED: {str(exc)[-300:]}", file=sys.stderr, flush=True)
            ok = False
        took = self.seconds[name] = time.perf_counter() - started
        print(f"[{self.label}] {name} done in {took:.1f} s", file=sys.stderr, flush=True)
        return ok


STEPS = 16


def measure(scale: int, kind: str, repeats: int, folder: Path, seed: int) -> dict:
    history = demo_history(folder, scale)
    events, cases = 0, []
    with history.open() as lines:  # line by line: the benchmark process stays small
        for line in lines:
            events += 1
            if '"FirstFamilyMeeting"' in line:
                cases.append(json.loads(line)["case"])
    # The same random questions for every store at a scale, so their times compare.
    rng = random.Random(f"{seed}-{scale}")
    store = Store(kind, folder)
    result: dict[str, Any] = {"scale": scale, "store": kind, "events": events}
    samples = max(3, repeats)
    step = Steps(f"scale {scale} {kind}", result, STEPS)
    urls: list[str] = []

    def timed(name: str, n: int, command: Callable[[], list[str]]) -> None:
        times, peaks = sampled(n, command)
        result[f"{name}_s"] = median(times)
        result[f"{name}_peak_mib"] = max(peaks) / 1024

    def pairs() -> tuple[str, str]:
        as_of = date(2018, 6, 1) + timedelta(days=rng.randrange(2000))
        known = as_of + timedelta(days=rng.randrange(400))
        return as_of.isoformat(), known.isoformat()

    def record() -> None:
        def fresh_record() -> list[str]:
            urls.append(store.fresh())
            return cli("record", str(history), "--db", urls[-1])

        times, peaks = sampled(repeats, fresh_record)
        result["append_events_per_s"] = median([events / t for t in times])
        result["record_peak_mib"] = max(peaks) / 1024

    def floor() -> None:
        result.update(json.loads(inner("floor", urls[-1], store.fresh())))

    def first_report() -> None:
        elapsed, peak, _ = run_measured(liability(urls[-1], "2023-12-31"))
        result["first_report_s"] = elapsed
        result["first_report_peak_mib"] = peak / 1024

    def rebuild() -> None:
        times, peaks = sampled(repeats, lambda: cli("rebuild", "--db", urls[-1]))
        result["rebuild_events_per_s"] = median([events / t for t in times])
        result["rebuild_peak_mib"] = max(peaks) / 1024

    def liabilities() -> None:
        url = urls[-1]
        at_k, peaks_k = sampled(samples, lambda: liability(url, *pairs()))
        latest, peaks_l = sampled(samples, lambda: liability(url, pairs()[0]))
        result["liability_known_at_s"] = median(at_k)
        result["liability_s"] = median(latest)
        result["liability_peak_mib"] = max(peaks_k + peaks_l) / 1024

    def explain() -> None:
        timed(
            "explain",
            samples,
            lambda: cli(
                "explain",
                rng.choice(cases),
                "--db",
                urls[-1],
                "--as-of",
                "2023-12-31",
                "--format",
                "json",
            ),
        )

    def diff() -> None:
        def random_diff() -> list[str]:
            as_of, known = pairs()
            return cli(
                "diff",
                "--db",
                urls[-1],
                "--known-at",
                as_of,
                "--vs",
                known,
                "--as-of",
                as_of,
                "--format",
                "json",
            )

        timed("diff", samples, random_diff)

    def diff_wide() -> None:
        known, as_of = WIDE_DIFF
        timed(
            "diff_wide",
            repeats,
            lambda: cli(
                "diff", "--db", urls[-1], "--known-at", known, "--as-of", as_of, "--format", "json"
            ),
        )

    def statement() -> None:
        timed(
            "statement",
            repeats,
            lambda: cli(
                "statement", PAYER, "--db", urls[-1], "--as-of", "2023-12-31", "--format", "json"
            ),
        )

    def reconcile() -> None:
        timed(
            "reconcile",
            repeats,
            lambda: cli(
                "reconcile", CLAIM, "--db", urls[-1], "--as-of", "2023-12-31", "--format", "json"
            ),
        )

    def week_rule() -> None:
        timed(
            "week_rule",
            repeats,
            lambda: [*liability(urls[-1], "2023-12-31"), "--week-rule", "consecutive_runs"],
        )

    def verify() -> None:
        timed(
            "verify",
            1 if scale >= 100 else repeats,
            lambda: cli("verify", "--db", urls[-1], "--format", "json"),
        )

    def verify_sample() -> None:
        timed(
            "verify_sample",
            repeats,
            lambda: cli("verify", "--db", urls[-1], "--sample", str(SAMPLE), "--format", "json"),
        )

    def after_record() -> None:
        # A one-event record, then the first read (it pays any catch-up), then a second.
        line = folder / f"one-{uuid.uuid4().hex[:8]}.jsonl"
        line.write_text(
            json.dumps(
                {
                    "type": "CostIncurred",
                    "contract": "plcip",
                    "effective": "2023-06-30",
                    "recorded_on": "2023-07-01",
                    "key": f"bench-{line.stem}",
                    "category": "delivery",
                    "amount": "100.00",
                }
            )
            + "\n"
        )
        elapsed, peak, _ = run_measured(cli("record", str(line), "--db", urls[-1]))
        result["record_one_s"] = elapsed
        elapsed, peak, _ = run_measured(liability(urls[-1], "2023-12-31"))
        result["first_read_after_record_s"] = elapsed
        result["first_read_after_record_peak_mib"] = peak / 1024
        elapsed, _, _ = run_measured(liability(urls[-1], "2023-12-31"))
        result["second_read_after_record_s"] = elapsed

    def import_903() -> None:
        borough, header, episodes = return_903(history, folder)
        elapsed, peak, _ = run_measured(
            cli(
                "import-903",
                "--borough",
                borough,
                "--year",
                "2026",
                "--received-on",
                "2026-06-01",
                "--db",
                urls[-1],
                "--format",
                "json",
                str(header),
                str(episodes),
            )
        )
        result["import_903_s"] = elapsed
        result["import_903_peak_mib"] = peak / 1024

    def after_903() -> None:
        elapsed, peak, _ = run_measured(liability(urls[-1], "2023-12-31"))
        result["catch_up_after_903_s"] = elapsed
        result["catch_up_after_903_peak_mib"] = peak / 1024

    def naive() -> None:
        ours = [float(inner("ours", urls[-1])) for _ in range(3)]
        naive = [float(inner("naive", urls[-1])) for _ in range(2)]
        result["repeated_liability_s"] = median(ours)
        result["naive_liability_s"] = median(naive)
        result["speedup_vs_naive"] = median(naive) / median(ours)

    try:
        if not step("record", record):
            return result  # nothing to read from
        for name, work in (
            ("floor", floor),
            ("first report", first_report),
            ("rebuild", rebuild),
            ("liability", liabilities),
            ("explain", explain),
            ("diff", diff),
            ("diff wide", diff_wide),
            ("statement", statement),
            ("reconcile", reconcile),
            ("week-rule what-if", week_rule),
            ("verify", verify),
            ("verify --sample", verify_sample),
            ("first read after a record", after_record),
            ("import-903", import_903),
            ("read after 903", after_903),
            ("naive replay", naive),
        ):
            step(name, work)
    finally:
        store.drop_all()
    return result


def inner(what: str, *args: str) -> str:
    """Run an in-process measure in a child process, and return what it prints.

    Linux counts a child's peak memory from its parent's size at fork: a benchmark process
    that had itself replayed a large log would inflate every later command's figure. So the
    parent stays small, and the measures that need a whole process get one each.
    """
    _, _, out = run_measured([sys.executable, __file__, "--inner", what, *args], output=True)
    return out


def _inner(what: str, arg: str, *rest: str) -> None:
    if what == "raw":
        print(json.dumps(raw_library(Path(arg).read_text().splitlines())))
    elif what == "floor":
        print(json.dumps(floor(arg, rest[0])))
    elif what == "ours":
        print(read_model_liability(arg, date(2023, 12, 31), None))
    else:
        print(naive_liability(arg, date(2023, 12, 31)))


def main() -> None:
    if len(sys.argv) >= 4 and sys.argv[1] == "--inner":
        _inner(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--stores", nargs="*", default=["sqlite", "postgres"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds before a command is killed"
    )
    parser.add_argument(
        "--markdown", metavar="JSON", help="print a results file's tables as Markdown, run nothing"
    )
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return
    TIMEOUT[0] = args.timeout
    print(expected(args, Path(args.out)), file=sys.stderr, flush=True)
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for scale in args.scales:
            for kind in args.stores:
                repeats = args.repeats if scale < 100 else max(1, args.repeats - 1)
                print(f"scale {scale} {kind} ...", file=sys.stderr, flush=True)
                results.append(measure(scale, kind, repeats, folder, args.seed))
                Path(args.out).write_text(json.dumps(_report(results), indent=2) + "\n")
            history = demo_history(folder, scale)
            print(f"scale {scale} raw library ...", file=sys.stderr, flush=True)
            raw = json.loads(inner("raw", str(history)))
            results.append({"scale": scale, "store": "eventsourcing alone (sqlite)", **raw})
            Path(args.out).write_text(json.dumps(_report(results), indent=2) + "\n")
    _print(results)


# Demo events per unit of scale (6,398 at 1, 57,518 at 10, 568,718 at 100): for estimates.
EVENTS_PER_SCALE = 5_700
# Seconds per event per store for a whole `measure` when no earlier run says better.
GUESS_PER_EVENT = 0.004


def expected(args: argparse.Namespace, previous: Path) -> str:
    """How long the run should take: each store's step times of an earlier run (the results
    file about to be replaced), scaled by the events, else a rough guess per event."""
    per_event: dict[str, float] = {}
    largest: dict[str, int] = {}
    try:
        for r in json.loads(previous.read_text())["results"]:
            # The largest scale measured: start-up weighs less there, as it will at a larger.
            if (
                r.get("step_seconds")
                and r.get("events")
                and r["scale"] >= largest.get(r["store"], 0)
            ):
                largest[r["store"]] = r["scale"]
                per_event[r["store"]] = sum(r["step_seconds"].values()) / r["events"]
    except (OSError, ValueError, KeyError):
        pass
    total = 0.0
    for scale in args.scales:
        events = EVENTS_PER_SCALE * scale
        for kind in args.stores:
            repeats = args.repeats if scale < 100 else max(1, args.repeats - 1)
            total += events * per_event.get(kind, GUESS_PER_EVENT) * max(1.0, repeats / 3)
        total += events / 20_000  # the raw library side by side
    source = "from the step times in " + str(previous) if per_event else "a rough guess"
    return (
        f"expected: about {total / 60:.0f} min ({source}); each command is killed after "
        f"{args.timeout:.0f} s"
    )


# Times (seconds; lower is better) and rates (events/s; higher is better) compared across scales.
TIMES = (
    "first_report_s",
    "liability_s",
    "liability_known_at_s",
    "explain_s",
    "diff_s",
    "diff_wide_s",
    "statement_s",
    "reconcile_s",
    "week_rule_s",
    "verify_s",
    "verify_sample_s",
    "first_read_after_record_s",
    "import_903_s",
    "catch_up_after_903_s",
    "repeated_liability_s",
    "naive_liability_s",
)
RATES = ("append_events_per_s", "rebuild_events_per_s")


def growth(results: list[dict]) -> list[dict]:
    """How each operation's cost grows from one scale to the next (x10 the events): the ratio
    of times, and for rates the ratio of total times (events / rate)."""
    rows = []
    by = {(r["scale"], r["store"]): r for r in results}
    for (scale, store), big in sorted(by.items()):
        small = by.get((scale // 10, store))
        if scale < 10 or small is None or "events" not in big or "events" not in small:
            continue
        row: dict[str, Any] = {"store": store, "from_scale": scale // 10, "to_scale": scale}
        for key in TIMES:
            if key in big and key in small:
                row[key] = big[key] / small[key]
        for key in RATES:
            if key in big and key in small:
                row[key.replace("_events_per_s", "_time")] = (big["events"] / big[key]) / (
                    small["events"] / small[key]
                )
        rows.append(row)
    return rows


READS = (
    "liability_s",
    "liability_known_at_s",
    "explain_s",
    "diff_s",
    "diff_wide_s",
    "statement_s",
    "reconcile_s",
    "week_rule_s",
    "verify_s",
    "verify_sample_s",
    "first_read_after_record_s",
    "catch_up_after_903_s",
    "repeated_liability_s",
)


def postgres_vs_sqlite(results: list[dict]) -> list[dict]:
    """Each read operation's PostgreSQL time over its SQLite time, per scale (target <= 2)."""
    by = {(r["scale"], r["store"]): r for r in results}
    rows = []
    for scale in sorted({r["scale"] for r in results}):
        pg, lite = by.get((scale, "postgres")), by.get((scale, "sqlite"))
        if pg and lite:
            rows.append(
                {"scale": scale, **{k: pg[k] / lite[k] for k in READS if k in pg and k in lite}}
            )
    return rows


def _report(results: list[dict]) -> dict:
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "date": date.today().isoformat(),
        "command": "python " + " ".join(sys.argv),
        "results": results,
        "growth": growth(results),
        "postgres_vs_sqlite": postgres_vs_sqlite(results),
    }


COLUMNS = [
    ("scale", "scale", "{}"),
    ("store", "store", "{}"),
    ("events", "events", "{:,}"),
    ("append_events_per_s", "append ev/s", "{:,.0f}"),
    ("floor_events_per_s", "floor ev/s", "{:,.0f}"),
    ("floor_with_index_events_per_s", "floor+index ev/s", "{:,.0f}"),
    ("rebuild_events_per_s", "rebuild ev/s", "{:,.0f}"),
    ("replay_events_per_s", "replay ev/s", "{:,.0f}"),
    ("liability_s", "liability s", "{:.2f}"),
    ("liability_known_at_s", "liab@K s", "{:.2f}"),
    ("explain_s", "explain s", "{:.2f}"),
    ("diff_s", "diff s", "{:.2f}"),
    ("catch_up_after_903_s", "after 903 s", "{:.2f}"),
    ("speedup_vs_naive", "x naive", "{:.0f}"),
    ("record_peak_mib", "record MiB", "{:.0f}"),
]

# The second table: each command's time and peak memory (the list of questions).
COMMANDS = [
    ("first_report", "first report"),
    ("diff_wide", "diff wide"),
    ("statement", "statement"),
    ("reconcile", "reconcile"),
    ("week_rule", "week-rule what-if"),
    ("verify", "verify"),
    ("verify_sample", "verify --sample 1000"),
    ("first_read_after_record", "first read after record"),
    ("import_903", "import-903"),
    ("rebuild", "rebuild"),
]


def command_rows(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the commands table: seconds and peak MiB of each, per store."""
    header = ["scale", "store"] + [f"{title} s / MiB" for _, title in COMMANDS]
    rows = []
    for r in results:
        if "append_events_per_s" not in r or r["store"].startswith("eventsourcing"):
            continue
        cells = [str(r["scale"]), r["store"]]
        for key, _ in COMMANDS:
            seconds = r.get(f"{key}_s")
            if key == "rebuild" and "rebuild_events_per_s" in r:
                seconds = r["events"] / r["rebuild_events_per_s"]
            peak = r.get(f"{key}_peak_mib")
            cells.append(
                ""
                if seconds is None
                else f"{seconds:.2f}" + ("" if peak is None else f" / {peak:.0f}")
            )
        rows.append(cells)
    return header, rows


def markdown(report: dict) -> str:
    """The results, growth and store ratios as Markdown tables (for the README)."""

    def table(header: list[str], rows: list[list[str]]) -> str:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])

    results = report["results"]
    out = [
        table(
            [title for _, title, _ in COLUMNS],
            [[fmt.format(r[k]) if k in r else "" for k, _, fmt in COLUMNS] for r in results],
        )
    ]
    header, commands = command_rows(results)
    if commands:
        out.append(table(header, commands))
    rows = report.get("growth") or growth(results)
    keys = [k for k in (*TIMES, "append_time", "rebuild_time") if any(k in r for r in rows)]
    out.append(
        table(
            ["store", "scales", *(k.removesuffix("_s") for k in keys)],
            [
                [r["store"], f"{r['from_scale']}→{r['to_scale']}"]
                + [f"{r[k]:.1f}" if k in r else "" for k in keys]
                for r in rows
            ],
        )
    )
    ratios = report.get("postgres_vs_sqlite") or postgres_vs_sqlite(results)
    out.append(
        table(
            ["scale", *(k.removesuffix("_s") for k in READS)],
            [[str(r["scale"]), *(f"{r[k]:.2f}" if k in r else "" for k in READS)] for r in ratios],
        )
    )
    return "\n\n".join(out)


def _print(results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="soc-ledger scale benchmark (medians)")
    for _, title, _ in COLUMNS:
        table.add_column(title, justify="right")
    for r in results:
        table.add_row(*(fmt.format(r[k]) if k in r else "" for k, _, fmt in COLUMNS))
    console = Console(width=220)
    console.print(table)
    header, commands = command_rows(results)
    if commands:
        listed = Table(title="commands: median seconds / peak MiB")
        for title in header:
            listed.add_column(title, justify="right")
        for row in commands:
            listed.add_row(*row)
        console.print(listed)
    rows = growth(results)
    if rows:
        keys = [k for k in (*TIMES, "append_time", "rebuild_time") if any(k in r for r in rows)]
        grown = Table(title="growth: time at 10x the events / time (target <= 12)")
        for title in ("store", "scales", *keys):
            grown.add_column(title.removesuffix("_s"), justify="right")
        for r in rows:
            grown.add_row(
                r["store"],
                f"{r['from_scale']}->{r['to_scale']}",
                *(f"{r[k]:.1f}" if k in r else "" for k in keys),
            )
        console.print(grown)
    ratios = postgres_vs_sqlite(results)
    if ratios:
        versus = Table(title="reads: PostgreSQL time / SQLite time (target <= 2)")
        for title in ("scale", *READS):
            versus.add_column(title.removesuffix("_s"), justify="right")
        for r in ratios:
            versus.add_row(str(r["scale"]), *(f"{r[k]:.2f}" if k in r else "" for k in READS))
        console.print(versus)


if __name__ == "__main__":
    main()
