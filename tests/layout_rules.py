"""The design card's layout as checks over source files (no import of the checked code).

- **Layers, one way down.** `domain` < `ledger` < `projections` < `projections.views` < `cli`:
  a module imports only from its own layer or lower ones, lazy imports inside functions
  included (they run too).
- **No bare imports.** The repository root is the package `soc_ledger`; run from the root,
  `import domain` would also work, and load a second copy of every module. Only
  `soc_ledger.…` names are allowed.
- **No import cycles** between the project's modules, lazy imports included.
- **Every package listed.** A folder with Python in it that `pyproject.toml` does not list works
  in the editable install and is missing from the wheel.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "soc_ledger"
# Folders at the root that hold Python but are not part of the package.
OUTSIDE = frozenset({"tests", "benchmarks", "examples", "docs", "build"})
TOP_NAMES = frozenset({"domain", "ledger", "projections", "cli"})
# The layers, lowest first: the first prefix that matches a module decides its layer.
LAYERS: tuple[tuple[str, int], ...] = (
    (f"{PACKAGE}.domain", 0),
    (f"{PACKAGE}.ledger", 1),
    (f"{PACKAGE}.projections.views", 3),
    (f"{PACKAGE}.projections", 2),
    (f"{PACKAGE}.cli", 4),
)
LAYER_NAMES = {0: "domain", 1: "ledger", 2: "projections", 3: "projections.views", 4: "cli"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (or package)
    path: Path
    line: int


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def package_files(root: Path = ROOT) -> Iterator[Path]:
    """Every .py file that ships in the package."""
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in OUTSIDE or rel.parts[0].startswith("."):
            continue
        if any(p == "__pycache__" or p.endswith(".egg-info") for p in rel.parts):
            continue
        yield path


def all_python(root: Path = ROOT) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0].startswith(".") or any(
            p == "__pycache__" or p.endswith(".egg-info") or p == "build" for p in rel.parts
        ):
            continue
        yield path


def imports_of(path: Path, module: str) -> Iterator[tuple[str, int, list[str]]]:
    """(imported module, line, names imported from it) for every import, lazy ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            yield base, node.lineno, [a.name for a in node.names]


def project_imports(root: Path = ROOT) -> list[Import]:
    """Imports between the package's own modules, each resolved to a module where it names one."""
    files = list(package_files(root))
    modules = {module_name(p, root) for p in files}
    found: list[Import] = []
    for path in files:
        module = module_name(path, root)
        for target, line, names in imports_of(path, module):
            if target != PACKAGE and not target.startswith(PACKAGE + "."):
                continue
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            for t in submodules or [target]:
                found.append(Import(module, t, path, line))
    return found


def layer(module: str) -> int | None:
    for prefix, level in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return level
    return None


def layer_violations(root: Path = ROOT) -> list[str]:
    problems = []
    for imp in project_imports(root):
        own, other = layer(imp.module), layer(imp.target)
        if own is not None and other is not None and other > own:
            problems.append(
                f"{imp.path.relative_to(root)}:{imp.line}: {imp.module} ({LAYER_NAMES[own]}) "
                f"imports {imp.target} ({LAYER_NAMES[other]}), a higher layer"
            )
    return problems


def bare_imports(root: Path = ROOT) -> list[str]:
    problems = []
    for path in all_python(root):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in TOP_NAMES:
                    problems.append(
                        f"{path.relative_to(root)}:{node.lineno}: bare import of '{name}'; "
                        f"write {PACKAGE}.{name}"
                    )
    return problems


def import_cycles(root: Path = ROOT) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for imp in project_imports(root):
        if imp.target != imp.module:
            graph.setdefault(imp.module, set()).add(imp.target)
            graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def listed_packages(root: Path = ROOT) -> set[str]:
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return set(config["tool"]["setuptools"]["packages"])


def package_folders(root: Path = ROOT) -> set[str]:
    return {module_name(p.parent / "__init__.py", root) for p in package_files(root)}


def stray_root_files(root: Path = ROOT) -> list[str]:
    """Python files at the root besides the package's own two (they would ship in the wheel)."""
    return sorted(p.name for p in root.glob("*.py") if p.name not in {"__init__.py", "cli.py"})


# What appends to the log: the ledger's write entry points. The read side may name their types
# for type checking, never call them.
WRITERS = frozenset(
    {"record", "record_lines", "appending", "insert_events", "assert_balance", "import_return"}
)
WRITE_MODULES = (f"{PACKAGE}.ledger.recording", f"{PACKAGE}.ledger.ssda903.importing")


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING",
                                                                   "typing.TYPE_CHECKING"}:
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def event_writes(
    root: Path = ROOT, layers: tuple[str, ...] = ("domain", "projections")
) -> list[str]:
    """Places in the read side (and the domain) that could append an event."""
    problems = []
    for path in package_files(root):
        if path.relative_to(root).parts[0] not in layers:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        typing_only = _type_checking_lines(tree)
        where = path.relative_to(root)
        for target, line, names in imports_of(path, module_name(path, root)):
            if line in typing_only:
                continue
            named = {target, *(f"{target}.{n}" for n in names)}
            if named & set(WRITE_MODULES):
                problems.append(f"{where}:{line}: imports the ledger's write side ({target})")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in WRITERS:
                    problems.append(f"{where}:{node.lineno}: calls .{node.func.attr}(), a write")
    return problems
