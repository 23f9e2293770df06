"""MLflow glue: where runs go, the invocation run every `dvc repro` / `dvc exp run` gets, how a cell's run is
named and tagged, and how later stages log into it.

The runs table shows one invocation run per `dvc repro` / `dvc exp run`: it spans the invocation (each stage
that touches MLflow moves its end time on), holds the params every cell shares and, once the report stage
has run, the leaderboard as metrics and the report as artifacts. The cell runs hang under it; a cell run
lasts as long as its training: evaluate and card log into it without reopening it.

Default store: sqlite:///<repo root>/mlflow.db, where the repo root is DVC_ROOT when DVC runs the stage.
`dvc exp run --queue` executes in a temporary copy but sets DVC_ROOT to the original repository, so
queued experiments land in the same store instead of a database deleted with the copy. Artifacts go
to <repo root>/mlartifacts for the same reason. MLFLOW_TRACKING_URI overrides both (credentials for a
remote server come from the environment only: MLFLOW_TRACKING_USERNAME / _PASSWORD / _TOKEN).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.core import paths
from pipeline.core.errors import PipelineError, on_interrupt
from pipeline.core.handoffs import RunRef
from pipeline.core.params import Params


def repo_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def runs_table_link(experiment_id: str) -> str:
    """The MLflow UI's runs table of an experiment. MLflow 3's UI opens an experiment in its GenAI view unless
    the URL asks for the training runs (workflowType=machine_learning after the `#/` route)."""
    uri = tracking_uri()
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip() or None
    except Exception:
        return None


STORE_LOCK_TIMEOUT_S = 300  # creating a fresh sqlite store takes ~2 s here; a wait far beyond that is a hung creator


def sqlite_file(uri: str) -> Path | None:
    """The database file of a sqlite:/// tracking URI, None for any other store."""
    if not uri.startswith("sqlite:///") or uri == "sqlite:///:memory:":
        return None
    return Path(uri.removeprefix("sqlite:///"))


def _holds_no_runs(db: Path) -> bool:
    """Whether a sqlite store that MLflow cannot open has no run in it (so deleting it loses nothing)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            tables = {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}
            return "runs" not in tables or connection.execute("select count(*) from runs").fetchone()[0] == 0
    except sqlite3.Error:
        return False


def _store_failure(uri: str, error: Exception) -> str:
    """One line on why the store could not be used: unreachable for a server, the database's own error for sqlite."""
    if (db := sqlite_file(uri)) is None:
        return (f"MLflow tracking store {uri} is unreachable ({type(error).__name__}); start the server or unset "
                f"MLFLOW_TRACKING_URI to use the local sqlite store")
    cause = (str(error).strip().splitlines() or [""])[0][:300]
    line = f"MLflow store {uri} cannot be opened ({type(error).__name__}: {cause})"
    if db.exists() and _holds_no_runs(db):
        line += f"; it holds no runs and was probably left half-created by an interrupted first use: delete {db} and run again"
    return line


def configure(experiment: str) -> str:
    """Point MLflow (and transformers' MLflow callback, which reads the environment) at the store and
    experiment; fail fast, naming the URI, when the store cannot be used. Returns the experiment id.

    MLflow creates and migrates a sqlite store on first open, without a lock of its own: two stages opening a
    fresh store at once (parallel queue workers on a new clone) broke each other's migration. An exclusive
    file lock beside the database (mlflow.db.lock) makes the first opener create it while the others wait."""
    import mlflow
    from filelock import FileLock, Timeout

    uri = tracking_uri()
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["MLFLOW_EXPERIMENT_NAME"] = experiment
    # A dead server otherwise retries for minutes; one short try is enough to know.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    mlflow.set_tracking_uri(uri)
    db = sqlite_file(uri)
    creating = FileLock(f"{db}.lock", timeout=STORE_LOCK_TIMEOUT_S) if db else contextlib.nullcontext()
    try:
        with creating:
            found = mlflow.get_experiment_by_name(experiment)
            if found is None:
                artifacts = None if uri.startswith(("http", "databricks")) else (repo_root() / "mlartifacts").as_uri()
                try:
                    mlflow.create_experiment(experiment, artifact_location=artifacts, tags=EXPERIMENT_TAGS)
                except Exception:  # another worker (of a tracking server) created it between our lookup and create
                    pass
                found = mlflow.get_experiment_by_name(experiment)
            if found.tags.get(EXPERIMENT_KIND) != EXPERIMENT_TAGS[EXPERIMENT_KIND]:  # created before the tag existed
                mlflow.MlflowClient().set_experiment_tag(found.experiment_id, EXPERIMENT_KIND,
                                                         EXPERIMENT_TAGS[EXPERIMENT_KIND])
            return found.experiment_id
    except Timeout:
        raise PipelineError(f"MLflow store {uri}: waited {STORE_LOCK_TIMEOUT_S} s for another process to finish "
                            f"creating it (it holds {db}.lock); is a stage hung?") from None
    except Exception as error:
        raise PipelineError(_store_failure(uri, error)) from None


