"""Spearman undefined: a split whose pairs all have one score stops baseline / evaluate with one line
saying why; a model giving every pair one similarity does too; any other undefined metric is recorded as
missing; a NaN can never reach a hand-off record or its JSON."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from pipeline import baseline, evaluate, ingest, split
from pipeline.core import paths
from pipeline.core.handoffs import BaselineScores, Scores
from pipeline.evaluation.scoring import _own_metrics
from tests.conftest import prepare_set, tiny_params
from tests.test_bad_inputs import expect_one_line_exit, no_running_runs


@pytest.fixture
def sts_project(workdir: Path, tiny_model_dir: Path) -> Path:
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_model_dir, ["sts"], ["cosent"])))
    prepare_set("sts")
    return workdir


def _make_test_split_constant(root: Path) -> int:
    test_file = root / paths.split_file("sts", "test")
    frame = pd.read_parquet(test_file).assign(score=0.6)
    frame.to_parquet(test_file, index=False)
    return len(frame)


def test_baseline_on_a_test_split_with_one_score_stops_with_one_line(sts_project: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    rows = _make_test_split_constant(sts_project)
    capsys.readouterr()
    line = expect_one_line_exit(capsys, lambda: baseline.main(["--dataset", "sts", "--base", "tiny"]))
    assert line == (f"error: data/test/sts.parquet: Spearman is undefined on this split: all {rows} of its scored pairs "
                    f"have the same score (0.6); it needs scores that vary: add rows to the dataset or raise split.test "
                    f"in params.yaml")
    assert not (sts_project / paths.baseline_scores("sts", "tiny")).exists()


def test_evaluate_on_a_test_split_with_one_score_stops_with_one_line(sts_project: Path, tiny_model_dir: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    import shutil

    from pipeline.core.digests import folder_digest
    from pipeline.core.handoffs import ModelFiles

    model_dir = sts_project / paths.model_dir("sts", "tiny", "cosent")
    shutil.copytree(tiny_model_dir, model_dir)  # stands in for a trained model
    ModelFiles(files=folder_digest(model_dir)).write(sts_project / paths.model_files("sts", "tiny", "cosent"))
    _make_test_split_constant(sts_project)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        evaluate.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in err
    # the last line: evaluate loads the model first, whose loading progress bar comes before it
    assert err.strip().splitlines()[-1].startswith("error: data/test/sts.parquet: Spearman is undefined on this split")
    assert not (sts_project / paths.eval_result("sts", "tiny", "cosent")).exists()
    assert no_running_runs(sts_project / "mlflow.db")


def _constant_model(tiny_model_dir: Path):
    """The tiny model with every weight zero: every text gets the same embedding, so every pair the same cosine."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_dir))
    with torch.no_grad():
        for weight in model.parameters():
            weight.zero_()
    return model


def test_a_model_giving_every_pair_one_similarity_stops_with_one_line(sts_project: Path, tiny_model_dir: Path) -> None:
    from pipeline.core.errors import PipelineError
    from pipeline.core.loading import load_params
    from pipeline.evaluation.scoring import read_for_scoring, score_split

    with pytest.raises(PipelineError, match=r"^data/test/sts.parquet: Spearman is undefined for this model: it gives every "
                                            r"pair the same cosine similarity"):
        score_split(_constant_model(tiny_model_dir), read_for_scoring("sts", "test", load_params()))


def test_an_undefined_metric_among_others_is_recorded_as_missing() -> None:
    results = {"s_pearson_cosine": 0.5, "s_spearman_cosine": float("nan"), "s_dim64_spearman_cosine": 0.4}
    assert _own_metrics(results, "s") == {"pearson_cosine": 0.5, "dim64_spearman_cosine": 0.4}
    assert _own_metrics({"s_triplet_cosine_accuracy": math.inf}, "s_triplet") == {}


