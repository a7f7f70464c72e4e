"""SPEC §11 concurrency: several writers at once never lose, duplicate or reorder events, never
break the chain; a conflicting append is retried, or refused with a clear message.

The writers are separate processes (spawned, each with its own connections), started together
and bounded in time: the pool's results must come back within WRITERS_TIMEOUT seconds.
"""

from __future__ import annotations

import multiprocessing
import time
from contextlib import nullcontext

import pytest

from soc_ledger.ledger import service
from soc_ledger.ledger.service import Ledger
from soc_ledger.ledger.store import Appending
from soc_ledger.projections import verification
from tests import concurrent_writer
from tests.helpers import line, run, trail, write_lines

WRITERS_TIMEOUT = 240


def run_writers(url: str, writers: int, batches: int, cases_per_batch: int):
    with Ledger(url) as ledger:
        ledger.record_lines(concurrent_writer.setup_lines(), "setup")
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        go = manager.Event()
        with context.Pool(writers) as pool:
            pending = [
                pool.apply_async(
                    concurrent_writer.write, (url, w, batches, cases_per_batch, go)
                )
                for w in range(writers)
            ]
            time.sleep(0.5)  # let every process start and open its ledger
            started = time.monotonic()
            go.set()
            results = [p.get(timeout=WRITERS_TIMEOUT) for p in pending]
            elapsed = time.monotonic() - started
    return results, elapsed


def check_log(url: str, writers: int, events_each: int, results) -> None:
    setup = len(concurrent_writer.setup_lines())
    expected = setup + writers * events_each
    with Ledger(url) as ledger:
        notes = list(ledger.log.notifications())
        positions = [n.id for n in notes]
        # Every event once, positions gapless: nothing lost, nothing duplicated.
        assert positions == list(range(1, expected + 1))
        keys = [ledger.log.mapper.decode_state(n)["event"]["key"] for n in notes]
        assert len(set(keys)) == expected
        by_key = dict(zip(keys, positions, strict=True))
        for w, batches in enumerate(results):
            mine = concurrent_writer.keys_of(w, events_each // 5)
            # Each writer's events are in the log in the order it appended them, each batch
            # one contiguous run (one transaction).
            assert [by_key[k] for k in mine] == [p for batch in batches for p in batch]
            for batch in batches:
                assert batch == list(range(batch[0], batch[0] + len(batch)))
            assert sorted(p for batch in batches for p in batch) == [by_key[k] for k in mine]
        report = verification.verify(ledger)
        assert report.ok, [str(f) for f in report.findings]
        assert report.events == expected


@pytest.mark.postgres
def test_eight_writers_of_500_events_each_on_postgres_lose_and_duplicate_nothing(pg_url):
    results, elapsed = run_writers(pg_url, writers=8, batches=10, cases_per_batch=10)
    check_log(pg_url, 8, 500, results)
    assert elapsed < WRITERS_TIMEOUT


def test_four_writers_on_sqlite_lose_and_duplicate_nothing(sqlite_url):
    results, _ = run_writers(sqlite_url, writers=4, batches=5, cases_per_batch=4)
    check_log(sqlite_url, 4, 100, results)


# --- a conflicting append --------------------------------------------------------------------


def _booster(key: str, effective: str) -> str:
    return line(
        type="BoosterSession", contract="plcip", effective=effective, key=key, case="C001"
    )


def test_a_conflicting_append_is_validated_again_and_retried(
    db_url, tmp_path, quickstart_lines, monkeypatch
):
    """A writer that bypassed the lock appends to the same stream between validation and
    append: the library refuses the stale version, and the batch is redone on the new log."""
    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines), "--db", db_url)
    original = Appending.insert
    intruded = []

    def append(self, envelopes):
        if not intruded:
            intruded.append(True)
            monkeypatch.setattr(service, "writer_lock", lambda location: nullcontext())
            with Ledger(db_url) as intruder:
                intruder.record_lines([_booster("intruder", "2018-09-01")], "intruder")
            monkeypatch.undo()
        return original(self, envelopes)

    monkeypatch.setattr(Appending, "insert", append)
    with Ledger(db_url) as ledger:
        outcome = ledger.record_lines([_booster("mine", "2018-10-01")], "mine")
    monkeypatch.undo()
    assert outcome.appended == 1
    events = trail(db_url)
    assert [e["key"] for e in events[-2:]] == ["intruder", "mine"]
    assert outcome.positions == [events[-1]["position"]]
    with Ledger(db_url) as ledger:
        report = verification.verify(ledger)
    assert report.ok, [str(f) for f in report.findings]


def test_an_append_that_keeps_conflicting_is_refused_clearly(
    sqlite_url, tmp_path, quickstart_lines, monkeypatch
):
    from eventsourcing.persistence import IntegrityError

    run("record", write_lines(tmp_path / "q.jsonl", quickstart_lines), "--db", sqlite_url)
    before = trail(sqlite_url)
    attempts = []

    def append(self, envelopes):
        attempts.append(len(envelopes))
        raise IntegrityError("UNIQUE constraint failed: stored_events.originator_id")

    monkeypatch.setattr(Appending, "insert", append)
    path = write_lines(tmp_path / "b.jsonl", [_booster("b1", "2018-09-01")])
    result = run("record", path, "--db", sqlite_url)
    monkeypatch.undo()
    assert attempts == [1] * service.APPEND_ATTEMPTS
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}:1: (append): another writer appended to the same streams at the same moment "
        "3 times (UNIQUE constraint failed: stored_events.originator_id); run the command again",
        f"error: {path}: 1 problem; nothing was written",
    ]
    assert trail(sqlite_url) == before
