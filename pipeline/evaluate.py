"""Evaluate one fine-tuned cell on its dataset's held-out test split, and on the test split of every other
set of the run (the other datasets, params.yaml eval_sets), each beside the untuned base model.

Usage: python -m pipeline.evaluate --dataset NAME --base BASE --loss NAME
       (reads params.yaml: base_models.BASE, seed, adapt, prompts, losses.LOSS, train.max_seq_length,
        train.validation_pairs, evaluation, run.datasets, datasets, eval_sets, mlflow)

Reads data/test/SET.parquet of the dataset and of every other set (with data/test/SET.corpus.parquet, the
passages a search set's queries search), data/splits/DATASET/validation.parquet, models/DATASET/BASE/LOSS/ once
it matches its digest, results/train/DATASET/BASE/LOSS/model_files.json (a
folder damaged on disk is named in one line, never scored), and results/baseline/BASE/: each set's scores of the
base model this cell was tuned from. Writes results/evaluate/DATASET/BASE/LOSS.json (with Spearman per truncated
dimension, for this model and the base model, when the loss is Matryoshka-wrapped; and the validation scores a
winner is chosen by) and logs the metrics into the cell's MLflow run: the own test split as test_*, every other
set as transfer/<set>/*.
"""

from __future__ import annotations

from pipeline.core import files, paths
from pipeline.core.errors import cli, expect_writes
from pipeline.core.loading import Arg, stage_params
from pipeline.core.process import import_ml_stack, run_command


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset, base, loss) = stage_params(__doc__, argv, Arg.DATASET, Arg.BASE, Arg.LOSS)

    import_ml_stack("sentence_transformers", "mlflow")
    from sentence_transformers import SentenceTransformer

    from pipeline.core.handoffs import BaselineScores, EvalResult, SetResult
    from pipeline.core.models import load_base_model, seed_everything, trained_model, use_prompts
    from pipeline.evaluation.scoring import (
        STORED_PRECISIONS,
        read_for_scoring,
        score_split,
        similarity_scores,
        truncated_dims,
        validation_scores,
    )
    from pipeline.tracking import runs

    out, name = paths.eval_result(dataset, base, loss), paths.cell_name(dataset, base, loss)
    files.remove(out)
    expect_writes(out, None, "the test scores")
    # the inputs: the dataset's test split, every other set's (how the fine-tune carries over to data it never
    # trained on), its validation split where the base model was scored on one, and those base model scores
    baseline = BaselineScores.read(paths.baseline_scores(dataset, base))
    test = read_for_scoring(dataset, "test", params)
    others = {other: read_for_scoring(other, "test", params) for other in params.evaluation_sets if other != dataset}
    other_bases = {other: BaselineScores.read(paths.baseline_scores(other, base)).test for other in others}
    own_validation = read_for_scoring(dataset, "validation", params) if baseline.validation is not None else None
    seed_everything(params.seed)
    model = SentenceTransformer(str(trained_model(dataset, base, loss)),
                                trust_remote_code=params.base(base).trust_remote_code)
    dims = truncated_dims(params, loss, model.get_embedding_dimension())
    # every set is scored with its own prompts for this base (Params.prompts_for), as its baseline was
    own = {}  # the dataset's retrieval embeddings, shared by its test and validation scores: a corpus embedded once
    tuned = score_split(use_prompts(model, params, dataset, base), test, dims, STORED_PRECISIONS, own)
    untuned = baseline.test
    if dims:  # the base model truncated the same way: what Matryoshka training bought at each size
        untuned_model = use_prompts(load_base_model(params, base), params, dataset, base)
        untuned = untuned.model_copy(update={"dims": similarity_scores(untuned_model, test.scored, dims).dims})
    transfer = {other: SetResult(tuned=score_split(use_prompts(model, params, other, base), data), base=other_bases[other])
                for other, data in others.items()}
    validation = None
    if own_validation is not None:  # what report.metric chooses the winner by, beside the base model's
        tuned_validation = validation_scores(use_prompts(model, params, dataset, base), own_validation, params, own)
        validation = SetResult(tuned=tuned_validation, base=baseline.validation)
    result = EvalResult(test=SetResult(tuned=tuned, base=untuned), transfer=transfer, validation=validation)
    run_id = runs.cell_run_id(params.mlflow.experiment, dataset, base, loss, baseline.base_model)
    # MLflow forbids "@" in metric names (retrieval metrics are named like cosine_ndcg@10)
    runs.log_metrics(run_id, {key.replace("@", "_at_"): value for key, value in result.flat().items()})
    result.write(out)
    elsewhere = "".join(f"; {other} {r.tuned.spearman:.4f} ({r.gain:+.4f})" for other, r in transfer.items())
    print(f"evaluate {name}: spearman {tuned.spearman:.4f} "
          f"(base {untuned.spearman:.4f}, gain {result.test.gain:+.4f}){elsewhere}")


if __name__ == "__main__":
    run_command(main)
