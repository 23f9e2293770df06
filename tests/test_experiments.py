"""DVC experiments that change the data work the first time, run as a user runs them: seed configs through
scripts/exp_from_config.py, a queued grid over datasets, a dataset added to params.yaml, a raw file edited,
and a sweep on a freshly committed params.yaml, all from a repo whose last `dvc repro` used the default
datasets."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from pipeline.core import paths
from scripts.scratch_project import commit, scratch_project
from tests.conftest import ROOT, run, tiny_params

DEFAULT_DATASETS = ["docstrings", "products", "sts"]
EXPERIMENT = "sentence-embedding-finetune"
LOSS = "cosent"
DVC = [sys.executable, "-m", "dvc"]
pytestmark = pytest.mark.slow


def tiny_scored(rows: int, offset: int) -> pd.DataFrame:
    """Scored pairs with distinct texts per row (so no split drops them), scores 0-5."""
    return pd.DataFrame({"sentence1": [f"the {i + offset} grey cat sat on mat number {i}" for i in range(rows)],
                         "sentence2": [f"a cat, grey, sitting on mat {i} ({i + offset})" for i in range(rows)],
                         "score": [(i * 7) % 6 for i in range(rows)]})


@pytest.fixture(scope="module")
def repo(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The default datasets reproduced and committed (one loss to keep it short), with two small CSV datasets
    declared in params.yaml but not run."""
    repo = tmp_path_factory.mktemp("exp-repo")
    params = tiny_params(tiny_model_dir, DEFAULT_DATASETS, [LOSS], rows=40)
    for name in ("tiny_a", "tiny_b"):
        params["datasets"][name] = {"source": f"data/raw/{name}.csv", "score_range": [0, 5]}
    env = scratch_project(repo, params)
    tiny_scored(40, 0).to_csv(repo / "data/raw/tiny_a.csv", index=False)
    tiny_scored(40, 1000).to_csv(repo / "data/raw/tiny_b.csv", index=False)
    commit(repo, env, "tiny pipeline")
    run([*DVC, "repro", "report"], repo, env, timeout=1500)  # cards, publish and summary: tests/test_pipeline_e2e.py
    commit(repo, env, "default repro")
    return repo, env


def workspace_state(repo: Path, env: dict[str, str]) -> tuple[str, str, str]:
    return (run(["git", "status", "--porcelain"], repo, env).stdout, (repo / "params.yaml").read_text(),
            (repo / "dvc.lock").read_text())


def experiment_rows(repo: Path, env: dict[str, str]) -> dict[str, dict]:
    """{experiment name: its `dvc exp show --json` data}."""
    shown = json.loads(run([*DVC, "exp", "show", "--json"], repo, env).stdout)
    return {exp["name"]: exp["data"] for commit_row in shown for exp in (commit_row.get("experiments") or [])
            for exp in exp["revs"]}