# MLflow's UI opens an experiment on its runs table (not the GenAI overview) when it is marked as model training.
EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_TAGS = {EXPERIMENT_KIND: "custom_model_development"}


def provenance_tags() -> dict[str, str]:
    """Where a run came from: git commit, DVC experiment name, and a source name that is not a local path."""
    # mlflow.source.name would otherwise be the absolute path of the stage script
    tags = {"mlflow.source.name": "dvc.yaml"}
    if commit := git_commit():
        tags["mlflow.source.git.commit"] = commit
    if exp_name := os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp"] = exp_name
    return tags


def cell_tags(dataset: str, base: str, loss: str, base_model: str) -> dict[str, str]:
    """`base` is the params name of the base model, `base_model` its Hub id (or directory name) as cards show it."""
    return {"dataset": dataset, "base": base, "loss": loss, "base_model": base_model,
            "cell": paths.cell_name(dataset, base, loss), **provenance_tags()}


def run_group() -> tuple[str, str] | None:
    """(key, name) shared by every stage of one `dvc exp run` (its experiment name) or one `dvc repro`
    (the dvc process's pid and start time); None when a stage runs outside DVC."""
    if exp_name := os.environ.get("DVC_EXP_NAME"):
        return f"exp:{exp_name}", f"dvc exp {exp_name}"
    import psutil

    from pipeline.core.warm import STAGE_COMMAND

    try:
        command = os.environ.get(STAGE_COMMAND)  # a warm-started stage's own ancestors lead to its server
        process = psutil.Process(int(command)) if command else psutil.Process().parent()
        while process is not None:
            cmdline = process.cmdline()
            if any(Path(part).name == "dvc" for part in cmdline[:2]) or cmdline[1:3] == ["-m", "dvc"]:
                started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(process.create_time()))
                return f"repro:{process.pid}:{_start_stamp(process)}", f"dvc repro {started}"
            process = process.parent()
    except (psutil.Error, ValueError):
        pass
    return None


