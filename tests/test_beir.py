"""Retrieval sets in BEIR's layout (corpus.jsonl, queries.jsonl, qrels/<split>.tsv): read as the dataset's own
splits (an eval set: its test judgements), pairs or graded scored pairs, trained and scored like any set; every
problem with the folder is one line naming the file and line."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from pipeline import baseline, card, evaluate, ingest, publish, report, split, train
from pipeline.core import paths
from pipeline.core.handoffs import (
    BaselineScores,
    EvalResult,
    IngestReport,
    PublishRecord,
    RunRef,
    SplitReport,
    TrainFacts,
    Winner,
)
from pipeline.core.loading import load_params
from pipeline.data.splitting import read_split
from tests.conftest import BASE, ROOT, count_encodes, prepare_set, tiny_params
from tests.test_bad_inputs import expect_one_line_exit

TOPICS = ["cats", "rivers", "bread", "engines", "violins", "glaciers", "tax law", "beetles", "comets", "chess"]


def write_beir(folder: Path, qrels: dict[str, list[tuple[str, str, int]]], corpus_lines: list[dict] | None = None) -> Path:
    """A BEIR folder: 30 passages (three per topic, some only distractors), 20 queries, the given judgements."""
    (folder / "qrels").mkdir(parents=True)
    corpus = corpus_lines if corpus_lines is not None else [
        {"_id": f"d{i}", "title": f"On {TOPICS[i % 10]}", "text": f"passage {i}: facts number {i} about {TOPICS[i % 10]}"}
        for i in range(30)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(line) + "\n" for line in corpus))
    queries = [{"_id": f"q{i}", "text": f"question {i}: what about {TOPICS[i % 10]}?"} for i in range(20)]
    (folder / "queries.jsonl").write_text("".join(json.dumps(line) + "\n" for line in queries))
    for name, lines in qrels.items():
        body = "".join(f"{q}\t{d}\t{grade}\n" for q, d, grade in lines)
        (folder / "qrels" / f"{name}.tsv").write_text("query-id\tcorpus-id\tscore\n" + body)
    return folder


def binary_qrels() -> dict[str, list[tuple[str, str, int]]]:
    """Each query answered by the passage of its topic with its own number, train q0-q13, test q14-q19."""
    return {"train": [(f"q{i}", f"d{i}", 1) for i in range(14)], "test": [(f"q{i}", f"d{i}", 1) for i in range(14, 20)]}


def beir_project(workdir: Path, tiny_model_dir: Path, folder_qrels: dict, as_eval_set: bool = False) -> dict:
    write_beir(workdir / "data/raw/search", folder_qrels)
    params = tiny_params(tiny_model_dir, ["sts"], ["mnrl"])
    params["run"]["datasets"] = ["sts"] if as_eval_set else ["search"]
    section = "eval_sets" if as_eval_set else "datasets"
    params.setdefault(section, {})["search"] = {"source": "data/raw/search", "name": "Tiny search"}
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    return params


def test_a_beir_folder_reads_as_its_own_splits_of_query_passage_pairs(workdir: Path, tiny_model_dir: Path) -> None:
    beir_project(workdir, tiny_model_dir, binary_qrels())
    ingest.main(["--dataset", "search"])
    report = IngestReport.read(paths.ingest_report("search"))
    assert report.shape == "pairs" and set(report.parts) == {"train", "test"}
    assert report.parts["train"].rows_out == 14 and report.parts["test"].rows_out == 6
    split.main(["--dataset", "search"])
    assert SplitReport.read(paths.split_report("search")).rule == "given_carved"  # no dev.tsv: validation carved
    test, shape = read_split("search", "test")
    assert shape == "pairs" and test.iloc[0].tolist() == ["question 14: what about violins?",
                                                          "On violins passage 14: facts number 14 about violins"]


def test_a_beir_dataset_trains_and_is_scored(workdir: Path, tiny_model_dir: Path) -> None:
    beir_project(workdir, tiny_model_dir, binary_qrels())
    prepare_set("search")
    train.main(["--dataset", "search", "--base", BASE, "--loss", "mnrl"])
    evaluate.main(["--dataset", "search", "--base", BASE, "--loss", "mnrl"])
    card.main(["--dataset", "search", "--base", BASE, "--loss", "mnrl"])
    report.main([])
    result = EvalResult.read(paths.eval_result("search", BASE, "mnrl"))
    assert -1 <= result.test.tuned.spearman <= 1
    ndcg, base_ndcg = result.test.tuned.retrieval["cosine_ndcg@10"], result.test.base.retrieval["cosine_ndcg@10"]
    assert 0 <= ndcg <= 1 and 0 <= base_ndcg <= 1
    board = paths.LEADERBOARD_MD.read_text()
    table = board[board.index("## Retrieval"):board.index("## Transfer")]
    assert f"| {BASE} (untuned) | {base_ndcg:.4f} |" in table
    assert f"| search / {BASE} / mnrl | • {ndcg:.4f} ({ndcg - base_ndcg:+.4f}" in table
    text = paths.card("search", BASE, "mnrl").read_text()  # the card's model-index: the Hub shows it
    assert f"value: {ndcg}" in text and "type: cosine_ndcg@10" in text
    run = mlflow.MlflowClient().get_run(RunRef.read(paths.mlflow_run("search", BASE, "mnrl")).run_id)
    assert run.data.metrics["test_retrieval_cosine_ndcg_at_10"] == pytest.approx(ndcg)


def test_a_beir_dataset_keeps_the_checkpoint_with_the_best_validation_ndcg(workdir: Path, tiny_model_dir: Path) -> None:
    # train.select_metric: auto follows report.metric: NDCG@10 for a BEIR set, over the validation queries
    # searching the whole corpus, the same evaluation evaluate gives the saved model
    from pipeline.core.handoffs import TrainMetrics

    beir_project(workdir, tiny_model_dir, binary_qrels())
    prepare_set("search")
    train.main(["--dataset", "search", "--base", BASE, "--loss", "mnrl"])
    evaluate.main(["--dataset", "search", "--base", BASE, "--loss", "mnrl"])
    facts = TrainFacts.read(paths.train_facts("search", BASE, "mnrl"))
    kept, metrics = facts.selection, TrainMetrics.read(paths.train_metrics("search", BASE, "mnrl"))
    assert kept.metric == metrics.metric == "ndcg@10" and kept.evaluations == 2
    run = RunRef.read(paths.mlflow_run("search", BASE, "mnrl")).run_id
    client = mlflow.MlflowClient()
    curve = {m.step: m.value for m in client.get_metric_history(run, "eval_validation_retrieval_cosine_ndcg_10")}
    base = BaselineScores.read(paths.baseline_scores("search", BASE)).validation
    assert curve[0] == pytest.approx(base.value("ndcg@10")) and set(curve) == {0, 2, 4}  # step 0: the base model
    assert kept.kept_value == metrics.best_validation == max(curve[2], curve[4]) == curve[kept.kept_step]
    assert len(client.get_metric_history(run, "eval_validation_spearman_cosine")) == 3  # Spearman's curve stays
    # the saved model, scored by evaluate, is the one training chose
    assert EvalResult.read(paths.eval_result("search", BASE, "mnrl")).validation.tuned.value("ndcg@10") == \
        pytest.approx(kept.kept_value, abs=1e-6)
    assert client.get_run(run).data.tags["select_metric"] == "ndcg@10"
    assert client.get_run(run).data.metrics["kept_validation_ndcg_at_10"] == kept.kept_value
    assert f"the best validation NDCG@10 ({kept.kept_value:.4f}) of 2 evaluations" in kept.statement
    assert kept.statement in " ".join(facts.recipe)


@pytest.mark.parametrize("dataset, asked, chosen", [("search", "spearman", "spearman"), ("sts", "ndcg@10", "spearman"),
                                                    ("search", "mrr@10", "mrr@10")])
def test_train_select_metric_names_what_chooses_and_a_set_without_it_goes_by_spearman(
        dataset: str, asked: str, chosen: str, workdir: Path, tiny_model_dir: Path) -> None:
    params = beir_project(workdir, tiny_model_dir, binary_qrels())
    params["run"]["datasets"] = [dataset]
    params["train"]["select_metric"] = asked
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    prepare_set(dataset)
    train.main(["--dataset", dataset, "--base", BASE, "--loss", "mnrl"])
    kept = TrainFacts.read(paths.train_facts(dataset, BASE, "mnrl")).selection
    family = {"spearman": "", "mrr@10": "retrieval_cosine_"}[chosen]
    key = f"eval_validation_{family}{'spearman_cosine' if chosen == 'spearman' else 'mrr_10'}"
    run = RunRef.read(paths.mlflow_run(dataset, BASE, "mnrl")).run_id
    curve = {m.step: m.value for m in mlflow.MlflowClient().get_metric_history(run, key)}
    assert kept.metric == chosen and kept.kept_value == curve[kept.kept_step]


def test_an_unknown_select_metric_is_one_line(workdir: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    params = beir_project(workdir, tiny_model_dir, binary_qrels())
    params["train"]["select_metric"] = "ndcg@5"
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    line = expect_one_line_exit(capsys, lambda: ingest.main(["--dataset", "search"]))
    assert "train.select_metric" in line and "unknown metric 'ndcg@5'; valid: auto, spearman" in line, line


def test_baseline_and_evaluate_embed_a_beir_corpus_once_for_test_and_validation(workdir: Path, tiny_model_dir: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    beir_project(workdir, tiny_model_dir, binary_qrels())
    ingest.main(["--dataset", "search"])
    split.main(["--dataset", "search"])
    judged = {text for part in ("train", "validation", "test") for text in read_split("search", part)[0]["positive"]}
    unjudged = set(pd.read_parquet(paths.test_corpus("search"))["text"]) - judged  # searched for, never a pair's text
    embedded = count_encodes(monkeypatch)
    baseline.main(["--dataset", "search", "--base", BASE])  # scores test and validation, both searching the corpus
    assert len(unjudged) == 10 and {text: embedded[text] for text in unjudged} == dict.fromkeys(unjudged, 1)
    train.main(["--dataset", "search", "--base", BASE, "--loss", "mnrl"])
    embedded.clear()
    evaluate.main(["--dataset", "search", "--base", BASE, "--loss", "mnrl"])
    assert {text: embedded[text] for text in unjudged} == dict.fromkeys(unjudged, 1)
    result = EvalResult.read(paths.eval_result("search", BASE, "mnrl"))
    assert result.validation.tuned.value("ndcg@10") == pytest.approx(
        TrainFacts.read(paths.train_facts("search", BASE, "mnrl")).selection.kept_value, abs=1e-6)


def write_hub_beir(folder: Path, qrels: dict[str, list[tuple[str, str, int]]], corpus_ids: range = range(30)) -> Path:
    """The same set as write_beir, laid out as a BEIR dataset on the Hugging Face Hub (MTEB's layout: parquet
    files, configs corpus / queries / default named in the dataset card), loadable by its local path."""
    (folder / "qrels").mkdir(parents=True)
    pd.DataFrame([{"_id": f"d{i}", "title": f"On {TOPICS[i % 10]}", "text": f"passage {i}: facts number {i} about "
                   f"{TOPICS[i % 10]}"} for i in corpus_ids]).to_parquet(folder / "corpus.parquet")
    pd.DataFrame([{"_id": f"q{i}", "text": f"question {i}: what about {TOPICS[i % 10]}?"} for i in range(20)]).to_parquet(
        folder / "queries.parquet")
    for name, lines in qrels.items():
        pd.DataFrame(lines, columns=["query-id", "corpus-id", "score"]).to_parquet(folder / "qrels" / f"{name}.parquet")
    configs = [{"config_name": "corpus", "data_files": [{"split": "corpus", "path": "corpus.parquet"}]},
               {"config_name": "queries", "data_files": [{"split": "queries", "path": "queries.parquet"}]},
               {"config_name": "default", "data_files": [{"split": name, "path": f"qrels/{name}.parquet"} for name in qrels]}]
    (folder / "README.md").write_text("---\n" + yaml.safe_dump({"configs": configs}) + "---\n")
    return folder


def test_a_beir_set_on_the_hub_reads_as_the_same_folder_would(workdir: Path, tiny_model_dir: Path) -> None:
    qrels = {**binary_qrels(), "dev": [("q12", "d12", 1), ("q13", "d13", 1)]}
    qrels["train"] = qrels["train"][:12]
    hub = write_hub_beir(workdir / "hub" / "search", qrels)
    write_beir(workdir / "data/raw/search", qrels)
    params = tiny_params(tiny_model_dir, ["search"], ["mnrl"])
    params["datasets"] = {"search": {"source": "data/raw/search"}, "hub": {"source": f"hf:{hub}"}}
    params["eval_sets"] = {"hub_test": {"source": f"hf:{hub}"}}
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    for name in ("search", "hub", "hub_test"):
        ingest.main(["--dataset", name])
    folder, from_hub = pd.read_parquet(paths.ingested("search")), pd.read_parquet(paths.ingested("hub"))
    assert IngestReport.read(paths.ingest_report("hub")).parts.keys() == {"train", "validation", "test"}
    assert from_hub.drop(columns="split").equals(folder.drop(columns="split")) and (from_hub["split"] == folder["split"]).all()
    assert pd.read_parquet(paths.ingested_corpus("hub")).equals(pd.read_parquet(paths.ingested_corpus("search")))
    assert len(pd.read_parquet(paths.ingested_corpus("hub"))) == 30  # every passage, judged or not
    held_out = pd.read_parquet(paths.ingested("hub_test"))  # an eval set: the test judgements alone
    assert held_out["anchor"].tolist() == folder.loc[folder["split"] == "test", "anchor"].tolist()


@pytest.mark.parametrize("case, expected", [
    ("unknown passage", r"source 'hf:.*hub': judgements test row 2: corpus-id 'd99' is not in hf:.*hub corpus"),
    ("no test judgements", r"source 'hf:.*hub': a BEIR set as a dataset needs train and test judgements .*its splits: train"),
])
def test_a_bad_beir_set_on_the_hub_is_one_line(case: str, expected: str, workdir: Path, tiny_model_dir: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    qrels = binary_qrels()
    if case == "unknown passage":
        qrels["test"] = [("q14", "d14", 1), ("q15", "d99", 1)]
    else:
        del qrels["test"]
    hub = write_hub_beir(workdir / "hub", qrels)
    params = tiny_params(tiny_model_dir, ["search"], ["mnrl"])
    params["datasets"] = {"search": {"source": f"hf:{hub}"}}
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    line = expect_one_line_exit(capsys, lambda: ingest.main(["--dataset", "search"]))
    assert re.search(expected, line), line
    assert not (workdir / paths.ingested("search")).exists()


def ndcg_at_10(model, queries: list[str], answers: list[set[str]], corpus: list[str]) -> float:
    """NDCG@10 with binary gains, by hand: each query's passages ranked by cosine similarity."""
    import numpy as np

    q = model.encode(queries, normalize_embeddings=True)
    d = model.encode(corpus, normalize_embeddings=True)
    values = []
    for row, relevant in zip(q @ d.T, answers):
        ranked = [corpus[i] for i in np.argsort(-row)[:10]]
        dcg = sum(1 / np.log2(rank + 2) for rank, text in enumerate(ranked) if text in relevant)
        values.append(dcg / sum(1 / np.log2(rank + 2) for rank in range(min(len(relevant), 10))))
    return float(np.mean(values))


