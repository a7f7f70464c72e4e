"""Pseudonyms for children's ids: HMAC-SHA256 under a key held outside the database (SPEC §11).

The key comes from `SOC_LEDGER_KEY`, else (SQLite only) a key file beside the database created
on first use with owner-only permissions. PostgreSQL ledgers must be given the key.

A fingerprint of the key (an HMAC of a constant under it, never the key) is recorded in the
ledger on first use; a different key is then refused with a clear error instead of silently
making pseudonyms that match no child, and a lost key file is never quietly replaced.

Where the fingerprint is read from, and why. A pseudonym alone cannot prove a key (it is an
HMAC of a child id the ledger no longer holds), so the fingerprint must be kept, and a helper
row (`ledger_meta`) is not enough: deleting it would let a different key be taken as the first.
So every referral's sealed envelope carries the fingerprint of the key its pseudonym was made
with (`store.envelope`), covered by the hash chain like the event. The ledger's key is the one
the log's first referral names; the `ledger_meta` row is only its copy (restored from the log
when missing) and decides alone only for a log with no referral yet (a new store: the first
key used is recorded) or one whose first referral was written before envelopes carried it.
For such an older log a missing row is refused, since the log holds pseudonyms made with a
key it cannot name: the row must be restored from a backup of the store.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from soc_ledger.ledger.location import Location, StoreError
from soc_ledger.ledger.meta import meta_get, meta_set_once, meta_set_once_in

PREFIX = "hmac-sha256:"
_PSEUDONYM = re.compile(re.escape(PREFIX) + "[0-9a-f]{64}")
META = "pseudonym_key"


def is_pseudonym(value: object) -> bool:
    """Exactly what `Pseudonymiser.pseudonym` writes: the prefix alone proves nothing (a child
    id written as `hmac-sha256:SUT-000123` is still the child's id)."""
    return isinstance(value, str) and _PSEUDONYM.fullmatch(value) is not None


class Pseudonymiser:
    def __init__(
        self,
        location: Location,
        engine: Engine | None = None,
        first_referral: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        self.location = location
        self.engine = engine
        # The stored envelope of the log's first referral (None when there is none).
        self.first_referral = first_referral
        self._key: bytes | None = None
        # While an append transaction is open the fingerprint is recorded through it.
        self.transaction: Any = None

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = self._checked()
        return self._key

    def _checked(self) -> bytes:
        if self.engine is None:
            return load_key(self.location)
        stored = meta_get(self.engine, META)
        referral = self.first_referral() if self.first_referral is not None else None
        logged = referral.get("pseudonym_key") if referral is not None else None
        if stored is None and referral is not None and logged is None:
            raise StoreError(
                "the pseudonym key's fingerprint is missing from this ledger (row "
                f"{META!r} of table ledger_meta), yet its log holds referrals pseudonymised "
                "with a key it cannot name: any other key would match no child. Restore that "
                "row from a backup of the store; nothing was written"
            )
        key = load_key(self.location, create=stored is None and referral is None)
        mine = fingerprint(key)
        recorded = logged or stored
        if stored is None:  # a new store (the first key used), or the row lost: the log's
            value = recorded or mine
            if self.transaction is not None:
                stored = meta_set_once_in(self.transaction, META, value)
            else:
                stored = meta_set_once(self.engine, META, value)
            recorded = recorded or stored
        if recorded != mine:
            raise StoreError(
                f"the pseudonym key is not this ledger's (fingerprint {mine}, the ledger's "
                f"{recorded}): with another key no child would match; "
                f"{_where_the_key_comes_from(self.location)}"
            )
        return key

    def pseudonym(self, child_ref: str) -> str:
        if is_pseudonym(child_ref):
            return child_ref  # already a pseudonym (re-read from the store)
        digest = hmac.new(self.key, child_ref.encode(), hashlib.sha256).hexdigest()
        return PREFIX + digest

    def fingerprint(self) -> str:
        return fingerprint(self.key)


def fingerprint(key: bytes) -> str:
    """Identifies the key without revealing it, so a wrong key is caught, not mismatched."""
    return hmac.new(key, b"soc-ledger key check", hashlib.sha256).hexdigest()[:16]


def key_file(location: Location) -> str:
    return location.path + ".key"


def _where_the_key_comes_from(location: Location) -> str:
    if location.kind == "sqlite":
        return f"set SOC_LEDGER_KEY, or restore the key file {key_file(location)}"
    return "set SOC_LEDGER_KEY to the ledger's key"


def load_key(location: Location, create: bool = True) -> bytes:
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
        if not create:
            raise StoreError(
                f"the pseudonym key is missing: SOC_LEDGER_KEY is not set and the key file "
                f"{path} does not exist, but this ledger's pseudonyms were made with a key; "
                f"{_where_the_key_comes_from(location)}"
            )
        _create_key_file(path)
    if os.stat(path).st_mode & 0o077:
        raise StoreError(
            f"the pseudonym key file {path} can be read by others: make it owner-only "
            f"(chmod 600 {path})"
        )
    with open(path) as handle:
        key = handle.read().strip()
    if len(key) < 16:
        raise StoreError(f"the pseudonym key file {path} is damaged (too short)")
    return key.encode()


def _create_key_file(path: str) -> None:
    """Write a new key beside the database, owner-only, appearing whole or not at all (two
    first writers at once both end up with the one that was linked first)."""
    temporary = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)
