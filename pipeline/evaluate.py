"""Evaluate one fine-tuned cell on its dataset's held-out test split, beside the untuned base model.

Usage: python -m pipeline.evaluate --dataset NAME --loss NAME   (reads params.yaml: seed, adapt, mlflow)

Writes results/evaluate/DATASET/LOSS.json (with Spearman per truncated dimension, for this model and the
base model, when the loss is Matryoshka-wrapped) and logs the test and base-model metrics into the cell's
MLflow run.
"""

from __future__ import annotations

from pipeline.core import files, paths
from pipeline.core.errors import cli
from pipeline.core.params import stage_params


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset, loss) = stage_params(__doc__, argv, "dataset", "loss")

    import mlflow
    from sentence_transformers import SentenceTransformer

    from pipeline.core.handoffs import BaselineScores, EvalResult, SetResult
    from pipeline.core.models import load_base_model, seed_everything
    from pipeline.evaluation.scoring import score_split, scored_split, similarity_scores, truncated_dims
    from pipeline.tracking import runs

    files.remove(paths.eval_result(dataset, loss))
    seed_everything(params.seed)
    baseline = BaselineScores.read(paths.baseline_scores(dataset))
    model = SentenceTransformer(str(files.require(paths.model_dir(dataset, loss), "train")),
                                trust_remote_code=params.trust_remote_code)
    dims = truncated_dims(params, loss, model.get_embedding_dimension())
    tuned = score_split(model, dataset, "test", params, dims)
    base = baseline.test
    if dims:  # the base model truncated the same way: what Matryoshka training bought at each size
        base_dims = similarity_scores(load_base_model(params), scored_split(dataset, "test", params), dims).dims
        base = base.model_copy(update={"dims": base_dims})
    result = EvalResult(test=SetResult(tuned=tuned, base=base))
    with runs.cell_run(params.mlflow.experiment, dataset, loss, baseline.base_model, run_file=paths.mlflow_run(dataset, loss)):
        # MLflow forbids "@" in metric names (retrieval metrics are named like cosine_ndcg@10)
        mlflow.log_metrics({key.replace("@", "_at_"): value for key, value in result.flat().items()})
    result.write(paths.eval_result(dataset, loss))
    print(f"evaluate {dataset}/{loss}: spearman {tuned.spearman:.4f} "
          f"(base {base.spearman:.4f}, gain {result.test.gain:+.4f})")


if __name__ == "__main__":
    main()
