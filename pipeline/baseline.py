"""Score the untuned base model on one dataset's test split — once per dataset, not once per cell.

Usage: python -m pipeline.baseline --dataset NAME   (reads params.yaml: base_model, seed, adapt)

Writes results/baseline/NAME.json: test Pearson / Spearman (cosine) of the base model, and for pair and
triplet data its retrieval (and triplet accuracy) metrics.
"""

from __future__ import annotations

from pipeline.core import files, paths
from pipeline.core.errors import cli
from pipeline.core.handoffs import BaselineScores
from pipeline.core.params import stage_params


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset,) = stage_params(__doc__, argv, "dataset")

    from pipeline.core.models import display_id, load_base_model, seed_everything
    from pipeline.evaluation.scoring import score_split, scored_split

    files.remove(paths.baseline_scores(dataset))
    scored_split(dataset, "test", params)  # a missing split, or one Spearman is undefined on, stops before the model loads
    seed_everything(params.seed)
    scores = score_split(load_base_model(params), dataset, "test", params)
    BaselineScores(base_model=display_id(params.base_model), test=scores).write(paths.baseline_scores(dataset))
    print(f"baseline {dataset}: spearman {scores.spearman:.4f}")


if __name__ == "__main__":
    main()
