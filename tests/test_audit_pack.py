"""The auditor's pack (`audit-pack`), tried as an auditor would: the demo's pack opened in a real
headless Chromium, every link followed, the figures on its pages held against the JSON reports
to the penny; its workbook opened with openpyxl and its totals re-added; a borough's pack
scanned for anything of another borough; the same command run twice giving the same bytes."""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import zipfile
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from tests.helpers import run

AS_OF = "2023-12-31"
CI = os.environ.get("CI") == "true"
BOROUGHS = {"BDG", "BEX", "HNS", "HRY", "KIN", "MRT", "NWM", "RIC", "SUT", "TWH"}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'ledger.db'}"
    result = run("demo", "--db", url)
    assert result.exit_code == 0, result.output
    return url


def report(db: str, *args: str) -> dict:
    result = run(*args, "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def pack(demo_db: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packs") / "plcip"
    result = run(
        "audit-pack", str(out), "--as-of", AS_OF, "--since-known-at", "2021-06-30", "--db", demo_db
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def liability(demo_db: str) -> dict:
    return report(demo_db, "liability", "--as-of", AS_OF)


@pytest.fixture(scope="module")
def borough_packs(demo_db: str, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """SUT's pack, made twice by the same command line (the first moved aside in between)."""
    base = tmp_path_factory.mktemp("sut")
    out = base / "SUT"
    outs = []
    for name in ("first", "second"):
        result = run("audit-pack", str(out), "--as-of", AS_OF, "--payer", "SUT", "--db", demo_db)
        assert result.exit_code == 0, result.output
        out.rename(base / name)
        outs.append(base / name)
    return outs


def money(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


# --- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        if CI:
            raise
        pytest.skip("selenium is not installed")
    if not (chromium and driver_path):
        if CI:
            pytest.fail("CI=true: chromium and chromedriver must be installed")
        pytest.skip("no chromium here")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


PAGE_FACTS = """
return {
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  images: Array.from(document.images).map(i => [i.src, i.complete && i.naturalWidth > 0]),
  ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
  figures: Array.from(document.querySelectorAll('[data-figure]'))
             .map(e => [e.dataset.figure, e.textContent.trim()]),
  styled: getComputedStyle(document.body).backgroundColor,
  scripts: document.scripts.length,
};
"""


COMPARED_CASES = ("PLC0001", "PLC0094", "PLC0229")
COMPARED_CLAIMS = ("BDG-2021Q2", "SUT-2018Q3", "CBO-2019Q3")


class Anchors(HTMLParser):
    """The links and ids of a page, as its source states them."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if named.get("id"):
            self.ids.add(named["id"] or "")
        for attr in ("href", "src"):
            if named.get(attr) and tag in ("a", "link", "img"):
                self.links.append(named[attr] or "")


@pytest.fixture(scope="module")
def crawl(browser, pack: Path) -> dict:
    """The pages opened in the browser: their links, ids and figures. Every page of the top
    level, the case and claim pages whose figures are compared below, and every fifth other
    one (the links of all ~570 pages are followed by `test_no_link_is_broken`: opening them
    all in a browser takes minutes on a shared machine)."""
    wanted = {p.resolve().as_uri() for p in pack.glob("*.html")}
    cases = sorted((pack / "cases").glob("*.html"))
    claims = sorted((pack / "claims").glob("*.html"))
    for folder, names, pages in (
        ("cases", COMPARED_CASES, cases),
        ("claims", COMPARED_CLAIMS, claims),
    ):
        wanted |= {(pack / folder / f"{n}.html").resolve().as_uri() for n in names}
        wanted |= {p.resolve().as_uri() for p in pages[::5]}
    wanted.add(claims[-1].resolve().as_uri())
    found: dict[str, dict] = {}
    for url in sorted(wanted):
        browser.get(url)
        found[url] = browser.execute_script(PAGE_FACTS)
    return found


def test_no_link_is_broken(pack: Path):
    """Every link of every page leads to a file of the pack, and to an anchor that is there."""
    files = {p.relative_to(pack).as_posix() for p in pack.rglob("*") if p.is_file()}
    parsed = {}
    for page in (f for f in files if f.endswith(".html")):
        parser = Anchors()
        parser.feed((pack / page).read_text(encoding="utf-8"))
        parsed[page] = parser
    reached, broken = {"index.html"}, []
    for page, parser in parsed.items():
        for link in parser.links:
            assert "://" not in link and not link.startswith("//"), f"{page}: {link}"
            target, _, fragment = link.partition("#")
            file = posixpath.normpath(posixpath.join(posixpath.dirname(page), unquote(target)))
            file = file if target else page
            if file not in files:
                broken.append((page, link))
            elif fragment and fragment not in parsed[file].ids:
                broken.append((page, link))
            reached.add(file)
    assert broken == []
    assert set(parsed) <= reached  # every page is linked from another (or is the cover)


def test_the_pack_opens_offline_in_a_browser(crawl, pack: Path):
    root = pack.resolve()
    assert len(crawl) > 100
    for url, facts in crawl.items():
        assert facts["scripts"] == 0  # the pages read with no script at all
        assert facts["styled"] == "rgb(246, 247, 249)", url  # the local stylesheet applied
        for src, loaded in facts["images"]:
            assert loaded, f"{url}: image {src} did not load"
        for href in facts["links"]:
            parsed = urlparse(href)
            assert parsed.scheme == "file", f"{url}: {href} leaves the pack"
            path = Path(unquote(parsed.path))
            assert root in path.parents and path.exists(), f"{url}: {href} is broken"


def test_screenshots_of_the_cover_and_a_case(browser, pack: Path, tmp_path: Path):
    """Saved to tmp (and to docs/images when SOC_LEDGER_SCREENSHOTS names a folder)."""
    folder = Path(os.environ.get("SOC_LEDGER_SCREENSHOTS") or tmp_path)
    for page, name in (("index.html", "pack-cover.png"), ("cases/PLC0001.html", "pack-case.png")):
        browser.get((pack / page).resolve().as_uri())
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1280, min(max(height, 600), 1400))
        assert browser.save_screenshot(str(folder / name))
        assert (folder / name).stat().st_size > 10_000
    browser.set_window_size(1280, 1000)


def figures(crawl: dict) -> dict[str, str]:
    found: dict[str, str] = {}
    for facts in crawl.values():
        for key, text in facts["figures"]:
            assert found.setdefault(key, text) == text, f"{key} differs between pages"
    return found


def test_owed_on_the_pages_equals_liability_json(crawl, liability: dict):
    shown = figures(crawl)
    # The demo's total (SPEC §12): 30,533 outcome weeks at 214.00.
    assert (
        money(shown["total:owed"]) == Decimal("6534062.00") == Decimal(liability["totals"]["owed"])
    )
    for p in liability["payers"]:
        assert money(shown[f"payer:{p['payer']}:owed"]) == Decimal(p["owed"])
    for b in liability["boroughs"]:
        for field in ("owed_by_borough", "owed_by_top_up", "owed"):
            assert money(shown[f"borough:{b['borough']}:{field}"]) == Decimal(b[field])
    for c in liability["cases"]:
        assert money(shown[f"case:{c['case']}:owed"]) == Decimal(c["owed"])


def test_a_case_page_equals_explain_json(crawl, demo_db: str):
    shown = figures(crawl)
    for case in COMPARED_CASES:
        explained = report(demo_db, "explain", case, "--as-of", AS_OF)
        for w in explained["weeks"]:
            for share in ("borough", "top_up"):
                key = f"week:{case}:{w['week']}:{share}"
                assert money(shown[key]) == Decimal(w["owed"][share]), key
        total = sum(Decimal(w["owed"]["borough"]) for w in explained["weeks"])
        assert money(shown[f"case:{case}:weeks_borough"]) == total


def test_claims_on_the_pages_equal_reconcile_json(crawl, demo_db: str):
    shown = figures(crawl)
    claims = sorted({k.split(":")[1] for k in shown if k.startswith("claim:")})
    assert len(claims) > 100  # every claim of the demo is reconciled in the pack
    for claim in (*COMPARED_CLAIMS, claims[-1]):
        r = report(demo_db, "reconcile", claim, "--as-of", AS_OF)
        for field, value in r["totals"].items():
            if f"claim:{claim}:{field}" in shown:
                assert money(shown[f"claim:{claim}:{field}"]) == Decimal(value)
        for line in r["lines"]:
            for field in ("claimed", "due_then", "due_now", "paid", "disputed", "adjustment"):
                key = f"line:{claim}:{line['case']}:{field}"
                assert money(shown[key]) == Decimal(line[field]), key


def test_statements_and_returns_on_the_pages_equal_their_json(crawl, demo_db: str):
    shown = figures(crawl)
    for payer in ("SUT", "TWH", "CBO"):
        s = report(demo_db, "statement", payer, "--as-of", AS_OF)
        for field, value in s["totals"].items():
            assert money(shown[f"statement:{payer}:{field}"]) == Decimal(value), field
        for row in s["claims"]:
            for field in ("claimed", "due", "paid", "disputed", "adjustment"):
                key = f"statement:{payer}:{row['claim']}:{field}"
                assert money(shown[key]) == Decimal(row[field]), key
    r = report(demo_db, "returns", "--as-of", AS_OF)
    for investor in [*r["investors"], r["total"]]:
        for field in ("committed", "drawn", "distributed", "net"):
            key = f"investor:{investor['investor']}:{field}"
            assert money(shown[key]) == Decimal(investor[field]), key


def test_changes_name_the_payers_and_claims_they_move(crawl, pack: Path, demo_db: str):
    d = report(demo_db, "diff", "--known-at", "2021-06-30", "--as-of", AS_OF)
    shown = figures(crawl)
    for payer, change in d["by_payer"].items():
        assert money(shown[f"change:{payer}"]) == Decimal(change)
    # A week changed after a claim that covered it was made: the changes page names that claim.
    with open(pack / "csv" / "changes.csv", encoding="utf-8") as handle:
        text = handle.read()
    moved = [line for line in text.splitlines()[1:] if line.split(",")[9]]
    assert moved, "some change of the demo since mid-2021 falls in a claim already made"


# --- the workbook -----------------------------------------------------------------------------


def test_the_workbook_totals_are_formulas_that_add_up_to_the_json(
    pack: Path, liability: dict, demo_db: str
):
    openpyxl = pytest.importorskip("openpyxl") if not CI else __import__("openpyxl")
    # Formulas, not their cached values; read-only, row by row (the weeks are 36,000 rows).
    book = openpyxl.load_workbook(pack / "workbook.xlsx", read_only=True)
    assert book.sheetnames[0] == "Cover"
    cover = {r[0]: r[1] for r in book["Cover"].iter_rows(values_only=True) if r[0]}
    assert cover["contract"] == "plcip" and cover["as_of"] == AS_OF
    sheets: dict[str, list] = {}

    def total(sheet: str, column: str) -> Decimal:
        rows = sheets.setdefault(sheet, list(book[sheet].iter_rows()))
        header = [c.value for c in rows[0]]
        col = header.index(column)
        last = len(rows)
        assert rows[-1][0].value == "total"
        formula = rows[-1][col].value
        letter = openpyxl.utils.get_column_letter(col + 1)
        assert formula == f"=SUM({letter}2:{letter}{last - 1})", formula
        cells = [r[col] for r in rows[1:-1]]
        assert all("£" in c.number_format for c in cells if column != "outcome_weeks")
        return sum((Decimal(str(c.value)) for c in cells if c.value is not None), Decimal(0))

    owed = Decimal(liability["totals"]["owed"])
    assert total("Owed by payer", "owed") == owed == Decimal("6534062.00")
    assert total("Cases", "owed") == owed
    by_borough = liability["totals"]["owed_by_borough"]
    assert total("Owed by borough", "owed_by_borough") == Decimal(by_borough)
    assert total("Weeks", "owed_by_borough") == Decimal("5160077.00")  # 30,533 weeks at 169.00
    assert total("Weeks", "owed_by_top_up") == Decimal("1373985.00")  # and at 45.00
    statements = [report(demo_db, "statement", p, "--as-of", AS_OF) for p in ("SUT", "CBO")]
    claims = list(book["Claims"].iter_rows(values_only=True))
    header = list(claims[0])
    for s in statements:
        mine = [r for r in claims[1:-1] if r[1] == s["payer"]]
        claimed = sum(Decimal(str(r[header.index("claimed")])) for r in mine)
        assert claimed == Decimal(s["totals"]["claimed"])
    assert total("Claims", "paid") == sum(
        Decimal(str(r[header.index("paid")])) for r in claims[1:-1]
    )
    # The CSVs beside it hold the same table with the same total.
    rows = (pack / "csv" / "owed-by-payer.csv").read_text().splitlines()
    assert rows[-1].split(",")[:2] == ["total", "6534062.00"]


# --- a borough's pack, and the same command twice -----------------------------------------------


def texts_of(folder: Path):
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".html", ".csv", ".json", ".css"):
            yield path, path.read_text(encoding="utf-8")
        elif path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    yield path / name, z.read(name).decode("utf-8")


def test_a_boroughs_pack_holds_nothing_of_another_borough(borough_packs, liability: dict):
    pack = borough_packs[0]
    others = BOROUGHS - {"SUT"}
    other_cases = {c["case"] for c in liability["cases"] if c["borough"] != "SUT"}
    own_cases = {c["case"] for c in liability["cases"] if c["borough"] == "SUT"}
    words = re.compile(r"\b[A-Z]{3}\b|\bPLC\d{4}\b")
    seen_own = set()
    for path, text in texts_of(pack):
        found = set(words.findall(text))
        assert not found & others, f"{path}: {sorted(found & others)}"
        assert not found & other_cases, f"{path}: {sorted(found & other_cases)[:5]}"
        seen_own |= found & own_cases
    assert seen_own == own_cases  # and every case of its own is there
    names = {p.name for p in pack.rglob("*")}
    assert "investors.html" not in names
    assert not any(p.stem in other_cases for p in (pack / "cases").iterdir())


def test_the_same_command_twice_gives_the_same_files(borough_packs):
    first, second = (json.loads((p / "manifest.json").read_text()) for p in borough_packs)
    assert first["files"] == second["files"]
    assert len(first["files"]) > 20
    assert "workbook.xlsx" in {f["path"] for f in first["files"]}
    # Only the stated time may differ.
    assert {k: v for k, v in first.items() if k != "made_at"} == {
        k: v for k, v in second.items() if k != "made_at"
    }


def test_the_manifest_hashes_every_file(borough_packs):
    import hashlib

    pack = borough_packs[0]
    manifest = json.loads((pack / "manifest.json").read_text())
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    on_disk = {
        p.relative_to(pack).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in pack.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    assert listed == on_disk
    assert manifest["command"].startswith("soc-ledger audit-pack ")


def test_a_pack_is_never_written_over_files(tmp_path: Path, demo_db: str):
    out = tmp_path / "pack"
    out.mkdir()
    (out / "note.txt").write_text("mine")
    result = run("audit-pack", str(out), "--as-of", AS_OF, "--db", demo_db)
    assert result.exit_code == 1
    assert "not empty" in result.output
    assert [p.name for p in out.iterdir()] == ["note.txt"]


def test_a_bad_payer_or_date_is_one_line_and_writes_nothing(tmp_path: Path, demo_db: str):
    out = tmp_path / "pack"
    result = run("audit-pack", str(out), "--as-of", AS_OF, "--payer", "XYZ", "--db", demo_db)
    assert result.exit_code == 1
    assert "error: --payer: no payer 'XYZ'" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    result = run("audit-pack", str(out), "--as-of", "2023-02-30", "--db", demo_db)
    assert result.exit_code == 2 and "2023-02-30" in result.output
    result = run(
        "audit-pack",
        str(out),
        "--as-of",
        AS_OF,
        "--known-at",
        "2020-01-01",
        "--since-known-at",
        "2021-01-01",
        "--db",
        demo_db,
    )
    assert result.exit_code == 1 and "after --known-at" in result.output
    assert not out.exists()