def test_queries_are_searched_among_the_whole_corpus(workdir: Path, tiny_model_dir: Path) -> None:
    from pipeline.core.loading import load_params
    from pipeline.core.models import load_base_model

    beir_project(workdir, tiny_model_dir, binary_qrels())
    prepare_set("search")
    test, _ = read_split("search", "test")
    corpus = pd.read_parquet(paths.test_corpus("search"))["text"].tolist()
    assert len(corpus) == 30  # every passage, the 24 nobody asked for at test time included
    model = load_base_model(load_params(), BASE)
    queries, answers = test["anchor"].tolist(), [{text} for text in test["positive"]]
    whole = ndcg_at_10(model, queries, answers, corpus)
    retrieval = BaselineScores.read(paths.baseline_scores("search", BASE)).test.retrieval
    assert retrieval["cosine_ndcg@10"] == pytest.approx(whole, abs=1e-6)
    assert whole != pytest.approx(ndcg_at_10(model, queries, answers, test["positive"].tolist()), abs=1e-6)
    assert retrieval["cosine_recall@100"] == 1.0 and 0 <= retrieval["cosine_recall@10"] <= 1


def test_graded_judgements_keep_their_grade_as_a_score(workdir: Path, tiny_model_dir: Path) -> None:
    qrels = binary_qrels()
    qrels["train"] += [(f"q{i}", f"d{i + 10}", 2) for i in range(4)] + [("q5", "d7", 0)]
    qrels["test"] += [("q14", "d24", 2), ("q15", "d3", 0)]
    qrels["dev"] = [("q12", "d22", 2), ("q13", "d13", 1), ("q12", "d1", 0)]  # dev.tsv: the validation split
    beir_project(workdir, tiny_model_dir, qrels)
    ingest.main(["--dataset", "search"])
    frame = pd.read_parquet(paths.ingested("search"))
    assert IngestReport.read(paths.ingest_report("search")).shape == "scored"
    assert sorted(set(frame["score"])) == [0.0, 0.5, 1.0]  # grade / the folder's highest grade
    split.main(["--dataset", "search"])
    baseline.main(["--dataset", "search", "--base", BASE])  # scored pairs, searched among the corpus all the same
    retrieval = BaselineScores.read(paths.baseline_scores("search", BASE)).test.retrieval
    assert 0 <= retrieval["cosine_ndcg@10"] <= 1 and retrieval["cosine_recall@100"] == 1.0