def test_a_nan_never_reaches_a_hand_off_record(sts_project: Path) -> None:
    scores = BaselineScores.read(sts_project / paths.baseline_scores("sts", "tiny")).test
    with pytest.raises(ValidationError):
        Scores(similarity={**scores.similarity, "pearson_cosine": math.nan})
    with pytest.raises(ValidationError):
        scores.model_validate({**scores.model_dump(), "dims": {64: {"spearman_cosine": math.nan}}})
    raw = copy.deepcopy(scores.model_dump())
    assert math.isfinite(raw["similarity"]["spearman_cosine"])


def test_stored_precisions_score_as_the_librarys_own_evaluator_does(sts_project: Path, tiny_model_dir: Path) -> None:
    # int8 / binary embeddings are what a search index stores: scored from one float encode per call, they must
    # match EmbeddingSimilarityEvaluator(precision=...) encoding the texts itself
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    from pipeline.core.loading import load_params
    from pipeline.evaluation.scoring import STORED_PRECISIONS, scored_split, similarity_scores

    model = SentenceTransformer(str(tiny_model_dir))
    scored = scored_split("sts", "test", load_params())
    scores = similarity_scores(model, scored, dims=[16], precisions=STORED_PRECISIONS)
    assert sorted(scores.precision) == ["binary", "int8"] and list(scores.dims) == [16]
    for kind in STORED_PRECISIONS:
        own = EmbeddingSimilarityEvaluator(scored["sentence1"].tolist(), scored["sentence2"].tolist(),
                                           scored["score"].tolist(), similarity_fn_names=["cosine"], name="x",
                                           precision=kind)(model)
        assert scores.precision[kind]["spearman_cosine"] == pytest.approx(own["x_spearman_cosine"], abs=1e-6), kind
        assert -1 <= scores.precision[kind]["spearman_cosine"] <= 1
    assert scores.similarity == similarity_scores(model, scored).similarity  # float32 unchanged beside them
    baseline_test = BaselineScores.read(sts_project / paths.baseline_scores("sts", "tiny")).test
    assert set(baseline_test.precision) == set(STORED_PRECISIONS)  # the base model too, for the card
    assert "test_int8_spearman_cosine" in baseline_test.flat("test")  # MLflow's name for it


def test_retrieval_is_scored_at_stored_precisions_too(workdir: Path, tiny_model_dir: Path) -> None:
    # InformationRetrievalEvaluator has no `precision`: the corpus and queries are quantized the same way
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    from pipeline.core.loading import load_params
    from pipeline.data.splitting import read_split
    from pipeline.evaluation.evaluators import retrieval_evaluators
    from pipeline.evaluation.scoring import STORED_PRECISIONS, read_for_scoring, score_split

    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_model_dir, ["products"], ["mnrl"])))
    for stage in (ingest, split):
        stage.main(["--dataset", "products"])
    model = SentenceTransformer(str(tiny_model_dir))
    scores = score_split(model, read_for_scoring("products", "test", load_params()), precisions=STORED_PRECISIONS)
    assert sorted(scores.precision_retrieval) == ["binary", "int8"]
    for metrics in (scores.retrieval, *scores.precision_retrieval.values()):
        assert 0 <= metrics["cosine_ndcg@10"] <= 1 and 0 <= metrics["cosine_recall@10"] <= 1
    frame, shape = read_split("products", "test")
    plain = retrieval_evaluators(frame, shape, "p")[0]  # the shared-encode subclass, at float32 ...
    library = InformationRetrievalEvaluator(dict(zip(plain.queries_ids, plain.queries)),
                                            dict(zip(plain.corpus_ids, plain.corpus)), plain.relevant_docs,
                                            mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 10],
                                            precision_recall_at_k=[1, 10], map_at_k=[10], name="p_retrieval",
                                            write_csv=False)
    ours, theirs = plain(model), library(model)  # ... scores exactly as the library's own evaluator
    assert ours["p_retrieval_cosine_ndcg@10"] == pytest.approx(theirs["p_retrieval_cosine_ndcg@10"], abs=1e-9)
    assert "test_int8_retrieval_cosine_ndcg@10" in scores.flat("test")



