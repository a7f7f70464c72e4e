"""The design card's layout holds: one way down, no bare imports, no cycles, every module shipped.

Each check is also run on a small tree made to break it, so a check that could never fail would
show here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from layout_rules import (
    ROOT,
    bare_imports,
    event_writes,
    import_cycles,
    layer_violations,
    listed_packages,
    module_name,
    package_files,
    package_folders,
    stray_root_files,
)

PYPROJECT = """
[tool.setuptools]
package-dir = { "soc_ledger" = "." }
packages = ["soc_ledger", "soc_ledger.domain", "soc_ledger.ledger", "soc_ledger.projections"]
"""


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    for name in ("__init__.py", "domain/__init__.py", "ledger/__init__.py",
                 "projections/__init__.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_a_lower_layer_never_imports_a_higher_one() -> None:
    assert layer_violations() == []


def test_the_layer_check_names_a_lazy_upward_import(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "domain/rule.py": "def f():\n    from soc_ledger.projections import read\n",
        "projections/read.py": "from soc_ledger.domain import rule\n",
        "ledger/store.py": "from soc_ledger.projections.read import x\n",
    })
    problems = layer_violations(root)
    assert problems == [
        "domain/rule.py:2: soc_ledger.domain.rule (domain) imports "
        "soc_ledger.projections.read (projections), a higher layer",
        "ledger/store.py:1: soc_ledger.ledger.store (ledger) imports "
        "soc_ledger.projections.read (projections), a higher layer",
    ]


def test_views_sit_above_the_read_models(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "projections/views/__init__.py": "",
        "projections/views/table.py": "from soc_ledger.projections import read\n",
        "projections/read.py": "from soc_ledger.projections.views import table\n",
    })
    assert layer_violations(root) == [
        "projections/read.py:1: soc_ledger.projections.read (projections) imports "
        "soc_ledger.projections.views.table (projections.views), a higher layer"
    ]


def test_no_bare_import_of_the_package_folders() -> None:
    assert bare_imports() == []


def test_the_bare_import_check_finds_one_anywhere(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "tests/test_x.py": "import pytest\n\ndef test():\n    from ledger import store\n",
        "projections/read.py": "import domain.rule\n",
    })
    assert bare_imports(root) == [
        "projections/read.py:1: bare import of 'domain.rule'; write soc_ledger.domain.rule",
        "tests/test_x.py:4: bare import of 'ledger'; write soc_ledger.ledger",
    ]


def test_no_import_cycles() -> None:
    assert import_cycles() == []


def test_the_cycle_check_finds_a_lazy_cycle(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "projections/a.py": "from soc_ledger.projections import b\n",
        "projections/b.py": "def f():\n    from soc_ledger.projections.c import g\n",
        "projections/c.py": "from . import a\n",
    })
    assert import_cycles(root) == [
        ["soc_ledger.projections.a", "soc_ledger.projections.b", "soc_ledger.projections.c"]
    ]


def test_every_folder_with_python_is_a_listed_package() -> None:
    folders = package_folders()
    assert folders == listed_packages()
    for name in folders:
        init = ROOT.joinpath(*name.split(".")[1:], "__init__.py")
        assert init.is_file(), f"{init} is missing: the folder would not be a package"


def test_the_package_check_sees_an_unlisted_folder(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"ledger/demo/__init__.py": "", "ledger/demo/cohort.py": ""})
    assert package_folders(root) - listed_packages(root) == {"soc_ledger.ledger.demo"}


def test_no_stray_python_at_the_root() -> None:
    assert stray_root_files() == []


def test_the_built_wheel_holds_every_module(tmp_path: Path) -> None:
    """Built from a copy of the tree, the way a user's `pip install .` builds it."""
    source = tmp_path / "source"
    shutil.copytree(
        ROOT, source,
        ignore=shutil.ignore_patterns(".git", "tests", "benchmarks", "build", "*.egg-info",
                                      "__pycache__", "*.db*", ".hypothesis", ".*_cache"),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, timeout=600,
    )
    if built.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{built.stderr[-2000:]}")
    (wheel,) = tmp_path.glob("soc_ledger-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "soc_ledger/" + str(p.relative_to(ROOT)).replace("\\", "/") for p in package_files()
    }
    assert expected - names == set()
    shipped = {n for n in names if n.endswith(".py")}
    assert shipped == expected, f"unexpected in the wheel: {sorted(shipped - expected)}"
    assert all(module_name(p).startswith("soc_ledger") for p in package_files())


def test_projections_and_the_domain_never_write_events() -> None:
    assert event_writes() == []


def test_the_write_check_sees_a_projection_that_records(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "projections/sneaky.py": (
            "from typing import TYPE_CHECKING\n"
            "from soc_ledger.ledger import recording\n"
            "if TYPE_CHECKING:\n"
            "    from soc_ledger.ledger.recording import Outcome\n"
            "def fix(ledger):\n"
            "    ledger.record([])\n"
        ),
    })
    assert event_writes(root) == [
        "projections/sneaky.py:2: imports the ledger's write side (soc_ledger.ledger)",
        "projections/sneaky.py:6: calls .record(), a write",
    ]
