"""Every output location, defined once; dvc.yaml spells the same layout in its deps and outs.

Outputs are grouped by the stage that writes them, and named by dataset (and base model and loss: a cell)
below that, so no dataset name can collide with another stage's file:

    results/code/<stage>.json                  the code the stage runs, fingerprinted   code
    data/sources/<set>.json                    its source's fingerprint                 sources
    data/ingested/<set>.parquet                normalised copy of the source           ingest
    data/splits/<dataset>/{train,validation}.parquet                                   split
    data/test/<set>.parquet                    the held-out test split of every set     split
    results/ingest/<set>.json                  rows in / out, drops per reason          ingest
    results/split/<set>.json                   rows per split                           split
    results/baseline/<base>/<set>.json         the untuned base model's scores          baseline
    results/train/<dataset>/<base>/<loss>/     facts, model digest, MLflow run id,       train
                                               curves, metrics
    models/<dataset>/<base>/<loss>/            the fine-tuned model                     train
    results/evaluate/<dataset>/<base>/<loss>.json  test scores beside the base model    evaluate
    cards/<dataset>/<base>/<loss>/README.md    the model card                           card
    reports/                                   leaderboard, DVC metrics, plots, winners report
    publish/<dataset>/                         the winner's model and card, for the Hub publish
    results/publish/<dataset>.json             its MLflow registry version               publish
"""

from __future__ import annotations

from pathlib import Path

DATA = Path("data")
# Local sources live here: the sources stage depends on this folder and fingerprints each set's files in it
# (DVC cannot look a set's file up by its name), and each ingest depends on its own set's fingerprint
RAW = DATA / "raw"
SOURCE_FINGERPRINTS = DATA / "sources"
INGESTED = DATA / "ingested"
SPLITS = DATA / "splits"
TEST_SETS = DATA / "test"
MODELS = Path("models")
RESULTS = Path("results")
BASELINES = RESULTS / "baseline"
CODE_FINGERPRINTS = RESULTS / "code"  # <stage>.json: the code each stage runs (pipeline.code), one dep per stage
CARDS = Path("cards")
REPORTS = Path("reports")
CHECKPOINTS = Path("checkpoints")
TRAINING_SPLITS = ("train", "validation")  # the test split lives in TEST_SETS, beside every other set's
PUBLISH = Path("publish")  # <dataset>/: the winner's model files and card, ready for the Hub
# Where stages may delete (their previous outputs, staging folders, checkpoints): files.remove refuses the rest.
OUTPUT_FOLDERS = (SOURCE_FINGERPRINTS, INGESTED, SPLITS, TEST_SETS, MODELS, RESULTS, CARDS, REPORTS, CHECKPOINTS, PUBLISH)


def cell_name(dataset: str, base: str, loss: str) -> str:
    """How a cell is named to people (MLflow tag and run name, messages), in the order of its paths."""
    return f"{dataset}/{base}/{loss}"


def stage_name(stage: str, dataset: str, base: str, loss: str) -> str:
    """The DVC stage of a cell (dvc.yaml's matrix names it by dataset, base, loss)."""
    return f"{stage}@{dataset}-{base}-{loss}"


def code_fingerprint(stage: str) -> Path:
    return CODE_FINGERPRINTS / f"{stage}.json"


def source_fingerprint(name: str) -> Path:
    return SOURCE_FINGERPRINTS / f"{name}.json"


def ingested(name: str) -> Path:
    return INGESTED / f"{name}.parquet"


def ingested_corpus(name: str) -> Path:
    """The passages a set's queries are searched among beyond its own (a BEIR folder's corpus; else no rows)."""
    return INGESTED / f"{name}.corpus.parquet"


def test_corpus(name: str) -> Path:
    """The corpus beside a set's test split, as scoring reads it (the split stage copies it there)."""
    return TEST_SETS / f"{name}.corpus.parquet"


def ingest_report(name: str) -> Path:
    return RESULTS / "ingest" / f"{name}.json"


def split_dir(name: str) -> Path:
    """A dataset's train and validation splits (one DVC output)."""
    return SPLITS / name


