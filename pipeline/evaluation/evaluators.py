"""The library's evaluators, as the pipeline uses them for validation during training and for test scores.

Every set is scored as scored pairs (Pearson / Spearman of cosine similarity, EmbeddingSimilarityEvaluator).
Pair and triplet sets also get retrieval metrics (each anchor queries a corpus of all the set's positives
and negatives: MRR@10, NDCG@10, Recall@1/@10; InformationRetrievalEvaluator) and triplet sets triplet
accuracy (TripletEvaluator).
"""

from __future__ import annotations

from typing import Any


def similarity_evaluator(scored: Any, name: str, batch_size: int = 64, dims: list[int] | None = None) -> Any:
    """sentence-transformers' EmbeddingSimilarityEvaluator (Pearson and Spearman of cosine similarity).

    With Matryoshka `dims`, one evaluator per truncated dimension follows the full-size one, named
    `<name>_dim<D>`, so every dimension gets its own `<name>_dim<D>_spearman_cosine`. The texts are
    encoded once per call at full size and sliced per dimension, which is what `truncate_dim` computes."""
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
        in_sequence = bool(dims)  # then inside a OneEncodeSequentialEvaluator, which empties `call` itself

        def __call__(self, *args: Any, **kwargs: Any) -> dict[str, float]:
            def evaluate() -> dict[str, float]:
                return super(UniqueTextEvaluator, self).__call__(*args, **kwargs)
            return evaluate() if self.in_sequence else fresh(evaluate)

        def embed_inputs(self, model: Any, sentences: Any, **kwargs: Any) -> Any:
            if not call:
                texts = list(dict.fromkeys([*self.sentences1, *self.sentences2]))
                dim, self.truncate_dim = self.truncate_dim, None  # truncate_dim slices: slice the full size
                try:
                    call["embedded"] = super().embed_inputs(model, texts, **kwargs)
                finally:
                    self.truncate_dim = dim
                call["row"] = {text: i for i, text in enumerate(texts)}
            return call["embedded"][[call["row"][text] for text in sentences], :self.truncate_dim]

    class OneEncodeSequentialEvaluator(SequentialEvaluator):
        def __call__(self, *args: Any, **kwargs: Any) -> dict[str, float]:
            return fresh(lambda: super(OneEncodeSequentialEvaluator, self).__call__(*args, **kwargs))

    def build(suffix: str, dim: int | None) -> Any:
        return UniqueTextEvaluator(
            scored["sentence1"].tolist(), scored["sentence2"].tolist(), scored["score"].tolist(),
            main_similarity="cosine", similarity_fn_names=["cosine"], name=name + suffix, batch_size=batch_size,
            truncate_dim=dim,
        )

    if not dims:
        return build("", None)
    # the full-size evaluator goes last: SequentialEvaluator's main score is the last one's
    return OneEncodeSequentialEvaluator([build(f"_dim{d}", d) for d in dims] + [build("", None)])


def retrieval_evaluators(frame: Any, shape: str, name: str) -> list[Any]:
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
