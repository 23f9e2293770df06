"""A long cell killed mid-training, then `dvc repro` again: does it resume, and end where an uninterrupted run ends?

    python benchmarks/resume_at_scale.py [--rows 270000] [--kill-at 0.55] [--reference] [--logs DIR]

Builds stage_growth.py's project (that many Debian description pairs, the built-in STS set as an eval set, one
MiniLM x CosineSimilarityLoss cell, the shipped `train:` defaults), runs `dvc repro` and SIGKILLs the process that
trains (as the kernel's out-of-memory killer would) at its first progress line past `--kill-at` of the steps, then
runs `dvc repro` again. Prints the checkpoint it resumed from, the steps it trained again, the kept step and the
test Spearman, and what the checkpoints cost on disk: the most checkpoints and bytes under checkpoints/ at any
moment (sampled every 0.5 s) and how many were saved. `--reference` first runs the same project uninterrupted in
the same invocation and compares kept step, test Spearman and the saved model's bytes. Prints the CPU it ran
on; nothing is asserted (a benchmark, run by hand).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare_bases import cpu_name  # noqa: E402
from benchmarks.stage_growth import DATASET, PROGRESS, debian_project  # noqa: E402
from scripts.scratch_project import stage_worker  # noqa: E402

RESUMED = re.compile(r"^train \S+: resumed from (?P<checkpoint>checkpoint-\d+)")
TRAINED = re.compile(r"^train \S+: \d+ rows, (?P<steps>\d+) steps, (?P<seconds>[\d.]+)s, "
                     r".*kept the weights of step (?P<kept>\d+)")


@dataclass
class Disk:
    """The checkpoint folder as sampled during a run."""

    most: int = 0  # checkpoints present at once
    peak_bytes: int = 0
    saved: set[str] = field(default_factory=set)  # every checkpoint-N seen

    def sample(self, folder: Path) -> None:
        checkpoints = [path for path in folder.rglob("checkpoint-*") if path.is_dir()]
        size = 0
        for path in folder.rglob("*"):
            try:
                size += path.stat().st_size if path.is_file() else 0
            except OSError:  # removed while we looked (the trainer rotates them)
                pass
        self.most, self.peak_bytes = max(self.most, len(checkpoints)), max(self.peak_bytes, size)
        self.saved.update(c.name for c in checkpoints)


def trainer_process(dvc: psutil.Process, repo: Path) -> psutil.Process | None:
    """The process that trains: the one the `python -m pipeline.train` stage process (which stays to end the
    MLflow run and say what is kept, as it does when the kernel kills its child) had forked, or with a warm
    start the stage forked for it by the warm server (then not under DVC)."""
    for proc in dvc.children(recursive=True):
        try:
            if "pipeline.train" in " ".join(proc.cmdline()) and proc.children():
                return stage_worker(proc.pid, repo)
        except psutil.Error:
            continue
    return None


def repro(repo: Path, env: dict[str, str], log: Path, disk: Disk,
          kill_at: float | None = None) -> tuple[int, list[str], int | None]:
    """One `dvc repro` (output to `log`); with `kill_at`, the trainer is killed at its first progress line past
    that share of the steps. Returns DVC's exit code, its lines and the step the kill came at."""
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=repo, env={**env, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    done = threading.Event()
    watcher = threading.Thread(target=lambda: [disk.sample(repo / "checkpoints") for _ in iter(lambda: done.wait(0.5), True)],
                               daemon=True)
    watcher.start()
    lines, killed_at = [], None
    with log.open("w", buffering=1) as out:  # line by line: the log can be followed while it runs
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            out.write(line)
            progress = PROGRESS.match(lines[-1])
            due = progress and kill_at is not None and int(progress["step"]) >= kill_at * int(progress["steps"])
            if due and killed_at is None:
                if (trainer := trainer_process(psutil.Process(proc.pid), repo)) is not None:
                    trainer.kill()
                    killed_at = int(progress["step"])
                    out.write(f"### benchmark: SIGKILL to the trainer (pid {trainer.pid}) at step {killed_at}\n")
    code = proc.wait()
    done.set()
    watcher.join()
    return code, lines, killed_at


def outcome(repo: Path, lines: list[str]) -> dict[str, object]:
    trained = next((m for line in lines if (m := TRAINED.match(line))), None)
    if trained is None:
        raise SystemExit("the train stage did not finish:\n" + "\n".join(lines[-40:]))
    scores = json.loads((repo / "results" / "evaluate" / DATASET / "minilm" / "cosine.json").read_text())["test"]
    model = repo / "models" / DATASET / "minilm" / "cosine" / "model.safetensors"
    return {"steps": int(trained["steps"]), "kept step": int(trained["kept"]), "train seconds": float(trained["seconds"]),
            "test Spearman": scores["tuned"]["similarity"]["spearman_cosine"],
            "model sha256": hashlib.sha256(model.read_bytes()).hexdigest()[:16]}


def run(rows: int, logs: Path, kill_at: float | None) -> dict[str, object]:
    label = "uninterrupted" if kill_at is None else "killed"
    with tempfile.TemporaryDirectory(prefix="resume-at-scale-") as folder:
        repo = Path(folder)
        _, env = debian_project(repo, rows, "minilm", "cosine")
        disk, started = Disk(), time.perf_counter()
        code, lines, killed_at = repro(repo, env, logs / f"{label}-{rows}.log", disk, kill_at)
        result: dict[str, object] = {}
        if kill_at is not None:
            if killed_at is None or code == 0:
                raise SystemExit(f"the trainer was not killed (dvc exit {code}); see {logs}")
            result["killed at step"] = killed_at
            result["said"] = next((line for line in reversed(lines) if line.startswith("error: train")), "")
            code, lines, _ = repro(repo, env, logs / f"resumed-{rows}.log", disk)
            resumed = next((m["checkpoint"] for line in lines if (m := RESUMED.match(line))), None)
            result["resumed from"] = resumed
            if resumed:
                result["steps trained again"] = killed_at - int(resumed.split("-")[1])
        if code:
            raise SystemExit("\n".join(lines[-40:]))
        result.update(outcome(repo, lines))
        result.update({"wall seconds": round(time.perf_counter() - started, 1), "checkpoints at once (most)": disk.most,
                       "checkpoints/ peak MiB": round(disk.peak_bytes / 2**20), "checkpoints saved": len(disk.saved)})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=270_000)
    parser.add_argument("--kill-at", type=float, default=0.55, help="share of the training steps at which to kill")
    parser.add_argument("--reference", action="store_true", help="first run the same project uninterrupted")
    parser.add_argument("--logs", type=Path, default=Path("resume-logs"), help="where each dvc repro's output goes")
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; {args.rows:,} Debian pairs, minilm x cosine", flush=True)
    results = {}
    if args.reference:
        results["uninterrupted"] = run(args.rows, args.logs, None)
        print(f"uninterrupted: {results['uninterrupted']}", flush=True)
    results["killed, then resumed"] = run(args.rows, args.logs, args.kill_at)
    print(f"killed, then resumed: {results['killed, then resumed']}", flush=True)
    keys = list(results["killed, then resumed"])
    print("\n| | " + " | ".join(results) + " |\n|:--|" + "--:|" * len(results))
    for key in keys:
        print(f"| {key} | " + " | ".join(str(result.get(key, "")) for result in results.values()) + " |")


if __name__ == "__main__":
    main()
