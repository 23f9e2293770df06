"""Validation Spearman as an objective: the cell's DVC metrics (best value, its step, pruned), and, when the
train stage runs inside a sweep trial, each evaluation reported to the Optuna trial, stopping the
training when the study's pruner says so. The model is then saved as usual (complete and verified, for
the steps it trained) and the metrics say `pruned: true`; the sweep marks the trial PRUNED."""

from __future__ import annotations

from typing import Any

from pipeline.core.handoffs import TrainMetrics
from pipeline.core.params import Params
from pipeline.training.recipe import VALIDATION_METRIC


def train_metrics(log_history: list[dict[str, Any]], steps: int, pruned: bool) -> TrainMetrics:
    curve = [(h[VALIDATION_METRIC], h["step"]) for h in log_history if VALIDATION_METRIC in h]
    best, step = max(curve, key=lambda point: point[0]) if curve else (None, None)
    return TrainMetrics(best_validation_spearman=best, best_step=step, steps=steps, pruned=pruned)


def pruning_callback(params: Params, dataset: str, loss: str) -> Any | None:
    """A trainer callback reporting this cell's validation Spearman to the sweep trial it runs in (from the
    environment `pipeline.sweep` gives `dvc exp run`), or None outside a sweep or for a cell the trial's
    objective does not read."""
    from transformers import TrainerCallback

    from pipeline.tuning.study import trial_from_env

    found = trial_from_env()
    if found is None:
        return None
    trial, sweep = found
    if dataset != sweep.objective.dataset or loss not in sweep.objective_losses(params.run.losses):
        return None
    if params.train.num_processes > 1:  # every rank would have to agree on the same step to stop
        print(f"train {dataset}/{loss}: pruning is off under {params.train.num_processes} processes")
        return None

    class ReportToTrial(TrainerCallback):
        pruned = False

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                        **kwargs: Any) -> None:
            if metrics is None or VALIDATION_METRIC not in metrics:
                return
            trial.report(metrics[VALIDATION_METRIC], step=state.global_step)
            if state.global_step < state.max_steps and trial.should_prune():
                print(f"train {dataset}/{loss}: pruned by the sweep at step {state.global_step} "
                      f"(validation Spearman {metrics[VALIDATION_METRIC]:.4f})")
                self.pruned = True
                control.should_training_stop = True

    return ReportToTrial()
