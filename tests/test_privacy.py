"""SPEC §11 privacy: pseudonyms under a key held outside the database, and payloads encrypted
at rest when asked.

- A referred child's CHILD id is nowhere in the SQLite files, whether it came with a referral
  or matched an SSDA903 row; only its HMAC-SHA256 pseudonym is.
- The key comes from SOC_LEDGER_KEY, or a key file created on first use beside the SQLite file,
  owner-only. A wrong key, or a lost key file, is a clear error naming what to do, and nothing
  is written: never pseudonyms that silently match no child.
- With CIPHER_KEY set, the database files hold no payload text; reports read the same.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

import pytest

from soc_ledger.ledger.location import Location
from tests.helpers import run, trail, write_lines
from tests.test_ssda903 import contract_lines, episode, import_903, referral, write_return

CHILD = "CHILD-ZQ7X-81734"  # the borough's SSDA903 CHILD id of the referred child
OTHER = "CHILD-NOTREFERRED-5521"  # a child in the return who was never referred


def db_bytes(db: str) -> bytes:
    """Every file the SQLite ledger keeps its data in (the database and its WAL)."""
    path = Location.parse(db).path
    return b"".join(
        Path(p).read_bytes() for p in (path, path + "-wal", path + "-shm") if os.path.exists(p)
    )


def record(db: str, path: str):
    return run("record", path, "--db", db)


def referred(db: str, tmp_path: Path) -> None:
    lines = contract_lines(["SUT"]) + [referral("C1", "SUT", CHILD, "2006-05-17", "2018-06-01")]
    result = record(db, write_lines(tmp_path / "referral.jsonl", lines))
    assert result.exit_code == 0, result.output


def a_return(tmp_path: Path) -> tuple[str, str]:
    return write_return(
        tmp_path / "903",
        "sut-2019",
        [
            episode(CHILD, "2018-10-01", "2018-11-15", "E11"),
            episode(OTHER, "2018-05-01", "2018-06-01", "E11"),
        ],
    )


def test_a_referred_childs_id_is_nowhere_in_the_sqlite_file(sqlite_url, tmp_path):
    referred(sqlite_url, tmp_path)
    imported = import_903(sqlite_url, "SUT", a_return(tmp_path), "2019-05-01", year=2019)
    assert imported.exit_code == 0, imported.output
    assert "children matched to referred cases" in imported.stdout
    events = trail(sqlite_url)
    assert [e["type"] for e in events].count("CareEpisodeStarted") == 1  # the child matched
    assert run("verify", "--db", sqlite_url).exit_code == 0

    data = db_bytes(sqlite_url)
    assert CHILD.encode() not in data
    assert OTHER.encode() not in data
    assert b"2006-05-17" not in data  # the birth date: year and month only
    key = os.environ["SOC_LEDGER_KEY"].encode()
    pseudonym = hmac.new(key, CHILD.encode(), hashlib.sha256).hexdigest()
    assert ("hmac-sha256:" + pseudonym).encode() in data
    stored = next(e for e in events if e["type"] == "ReferralReceived")["event"]
    assert stored["child_ref"] == "hmac-sha256:" + pseudonym
    assert stored["date_of_birth"] == "2006-05"


def test_without_sqlite_ledger_key_a_key_file_is_made_owner_only_and_reused(
    sqlite_url, tmp_path, monkeypatch
):
    monkeypatch.delenv("SOC_LEDGER_KEY")
    referred(sqlite_url, tmp_path)
    key_file = Path(Location.parse(sqlite_url).path + ".key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip().encode()
    assert len(key) == 64
    # The same key matches the SSDA903 rows in a later command.
    imported = import_903(sqlite_url, "SUT", a_return(tmp_path), "2019-05-01", year=2019)
    assert imported.exit_code == 0, imported.output
    assert [e["type"] for e in trail(sqlite_url)].count("CareEpisodeStarted") == 1
    assert CHILD.encode() not in db_bytes(sqlite_url)


def test_a_wrong_key_is_refused_clearly_and_writes_nothing(sqlite_url, tmp_path, monkeypatch):
    referred(sqlite_url, tmp_path)
    before = trail(sqlite_url)
    monkeypatch.setenv("SOC_LEDGER_KEY", "a-different-key-0123456789")
    more = write_lines(
        tmp_path / "more.jsonl", [referral("C2", "SUT", "CHILD-2", "2007-01-01", "2018-07-01")]
    )
    result = record(sqlite_url, more)
    assert result.exit_code == 1
    first, last = result.stderr.splitlines()
    assert first.startswith(f"{more}:1: child_ref: the pseudonym key is not this ledger's")
    assert "with another key no child would match; set SOC_LEDGER_KEY" in first
    assert last == f"error: {more}: 1 problem; nothing was written"

    imported = import_903(sqlite_url, "SUT", a_return(tmp_path), "2019-05-01", year=2019)
    assert imported.exit_code == 1
    assert imported.stderr.startswith("error: the pseudonym key is not this ledger's")
    assert trail(sqlite_url) == before


def test_a_lost_key_file_is_never_quietly_replaced(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.delenv("SOC_LEDGER_KEY")
    referred(sqlite_url, tmp_path)
    key_file = Path(Location.parse(sqlite_url).path + ".key")
    key_file.unlink()
    imported = import_903(sqlite_url, "SUT", a_return(tmp_path), "2019-05-01", year=2019)
    assert imported.exit_code == 1
    assert imported.stderr.startswith("error: the pseudonym key is missing")
    assert f"restore the key file {key_file}" in imported.stderr
    assert not key_file.exists()


def test_a_key_file_others_can_read_is_refused(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.delenv("SOC_LEDGER_KEY")
    referred(sqlite_url, tmp_path)
    key_file = Path(Location.parse(sqlite_url).path + ".key")
    key_file.chmod(0o644)
    imported = import_903(sqlite_url, "SUT", a_return(tmp_path), "2019-05-01", year=2019)
    assert imported.exit_code == 1
    assert "can be read by others: make it owner-only (chmod 600" in imported.stderr


@pytest.mark.postgres
def test_a_postgres_ledger_must_be_given_the_key(pg_url, tmp_path, monkeypatch):
    monkeypatch.delenv("SOC_LEDGER_KEY")
    lines = contract_lines(["SUT"]) + [referral("C1", "SUT", CHILD, "2006-05-17", "2018-06-01")]
    path = write_lines(tmp_path / "referral.jsonl", lines)
    result = record(pg_url, path)
    assert result.exit_code == 1
    assert f"{path}:3: child_ref: set SOC_LEDGER_KEY: a PostgreSQL ledger needs" in result.stderr
    assert trail(pg_url) == []


# --- encryption at rest ------------------------------------------------------------------------

PAYLOAD_TEXT = [
    b"Pan London Care Impact Partnership",  # the contract's name
    b"panel minutes 2018-03",  # a source
    b"903 resubmission: stay ended a week later",  # a correction's reason
    b"school-exclusion",  # behaviours
    b"hmac-sha256:",  # the pseudonym
    b"Merton",  # a borough's name
    b"founding-five",  # a cap
    b"5061888.00",  # its amount
]


@pytest.fixture
def cipher_key(monkeypatch) -> str:
    from eventsourcing.cipher import AESCipher

    key = AESCipher.create_key(32)
    monkeypatch.setenv("CIPHER_KEY", key)
    return key


def test_with_encryption_the_database_file_holds_no_payload_text(
    sqlite_url, tmp_path, quickstart_lines, cipher_key, monkeypatch
):
    path = write_lines(tmp_path / "quickstart.jsonl", quickstart_lines)
    assert record(sqlite_url, path).exit_code == 0
    explained = run("explain", "C001", "--db", sqlite_url, "--as-of", "2019-03-31")
    assert explained.exit_code == 0, explained.output
    assert run("verify", "--db", sqlite_url).exit_code == 0
    data = db_bytes(sqlite_url)
    assert data  # the ledger is there, and none of what the events say
    for text in PAYLOAD_TEXT:
        assert text not in data, text
    # ...while a ledger without the cipher keeps them readable (the test can see them).
    plain = f"sqlite:///{tmp_path / 'plain.db'}"
    monkeypatch.delenv("CIPHER_KEY")
    assert record(plain, path).exit_code == 0
    assert all(text in db_bytes(plain) for text in PAYLOAD_TEXT)


def test_an_encrypted_ledger_reads_as_a_plain_one(db_url, tmp_path, quickstart_lines, monkeypatch):
    from eventsourcing.cipher import AESCipher

    path = write_lines(tmp_path / "quickstart.jsonl", quickstart_lines)
    plain_db = f"sqlite:///{tmp_path / 'plain.db'}"
    key = AESCipher.create_key(16)

    def both(*args: str) -> tuple:
        monkeypatch.delenv("CIPHER_KEY", raising=False)
        plain = run(*args, "--db", plain_db)
        monkeypatch.setenv("CIPHER_KEY", key)
        encrypted = run(*args, "--db", db_url)
        assert plain.exit_code == encrypted.exit_code == 0, plain.output + encrypted.output
        return plain.stdout, encrypted.stdout

    both("record", path)
    for args in (
        ["liability", "--as-of", "2019-03-31", "--format", "json"],
        ["liability", "--as-of", "2019-03-31", "--known-at", "2019-06-01", "--format", "json"],
        ["explain", "C001", "--as-of", "2019-03-31", "--format", "json"],
    ):
        plain, encrypted = both(*args)
        assert json.loads(plain) == json.loads(encrypted)
    plain, encrypted = both("events", "--format", "json")
    assert [e["event"] for e in json.loads(plain)] == [e["event"] for e in json.loads(encrypted)]
    assert json.loads(both("verify", "--format", "json")[1])["ok"]


def test_a_missing_or_wrong_cipher_key_is_a_clear_error(
    sqlite_url, tmp_path, quickstart_lines, cipher_key, monkeypatch
):
    assert record(sqlite_url, write_lines(tmp_path / "q.jsonl", quickstart_lines)).exit_code == 0
    monkeypatch.delenv("CIPHER_KEY")
    missing = run("liability", "--db", sqlite_url, "--as-of", "2019-03-31")
    assert missing.exit_code == 1
    assert missing.stderr == (
        "error: this ledger's event payloads are encrypted: set CIPHER_KEY to its key\n"
    )
    from eventsourcing.cipher import AESCipher

    monkeypatch.setenv("CIPHER_KEY", AESCipher.create_key(32))
    wrong = run("verify", "--db", sqlite_url)
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith("error: CIPHER_KEY is not this ledger's key (fingerprint ")
    monkeypatch.setenv("CIPHER_KEY", "not base64!")
    bad = run("verify", "--db", sqlite_url)
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: CIPHER_KEY / CIPHER_TOPIC cannot make a cipher")


def test_encryption_cannot_be_switched_on_for_a_plain_ledger(
    sqlite_url, tmp_path, quickstart_lines, monkeypatch
):
    assert record(sqlite_url, write_lines(tmp_path / "q.jsonl", quickstart_lines)).exit_code == 0
    from eventsourcing.cipher import AESCipher

    monkeypatch.setenv("CIPHER_KEY", AESCipher.create_key(32))
    result = run("events", "--db", sqlite_url)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: this ledger was created without encryption: unset CIPHER_KEY (encryption is "
        "chosen when a ledger is created)\n"
    )