def test_the_default_run_reads_as_one_row_per_dataset(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    shown = json.loads(run([*DVC, "metrics", "show", "--json"], root, env).stdout)
    files = next(iter(shown.values()))["data"]
    assert sorted(files) == [paths.dataset_metrics(name).as_posix() for name in DEFAULT_DATASETS]
    for name in DEFAULT_DATASETS:
        data = files[paths.dataset_metrics(name).as_posix()]["data"]
        # a bounded row: the winner, its validation and test Spearman, the base model's, one per loss
        assert set(data) == {"metric", "winner", "winner_val", "winner_test", "base_test", "test"}
        assert data["metric"] == "spearman" and data["test"].keys() == {"tiny"}
        assert list(data["test"]["tiny"]) == [LOSS] and data["winner"] == f"tiny/{LOSS}"
    table = run([*DVC, "metrics", "show"], root, env).stdout.splitlines()
    assert len(table) == 1 + len(DEFAULT_DATASETS) and max(map(len, table)) <= 200


def test_seed_configs_run_as_temp_experiments_after_a_default_repro(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    before = workspace_state(root, env)
    # the seed that swaps the datasets for one the default run never ingested; every seed's setup itself (LoRA,
    # Matryoshka, ...) trains in tests/test_seeds.py, without DVC's experiment machinery around it
    seeds = {"seed_003_triplet_zh_products": ("seed-003-triplet-zh", "zh_products", "triplet_euclidean", "TripletLoss")}
    for config, (name, dataset, loss, in_card) in seeds.items():
        # up to the cards and the report (what is checked here): publish and summary are tests/test_pipeline_e2e.py's
        out = run([sys.executable, str(ROOT / "scripts" / "exp_from_config.py"), str(ROOT / "configs" / f"{config}.yaml"),
                   "-S", "train.max_steps=3", "card", "report"], root, env, timeout=900).stdout
        assert f"experiment {name} done" in out
        rows = experiment_rows(root, env)
        metrics = rows[name]["metrics"][paths.dataset_metrics(dataset).as_posix()]["data"]
        assert metrics["winner"] == f"tiny/{loss}" and -1 <= metrics["test"]["tiny"][loss] <= 1
        assert rows[name]["params"]["params.yaml"]["data"]["run"]["datasets"] == [dataset]
        from dvc.api import DVCFileSystem

        card = DVCFileSystem(str(root), rev=name).read_text(paths.card(dataset, "tiny", loss).as_posix())
        assert in_card in card
    assert workspace_state(root, env) == before  # --temp: the workspace keeps its params, lock and outputs


def test_a_failed_seed_experiment_leaves_the_workspace_unchanged(repo: tuple[Path, dict[str, str]], tmp_path: Path
                                                                ) -> None:
    root, env = repo
    before = workspace_state(root, env)
    config = tmp_path / "broken.yaml"
    config.write_text(yaml.safe_dump({"experiment_name": "broken", "run": {"datasets": ["tiny_a"]},
                                      "train": {"learning_rate": 5.0}}))  # above the schema's bound: stops at ingest
    proc = __import__("subprocess").run([sys.executable, str(ROOT / "scripts" / "exp_from_config.py"), str(config)],
                                        cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "train.learning_rate = 5.0" in proc.stdout + proc.stderr
    assert workspace_state(root, env) == before


def test_a_queued_grid_over_datasets_runs_in_parallel_into_the_same_store(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    store = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = store.get_experiment_by_name(EXPERIMENT).experiment_id
    before = {r.info.run_id for r in store.search_runs([experiment])}
    # up to the report (its metrics are what `dvc exp show` compares): no card, publish or summary to wait for
    run([*DVC, "exp", "run", "--queue", "-S", "run.datasets=[tiny_a],[tiny_b]", "report"], root, env)
    run([*DVC, "queue", "start", "-j", "2"], root, env)
    deadline, status = time.time() + 1200, ""
    while time.time() < deadline:
        status = run([*DVC, "queue", "status"], root, env).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    assert status.count("Success") == 2, status
    rows = experiment_rows(root, env)
    ran = {tuple(data["params"]["params.yaml"]["data"]["run"]["datasets"]): (name, data["metrics"])
           for name, data in rows.items()}
    for dataset in ("tiny_a", "tiny_b"):
        assert paths.dataset_metrics(dataset).as_posix() in ran[(dataset,)][1]
    # both landed in the repository's own MLflow store (DVC_ROOT), each under its invocation run, complete
    new = [r for r in store.search_runs([experiment]) if r.info.run_id not in before]
    cells = {r.data.tags["dvc_exp"]: r for r in new if r.data.tags.get("cell")}
    assert cells.keys() == {ran[("tiny_a",)][0], ran[("tiny_b",)][0]}
    parents = {r.info.run_id: r.info.run_name for r in new if r.data.tags.get("kind") == "parent"}
    for name, cell in cells.items():
        assert cell.info.status == "FINISHED" and parents[cell.data.tags["mlflow.parentRunId"]] == f"dvc exp {name}"
        assert len(store.get_metric_history(cell.info.run_id, "loss")) >= 3


def test_adding_a_dataset_takes_one_repro_and_an_edited_file_retrains_only_its_cells(
        repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["run"]["datasets"] = [*DEFAULT_DATASETS, "tiny_a"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run([*DVC, "repro", "report"], root, env, timeout=900).stdout
    # trained, or restored from DVC's run cache when the queued grid above trained the same cell
    assert (f"Running stage 'train@tiny_a-tiny-{LOSS}'" in out or f"Stage 'train@tiny_a-tiny-{LOSS}' is cached" in out) \
        and f"Stage 'train@sts-tiny-{LOSS}' didn't change" in out
    assert (root / paths.dataset_metrics("tiny_a")).exists() and (root / paths.model_dir("tiny_a", "tiny", LOSS)).is_dir()
    assert json.loads(run([*DVC, "status", "--json", "report"], root, env).stdout) == {}
    commit(root, env, "add tiny_a")

    raw = root / "data/raw/tiny_a.csv"
    raw.write_text(raw.read_text() + "one more grey cat on a mat,a grey cat on one more mat,4\n")
    assert json.loads(run([*DVC, "status", "--json"], root, env).stdout)  # never "up to date" over a changed file
    out = run([*DVC, "repro", "report"], root, env, timeout=900).stdout
    assert f"Running stage 'train@tiny_a-tiny-{LOSS}'" in out and "Running stage 'report'" in out
    for other in DEFAULT_DATASETS:  # their sources' fingerprints came out the same: not even ingest re-runs
        assert not [stage for stage in (f"ingest@{other}", f"split@{other}", f"train@{other}-tiny-{LOSS}")
                    if f"Running stage '{stage}'" in out]
    assert json.loads(run([*DVC, "status", "--json", "report"], root, env).stdout) == {}
    commit(root, env, "edit tiny_a")


def test_a_sweep_on_a_freshly_committed_params_yaml_completes(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["run"]["datasets"] = ["tiny_b"]  # narrowed to the objective's dataset, committed without a repro
    params["sweep"] = {"study": "fresh", "objective": {"dataset": "tiny_b", "loss": LOSS}, "trials": 1,
                       "pruner": {"type": "none"},
                       "space": {"train.learning_rate": {"type": "float", "low": 1.0e-5, "high": 1.0e-3, "log": True}}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit(root, env, "sweep tiny_b")
    run([sys.executable, "-m", "pipeline.sweep"], root, env, timeout=900)
    import optuna

    trials = optuna.load_study(study_name="fresh", storage=f"sqlite:///{root / 'optuna.db'}").trials
    assert [trial.state.name for trial in trials] == ["COMPLETE"]
