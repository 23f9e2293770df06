"""Rendering a cell's Hugging Face model card with sentence-transformers' own card data and template.

The card data is restored from what the train stage saved (TrainFacts); the test scores come from the
evaluate stage (EvalResult) by structure: each metric family becomes one library evaluator's results,
shown as this model's column and, beside it, the untuned base model's. The library's template is
patched only where the pipeline knows more (TEMPLATE_PATCHES).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.core import paths
from pipeline.core.errors import PipelineError
from pipeline.core.handoffs import EvalResult, Scores, TrainFacts
from pipeline.core.params import Params
from pipeline.evaluation.evaluators import retrieval_evaluators, sampled_search
from pipeline.tracking.card_data import BASE_SUFFIX

if TYPE_CHECKING:
    from pipeline.evaluation.scoring import SplitInput

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
    ("{{ metrics.table }}\n{%- endfor %}{% endif %}\n",
     "{{ metrics.table }}\n{%- endfor %}{% endif %}\n"
     "{% for note in evaluation_notes %}\n* {{ note }}\n{% endfor %}"
     "{% if transfer %}\n#### Other Evaluation Sets\n"
     "How the fine-tune carries over to data it never trained on: the test split of every other dataset of the "
     "run and every eval set, Spearman (cosine) beside the untuned base model.\n\n"
     "| set | kind | spearman_cosine | base model | gain |\n|:--|:--|--:|--:|--:|\n"
     "{% for row in transfer %}| {{ row.name }} | {{ row.kind }} | {{ row.tuned }} | {{ row.base }} | {{ row.gain }} |\n"
     "{% endfor %}{% endif %}"),
    ("{% if all_hyperparameters %}\n### Training Hyperparameters\n",
     "{% if recipe %}### Training Recipe\nWhere this fine-tune differs from a plain one with the library's defaults:\n\n"
     "{% for choice in recipe %}- {{ choice }}\n{% endfor %}{% endif %}"
     "{% if all_hyperparameters %}\n### Training Hyperparameters\n"),
]
# The metric the card bolds in each family's table.
PRIMARY = {"similarity": "spearman_cosine", "retrieval": "cosine_ndcg@10", "triplet": "cosine_accuracy"}


def patched_template(template_path: Path) -> str:
    template = template_path.read_text(encoding="utf-8")
    for old, new in TEMPLATE_PATCHES:
        if old not in template:  # the library changed its template: fail loudly, not silently
            raise PipelineError(f"{template_path}: expected template text not found: {old[:60]!r}")
        template = template.replace(old, new)
    return template


def _family(evaluator_name: str) -> str:
    return next((kind for kind in ("retrieval", "triplet") if evaluator_name.endswith(f"_{kind}")), "similarity")


def card_evaluators(scores: Scores, suffix: str, test: SplitInput) -> dict[Any, dict[str, float]]:
    """{library evaluator: its results} for every metric family in `scores` on the `test` split, named "test..."
    (+ `suffix`) the way the evaluators name their own results (the card groups them into one table per
    evaluator class)."""
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    from pipeline.data.cleaning import shape_of

    families = scores.families("test", suffix)
    # the library's own class (never run here): the card names and links the evaluator by its class
    def precision(evaluator_name: str) -> str | None:  # "test_int8" (+ suffix): scored at a stored precision
        return next((kind for kind in scores.precision if evaluator_name == f"test_{kind}{suffix}"), None)

    evaluators = [EmbeddingSimilarityEvaluator(test.scored["sentence1"].tolist(), test.scored["sentence2"].tolist(),
                                               test.scored["score"].tolist(), main_similarity="cosine",
                                               similarity_fn_names=["cosine"], name=evaluator_name,
                                               precision=precision(evaluator_name))
                  for evaluator_name in families if _family(evaluator_name) == "similarity"]
    evaluators += retrieval_evaluators(test.frame, shape_of(list(test.frame.columns)), "test" + suffix,
                                       tuple(scores.precision_retrieval), test.corpus, max_queries=test.max_queries,
                                       seed=test.seed)
    results = {}
    for evaluator in evaluators:
        if evaluator.name not in families:
            continue
        # set by an evaluator only when it runs; the card needs it to bold the primary row
        evaluator.primary_metric = f"{evaluator.name}_{PRIMARY[_family(evaluator.name)]}"
        results[evaluator] = {f"{evaluator.name}_{metric}": value for metric, value in families[evaluator.name].items()}
    return results


def evaluation_notes(test: SplitInput, evaluators: Any) -> list[str]:
    """The card's lines under its metrics: how a test split of pairs or triplets became the scored pairs
    Spearman needs, and any sample retrieval scored."""
    notes = []
    if test.scored_rule:
        notes.append(f"Semantic Similarity: the test split's {test.shape} become scored pairs for Spearman; {test.scored_rule}.")
    return notes + list(dict.fromkeys(filter(None, (sampled_search(e, "test") for e in evaluators))))


def transfer_rows(result: EvalResult, eval_sets: list[str]) -> list[dict[str, str]]:
    """The card's "Other Evaluation Sets" table: one row per set, a loss of quality marked."""
    return [{"name": name, "kind": "eval set" if name in eval_sets else "dataset", "tuned": f"{r.tuned.spearman:.4f}",
             "base": f"{r.base.spearman:.4f}", "gain": f"{r.gain:+.4f}" + (" ▼" if r.gain < 0 else "")}
            for name, r in result.transfer.items()]