def test_a_beir_eval_set_is_its_test_judgements_whole(workdir: Path, tiny_model_dir: Path) -> None:
    beir_project(workdir, tiny_model_dir, binary_qrels(), as_eval_set=True)
    ingest.main(["--dataset", "search"])
    assert IngestReport.read(paths.ingest_report("search")).source.rows_out == 6
    split.main(["--dataset", "search"])
    assert len(read_split("search", "test")[0]) == 6


BAD_FOLDERS = {
    "corpus line without _id": (lambda folder: write_beir(folder, binary_qrels(), [
        {"_id": "d0", "text": "zero"}, {"_id": "d1", "text": "one"}, {"title": "t", "text": "no id"}]),
        r"search/corpus.jsonl: line 3: no _id"),
    "qrels naming an unknown passage": (lambda folder: write_beir(folder, {
        "train": [("q0", "d0", 1)], "test": [("q14", "d14", 1), ("q15", "d99", 1)]}),
        r"search/qrels/test.tsv: line 3: corpus-id 'd99' is not in .*corpus.jsonl \(the query's answer must be"),
    "qrels naming an unknown query": (lambda folder: write_beir(folder, {
        "train": [("q0", "d0", 1), ("q77", "d1", 1)], "test": [("q14", "d14", 1)]}),
        r"search/qrels/train.tsv: line 3: query-id 'q77' is not in .*queries.jsonl"),
    "qrels line with two fields": (lambda folder: (write_beir(folder, binary_qrels()), (folder / "qrels/test.tsv").open(
        "a").write("q14\td14\n")), r"search/qrels/test.tsv: line 8: expected 3 tab-separated fields"),
    "no relevant judgement": (lambda folder: write_beir(folder, {"train": [("q0", "d0", 0)], "test": [("q14", "d14", 0)]}),
                              r"search/qrels: every judgement has grade 0 \(not relevant\): no query has an answer"),
    "no train judgements": (lambda folder: write_beir(folder, {"test": [("q14", "d14", 1)]}),
                            r"search: a BEIR folder as a dataset needs qrels/train.tsv and qrels/test.tsv .*found: test.tsv"),
}


