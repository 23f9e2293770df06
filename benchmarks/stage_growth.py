"""How each stage's cost grows with its data: Debian description pairs at several sizes through every stage.

    python benchmarks/stage_growth.py [--rows 30000 100000 270000] [--loss cosine] [--base minilm] [--plain]

For each size, writes that many real-text scored pairs (benchmarks/debian_pairs.py: package short descriptions,
score = tag overlap, 0-5; seed card 004 trained CosineSimilarityLoss on 269,144 such pairs) into a scratch copy
of the project with the built-in STS set as an eval set (so evaluate scores a transfer table), commits it and
runs one real `dvc repro` of the one cell: ingest, split, baseline, train, evaluate, card, report, publish (the
shipped `train:` defaults, one epoch). Prints each stage's wall time and peak resident memory per size, each
stage's growth against the smallest size beside the growth of the rows, the train stage's samples/s, the
evaluation side's share of the training time and how well the train stage's time estimate held; each size's
DVC output is kept in --logs. Needs apt's package lists (`apt-get update`) and `lz4`. Prints the CPU it ran
on; nothing is asserted (a benchmark, run by hand).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare_bases import cpu_name, timed_repro  # noqa: E402
from benchmarks.pipeline_vs_plain import PLAIN_SCRIPT  # noqa: E402
from scripts.scratch_project import ROOT, commit, scratch_project  # noqa: E402

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


STAGES = ("ingest", "ingest_eval", "split", "split_eval", "baseline", "baseline_eval", "train", "evaluate", "card",
          "report", "publish")
PROGRESS = re.compile(r"^train \S+: step (?P<step>\d+)/(?P<steps>\d+) .*\| (?P<elapsed>[\d:]+) elapsed, ~(?P<left>[\d:]+) left")


def plain_training(repo: Path, env: dict[str, str], params: dict, base: str, loss: str) -> dict[str, float]:
    """Plain sentence-transformers' bare training of the rows the cell trained on (a scored set and a loss that
    takes scored pairs: the train split as it is), in the same scratch project: library defaults except what
    sets the amount of work (batch 32, 1 epoch, the pipeline's seed), no evaluation or checkpoints; its
    samples/s and test Spearman on the same test split."""
    proc = subprocess.run([sys.executable, "-c", PLAIN_SCRIPT, params["base_models"][base]["model"],
                           params["losses"][loss]["class"], f"data/splits/{DATASET}/train.parquet",
                           f"data/test/{DATASET}.parquet", str(repo / "plain"), str(params["seed"])],
                          cwd=repo, env={**env, "PYTHONPATH": str(repo)}, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"plain training failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def eta_check(lines: list[str]) -> str:
    """How well the train stage's estimate held: at 20 % and 50 % of the steps (after the first validation pass,
    whose cost the estimate learns from), elapsed + estimated rest against the training time its last progress
    line reports."""
    seconds = lambda clock: sum(int(part) * 60 ** i for i, part in enumerate(reversed(clock.split(":"))))  # noqa: E731
    progress = [match for line in lines if (match := PROGRESS.match(line))]
    if not progress:
        return "no progress lines"
    actual = seconds(progress[-1]["elapsed"])
    said = []
    for share in (0.2, 0.5):
        line = next(m for m in progress if int(m["step"]) >= share * int(m["steps"]))
        said.append(f"at {share:.0%} it said {seconds(line['elapsed']) + seconds(line['left'])} s")
        said[-1] += f" ({(seconds(line['elapsed']) + seconds(line['left'])) / actual - 1:+.0%})"
    return f"training took {actual} s; " + ", ".join(said)


def debian_project(repo: Path, rows: int, base: str, loss: str) -> tuple[dict, dict[str, str]]:
    """A committed scratch project in `repo` whose one cell trains `base` x `loss` on `rows` Debian pairs, with
    the built-in STS set as an eval set; its params and environment."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.pop("sweep", None)
    params["datasets"] = {DATASET: {"source": "data/raw/debian.csv", "name": "Debian package descriptions",
                                    "score_range": [0, 5]}}
    params["eval_sets"] = {EVAL_SET: {"source": "builtin:similarity_pairs", "name": "Synthetic STS", "rows": 600,
                                      "score_range": [0, 5]}}
    params["run"] = {"datasets": [DATASET], "base_models": [base], "losses": [loss]}
    env = scratch_project(repo, params, builtin_data=False, MLFLOW_TRACKING_URI=f"sqlite:///{repo / 'mlflow.db'}")
    write_pairs(repo / "data" / "raw" / "debian.csv", rows, env)
    commit(repo, env, f"{rows} Debian pairs")
    return params, env