@dataclass(frozen=True)
class CellCard:
    """A cell's rendered card with what it was rendered from."""

    text: str
    facts: TrainFacts
    result: EvalResult
    test_native: Any  # the dataset's test split as ingested (its first rows are the card's widget examples)


def cell_card(params: Params, dataset: str, base: str, loss: str, model_dir: Path, model_id: str,
              chosen: str | None = None) -> CellCard:
    """The card of the cell (dataset, base, loss) for its model in `model_dir` (the trained folder, or the winner's
    copy publish lays out), its usage snippet loading `model_id`: what the card and publish stages write. A
    winner's card says first how it was `chosen`."""
    from sentence_transformers import SentenceTransformer

    from pipeline.evaluation.scoring import read_for_scoring
    from pipeline.tracking.card_data import PipelineCardData

    facts = TrainFacts.read(paths.train_facts(dataset, base, loss))
    result = EvalResult.read(paths.eval_result(dataset, base, loss))
    model = SentenceTransformer(str(model_dir), model_card_data=PipelineCardData(local_files_only=True),
                                trust_remote_code=params.base(base).trust_remote_code)
    test = read_for_scoring(dataset, "test", params)
    text = render_card(model, facts, result, test, list(params.eval_sets), model_id=model_id, chosen=chosen)
    return CellCard(text, facts, result, test.frame)


def render_card(model: Any, facts: TrainFacts, result: EvalResult, test: SplitInput, eval_sets: list[str], model_id: str,
                chosen: str | None = None) -> str:
    """Restore the card data saved by training, add the test scores and widget examples, render the text.
    `model_id` is what the card's usage snippet loads: a Hub id, or the model's folder."""
    from datasets import Dataset
    from huggingface_hub import ModelCard

    data = model.model_card_data
    data.restore(facts.card)
    data.base_model = facts.base_model
    data.set_model_id(model_id)
    data.model_name = f"{facts.base_model} fine-tuned on {facts.dataset.name} with {facts.loss.display_name}"
    data.train_datasets[0]["adaptation"] = facts.dataset.adaptation
    random.seed(0)  # the library samples widget rows with the global RNG
    text_columns = [c for c in test.frame.columns if c != "score"]
    data.set_widget_examples(Dataset.from_pandas(test.frame[text_columns], preserve_index=False))
    # Set directly rather than via set_evaluation_metrics, which would add a step-0 row to the training logs.
    # Each family appears twice, as this model ("test...") and the untuned base ("test_base_model..."),
    # which the library renders as two columns of one table.
    ours = card_evaluators(result.test.tuned, "", test)
    base = card_evaluators(result.test.base, f"_{BASE_SUFFIX}", test)
    data.eval_results_dict = {}
    for (evaluator, metrics), (base_evaluator, base_metrics) in zip(ours.items(), base.items()):
        data.eval_results_dict[evaluator] = metrics
        data.eval_results_dict[base_evaluator] = base_metrics
    recipe = [chosen, *facts.recipe] if chosen else facts.recipe
    card = ModelCard.from_template(card_data=data, template_str=patched_template(Path(data.template_path)),
                                   hf_emoji="🤗", precision=facts.precision, adapter=facts.adapter, recipe=recipe,
                                   evaluation_notes=evaluation_notes(test, ours),
                                   transfer=transfer_rows(result, eval_sets))
    return str(card)
