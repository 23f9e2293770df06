"""What a second base model costs and gains: MiniLM against MPNet through the real pipeline.

    python benchmarks/compare_bases.py [--datasets sts docstrings] [--losses cosent] [--rows 600]

Builds a scratch copy of the project with `run.base_models: [minilm, mpnet]` (configs/compare_bases.yaml's
comparison) over the given built-in sets and losses, runs one `dvc repro`, and prints each baseline / train /
evaluate stage's wall time per base model (from the stages' own timing lines in DVC's output, so the two bases
are measured in the same invocation on the same machine) and the leaderboard: each cell's validation and test
Spearman with its gain over its own base. MPNet must be installed first (`python -m pipeline.fetch
all-mpnet-base-v2`). Prints the CPU it ran on; nothing is asserted (a benchmark, run by hand).
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts.scratch_project import ROOT, commit, scratch_project  # noqa: E402

STAGE_LINE = re.compile(r"^Running stage '(?P<stage>[a-z_]+)@(?P<cell>[^']+)':$")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def timed_repro(repo: Path, env: dict[str, str], *targets: str) -> dict[str, float]:
    """Run `dvc repro [targets]` in `repo`; each stage's wall time, by stage name, in the order they ran."""
    # line-buffered: each `Running stage` line is stamped when DVC prints it
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", *targets], cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines, started = [], {}  # stage -> when its `Running stage` line was printed
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if match := STAGE_LINE.match(lines[-1]):
            started[f"{match['stage']}@{match['cell']}"] = time.perf_counter()
    if proc.wait():
        raise SystemExit("\n".join(lines[-40:]))
    # DVC runs one stage at a time: each lasts until the next one starts (the last one, until DVC exits)
    ends = [*list(started.values())[1:], time.perf_counter()]
    return {name: end - start for (name, start), end in zip(started.items(), ends)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["sts", "docstrings"])
    parser.add_argument("--losses", nargs="+", default=["cosent"])
    parser.add_argument("--rows", type=int, default=600, help="rows per built-in set (the shipped default: 600)")
    args = parser.parse_args()

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["run"] = {"datasets": args.datasets, "base_models": ["minilm", "mpnet"], "losses": args.losses}
    for name in args.datasets:
        params["datasets"][name]["rows"] = args.rows
    with tempfile.TemporaryDirectory(prefix="compare-bases-") as folder:
        repo = Path(folder)
        env = scratch_project(repo, params)
        commit(repo, env, "compare bases")
        times = timed_repro(repo, env)
        print(f"{cpu_name()}, {len(args.datasets)} sets x {len(args.losses)} losses, {args.rows} rows per set\n")
        print(f"{'stage':<10} {'cell':<28} {'minilm s':>9} {'mpnet s':>9} {'ratio':>6}")
        for stage in ("baseline", "train", "evaluate"):
            for name, seconds in times.items():
                kind, cell = name.split("@")
                if kind != stage or "-minilm" not in f"-{cell}-":
                    continue
                other = times.get(name.replace("-minilm", "-mpnet"))
                if other:
                    print(f"{stage:<10} {cell.replace('-minilm', ''):<28} {seconds:>9.1f} {other:>9.1f} {other / seconds:>5.1f}x")
        print()
        print((repo / "reports" / "leaderboard.md").read_text().split("## Transfer")[0])


if __name__ == "__main__":
    main()
