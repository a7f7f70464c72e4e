"""Stores for tests: a fresh SQLite file, and a fresh PostgreSQL database per test run.

With CI=true the PostgreSQL tests must run: an unreachable server is a failure, not a skip.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

PG_DSN = os.environ.get("SOC_LEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

os.environ.setdefault("SOC_LEDGER_KEY", "test-key-0123456789abcdef")


def _admin():
    import psycopg

    return psycopg.connect(PG_DSN + "/postgres", autocommit=True)


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The base URL of a reachable PostgreSQL server."""
    try:
        with _admin() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # psycopg raises several kinds for a down server
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {PG_DSN} and CI=true: {exc}")
        pytest.skip(f"PostgreSQL is not reachable at {PG_DSN}: {exc}")
    return PG_DSN


@pytest.fixture(scope="session")
def pg_run_database(pg_server: str):
    """One new database for this test run, dropped at the end."""
    name = f"soc_ledger_test_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_run_database: str, pg_server: str) -> str:
    """A clean ledger in the run's database: each test gets its own schema-free reset."""
    import psycopg

    with psycopg.connect(f"{pg_server}/{pg_run_database}", autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return f"{pg_server}/{pg_run_database}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each store test runs on the embedded default and on the server store."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def quickstart_lines() -> list[str]:
    return (EXAMPLES / "quickstart.jsonl").read_text().splitlines()