def test_similarity_and_retrieval_of_one_split_embed_each_text_once(workdir: Path, tiny_model_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # a pair split is scored by similarity (adapted to scored pairs: each anchor with its positive and a sampled
    # negative, both passages of the split) and by retrieval at every stored precision, from one encode of each text
    from sentence_transformers import SentenceTransformer

    from pipeline.core.loading import load_params
    from pipeline.data.splitting import read_split
    from pipeline.evaluation.scoring import STORED_PRECISIONS, read_for_scoring, score_split, scored_split, similarity_scores
    from tests.conftest import count_encodes

    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_model_dir, ["docstrings"], ["mnrl"])))
    for stage in (ingest, split):
        stage.main(["--dataset", "docstrings"])
    model, params = SentenceTransformer(str(tiny_model_dir)), load_params()
    frame, _ = read_split("docstrings", "test")
    alone = similarity_scores(model, scored_split("docstrings", "test", params), precisions=STORED_PRECISIONS)
    embedded = count_encodes(monkeypatch)
    scores = score_split(model, read_for_scoring("docstrings", "test", params), precisions=STORED_PRECISIONS)
    assert set(embedded) == set(frame["anchor"]) | set(frame["positive"]) and set(embedded.values()) == {1}
    assert scores.retrieval and sorted(scores.precision_retrieval) == ["binary", "int8"]
    assert scores.similarity == pytest.approx(alone.similarity, abs=1e-5)  # the shared embeddings score the same
    for kind, metrics in alone.precision.items():
        assert scores.precision[kind] == pytest.approx(metrics, abs=1e-5)


def test_a_triplet_split_embeds_each_text_once_and_scores_triplets_as_the_library_does(
        workdir: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # similarity, retrieval and triplet accuracy of one triplet split share one encode of each anchor, positive and
    # negative; the triplet accuracy from those embeddings is the library's TripletEvaluator encoding them itself
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import TripletEvaluator

    from pipeline.core.loading import load_params
    from pipeline.data.splitting import read_split
    from pipeline.evaluation.scoring import read_for_scoring, score_split
    from tests.conftest import count_encodes

    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_model_dir, ["products"], ["mnrl"])))
    for stage in (ingest, split):
        stage.main(["--dataset", "products"])
    model = SentenceTransformer(str(tiny_model_dir))
    frame, shape = read_split("products", "test")
    assert shape == "triplets"
    embedded = count_encodes(monkeypatch)
    scores = score_split(model, read_for_scoring("products", "test", load_params()))
    assert set(embedded) == set(frame["anchor"]) | set(frame["positive"]) | set(frame["negative"])
    assert set(embedded.values()) == {1}
    library = TripletEvaluator(frame["anchor"].tolist(), frame["positive"].tolist(), frame["negative"].tolist(),
                               name="t", write_csv=False, similarity_fn_names=["cosine"])(model)
    assert 0 < scores.triplet["cosine_accuracy"] < 1
    assert scores.triplet["cosine_accuracy"] == pytest.approx(library["t_cosine_accuracy"], abs=1e-9)


def test_retrieval_scores_the_same_in_chunks_sized_to_the_memory_bound(workdir: Path, tiny_model_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # the score matrices are bounded by scoring the corpus in chunks; the library ranks ties (binary embeddings
    # tie often) by corpus id, so every metric at every precision is the same as in one chunk
    from sentence_transformers import SentenceTransformer

    from pipeline.data.splitting import read_split
    from pipeline.evaluation import evaluators

    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_model_dir, ["products"], ["mnrl"])))
    for stage in (ingest, split):
        stage.main(["--dataset", "products"])
    model = SentenceTransformer(str(tiny_model_dir))
    frame, shape = read_split("products", "test")
    whole = evaluators.retrieval_evaluators(frame, shape, "p", ("int8", "binary"))[:3]
    queries, passages = len(whole[0].queries), len(whole[0].corpus)
    assert {e.corpus_chunk_size for e in whole} == {evaluators.LIBRARY_CHUNK}  # small splits: the library's default
    monkeypatch.setattr(evaluators, "SCORE_BYTES", evaluators.BYTES_PER_SCORE * queries * 7)  # room for 7 passages
    chunked = evaluators.retrieval_evaluators(frame, shape, "p", ("int8", "binary"))[:3]
    assert {e.corpus_chunk_size for e in chunked} == {7} and passages > 7 * 3
    for one, many in zip(whole, chunked):
        assert many(model) == one(model), one.name
    # the bound itself: one chunk's matrices within SCORE_BYTES for any number of queries
    for count in (1, 255, 10_000, 54_000, 10**6):
        chunk = evaluators.corpus_chunk_size(count)
        assert chunk >= 1 and (chunk == 1 or chunk * count * evaluators.BYTES_PER_SCORE <= evaluators.SCORE_BYTES)


