"""Evaluate one fine-tuned cell on its dataset's held-out test split, beside the untuned base model.

Usage: python -m pipeline.evaluate --dataset NAME --loss NAME   (reads params.yaml: seed, adapt, mlflow)

Writes results/DATASET/LOSS/eval.json (with Spearman per truncated dimension, for this model and the
base model, when the loss is Matryoshka-wrapped) and logs the test and base-model metrics into the cell's MLflow run.
"""

from __future__ import annotations

import json

from pipeline import paths
from pipeline.errors import cli
from pipeline.params import stage_params


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset, loss) = stage_params(__doc__, argv, "dataset", "loss")

    import mlflow
    from sentence_transformers import SentenceTransformer

    from pipeline import tracking
    from pipeline.evaluation import score, score_split, scored_split, truncated_dims
    from pipeline.models import load_base_model, seed_everything

    paths.eval_metrics(dataset, loss).unlink(missing_ok=True)
    seed_everything(params.seed)
    baseline = json.loads(paths.baseline_metrics(dataset).read_text())
    model = SentenceTransformer(str(paths.model_dir(dataset, loss)), trust_remote_code=params.trust_remote_code)
    dims = truncated_dims(params, loss, model.get_embedding_dimension())
    metrics = score_split(model, dataset, "test", params, "test", dims)
    result = {
        **metrics,
        **{f"base_{key}": value for key, value in baseline.items() if key.startswith("test_")},
        "spearman_gain": metrics["test_spearman_cosine"] - baseline["test_spearman_cosine"],
    }
    if dims:  # the base model truncated the same way: what Matryoshka training bought at each size
        base_scores = score(load_base_model(params), scored_split(dataset, "test", params), "test", dims)
        result.update({f"base_{key}": value for key, value in base_scores.items() if key.startswith("test_dim")})
    with tracking.cell_run(params.mlflow.experiment, dataset, loss, baseline["base_model"],
                           run_file=paths.mlflow_run(dataset, loss)):
        mlflow.log_metrics({key.replace("@", "_at_"): value for key, value in result.items()})  # MLflow forbids "@"
    paths.write_json(paths.eval_metrics(dataset, loss), result)
    print(f"evaluate {dataset}/{loss}: spearman {metrics['test_spearman_cosine']:.4f} "
          f"(base {baseline['test_spearman_cosine']:.4f}, gain {result['spearman_gain']:+.4f})")


if __name__ == "__main__":
    main()
