"""Failures are loud, local and recoverable: SIGKILL mid-training resumes from a checkpoint, exceptions end
MLflow runs FAILED, a dead tracking server fails fast, runs are deterministic, nothing secret is logged."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from pipeline import baseline, card, evaluate, ingest, split, train
from pipeline.core import paths
from pipeline.core.handoffs import EvalResult
from tests.conftest import ROOT, tiny_params


def stage_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", MLFLOW_TRACKING_URI=f"sqlite:///{workdir / 'mlflow.db'}")
    return env


def prepare(workdir: Path, tiny_model_dir: Path, **train: object) -> None:
    params = tiny_params(tiny_model_dir, ["sts"], ["cosent"])
    params["train"].update(train)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    ingest.main(["--dataset", "sts"])
    split.main(["--dataset", "sts"])
    baseline.main(["--dataset", "sts"])


def cell_runs(workdir: Path) -> list:
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("sentence-embedding-finetune")
    return client.search_runs([experiment.experiment_id], "tags.cell = 'sts/cosent'") if experiment else []


@pytest.mark.slow
def test_sigkill_mid_training_then_rerun_resumes_from_checkpoint(workdir: Path, tiny_model_dir: Path) -> None:
    prepare(workdir, tiny_model_dir, max_steps=400, checkpoint_steps=5, eval_steps=100)
    command = [sys.executable, "-m", "pipeline.train", "--dataset", "sts", "--loss", "cosent"]
    proc = subprocess.Popen(command, cwd=workdir, env=stage_env(workdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    ckpt_dir = workdir / paths.checkpoints("sts", "cosent")
    while time.time() < deadline and proc.poll() is None:
        if any(ckpt_dir.glob("checkpoint-*/trainer_state.json")):
            break
        time.sleep(0.1)
    assert proc.poll() is None, "training finished before it could be killed"
    time.sleep(0.5)  # let the checkpoint's files finish writing
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (workdir / paths.model_dir("sts", "cosent")).exists(), "no half-written model left behind"
    assert [r.info.status for r in cell_runs(workdir)] == ["RUNNING"]  # what SIGKILL leaves

    rerun = subprocess.run(command, cwd=workdir, env=stage_env(workdir), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resumed from checkpoint-" in rerun.stdout
    assert (workdir / paths.model_dir("sts", "cosent") / "model.safetensors").exists()
    statuses = sorted(r.info.status for r in cell_runs(workdir))
    assert statuses == ["FINISHED", "KILLED"]
    resumed = next(r for r in cell_runs(workdir) if r.info.status == "FINISHED")
    assert resumed.data.tags["resumed_from"].startswith("checkpoint-")


def test_exception_inside_stage_ends_run_failed_with_error(workdir: Path, tiny_model_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    prepare(workdir, tiny_model_dir)
    from sentence_transformers import SentenceTransformerTrainer

    def broken_train(self, *args, **kwargs):  # fault injection: the real trainer up to the failure point
        raise RuntimeError("out of memory (injected)")

    monkeypatch.setattr(SentenceTransformerTrainer, "train", broken_train)
    with pytest.raises(RuntimeError, match="injected"):
        train.main(["--dataset", "sts", "--loss", "cosent"])
    (run,) = cell_runs(workdir)
    assert run.info.status == "FAILED"
    assert run.data.tags["error"] == "RuntimeError: out of memory (injected)"
    assert not (workdir / paths.model_dir("sts", "cosent")).exists()
    assert not (workdir / paths.train_facts("sts", "cosent")).exists()


def test_unreachable_tracking_server_fails_fast_naming_the_uri(workdir: Path, tiny_model_dir: Path) -> None:
    prepare(workdir, tiny_model_dir)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    env = {**stage_env(workdir), "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipeline.train", "--dataset", "sts", "--loss", "cosent"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: MLflow tracking store http://127.0.0.1:{port} is unreachable")
    assert "Traceback" not in proc.stderr
    assert time.perf_counter() - started < 120  # never hangs on retries
    assert not (workdir / paths.model_dir("sts", "cosent")).exists()


def run_cell(root: Path, tiny_model_dir: Path, seed: int) -> dict:
    root.mkdir()
    os.chdir(root)
    params = tiny_params(tiny_model_dir, ["docstrings"], ["mnrl"])
    params["seed"] = seed
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in (ingest, split, baseline):
        stage.main(["--dataset", "docstrings"])
    train.main(["--dataset", "docstrings", "--loss", "mnrl"])
    evaluate.main(["--dataset", "docstrings", "--loss", "mnrl"])
    card.main(["--dataset", "docstrings", "--loss", "mnrl"])
    return EvalResult.read(root / paths.eval_result("docstrings", "mnrl")).flat()


def test_same_seed_is_deterministic_and_other_seed_differs(workdir: Path, tiny_model_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # credentials present in the environment must never be copied into params, tags or cards
    monkeypatch.setenv("HF_TOKEN", "hf_SENTINELtoken123")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "SENTINELtoken456")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "SENTINELpassword789")
    first = run_cell(workdir / "a", tiny_model_dir, seed=7)
    second = run_cell(workdir / "b", tiny_model_dir, seed=7)
    for name in ("train", "validation", "test"):
        a = (workdir / "a" / paths.split_file("docstrings", name)).read_bytes()
        assert a == (workdir / "b" / paths.split_file("docstrings", name)).read_bytes()
    assert abs(first["test_spearman_cosine"] - second["test_spearman_cosine"]) <= 1e-6
    run_cell(workdir / "c", tiny_model_dir, seed=8)
    assert (workdir / "a" / paths.split_file("docstrings", "test")).read_bytes() != \
        (workdir / "c" / paths.split_file("docstrings", "test")).read_bytes()

    # Nothing secret or machine-specific in what is published: MLflow params and tags, the card.
    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("sentence-embedding-finetune")
    texts = [(workdir / "a" / paths.card("docstrings", "mnrl")).read_text()]
    for found in client.search_runs([experiment.experiment_id]):
        texts += [f"{k}={v}" for k, v in {**found.data.params, **found.data.tags}.items()
                  if k not in ("host", "pid")]
    joined = "\n".join(texts)
    for secret in (str(Path.home()) + "/", str(workdir), str(tiny_model_dir), str(ROOT), "site-packages",
                   "SENTINEL"):
        assert secret not in joined, secret


def test_periodic_checkpoints_are_saved_but_not_the_final_one(tmp_path: Path, tiny_model_dir: Path) -> None:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from pipeline.training.checkpoints import skip_final_checkpoint

    model = SentenceTransformer(str(tiny_model_dir))
    data = Dataset.from_dict({"anchor": [f"query {i}" for i in range(16)], "positive": [f"answer {i}" for i in range(16)]})
    args = SentenceTransformerTrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=4,
                                                save_strategy="steps", save_steps=2, report_to="none", use_cpu=True)
    SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model),
                               callbacks=[skip_final_checkpoint()]).train()
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2"]
