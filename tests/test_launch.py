"""The train stage under a multi-process launcher (torchrun / accelerate), run for real on CPU with two
processes (gloo): one model, one set of outputs and one MLflow run, written by rank 0 only."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import yaml

from pipeline import train
from pipeline.core import paths
from pipeline.core.handoffs import RunRef, TrainFacts
from tests.conftest import prepare_set, tiny_params


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_process_training_writes_once(workdir: Path, tiny_model_dir: Path, launcher: str,
                                          capsys: pytest.CaptureFixture) -> None:
    params = tiny_params(tiny_model_dir, ["docstrings"], ["mnrl"])
    params["train"].update({"launcher": launcher, "num_processes": 2, "checkpoint_steps": 2})
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    prepare_set("docstrings")
    train.main(["--dataset", "docstrings", "--base", "tiny", "--loss", "mnrl"])

    assert f"launching 2 processes with {launcher}" in capsys.readouterr().out
    facts = TrainFacts.read(workdir / paths.train_facts("docstrings", "tiny", "mnrl"))
    assert facts.global_step == 4 and facts.reload_max_abs_diff <= 1e-5
    assert (workdir / paths.model_dir("docstrings", "tiny", "mnrl") / "model.safetensors").exists()
    assert not paths.checkpoints("docstrings", "tiny", "mnrl").exists()  # cleaned up after a finished run
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    cell_runs = [r for r in runs if r.info.run_name == "docstrings/tiny/mnrl"]
    assert len(cell_runs) == 1 and cell_runs[0].info.status == "FINISHED"  # rank 1 opened no run of its own
    run_id = cell_runs[0].info.run_id
    assert RunRef.read(workdir / paths.mlflow_run("docstrings", "tiny", "mnrl")).run_id == run_id
    assert len(client.get_metric_history(run_id, "loss")) >= 3
    assert cell_runs[0].data.params["pipeline.train.num_processes"] == "2"


def test_failed_worker_fails_the_stage(workdir: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    params = tiny_params(tiny_model_dir, ["docstrings"], ["mnrl"])
    params["train"].update({"launcher": "torchrun", "num_processes": 2})
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    # no split written: every worker fails reading it, and the stage must fail with the launcher's status
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--dataset", "docstrings", "--base", "tiny", "--loss", "mnrl"])
    assert exit_info.value.code == 2
    assert "train docstrings/tiny/mnrl: torchrun exited with status 1" in capsys.readouterr().err
