"""Publish one dataset's winner: a folder ready for the Hugging Face Hub and a version in the MLflow Model Registry.

Usage: python -m pipeline.publish --dataset NAME [--push]
       (reads params.yaml: publish, mlflow, seed, adapt, evaluation, eval_sets, base_models)

The winner is the report's (reports/winners/NAME.json: the best validation Spearman across base models and
losses). Writes publish/NAME/ —
the winner's model files and its card as README.md, the card's usage and model-index naming
`publish.hub_model_id` (the local folder without one) — and registers the model with MLflow's
sentence_transformers flavour as a version of `publish.registered_model` with alias `publish.alias` (nothing
new when that alias already holds the same files); records it in results/publish/NAME.json.
`--push` then uploads the folder with sentence-transformers' push_to_hub (the Hub must be reachable).
"""

from __future__ import annotations

from pipeline.core import files, paths
from pipeline.core.errors import PipelineError, cli
from pipeline.core.loading import Arg, stage_params
from pipeline.core.process import import_ml_stack, run_command


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset, push) = stage_params(__doc__, argv, Arg.DATASET, switches={
        "push": "then upload publish/NAME to publish.hub_model_id with push_to_hub"})

    import shutil

    import_ml_stack("sentence_transformers", "mlflow")
    from pipeline.core.handoffs import PublishRecord, Winner
    from pipeline.core.models import trained_model
    from pipeline.core.params import METRIC_NAMES
    from pipeline.tracking import registry
    from pipeline.tracking.cards import cell_card

    out, record_path = paths.publish_dir(dataset), paths.publish_record(dataset)
    files.remove(out, record_path)
    winner = Winner.read(paths.winner(dataset))
    if winner.loss is None or winner.base is None:
        raise PipelineError(f"{paths.winner(dataset)}: no winner for {dataset}: no cell had a validation score to "
                            f"choose by; train with eval_strategy: steps (and select: best)")
    base, loss, names = winner.base, winner.loss, {"experiment": params.mlflow.experiment, "dataset": dataset}
    if base not in params.base_models:
        raise PipelineError(f"{paths.winner(dataset)}: the winner's base model {base!r} is not in params.yaml "
                            f"base_models; run the report again (dvc repro)")
    trust_remote_code = params.base(base).trust_remote_code
    hub_id = params.publish.hub_model_id.format(**names) if params.publish.hub_model_id else None

    # the folder: the winner's files as trained, and its card re-rendered to point at where it will live
    staging = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(trained_model(dataset, base, loss), staging)
    chosen = (f"Chosen as the winner for {dataset} by validation {METRIC_NAMES.get(winner.metric, winner.metric)} "
              f"(`report.metric`) among {len(winner.bases) * len(winner.losses)} fine-tunes (base models "
              f"{', '.join(winner.bases)}; losses {', '.join(winner.losses)}); the test split was not used to choose.")
    card = cell_card(params, dataset, base, loss, staging, model_id=hub_id or out.as_posix(), chosen=chosen)
    (staging / "README.md").write_text(card.text, encoding="utf-8")
    staging.rename(out)

    metric = winner.metric.replace("@", "_at_")
    tags = {"dataset": dataset, "base": base, "base_model": card.facts.base_model, "loss": loss, "chosen_by": winner.metric,
            **{f"{split}_{metric}": f"{value:.6f}" for split, value in (("validation", winner.validation),
                                                                        ("test", winner.test)) if value is not None},
            "spearman_gain": f"{card.result.test.gain:.6f}"}
    name = params.publish.registered_model.format(**names)
    registered = registry.register(params.mlflow.experiment, name, params.publish.alias, paths.model_dir(dataset, base, loss),
                                   card.text, tags, card.test_native.iloc[:2, 0].tolist(), trust_remote_code)
    PublishRecord(dataset=dataset, base=base, base_model=card.facts.base_model, loss=loss, registered_model=name,
                  version=registered.version, alias=registered.alias,
                  model_uri=f"models:/{name}@{registered.alias}", hub_model_id=hub_id,
                  folder=out.as_posix(), experiment_id=registered.experiment_id).write(record_path)
    state = "registered as" if registered.created else "unchanged since"
    print(f"publish {dataset}: {base}/{loss} -> {out}; {state} {name} version {registered.version} (@{registered.alias})")
    if push:
        push_to_hub(out, hub_id, params.publish.private, trust_remote_code)


def push_to_hub(folder: object, hub_id: str | None, private: bool, trust_remote_code: bool) -> None:
    """Upload the published folder, card included, with sentence-transformers' own push_to_hub."""
    from sentence_transformers import SentenceTransformer

    from pipeline.core.models import hub_reachable

    if hub_id is None:
        raise PipelineError("params.yaml: publish.hub_model_id is not set; name the Hub repository to push to, "
                            "e.g. my-org/minilm-{dataset}")
    if not hub_reachable():
        raise PipelineError(f"cannot push {folder} to {hub_id}: the Hugging Face Hub is unreachable from here; "
                            f"the folder is ready, push it where the Hub is reachable")
    model = SentenceTransformer(str(folder), trust_remote_code=trust_remote_code)
    url = model.push_to_hub(hub_id, private=private, local_model_path=str(folder), replace_model_card=False,
                            exist_ok=True, commit_message="Publish the pipeline's winner")
    print(f"pushed {folder} to {url}")


if __name__ == "__main__":
    run_command(main)
