"""The CLI's rough edges of issue 14, each checked against a figure worked out by hand.

The histories are the quickstart's and tests/test_claims.py's (its module docstring works
them out): C001 (Sutton) earns 169.00 a week from the borough and 45.00 from the top-up funder
CBO; CBO-2019Q1 claims C001 1,530.00 and C002 1,800.00.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest

from soc_ledger.domain import events as ev
from soc_ledger.domain.claims.claims import Claim
from tests.helpers import run

C = "plcip"


def _ok(*args: str, env: dict[str, str] | None = None):
    from click.testing import CliRunner

    from soc_ledger.cli import main

    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


# --- 7. an over-payment of a line settled lower stays on that line ----------------------------


def _cbo_claim(settled_at: str | None, paid: str) -> Claim:
    """CBO-2019Q1 (C001 1,530.00, C002 1,800.00), C001 disputed on 2019-06-15 and perhaps
    settled on 2019-08-01, one payment on 2019-09-01."""
    common = {"contract": C, "claim": "CBO-2019Q1", "case": "C001"}
    disputes = (
        ev.ClaimLineDisputed(
            type="ClaimLineDisputed", effective=date(2019, 6, 15), raised_by="CBO",
            reason="weeks questioned", **common,
        ),
    )
    resolutions = () if settled_at is None else (
        ev.DisputeResolved(
            type="DisputeResolved", effective=date(2019, 8, 1), outcome="upheld",
            amount=Decimal(settled_at), **common,
        ),
    )
    return Claim(
        claim="CBO-2019Q1", payer="CBO", period_end=date(2019, 3, 31),
        submitted=date(2019, 6, 1), position=1,
        lines=(
            ev.ClaimLine(case="C001", weeks=34, amount=Decimal("1530.00")),
            ev.ClaimLine(case="C002", weeks=40, amount=Decimal("1800.00")),
        ),
        disputes=disputes,
        resolutions=resolutions,
        payments=(
            ev.PaymentReceived(
                type="PaymentReceived", contract=C, effective=date(2019, 9, 1),
                claim="CBO-2019Q1", payer="CBO", amount=Decimal(paid),
            ),
        ),
    )


def test_an_over_payment_of_a_line_settled_lower_stays_on_that_line():
    """C001 settled (upheld) at 1,300.00; CBO pays the claim as made, 3,330.00. C001 asks
    1,300.00 and C002 1,800.00: 3,100.00; the 230.00 beyond is what C001 was over-paid
    (1,530.00 - 1,300.00), so C001 is paid 1,530.00 and C002 1,800.00 (not 2,030.00 on the
    claim's last line, an unrelated case)."""
    paid = _cbo_claim("1300.00", "3330.00").allocate(date(2019, 12, 31))
    assert paid == {"C001": Decimal("1530.00"), "C002": Decimal("1800.00")}


def test_an_over_payment_beyond_the_claim_still_goes_on_the_last_line():
    """Paid 3,400.00 with C001 settled at 1,300.00: C001 takes back its 230.00 (1,530.00),
    C002 its 1,800.00, and the 70.00 beyond the whole claim (3,330.00) goes on the last line:
    C002 1,870.00. The lines still add up to the payment."""
    paid = _cbo_claim("1300.00", "3400.00").allocate(date(2019, 12, 31))
    assert paid == {"C001": Decimal("1530.00"), "C002": Decimal("1870.00")}
    assert sum(paid.values()) == Decimal("3400.00")


def test_a_short_payment_with_a_settled_line_is_unchanged():
    """Paid 3,000.00, C001 settled at 1,300.00: C001 1,300.00 first (claim order), C002 the
    rest, 1,700.00; nothing is over-paid."""
    paid = _cbo_claim("1300.00", "3000.00").allocate(date(2019, 12, 31))
    assert paid == {"C001": Decimal("1300.00"), "C002": Decimal("1700.00")}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('edges-demo') / 'ledger.db'}"
    _ok("demo", "--db", url, "--format", "json")
    return url


# --- 8. --plot draws in the format its suffix names, or refuses ----------------------------------


@pytest.mark.parametrize(
    ("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")]
)
def test_plot_writes_the_format_its_suffix_names(demo_db, tmp_path, suffix, magic):
    path = tmp_path / f"picture{suffix}"
    _ok("forecast", "--db", demo_db, "--as-of", "2021-06-30", "--plot", str(path))
    assert path.read_bytes().startswith(magic)


@pytest.mark.parametrize("command", [["liability"], ["finances"], ["forecast"]])
def test_plot_refuses_another_suffix_before_any_work(tmp_path, command):
    """No ledger at all: the suffix is refused first, in one line, and nothing is created."""
    path = tmp_path / "picture.jpg"
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = run(*command, "--db", url, "--plot", str(path))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --plot {path}: give a file ending in .png, .svg or .pdf (not .jpg)"
    ]
    assert list(tmp_path.iterdir()) == []
