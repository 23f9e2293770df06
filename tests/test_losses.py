"""The losses beyond the default four, each trained for a few steps with the tiny model through the real
train / evaluate / card stages: Cached and Symmetric MNRL, GISTEmbed (base model as guide) and its
cached variant, AnglE, Contrastive and OnlineContrastive, and a Matryoshka-wrapped MNRL whose
evaluation reports Spearman per truncated dimension for the model and the base model."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from pipeline import card, evaluate, train
from pipeline.core import paths
from pipeline.core.handoffs import EvalResult, RunRef, TrainFacts
from pipeline.core.params import ParamsError, parse_params
from tests.conftest import stage_project, tiny_params

DATASETS = ["docstrings", "products", "sts"]
EXTRA_LOSSES = {  # name: (dataset, loss config)
    "cached_mnrl": ("docstrings", {"class": "CachedMultipleNegativesRankingLoss",
                                   "params": {"scale": 20.0, "mini_batch_size": 3}}),
    "symmetric": ("docstrings", {"class": "MultipleNegativesSymmetricRankingLoss", "params": {"scale": 20.0}}),
    "gist": ("docstrings", {"class": "GISTEmbedLoss",
                            "params": {"temperature": 0.05, "margin_strategy": "absolute", "margin": 0.0}}),
    "cached_gist": ("products", {"class": "CachedGISTEmbedLoss", "params": {"temperature": 0.05, "mini_batch_size": 3}}),
    "angle": ("sts", {"class": "AnglELoss", "params": {"scale": 20.0}}),
    "contrastive": ("sts", {"class": "ContrastiveLoss", "params": {"distance_metric": "COSINE_DISTANCE", "margin": 0.5}}),
    "online_contrastive": ("docstrings", {"class": "OnlineContrastiveLoss", "params": {"margin": 0.5}}),
    "matryoshka": ("docstrings", {"class": "MultipleNegativesRankingLoss", "params": {"scale": 20.0},
                                  "matryoshka": {"dims": [32, 16, 8], "weights": [1.0, 1.0, 0.5]}}),
}


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("losses")
    params = tiny_params(tiny_model_dir, DATASETS, ["mnrl"])
    params["losses"].update({name: config for name, (_, config) in EXTRA_LOSSES.items()})
    with stage_project(root, params, DATASETS):
        for loss, (dataset, _) in EXTRA_LOSSES.items():
            train.main(["--dataset", dataset, "--base", "tiny", "--loss", loss])
            evaluate.main(["--dataset", dataset, "--base", "tiny", "--loss", loss])
        card.main(["--dataset", "docstrings", "--base", "tiny", "--loss", "gist"])
        card.main(["--dataset", "docstrings", "--base", "tiny", "--loss", "matryoshka"])
        yield root


@pytest.mark.parametrize("loss", sorted(EXTRA_LOSSES))
def test_loss_trains_and_is_tracked(trained: Path, tiny_model_dir: Path, loss: str) -> None:
    from sentence_transformers import SentenceTransformer

    dataset, config = EXTRA_LOSSES[loss]
    facts = TrainFacts.read(trained / paths.train_facts(dataset, "tiny", loss))
    assert facts.loss.class_name == config["class"] and facts.global_step == 4
    assert math.isfinite(facts.train_loss)
    # training moved the weights: the fine-tuned model embeds differently from the base model
    texts = ["def add(a, b)", "Return the sum of two numbers."]
    tuned = SentenceTransformer(str(trained / paths.model_dir(dataset, "tiny", loss))).encode(texts)
    untuned = SentenceTransformer(str(tiny_model_dir)).encode(texts)
    assert np.abs(tuned - untuned).max() > 1e-4

    run_id = RunRef.read(trained / paths.mlflow_run(dataset, "tiny", loss)).run_id
    client = mlflow.MlflowClient(f"sqlite:///{trained / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["pipeline.loss_class"] == config["class"]
    for key, value in config["params"].items():
        assert run.data.params[f"pipeline.loss.{key}"] == str(value)
    assert all(math.isfinite(m.value) for m in client.get_metric_history(run_id, "loss"))
    result = EvalResult.read(trained / paths.eval_result(dataset, "tiny", loss)).flat()
    assert run.data.metrics["test_spearman_cosine"] == pytest.approx(result["test_spearman_cosine"])


def test_gist_uses_the_base_model_as_guide_and_card_names_it(trained: Path) -> None:
    text = (trained / paths.card("docstrings", "tiny", "gist")).read_text()
    assert ("[<code>GISTEmbedLoss</code>]"
            "(https://sbert.net/docs/package_reference/sentence_transformer/losses.html#gistembedloss)") in text
    assert '"guide": "tiny-bert"' in text  # the guide's id, never a module repr with a local path
    assert '"temperature": 0.05' in text and '"margin": 0.0' in text
    assert str(trained) not in text and "/tmp" not in text


def test_matryoshka_reports_spearman_per_dimension(trained: Path) -> None:
    result = EvalResult.read(trained / paths.eval_result("docstrings", "tiny", "matryoshka")).flat()
    for dim in (16, 8):
        for prefix in ("test", "base_test"):
            assert -1 <= result[f"{prefix}_dim{dim}_spearman_cosine"] <= 1
    assert "test_dim32_spearman_cosine" not in result  # 32 is the full size: that is test_spearman_cosine
    # truncation is real: the 8-dim score differs from the full-size one
    assert result["test_dim8_spearman_cosine"] != result["test_spearman_cosine"]

    run_id = RunRef.read(trained / paths.mlflow_run("docstrings", "tiny", "matryoshka")).run_id
    client = mlflow.MlflowClient(f"sqlite:///{trained / 'mlflow.db'}")
    assert len(client.get_metric_history(run_id, "eval_validation_dim8_spearman_cosine")) >= 2
    logged = client.get_run(run_id).data.metrics["test_dim16_spearman_cosine"]
    assert logged == pytest.approx(result["test_dim16_spearman_cosine"])

    text = (trained / paths.card("docstrings", "tiny", "matryoshka")).read_text()
    assert ("[<code>MatryoshkaLoss</code>]"
            "(https://sbert.net/docs/package_reference/sentence_transformer/losses.html#matryoshkaloss)") in text
    assert '"matryoshka_dims":[32,16,8],"matryoshka_weights":[1.0,1.0,0.5]' in "".join(text.split())
    assert "# tiny-bert fine-tuned on Python stdlib docstrings with MatryoshkaLoss(MultipleNegativesRankingLoss)" in text
    header = next(line for line in text.splitlines() if line.startswith("| Metric"))
    for column in ("test", "test_base_model", "test_dim16", "test_dim16_base_model", "test_dim8", "test_dim8_base_model"):
        assert f"| {column} " in header + " "
    spearman_row = next(line for line in text.splitlines() if line.startswith("| **spearman_cosine**"))
    shown = [float(cell.strip(" *")) for cell in spearman_row.strip("|").split("|")[1:]]
    expected = [result[f"{prefix}{suffix}_spearman_cosine"]
                for suffix in ("", "_dim16", "_dim8") for prefix in ("test", "base_test")]
    assert shown == pytest.approx(expected, abs=5e-5)


BASE = {"run": {"datasets": ["d"], "losses": ["l"]}, "datasets": {"d": {"source": "data/raw/x.csv", "shape": "pairs"}}}


@pytest.mark.parametrize("loss, message", [
    ({"class": "GISTEmbedLoss", "params": {"margin_strategy": "median"}}, "margin_strategy must be one of absolute, relative"),
    ({"class": "CachedGISTEmbedLoss", "params": {"guide": 3}}, "guide must be a Hub model id or a local model directory"),
    ({"class": "GISTEmbedLoss", "params": {"contrast_anchors": "yes"}}, "contrast_anchors must be true or false"),
    ({"class": "MultipleNegativesRankingLoss", "matryoshka": {"dims": [64, 64]}}, "dims must be distinct positive integers"),
    ({"class": "MultipleNegativesRankingLoss", "matryoshka": {"dims": [64, 32], "weights": [1]}},
     "weights needs one number per dim"),
    ({"class": "MultipleNegativesRankingLoss", "matryoshka": {"dims": []}}, "losses.l.matryoshka.dims"),
])
def test_bad_loss_configs_fail_at_params_load(loss: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        parse_params({**BASE, "losses": {"l": loss}})


def test_matryoshka_dim_larger_than_the_model_is_one_line(trained: Path, tiny_model_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(trained)
    params = yaml.safe_load((trained / "params.yaml").read_text())
    params["losses"]["matryoshka"]["matryoshka"] = {"dims": [64, 8]}
    (trained / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--dataset", "docstrings", "--base", "tiny", "--loss", "matryoshka"])
    assert exit_info.value.code == 2
    assert "matryoshka dims [64, 8]: the model's embeddings have only 32 dimensions" in capsys.readouterr().err


def test_matryoshka_evaluator_encodes_once_and_matches_truncate_dim(tiny_model_dir: Path) -> None:
    import pandas as pd
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    from pipeline.evaluation.evaluators import similarity_evaluator

    model = SentenceTransformer(str(tiny_model_dir))
    words = ["red", "green", "blue", "cat", "dog", "fish", "run", "walk", "swim", "big"]
    scored = pd.DataFrame({"sentence1": [f"{a} {b}" for a in words for b in words[:3]],
                           "sentence2": [f"{b} {a} thing" for a in words for b in words[3:6]],
                           "score": [float((i * 7) % 5) for i in range(30)]})
    evaluator = similarity_evaluator(scored, "v", dims=[16, 8])
    calls = []
    encode = model.encode
    model.encode = lambda sentences, **kw: calls.append(len(sentences)) or encode(sentences, **kw)
    for _ in range(2):  # the second call must see the changed weights, not the first call's embeddings
        ours = evaluator(model)
        for dim, prefix in ((16, "v_dim16"), (8, "v_dim8"), (None, "v")):
            plain = EmbeddingSimilarityEvaluator(scored["sentence1"].tolist(), scored["sentence2"].tolist(),
                                                 scored["score"].tolist(), similarity_fn_names=["cosine"], name="p",
                                                 truncate_dim=dim)(model)
            assert ours[f"{prefix}_spearman_cosine"] == pytest.approx(plain["p_spearman_cosine"], abs=1e-6)
        with torch.no_grad():
            model[0].auto_model.encoder.layer[0].output.dense.weight.mul_(3.0)
    assert ours["v_dim8_spearman_cosine"] != ours["v_spearman_cosine"]
    assert calls[:1] == [60]  # one encode of both sides' texts for all three sizes (then the plain evaluators' own)
    assert len(calls) == 2 * (1 + 3 * 2)


def test_similarity_evaluator_embeds_each_distinct_text_once_and_scores_like_the_library(tiny_model_dir: Path) -> None:
    import pandas as pd
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    from pipeline.evaluation.evaluators import similarity_evaluator

    model = SentenceTransformer(str(tiny_model_dir))
    words = ["red", "green", "blue", "cat", "dog", "fish", "run", "walk"]
    # texts repeat within a side and appear on both sides, as in real scored pairs (8 distinct texts in all)
    scored = pd.DataFrame({"sentence1": [f"the {words[i % 8]}" for i in range(24)],
                           "sentence2": [f"the {words[(i * 3 + 1) % 8]}" for i in range(24)],
                           "score": [float((i * 7) % 5) for i in range(24)]})
    evaluator = similarity_evaluator(scored, "v", batch_size=5)
    encoded = []
    encode = model.encode
    model.encode = lambda sentences, **kw: encoded.append((len(sentences), kw["batch_size"])) or encode(sentences, **kw)
    for _ in range(2):  # the second call must embed again, with the changed weights
        ours = evaluator(model)["v_spearman_cosine"]
        plain = EmbeddingSimilarityEvaluator(scored["sentence1"].tolist(), scored["sentence2"].tolist(),
                                             scored["score"].tolist(), similarity_fn_names=["cosine"], name="p")
        assert ours == pytest.approx(plain(model)["p_spearman_cosine"], abs=1e-6)
        with torch.no_grad():
            model[0].auto_model.encoder.layer[0].output.dense.weight.mul_(3.0)
    assert encoded[0] == (8, 5) and encoded[3] == (8, 5)  # ours: one encode of the 8 texts, in batches of 5
    assert [n for n, _ in encoded] == [8, 24, 24, 8, 24, 24]  # the library's: each side in full
