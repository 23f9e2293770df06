"""DVC pipeline stages for fine-tuning sentence-transformers models; dvc.yaml is the map.

Stage modules (one per dvc.yaml stage, in pipeline order): ingest, split, baseline, train, evaluate,
card, report; beside them the one user command that is not a stage, sweep (a hyperparameter search whose
trials are DVC experiments). Below them, shared code by concern, imports pointing down only:

    core/        params, paths, hand-offs between stages, errors, base-model resolution
    data/        reading sources, cleaning, splitting, adapting shapes to what a loss needs
    evaluation/  the library's evaluators and typed scores
    tracking/    MLflow runs and model cards (card data is collected while training)
    tuning/      a sweep's Optuna study, and its trials as DVC experiments (needs core only)
    training/    the fine-tune's steps, trainer arguments, losses, CPU speed-ups, launchers
"""
