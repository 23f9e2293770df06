"""Write the Hugging Face model card of one cell, in the seeds' format, with real values only.

Usage: python -m pipeline.card --dataset NAME --loss NAME   (reads params.yaml: seed, adapt, mlflow)

Rebuilds sentence-transformers' card data from what train saved (train_facts.json), adds the test
metrics beside the base model's, widget examples from the test split and the adaptation rule, renders
the library's template (patched where the pipeline knows more) to cards/DATASET/LOSS/README.md and logs
it into the cell's MLflow run.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from pipeline import paths
from pipeline.errors import PipelineError, cli
from pipeline.params import load_params

# (text in the library's template, replacement): what the pipeline states differently or adds.
TEMPLATE_PATCHES = [
    ("* Approximate statistics based on the first {{ [dataset['size'], 100] | min }} samples:",
     "* Statistics over all {{ \"{:,}\".format(dataset['size']) }} training samples (tokens of the model's tokenizer):"),
    ("{{ dataset[\"loss\"][\"config_code\"] }}{% endif %}\n",
     "{{ dataset[\"loss\"][\"config_code\"] }}{% endif %}\n"
     "{% if dataset['adaptation'] %}* Adaptation: {{ dataset['adaptation'] }}\n{% endif %}"),
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


def render_card(model: Any, facts: dict[str, Any], metrics: dict[str, float], test_native: Any, test_scored: Any) -> str:
    """Rebuild the card data and render the card text."""
    from datasets import Dataset
    from huggingface_hub import ModelCard

    from pipeline.card_data import BASE_SUFFIX
    from pipeline.evaluation import similarity_evaluator

    data = model.model_card_data
    data.restore(facts["card"])
    data.base_model = facts["base_model"]
    data.model_name = f"{facts['base_model']} fine-tuned on {facts['dataset']['name']} with {facts['loss']['class']}"
    data.train_datasets[0]["adaptation"] = facts["dataset"]["adaptation"]
    random.seed(0)  # the library samples widget rows with the global RNG
    text_columns = [c for c in test_native.columns if c != "score"]
    data.set_widget_examples(Dataset.from_pandas(test_native[text_columns], preserve_index=False))
    # Set directly rather than via set_evaluation_metrics, which would add a step-0 row to the training logs.
    data.eval_results_dict = {}
    for name, prefix in (("test", "test"), (f"test_{BASE_SUFFIX}", "base_test")):
        evaluator = similarity_evaluator(test_scored, name)
        evaluator.primary_metric = f"{name}_spearman_cosine"  # set by the evaluator only when it runs: bold row
        data.eval_results_dict[evaluator] = {f"{name}_{m}": metrics[f"{prefix}_{m}"] for m in ("pearson_cosine", "spearman_cosine")}
    card = ModelCard.from_template(card_data=data, template_str=patched_template(Path(data.template_path)),
                                   hf_emoji="🤗", precision=facts["precision"])
    return str(card)


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--loss", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    dataset, loss = args.dataset, args.loss

    import mlflow
    from sentence_transformers import SentenceTransformer

    from pipeline import tracking
    from pipeline.card_data import PipelineCardData
    from pipeline.data import read_split
    from pipeline.evaluation import scored_split

    out = paths.card(dataset, loss)
    out.unlink(missing_ok=True)
    facts = json.loads(paths.train_facts(dataset, loss).read_text())
    metrics = json.loads(paths.eval_metrics(dataset, loss).read_text())
    model = SentenceTransformer(str(paths.model_dir(dataset, loss)), model_card_data=PipelineCardData(local_files_only=True))
    test_native, _ = read_split(dataset, "test")
    text = render_card(model, facts, metrics, test_native, scored_split(dataset, "test", params))
    paths.write_text(out, text)
    with tracking.cell_run(params.mlflow.experiment, dataset, loss, facts["base_model"], run_file=paths.mlflow_run(dataset, loss)):
        mlflow.log_artifact(str(out), artifact_path="card")
    print(f"card {dataset}/{loss}: {out} ({len(text.splitlines())} lines)")


if __name__ == "__main__":
    main()
