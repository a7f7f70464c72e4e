"""Encryption at rest of event payloads (SPEC §11), with the event library's own cipher.

Off by default. Set `CIPHER_KEY` (a base64 AES key of 16, 24 or 32 bytes; make one with
`python -c "from eventsourcing.cipher import AESCipher; print(AESCipher.create_key(32))"`)
and, optionally, `CIPHER_TOPIC` (default `eventsourcing.cipher:AESCipher`, AES-GCM). Then:

- the library encrypts every stored event's state (our `LedgerMapper` calls its cipher);
- the read models encrypt the columns that hold an event's payload (`ledger_events.payload`,
  `fact_versions.payload`) with the same cipher: `seal_text` / `open_text`, marked `enc:`.

A ledger is encrypted or not from its first append: the choice and a fingerprint of the key
(never the key) are kept in `ledger_meta`, so a missing or wrong key is a clear error, not
undecodable bytes. Without encryption nothing here loads the event library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine

from soc_ledger.ledger.location import StoreError
from soc_ledger.ledger.meta import meta_get, meta_set_once_in

MARK = "enc:"
DEFAULT_TOPIC = "eventsourcing.cipher:AESCipher"
META = "encryption"
CREATE_KEY = (
    'python -c "from eventsourcing.cipher import AESCipher; print(AESCipher.create_key(32))"'
)


def _configured() -> tuple[str, str] | None:
    key = os.environ.get("CIPHER_KEY")
    if not key:
        return None
    return os.environ.get("CIPHER_TOPIC") or DEFAULT_TOPIC, key


@lru_cache(maxsize=4)
def _cipher(topic: str, key: str) -> Any:
    from eventsourcing.utils import Environment, resolve_topic

    try:
        return resolve_topic(topic)(Environment("SOCLedger", {"CIPHER_KEY": key}))
    except Exception as exc:  # bad base64, wrong size, unknown topic, missing package
        raise StoreError(
            f"CIPHER_KEY / CIPHER_TOPIC cannot make a cipher ({exc}); make a key with {CREATE_KEY}"
        ) from None


def cipher() -> Any | None:
    """The cipher the environment asks for, or None when encryption is off."""
    configured = _configured()
    return _cipher(*configured) if configured else None


def mode() -> str:
    """What the environment asks for: 'none', or 'aes:<key fingerprint>'."""
    configured = _configured()
    if configured is None:
        return "none"
    cipher()  # a key that cannot make a cipher fails here, clearly
    digest = hmac.new(configured[1].encode(), b"soc-ledger cipher key check", hashlib.sha256)
    return "aes:" + digest.hexdigest()[:16]


def seal_text(text: str) -> str:
    """A read-model column value: encrypted and marked when encryption is on, else as is."""
    c = cipher()
    if c is None:
        return text
    return MARK + base64.b64encode(c.encrypt(text.encode())).decode()


def open_text(value: str) -> str:
    """The clear text of a column written by `seal_text` (plain values pass through)."""
    if not value.startswith(MARK):
        return value
    c = cipher()
    if c is None:
        raise StoreError("this ledger's payloads are encrypted: set CIPHER_KEY to its key")
    try:
        return c.decrypt(base64.b64decode(value[len(MARK) :])).decode()
    except ValueError as exc:
        raise StoreError(
            f"cannot decrypt a read-model payload: wrong CIPHER_KEY? ({exc})"
        ) from None


def check_store(engine: Engine, holds_events: Callable[[], bool]) -> None:
    """The environment's choice must be the ledger's: refuse a missing, extra or wrong key."""
    stored = meta_get(engine, META)
    wanted = mode()
    if stored is None:
        if wanted != "none" and holds_events():
            raise StoreError(
                "this ledger was written without encryption: unset CIPHER_KEY "
                "(encryption is chosen when a ledger is created)"
            )
        return
    if stored == wanted:
        return
    if stored == "none":
        raise StoreError(
            "this ledger was created without encryption: unset CIPHER_KEY "
            "(encryption is chosen when a ledger is created)"
        )
    if wanted == "none":
        raise StoreError("this ledger's event payloads are encrypted: set CIPHER_KEY to its key")
    raise StoreError(
        f"CIPHER_KEY is not this ledger's key (fingerprint {wanted[4:]}, the ledger's "
        f"{stored[4:]}): set CIPHER_KEY to the key the ledger was created with"
    )


def claim_in(txn) -> None:
    """Record the choice with the first append, inside the transaction that writes it (so a
    batch refused records nothing)."""
    meta_set_once_in(txn, META, mode())
