"""Every output location, defined once; dvc.yaml spells the same layout in its deps and outs.

Outputs are grouped by the stage that writes them, and named by dataset (and loss) below that, so no
dataset name can collide with another stage's file:

    data/ingested/<set>.parquet                normalised copy of the source           ingest
    data/splits/<dataset>/{train,validation}.parquet                                   split
    data/test/<set>.parquet                    the held-out test split of every set     split
    results/ingest/<set>.json                  rows in / out, drops per reason          ingest
    results/split/<set>.json                   rows per split                           split
    results/baseline/<set>.json                the untuned base model's scores          baseline
    results/train/<dataset>/<loss>/            facts, MLflow run id, curves, metrics    train
    models/<dataset>/<loss>/                   the fine-tuned model                     train
    results/evaluate/<dataset>/<loss>.json     test scores beside the base model        evaluate
    cards/<dataset>/<loss>/README.md           the model card                           card
    reports/                                   leaderboard, DVC metrics, plots          report
"""

from __future__ import annotations

from pathlib import Path

DATA = Path("data")
INGESTED = DATA / "ingested"
SPLITS = DATA / "splits"
TEST_SETS = DATA / "test"
MODELS = Path("models")
RESULTS = Path("results")
BASELINES = RESULTS / "baseline"
CARDS = Path("cards")
REPORTS = Path("reports")
CHECKPOINTS = Path("checkpoints")
TRAINING_SPLITS = ("train", "validation")  # the test split lives in TEST_SETS, beside every other set's


def ingested(name: str) -> Path:
    return INGESTED / f"{name}.parquet"


def ingest_report(name: str) -> Path:
    return RESULTS / "ingest" / f"{name}.json"


def split_file(name: str, split: str) -> Path:
    """train / validation of a dataset, or the test split of any set (dataset or eval set)."""
    return TEST_SETS / f"{name}.parquet" if split == "test" else SPLITS / name / f"{split}.parquet"


def split_report(name: str) -> Path:
    return RESULTS / "split" / f"{name}.json"


def baseline_scores(name: str) -> Path:
    return BASELINES / f"{name}.json"


def model_dir(dataset: str, loss: str) -> Path:
    return MODELS / dataset / loss


def train_results(dataset: str, loss: str) -> Path:
    return RESULTS / "train" / dataset / loss


def train_facts(dataset: str, loss: str) -> Path:
    """What the card needs from training: card data, hyperparameters, log history, dataset facts."""
    return train_results(dataset, loss) / "facts.json"


def mlflow_run(dataset: str, loss: str) -> Path:
    return train_results(dataset, loss) / "run.json"


def loss_curve(dataset: str, loss: str) -> Path:
    """Training loss per logging step (DVC plots)."""
    return train_results(dataset, loss) / "loss_curve.csv"


def val_curve(dataset: str, loss: str) -> Path:
    """Validation Spearman per evaluation (DVC plots)."""
    return train_results(dataset, loss) / "val_spearman.csv"


def train_metrics(dataset: str, loss: str) -> Path:
    """The cell's DVC metrics (`dvc exp show`): best validation Spearman, its step, pruned by a sweep."""
    return train_results(dataset, loss) / "metrics.json"


def checkpoints(dataset: str, loss: str) -> Path:
    return CHECKPOINTS / dataset / loss


def eval_result(dataset: str, loss: str) -> Path:
    return RESULTS / "evaluate" / dataset / f"{loss}.json"


def card(dataset: str, loss: str) -> Path:
    return CARDS / dataset / loss / "README.md"


# Sweeps (python -m pipeline.sweep), both git-ignored: the local Optuna study store, and each trial's
# `dvc exp run` output (logs/sweep/<study>/trial-<n>.log).
OPTUNA_DB = Path("optuna.db")
SWEEP_LOGS = Path("logs") / "sweep"


def trial_log(study: str, number: int) -> Path:
    return SWEEP_LOGS / study / f"trial-{number}.log"


LEADERBOARD_MD = REPORTS / "leaderboard.md"
LEADERBOARD_CSV = REPORTS / "leaderboard.csv"
METRICS = REPORTS / "metrics.json"
HEATMAP = REPORTS / "heatmap.png"
CURVES_PNG = REPORTS / "curves.png"
