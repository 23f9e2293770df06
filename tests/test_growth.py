"""The evaluation side grows no faster than its data: the scaled-down growth check of benchmarks/stage_growth.py.

At 2,000 and 8,000 scored pairs (4x) of the built-in STS generator, with the tiny model, the stages that score a
dataset are counted in what their time is made of, the texts they embed (the tiny model's encode is cheap, so
wall time here would measure start-up and noise; the benchmark times the real thing). The base model's scores
(baseline) and a cell's scores (evaluate) may grow with the test and validation splits, at most as fast as the
rows; a validation pass during training is capped by train.validation_pairs, so it costs the same at both sizes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import BASE, count_encodes, tiny_params

SIZES = (2_000, 8_000)


def _texts_embedded(root: Path, rows: int, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Texts embedded by the baseline stage, by evaluate's scoring of the test and validation splits, and by one
    validation pass of the training evaluator, for the STS set at `rows` pairs."""
    from sentence_transformers import SentenceTransformer

    from pipeline import baseline, ingest, split
    from pipeline.core.loading import load_params
    from pipeline.evaluation.scoring import read_for_scoring, score_split, validation_scores
    from pipeline.training.recipe import validation

    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    monkeypatch.delenv("DVC_ROOT", raising=False)
    params = tiny_params(tiny_model_dir, ["sts"], ["cosine"], rows=rows)
    params["train"]["validation_pairs"] = 100  # below both sizes' validation splits (200 and 800 pairs)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    ingest.main(["--dataset", "sts"])
    split.main(["--dataset", "sts"])
    embedded = count_encodes(monkeypatch)
    counts = {}
    baseline.main(["--dataset", "sts", "--base", BASE])
    counts["baseline"] = embedded.total()
    loaded, model = load_params(), SentenceTransformer(str(tiny_model_dir))
    embedded.clear()
    score_split(model, read_for_scoring("sts", "test", loaded))
    validation_scores(model, read_for_scoring("sts", "validation", loaded), loaded)
    counts["evaluate"] = embedded.total()
    embedded.clear()
    validation(loaded, "sts", "cosine", model, searches_corpus=False).evaluator(model)
    counts["validation pass"] = embedded.total()
    monkeypatch.undo()
    return counts


def test_scoring_grows_no_faster_than_the_rows_and_a_validation_pass_not_at_all(
        tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small, large = (_texts_embedded(tmp_path / str(rows), rows, tiny_model_dir, monkeypatch) for rows in SIZES)
    growth = SIZES[1] / SIZES[0]
    for stage in ("baseline", "evaluate"):
        # a split of 4x the rows holds up to 4x the distinct texts; repeats are embedded once, so a little less
        assert 0.5 * growth <= large[stage] / small[stage] <= growth * 1.05, (stage, small, large)
    assert small["validation pass"] == large["validation pass"] <= 2 * 100, (small, large)
