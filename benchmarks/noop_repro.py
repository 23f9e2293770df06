"""No-op `dvc repro` time: run it N times in this checkout (which must be up to date) and print the times.

Usage: python benchmarks/noop_repro.py [--runs 5]

Target: under 3 s with nothing changed. Prints whether ruamel.yaml's C parser is installed,
since without it parsing dvc.lock and params.yaml dominates the time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    import importlib.util

    c_parser = "installed" if importlib.util.find_spec("_ruamel_yaml") else "missing"
    dvc = [sys.executable, "-m", "dvc", "repro"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        proc = subprocess.run(dvc, cwd=ROOT, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if proc.returncode != 0 or "Data and pipelines are up to date" not in proc.stdout:
            raise SystemExit(f"`dvc repro` was not a no-op here (run it once first):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    lines = sum(1 for _ in (ROOT / "dvc.lock").open())
    print(f"no-op dvc repro, {args.runs} runs, dvc.lock {lines} lines, ruamel.yaml C parser {c_parser}")
    print(f"min {min(times):.2f} s, median {statistics.median(times):.2f} s, max {max(times):.2f} s (target < 3 s)")


if __name__ == "__main__":
    main()