def test_a_split_with_more_queries_than_max_queries_searches_every_passage_with_a_seeded_sample(
        workdir: Path, tiny_model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    from pipeline.core.loading import load_params
    from pipeline.data.splitting import read_split
    from pipeline.evaluation.evaluators import retrieval_evaluators, sampled_search
    from pipeline.evaluation.scoring import read_for_scoring, score_split

    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_model_dir, ["docstrings"], ["mnrl"])))
    for stage in (ingest, split):
        stage.main(["--dataset", "docstrings"])
    frame, shape = read_split("docstrings", "test")
    everything = retrieval_evaluators(frame, shape, "d")[0]
    total = len(everything.queries)
    assert total > 5 and everything.queries_total == total and sampled_search(everything, "test") is None
    sample = retrieval_evaluators(frame, shape, "d", max_queries=5, seed=1)[0]
    assert len(sample.queries) == 5 and sample.queries_total == total
    assert sample.corpus == everything.corpus  # every passage is still searched
    assert set(sample.queries) <= set(everything.queries)
    assert all(sample.relevant_docs[qid] == everything.relevant_docs[qid] for qid in sample.queries_ids)
    assert retrieval_evaluators(frame, shape, "d", max_queries=5, seed=1)[0].queries == sample.queries  # seeded
    assert {tuple(retrieval_evaluators(frame, shape, "d", max_queries=5, seed=s)[0].queries) for s in range(5)} != {
        tuple(sample.queries)}
    assert sampled_search(sample, "test") == (f"Retrieval on the test split: a seeded sample of 5 of its {total} "
                                               f"queries, each searching all {len(everything.corpus)} passages "
                                               f"(`evaluation.max_queries`).")
    # what the stages score: evaluation.max_queries and the params' seed, as the library scores those queries
    params = load_params().model_copy(update={"evaluation": load_params().evaluation.model_copy(update={"max_queries": 5})})
    model = SentenceTransformer(str(tiny_model_dir))
    scores = score_split(model, read_for_scoring("docstrings", "test", params))
    chosen = retrieval_evaluators(frame, shape, "d", max_queries=5, seed=params.seed)[0]
    library = InformationRetrievalEvaluator(dict(zip(chosen.queries_ids, chosen.queries)),
                                            dict(zip(chosen.corpus_ids, chosen.corpus)), chosen.relevant_docs,
                                            mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 10],
                                            precision_recall_at_k=[1, 10, 100], map_at_k=[10], name="l", write_csv=False)
    assert scores.retrieval["cosine_ndcg@10"] == pytest.approx(library(model)["l_cosine_ndcg@10"], abs=1e-9)
    assert scores.retrieval != score_split(model, read_for_scoring("docstrings", "test", load_params())).retrieval


