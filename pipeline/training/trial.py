"""Validation Spearman as an objective: the cell's DVC metrics (best value, its step, pruned), and, when the
train stage runs inside a sweep trial, each evaluation reported to the Optuna trial, stopping the
training when the study's pruner says so. The model is then saved as usual (complete and verified, for
the steps it trained) and the metrics say `pruned: true`; the sweep marks the trial PRUNED."""

from __future__ import annotations

from typing import Any

from pipeline.core import paths
from pipeline.core.handoffs import SweepTrial, TrainMetrics
from pipeline.training.recipe import VALIDATION_METRIC


def train_metrics(log_history: list[dict[str, Any]], steps: int, pruned: bool) -> TrainMetrics:
    curve = [(h[VALIDATION_METRIC], h["step"]) for h in log_history if VALIDATION_METRIC in h]
    best, step = max(curve, key=lambda point: point[0]) if curve else (None, None)
    return TrainMetrics(best_validation_spearman=best, best_step=step, steps=steps, pruned=pruned)


def pruning_callback(sweep_trial: SweepTrial | None, dataset: str, base: str, loss: str, num_processes: int) -> Any | None:
    """A trainer callback reporting this cell's validation Spearman to the sweep trial it runs in, or None
    outside a sweep or for a cell the trial's objective does not read."""
    if sweep_trial is None or not sweep_trial.reads(dataset, base, loss):
        return None
    name = paths.cell_name(dataset, base, loss)
    if num_processes > 1:  # every rank would have to agree on the same step to stop
        print(f"train {name}: pruning is off under {num_processes} processes")
        return None
    from transformers import TrainerCallback

    from pipeline.tuning.pruning import reporting_trial

    trial = reporting_trial(sweep_trial)

    class ReportToTrial(TrainerCallback):
        pruned = False

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                        **kwargs: Any) -> None:
            if metrics is None or VALIDATION_METRIC not in metrics:
                return
            trial.report(metrics[VALIDATION_METRIC], step=state.global_step)
            if state.global_step < state.max_steps and trial.should_prune():
                print(f"train {name}: pruned by the sweep at step {state.global_step} "
                      f"(validation Spearman {metrics[VALIDATION_METRIC]:.4f})")
                self.pruned = True
                control.should_training_stop = True

    return ReportToTrial()