def split_file(name: str, split: str) -> Path:
    """train / validation of a dataset, or the test split of any set (dataset or eval set)."""
    return TEST_SETS / f"{name}.parquet" if split == "test" else split_dir(name) / f"{split}.parquet"


def split_report(name: str) -> Path:
    return RESULTS / "split" / f"{name}.json"


def baseline_scores(name: str, base: str) -> Path:
    return BASELINES / base / f"{name}.json"


def model_dir(dataset: str, base: str, loss: str) -> Path:
    return MODELS / dataset / base / loss


def train_results(dataset: str, base: str, loss: str) -> Path:
    return RESULTS / "train" / dataset / base / loss


def train_facts(dataset: str, base: str, loss: str) -> Path:
    """What the card needs from training: card data, hyperparameters, log history, dataset facts."""
    return train_results(dataset, base, loss) / "facts.json"


def model_files(dataset: str, base: str, loss: str) -> Path:
    """The saved model folder's digest (each file's size and SHA-256), checked before the folder is used."""
    return train_results(dataset, base, loss) / "model_files.json"


def mlflow_run(dataset: str, base: str, loss: str) -> Path:
    return train_results(dataset, base, loss) / "run.json"


def loss_curve(dataset: str, base: str, loss: str) -> Path:
    """Training loss per logging step (DVC plots)."""
    return train_results(dataset, base, loss) / "loss_curve.csv"


def val_curve(dataset: str, base: str, loss: str) -> Path:
    """Validation Spearman per evaluation (DVC plots)."""
    return train_results(dataset, base, loss) / "val_spearman.csv"


def train_metrics(dataset: str, base: str, loss: str) -> Path:
    """The cell's DVC metrics (`dvc exp show`): best validation Spearman, its step, pruned by a sweep."""
    return train_results(dataset, base, loss) / "metrics.json"


def checkpoints(dataset: str, base: str, loss: str) -> Path:
    return CHECKPOINTS / dataset / base / loss


def train_lock(dataset: str, base: str, loss: str) -> Path:
    """Held by the cell's running train stage: a second one of the same cell stops instead of sharing its
    checkpoints and staging folder."""
    return CHECKPOINTS / dataset / base / f".{loss}.lock"


def eval_result(dataset: str, base: str, loss: str) -> Path:
    return RESULTS / "evaluate" / dataset / base / f"{loss}.json"


def card(dataset: str, base: str, loss: str) -> Path:
    return CARDS / dataset / base / loss / "README.md"


def winner(dataset: str) -> Path:
    return WINNERS / f"{dataset}.json"


def publish_dir(dataset: str) -> Path:
    return PUBLISH / dataset


def publish_record(dataset: str) -> Path:
    return RESULTS / "publish" / f"{dataset}.json"


def dataset_metrics(dataset: str) -> Path:
    return METRICS / f"{dataset}.json"


WINNERS = REPORTS / "winners"  # <dataset>.json: the winner by the report's rule

# Sweeps (python -m pipeline.sweep), both git-ignored: the local Optuna study store, and each trial's
# `dvc exp run` output (logs/sweep/<study>/trial-<n>.log).
OPTUNA_DB = Path("optuna.db")
SWEEP_LOGS = Path("logs") / "sweep"


def trial_log(study: str, number: int) -> Path:
    return SWEEP_LOGS / study / f"trial-{number}.log"


LEADERBOARD_MD = REPORTS / "leaderboard.md"  # the winner per dataset, validation and test side by side; transfer
LEADERBOARD_CSV = REPORTS / "leaderboard.csv"
TRANSFER_CSV = REPORTS / "transfer.csv"  # every cell on every set's test split
# DVC metrics, one file per dataset: `dvc metrics show` prints a row per file, so the run reads as a table
METRICS = REPORTS / "metrics"
HEATMAP = REPORTS / "heatmap.png"  # validation and test gains, winners outlined
TRANSFER_PNG = REPORTS / "transfer.png"
CURVES_PNG = REPORTS / "curves.png"  # one panel per dataset, one line per loss
VALIDATION_CURVES = REPORTS / "validation_curves.csv"  # long format, for DVC plots
LOSS_CURVES = REPORTS / "loss_curves.csv"