def test_validation_passes_search_every_relevant_passage_and_a_seeded_sample_of_the_others(
        workdir: Path, tiny_model_dir: Path) -> None:
    # train.validation_passages: a validation pass during training searches at most that many passages; every
    # query's answers stay among them (else its NDCG@10 would be 0 for a reason that is not the model's)
    from pipeline.data.splitting import read_split
    from pipeline.evaluation.evaluators import retrieval_evaluators, sampled_search

    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_model_dir, ["products"], ["mnrl"], rows=200)))
    for stage in (ingest, split):
        stage.main(["--dataset", "products"])
    frame, shape = read_split("products", "test")  # triplets: positives and negatives are the passages
    whole = retrieval_evaluators(frame, shape, "v")[0]
    total, relevant = len(whole.corpus), set().union(*whole.relevant_docs.values())
    assert total > len(relevant) + 10 and whole.passages_total == total
    cut = retrieval_evaluators(frame, shape, "v", seed=3, max_passages=len(relevant) + 10)[0]
    assert len(cut.corpus) == len(relevant) + 10 and cut.passages_total == total
    assert relevant <= set(cut.corpus_ids) and set(cut.corpus_ids) <= set(whole.corpus_ids)
    assert cut.queries == whole.queries and cut.relevant_docs == whole.relevant_docs
    assert [d for d in whole.corpus_ids if d in set(cut.corpus_ids)] == cut.corpus_ids  # in the split's order
    again = retrieval_evaluators(frame, shape, "v", seed=3, max_passages=len(relevant) + 10)[0]
    assert again.corpus_ids == cut.corpus_ids  # seeded
    assert {tuple(retrieval_evaluators(frame, shape, "v", seed=s, max_passages=len(relevant) + 10)[0].corpus_ids)
            for s in range(5)} != {tuple(cut.corpus_ids)}
    # fewer than the relevant ones: those all the same; at or over the corpus: everything, nothing said
    assert set(retrieval_evaluators(frame, shape, "v", max_passages=1)[0].corpus_ids) == relevant
    assert retrieval_evaluators(frame, shape, "v", max_passages=total)[0].corpus_ids == whole.corpus_ids
    assert sampled_search(retrieval_evaluators(frame, shape, "v", max_passages=total)[0], "validation") is None
    assert sampled_search(cut, "validation", " during training") == (
        f"Retrieval on the validation split during training: its {len(whole.queries)} queries, each searching "
        f"{len(relevant) + 10} of the {total} passages (the queries' relevant ones and a seeded sample of the "
        f"others; `train.validation_passages`).")
    both = retrieval_evaluators(frame, shape, "v", max_queries=3, max_passages=len(relevant))[0]
    assert len(both.queries) == 3 and set(both.corpus_ids) >= set().union(*both.relevant_docs.values())
    assert sampled_search(both, "validation").endswith(
        "(the queries' relevant ones and a seeded sample of the others; `evaluation.max_queries`, "
        "`train.validation_passages`).")


def mnrl_card(workdir: Path, params: dict, dataset: str) -> str:
    """Write `params`, prepare `dataset` and run its tiny x mnrl cell through train, evaluate and card; its card."""
    from pipeline import card, train

    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    prepare_set(dataset)
    cell = ["--dataset", dataset, "--base", "tiny", "--loss", "mnrl"]
    for stage in (train, evaluate, card):
        stage.main(cell)
    return (workdir / paths.card(dataset, "tiny", "mnrl")).read_text()


def test_a_sampled_retrieval_is_stated_on_the_card(workdir: Path, tiny_model_dir: Path) -> None:
    # validation chooses by NDCG@10 on a sample of the validation queries, test retrieval is scored on a sample:
    # the card says both, with the numbers
    params = tiny_params(tiny_model_dir, ["docstrings"], ["mnrl"], rows=120)
    params["evaluation"] = {"max_queries": 4}
    params["train"]["select_metric"] = "ndcg@10"
    text = mnrl_card(workdir, params, "docstrings")
    validation, test = (pd.read_parquet(paths.split_file("docstrings", part)) for part in ("validation", "test"))
    assert (f"- Retrieval on the validation split during training: a seeded sample of 4 of its "
            f"{validation['anchor'].nunique()} queries, "
            f"each searching all {validation['positive'].nunique()} passages (`evaluation.max_queries`).") in text
    assert (f"* Retrieval on the test split: a seeded sample of 4 of its {test['anchor'].nunique()} queries, "
            f"each searching all {test['positive'].nunique()} passages (`evaluation.max_queries`).") in text
    # the kept weights' validation NDCG@10 in training is the one evaluate scores them with: the same queries
    from pipeline.core.handoffs import EvalResult, TrainFacts

    kept = TrainFacts.read(paths.train_facts("docstrings", "tiny", "mnrl")).selection.kept_value
    scored = EvalResult.read(paths.eval_result("docstrings", "tiny", "mnrl")).validation.tuned.retrieval["cosine_ndcg@10"]
    assert kept == pytest.approx(scored, abs=1e-6)


