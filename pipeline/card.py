"""Write the Hugging Face model card of one cell, in the seeds' format, with real values only.

Usage: python -m pipeline.card --dataset NAME --loss NAME   (reads params.yaml: seed, adapt, mlflow)

Rebuilds sentence-transformers' card data from what train saved (train_facts.json), adds the test
metrics beside the base model's, widget examples from the test split and the adaptation rule, renders
the library's template (patched where the pipeline knows more) to cards/DATASET/LOSS/README.md and logs
it into the cell's MLflow run.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from pipeline import paths
from pipeline.errors import PipelineError, cli
from pipeline.params import stage_params

# (text in the library's template, replacement): what the pipeline states differently or adds.
TEMPLATE_PATCHES = [
    ("* Approximate statistics based on the first {{ [dataset['size'], 100] | min }} samples:",
     "* Statistics over all {{ \"{:,}\".format(dataset['size']) }} training samples (tokens of the model's tokenizer):"),
    ("{{ dataset[\"loss\"][\"config_code\"] }}{% endif %}\n",
     "{{ dataset[\"loss\"][\"config_code\"] }}{% endif %}\n"
     "{% if dataset['adaptation'] %}* Adaptation: {{ dataset['adaptation'] }}\n{% endif %}"),
    ("```\n{{ model_string }}\n```\n",
     "```\n{{ model_string }}\n{% if adapter %}  (adapter): {{ adapter }}\n{% endif %}```\n"),
    ("### Framework Versions\n",
     "### Training Precision\n- {{ precision }}\n\n### Framework Versions\n"),
]


def patched_template(template_path: Path) -> str:
    template = template_path.read_text(encoding="utf-8")
    for old, new in TEMPLATE_PATCHES:
        if old not in template:  # the library changed its template: fail loudly, not silently
            raise PipelineError(f"{template_path}: expected template text not found: {old[:60]!r}")
        template = template.replace(old, new)
    return template


PRIMARY = {"similarity": "spearman_cosine", "retrieval": "cosine_ndcg@10", "triplet": "cosine_accuracy"}


def _kind_of(evaluator_name: str) -> str:
    return next((kind for kind in ("retrieval", "triplet") if evaluator_name.endswith(f"_{kind}")), "similarity")


def _kind(metric_suffix: str) -> str:
    return next((kind for kind in ("retrieval", "triplet") if metric_suffix.startswith(f"{kind}_")), "similarity")


def test_evaluators(test_native: Any, test_scored: Any, suffix: str, dims: list[int]) -> list[tuple[str, Any]]:
    """(name, evaluator) for every test metric family, primary metric set so the card bolds it; one
    similarity evaluator per Matryoshka dimension, which the library renders as extra columns."""
    from pipeline.data import shape_of
    from pipeline.evaluation import retrieval_evaluators, similarity_evaluator

    evaluators = [similarity_evaluator(test_scored, f"test{suffix}")]
    evaluators += [similarity_evaluator(test_scored, f"test_dim{d}{suffix}") for d in dims]
    evaluators += retrieval_evaluators(test_native, shape_of(list(test_native.columns)), f"test{suffix}")
    for evaluator in evaluators:
        # set by an evaluator only when it runs; the card needs it to bold the primary row
        evaluator.primary_metric = f"{evaluator.name}_{PRIMARY[_kind_of(evaluator.name)]}"
    return [(evaluator.name, evaluator) for evaluator in evaluators]


def _belongs(key: str, source: str, name: str) -> bool:
    """Whether metric `key` is one of evaluator `name`'s (`source` is its prefix in eval.json)."""
    if not key.startswith(source + "_"):
        return False
    rest = key[len(source) + 1:]
    if _kind_of(name) != "similarity":
        return True
    return _kind(rest) == "similarity" and not re.match(r"dim\d+_", rest)  # test_dim64_* belong to test_dim64


def render_card(model: Any, facts: dict[str, Any], metrics: dict[str, float], test_native: Any, test_scored: Any,
                dims: list[int]) -> str:
    """Rebuild the card data and render the card text."""
    from datasets import Dataset
    from huggingface_hub import ModelCard

    from pipeline.card_data import BASE_SUFFIX

    data = model.model_card_data
    data.restore(facts["card"])
    data.base_model = facts["base_model"]
    loss_name = facts["loss"]["class"]
    if facts["loss"].get("matryoshka"):
        loss_name = f"MatryoshkaLoss({loss_name})"
    data.model_name = f"{facts['base_model']} fine-tuned on {facts['dataset']['name']} with {loss_name}"
    data.train_datasets[0]["adaptation"] = facts["dataset"]["adaptation"]
    random.seed(0)  # the library samples widget rows with the global RNG
    text_columns = [c for c in test_native.columns if c != "score"]
    data.set_widget_examples(Dataset.from_pandas(test_native[text_columns], preserve_index=False))
    # Set directly rather than via set_evaluation_metrics, which would add a step-0 row to the training logs.
    # Each evaluator appears twice, as this model ("test...") and the untuned base ("test_base_model..."),
    # which the library renders as two columns of one table.
    data.eval_results_dict = {}
    ours = test_evaluators(test_native, test_scored, "", dims)
    base = test_evaluators(test_native, test_scored, f"_{BASE_SUFFIX}", dims)
    for (name, evaluator), (base_name, base_evaluator) in zip(ours, base):
        for shown, shown_evaluator, source in ((name, evaluator, name), (base_name, base_evaluator, f"base_{name}")):
            data.eval_results_dict[shown_evaluator] = {
                shown + key[len(source):]: value for key, value in metrics.items() if _belongs(key, source, name)
            }
    card = ModelCard.from_template(card_data=data, template_str=patched_template(Path(data.template_path)),
                                   hf_emoji="🤗", precision=facts["precision"],
                                   adapter=facts.get("adapter"))
    return str(card)


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset, loss) = stage_params(__doc__, argv, "dataset", "loss")

    import mlflow
    from sentence_transformers import SentenceTransformer

    from pipeline import tracking
    from pipeline.card_data import PipelineCardData
    from pipeline.data import read_split
    from pipeline.evaluation import scored_split, truncated_dims

    out = paths.card(dataset, loss)
    out.unlink(missing_ok=True)
    facts = json.loads(paths.train_facts(dataset, loss).read_text())
    metrics = json.loads(paths.eval_metrics(dataset, loss).read_text())
    model = SentenceTransformer(str(paths.model_dir(dataset, loss)), model_card_data=PipelineCardData(local_files_only=True),
                                trust_remote_code=params.trust_remote_code)
    test_native, _ = read_split(dataset, "test")
    dims = truncated_dims(params, loss, model.get_embedding_dimension())
    text = render_card(model, facts, metrics, test_native, scored_split(dataset, "test", params), dims)
    paths.write_text(out, text)
    with tracking.cell_run(params.mlflow.experiment, dataset, loss, facts["base_model"], run_file=paths.mlflow_run(dataset, loss)):
        mlflow.log_artifact(str(out), artifact_path="card")
    print(f"card {dataset}/{loss}: {out} ({len(text.splitlines())} lines)")


if __name__ == "__main__":
    main()
