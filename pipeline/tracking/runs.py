"""MLflow glue: where runs go, how a cell's run is named and tagged, and how stages re-attach to it.

Default store: sqlite:///<repo root>/mlflow.db, where the repo root is DVC_ROOT when DVC runs the stage.
`dvc exp run --queue` executes in a temporary copy but sets DVC_ROOT to the original repository, so
queued experiments land in the same store instead of a database deleted with the copy. Artifacts go
to <repo root>/mlartifacts for the same reason. MLFLOW_TRACKING_URI overrides both (credentials for a
remote server come from the environment only: MLFLOW_TRACKING_USERNAME / _PASSWORD / _TOKEN).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.core.handoffs import RunRef


def repo_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip() or None
    except Exception:
        return None


def configure(experiment: str) -> str:
    """Point MLflow (and transformers' MLflow callback, which reads the environment) at the store and
    experiment; fail fast, naming the URI, when a tracking server does not answer. Returns the experiment id."""
    import mlflow

    uri = tracking_uri()
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["MLFLOW_EXPERIMENT_NAME"] = experiment
    # A dead server otherwise retries for minutes; one short try is enough to know.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    mlflow.set_tracking_uri(uri)
    try:
        found = mlflow.get_experiment_by_name(experiment)
        if found is not None:
            return found.experiment_id
        artifacts = None if uri.startswith(("http", "databricks")) else (repo_root() / "mlartifacts").as_uri()
        try:
            return mlflow.create_experiment(experiment, artifact_location=artifacts)
        except Exception:  # another worker created it between our lookup and create
            return mlflow.get_experiment_by_name(experiment).experiment_id
    except Exception as error:
        raise PipelineError(
            f"MLflow tracking store {uri} is unreachable ({type(error).__name__}); start the server or unset "
            f"MLFLOW_TRACKING_URI to use the local sqlite store"
        ) from None


def provenance_tags() -> dict[str, str]:
    """Where a run came from: git commit, DVC experiment name, and a source name that is not a local path."""
    # mlflow.source.name would otherwise be the absolute path of the stage script
    tags = {"mlflow.source.name": "dvc.yaml"}
    if commit := git_commit():
        tags["mlflow.source.git.commit"] = commit
    if exp_name := os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp"] = exp_name
    return tags


def cell_tags(dataset: str, loss: str, base_model: str) -> dict[str, str]:
    return {"dataset": dataset, "loss": loss, "base_model": base_model, "cell": f"{dataset}/{loss}", **provenance_tags()}


def run_group() -> tuple[str, str] | None:
    """(key, name) shared by every stage of one `dvc exp run` (its experiment name) or one `dvc repro`
    (the dvc process's pid and start time); None when a stage runs outside DVC."""
    if exp_name := os.environ.get("DVC_EXP_NAME"):
        return f"exp:{exp_name}", f"dvc exp {exp_name}"
    import psutil

    try:
        process = psutil.Process().parent()
        while process is not None:
            cmdline = process.cmdline()
            if any(Path(part).name == "dvc" for part in cmdline[:2]) or cmdline[1:3] == ["-m", "dvc"]:
                started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(process.create_time()))
                return f"repro:{process.pid}:{process.create_time():.0f}", f"dvc repro {started}"
            process = process.parent()
    except psutil.Error:
        pass
    return None


# Set by a caller whose own run holds this invocation's cells: pipeline.sweep, whose trial runs sit below
# the study's run (study run -> trial run -> cell runs).
OUTER_PARENT = "PIPELINE_MLFLOW_PARENT_RUN"


def parent_run_id(experiment_id: str) -> str | None:
    """The parent run grouping this invocation's cells (created on first use, FINISHED at once: it
    only holds children, so it is never left RUNNING), or the run OUTER_PARENT names."""
    import mlflow

    if outer := os.environ.get(OUTER_PARENT):
        return outer
    group = run_group()
    if group is None:
        return None
    key, name = group
    found = mlflow.search_runs([experiment_id], filter_string=f"tags.run_group = '{key}' and tags.kind = 'parent'",
                               output_format="list")
    if found:
        return found[0].info.run_id
    client = mlflow.MlflowClient()
    tags = {"kind": "parent", "run_group": key, **provenance_tags()}
    parent = client.create_run(experiment_id, run_name=name, tags=tags)
    client.set_terminated(parent.info.run_id, "FINISHED")
    return parent.info.run_id


def _mark_dead_runs_killed(experiment_id: str, dataset: str, loss: str) -> None:
    """A train stage killed with SIGKILL cannot end its run; the next attempt marks it KILLED.
    Only runs whose process is gone on this host are touched: a parallel worker's live run stays."""
    import mlflow

    runs = mlflow.search_runs(
        [experiment_id], filter_string=f"tags.cell = '{dataset}/{loss}' and attributes.status = 'RUNNING'",
        output_format="list",
    )
    for run in runs:
        tags = run.data.tags
        if tags.get("host") == socket.gethostname() and not _pid_alive(int(tags.get("pid", "0") or 0)):
            mlflow.MlflowClient().set_terminated(run.info.run_id, status="KILLED")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def cell_run(experiment: str, dataset: str, loss: str, base_model: str, run_file: Path | None = None,
             new: bool = False) -> Iterator[Any]:
    """Open (new=True) or re-attach to the MLflow run of one (dataset, loss) cell.

    The run is ended FINISHED on success, FAILED with the error message on an exception, KILLED on
    Ctrl-C — never left RUNNING. Re-attaching falls back to a new run when the recorded one is not in
    the current store (e.g. MLFLOW_TRACKING_URI changed since training)."""
    import mlflow

    experiment_id = configure(experiment)
    run_id = None
    if not new and run_file is not None and run_file.exists():
        recorded = RunRef.read(run_file).run_id
        try:
            mlflow.get_run(recorded)
            run_id = recorded
        except Exception:
            print(f"warning: MLflow run {recorded} from {run_file} is not in {tracking_uri()}; starting a new run")
    if new:
        _mark_dead_runs_killed(experiment_id, dataset, loss)
    tags = {**cell_tags(dataset, loss, base_model), "host": socket.gethostname(), "pid": str(os.getpid())}
    if new and (parent := parent_run_id(experiment_id)):
        tags["mlflow.parentRunId"] = parent
    run = mlflow.start_run(run_id=run_id, experiment_id=experiment_id, run_name=f"{dataset}/{loss}",
                           tags=None if run_id else tags)
    if run_id:
        mlflow.set_tags({"host": tags["host"], "pid": tags["pid"]})
    try:
        yield run
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        raise
    except BaseException as error:
        mlflow.set_tag("error", f"{type(error).__name__}: {error}"[:5000])
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")


def log_training_params(params: Any, dataset: str, loss: str, precision: str, precision_note: str, train_rows: int,
                        adaptation: str | None) -> None:
    """The cell's own params beside the trainer's (which transformers' MLflow callback logs itself):
    what was trained, on what, how, and the choices the pipeline made (precision, adaptation)."""
    import mlflow

    from pipeline.core.models import display_id

    loss_config, lora = params.losses[loss], params.train.lora
    matryoshka = loss_config.matryoshka
    mlflow.log_params({
        "pipeline.dataset": dataset, "pipeline.loss": loss, "pipeline.loss_class": loss_config.class_name,
        **{f"pipeline.loss.{k}": v for k, v in loss_config.params.items()},
        **{f"pipeline.matryoshka.{k}": v for k, v in (matryoshka.model_dump() if matryoshka else {}).items()},
        "pipeline.base_model": display_id(params.base_model), "pipeline.precision": precision,
        "pipeline.precision_choice": precision_note, "pipeline.train_rows": train_rows,
        "pipeline.adaptation": adaptation or "none",
        **{f"pipeline.train.{k}": v for k, v in params.train.model_dump(exclude={"lora"}).items()},
        **{f"pipeline.lora.{k}": v for k, v in (lora.model_dump() if lora else {}).items()},
    })
