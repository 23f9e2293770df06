"""Spearman evaluation shared by baseline, train (validation) and evaluate (test)."""

from __future__ import annotations

from typing import Any

from pipeline.data import adapt, read_split
from pipeline.params import Params


def scored_split(dataset: str, split: str, params: Params) -> "Any":
    """A split as scored pairs (the adaptation rules of pipeline.data), the form Spearman needs."""
    frame, shape = read_split(dataset, split)
    scored, _ = adapt(frame, shape, "scored", params.adapt, params.seed)
    return scored


def similarity_evaluator(scored: "Any", name: str, batch_size: int = 64) -> Any:
    """sentence-transformers' EmbeddingSimilarityEvaluator (Pearson and Spearman of cosine similarity)."""
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    return EmbeddingSimilarityEvaluator(
        scored["sentence1"].tolist(), scored["sentence2"].tolist(), scored["score"].tolist(),
        main_similarity="cosine", similarity_fn_names=["cosine"], name=name, batch_size=batch_size,
    )


def score(model: Any, scored: "Any", name: str) -> dict[str, float]:
    """{'<name>_pearson_cosine': .., '<name>_spearman_cosine': ..} for one model on scored pairs."""
    results = similarity_evaluator(scored, name)(model)
    return {key: float(value) for key, value in results.items()}
