"""Every output location, defined once. dvc.yaml spells the same layout for its deps/outs;
tests/test_dvc_yaml.py checks the two agree."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DATA = Path("data")
INGESTED = DATA / "ingested"  # <dataset>.parquet: normalised copy of the source
SPLITS = DATA / "splits"  # <dataset>/{train,validation,test}.parquet
MODELS = Path("models")  # <dataset>/<loss>/: fine-tuned model, loadable by SentenceTransformer
RESULTS = Path("results")  # per-cell metrics, logs and facts the card stage needs
CARDS = Path("cards")  # <dataset>/<loss>/README.md
REPORTS = Path("reports")
SPLIT_NAMES = ("train", "validation", "test")


def ingested(dataset: str) -> Path:
    return INGESTED / f"{dataset}.parquet"


def ingest_report(dataset: str) -> Path:
    return RESULTS / dataset / "ingest.json"


def split_file(dataset: str, split: str) -> Path:
    return SPLITS / dataset / f"{split}.parquet"


def split_dir(dataset: str) -> Path:
    return SPLITS / dataset


def baseline_metrics(dataset: str) -> Path:
    return RESULTS / dataset / "baseline.json"


def model_dir(dataset: str, loss: str) -> Path:
    return MODELS / dataset / loss


def cell_results(dataset: str, loss: str) -> Path:
    return RESULTS / dataset / loss


def train_facts(dataset: str, loss: str) -> Path:
    """What the card needs from training: card data, hyperparameters, log history, dataset facts."""
    return cell_results(dataset, loss) / "train_facts.json"


def loss_curve(dataset: str, loss: str) -> Path:
    """Training loss per logging step (DVC plots)."""
    return cell_results(dataset, loss) / "loss_curve.csv"


def val_curve(dataset: str, loss: str) -> Path:
    """Validation Spearman per evaluation (DVC plots)."""
    return cell_results(dataset, loss) / "val_spearman.csv"


def checkpoints(dataset: str, loss: str) -> Path:
    return Path("checkpoints") / dataset / loss


def mlflow_run(dataset: str, loss: str) -> Path:
    return cell_results(dataset, loss) / "mlflow_run.json"


def eval_metrics(dataset: str, loss: str) -> Path:
    return cell_results(dataset, loss) / "eval.json"


def card(dataset: str, loss: str) -> Path:
    return CARDS / dataset / loss / "README.md"


LEADERBOARD_MD = REPORTS / "leaderboard.md"
LEADERBOARD_CSV = REPORTS / "leaderboard.csv"
METRICS = REPORTS / "metrics.json"
HEATMAP = REPORTS / "heatmap.png"
CURVES_PNG = REPORTS / "curves.png"


def write_json(path: Path, data: Any) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written file that DVC
    could later cache as a valid output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_parquet(path: Path, frame: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