def measure(rows: int, base: str, loss: str, logs: Path, plain: bool) -> dict[str, tuple[float, float]]:
    """Every stage's (wall s, peak RSS MiB) for one size; also the train stage's samples/s (its fit, validation
    passes included) as "samples/s", the cell's test Spearman, and with `plain` plain training's figures."""
    with tempfile.TemporaryDirectory(prefix="stage-growth-") as folder:
        repo = Path(folder)
        params, env = debian_project(repo, rows, base, loss)
        repro = timed_repro(repo, env, log=logs / f"repro-{rows}.log")
        lines = repro.lines
        # one cell: each stage kind ran once (train@debian-minilm-cosine -> train)
        results = {name.partition("@")[0]: (seconds, repro.peak_mib[name]) for name, seconds in repro.seconds.items()}
        tuned = json.loads((repo / "results" / "evaluate" / DATASET / base / f"{loss}.json").read_text())["test"]
        results["test Spearman"] = (tuned["tuned"]["similarity"]["spearman_cosine"], 0.0)
        if plain:
            bare = plain_training(repo, env, params, base, loss)
            results["plain samples/s"] = (bare["samples_per_second"], 0.0)
            results["plain test Spearman"] = (bare["spearman"], 0.0)
            print(f"  {rows:,} rows: plain sentence-transformers {bare['seconds']:.1f} s training, "
                  f"{bare['samples_per_second']:.1f} samples/s, test Spearman {bare['spearman']:.4f}", flush=True)
    for name in STAGES:
        print(f"  {rows:,} rows: {name} {results[name][0]:.1f} s, {results[name][1]:,.0f} MiB", flush=True)
    print(f"  {rows:,} rows: {eta_check(lines)}")
    if found := next((re.search(r": (\d+) rows, \d+ steps, ([\d.]+)s", line) for line in lines
                      if re.search(r": \d+ rows, \d+ steps, [\d.]+s", line)), None):
        results["samples/s"] = (int(found[1]) / float(found[2]), 0.0)
    return results


def table(sizes: list[int], measured: dict[int, dict[str, tuple[float, float]]], base: str, loss: str) -> str:
    first = sizes[0]
    head = " | ".join(f"{rows:,} rows: s / MiB" for rows in sizes)
    lines = [f"| stage | {head} | growth of time, {first:,} -> {sizes[-1]:,} (rows x{sizes[-1] / first:.1f}) |",
             "|:--|" + "--:|" * (len(sizes) + 1)]
    for name in STAGES:
        cells = " | ".join(f"{measured[rows][name][0]:.1f} / {measured[rows][name][1]:,.0f}" for rows in sizes)
        lines.append(f"| {name} | {cells} | x{measured[sizes[-1]][name][0] / measured[first][name][0]:.1f} |")
    speeds = " | ".join(f"{measured[rows].get('samples/s', (0.0, 0.0))[0]:.1f}" for rows in sizes)
    lines.append(f"| train samples/s | {speeds} | |")
    for extra in ("test Spearman", "plain samples/s", "plain test Spearman"):
        if all(extra in measured[rows] for rows in sizes):
            digits = 4 if "Spearman" in extra else 1
            lines.append(f"| {extra} | " + " | ".join(f"{measured[rows][extra][0]:.{digits}f}" for rows in sizes) + " | |")
    shares = " | ".join(f"{sum(measured[rows][name][0] for name in EVALUATION_SIDE) / measured[rows]['train'][0]:.0%}"
                        for rows in sizes)
    lines.append(f"| evaluation side / train ({' + '.join(EVALUATION_SIDE)}) | {shares} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[30_000, 100_000, 270_000])
    parser.add_argument("--loss", default="cosine", help="a loss of params.yaml (seed 004: cosine)")
    parser.add_argument("--base", default="minilm", help="a base model of params.yaml")
    parser.add_argument("--logs", type=Path, default=Path("stage-growth-logs"), help="where each size's dvc repro output goes")
    parser.add_argument("--plain", action="store_true",
                        help="also train plain sentence-transformers on each size's train split (same invocation)")
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    sizes = sorted(args.rows)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; {args.base} x {args.loss}, Debian pairs at {sizes}")
    measured = {rows: measure(rows, args.base, args.loss, args.logs, args.plain) for rows in sizes}
    print()
    print(table(sizes, measured, args.base, args.loss))


if __name__ == "__main__":
    main()
