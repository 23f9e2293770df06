"""The default `dvc repro` with and without warm starts (pipeline/core/warm.py), in one invocation.

    python benchmarks/warm_start.py [--first warm|cold]

Two fresh scratch copies of the project with the shipped params.yaml, run one after the other: one with
`PIPELINE_WARM_START=0` (each stage process imports sentence-transformers and MLflow itself), one with warm
starts (the default). Prints the CPU, each run's wall time, its time by kind of stage and the ratio, and the
largest stage's peak resident memory. Then checks that the two runs wrote byte-identical models, leaderboard,
transfer table and baseline / evaluate scores: a warm start changes when the libraries are imported, nothing
else. Nothing about speed is asserted (a benchmark, run by hand).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare_bases import Repro, cpu_name, timed_repro  # noqa: E402
from scripts.scratch_project import ROOT, commit, scratch_project  # noqa: E402

COMPARED = ("models/*/*/*/model.safetensors", "reports/leaderboard.md", "reports/transfer.csv",
            "results/baseline/**/*.json", "results/evaluate/**/*.json")


def digests(repo: Path) -> dict[str, str]:
    return {str(path.relative_to(repo)): hashlib.md5(path.read_bytes()).hexdigest()
            for pattern in COMPARED for path in sorted(repo.glob(pattern))}


def default_run(repo: Path, params: dict, prepare: Callable[[Path], None] | None = None, **extra_env: str
                ) -> tuple[Repro, dict[str, str], dict[str, str]]:
    """The default `dvc repro` in a fresh scratch copy at `repo` (`prepare(repo)` first: another dvc.yaml or
    code): what it cost, the copy's environment, and the digests of its compared outputs. The copy's warm
    server is stopped after: an idle one holds its imports' memory while the next copy runs."""
    env = scratch_project(repo, params, **extra_env)
    if prepare is not None:
        prepare(repo)
    commit(repo, env, "default run")
    repro = timed_repro(repo, env)
    subprocess.run(["pkill", "-f", "pipeline[.]core[.]warm"], check=False)
    return repro, env, digests(repo)


def kind_table(labels: tuple[str, str], first: Repro, second: Repro) -> None:
    """Print the two runs' seconds by kind of stage, the ratio second / first, and the whole `dvc repro`."""
    print(f"| stage kind | {labels[0]} s | {labels[1]} s | {labels[1]} / {labels[0]} |\n|:--|--:|--:|--:|")
    kinds_first, kinds_second = by_kind(first), by_kind(second)
    for kind in sorted(kinds_first.keys() | kinds_second.keys(), key=lambda k: -max(kinds_first[k], kinds_second[k])):
        old, new = kinds_first.get(kind, 0.0), kinds_second.get(kind, 0.0)
        print(f"| {kind} | {f'{old:.1f}' if old else '-'} | {new:.1f} | {f'{new / old:.2f}' if old else '-'} |")
    print(f"| **the whole `dvc repro`** ({len(first.seconds)} / {len(second.seconds)} stages) | **{first.total:.1f}** | "
          f"**{second.total:.1f}** | **{second.total / first.total:.2f}** |")


def same_files(first: dict[str, str], second: dict[str, str]) -> str:
    """Whether two runs' compared outputs (digests) are byte-identical, as a line."""
    differ = sorted(name for name in first.keys() | second.keys() if first.get(name) != second.get(name))
    return (f"{len(first)} output files compared (models, leaderboard, transfer table, baseline and evaluate scores): "
            + ("all byte-identical" if not differ else f"{len(differ)} differ: {', '.join(differ[:10])}"))


def by_kind(repro: Repro) -> dict[str, float]:
    kinds: dict[str, float] = defaultdict(float)
    for stage, seconds in repro.seconds.items():
        kinds[stage.partition("@")[0]] += seconds
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first", choices=("warm", "cold"), default="cold")
    args = parser.parse_args()

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    order = ["cold", "warm"] if args.first == "cold" else ["warm", "cold"]
    runs: dict[str, Repro] = {}
    files: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="warm-start-") as folder:
        for name in order:
            runs[name], _, files[name] = default_run(Path(folder) / name, params,
                                                     PIPELINE_WARM_START="1" if name == "warm" else "0")
    cold, warm = runs["cold"], runs["warm"]
    print(f"{cpu_name()}; the default `dvc repro` ({len(cold.seconds)} stages), fresh copies, {' then '.join(order)}\n")
    print("| stage kind | stages | cold s | warm s | warm / cold |\n|:--|--:|--:|--:|--:|")
    cold_kinds, warm_kinds = by_kind(cold), by_kind(warm)
    for kind, seconds in sorted(cold_kinds.items(), key=lambda item: -item[1]):
        count = sum(1 for stage in cold.seconds if stage.partition("@")[0] == kind)
        print(f"| {kind} | {count} | {seconds:.1f} | {warm_kinds[kind]:.1f} | {warm_kinds[kind] / seconds:.2f} |")
    print(f"| **the whole `dvc repro`** | {len(cold.seconds)} | **{cold.total:.1f}** | **{warm.total:.1f}** | "
          f"**{warm.total / cold.total:.2f}** |")
    print(f"\nlargest stage peak RSS: cold {max(cold.peak_mib.values()):.0f} MiB, warm {max(warm.peak_mib.values()):.0f} MiB")
    print(same_files(files["cold"], files["warm"]))

if __name__ == "__main__":
    main()
