"""Prompts (`prompts`, a base model's or a set's own): resolved key by key, prepended by the trainer to the right
columns, saved with the model, applied by every evaluator, and stated on the card and in MLflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from pipeline import card, evaluate, train
from pipeline.core import paths
from pipeline.core.handoffs import BaselineScores, EvalResult, RunRef
from pipeline.core.params import ParamsError, parse_params
from tests.conftest import BASE, ROOT, stage_project, tiny_params

QUERY, DOCUMENT = "query: ", "passage: "


def shipped(**changes: object) -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw.update(changes)
    return raw


def test_prompts_resolve_key_by_key_set_over_base_over_top_level() -> None:
    raw = shipped(prompts={"query": "q: ", "document": "d: "})
    raw["base_models"]["mpnet"]["prompts"] = {"document": "mpnet-d: "}
    raw["datasets"]["sts"]["prompts"] = {"query": "sts-q: "}
    params = parse_params(raw)
    assert params.prompts_for("docstrings", "minilm") == {"query": "q: ", "document": "d: "}
    assert params.prompts_for("docstrings", "mpnet") == {"query": "q: ", "document": "mpnet-d: "}
    assert params.prompts_for("sts", "mpnet") == {"query": "sts-q: ", "document": "mpnet-d: "}
    assert parse_params(shipped()).prompts_for("sts", "minilm") == {}  # the shipped params give none


@pytest.mark.parametrize(("prompts", "message"), [
    ({"query": "  "}, "prompts.query = '  ': a blank prompt"),
    ({"passage": "passage: "}, "prompts.passage = 'passage: ': unknown key"),
])
def test_a_bad_prompt_is_one_line_naming_the_key(prompts: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        parse_params(shipped(prompts=prompts))


@pytest.fixture(scope="module")
def prompted(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """docstrings (pairs) trained with MNRL under prompts, sts (scored) with its own query prompt."""
    root = tmp_path_factory.mktemp("prompts")
    params = tiny_params(tiny_model_dir, ["docstrings", "sts"], ["mnrl"])
    params["prompts"] = {"query": QUERY, "document": DOCUMENT}
    params["datasets"]["sts"]["prompts"] = {"query": "sts: "}
    with stage_project(root, params, ["docstrings", "sts"]):
        train.main(["--dataset", "docstrings", "--base", BASE, "--loss", "mnrl"])
        evaluate.main(["--dataset", "docstrings", "--base", BASE, "--loss", "mnrl"])
        card.main(["--dataset", "docstrings", "--base", BASE, "--loss", "mnrl"])
        yield root


def test_the_trained_model_is_saved_with_its_prompts(prompted: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(prompted / paths.model_dir("docstrings", BASE, "mnrl")))
    assert {role: model.prompts[role] for role in ("query", "document")} == {"query": QUERY, "document": DOCUMENT}
    text = "Return the sum of a list."
    assert not np.allclose(model.encode_query([text]), model.encode([text]))  # encode_query applies it
    assert np.allclose(model.encode_query([text]), model.encode([QUERY + text]), atol=1e-6)


def test_the_trainer_prepends_each_side_its_prompt(prompted: Path) -> None:
    from pipeline.core.loading import load_params

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(prompted)
        cell = train.prepare(load_params(), "docstrings", BASE, "mnrl", None)
        assert cell.trainer.args.prompts == {"anchor": QUERY, "positive": DOCUMENT}
        rows = cell.data.as_dataset().select(range(2))
        batch = cell.trainer.data_collator([dict(row) for row in rows])
    tokenizer = cell.model.tokenizer
    anchors = tokenizer.batch_decode(batch["anchor_input_ids"], skip_special_tokens=True)
    positives = tokenizer.batch_decode(batch["positive_input_ids"], skip_special_tokens=True)
    assert all(text.startswith("query :") or text.startswith("query:") for text in anchors), anchors
    assert all(text.startswith("passage :") or text.startswith("passage:") for text in positives), positives


def test_the_similarity_evaluator_embeds_each_side_with_its_prompt(tiny_model_dir: Path) -> None:
    import pandas as pd
    from sentence_transformers import SentenceTransformer

    from pipeline.evaluation.evaluators import similarity_evaluator

    model = SentenceTransformer(str(tiny_model_dir))
    scored = pd.DataFrame({"sentence1": ["a cat sat", "dogs bark", "a cat sat"],
                           "sentence2": ["a cat sat", "the sky", "rain falls"], "score": [1.0, 0.0, 0.5]})
    evaluator = similarity_evaluator(scored, "t")
    plain = evaluator.embed_inputs(model, evaluator.sentences1)
    evaluator(model)  # empties the shared embeddings, as every call does
    model.prompts.update({"query": QUERY, "document": DOCUMENT})
    queries, documents = evaluator.embed_inputs(model, evaluator.sentences1), evaluator.embed_inputs(model, evaluator.sentences2)
    assert not np.allclose(queries, plain)
    assert np.allclose(queries, model.encode_query(evaluator.sentences1), atol=1e-5)
    assert np.allclose(documents, model.encode_document(evaluator.sentences2), atol=1e-5)
    # the same text on both sides is embedded once per side: "a cat sat" differs as query and as document
    assert not np.allclose(queries[0], documents[0])


def test_each_set_is_scored_with_its_own_prompts_beside_its_baseline(prompted: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from pipeline.core.loading import load_params
    from pipeline.core.models import load_base_model, use_prompts
    from pipeline.evaluation.scoring import read_for_scoring, score_split

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(prompted)
        params = load_params()
        model = SentenceTransformer(str(paths.model_dir("docstrings", BASE, "mnrl")))
        assert use_prompts(model, params, "sts", BASE).prompts["query"] == "sts: "
        assert model.prompts["document"] == DOCUMENT  # sts sets no document prompt: the top-level one
        transfer = EvalResult.read(paths.eval_result("docstrings", BASE, "mnrl")).transfer["sts"]
        sts = read_for_scoring("sts", "test", params)
        assert transfer.tuned.spearman == pytest.approx(score_split(model, sts).spearman, abs=1e-9)
        # the base model was scored on sts with sts's prompts too, not without any
        untuned = load_base_model(params, BASE)
        without = score_split(untuned, sts).spearman
        with_prompts = score_split(use_prompts(untuned, params, "sts", BASE), sts).spearman
    baseline = BaselineScores.read(prompted / paths.baseline_scores("sts", BASE))
    assert baseline.test.spearman == pytest.approx(with_prompts, abs=1e-9)
    assert transfer.base.spearman == pytest.approx(with_prompts, abs=1e-9)
    assert with_prompts != pytest.approx(without, abs=1e-6)


def test_the_card_and_mlflow_state_the_prompts(prompted: Path) -> None:
    text = (prompted / paths.card("docstrings", BASE, "mnrl")).read_text()
    assert f"Prompts: `{QUERY}` before each query (anchor, sentence1) and `{DOCUMENT}` before each document" in text
    run = mlflow.MlflowClient(f"sqlite:///{prompted / 'mlflow.db'}").get_run(
        RunRef.read(prompted / paths.mlflow_run("docstrings", BASE, "mnrl")).run_id)
    assert run.data.params["pipeline.prompt.query"] == repr(QUERY)
    assert run.data.params["pipeline.prompt.document"] == repr(DOCUMENT)
