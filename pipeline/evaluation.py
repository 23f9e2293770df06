"""Test-time evaluation shared by baseline, train (validation) and evaluate (test).

Every split is scored as scored pairs (Spearman / Pearson of cosine similarity). Pair and triplet data
also get retrieval metrics (each anchor queries a corpus of all the split's positives and negatives:
MRR@10, NDCG@10, Recall@1/@10) and triplet data triplet accuracy.
"""

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


def retrieval_evaluators(frame: "Any", shape: str, name: str) -> list[Any]:
    """InformationRetrievalEvaluator (and TripletEvaluator for triplets) for pair / triplet splits."""
    if shape == "scored":
        return []
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator, TripletEvaluator

    documents = list(dict.fromkeys(frame["positive"].tolist() + (frame["negative"].tolist() if shape == "triplets" else [])))
    doc_ids = {text: f"d{i}" for i, text in enumerate(documents)}
    query_ids = {text: f"q{i}" for i, text in enumerate(dict.fromkeys(frame["anchor"]))}
    relevant: dict[str, set[str]] = {}
    for anchor, positive in zip(frame["anchor"], frame["positive"]):
        relevant.setdefault(query_ids[anchor], set()).add(doc_ids[positive])
    evaluators = [InformationRetrievalEvaluator(
        {qid: text for text, qid in query_ids.items()}, {did: text for text, did in doc_ids.items()}, relevant,
        mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 10], precision_recall_at_k=[1, 10], map_at_k=[10],
        name=f"{name}_retrieval", write_csv=False, score_functions=None, main_score_function="cosine",
    )]
    if shape == "triplets":
        evaluators.append(TripletEvaluator(frame["anchor"].tolist(), frame["positive"].tolist(), frame["negative"].tolist(),
                                           name=f"{name}_triplet", write_csv=False, similarity_fn_names=["cosine"]))
    return evaluators


def score(model: Any, scored: "Any", name: str) -> dict[str, float]:
    """{'<name>_pearson_cosine': .., '<name>_spearman_cosine': ..} for one model on scored pairs."""
    results = similarity_evaluator(scored, name)(model)
    return {key: float(value) for key, value in results.items()}


def score_split(model: Any, dataset: str, split: str, params: Params, name: str) -> dict[str, float]:
    """Spearman / Pearson on the split as scored pairs, plus retrieval and triplet metrics where the shape has them."""
    frame, shape = read_split(dataset, split)
    metrics = score(model, scored_split(dataset, split, params), name)
    for evaluator in retrieval_evaluators(frame, shape, name):
        metrics.update({key: float(value) for key, value in evaluator(model).items()})
    return metrics
