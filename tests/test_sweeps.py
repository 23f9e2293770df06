"""A sweep of 6 queued experiments run by 2 parallel DVC queue workers records 6 complete MLflow runs —
none lost to database locking in the default sqlite store."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import mlflow
import pytest

from tests.conftest import dvc_repo, run, tiny_params

pytestmark = pytest.mark.slow
# none equal to the shipped 5e-05: an unchanged cell would be skipped by DVC and log no new run
RATES = ["1e-05", "2e-05", "3e-05", "4e-05", "6e-05", "7e-05"]


def test_six_queued_experiments_two_workers_all_recorded(tiny_model_dir: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = dvc_repo(repo, tiny_params(tiny_model_dir, ["sts"], ["cosent"], rows=40))
    dvc = [sys.executable, "-m", "dvc"]
    run(dvc + ["repro"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "baseline"], repo, env)

    for rate in RATES:
        run(dvc + ["exp", "run", "--queue", "--name", f"lr-{rate}", "-S", f"train.learning_rate={rate}"], repo, env)
    run(dvc + ["queue", "start", "-j", "2"], repo, env)
    deadline, status = time.time() + 1200, ""
    while time.time() < deadline:
        status = run(dvc + ["queue", "status"], repo, env).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    assert status.count("Success") == len(RATES), status

    store = mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = store.get_experiment_by_name("sentence-embedding-finetune").experiment_id
    cells = store.search_runs([experiment], "tags.cell = 'sts/cosent'")
    swept = {r.data.tags.get("dvc_exp"): r for r in cells if r.data.tags.get("dvc_exp")}
    assert set(swept) == {f"lr-{rate}" for rate in RATES}
    for name, found in swept.items():
        assert found.info.status == "FINISHED"
        assert found.data.params["learning_rate"] == name.removeprefix("lr-")
        assert len(store.get_metric_history(found.info.run_id, "loss")) >= 3
        assert len(store.get_metric_history(found.info.run_id, "eval_validation_spearman_cosine")) >= 2
        assert "test_spearman_cosine" in found.data.metrics
        assert [a.path for a in store.list_artifacts(found.info.run_id, "card")] == ["card/README.md"]
    shown = json.loads(run(dvc + ["exp", "show", "--json"], repo, env).stdout)
    assert shown, "dvc exp show lists the sweep"
