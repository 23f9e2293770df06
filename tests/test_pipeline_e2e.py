"""The real thing: `dvc repro` in a temporary git repository with tiny params and the tiny model, then
what a user looks at — metrics files, MLflow runs with metric histories, cards, `dvc metrics show`,
`dvc status` after a one-loss change, and a queued `dvc exp run` landing in the same MLflow store."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from pipeline.core import paths
from pipeline.core.handoffs import BaselineScores, EvalResult, RunRef, SplitReport, TrainFacts
from tests.conftest import dvc_repo, run, tiny_params

DATASETS = ["docstrings", "products", "sts"]
LOSSES = ["mnrl", "cosent"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    repo = tmp_path_factory.mktemp("repo")
    env = dvc_repo(repo, tiny_params(tiny_model_dir, DATASETS, LOSSES))
    dvc = [sys.executable, "-m", "dvc"]
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "tiny pipeline"], repo, env)
    run(dvc + ["repro"], repo, env, timeout=1500)
    return repo, env


def client(repo: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")


def test_every_cell_has_metrics_mlflow_history_and_card(repo: tuple[Path, dict[str, str]]) -> None:
    root, _ = repo
    store = client(root)
    for dataset in DATASETS:
        base = BaselineScores.read(root / paths.baseline_scores(dataset)).test.flat("test")
        for loss in LOSSES:
            result = EvalResult.read(root / paths.eval_result(dataset, loss)).flat()
            assert result["base_test_spearman_cosine"] == base["test_spearman_cosine"]
            run_id = RunRef.read(root / paths.mlflow_run(dataset, loss)).run_id
            mlrun = store.get_run(run_id)
            assert mlrun.info.status == "FINISHED" and mlrun.info.run_name == f"{dataset}/{loss}"
            assert len(store.get_metric_history(run_id, "loss")) >= 3
            assert len(store.get_metric_history(run_id, "eval_validation_spearman_cosine")) >= 2
            assert mlrun.data.metrics["test_spearman_cosine"] == pytest.approx(result["test_spearman_cosine"])
            assert mlrun.data.tags["mlflow.source.git.commit"]
            artifacts = [a.path for a in store.list_artifacts(run_id, "card")]
            assert artifacts == ["card/README.md"]
            card = (root / "cards" / dataset / loss / "README.md").read_text()
            facts = TrainFacts.read(root / paths.train_facts(dataset, loss))
            assert f"dataset_size:{facts.dataset.train_rows}" in card
            assert str(root) not in card and "base_model: tiny-bert" in card
    runs = store.search_runs([store.get_experiment_by_name("sentence-embedding-finetune").experiment_id])
    assert all(r.info.status == "FINISHED" for r in runs)
    assert len([r for r in runs if r.data.tags.get("cell")]) == len(DATASETS) * len(LOSSES)
    # one `dvc repro` = one parent run holding every cell and the report
    (parent,) = [r for r in runs if r.data.tags.get("kind") == "parent"]
    assert parent.info.run_name.startswith("dvc repro ")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(DATASETS) * len(LOSSES) + 1


def test_report_and_dvc_metrics(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    board = (root / "reports" / "leaderboard.md").read_text()
    for dataset in DATASETS:
        assert f"| {dataset} |" in board
    assert board.count("**") == 2 * len(DATASETS)  # one best cell per dataset
    shown = json.loads(run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], root, env).stdout)
    metrics = next(iter(shown.values()))["data"]["reports/metrics.json"]["data"]
    result = EvalResult.read(root / paths.eval_result("sts", "cosent")).flat()
    assert metrics["sts"]["cosent"] == pytest.approx(result["test_spearman_cosine"], abs=1e-6)
    sizes = SplitReport.read(root / paths.split_report("sts")).rows
    assert metrics["sts"]["rows_test"] == sizes["test"] > 0
    assert (root / "reports" / "heatmap.png").stat().st_size > 1000


def test_status_clean_then_one_loss_change_dirties_only_its_cells(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    dvc = [sys.executable, "-m", "dvc"]
    assert json.loads(run(dvc + ["status", "--json"], root, env).stdout) == {}
    params_path = root / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["losses"]["cosent"]["params"]["scale"] = 25.0
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        changed = set(json.loads(run(dvc + ["status", "--json"], root, env).stdout))
    finally:
        params_path.write_text(original)
    # DVC reports the stages whose own params changed (evaluate reads the loss's Matryoshka dims); card and
    # report of those cells follow from their changed deps when `dvc repro` runs. No other loss's cell and no
    # dataset stage is touched.
    assert changed == {f"{stage}@{d}-cosent" for d in DATASETS for stage in ("train", "evaluate")}


def test_queued_experiment_logs_into_the_same_store(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    dvc = [sys.executable, "-m", "dvc"]
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "lock"], root, env)
    experiment = client(root).get_experiment_by_name("sentence-embedding-finetune").experiment_id
    before = {r.info.run_id for r in client(root).search_runs([experiment])}
    run(dvc + ["exp", "run", "--queue", "--name", "scale25", "-S", "losses.cosent.params.scale=25.0"], root, env)
    run(dvc + ["queue", "start", "-j", "1"], root, env)
    deadline = time.time() + 900
    while time.time() < deadline:
        status = run(dvc + ["queue", "status"], root, env).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    assert "Success" in status, status + run(dvc + ["queue", "logs", "scale25"], root, env).stdout[-3000:]
    store = client(root)
    new = [r for r in store.search_runs([experiment]) if r.info.run_id not in before and r.data.tags.get("cell")]
    assert {r.data.tags["cell"] for r in new} == {f"{d}/cosent" for d in DATASETS}
    assert all(r.data.tags.get("dvc_exp") == "scale25" and r.info.status == "FINISHED" for r in new)
    parents = {r.info.run_id: r.info.run_name for r in store.search_runs([experiment], "tags.kind = 'parent'")}
    assert {parents[r.data.tags["mlflow.parentRunId"]] for r in new} == {"dvc exp scale25"}
    assert all(len(store.get_metric_history(r.info.run_id, "loss")) >= 3 for r in new)
    assert all("test_spearman_cosine" in r.data.metrics for r in new)
