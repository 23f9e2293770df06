"""Scoring a model on a set: its split read and adapted to scored pairs, every metric family the set's shape
has, returned as typed Scores (shared by baseline, train's validation and evaluate).

Spearman is the pipeline's headline metric: a split on which it is undefined (every pair scored the same)
stops the stage with one line saying so. Any other metric that comes out undefined (NaN) is left out of the
Scores, i.e. recorded as missing, never written as NaN."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pipeline.core import paths
from pipeline.core.errors import PipelineError
from pipeline.core.handoffs import Scores
from pipeline.core.params import Params, Shape
from pipeline.data.adaptation import adapt
from pipeline.data.splitting import read_corpus, read_split
from pipeline.evaluation.evaluators import retrieval_evaluators, similarity_evaluator


@dataclass(frozen=True)
class SplitInput:
    """One split as scoring reads it: its rows in their own shape (for retrieval and triplet accuracy), the same
    rows as scored pairs (for Spearman), and its set's corpus (the passages its queries search beyond their own
    positives; empty but for a search set)."""

    name: str
    split: str
    frame: Any
    shape: Shape
    scored: Any
    corpus: list[str]
    max_queries: int | None = None  # retrieval scores a seeded sample of this many queries where it has more
    seed: int = 0
    scored_rule: str | None = None  # how rows of another shape became `scored` (pipeline.data.adaptation); None: native


def read_for_scoring(name: str, split: str, params: Params) -> SplitInput:
    """Read a set's split for scoring; a missing split, or one Spearman is undefined on, stops here."""
    frame, shape = read_split(name, split)
    scored, rule = _as_scored(frame, shape, name, split, params)
    return SplitInput(name, split, frame, shape, scored, read_corpus(name), params.evaluation.max_queries, params.seed, rule)


def scored_split(name: str, split: str, params: Params) -> Any:
    """A split as scored pairs (the adaptation rules of pipeline.data.adaptation), the form Spearman needs."""
    frame, shape = read_split(name, split)
    return _as_scored(frame, shape, name, split, params)[0]


def _as_scored(frame: Any, shape: Shape, name: str, split: str, params: Params) -> tuple[Any, str | None]:
    scored, rule = adapt(frame, shape, "scored", params.adapt, params.seed)
    if scored["score"].nunique() < 2:
        knob = "split.test" if split == "test" else "split.validation"
        raise PipelineError(f"{paths.split_file(name, split)}: Spearman is undefined on this split: all {len(scored)} of its "
                            f"scored pairs have the same score ({scored['score'].iloc[0]:g}); it needs scores that "
                            f"vary: add rows to the dataset or raise {knob} in params.yaml")
    return scored, rule


def validation_pairs(name: str, params: Params) -> tuple[Any, int]:
    """The validation split as scored pairs, subsampled (seeded) to at most `train.validation_pairs` so a pass
    stays cheap on large data; and the number of pairs before subsampling."""
    return _subsampled(scored_split(name, "validation", params), params)


def _subsampled(scored: Any, params: Params) -> tuple[Any, int]:
    limit = params.train.validation_pairs
    if len(scored) <= limit:
        return scored, len(scored)
    return scored.sample(n=limit, random_state=params.seed).sort_index().reset_index(drop=True), len(scored)


def truncated_dims(params: Params, loss: str, full_dim: int) -> list[int]:
    """The Matryoshka dimensions of a loss that are smaller than the model's own (evaluated separately)."""
    matryoshka = params.losses[loss].matryoshka
    return [d for d in matryoshka.dims if d < full_dim] if matryoshka else []


def _own_metrics(results: dict[str, float], evaluator_name: str) -> dict[str, float]:
    """The metrics of one evaluator, by the library's metric name (it prefixes each with its own name); an
    undefined one (NaN) is left out: missing, not NaN."""
    prefix = evaluator_name + "_"
    return {key[len(prefix):]: float(value) for key, value in results.items()
            if key.startswith(prefix) and math.isfinite(float(value))}


STORED_PRECISIONS = ("int8", "binary")  # what a search index commonly stores, scored beside float32


def similarity_scores(model: Any, scored: Any, dims: list[int] | None = None, precisions: tuple[str, ...] = (),
                      shared: dict | None = None) -> Scores:
    """Pearson / Spearman of cosine similarity at full size, at each truncated dimension and at each stored
    precision (`shared`: see query_families)."""
    evaluator = similarity_evaluator(scored, "s", dims=dims, precisions=precisions, shared=shared)
    results = evaluator(model)
    # the full-size evaluator's name ("s") prefixes the others' too ("s_dim64", "s_int8"): take theirs first
    by_dim = {dim: _own_metrics(results, f"s_dim{dim}") for dim in dims or []}
    by_precision = {kind: _own_metrics(results, f"s_{kind}") for kind in precisions}
    claimed = {f"s_{part}_{metric}" for part, metrics in [*((f"dim{d}", m) for d, m in by_dim.items()),
                                                          *by_precision.items()] for metric in metrics}
    return Scores(similarity=_own_metrics({k: v for k, v in results.items() if k not in claimed}, "s"), dims=by_dim,
                  precision=by_precision)


def score_split(model: Any, data: SplitInput, dims: list[int] | None = None, precisions: tuple[str, ...] = (),
                shared: dict | None = None) -> Scores:
    """Every metric family of a split: similarity (per Matryoshka dimension and stored precision too when
    asked), retrieval and triplet accuracy where the set's shape has them (`shared`: see query_families)."""
    shared = {} if shared is None else shared  # similarity and retrieval embed most of the same texts
    scores = _defined(similarity_scores(model, data.scored, dims, precisions, shared), data)
    return scores.model_copy(update=query_families(model, data, precisions, shared))


def _defined(scores: Scores, data: SplitInput) -> Scores:
    if "spearman_cosine" not in scores.similarity:
        raise PipelineError(f"{paths.split_file(data.name, data.split)}: Spearman is undefined for this model: it gives "
                            f"every pair the same cosine similarity (or NaN embeddings); the model is broken, e.g. its "
                            f"training diverged")
    return scores


def query_families(model: Any, data: SplitInput, precisions: tuple[str, ...] = (), shared: dict | None = None
                   ) -> dict[str, Any]:
    """The metrics of a split's queries (retrieval among its passages and its set's corpus; triplet accuracy),
    where its shape has them, as Scores fields. `shared`: the retrieval embeddings of earlier calls for the same
    model and set (one dict across a stage's test and validation calls embeds a BEIR set's corpus once)."""
    families: dict[str, Any] = {"precision_retrieval": {}}
    for evaluator in retrieval_evaluators(data.frame, data.shape, "s", precisions, corpus=data.corpus, shared=shared,
                                          max_queries=data.max_queries, seed=data.seed):
        family, metrics = evaluator.name.removeprefix("s_"), _own_metrics(evaluator(model), evaluator.name)
        if family in ("retrieval", "triplet"):
            families[family] = metrics
        else:  # "int8_retrieval"
            families["precision_retrieval"][family.removesuffix("_retrieval")] = metrics
    return families


def validation_scores(model: Any, data: SplitInput, params: Params, shared: dict | None = None) -> Scores:
    """A dataset's validation scores (`data`: its validation split): Spearman on the (subsampled) validation
    pairs training is scored on, so it matches the validation curve, and the metrics of queries on the whole
    validation split."""
    shared = {} if shared is None else shared
    scores = similarity_scores(model, _subsampled(data.scored, params)[0], shared=shared)
    return scores.model_copy(update=query_families(model, data, shared=shared))