def test_a_cell_whose_validation_passes_searched_part_of_the_passages_is_ranked_by_evaluates_whole_search(
        workdir: Path, tiny_model_dir: Path) -> None:
    # train.validation_passages below the split's passages: the card says what a pass searched, and the
    # leaderboard ranks the cell by evaluate's validation NDCG@10 over every passage, not by training's (which
    # searched fewer, so it scores higher and is not on the untuned model's scale)
    from pipeline.core.handoffs import EvalResult, TrainFacts
    from pipeline.core.loading import load_params
    from pipeline.evaluation.leaderboard import read_board

    params = tiny_params(tiny_model_dir, ["products"], ["mnrl"], rows=120)
    params["train"].update({"select_metric": "ndcg@10", "validation_passages": 3})
    params["report"]["metric"] = "ndcg@10"
    text = mnrl_card(workdir, params, "products")
    validation = pd.read_parquet(paths.split_file("products", "validation"))  # triplets: negatives are passages too
    queries, answers = validation["anchor"].nunique(), validation["positive"].nunique()
    passages = len(set(validation["positive"]) | set(validation["negative"]))
    assert passages > answers > 3  # a pass searches the answers alone: more than 3, fewer than all
    assert (f"- Retrieval on the validation split during training: its {queries} queries, each searching {answers} of "
            f"the {passages} passages (the queries' relevant ones and a seeded sample of the others; "
            f"`train.validation_passages`).") in text
    selection = TrainFacts.read(paths.train_facts("products", "tiny", "mnrl")).selection
    whole = EvalResult.read(paths.eval_result("products", "tiny", "mnrl")).validation.tuned.retrieval["cosine_ndcg@10"]
    assert selection.partial_search and selection.metric == "ndcg@10" and selection.kept_value != pytest.approx(whole)
    assert read_board(load_params()).cell("products", "tiny", "mnrl").validation == whole
    # MLflow: the chooser's curve has no step-0 point of the untuned model (it searched every passage) and
    # the run says what the curve searched
    import mlflow

    from pipeline.core.handoffs import RunRef

    run = RunRef.read(paths.mlflow_run("products", "tiny", "mnrl")).run_id
    curve = {m.step for m in mlflow.MlflowClient().get_metric_history(run, "eval_validation_retrieval_cosine_ndcg_10")}
    assert curve and 0 not in curve
    assert 0 in {m.step for m in mlflow.MlflowClient().get_metric_history(run, "eval_validation_spearman_cosine")}
    assert mlflow.MlflowClient().get_run(run).data.tags["validation_search"].startswith(
        "Retrieval on the validation split during training: its ")


def test_a_retrieval_evaluator_called_again_scores_the_model_it_is_given(workdir: Path, tiny_model_dir: Path,
                                                                        other_tiny_model_dir: Path) -> None:
    # the trainer calls one validation evaluator at every pass, with that step's weights: the embeddings it cached
    # for the last call must not stand in for the next model's (they did: a validation NDCG@10 that never moved)
    from sentence_transformers import SentenceTransformer

    from pipeline.data.splitting import read_split
    from pipeline.evaluation.evaluators import retrieval_evaluators

    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_model_dir, ["products"], ["mnrl"])))
    for stage in (ingest, split):
        stage.main(["--dataset", "products"])
    frame, shape = read_split("products", "test")
    first, second = SentenceTransformer(str(tiny_model_dir)), SentenceTransformer(str(other_tiny_model_dir))
    reused = retrieval_evaluators(frame, shape, "v", ("int8",))
    assert [e.name for e in reused] == ["v_retrieval", "v_int8_retrieval", "v_triplet"]
    for index, evaluator in enumerate(reused):
        before = evaluator(first)
        after = evaluator(second)
        assert after == retrieval_evaluators(frame, shape, "v", ("int8",))[index](second), evaluator.name
        assert after != before, evaluator.name
