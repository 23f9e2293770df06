"""MLflow for a sweep: the study is one run (its search space, the best value and params so far, a plot of
the objective over trials), each trial a child run of it (its params, validation curves, objective, test
Spearman), and the trial's cell runs below that (cells find their parent through runs.OUTER_PARENT).

The study run is FINISHED as soon as it is created, like the invocation runs in runs.py: it only holds
children and is updated by whichever worker finishes a trial, so no killed worker can leave it RUNNING.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pipeline.core.sweep_params import SweepParams, TrialState
from pipeline.tracking.runs import configure, provenance_tags

PLOT = "objective_over_trials.png"
SHARED_WRITE_ATTEMPTS = 5
T = TypeVar("T")


def _shared_write(write: Callable[[], T]) -> T:
    """One write to the study run, which every worker updates after each of its trials.

    MLflow's SQL store upserts a tag (and a run's latest metric) as select-then-insert, so two workers writing
    the same new key at once lose one insert to the UNIQUE constraint (BAD_REQUEST from a server; 8 of 80
    racing set_tag calls in a two-process check, and a worker of the two-clone sweep test died of it). The
    write is idempotent and a retry finds the row and updates it."""
    from mlflow.exceptions import MlflowException

    for attempt in range(1, SHARED_WRITE_ATTEMPTS):
        try:
            return write()
        except MlflowException:
            time.sleep(0.2 * attempt)
    return write()  # the last attempt raises what it meets


@dataclass(frozen=True)
class TrialOutcome:
    """What a finished trial reports to MLflow."""

    number: int
    state: TrialState
    value: float | None  # the objective; None when the trial failed
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # loss -> (step, validation Spearman)
    test_spearman: dict[str, float] = field(default_factory=dict)  # loss -> test Spearman of the trained cell
    error: str | None = None
    killed: bool = False  # stopped by Ctrl-C or SIGTERM: the run ends KILLED rather than FAILED


def _space_text(sweep: SweepParams) -> dict[str, str]:
    text = {}
    for key, dim in sweep.space.items():
        if dim.type == "categorical":
            text[f"space.{key}"] = f"choices {dim.choices}"
        else:
            text[f"space.{key}"] = f"{dim.type} [{dim.low}, {dim.high}]" + (" log" if dim.log else "") + \
                (f" step {dim.step}" if dim.step not in (None, 1) else "")
    return text


def create_study_run(experiment: str, study: str, sweep: SweepParams, storage: str, total: int, metric: str) -> str:
    """The study's parent run, with the search it runs as params (`metric`: what the objective's validation is
    scored in); returns its id."""
    import mlflow

    client = mlflow.MlflowClient()
    tags = {"kind": "study", "sweep_study": study, "optuna_storage": storage, **provenance_tags()}
    run = client.create_run(configure(experiment), run_name=f"sweep {study}", tags=tags)
    params = {"objective.dataset": sweep.objective.dataset, "objective.loss": sweep.objective.loss,
              **({"objective.base": sweep.objective.base} if sweep.objective.base else {}),
              "objective.metric": f"best validation {metric}", "trials": total, "sampler": sweep.sampler,
              "pruner": json.dumps(sweep.pruner.model_dump()), **_space_text(sweep)}
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def start_trial_run(experiment: str, study_run: str, study: str, number: int, exp_name: str,
                    values: dict[str, Any]) -> str:
    """A RUNNING child run of the study for one trial, holding the trial's params; returns its id."""
    import mlflow

    client = mlflow.MlflowClient()
    tags = {"kind": "trial", "mlflow.parentRunId": study_run, "sweep_study": study, "sweep_trial": str(number),
            "dvc_exp": exp_name, **provenance_tags()}
    run = client.create_run(configure(experiment), run_name=f"trial {number}", tags=tags)
    for key, value in values.items():
        client.log_param(run.info.run_id, key, value)
    return run.info.run_id


def end_trial_run(run_id: str, outcome: TrialOutcome) -> None:
    """Log the trial's curves and objective, and end its run: FINISHED (complete or pruned), FAILED, or KILLED
    (interrupted)."""
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient()
    now = int(time.time() * 1000)  # MLflow timestamps are milliseconds
    metrics = [Metric(f"validation_spearman_{loss}", value, now, step) for loss, curve in outcome.curves.items()
               for step, value in curve]
    metrics += [Metric(f"test_spearman_{loss}", value, now, 0) for loss, value in outcome.test_spearman.items()]
    if outcome.value is not None:
        metrics.append(Metric("objective", outcome.value, now, 0))
    if metrics:
        client.log_batch(run_id, metrics=metrics)
    client.set_tag(run_id, "trial_state", outcome.state)
    if outcome.error:
        client.set_tag(run_id, "error", outcome.error[:5000])
    status = "KILLED" if outcome.killed else "FAILED" if outcome.state == TrialState.FAIL else "FINISHED"
    client.set_terminated(run_id, status)


def mark_trial_run_killed(run_id: str | None) -> None:
    """A trial whose worker died (Optuna failed it for missing heartbeats): its run ends KILLED."""
    import mlflow

    if run_id:
        client = mlflow.MlflowClient()
        client.set_tag(run_id, "trial_state", TrialState.FAIL)
        client.set_terminated(run_id, "KILLED")


def update_study_run(study_run: str, outcome: TrialOutcome, history: list[TrialOutcome],
                     best: tuple[int, float, dict[str, Any]] | None) -> None:
    """After a trial: its objective as a point of the study's history, the best so far, and the plot."""
    import mlflow
    from mlflow.entities import Metric

    client, now = mlflow.MlflowClient(), int(time.time() * 1000)
    metrics = [Metric("objective", outcome.value, now, outcome.number)] if outcome.state == TrialState.COMPLETE else []
    tags = {"trials_done": str(len(history))}
    if best is not None:
        number, value, params = best
        metrics.append(Metric("best_value", value, now, outcome.number))
        tags |= {"best_trial": str(number), "best_params": json.dumps(params, sort_keys=True)}
    for key, text in tags.items():
        _shared_write(lambda key=key, text=text: client.set_tag(study_run, key, text))
    if metrics:
        _shared_write(lambda: client.log_batch(study_run, metrics=metrics))
    figure = objective_plot(history)
    _shared_write(lambda: client.log_figure(study_run, figure, PLOT))


def objective_plot(history: list[TrialOutcome]) -> Any:
    """Objective per trial, pruned trials at the last value they reported, and the best so far.
    (Optuna's plot_optimization_history leaves pruned trials out, which hides what pruning did.)"""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for state, marker, label in ((TrialState.COMPLETE, "o", "complete"), (TrialState.PRUNED, "x", "pruned")):
        points = [(h.number, h.value) for h in history if h.state == state and h.value is not None]
        if points:
            axes.scatter(*zip(*points), marker=marker, label=label)
    best, line = float("-inf"), []
    for h in sorted(history, key=lambda h: h.number):
        if h.state == TrialState.COMPLETE and h.value is not None:
            best = max(best, h.value)
        if best > float("-inf"):
            line.append((h.number, best))
    if line:
        axes.step(*zip(*line), where="post", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel("best validation Spearman")
    axes.legend(loc="lower right")
    figure.tight_layout()
    plt.close(figure)
    return figure
