"""The default `dvc repro` of a commit against the working tree's, in one invocation.

    python benchmarks/default_run.py --before REV [--first before|after]

Two fresh scratch copies, one after the other: one holds commit REV's pipeline/, dvc.yaml, .dvcignore and
params.yaml, the other this checkout's. Prints the CPU, each run's wall time, its time by kind of stage and the
ratio, the largest stage's peak resident memory, and then what differs in the outputs: models, leaderboard and
transfer table byte for byte, and every metric of every baseline and evaluate score file with the largest
difference. For a change meant to save time without changing a result (a cache, a layout), this is the
measurement and the check at once. Nothing about speed is asserted (a benchmark, run by hand).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare_bases import Repro, cpu_name  # noqa: E402
from benchmarks.warm_start import default_run, kind_table, same_files  # noqa: E402
from scripts.scratch_project import ROOT  # noqa: E402

FROM_COMMIT = ("pipeline", "dvc.yaml", ".dvcignore", "params.yaml")
SCORES = ("results/baseline/**/*.json", "results/evaluate/**/*.json")


def metrics(repo: Path) -> dict[str, float]:
    """Every number of every baseline and evaluate score file, by file and key path."""
    found: dict[str, float] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}/{key}", inner)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found[prefix] = float(value)

    for pattern in SCORES:
        for path in sorted(repo.glob(pattern)):
            walk(str(path.relative_to(repo)), json.loads(path.read_text()))
    return found


def one_run(folder: Path, name: str, before: str | None) -> tuple[Repro, dict[str, str], dict[str, float]]:
    def from_commit(repo: Path) -> None:  # that commit's code, pipeline and params in place of today's
        subprocess.run(["rm", "-rf", str(repo / "pipeline")], check=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", before, *FROM_COMMIT], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)

    repo = folder / name
    repro, _, files = default_run(repo, yaml.safe_load((ROOT / "params.yaml").read_text()), from_commit if before else None)
    return repro, files, metrics(repo)

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the commit to compare with (e.g. HEAD, or the one before a change)")
    parser.add_argument("--first", choices=("before", "after"), default="before")
    args = parser.parse_args()
    order = ["before", "after"] if args.first == "before" else ["after", "before"]
    runs, files, scores = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="default-run-") as folder:
        for name in order:
            runs[name], files[name], scores[name] = one_run(Path(folder), name, args.before if name == "before" else None)
    before, after = runs["before"], runs["after"]
    print(f"{cpu_name()}; the default `dvc repro` of {args.before} (before) and of this checkout (after), fresh copies, "
          f"{' then '.join(order)}\n")
    kind_table(("before", "after"), before, after)
    print(f"\nlargest stage peak RSS: before {max(before.peak_mib.values()):.0f} MiB, "
          f"after {max(after.peak_mib.values()):.0f} MiB")
    print(same_files(files["before"], files["after"]))
    keys = scores["before"].keys() | scores["after"].keys()
    missing = sorted(key for key in keys if key not in scores["before"] or key not in scores["after"])
    gaps = {key: abs(scores["before"][key] - scores["after"][key]) for key in keys - set(missing)}
    changed = {key: gap for key, gap in gaps.items() if gap}
    largest = max(changed.items(), key=lambda item: item[1], default=None)
    print(f"{len(gaps)} metrics in both runs: " + (f"{len(changed)} differ, the largest by {largest[1]:.2g} ({largest[0]})"
                                                   if largest else "all equal")
          + (f"; {len(missing)} in one run only, e.g. {missing[0]}" if missing else ""))


if __name__ == "__main__":
    main()
