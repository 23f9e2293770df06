"""Write the Hugging Face model card of one cell, in the seeds' format, with real values only.

Usage: python -m pipeline.card --dataset NAME --base BASE --loss NAME
       (reads params.yaml: base_models.BASE, seed, adapt, evaluation, eval_sets, mlflow)

Rebuilds sentence-transformers' card data from what train saved (results/train/DATASET/BASE/LOSS/facts.json),
adds the test scores beside the base model's (results/evaluate/DATASET/BASE/LOSS.json) on its own test split and
on every other set, widget examples from the test split and the adaptation rule, renders the library's template
(pipeline/tracking/cards.py) to cards/DATASET/BASE/LOSS/README.md and logs it into the cell's MLflow run.
"""

from __future__ import annotations

from pipeline.core import files, paths
from pipeline.core.errors import cli
from pipeline.core.loading import Arg, stage_params
from pipeline.core.process import import_ml_stack, run_command


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset, base, loss) = stage_params(__doc__, argv, Arg.DATASET, Arg.BASE, Arg.LOSS)

    import_ml_stack("sentence_transformers", "mlflow")
    from pipeline.core.models import trained_model
    from pipeline.tracking import runs
    from pipeline.tracking.cards import cell_card

    out, model_dir = paths.card(dataset, base, loss), paths.model_dir(dataset, base, loss)
    files.remove(out)
    card = cell_card(params, dataset, base, loss, trained_model(dataset, base, loss), model_id=model_dir.as_posix())
    files.write_text(out, card.text)
    run_id = runs.cell_run_id(params.mlflow.experiment, dataset, base, loss, card.facts.base_model)
    runs.log_artifact(run_id, out, "card")
    print(f"card {paths.cell_name(dataset, base, loss)}: {out} ({len(card.text.splitlines())} lines)")


if __name__ == "__main__":
    run_command(main)
