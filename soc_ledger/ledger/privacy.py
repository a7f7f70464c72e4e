"""Pseudonyms for children's ids: HMAC-SHA256 under a key held outside the database (SPEC §11).

The key comes from `SOC_LEDGER_KEY`, else (SQLite only) a key file beside the database created
on first use with owner-only permissions. PostgreSQL ledgers must be given the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from soc_ledger.ledger.location import Location, StoreError

PREFIX = "hmac-sha256:"


class Pseudonymiser:
    def __init__(self, location: Location) -> None:
        self.location = location
        self._key: bytes | None = None

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = load_key(self.location)
        return self._key

    def pseudonym(self, child_ref: str) -> str:
        if child_ref.startswith(PREFIX):
            return child_ref  # already a pseudonym (re-read from the store)
        digest = hmac.new(self.key, child_ref.encode(), hashlib.sha256).hexdigest()
        return PREFIX + digest

    def fingerprint(self) -> str:
        """Identifies the key without revealing it, so a wrong key is caught, not mismatched."""
        return hmac.new(self.key, b"soc-ledger key check", hashlib.sha256).hexdigest()[:16]


def key_file(location: Location) -> str:
    return location.path + ".key"


def load_key(location: Location) -> bytes:
    env = os.environ.get("SOC_LEDGER_KEY")
    if env:
        if len(env) < 16:
            raise StoreError("SOC_LEDGER_KEY is too short: use at least 16 characters")
        return env.encode()
    if location.kind != "sqlite":
        raise StoreError(
            "set SOC_LEDGER_KEY: a PostgreSQL ledger needs the pseudonym key from the environment"
        )
    path = key_file(location)
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    with open(path) as handle:
        key = handle.read().strip()
    if len(key) < 16:
        raise StoreError(f"the pseudonym key file {path} is damaged (too short)")
    return key.encode()
