"""Against a real `mlflow server` on localhost: a cell's run, params and metric histories read back
through the REST API the MLflow UI uses (what its compare view shows side by side), and the published winner
registered in the server's Model Registry and loaded back by its alias."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from sentence_transformers import SentenceTransformer

from pipeline import card, evaluate, publish, report, train
from pipeline.core import paths
from pipeline.core.handoffs import EvalResult, PublishRecord
from scripts.scratch_project import mlflow_server
from tests.conftest import prepare_set, tiny_params

pytestmark = pytest.mark.slow


def api(base: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}/api/2.0/mlflow/{path}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    with mlflow_server(f"sqlite:///{root / 'server.db'}", artifacts=root / "artifacts") as (base, _):
        yield base


def test_runs_params_and_histories_via_rest(server: str, tiny_model_dir: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_model_dir, ["sts"], ["cosent", "mnrl"])))
    prepare_set("sts")
    for loss in ("cosent", "mnrl"):
        for stage in (train, evaluate, card):
            stage.main(["--dataset", "sts", "--base", "tiny", "--loss", loss])

    experiment = api(server, "experiments/get-by-name?experiment_name=sentence-embedding-finetune")["experiment"]
    found = api(server, "runs/search", {"experiment_ids": [experiment["experiment_id"]],
                                         "filter": "tags.dataset = 'sts'"})["runs"]
    by_name = {r["info"]["run_name"]: r for r in found}
    assert set(by_name) == {"sts/tiny/cosent", "sts/tiny/mnrl"}
    for name, found_run in by_name.items():
        run_id = found_run["info"]["run_id"]
        assert found_run["info"]["status"] == "FINISHED"
        params = {p["key"]: p["value"] for p in found_run["data"]["params"]}
        assert params["learning_rate"] == str(yaml.safe_load((tmp_path / "params.yaml").read_text())["train"]["learning_rate"])
        assert params["pipeline.loss_class"] in {"CoSENTLoss", "MultipleNegativesRankingLoss"}
        metrics = {m["key"]: m["value"] for m in found_run["data"]["metrics"]}
        local = EvalResult.read(tmp_path / paths.eval_result(*name.split("/"))).flat()
        assert metrics["test_spearman_cosine"] == pytest.approx(local["test_spearman_cosine"])
        history = api(server, f"metrics/get-history?run_id={run_id}&metric_key=loss")["metrics"]
        assert [m["step"] for m in history] == sorted(m["step"] for m in history) and len(history) >= 3
        val = api(server, f"metrics/get-history?run_id={run_id}&metric_key=eval_validation_spearman_cosine")["metrics"]
        assert len(val) >= 2
        files = api(server, f"artifacts/list?run_id={run_id}&path=card").get("files", [])
        assert [f["path"] for f in files] == ["card/README.md"]
    # the same store's registry, through the server: the dataset's winner registered, alias and all, and
    # loaded back by its alias with the embeddings of the published folder
    report.main([])
    publish.main(["--dataset", "sts"])
    record = PublishRecord.read(tmp_path / paths.publish_record("sts"))
    version = mlflow.MlflowClient(server).get_model_version_by_alias(record.registered_model, "champion")
    assert str(version.version) == record.version and version.tags["loss"] == record.loss
    mlflow.set_tracking_uri(server)
    loaded = mlflow.sentence_transformers.load_model(record.model_uri)
    texts = ["A cat sits on the mat.", "Return the sum of two numbers."]
    folder = SentenceTransformer(str(tmp_path / paths.publish_dir("sts")))
    assert np.abs(loaded.encode(texts) - folder.encode(texts)).max() < 1e-6


def test_a_server_away_mid_training_loses_and_duplicates_no_metric(tiny_model_dir: Path, tmp_path: Path) -> None:
    # an `mlflow server` stopped while a cell trained: MLflow's async logger dropped those steps' losses and the
    # run ended FINISHED without them, the stage's summary saying nothing
    import subprocess
    import sys
    import time

    from scripts.scratch_project import free_port, scratch_env
    from tests.conftest import ROOT

    params = tiny_params(tiny_model_dir, ["sts"], ["cosent"])
    params["train"].update(max_steps=400, eval_steps=200, logging_steps=1, checkpoint_steps=0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    store, artifacts, port = f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts", free_port()
    # MLflow's own HTTP retries cut to ~3 s (by default they back off for ~2 min): the stage's own retries then run
    env = scratch_env(PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}",
                      MLFLOW_HTTP_REQUEST_MAX_RETRIES="1", MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="1")
    for stage in ("ingest", "split", "baseline"):
        flags = ["--base", "tiny"] if stage == "baseline" else []
        subprocess.run([sys.executable, "-m", f"pipeline.{stage}", "--dataset", "sts", *flags], cwd=tmp_path, env=env, check=True,
                       capture_output=True)
    command = [sys.executable, "-m", "pipeline.train", "--dataset", "sts", "--base", "tiny", "--loss", "cosent"]
    with mlflow_server(store, artifacts, port=port) as (base, _):
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client = mlflow.MlflowClient(base)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            found = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.cell = 'sts/tiny/cosent'")
            if found and len(client.get_metric_history(found[0].info.run_id, "loss")) >= 20:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "training finished before the server could be stopped"
    time.sleep(10)  # the server is away while the cell trains on
    assert proc.poll() is None, "training finished while the server was away: nothing shows it went on"
    with mlflow_server(store, artifacts, port=port) as (base, _):
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        client = mlflow.MlflowClient(base)
        (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.cell = 'sts/tiny/cosent'")
        losses = client.get_metric_history(run.info.run_id, "loss")
        validation = client.get_metric_history(run.info.run_id, "eval_validation_spearman_cosine")
    assert run.info.status == "FINISHED"
    assert sorted(m.step for m in losses) == list(range(1, 401))  # every step once: none lost, none twice
    assert sorted(m.step for m in validation) == [0, 200, 400]
    assert "train sts/tiny/cosent: the tracking server does not answer (" in out and "answers again" in out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("train sts/tiny/cosent: ") and "MLflow metric values sent late (tracking server away" in summary


def test_a_server_that_stays_away_is_one_line_naming_what_was_not_sent(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.core.errors import PipelineError
    from pipeline.tracking.outbox import OUTAGE_MINUTES, MetricOutbox

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # each request fails at once, not after minutes
    monkeypatch.setenv(OUTAGE_MINUTES, "0.05")
    with mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts") as (base, _):
        run_id = mlflow.MlflowClient(base).create_run("0").info.run_id
        outbox = MetricOutbox(run_id, "sts/tiny/cosent", base)
        outbox.add({"loss": 1.0}, step=1)
        assert outbox.close() is None  # sent at once: nothing late
    outbox = MetricOutbox(run_id, "sts/tiny/cosent", base)
    outbox.add({"loss": 0.5, "grad_norm": 2.0}, step=2)
    with pytest.raises(PipelineError) as error:
        outbox.close()
    assert f"2 metric values of run {run_id} were not sent" in str(error.value) and "\n" not in str(error.value)
