"""A sweep of 6 queued experiments run by 2 parallel DVC queue workers records 6 complete MLflow runs —
none lost to database locking in the default sqlite store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from tests.conftest import ROOT, tiny_params

pytestmark = pytest.mark.slow
# none equal to the shipped 5e-05: an unchanged cell would be skipped by DVC and log no new run
RATES = ["1e-05", "2e-05", "3e-05", "4e-05", "6e-05", "7e-05"]


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_six_queued_experiments_two_workers_all_recorded(tiny_model_dir: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / "pipeline", repo / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data" / "raw", repo / "data" / "raw")
    params = tiny_params(tiny_model_dir, ["sts"], ["cosent"], rows=40)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", HF_HUB_OFFLINE="1",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t",
               DVC_NO_ANALYTICS="1")
    dvc = [sys.executable, "-m", "dvc"]
    run(["git", "init", "-q"], repo, env)
    run(dvc + ["init", "-q"], repo, env)
    run(dvc + ["repro"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "baseline"], repo, env)

    for rate in RATES:
        run(dvc + ["exp", "run", "--queue", "--name", f"lr-{rate}", "-S", f"train.learning_rate={rate}"], repo, env)
    run(dvc + ["queue", "start", "-j", "2"], repo, env)
    deadline, status = time.time() + 1200, ""
    while time.time() < deadline:
        status = run(dvc + ["queue", "status"], repo, env)
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
    shown = json.loads(run(dvc + ["exp", "show", "--json"], repo, env))
    assert shown, "dvc exp show lists the sweep"
