"""The library's evaluators, as the pipeline uses them for validation during training and for test scores.

Every set is scored as scored pairs (Pearson / Spearman of cosine similarity, EmbeddingSimilarityEvaluator).
Pair and triplet sets, and BEIR sets of any shape, also get retrieval metrics (each query searches all the
set's passages, and a BEIR set's whole corpus: MRR@10, NDCG@10, MAP@10, Accuracy / Recall @1/@10/@100;
InformationRetrievalEvaluator) and triplet sets triplet accuracy (TripletEvaluator).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

# InformationRetrievalEvaluator scores every query against a chunk of the corpus at once: a float32 matrix, and
# where top-k scores tie (binary embeddings tie often) a bool and two int64 matrices of the same shape, ~24
# bytes per query x passage. At its default chunk (50,000 passages) a pair split of 16,000 rows peaked at
# 5.2 GiB and a 54,000-row one (seed 004's size) would need ~65 GiB (benchmarks/retrieval_scale.py). Chunks
# sized to SCORE_BYTES bound that at any size; the library ranks ties by corpus id, so its metrics do not
# depend on the chunk size.
SCORE_BYTES = 512 * 2**20
BYTES_PER_SCORE = 24
LIBRARY_CHUNK = 50_000  # the evaluator's default corpus_chunk_size


def similarity_evaluator(scored: Any, name: str, batch_size: int = 64, dims: list[int] | None = None,
                         precisions: tuple[str, ...] = (), shared: dict | None = None) -> Any:
    """sentence-transformers' EmbeddingSimilarityEvaluator (Pearson and Spearman of cosine similarity).

    With Matryoshka `dims`, one evaluator per truncated dimension follows the full-size one, named
    `<name>_dim<D>`, so every dimension gets its own `<name>_dim<D>_spearman_cosine`; with `precisions`
    ("int8", "binary"), one per stored precision, named `<name>_<precision>`. The texts are encoded once per
    call at full size and float32; each evaluator slices (truncate_dim) and quantizes (`precision`) those
    embeddings the way `model.encode` would (normalised, then `quantize_embeddings` calibrated on the texts
    being quantized), so every size and precision costs no second encoding. `shared`: the float embeddings
    the retrieval evaluators of the same model keep (retrieval_evaluators), read and filled here too."""
    unique, sequential = _one_encode_classes(in_sequence=bool(dims or precisions), shared=shared)

    def build(suffix: str, dim: int | None, precision: str | None = None) -> Any:
        return unique(
            scored["sentence1"].tolist(), scored["sentence2"].tolist(), scored["score"].tolist(),
            main_similarity="cosine", similarity_fn_names=["cosine"], name=name + suffix, batch_size=batch_size,
            truncate_dim=dim, precision=precision,
        )

    if not dims and not precisions:
        return build("", None)
    # the full-size float evaluator goes last: SequentialEvaluator's main score is the last one's
    return sequential([build(f"_dim{d}", d) for d in dims or []]
                      + [build(f"_{p}", None, p) for p in precisions] + [build("", None)])


def _one_encode_classes(in_sequence: bool, shared: dict | None) -> tuple[type, type]:
    """EmbeddingSimilarityEvaluator that embeds each distinct text of its set once per call, and the
    SequentialEvaluator that lets the evaluators of one call (every size, every precision) share it."""
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator, SequentialEvaluator

    # this call's embeddings of every distinct text of the set (both sides), at full size: shared by the
    # evaluators of one call, emptied around every call (the model changes between calls during training)
    call: dict[str, Any] = {}

    def fresh(evaluate: Any) -> dict[str, float]:
        call.clear()
        try:
            return evaluate()
        finally:
            call.clear()

    class UniqueTextEvaluator(EmbeddingSimilarityEvaluator):
        # Scored pairs repeat texts: a pair split adapted to scored pairs lists each anchor twice, and a text
        # often sits on both sides (the Debian validation split: 864 + 676 texts per side, 1,167 distinct).
        # Embedding each distinct text once per call, for both sides and every Matryoshka size, halved a
        # validation pass on the docstrings (2.2 s -> 1.2 s) and leaves 24% fewer texts on the Debian pairs.
        sequenced = in_sequence  # then inside a OneEncodeSequentialEvaluator, which empties `call` itself

        def __call__(self, *args: Any, **kwargs: Any) -> dict[str, float]:
            def evaluate() -> dict[str, float]:
                return super(UniqueTextEvaluator, self).__call__(*args, **kwargs)
            return evaluate() if self.sequenced else fresh(evaluate)

        def embed_inputs(self, model: Any, sentences: Any, **kwargs: Any) -> Any:
            if not call:
                # the full size at full precision, shared: this evaluator slices and quantizes its own copy
                (dim, precision), (self.truncate_dim, self.precision) = (self.truncate_dim, self.precision), (None, None)
                try:
                    call.update(_embed_sides(self, model, super().embed_inputs, shared, **kwargs))
                finally:
                    self.truncate_dim, self.precision = dim, precision
            rows = call["embedded"][[call["row"][key] for key in _sides(self, sentences, call["one_side"])], :self.truncate_dim]
            return rows if self.precision in (None, "float32") else _stored(rows, self.precision)

    class OneEncodeSequentialEvaluator(SequentialEvaluator):
        def __call__(self, *args: Any, **kwargs: Any) -> dict[str, float]:
            return fresh(lambda: super(OneEncodeSequentialEvaluator, self).__call__(*args, **kwargs))

    return UniqueTextEvaluator, OneEncodeSequentialEvaluator


def _embed_sides(evaluator: Any, model: Any, embed: Any, shared: dict | None, **kwargs: Any) -> dict[str, Any]:
    """Every distinct (side, text) of a scored set embedded once: sentence1 is the query side, sentence2 the
    document side, each with the model's prompt for it (pipeline.core.models.use_prompts), as encode_query /
    encode_document apply them; with one prompt (or none) for both, a text on both sides is embedded once.
    With `shared`, a text the retrieval evaluators embedded already for that side is taken from there."""
    prompts = {role: model.prompts.get(role) or None for role in ("query", "document")}
    one_side = prompts["query"] == prompts["document"]
    by_role: dict[str, list[tuple[str, str]]] = {}
    for key in dict.fromkeys(_sides(evaluator, None, one_side)):
        by_role.setdefault(key[0], []).append(key)
    # one prompt for both sides: a text embeds the same as a query or a document, so either side's cache serves
    roles = {role: ("query", "document") if one_side else (role,) for role in by_role}
    embedded = [_through_cache(shared, roles[role], [text for _, text in keys],
                               lambda texts, role=role: embed(model, texts, prompt=prompts[role], **kwargs)).float().numpy()
                for role, keys in by_role.items()]
    order = [key for keys in by_role.values() for key in keys]
    return {"one_side": one_side, "embedded": np.concatenate(embedded), "row": {key: i for i, key in enumerate(order)}}


def _through_cache(shared: dict | None, roles: tuple[str, ...], texts: list[str], encode: Any) -> Any:
    """Embeddings of `texts` (a tensor, a row per text), those missing from the `shared` cache of any of `roles`
    encoded once each and stored under each of them (role -> text -> float tensor row), for the similarity
    and the retrieval evaluators of one model alike.

    Why: a pair or triplet split is scored by similarity and by retrieval, and a BEIR set's queries and answers
    are part of what its corpus search embeds; each evaluator embedding them on its own cost a second encode of
    every such text (on the built-in search set, 765 of its 4,517 texts per model)."""
    import torch

    if shared is None:
        return torch.as_tensor(encode(texts))
    known = {text: row for role in reversed(roles) for text, row in shared.get(role, {}).items()}
    if missing := list(dict.fromkeys(text for text in texts if text not in known)):
        rows = list(torch.as_tensor(encode(missing)))
        for role in roles:
            shared.setdefault(role, {}).update(zip(missing, rows))
        known.update(zip(missing, rows))
    return torch.stack([known[text] for text in texts])


def _sides(evaluator: Any, sentences: Any, one_side: bool) -> list[tuple[str, str]]:
    """(side, text) of each text the library asks an EmbeddingSimilarityEvaluator to embed: one side of its set,
    or both at once (None here; int8 calibrates on both); the side is "query" throughout with one prompt."""
    if sentences is evaluator.sentences1 or (sentences is evaluator.sentences2 and one_side):
        return [("query", text) for text in sentences]
    if sentences is evaluator.sentences2:
        return [("document", text) for text in sentences]
    if sentences is not None and len(sentences) != len(evaluator.sentences1) + len(evaluator.sentences2):
        raise ValueError("asked to embed texts that are neither side of the set nor both")
    return _sides(evaluator, evaluator.sentences1, one_side) + _sides(evaluator, evaluator.sentences2, one_side)


def _stored(embeddings: np.ndarray, precision: str, calibration: np.ndarray | None = None) -> np.ndarray:
    """Float embeddings as an index stores them at `precision`, the way `model.encode(precision=...)` makes
    them: normalised, then `quantize_embeddings` calibrated on these embeddings (or on `calibration`, normalised
    embeddings of the whole set these are part of)."""
    try:
        from sentence_transformers.util.quantization import quantize_embeddings
    except ImportError:  # sentence-transformers before 6.3 (its old home is deprecated from 6.3 on)
        from sentence_transformers.quantization import quantize_embeddings

    return quantize_embeddings(_normalised(embeddings), precision=precision, calibration_embeddings=calibration)


def _normalised(embeddings: np.ndarray) -> np.ndarray:
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(min=1e-12)


def retrieval_evaluators(frame: Any, shape: str, name: str, precisions: tuple[str, ...] = (),
                         corpus: list[str] | tuple[str, ...] = (), shared: dict | None = None,
                         max_queries: int | None = None, seed: int = 0, max_passages: int | None = None) -> list[Any]:
    """InformationRetrievalEvaluator (and TripletEvaluator for triplets) for pair / triplet splits, and for any
    split with a `corpus` (a BEIR set's: its scored pairs count as relevant above grade 0); each query is
    searched among the split's own passages and the whole corpus. With `precisions`, the retrieval evaluator
    again per stored precision (`<name>_<precision>_retrieval`). The evaluators share one float encode of each
    text, kept in `shared` (given: across calls too, for one model whose weights and prompts stay put).

    Every query searches every passage, so the work grows with queries x passages: a split with more than
    `max_queries` queries is scored on a sample of that many (seeded by `seed`; `evaluation.max_queries`), each
    still searching all of them, which keeps the cost linear in the split. With `max_passages` (training's
    validation passes: `train.validation_passages`) the searched passages are cut to that many: every sampled
    query's relevant ones, and a seeded sample of the rest. Each evaluator carries `queries_total` and
    `passages_total`, the counts before sampling (a card says when it sampled: sampled_search)."""
    if shape == "scored" and not corpus:
        return []
    queries, passages = (frame["anchor"], frame["positive"]) if shape != "scored" else (frame["sentence1"], frame["sentence2"])
    judged = passages.tolist() + (frame["negative"].tolist() if shape == "triplets" else [])
    doc_ids = {text: f"d{i}" for i, text in enumerate(dict.fromkeys([*judged, *corpus]))}
    query_ids = {text: f"q{i}" for i, text in enumerate(dict.fromkeys(queries))}
    relevant: dict[str, set[str]] = {}
    graded = frame["score"] if shape == "scored" else [1.0] * len(frame)  # grade 0: judged, not an answer
    for query, passage, grade in zip(queries, passages, graded):
        if grade <= 0:
            continue
        relevant.setdefault(query_ids[query], set()).add(doc_ids[passage])
    # encode function -> text -> embedding, once for every precision; one of our own lasts one call (per_call)
    per_call, shared = shared is None, {} if shared is None else shared
    searched = _sampled(relevant, max_queries, seed)
    passages = _sampled_passages({did: text for text, did in doc_ids.items()}, searched, max_passages, seed)
    chunk = corpus_chunk_size(len(searched))

    def build(evaluator_name: str, precision: str | None) -> Any:
        evaluator = _quantizing_retrieval_evaluator()(
            {qid: text for text, qid in query_ids.items() if qid in searched}, passages,
            searched, corpus_chunk_size=chunk,
            mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 10], precision_recall_at_k=[1, 10, 100], map_at_k=[10],
            name=evaluator_name, write_csv=False, score_functions=None, main_score_function="cosine",
            stored_precision=precision, shared=shared, per_call=per_call)
        evaluator.queries_total, evaluator.passages_total = len(relevant), len(doc_ids)
        return evaluator

    evaluators = [build(f"{name}_retrieval", None), *(build(f"{name}_{p}_retrieval", p) for p in precisions)]
    if shape == "triplets":
        evaluators.append(_shared_triplet_evaluator()(frame["anchor"].tolist(), frame["positive"].tolist(),
                                                      frame["negative"].tolist(), name=f"{name}_triplet", write_csv=False,
                                                      similarity_fn_names=["cosine"], shared=shared, per_call=per_call))
    return evaluators


class _PerCallCache:
    """For an evaluator whose embedding cache (`shared`) it owns (`per_call`): emptied around every call. The
    trainer calls one validation evaluator at every pass with the weights of that step; a cache kept across calls
    scored every pass with the first pass's embeddings (a validation NDCG@10 that never moved)."""

    shared: dict
    per_call: bool

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        if not self.per_call:
            return super().__call__(*args, **kwargs)  # type: ignore[misc]
        self.shared.clear()
        try:
            return super().__call__(*args, **kwargs)  # type: ignore[misc]
        finally:
            self.shared.clear()


def corpus_chunk_size(queries: int) -> int:
    """Passages an InformationRetrievalEvaluator scores `queries` queries against at once: its default, or
    fewer, so that one chunk's score matrices stay within SCORE_BYTES."""
    return max(1, min(LIBRARY_CHUNK, SCORE_BYTES // (BYTES_PER_SCORE * max(1, queries))))


def _sampled(relevant: dict[str, set[str]], max_queries: int | None, seed: int) -> dict[str, set[str]]:
    """The queries (id -> relevant passage ids) a retrieval evaluator scores: all of them, or a seeded sample of
    `max_queries`, in their split's order."""
    if max_queries is None or len(relevant) <= max_queries:
        return relevant
    kept = set(random.Random(seed).sample(sorted(relevant), max_queries))
    return {qid: passages for qid, passages in relevant.items() if qid in kept}


def _sampled_passages(passages: dict[str, str], searched: dict[str, set[str]], max_passages: int | None,
                      seed: int) -> dict[str, str]:
    """The passages (id -> text) the queries search: all of them, or at most `max_passages`: every searched
    query's relevant ones (all of them, should they alone be more), then a seeded sample of the others; in the
    split's order."""
    if max_passages is None or len(passages) <= max_passages:
        return passages
    needed = set().union(*searched.values())
    others = [did for did in passages if did not in needed]
    kept = needed | set(random.Random(seed).sample(others, max(0, max_passages - len(needed))))
    return {did: text for did, text in passages.items() if did in kept}


def sampled_search(evaluator: Any, split: str, when: str = "") -> str | None:
    """One sentence for a card where a retrieval evaluator scored a sample of its split's queries or searched
    a sample of its passages, else None (for any other evaluator too). `when`: e.g. " during training"."""
    queries, passages = getattr(evaluator, "queries_total", None), getattr(evaluator, "passages_total", None)
    if queries is None or (len(evaluator.queries) >= queries and len(evaluator.corpus) >= passages):
        return None
    sampled = len(evaluator.queries) < queries
    asked = f"a seeded sample of {len(evaluator.queries):,} of its {queries:,} queries" if sampled else f"its {queries:,} queries"
    if len(evaluator.corpus) >= passages:
        return (f"Retrieval on the {split} split{when}: {asked}, each searching all {passages:,} passages "
                "(`evaluation.max_queries`).")
    knobs = "`evaluation.max_queries`, `train.validation_passages`" if sampled else "`train.validation_passages`"
    return (f"Retrieval on the {split} split{when}: {asked}, each searching {len(evaluator.corpus):,} of the "
            f"{passages:,} passages (the queries' relevant ones and a seeded sample of the others; {knobs}).")


def _shared_triplet_evaluator() -> type:
    """TripletEvaluator that takes its embeddings from the float encode the similarity and retrieval evaluators
    of the same model share (`shared`): a triplet split's anchors, positives and negatives are texts they
    embedded already. Encoding them again cost 381 texts per evaluate stage on the built-in products test split,
    a sixth of its encoding."""
    from sentence_transformers.sentence_transformer.evaluation import TripletEvaluator

    class SharedTripletEvaluator(_PerCallCache, TripletEvaluator):
        def __init__(self, *args: Any, shared: dict, per_call: bool, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.shared, self.per_call = shared, per_call

        def embed_inputs(self, model: Any, sentences: Any, encode_fn_name: str | None = None, **kwargs: Any) -> Any:
            embed = super().embed_inputs
            return _through_cache(self.shared, (encode_fn_name,), list(sentences),
                                  lambda missing: embed(model, missing, encode_fn_name=encode_fn_name, **kwargs)).numpy()

    return SharedTripletEvaluator


def _quantizing_retrieval_evaluator() -> type:
    """InformationRetrievalEvaluator whose embeddings can be quantized as an index stores them (the library's
    evaluator has no `precision`): normalised, `quantize_embeddings` calibrated on the texts of each side (the
    queries; the whole corpus, whatever chunk of it is being scored), binary unpacked to bits, scored by cosine
    like EmbeddingSimilarityEvaluator does. Evaluators built together share one float encode of each text."""
    import torch
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    class QuantizingRetrievalEvaluator(_PerCallCache, InformationRetrievalEvaluator):
        def __init__(self, *args: Any, stored_precision: str | None, shared: dict, per_call: bool, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.stored_precision, self.shared, self.per_call = stored_precision, shared, per_call
            self.calibration: np.ndarray | None = None

        def __call__(self, *args: Any, **kwargs: Any) -> dict[str, float]:
            self.calibration = None  # the corpus's int8 ranges are this call's model's
            return super().__call__(*args, **kwargs)

        def embed_inputs(self, model: Any, sentences: Any, encode_fn_name: str | None = None, **kwargs: Any) -> Any:
            texts = [sentences] if isinstance(sentences, str) else list(sentences)
            embed = super().embed_inputs

            def embedded(texts: list[str]) -> Any:
                return _through_cache(self.shared, (encode_fn_name,), texts,
                                      lambda missing: embed(model, missing, encode_fn_name=encode_fn_name, **kwargs))

            rows = embedded(texts)
            if self.stored_precision is None:
                return rows
            calibration = None
            if self.stored_precision == "int8" and encode_fn_name == "document" and len(texts) < len(self.corpus):
                # a chunk of the corpus: int8 buckets from the whole corpus, as an index calibrates them, so the
                # scores do not depend on the chunk size (corpus_chunk_size)
                if self.calibration is None:
                    self.calibration = _normalised(embedded(self.corpus).float().cpu().numpy())
                calibration = self.calibration
            quantized = _stored(rows.float().cpu().numpy(), self.stored_precision, calibration)
            if self.stored_precision == "binary":  # packed signed bytes -> bits
                quantized = np.unpackbits((quantized.astype(np.int16) + 128).astype(np.uint8), axis=1)
            return torch.from_numpy(quantized.astype(np.float32))

    return QuantizingRetrievalEvaluator