def _start_stamp(process: Any) -> str:
    """When a process started, the same in every process that asks: on Linux the kernel's own count of clock
    ticks since boot (/proc/<pid>/stat); psutil's create_time adds the boot time as the kernel reports it at
    each read, which can move by a second, and two stages of one `dvc repro` would then open two invocation
    runs. Elsewhere, create_time to the second."""
    try:
        stat = Path(f"/proc/{process.pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]  # field 22, starttime (fields counted after "pid (comm)")
    except (OSError, ValueError, IndexError):
        return f"{process.create_time():.0f}"


# Set by a caller whose own run holds this invocation's cells: pipeline.sweep, whose trial runs sit below
# the study's run (study run -> trial run -> cell runs).
OUTER_PARENT = "PIPELINE_MLFLOW_PARENT_RUN"


def parent_run_id(experiment_id: str) -> str | None:
    """The invocation run of this `dvc repro` / `dvc exp run` (created by the first stage that asks for it),
    or the run OUTER_PARENT names (a sweep's trial run); None when a stage runs outside DVC. It is FINISHED
    from the start, and each stage moves its end time on (extend_invocation): it spans the invocation and is
    never left RUNNING."""
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


def extend_invocation(experiment_id: str) -> None:
    """Move the invocation run's end time to now: it spans every stage that ran so far."""
    import mlflow

    if os.environ.get(OUTER_PARENT):  # the caller's run (a sweep trial's): its owner ends it
        return
    if parent := parent_run_id(experiment_id):
        mlflow.MlflowClient().set_terminated(parent, "FINISHED", end_time=int(time.time() * 1000))


def shared_params(params: Params) -> dict[str, Any]:
    """The params every cell of the run shares, as the invocation run shows them."""
    from pipeline.core.models import display_id

    return {"seed": params.seed, "run.datasets": ",".join(params.run.datasets),
            "run.base_models": ",".join(f"{name}={display_id(params.base(name).model)}" for name in params.run.base_models),
            "run.losses": ",".join(params.run.losses),
            "eval_sets": ",".join(params.eval_sets) or "none",
            **{f"split.{k}": v for k, v in params.split.model_dump().items()},
            **{f"adapt.{k}": v for k, v in params.adapt.model_dump().items()},
            **{f"train.{k}": v for k, v in params.train.model_dump(exclude={"lora"}).items()}}


def log_shared_params(experiment_id: str, params: Params) -> None:
    """Put the run's shared params on the invocation run (the same values each time within one invocation)."""
    import mlflow
    from mlflow.entities import Param

    if parent := parent_run_id(experiment_id):
        logged = mlflow.MlflowClient().get_run(parent).data.params
        new = [Param(k, str(v)) for k, v in shared_params(params).items() if k not in logged]
        if new:
            mlflow.MlflowClient().log_batch(parent, params=new)


def cell_run_id(experiment: str, dataset: str, base: str, loss: str, base_model: str) -> str:
    """The MLflow run the train stage recorded for a cell, for evaluate and card to log into without
    reopening it (its duration stays its training's). When the recorded run is not in the current store
    (MLFLOW_TRACKING_URI changed since training), a new finished run of the cell stands in."""
    import mlflow

    experiment_id = configure(experiment)
    client = mlflow.MlflowClient()
    run_file = paths.mlflow_run(dataset, base, loss)
    recorded = RunRef.read(run_file).run_id
    try:
        client.get_run(recorded)
        return recorded
    except Exception:
        print(f"warning: MLflow run {recorded} from {run_file} is not in {tracking_uri()}; starting a new run")
    tags = cell_tags(dataset, base, loss, base_model)
    if parent := parent_run_id(experiment_id):
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(experiment_id, run_name=paths.cell_name(dataset, base, loss), tags=tags)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def end_dead_cell_runs(experiment_id: str, dataset: str, base: str, loss: str) -> list[str]:
    """A train stage killed with SIGKILL cannot end its run: its supervising parent, or else the next attempt,
    marks it KILLED. Returns the ids of the runs ended."""
    return end_dead_runs(experiment_id, f"tags.cell = '{paths.cell_name(dataset, base, loss)}'")


def end_dead_runs(experiment_id: str, which: str) -> list[str]:
    """End KILLED the RUNNING runs matching the filter `which` whose process (tags host, pid) is gone. Only
    runs of this host are touched: a parallel worker's live run stays. Returns the ids of the runs ended."""
    import mlflow

    runs = mlflow.search_runs(
        [experiment_id], filter_string=f"{which} and attributes.status = 'RUNNING'", output_format="list",
    )
    ended = []
    for run in runs:
        tags = run.data.tags
        if tags.get("host") == socket.gethostname() and not _pid_alive(int(tags.get("pid", "0") or 0)):
            mlflow.MlflowClient().set_terminated(run.info.run_id, status="KILLED")
            ended.append(run.info.run_id)
    return ended


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


def log_metrics(run_id: str, metrics: dict[str, float]) -> None:
    """Log into a run without reopening it (its status and end time stay), and move the invocation on."""
    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client = mlflow.MlflowClient()
    client.log_batch(run_id, metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()])
    extend_invocation(client.get_run(run_id).info.experiment_id)


def log_artifact(run_id: str, path: Path, artifact_path: str) -> None:
    """Add an artifact to a run without reopening it, and move the invocation on."""
    import mlflow

    client = mlflow.MlflowClient()
    client.log_artifact(run_id, str(path), artifact_path=artifact_path)
    extend_invocation(client.get_run(run_id).info.experiment_id)


