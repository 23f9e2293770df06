"""DVC pipeline stages for fine-tuning sentence-transformers models; dvc.yaml is the map.

Stage modules (one per dvc.yaml stage, in pipeline order): ingest, split, baseline, train, evaluate,
card, report. Below them, shared code by concern, imports pointing down only:

    core/        params, paths, hand-offs between stages, errors, base-model resolution
    data/        reading sources, cleaning, splitting, adapting shapes to what a loss needs
    evaluation/  the library's evaluators and typed scores
    tracking/    MLflow runs and model cards (card data is collected while training)
    training/    the fine-tune's steps, trainer arguments, losses, CPU speed-ups, launchers
"""
