"""Hyperparameter sweeps: the Optuna study, its search space, and each trial as a DVC experiment."""