@contextmanager
def cell_run(experiment: str, dataset: str, base: str, loss: str, base_model: str, params: Params) -> Iterator[Any]:
    """Open the MLflow run of one (dataset, base model, loss) cell's training, under the invocation run.

    The run is ended FINISHED on success, FAILED with the error message on an exception, KILLED on
    Ctrl-C — never left RUNNING; the invocation run's end time moves on either way."""
    import mlflow

    experiment_id = configure(experiment)
    end_dead_cell_runs(experiment_id, dataset, base, loss)
    name = paths.cell_name(dataset, base, loss)
    tags = {**cell_tags(dataset, base, loss, base_model), "host": socket.gethostname(), "pid": str(os.getpid())}
    if parent := parent_run_id(experiment_id):
        tags["mlflow.parentRunId"] = parent
        log_shared_params(experiment_id, params)
    run = mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags)
    try:
        yield run
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        on_interrupt(lambda: f"MLflow run {name} ({run.info.run_id}) ended KILLED")
        raise
    except BaseException as error:
        try:
            mlflow.set_tag("error", f"{type(error).__name__}: {error}"[:5000])
            mlflow.end_run("FAILED")
        except Exception:  # noqa: BLE001 - the store is unreachable: the stage's own error is the one to show
            print(f"warning: MLflow run {name} ({run.info.run_id}) could not be ended (the tracking store "
                  f"does not answer); the next run of this cell marks it KILLED", file=sys.stderr)
        raise
    else:
        mlflow.end_run("FINISHED")
    finally:
        extend_invocation(experiment_id)


def log_training_params(params: Params, dataset: str, base: str, loss: str, precision: str, precision_note: str, train_rows: int,
                        adaptation: str | None, split: Any, prompts: dict[str, str]) -> None:
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
        "pipeline.base": base, "pipeline.base_model": display_id(params.base(base).model),
        "pipeline.max_seq_length": params.max_seq_length(base), "pipeline.precision": precision,
        "pipeline.precision_choice": precision_note, "pipeline.train_rows": train_rows,
        "pipeline.adaptation": adaptation or "none", "pipeline.split_rule": split.rule,
        # repr: a prompt's trailing space ("query: ") matters to the tokenizer and is invisible in the UI
        **{f"pipeline.prompt.{role}": repr(text) for role, text in prompts.items()},
        **{f"pipeline.train.{k}": v for k, v in params.train.model_dump(exclude={"lora"}).items()},
        **{f"pipeline.lora.{k}": v for k, v in (lora.model_dump() if lora else {}).items()},
    })
    # rows the split dropped because their texts landed in two splits (connected data), test rows of given splits
    # sharing a text with the train file, beside the rows per split
    mlflow.log_metrics({"split_dropped_crossing": split.dropped_crossing, "split_leaked_test_rows": split.leaked_test_rows,
                        **{f"split_rows_{name}": rows for name, rows in split.rows.items()}})


def log_selection(selection: Any, validation_pairs: int, validation_total: int) -> None:
    """Which weights were kept and why: metrics to compare runs by, and the sentence the card states."""
    import mlflow

    metrics = {"kept_step": selection.kept_step, "validation_evaluations": selection.evaluations,
               "validation_pairs": validation_pairs, "validation_pairs_total": validation_total}
    if selection.kept_value is not None:  # e.g. kept_validation_spearman, kept_validation_ndcg_at_10
        metrics[f"kept_validation_{selection.metric.replace('@', '_at_')}"] = selection.kept_value
    if selection.stopped_early_at is not None:
        metrics["stopped_early_at"] = selection.stopped_early_at
    mlflow.log_metrics(metrics)
    mlflow.set_tags({"select": selection.rule, "kept": selection.statement})


def log_report(experiment: str, metrics: dict[str, float], tags: dict[str, str], artifacts: tuple[Path, ...]) -> str:
    """Put the report on the invocation run (a run of its own, "report", when run outside DVC)."""
    import mlflow
    from mlflow.entities import Metric, RunTag

    experiment_id = configure(experiment)
    client = mlflow.MlflowClient()
    run_id = parent_run_id(experiment_id)
    if run_id is None:
        run_id = client.create_run(experiment_id, run_name="report", tags={"kind": "report", **provenance_tags()}).info.run_id
        client.set_terminated(run_id, "FINISHED")
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                     tags=[RunTag(k, v) for k, v in tags.items()])
    for artifact in artifacts:
        client.log_artifact(run_id, str(artifact), artifact_path="report")
    extend_invocation(experiment_id)
    return run_id
