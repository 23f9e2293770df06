"""Every stage run in-process on tiny data with the tiny model: every loss on every shape trains, is
evaluated against the base model on its own test split and on every other set (the other datasets and an
eval set), lands in MLflow with metric histories, gets a complete card, and the report compares them all."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import yaml

from pipeline import card, evaluate, report, train
from pipeline.core import paths
from pipeline.core.handoffs import BaselineScores, EvalResult, RunRef, SplitReport, TrainFacts
from tests.conftest import stage_project, tiny_params

DATASETS = ["docstrings", "products", "sts"]
LOSSES = ["mnrl", "triplet", "cosine", "cosent"]
EVAL_SET = "shop_zh"  # held out: only evaluated on (Chinese product search, a language no dataset trains on)
SETS = [*DATASETS, EVAL_SET]


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("stages")
    params = tiny_params(tiny_model_dir, DATASETS, LOSSES)
    params["eval_sets"] = {EVAL_SET: {"source": "builtin:product_triplets", "language": "zh", "rows": 40}}
    with stage_project(root, params, SETS):
        for dataset in DATASETS:
            for loss in LOSSES:
                train.main(["--dataset", dataset, "--base", "tiny", "--loss", loss])
                evaluate.main(["--dataset", dataset, "--base", "tiny", "--loss", loss])
        card.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
        card.main(["--dataset", "products", "--base", "tiny", "--loss", "triplet"])
        card.main(["--dataset", "docstrings", "--base", "tiny", "--loss", "cosent"])
        report.main([])
        yield root


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("loss", LOSSES)
def test_cell_outputs_and_mlflow_run(trained: Path, dataset: str, loss: str) -> None:
    result = EvalResult.read(trained / paths.eval_result(dataset, "tiny", loss)).flat()
    base = BaselineScores.read(trained / paths.baseline_scores(dataset, "tiny")).test.flat("test")
    assert -1 <= result["test_spearman_cosine"] <= 1
    assert result["base_test_spearman_cosine"] == base["test_spearman_cosine"]
    assert result["spearman_gain"] == pytest.approx(result["test_spearman_cosine"] - base["test_spearman_cosine"])
    assert (trained / paths.model_dir(dataset, "tiny", loss) / "model.safetensors").exists()

    run_id = RunRef.read(trained / paths.mlflow_run(dataset, "tiny", loss)).run_id
    client = mlflow.MlflowClient(f"sqlite:///{trained / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"{dataset}/tiny/{loss}"
    assert run.data.tags["dataset"] == dataset and run.data.tags["loss"] == loss and run.data.tags["base"] == "tiny"
    assert run.data.tags["base_model"] == "tiny-bert"  # a local directory shows as its name, never a path
    assert run.data.params["learning_rate"] and run.data.params["pipeline.loss_class"]
    losses = client.get_metric_history(run_id, "loss")
    assert len(losses) >= 3 and all(m.value == m.value for m in losses)  # one per logging step, not NaN
    assert len(client.get_metric_history(run_id, "eval_validation_spearman_cosine")) >= 2
    assert run.data.metrics["test_spearman_cosine"] == pytest.approx(result["test_spearman_cosine"])
    assert run.data.metrics["base_test_spearman_cosine"] == pytest.approx(base["test_spearman_cosine"])


def test_loss_and_validation_curves_written(trained: Path) -> None:
    loss_csv = (trained / paths.loss_curve("products", "tiny", "mnrl")).read_text().splitlines()
    val_csv = (trained / paths.val_curve("products", "tiny", "mnrl")).read_text().splitlines()
    assert loss_csv[0] == "step,epoch,loss" and len(loss_csv) >= 4
    assert val_csv[0] == "step,epoch,spearman" and len(val_csv) >= 3


SECTIONS = ["# tiny-bert fine-tuned on", "## Model Details", "### Model Description", "### Model Sources",
            "### Full Model Architecture", "## Usage", "### Direct Usage (Sentence Transformers)", "## Evaluation",
            "### Metrics", "## Training Details", "### Training Dataset", "### Training Hyperparameters",
            "#### Non-Default Hyperparameters", "#### All Hyperparameters", "### Training Logs",
            "### Framework Versions", "## Citation", "### BibTeX", "#### Sentence Transformers"]


def test_card_has_every_section_in_order_with_real_numbers(trained: Path) -> None:
    text = (trained / paths.card("sts", "tiny", "cosent")).read_text()
    positions = [text.find(section) for section in SECTIONS]
    assert -1 not in positions, [s for s, p in zip(SECTIONS, positions) if p == -1]
    assert positions == sorted(positions)
    front = yaml.safe_load(text.split("---")[1])
    facts = TrainFacts.read(trained / paths.train_facts("sts", "tiny", "cosent"))
    result = EvalResult.read(trained / paths.eval_result("sts", "tiny", "cosent")).flat()
    assert f"dataset_size:{facts.dataset.train_rows}" in front["tags"]
    assert {"sentence-transformers", "sentence-similarity", "feature-extraction", "generated_from_trainer",
            "loss:CoSENTLoss"} <= set(front["tags"])
    assert front["base_model"] == "tiny-bert" and front["pipeline_tag"] == "sentence-similarity"
    assert front["widget"], "widget examples from the test split"
    metrics = {m["type"]: m["value"] for m in front["model-index"][0]["results"][0]["metrics"]}
    assert metrics["spearman_cosine"] == pytest.approx(result["test_spearman_cosine"])
    assert len(front["model-index"][0]["results"]) == 1, "base model scores stay out of model-index"
    table_row = re.search(r"\| \*\*spearman_cosine\*\* \| \*\*([0-9.]+)\*\* \| (?:\*\*)?([0-9.]+)", text)
    assert table_row, "Spearman in bold with the base model beside it"
    assert float(table_row.group(1)) == pytest.approx(result["test_spearman_cosine"], abs=1e-4)
    assert float(table_row.group(2)) == pytest.approx(result["base_test_spearman_cosine"], abs=1e-4)
    assert "Statistics over all" in text and "tokens</li>" in text
    assert "#### CoSENTLoss" in text and "@inproceedings{reimers-2019-sentence-bert" in text
    assert "validation_spearman_cosine" in text
    assert str(Path.home()) not in text and "/tmp/" not in text and str(trained) not in text


def test_card_states_adaptation_rule(trained: Path) -> None:
    text = (trained / paths.card("products", "tiny", "triplet")).read_text()
    assert "* Adaptation:" not in text  # triplets are native for TripletLoss
    sts = (trained / paths.card("sts", "tiny", "cosent")).read_text()
    assert "* Adaptation:" not in sts
    adapted = (trained / paths.card("docstrings", "tiny", "cosent")).read_text()
    assert "* Adaptation: pairs -> scored pairs: each pair scores 1.0" in adapted
    # the test split's Spearman is over adapted rows too, whatever the loss: the Evaluation section says how
    evaluation = {dataset: text[text.index("## Evaluation"):text.index("## Training Details")]
                  for dataset, text in (("products", text), ("sts", sts), ("docstrings", adapted))}
    assert ("* Semantic Similarity: the test split's triplets become scored pairs for Spearman; triplets -> scored "
            "pairs: (anchor, positive) scores 1.0, (anchor, negative) 0.0.") in evaluation["products"]
    assert ("* Semantic Similarity: the test split's pairs become scored pairs for Spearman; pairs -> scored pairs: "
            "each pair scores 1.0, plus one other row's positive sharing the most words") in evaluation["docstrings"]
    assert "become scored pairs" not in evaluation["sts"]  # scored natively


def test_every_cell_is_scored_on_every_other_set_beside_the_base_model(trained: Path) -> None:
    client = mlflow.MlflowClient(f"sqlite:///{trained / 'mlflow.db'}")
    for dataset in DATASETS:
        for loss in LOSSES:
            result = EvalResult.read(trained / paths.eval_result(dataset, "tiny", loss))
            assert sorted(result.transfer) == sorted(name for name in SETS if name != dataset)
            for name, scores in result.transfer.items():
                base = BaselineScores.read(trained / paths.baseline_scores(name, "tiny")).test
                assert scores.base == base  # the base model is scored once per set, by the baseline stage
                assert -1 <= scores.tuned.spearman <= 1 and scores.gain == scores.tuned.spearman - base.spearman
            run = client.get_run(RunRef.read(trained / paths.mlflow_run(dataset, "tiny", loss)).run_id)
            other = "sts" if dataset != "sts" else "docstrings"
            assert run.data.metrics[f"transfer/{other}/spearman_cosine"] == pytest.approx(result.transfer[other].tuned.spearman)
            assert run.data.metrics[f"transfer/{EVAL_SET}/base_spearman_cosine"] == pytest.approx(
                result.transfer[EVAL_SET].base.spearman)
    # an eval set is held out whole: ingested, split into a test set only, scored for the base model
    assert not (trained / paths.split_file(EVAL_SET, "train")).exists()
    assert BaselineScores.read(trained / paths.baseline_scores(EVAL_SET, "tiny")).validation is None


def test_card_lists_the_other_sets_tuned_beside_base(trained: Path) -> None:
    text = (trained / paths.card("sts", "tiny", "cosent")).read_text()
    result = EvalResult.read(trained / paths.eval_result("sts", "tiny", "cosent"))
    section = text[text.index("#### Other Evaluation Sets"):text.index("## Training Details")]
    for name in ("docstrings", "products", EVAL_SET):
        scores = result.transfer[name]
        kind = "eval set" if name == EVAL_SET else "dataset"
        assert f"| {name} | {kind} | {scores.tuned.spearman:.4f} | {scores.base.spearman:.4f} | {scores.gain:+.4f}" in section


def test_report_has_the_full_transfer_table_and_marks_losses_of_quality(trained: Path) -> None:
    board = (trained / paths.LEADERBOARD_MD).read_text()
    transfer = board[board.index("## Transfer"):]
    header = next(line for line in transfer.splitlines() if line.startswith("| trained on |"))
    assert header == "| trained on | " + " | ".join(SETS) + " |"
    base_row = next(line for line in transfer.splitlines() if line.startswith("| tiny (untuned) |"))
    for name in SETS:
        assert f"{BaselineScores.read(trained / paths.baseline_scores(name, 'tiny')).test.spearman:.4f}" in base_row
    rows = [line for line in transfer.splitlines() if line.startswith("| ") and " / " in line.split("|")[1]]
    assert len(rows) == len(DATASETS) * len(LOSSES)
    for dataset in DATASETS:
        for loss in LOSSES:
            result = EvalResult.read(trained / paths.eval_result(dataset, "tiny", loss))
            row = next(r for r in rows if r.startswith(f"| {dataset} / tiny / {loss} |")).split("|")[2:-1]
            for name, shown in zip(SETS, row):
                scores = result.on(name, dataset)
                assert f"{scores.tuned.spearman:.4f} ({scores.gain:+.4f}" in shown
                assert ("▼" in shown) == (scores.gain < 0)
                assert shown.strip().startswith("•") == (name == dataset)
    lines = (trained / paths.TRANSFER_CSV).read_text().splitlines()
    assert len(lines) == 1 + len(DATASETS) * len(LOSSES) * len(SETS)
    assert (trained / paths.TRANSFER_PNG).stat().st_size > 1000


def test_rows_dropped_by_a_partitioned_split_show_on_the_card_and_in_mlflow(tiny_model_dir: Path,
                                                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.test_splitting import chained

    root = tmp_path_factory.mktemp("chained")
    (root / "data" / "raw").mkdir(parents=True)
    chained(texts=120, per_text=6).to_csv(root / "data" / "raw" / "ring.csv", index=False)
    params = tiny_params(tiny_model_dir, ["ring"], ["cosent"])
    params["datasets"]["ring"] = {"source": "data/raw/ring.csv", "name": "Ring of linked sentences"}
    with stage_project(root, params, ["ring"]):
        for stage in (train, evaluate, card):
            stage.main(["--dataset", "ring", "--base", "tiny", "--loss", "cosent"])
    split = SplitReport.read(root / paths.split_report("ring"))
    assert split.rule == "partitioned" and split.dropped_crossing > 0
    text = (root / paths.card("ring", "tiny", "cosent")).read_text()
    assert f"{split.dropped_crossing:,} rows dropped so that no text is in two splits" in text
    run = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}").get_run(
        RunRef.read(root / paths.mlflow_run("ring", "tiny", "cosent")).run_id)
    assert run.data.metrics["split_dropped_crossing"] == split.dropped_crossing
    assert run.data.params["pipeline.split_rule"] == "partitioned"
