"""Start-up cost of one `soc-ledger` command: wall time, and import time by package.

    python benchmarks/startup.py explain CASE --db sqlite:////tmp/bench.db --as-of 2023-12-31
    python benchmarks/startup.py --repeats 20 liability --db postgresql://... --format json

(this script's own options first, then the command and its options)

Runs the command as its own process with this interpreter (`python -m soc_ledger.cli`, not a
pyenv or venv shim, whose own start-up would be counted too), `--repeats` times, and prints the
minimum and median wall time; then runs it once under `python -X importtime` and prints the
import time summed by top-level package (each module's own time, so nothing is counted twice),
largest first. Plain timing, no asserts.

Two things outside the project show up here and are worth knowing when reading the figures:
`PYTHONDONTWRITEBYTECODE=1` makes every run compile the project's modules afresh (an installed
package has its bytecode cached), and a `.pth` file in site-packages runs at every start-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import Counter


def wall_times(command: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return times


def import_times(command: list[str]) -> Counter[str]:
    """Microseconds of import time per top-level package (module bodies' own time)."""
    python, *rest = command
    done = subprocess.run(
        [python, "-X", "importtime", *rest],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    by_package: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        own, _cumulative, name = line[len("import time:") :].split("|")
        name = name.strip()
        # The project's own modules by subpackage, everything else by distribution.
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] == "soc_ledger" else parts[0]
        by_package[key] += int(own)
    return by_package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--top", type=int, default=25, help="packages to list")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the soc-ledger command")
    options = parser.parse_args()
    command = [sys.executable, "-m", "soc_ledger.cli", *options.args]
    times = wall_times(command, options.repeats)
    print(
        f"{' '.join(options.args)}\n  wall: min {min(times):.3f} s, "
        f"median {statistics.median(times):.3f} s over {len(times)} runs"
    )
    bare = wall_times([sys.executable, "-c", "pass"], options.repeats)
    print(f"  bare interpreter start-up: min {min(bare):.3f} s")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("  (PYTHONDONTWRITEBYTECODE is set: the project's modules are compiled every run)")
    packages = import_times(command)
    total = sum(packages.values())
    print(f"  imports (one run, -X importtime inflates them): {total / 1e6:.3f} s")
    for name, micros in packages.most_common(options.top):
        print(f"    {micros / 1e3:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
