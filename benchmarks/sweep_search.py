"""Sweep benchmark: TPE with pruning against a grid of the same budget, on real text.

Usage: python benchmarks/sweep_search.py [--rows 1000] [--keep DIR]

Workload: the built-in docstring pairs (summary lines of the running Python's stdlib docstrings -> the
function signatures), `--rows` rows, CoSENTLoss on all-MiniLM-L6-v2, 1 epoch at batch 32, validation every
11 steps. Both searches get 9 trials of at most one epoch each over the same two dimensions, learning rate
2e-5..1.8e-4 and CoSENT scale 2..18:
  (grid) the 3 x 3 grid (2e-5, 6e-5, 1.8e-4) x (2, 6, 18), every trial trained in full;
  (tpe)  TPE on the log-scaled ranges with the median pruner (3 start-up trials, pruning from step 22).
Each runs `python -m pipeline.sweep` in a fresh git + DVC copy of this repository (one `dvc repro` first, as
a user would have), so the wall time is what a user waits, DVC experiments and MLflow runs included. Prints
per search: best validation Spearman, the test Spearman of that trial's model, training steps spent, trials
pruned, wall time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPACE = {"train.learning_rate": {"type": "float", "low": 2.0e-5, "high": 1.8e-4, "log": True},
         "losses.cosent.params.scale": {"type": "float", "low": 2.0, "high": 18.0, "log": True}}
GRID = {"train.learning_rate": {"type": "categorical", "choices": [2.0e-5, 6.0e-5, 1.8e-4]},
        "losses.cosent.params.scale": {"type": "categorical", "choices": [2.0, 6.0, 18.0]}}
SEARCHES = {
    "grid": {"sampler": "grid", "pruner": {"type": "none"}, "space": GRID},
    "tpe": {"sampler": "tpe", "pruner": {"type": "median", "startup_trials": 3, "warmup_steps": 22}, "space": SPACE},
}
TRIALS = 9


def make_repo(repo: Path, rows: int) -> dict[str, str]:
    """A git + DVC copy of the pipeline with the benchmark's params, reproduced and committed."""
    from scripts.scratch_project import commit, scratch_project

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["run"] = {"datasets": ["docstrings"], "base_models": ["minilm"], "losses": ["cosent"]}
    params["datasets"]["docstrings"]["rows"] = rows
    params["train"].update(eval_steps=11, checkpoint_steps=0)
    params.pop("sweep")
    env = scratch_project(repo, params)
    commit(repo, env, "benchmark baseline", repro=True)
    return env


def run_search(repo: Path, env: dict[str, str], name: str) -> dict[str, float]:
    import mlflow
    import optuna
    from dvc.api import DVCFileSystem

    from pipeline.core import paths

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["sweep"] = {"study": name, "objective": {"dataset": "docstrings", "loss": "cosent"}, "trials": TRIALS,
                       **SEARCHES[name]}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipeline.sweep"], cwd=repo, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    print(proc.stdout, proc.stderr[-2000:] if proc.returncode else "", flush=True)
    proc.check_returncode()
    trials = optuna.load_study(study_name=name, storage=f"sqlite:///{repo / 'optuna.db'}").trials
    steps, pruned = 0, 0
    for trial in trials:
        metrics = json.loads(DVCFileSystem(str(repo), rev=f"{name}-{trial.number}")
                             .read_text(paths.train_metrics("docstrings", "minilm", "cosent").as_posix()))
        steps += metrics["steps"]
        pruned += metrics["pruned"]
    best = max((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    store = mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = store.get_experiment_by_name(params["mlflow"]["experiment"]).experiment_id
    (best_run,) = store.search_runs([experiment], f"tags.sweep_study = '{name}' and tags.sweep_trial = '{best.number}'")
    return {"best_validation": best.value, "test_of_best": best_run.data.metrics["test_spearman_cosent"],
            "steps": steps, "pruned": pruned, "wall_s": wall, "best_params": best.params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="build the repository here and keep it (default: a temp dir)")
    args = parser.parse_args()
    repo = args.keep or Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    repo.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    env = make_repo(repo, args.rows)
    base = json.loads((repo / "results" / "baseline" / "minilm" / "docstrings.json").read_text())["test"]["similarity"]
    print(f"baseline repro {time.perf_counter() - started:.0f}s; base model test Spearman {base['spearman_cosine']:.4f}")
    results = {name: run_search(repo, env, name) for name in SEARCHES}
    print("| search | best validation Spearman | test Spearman of that trial | training steps | pruned | wall |")
    print("|:--|--:|--:|--:|--:|--:|")
    for name, r in results.items():
        print(f"| {name} | {r['best_validation']:.4f} | {r['test_of_best']:.4f} | {r['steps']} | {r['pruned']}/{TRIALS} "
              f"| {r['wall_s'] / 60:.1f} min |")
    for name, r in results.items():
        print(f"{name} best params: {r['best_params']}")
    if not args.keep:
        shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()
