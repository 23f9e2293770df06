"""The default `dvc repro` with each stage's code as one fingerprint dep (as shipped) and with every module listed
in dvc.yaml (as before pipeline/code.py), in one invocation.

    python benchmarks/dvc_lock.py [--first listed|fingerprinted]

DVC parses and rewrites the whole dvc.lock after every stage it runs. Two fresh scratch copies of the project
with the shipped params.yaml are run one after the other. In "listed", each stage's `results/code/<stage>.json`
dep is replaced by the modules it names (`pipeline.code.code_files`, the sources stage's generators too) and the
code stage is dropped: the same code, the old dvc.yaml layout. Prints the CPU, each run's wall time, its time by
kind of stage, the size of the dvc.lock it wrote, and the median of three `dvc status` runs on the finished
copy. Then checks that both runs wrote byte-identical models and scores. Nothing about speed is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare_bases import Repro, cpu_name  # noqa: E402
from benchmarks.warm_start import default_run, kind_table, same_files  # noqa: E402
from pipeline import code  # noqa: E402
from pipeline.core import paths  # noqa: E402
from scripts.scratch_project import ROOT  # noqa: E402


def list_modules(repo: Path) -> None:
    """Rewrite the copy's dvc.yaml the old way: every stage lists the modules it runs, no code stage."""
    dvc_yaml = yaml.safe_load((repo / "dvc.yaml").read_text())
    del dvc_yaml["stages"]["code"]
    for stage in dvc_yaml["stages"].values():
        body = stage.get("do", stage)
        module = body["cmd"].split()[2]  # python -m pipeline.<stage> ...
        listed = code.code_files(module)
        if module == "pipeline.sources":  # the generators, which it fingerprints, were listed as its code
            listed += sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / code.GENERATORS).glob("*.py"))
        body["deps"] = [dep for dep in body["deps"] if not dep.startswith(("pipeline", paths.CODE_FINGERPRINTS.as_posix()))]
        body["deps"] += sorted(set(listed))
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))


def status_seconds(repo: Path, env: dict[str, str]) -> float:
    times = []
    for _ in range(3):
        begun = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=repo, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - begun)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first", choices=("listed", "fingerprinted"), default="listed")
    args = parser.parse_args()

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    order = ["listed", "fingerprinted"] if args.first == "listed" else ["fingerprinted", "listed"]
    runs: dict[str, Repro] = {}
    files: dict[str, dict[str, str]] = {}
    lock: dict[str, tuple[int, int]] = {}
    status: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="dvc-lock-") as folder:
        for name in order:
            repo = Path(folder) / name
            runs[name], env, files[name] = default_run(repo, params, list_modules if name == "listed" else None)
            text = (repo / "dvc.lock").read_text()
            lock[name] = (len(text.splitlines()), len(text.encode()))
            status[name] = status_seconds(repo, env)
    print(f"{cpu_name()}; the default `dvc repro`, fresh copies, {' then '.join(order)}\n")
    kind_table(("listed", "fingerprinted"), runs["listed"], runs["fingerprinted"])
    for name in order:
        print(f"\n{name}: dvc.lock {lock[name][0]:,} lines, {lock[name][1] / 1024:.0f} KiB; `dvc status` {status[name]:.2f} s")
    print("\n" + same_files(files["listed"], files["fingerprinted"]))

if __name__ == "__main__":
    main()
