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
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts.scratch_project import ROOT, commit, scratch_project, stage_processes  # noqa: E402

STAGE_LINE = re.compile(r"^Running stage '(?P<stage>[a-z_]+(@[^']+)?)':$")  # report, summary: no @cell


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


@dataclass
class Repro:
    """What one `dvc repro` printed and cost, by stage name (`train@sts-minilm-cosent`, `report`) in the order
    the stages ran."""

    seconds: dict[str, float]
    total: float  # the whole `dvc repro`: the stages, and DVC's own start-up before the first
    peak_mib: dict[str, float]  # the largest resident set of any process under DVC while the stage ran
    lines: list[str]


def _peak_rss_mib(pid: int) -> float:
    """The process's high-water resident set (VmHWM), MiB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed_repro(repo: Path, env: dict[str, str], *targets: str, log: Path | None = None) -> Repro:
    """Run `dvc repro [targets]` in `repo` (its output also to `log`): each stage's wall time and peak RSS.

    DVC runs one stage at a time, so a stage lasts from its `Running stage` line to the next one (the last
    one, until DVC exits). Its peak RSS is the largest high-water mark of any process under DVC (or forked for
    it by a warm server) while it runs, read every 0.2 s (VmHWM keeps the peak, so only growth in a process's
    last 0.2 s can be missed)."""
    # unbuffered on both ends: each `Running stage` line is stamped when DVC prints it
    begun = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", *targets], cwd=repo, env={**env, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    started: dict[str, float] = {}  # stage -> when its `Running stage` line was printed
    current: list[str] = []  # the stages in the order they started (appended here, the sampler reads the last)
    peaks: dict[str, float] = {}
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not done.wait(0.2):
            if not current:
                continue
            if not root.is_running():
                return
            stage = current[-1]  # warm-started stages are not under DVC: found by their folder
            peaks[stage] = max([peaks.get(stage, 0.0), *(_peak_rss_mib(p.pid) for p in stage_processes(root.pid, repo))])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines: list[str] = []
    with (log or Path(os.devnull)).open("w") as out:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            out.write(line)
            if match := STAGE_LINE.match(lines[-1]):
                started[match["stage"]] = time.perf_counter()
                current.append(match["stage"])
    code = proc.wait()
    done.set()
    sampler.join()
    if code:
        raise SystemExit("\n".join(lines[-40:]))
    ends = [*list(started.values())[1:], time.perf_counter()]
    return Repro({name: end - start for (name, start), end in zip(started.items(), ends)}, ends[-1] - begun,
                 {name: peaks.get(name, 0.0) for name in started}, lines)


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
        times = timed_repro(repo, env).seconds
        print(f"{cpu_name()}, {len(args.datasets)} sets x {len(args.losses)} losses, {args.rows} rows per set\n")
        print(f"{'stage':<10} {'cell':<28} {'minilm s':>9} {'mpnet s':>9} {'ratio':>6}")
        for stage in ("baseline", "train", "evaluate"):
            for name, seconds in times.items():
                kind, _, cell = name.partition("@")
                if kind != stage or "-minilm" not in f"-{cell}-":
                    continue
                other = times.get(name.replace("-minilm", "-mpnet"))
                if other:
                    print(f"{stage:<10} {cell.replace('-minilm', ''):<28} {seconds:>9.1f} {other:>9.1f} {other / seconds:>5.1f}x")
        print()
        print((repo / "reports" / "leaderboard.md").read_text().split("## Transfer")[0])


if __name__ == "__main__":
    main()