@pytest.mark.parametrize("case", sorted(BAD_FOLDERS))
def test_a_bad_beir_folder_is_one_line_naming_file_and_line(case: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    make, expected = BAD_FOLDERS[case]
    folder = workdir / "data/raw/search"
    make(folder)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    params = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    params["datasets"]["search"] = {"source": "data/raw/search"}
    params["run"]["datasets"] = ["search"]
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    load_params()  # valid params: the folder is the problem
    line = expect_one_line_exit(capsys, lambda: ingest.main(["--dataset", "search"]))
    assert re.search(expected, line), line
    assert not (workdir / paths.ingested("search")).exists()
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before  # raw data never modified


def test_the_metric_that_matters_chooses_the_winner_and_the_card_and_registry_name_it(workdir: Path,
                                                                                   tiny_model_dir: Path) -> None:
    params = beir_project(workdir, tiny_model_dir, binary_qrels())
    params["run"]["losses"] = ["mnrl", "cosent"]
    params["train"]["select_metric"] = "spearman"  # kept weights by Spearman; the winner by report.metric
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    prepare_set("search")
    for loss in ("mnrl", "cosent"):
        train.main(["--dataset", "search", "--base", BASE, "--loss", loss])
        evaluate.main(["--dataset", "search", "--base", BASE, "--loss", loss])
    # constructed: mnrl best by validation Spearman, cosent best by validation NDCG@10
    for loss, spearman, ndcg in (("mnrl", 0.9, 0.1), ("cosent", 0.2, 0.8)):
        facts = TrainFacts.read(paths.train_facts("search", BASE, loss))
        facts.model_copy(update={"selection": facts.selection.model_copy(update={"kept_value": spearman})}).write(
            paths.train_facts("search", BASE, loss))
        result = EvalResult.read(paths.eval_result("search", BASE, loss))
        tuned = result.validation.tuned
        tuned = tuned.model_copy(update={"retrieval": {**tuned.retrieval, "cosine_ndcg@10": ndcg}})
        result.model_copy(update={"validation": result.validation.model_copy(update={"tuned": tuned})}).write(
            paths.eval_result("search", BASE, loss))

    report.main([])  # report.metric: auto -> NDCG@10, the queries of a BEIR set searching its corpus
    winner = Winner.read(paths.winner("search"))
    assert (winner.loss, winner.metric, winner.validation) == ("cosent", "ndcg@10", 0.8)
    assert "in the dataset's metric (of cosine similarity): NDCG@10 (search)." in paths.LEADERBOARD_MD.read_text()
    assert ("A set with more than 10,000 test queries is scored on a seeded sample of that many "
            "(`evaluation.max_queries`).") in paths.LEADERBOARD_MD.read_text()
    assert json.loads(paths.dataset_metrics("search").read_text())["metric"] == "ndcg@10"
    publish.main(["--dataset", "search"])
    card_text = (paths.publish_dir("search") / "README.md").read_text()
    assert "Chosen as the winner for search by validation NDCG@10 (`report.metric`) among 2 fine-tunes" in card_text
    record = PublishRecord.read(paths.publish_record("search"))
    version = mlflow.MlflowClient().get_model_version(record.registered_model, record.version)
    assert version.tags["chosen_by"] == "ndcg@10" and float(version.tags["validation_ndcg_at_10"]) == 0.8

    params["report"] = {"metric": "spearman"}
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    report.main([])
    winner = Winner.read(paths.winner("search"))
    assert (winner.loss, winner.metric, winner.validation) == ("mnrl", "spearman", 0.9)


def builtin_search_project(workdir: Path, tiny_model_dir: Path, entry: dict, as_eval_set: bool) -> None:
    params = tiny_params(tiny_model_dir, ["sts"], ["mnrl"])
    params["run"]["datasets"] = ["sts"] if as_eval_set else ["stdlib"]
    params["eval_sets" if as_eval_set else "datasets"]["stdlib"] = {"source": "builtin:docstring_search", **entry}
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))


