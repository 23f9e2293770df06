"""Fine-tune the base model on one (dataset, loss) cell with SentenceTransformerTrainer.

Usage: python -m pipeline.train --dataset NAME --loss NAME
       (reads params.yaml: base_model, seed, adapt, train, losses.LOSS, datasets.NAME, mlflow)

Writes models/DATASET/LOSS/ (the model) and results/train/DATASET/LOSS/{facts.json, run.json,
loss_curve.csv, val_spearman.csv, metrics.json}. The MLflow run gets every hyperparameter, the loss at each logging
step and validation Spearman at each evaluation (transformers' MLflow callback, logging into the run
opened here so evaluate and card can log into it too).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

from pipeline.core import files, paths
from pipeline.core.errors import cli
from pipeline.core.handoffs import SweepTrial
from pipeline.core.params import stage_params
from pipeline.core.process import import_ml_stack, run_command
from pipeline.training.launch import is_main_process, relaunched


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset, loss) = stage_params(__doc__, argv, "dataset", "loss")
    sweep_trial = SweepTrial.from_environment()  # None unless a sweep trial runs this cell
    if relaunched(params, ["--dataset", dataset, "--loss", loss], f"{dataset}/{loss}"):
        return
    # Under a launcher every process trains; only rank 0 touches outputs, checkpoints' bookkeeping and MLflow.
    main_process = is_main_process()
    if main_process:  # one train stage per cell at a time: a second would share its checkpoints and outputs
        files.hold_lock(paths.train_lock(dataset, loss), f"train {dataset}/{loss}")
    files.require(paths.split_file(dataset, "train"), "split")  # before the heavy imports and the model

    import_ml_stack("sentence_transformers", "mlflow")
    import mlflow
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import PrinterCallback

    from pipeline.core.handoffs import BaselineScores, IngestReport, RunRef, SplitReport
    from pipeline.core.models import display_id, seed_everything
    from pipeline.tracking import runs
    from pipeline.training import recipe
    from pipeline.training.arguments import eval_steps, training_arguments
    from pipeline.training.callbacks import BestCheckpoint, CompactProgress
    from pipeline.training.checkpoints import resumable_checkpoint, skip_final_checkpoint
    from pipeline.training.losses import build_loss
    from pipeline.training.precision import choose_precision
    from pipeline.training.trial import pruning_callback, train_metrics

    out_dir, loss_config = paths.model_dir(dataset, loss), params.losses[loss]
    base_validation = BaselineScores.read(paths.baseline_scores(dataset)).validation
    split_report = SplitReport.read(paths.split_report(dataset))
    if main_process:
        files.remove(out_dir, paths.train_results(dataset, loss))
    seed_everything(params.seed)

    model = recipe.build_model(params, dataset)
    data = recipe.training_data(params, dataset, loss, model)
    matryoshka = loss_config.matryoshka
    loss_object = build_loss(loss_config.class_name, loss_config.params, model, params.base_model,
                             (matryoshka.dims, matryoshka.weights) if matryoshka else None, params.trust_remote_code)
    checked = recipe.validation(params, dataset, loss, model)
    precision, why = choose_precision(params.train.precision)
    precision_note = f"{precision} ({why})" if why else precision
    args = training_arguments(params, loss_config.class_name, precision, paths.checkpoints(dataset, loss),
                              len(data.frame), model.tokenizer)
    pruning = pruning_callback(sweep_trial, dataset, loss, params.train.num_processes)
    best = BestCheckpoint(model, recipe.VALIDATION_METRIC, params.train.select, params.train.early_stopping_patience)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data.as_dataset(), loss=loss_object,
                                         evaluator=checked.evaluator,
                                         callbacks=[best, skip_final_checkpoint(), *filter(None, [pruning])])
    if args.disable_tqdm:  # no terminal: one compact line per log instead of the library's raw dicts
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(CompactProgress(f"{dataset}/{loss}", recipe.VALIDATION_METRIC))

    base = display_id(params.base_model)
    run_context = runs.cell_run(params.mlflow.experiment, dataset, loss, base, params) if main_process else nullcontext()
    with run_context as run:
        if main_process:
            runs.log_training_params(params, dataset, loss, precision, precision_note, len(data.frame), data.rule, split_report)
            mlflow.log_dict(IngestReport.read(paths.ingest_report(dataset)).model_dump(), "data/ingest_report.json")
            # the validation curve starts at step 0 with the untuned base model on the same pairs
            mlflow.log_metric(recipe.VALIDATION_METRIC, base_validation.spearman, step=0)
        with args.main_process_first(desc="checkpoint lookup"):  # rank 0 may discard stale checkpoints first
            resume = resumable_checkpoint(params, dataset, loss)
        best.resume_from(resume)
        if resume and main_process:
            print(f"train {dataset}/{loss}: resumed from {Path(resume).name} of an interrupted run")
            mlflow.set_tag("resumed_from", Path(resume).name)
        started = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=resume)
        seconds = time.perf_counter() - started
        if params.train.eval_strategy == "no":
            # no validation during training, but one pass of the kept (last) weights: the report picks each
            # dataset's winner by validation Spearman, so without it `dvc repro` would train every cell and
            # then fail at publish with nothing to choose by
            trainer.evaluate()
        best.restore_best()
        # Under bf16/fp16, accelerate wrapped the model's forward in autocast for training (validation passes
        # included) and leaves it wrapped. The saved weights are fp32: unwrap, so the reload check and everything
        # after it compute in fp32 (wrapped, the check compared bf16 embeddings with fp32 ones and failed, 1e-3 off).
        trainer.accelerator.unwrap_model(model, keep_fp32_wrapper=False)
        if not main_process:
            return
        selection = best.selection(result.global_step)
        mlflow.log_metrics({"train_seconds": seconds,
                            "train_samples_per_second": len(data.frame) * args.num_train_epochs / seconds})
        runs.log_selection(selection, checked.pairs, checked.total)

        reload_diff = recipe.save_verified(model, out_dir, data.frame.iloc[:8, 0].tolist())
        loss_csv, val_csv = recipe.curves_csv(trainer.state.log_history, base_validation.spearman)
        files.write_text(paths.loss_curve(dataset, loss), loss_csv)
        files.write_text(paths.val_curve(dataset, loss), val_csv)
        choices = recipe.recipe_choices(params, loss, loss_object, model, data, selection, checked,
                                        recipe.uses_fast_dropout(params), split_report)
        facts = recipe.train_facts(model, params, dataset, loss, data, precision_note, seconds, result, selection,
                                   checked, eval_steps(params.train, len(data.frame)), choices, reload_diff)
        facts.write(paths.train_facts(dataset, loss))
        pruned = bool(pruning and pruning.pruned)
        if pruned:
            mlflow.set_tag("pruned_at_step", result.global_step)
        train_metrics(trainer.state.log_history, result.global_step, pruned).write(paths.train_metrics(dataset, loss))
        RunRef(run_id=run.info.run_id, experiment_id=run.info.experiment_id).write(paths.mlflow_run(dataset, loss))
    files.remove(paths.checkpoints(dataset, loss))
    print(f"train {dataset}/{loss}: {len(data.frame)} rows, {result.global_step} steps, {seconds:.1f}s, "
          f"precision {precision}, kept {selection.statement}")


if __name__ == "__main__":
    run_command(main)
