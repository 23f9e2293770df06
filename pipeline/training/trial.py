"""Validation as an objective: the cell's DVC metrics (best value of the metric that chooses its kept weights,
its step, pruned), and, when the train stage runs inside a sweep trial, each evaluation reported to the Optuna
trial, stopping the training when the study's pruner says so. The model is then saved as usual (complete and
verified, for the steps it trained) and the metrics say `pruned: true`; the sweep marks the trial PRUNED."""

from __future__ import annotations

from typing import Any

from pipeline.core import paths
from pipeline.core.handoffs import SweepTrial, TrainMetrics


def train_metrics(log_history: list[dict[str, Any]], steps: int, pruned: bool, metric: str, key: str) -> TrainMetrics:
    """`key`: how the trainer logs `metric`, the validation metric that chose the kept weights."""
    curve = [(h[key], h["step"]) for h in log_history if key in h]
    best, step = max(curve, key=lambda point: point[0]) if curve else (None, None)
    return TrainMetrics(metric=metric, best_validation=best, best_step=step, steps=steps, pruned=pruned)


def pruning_callback(sweep_trial: SweepTrial | None, dataset: str, base: str, loss: str, num_processes: int,
                     name: str, key: str) -> Any | None:
    """A trainer callback reporting this cell's validation score (`key`: how the trainer logs the metric called
    `name`) to the sweep trial it runs in, or None outside a sweep or for a cell the trial's objective does not
    read."""
    if sweep_trial is None or not sweep_trial.reads(dataset, base, loss):
        return None
    cell = paths.cell_name(dataset, base, loss)
    if num_processes > 1:  # every rank would have to agree on the same step to stop
        print(f"train {cell}: pruning is off under {num_processes} processes")
        return None
    from transformers import TrainerCallback

    from pipeline.tuning.pruning import reporting_trial

    trial = reporting_trial(sweep_trial)

    class ReportToTrial(TrainerCallback):
        pruned = False

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                        **kwargs: Any) -> None:
            if metrics is None or key not in metrics:
                return
            trial.report(metrics[key], step=state.global_step)
            if state.global_step < state.max_steps and trial.should_prune():
                print(f"train {cell}: pruned by the sweep at step {state.global_step} "
                      f"(validation {name} {metrics[key]:.4f})")
                self.pruned = True
                control.should_training_stop = True

    return ReportToTrial()
