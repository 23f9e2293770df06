"""Write the Hugging Face model card of one cell, in the seeds' format, with real values only.

Usage: python -m pipeline.card --dataset NAME --loss NAME   (reads params.yaml: seed, adapt, eval_sets, mlflow)

Rebuilds sentence-transformers' card data from what train saved (results/train/DATASET/LOSS/facts.json),
adds the test scores beside the base model's (results/evaluate/DATASET/LOSS.json) on its own test split and
on every other set, widget examples from the test split and the adaptation rule, renders the library's template
(pipeline/tracking/cards.py) to cards/DATASET/LOSS/README.md and logs it into the cell's MLflow run.
"""

from __future__ import annotations

from pipeline.core import files, paths
from pipeline.core.errors import cli
from pipeline.core.params import stage_params
from pipeline.core.process import import_ml_stack, run_command


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset, loss) = stage_params(__doc__, argv, "dataset", "loss")

    import_ml_stack("sentence_transformers", "mlflow")
    from sentence_transformers import SentenceTransformer

    from pipeline.core.handoffs import EvalResult, TrainFacts
    from pipeline.data.splitting import read_split
    from pipeline.evaluation.scoring import scored_split
    from pipeline.tracking import runs
    from pipeline.tracking.card_data import PipelineCardData
    from pipeline.tracking.cards import render_card

    out = paths.card(dataset, loss)
    files.remove(out)
    facts = TrainFacts.read(paths.train_facts(dataset, loss))
    result = EvalResult.read(paths.eval_result(dataset, loss))
    model = SentenceTransformer(str(files.require(paths.model_dir(dataset, loss), "train")),
                                model_card_data=PipelineCardData(local_files_only=True),
                                trust_remote_code=params.trust_remote_code)
    test_native, _ = read_split(dataset, "test")
    text = render_card(model, facts, result, test_native, scored_split(dataset, "test", params), list(params.eval_sets),
                       model_id=paths.model_dir(dataset, loss).as_posix())
    files.write_text(out, text)
    run_id = runs.cell_run_id(params.mlflow.experiment, dataset, loss, facts.base_model, paths.mlflow_run(dataset, loss))
    runs.log_artifact(run_id, out, "card")
    print(f"card {dataset}/{loss}: {out} ({len(text.splitlines())} lines)")


if __name__ == "__main__":
    run_command(main)
