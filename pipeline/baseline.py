"""Score one untuned base model on one set's test split — once per set and base model, not once per cell.

Usage: python -m pipeline.baseline --dataset NAME --base BASE
       (reads params.yaml: base_models.BASE, seed, adapt, prompts, datasets.NAME or eval_sets.NAME,
        train.max_seq_length, train.validation_pairs, evaluation)

Writes results/baseline/BASE/NAME.json: test Pearson / Spearman (cosine) of the base model, for pair and triplet
data its retrieval (and triplet accuracy) metrics, and for a dataset its Spearman on the validation pairs
training is scored on: every cell's validation curve starts there, at step 0.
"""

from __future__ import annotations

from pipeline.core import files, paths
from pipeline.core.errors import cli
from pipeline.core.handoffs import BaselineScores
from pipeline.core.loading import Arg, stage_params
from pipeline.core.process import import_ml_stack, run_command


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset, base) = stage_params(__doc__, argv, Arg.DATASET_OR_EVAL_SET, Arg.BASE)

    import_ml_stack("sentence_transformers")
    from pipeline.core.models import display_id, load_base_model, seed_everything, use_prompts
    from pipeline.evaluation.scoring import STORED_PRECISIONS, read_for_scoring, score_split, validation_scores

    files.remove(paths.baseline_scores(dataset, base))
    # read before the model loads: a missing split, or one Spearman is undefined on, stops at once
    test = read_for_scoring(dataset, "test", params)
    own_validation = read_for_scoring(dataset, "validation", params) if dataset in params.datasets else None
    seed_everything(params.seed)
    model = use_prompts(load_base_model(params, base), params, dataset, base)
    own: dict = {}  # retrieval embeddings shared by the test and validation scores: a BEIR corpus embedded once
    scores = score_split(model, test, precisions=STORED_PRECISIONS, shared=own)
    validation = None
    if own_validation is not None:
        validation = validation_scores(model, own_validation, params, own)
    BaselineScores(base_model=display_id(params.base(base).model), test=scores, validation=validation).write(
        paths.baseline_scores(dataset, base))
    on_validation = f", validation {validation.spearman:.4f}" if validation else ""
    print(f"baseline {dataset}/{base}: spearman {scores.spearman:.4f}{on_validation}")


if __name__ == "__main__":
    run_command(main)
