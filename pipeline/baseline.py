"""Score the untuned base model on one dataset's test split — once per dataset, not once per cell.

Usage: python -m pipeline.baseline --dataset NAME   (reads params.yaml: base_model, seed, adapt)

Writes results/NAME/baseline.json: test Pearson / Spearman (cosine) of the base model, and for pair and
triplet data its retrieval (and triplet accuracy) metrics.
"""

from __future__ import annotations

from pipeline import paths
from pipeline.errors import cli
from pipeline.params import stage_params


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset,) = stage_params(__doc__, argv, "dataset")

    from pipeline.evaluation import score_split
    from pipeline.models import display_id, load_base_model, seed_everything

    paths.baseline_metrics(dataset).unlink(missing_ok=True)
    seed_everything(params.seed)
    metrics = score_split(load_base_model(params), dataset, "test", params, "test")
    paths.write_json(paths.baseline_metrics(dataset), {"base_model": display_id(params.base_model), **metrics})
    print(f"baseline {dataset}: spearman {metrics['test_spearman_cosine']:.4f}")


if __name__ == "__main__":
    main()
