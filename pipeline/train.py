"""Fine-tune one base model on one (dataset, base, loss) cell with SentenceTransformerTrainer.

Usage: python -m pipeline.train --dataset NAME --base BASE --loss NAME
       (reads params.yaml: base_models.BASE, seed, adapt, train, evaluation, losses.LOSS, datasets.NAME, mlflow)

Reads data/splits/DATASET/ and the dataset's ingest, split and baseline reports. Writes models/DATASET/BASE/LOSS/
(the model) and results/train/DATASET/BASE/LOSS/{facts.json, model_files.json, run.json, loss_curve.csv,
val_spearman.csv, metrics.json}. The MLflow run gets every hyperparameter, the loss at each logging step and validation
Spearman at each evaluation (transformers' MLflow callback, logging into the run opened here so evaluate and
card can log into it too). Three steps: prepare (model, data, loss, trainer), fit, write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core import digests, files, paths
from pipeline.core.errors import cli
from pipeline.core.handoffs import BaselineScores, IngestReport, ModelFiles, SplitReport, SweepTrial
from pipeline.core.loading import Arg, stage_params
from pipeline.core.params import METRIC_NAMES, Params
from pipeline.core.process import import_ml_stack, run_command
from pipeline.training.launch import is_main_process, relaunched


@dataclass(frozen=True)
class Cell:
    """A cell ready to train: the trainer and what the outputs are built from."""

    dataset: str
    base: str
    loss: str
    model: Any
    data: Any  # recipe.TrainingData
    loss_object: Any
    checked: Any  # recipe.Validation: the evaluator and the pairs it scores
    precision: str
    precision_note: str  # the precision and why it was picked, as the card states it
    trainer: Any
    best: Any  # callbacks.BestCheckpoint
    pruning: Any | None  # the sweep trial's callback, None outside a sweep
    ingest_report: IngestReport
    split_report: SplitReport
    base_validation: Any  # handoffs.Scores: the untuned base model's validation scores, step 0 of the curves


@dataclass(frozen=True)
class Fitted:
    result: Any  # the trainer's TrainOutput
    seconds: float


def prepare(params: Params, dataset: str, base: str, loss: str, sweep_trial: SweepTrial | None) -> Cell:
    """Model, training data (adapted to the loss), loss, validation evaluator, precision and trainer."""
    from transformers import PrinterCallback

    from pipeline.core.models import seed_everything
    from pipeline.training import recipe
    from pipeline.training.arguments import training_arguments
    from pipeline.training.callbacks import BestCheckpoint, CompactProgress
    from pipeline.training.checkpoints import checkpoint_schedule, record_complete_checkpoints
    from pipeline.training.losses import build_loss
    from pipeline.training.precision import choose_precision, trainer_class
    from pipeline.training.trial import pruning_callback

    seed_everything(params.seed)
    config = params.losses[loss]
    model = recipe.build_model(params, dataset, base)
    data = recipe.training_data(params, dataset, loss, model)
    matryoshka = (config.matryoshka.dims, config.matryoshka.weights) if config.matryoshka else None
    loss_object = build_loss(config.class_name, config.params, model, params.base(base).model, matryoshka,
                             params.base(base).trust_remote_code)
    split_report = SplitReport.read(paths.split_report(dataset))
    checked = recipe.validation(params, dataset, loss, model, searches_corpus=split_report.corpus > 0)
    precision, why = choose_precision(params.train.precision)
    args = training_arguments(params, config.class_name, precision, paths.checkpoints(dataset, base, loss), len(data.frame),
                              model.tokenizer, data.column_prompts(recipe.role_prompts(model)))
    pruning = pruning_callback(sweep_trial, dataset, base, loss, params.train.num_processes, METRIC_NAMES[checked.metric],
                               checked.key)
    best = BestCheckpoint(model, checked.metric, checked.key, params.train.select, params.train.early_stopping_patience)
    trainer = trainer_class()(model=model, args=args, train_dataset=data.as_dataset(), loss=loss_object,
                              evaluator=checked.evaluator,
                              callbacks=[best, checkpoint_schedule(params.train), record_complete_checkpoints(),
                                         *filter(None, [pruning])])
    if args.disable_tqdm:  # no terminal: one compact line per log instead of the library's raw dicts
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(CompactProgress(paths.cell_name(dataset, base, loss), METRIC_NAMES[checked.metric], checked.key))
    return Cell(dataset, base, loss, model, data, loss_object, checked, precision, f"{precision} ({why})" if why else precision,
                trainer, best, pruning, IngestReport.read(paths.ingest_report(dataset)), split_report,
                BaselineScores.read(paths.baseline_scores(dataset, base)).validation)


def fit(cell: Cell, params: Params, on_resume: Callable[[str], None] = lambda name: None) -> Fitted:
    """Train (every process of a launcher), from the checkpoint an interrupted run left if any (`on_resume`
    hears its name first), and leave the model holding the kept weights, computing in fp32 like the saved model."""
    from pipeline.training.checkpoints import resumable_checkpoint

    trainer = cell.trainer
    with trainer.args.main_process_first(desc="checkpoint lookup"):  # rank 0 may discard stale checkpoints first
        resume = resumable_checkpoint(params, cell.dataset, cell.base, cell.loss)
    cell.best.resume_from(resume)
    if resume:
        on_resume(Path(resume).name)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started
    if params.train.eval_strategy == "no":
        # no validation during training, but one pass of the kept (last) weights: the report picks each
        # dataset's winner by its validation score, and publish needs one
        trainer.evaluate()
    cell.best.restore_best()
    # Under bf16/fp16, accelerate wraps the model's forward in autocast for training (validation passes
    # included) and leaves it wrapped; the saved weights are fp32, so everything after training (the reload
    # check first) must compute in fp32 too.
    trainer.accelerator.unwrap_model(cell.model, keep_fp32_wrapper=False)
    return Fitted(result, seconds)


def write(cell: Cell, fitted: Fitted, params: Params, run: Any) -> str:
    """The model (saved and verified), curves, training facts, DVC metrics and the run reference; the
    selection and speed into the MLflow run. Returns the sentence saying which weights were kept."""
    import mlflow

    from pipeline.core.handoffs import RunRef
    from pipeline.tracking import runs
    from pipeline.training import recipe
    from pipeline.training.arguments import eval_steps
    from pipeline.training.trial import train_metrics

    dataset, base, loss, data, steps = cell.dataset, cell.base, cell.loss, cell.data, fitted.result.global_step
    selection = cell.best.selection(steps).model_copy(update={"partial_search": cell.checked.partial})
    mlflow.log_metrics({"train_seconds": fitted.seconds,
                        "train_samples_per_second": len(data.frame) * cell.trainer.args.num_train_epochs / fitted.seconds})
    runs.log_selection(selection, cell.checked.pairs, cell.checked.total)
    reload_diff = recipe.save_verified(cell.model, paths.model_dir(dataset, base, loss), data.frame.iloc[:8, 0].tolist())
    loss_csv, val_csv = recipe.curves_csv(cell.trainer.state.log_history, cell.base_validation.spearman)
    files.write_text(paths.loss_curve(dataset, base, loss), loss_csv)
    files.write_text(paths.val_curve(dataset, base, loss), val_csv)
    choices = recipe.recipe_choices(params, dataset, loss, cell.loss_object, cell.model, data, selection, cell.checked,
                                    recipe.uses_fast_dropout(params), cell.ingest_report, cell.split_report)
    recipe.train_facts(cell.model, params, dataset, base, loss, data, cell.precision_note, fitted.seconds, fitted.result,
                       selection, cell.checked, eval_steps(params.train, len(data.frame)), choices, reload_diff,
                       ).write(paths.train_facts(dataset, base, loss))
    ModelFiles(files=digests.folder_digest(paths.model_dir(dataset, base, loss))).write(paths.model_files(dataset, base, loss))
    pruned = bool(cell.pruning and cell.pruning.pruned)
    if pruned:
        mlflow.set_tag("pruned_at_step", steps)
    train_metrics(cell.trainer.state.log_history, steps, pruned, cell.checked.metric, cell.checked.key).write(
        paths.train_metrics(dataset, base, loss))
    RunRef(run_id=run.info.run_id, experiment_id=run.info.experiment_id).write(paths.mlflow_run(dataset, base, loss))
    return selection.statement


def declare_writes(cell: Cell, params: Params) -> None:
    """What training writes and the disk it needs, for the one line a full disk gets: a checkpoint holds the
    weights and the optimizer's two moments (~3x the weights; the previous one stays until the new one is
    whole), the saved model the weights and its tokenizer."""
    from pipeline.core.errors import expect_writes

    weights = sum(p.numel() * p.element_size() for p in cell.model.parameters())
    if params.train.checkpoint_steps:
        expect_writes(paths.checkpoints(cell.dataset, cell.base, cell.loss), 3 * weights, "a checkpoint")
    expect_writes(paths.model_dir(cell.dataset, cell.base, cell.loss), weights + (4 << 20), "the model")


def log_start(cell: Cell, params: Params) -> None:
    """The cell's params, its ingest report, and step 0 of the validation curve: the untuned base model."""
    import mlflow

    from pipeline.tracking import runs
    from pipeline.tracking.outbox import mlflow_name
    from pipeline.training.recipe import VALIDATION_METRIC, role_prompts

    runs.log_training_params(params, cell.dataset, cell.base, cell.loss, cell.precision, cell.precision_note,
                             len(cell.data.frame), cell.data.rule, cell.split_report, role_prompts(cell.model))
    mlflow.log_dict(cell.ingest_report.model_dump(), "data/ingest_report.json")
    mlflow.log_metric(VALIDATION_METRIC, cell.base_validation.spearman, step=0)
    # the base model's validation score at step 0 of the chooser's curve, where both searched the same passages
    if (cell.checked.key != VALIDATION_METRIC and not cell.checked.partial
            and (chooser := cell.base_validation.value(cell.checked.metric)) is not None):
        mlflow.log_metric(mlflow_name(cell.checked.key), chooser, step=0)
    mlflow.set_tag("select_metric", cell.checked.metric)
    if cell.checked.sampled:  # what the chooser's curve (and kept_validation_<metric>) searched
        mlflow.set_tag("validation_search", cell.checked.sampled)


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset, base, loss) = stage_params(__doc__, argv, Arg.DATASET, Arg.BASE, Arg.LOSS)
    sweep_trial = SweepTrial.from_environment()  # None unless a sweep trial runs this cell
    name = paths.cell_name(dataset, base, loss)
    if relaunched(params, ["--dataset", dataset, "--base", base, "--loss", loss], name):
        return
    # Under a launcher every process trains; rank 0 alone holds the cell's lock (one train stage per cell at a
    # time: a second would share its checkpoints and outputs), writes the outputs and the MLflow run.
    main_process = is_main_process()
    files.require(paths.split_file(dataset, "train"), "split")  # before the heavy imports and the model
    import_ml_stack("sentence_transformers", "mlflow")  # may hand the stage to a warm server: no lock held before it
    if main_process:
        files.hold_lock(paths.train_lock(dataset, base, loss), f"train {name}")
    if not main_process:
        fit(prepare(params, dataset, base, loss, sweep_trial), params)
        return
    files.remove(paths.model_dir(dataset, base, loss), paths.train_results(dataset, base, loss))
    cell = prepare(params, dataset, base, loss, sweep_trial)
    declare_writes(cell, params)

    import mlflow

    from pipeline.core.models import display_id
    from pipeline.tracking import runs
    from pipeline.tracking.outbox import attach

    def resumed(checkpoint: str) -> None:
        print(f"train {name}: resumed from {checkpoint} of an interrupted run")
        mlflow.set_tag("resumed_from", checkpoint)

    with runs.cell_run(params.mlflow.experiment, dataset, base, loss, display_id(params.base(base).model), params) as run:
        with attach(cell.trainer, run.info.run_id, name) as outbox:
            log_start(cell, params)
            fitted = fit(cell, params, on_resume=resumed)
            late = outbox.close()  # every step's metrics in the run before anything else is logged
        kept = write(cell, fitted, params, run)
    files.remove(paths.checkpoints(dataset, base, loss))
    print(f"train {name}: {len(cell.data.frame)} rows, {fitted.result.global_step} steps, "
          f"{fitted.seconds:.1f}s, precision {cell.precision}, kept {kept}" + (f"; {late}" if late else ""))


def after_kill(argv: list[str]) -> str | None:
    """Run by the stage's supervising parent when the stage was killed outright (SIGKILL): its MLflow run ends
    KILLED rather than staying RUNNING, and the line says what the next run of the cell resumes from."""
    params, (dataset, base, loss) = stage_params(__doc__, argv, Arg.DATASET, Arg.BASE, Arg.LOSS)
    if not is_main_process():
        return None
    from pipeline.tracking import runs
    from pipeline.training.checkpoints import kept_after_interrupt

    ended = runs.end_dead_cell_runs(runs.configure(params.mlflow.experiment), dataset, base, loss)
    return "; ".join([*(f"MLflow run {paths.cell_name(dataset, base, loss)} ({run_id}) ended KILLED" for run_id in ended),
                      kept_after_interrupt(paths.checkpoints(dataset, base, loss))])


if __name__ == "__main__":
    run_command(main, after_kill)
