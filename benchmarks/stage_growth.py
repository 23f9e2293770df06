"""How each stage's cost grows with its data: Debian description pairs at several sizes through every stage.

    python benchmarks/stage_growth.py [--rows 30000 100000 270000] [--loss cosine] [--base minilm]

For each size, writes that many real-text scored pairs (benchmarks/debian_pairs.py: package short descriptions,
score = tag overlap, 0-5; seed card 004 trained CosineSimilarityLoss on 269,144 such pairs) into a scratch copy
of the project with the built-in STS set as an eval set (so evaluate scores a transfer table), then runs every
stage of the one cell as its own process, in dvc.yaml's order: ingest, split, baseline, train, evaluate, card,
report, publish (the shipped `train:` defaults, one epoch). Prints each stage's wall time and peak resident
memory (the stage process and everything under it) per size, each stage's growth against the smallest size
beside the growth of the rows, the train stage's samples/s, and the evaluation side's share of the training
time. Needs apt's package lists (`apt-get update`) and `lz4`. Prints the CPU it ran on; nothing is asserted (a
benchmark, run by hand).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare_bases import cpu_name  # noqa: E402
from scripts.scratch_project import ROOT, scratch_project  # noqa: E402

DATASET, EVAL_SET = "debian", "sts"
EVALUATION_SIDE = ("baseline", "baseline_eval", "evaluate", "card")  # what scoring costs beside training itself


def write_pairs(path: Path, rows: int, env: dict[str, str]) -> None:
    """`rows` Debian description pairs as sentence1,sentence2,score, by benchmarks/debian_pairs.py in a process of
    its own: the ~60k package texts never enter this process, whose memory every stage process it starts would
    otherwise count from (a child's peak RSS starts at its parent's size when it is forked)."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "debian_pairs.py"), str(path), "--rows", str(rows)],
                          env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"debian_pairs.py failed:\n{proc.stderr[-3000:]}")


def stages(base: str, loss: str) -> list[tuple[str, list[str]]]:
    cell = ["--dataset", DATASET, "--base", base, "--loss", loss]
    return [("ingest", ["pipeline.ingest", "--dataset", DATASET]), ("ingest_eval", ["pipeline.ingest", "--dataset", EVAL_SET]),
            ("split", ["pipeline.split", "--dataset", DATASET]), ("split_eval", ["pipeline.split", "--dataset", EVAL_SET]),
            ("baseline", ["pipeline.baseline", "--dataset", DATASET, "--base", base]),
            ("baseline_eval", ["pipeline.baseline", "--dataset", EVAL_SET, "--base", base]),
            ("train", ["pipeline.train", *cell]), ("evaluate", ["pipeline.evaluate", *cell]), ("card", ["pipeline.card", *cell]),
            ("report", ["pipeline.report"]), ("publish", ["pipeline.publish", "--dataset", DATASET])]


def run_stage(module_args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB; wait4 reports the largest of the process and its waited-for descendants)
    and the output of one stage process."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", *module_args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(module_args)} failed:\n{output[-3000:]}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, output


def measure(rows: int, base: str, loss: str) -> dict[str, tuple[float, float]]:
    """Every stage's (wall s, peak RSS MiB) for one size; also the train stage's samples/s as "samples/s"."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.pop("sweep", None)
    params["datasets"] = {DATASET: {"source": "data/raw/debian.csv", "name": "Debian package descriptions",
                                    "score_range": [0, 5]}}
    params["eval_sets"] = {EVAL_SET: {"source": "builtin:similarity_pairs", "name": "Synthetic STS", "rows": 600,
                                      "score_range": [0, 5]}}
    params["run"] = {"datasets": [DATASET], "base_models": [base], "losses": [loss]}
    with tempfile.TemporaryDirectory(prefix="stage-growth-") as folder:
        repo = Path(folder)
        env = scratch_project(repo, params, builtin_data=False,
                              MLFLOW_TRACKING_URI=f"sqlite:///{repo / 'mlflow.db'}", PYTHONPATH=str(repo))
        write_pairs(repo / "data" / "raw" / "debian.csv", rows, env)
        results: dict[str, tuple[float, float]] = {}
        for name, module_args in stages(base, loss):
            seconds, rss, output = run_stage(module_args, repo, env)
            results[name] = (seconds, rss)
            print(f"  {rows:,} rows: {name} {seconds:.1f} s, {rss:,.0f} MiB", flush=True)
            if name == "train" and (found := re.search(r": (\d+) rows, \d+ steps, ([\d.]+)s", output)):
                results["samples/s"] = (int(found[1]) / float(found[2]), 0.0)
    return results


def table(sizes: list[int], measured: dict[int, dict[str, tuple[float, float]]], base: str, loss: str) -> str:
    first = sizes[0]
    head = " | ".join(f"{rows:,} rows: s / MiB" for rows in sizes)
    lines = [f"| stage | {head} | growth of time, {first:,} -> {sizes[-1]:,} (rows x{sizes[-1] / first:.1f}) |",
             "|:--|" + "--:|" * (len(sizes) + 1)]
    for name, _ in stages(base, loss):
        cells = " | ".join(f"{measured[rows][name][0]:.1f} / {measured[rows][name][1]:,.0f}" for rows in sizes)
        lines.append(f"| {name} | {cells} | x{measured[sizes[-1]][name][0] / measured[first][name][0]:.1f} |")
    speeds = " | ".join(f"{measured[rows].get('samples/s', (0.0, 0.0))[0]:.1f}" for rows in sizes)
    lines.append(f"| train samples/s | {speeds} | |")
    shares = " | ".join(f"{sum(measured[rows][name][0] for name in EVALUATION_SIDE) / measured[rows]['train'][0]:.0%}"
                        for rows in sizes)
    lines.append(f"| evaluation side / train ({' + '.join(EVALUATION_SIDE)}) | {shares} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[30_000, 100_000, 270_000])
    parser.add_argument("--loss", default="cosine", help="a loss of params.yaml (seed 004: cosine)")
    parser.add_argument("--base", default="minilm", help="a base model of params.yaml")
    args = parser.parse_args()
    sizes = sorted(args.rows)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; {args.base} x {args.loss}, Debian pairs at {sizes}")
    measured = {rows: measure(rows, args.base, args.loss) for rows in sizes}
    print()
    print(table(sizes, measured, args.base, args.loss))


if __name__ == "__main__":
    main()