def test_the_builtin_search_set_as_an_eval_set_searches_every_harvested_signature(workdir: Path,
                                                                                   tiny_model_dir: Path) -> None:
    from pipeline.data.builtin import docstring_search, docstring_search_corpus

    builtin_search_project(workdir, tiny_model_dir, {}, as_eval_set=True)
    prepare_set("stdlib")
    test, shape = read_split("stdlib", "test")
    held_out = docstring_search(1, 0, "test")
    assert shape == "pairs" and test["anchor"].tolist() == [row["anchor"] for row in held_out]
    corpus = pd.read_parquet(paths.test_corpus("stdlib"))["text"].tolist()
    assert corpus == docstring_search_corpus(None, 0) and len(corpus) > 4000
    assert SplitReport.read(paths.split_report("stdlib")).corpus == len(corpus)
    retrieval = BaselineScores.read(paths.baseline_scores("stdlib", BASE)).test.retrieval
    assert 0 <= retrieval["cosine_ndcg@10"] <= 1 and 0 <= retrieval["cosine_recall@100"] <= 1


def test_the_builtin_search_set_as_a_dataset_has_its_own_splits_and_a_sized_corpus(workdir: Path,
                                                                                    tiny_model_dir: Path) -> None:
    builtin_search_project(workdir, tiny_model_dir, {"rows": 50, "corpus": 600}, as_eval_set=False)
    ingest.main(["--dataset", "stdlib"])
    report = IngestReport.read(paths.ingest_report("stdlib"))
    assert set(report.parts) == {"train", "validation", "test"} and report.parts["train"].rows_out == 50
    split.main(["--dataset", "stdlib"])
    assert SplitReport.read(paths.split_report("stdlib")).corpus == 600
    answers = {text for part in ("validation", "test") for text in read_split("stdlib", part)[0]["positive"]}
    assert answers <= set(pd.read_parquet(paths.test_corpus("stdlib"))["text"])


@pytest.mark.parametrize("entry, expected", [
    ({"corpus": 100}, r"^error: params.yaml: eval_sets.stdlib.corpus = 100: a corpus of 100 cannot hold the \d+ answers"),
    ({"source": "builtin:docstring_pairs", "corpus": 100},
     r"^error: params.yaml: eval_sets.stdlib: corpus sizes builtin:docstring_search only"),
])
def test_a_builtin_search_corpus_that_cannot_be_is_one_line(entry: dict, expected: str, workdir: Path, tiny_model_dir: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    builtin_search_project(workdir, tiny_model_dir, entry, as_eval_set=True)
    line = expect_one_line_exit(capsys, lambda: ingest.main(["--dataset", "stdlib"]))
    assert re.search(expected, line), line
    assert not (workdir / paths.ingested("stdlib")).exists()
