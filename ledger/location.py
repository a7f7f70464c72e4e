"""Where a ledger lives (`--db` / `SOC_LEDGER_DB`), and the canonical form of content.

Kept apart from the event store so that a report whose read models are current opens the
database without loading the event-sourcing library.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import orjson

from soc_ledger.domain.errors import LedgerError

DEFAULT_DB = "sqlite:///ledger.db"


class StoreError(LedgerError):
    """The store cannot be opened or used as asked; the message says why."""


def canonical(obj: Any) -> bytes:
    """One byte string per content: the basis of digests and the hash chain.

    Sorted keys, no spaces, UTF-8. orjson writes exactly these bytes (a property test checks
    it against the standard library) twenty times faster; what it cannot write (an integer
    beyond 64 bits, a lone surrogate) goes the standard library's way, errors included.
    """
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def hidden(url: str) -> str:
    """`url` with the password of its user part (`user:password@`) shown as ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    user, at, host = authority.rpartition("@")
    if not at or ":" not in user:
        return url
    return f"{scheme}://{user.split(':', 1)[0]}:***@{host}{slash}{tail}"


@dataclass(frozen=True)
class Location:
    """Where a ledger lives, parsed from `--db` / `SOC_LEDGER_DB`."""

    url: str
    kind: str  # "sqlite" | "postgresql"
    path: str = ""  # sqlite
    host: str = ""
    port: str = ""
    user: str = ""
    password: str = ""
    dbname: str = ""

    @classmethod
    def parse(cls, url: str | None) -> Location:
        url = url or os.environ.get("SOC_LEDGER_DB") or DEFAULT_DB
        if url.startswith("sqlite:///"):
            path = url[len("sqlite:///") :]
            if not path:
                raise StoreError(f"no file in {hidden(url)!r}: write sqlite:///path/to/ledger.db")
            return cls(url, "sqlite", path=path)
        parts = urlparse(url)
        if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            dbname = parts.path.lstrip("/")
            if not dbname:
                raise StoreError(
                    f"no database name in {hidden(url)!r}: write postgresql://user@host/db"
                )
            return cls(
                url,
                "postgresql",
                host=parts.hostname or "127.0.0.1",
                port=str(parts.port or 5432),
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                dbname=dbname,
            )
        raise StoreError(
            f"unsupported database URL {hidden(url)!r}: "
            f"use sqlite:///path or postgresql://user@host/db"
        )

    @property
    def shown(self) -> str:
        """The URL as it may be printed: its password, if any, as ***."""
        return hidden(self.url)

    def library_env(self) -> dict[str, str]:
        if self.kind == "sqlite":
            return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": self.path}
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": self.port,
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            # Insert through the library's database function rather than its pipelined
            # executemany: a large batch through the psycopg pipeline was seen to stall
            # (the server waiting to read, the client polling; cf. psycopg issue #685).
            "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
            # A record is one transaction, checked a chunk at a time between its inserts: the
            # library's default (5 s idle in a transaction, then the server ends it) is shorter
            # than checking a chunk on a busy machine. Ten minutes still ends an abandoned one.
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "600",
        }

    def connect(self, **options: Any) -> Any:
        """A psycopg connection to this PostgreSQL ledger's database, with `options`."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=self.dbname,
            **options,
        )

    def sqlalchemy_url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{self.dbname}"


