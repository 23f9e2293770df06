"""Pruning a sweep trial from inside its train stage: Optuna's pruner rebuilt from the study's stored sweep
section, and the trial to report validation Spearman to."""

from __future__ import annotations

from typing import Any

from pipeline.core.handoffs import SweepTrial
from pipeline.core.pruner_params import PrunerParams
from pipeline.tuning.storage import open_storage

CONFIG = "sweep"  # the study attribute holding its validated sweep section (pipeline/tuning/study.py sets it)


def build_pruner(pruner: PrunerParams) -> Any:
    """params' pruner -> Optuna's. Steps are training steps (the trainer's global step at each evaluation)."""
    import optuna

    if pruner.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=pruner.startup_trials, n_warmup_steps=pruner.warmup_steps,
                                           interval_steps=pruner.interval_steps)
    if pruner.type == "percentile":
        return optuna.pruners.PercentilePruner(pruner.percentile, n_startup_trials=pruner.startup_trials,
                                               n_warmup_steps=pruner.warmup_steps, interval_steps=pruner.interval_steps)
    if pruner.type == "threshold":
        return optuna.pruners.ThresholdPruner(lower=pruner.lower, n_warmup_steps=pruner.warmup_steps)
    if pruner.type == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=pruner.min_resource, reduction_factor=pruner.reduction_factor)
    return optuna.pruners.NopPruner()


def reporting_trial(record: SweepTrial) -> Any:
    """The Optuna trial `record` names, in its study with the study's own pruner (trial.should_prune asks it)."""
    import optuna
    from pydantic import TypeAdapter

    study = optuna.load_study(study_name=record.study, storage=open_storage(record.storage),
                              sampler=optuna.samplers.RandomSampler())  # reporting samples nothing
    study.pruner = build_pruner(TypeAdapter(PrunerParams).validate_python(study.user_attrs[CONFIG]["pruner"]))
    return optuna.trial.Trial(study, record.trial_id)
