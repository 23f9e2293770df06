"""Fine-tune the base model on one (dataset, loss) cell with SentenceTransformerTrainer.

Usage: python -m pipeline.train --dataset NAME --loss NAME
       (reads params.yaml: base_model, seed, adapt, train, losses.LOSS, mlflow)

Writes models/DATASET/LOSS/ (the model), results/DATASET/LOSS/{train_facts.json, loss_curve.csv,
val_spearman.csv, mlflow_run.json}. The MLflow run gets every hyperparameter, the loss at each
logging step and validation Spearman at each evaluation (transformers' MLflow callback, logging into
the run opened here so evaluate and card can re-attach to it).
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from pipeline import paths
from pipeline.errors import PipelineError, cli
from pipeline.launch import is_main_process, relaunched
from pipeline.losses import LOSSES
from pipeline.params import stage_params
from pipeline.trainer_setup import resumable_checkpoint, skip_final_checkpoint, training_arguments


def log_history_curves(log_history: list[dict[str, Any]]) -> tuple[str, str]:
    """CSV text for the DVC plots: training loss per logging step, validation Spearman per evaluation."""
    loss_rows = ["step,epoch,loss"] + [f"{h['step']},{h['epoch']:.4f},{h['loss']:.6f}" for h in log_history if "loss" in h]
    val_key = "eval_validation_spearman_cosine"
    val_rows = ["step,epoch,spearman"] + [f"{h['step']},{h['epoch']:.4f},{h[val_key]:.6f}" for h in log_history if val_key in h]
    return "\n".join(loss_rows) + "\n", "\n".join(val_rows) + "\n"


def reload_difference(model: Any, saved: Path, texts: list[str]) -> float:
    """Max absolute embedding difference between the in-memory model and the one loaded back from disk."""
    from sentence_transformers import SentenceTransformer

    reloaded = SentenceTransformer(str(saved), device=str(model.device))
    return float(abs(model.encode(texts) - reloaded.encode(texts)).max())


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset, loss) = stage_params(__doc__, argv, "dataset", "loss")
    if relaunched(params, ["--dataset", dataset, "--loss", loss], f"{dataset}/{loss}"):
        return
    # Under a launcher every process trains; only rank 0 touches outputs, checkpoints' bookkeeping and MLflow.
    main_process = is_main_process()
    loss_config, ds_config = params.losses[loss], params.datasets[dataset]

    import mlflow
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer

    from pipeline import fast_dropout, tracking, unpad
    from pipeline.card_data import PipelineCardData
    from pipeline.data import adapt, read_split
    from pipeline.evaluation import scored_split, similarity_evaluator, truncated_dims
    from pipeline.losses import build_loss
    from pipeline.models import choose_precision, display_id, resolve_model, seed_everything

    out_dir, results = paths.model_dir(dataset, loss), paths.cell_results(dataset, loss)
    if main_process:
        shutil.rmtree(out_dir, ignore_errors=True)
        shutil.rmtree(results, ignore_errors=True)
    seed_everything(params.seed)
    base = display_id(params.base_model)
    card_data = PipelineCardData(local_files_only=True, train_datasets=[{"name": ds_config.name or dataset}],
                                 language=ds_config.language)
    model = SentenceTransformer(resolve_model(params.base_model), model_card_data=card_data,
                                trust_remote_code=params.trust_remote_code)
    model.max_seq_length = params.train.max_seq_length
    model.model_card_data.base_model = base
    # transformers' MLflow callback logs the model config, whose _name_or_path would be a local path
    model[0].auto_model.config._name_or_path = base
    if params.train.freeze_word_embeddings:
        # 11.7M of MiniLM's 22.7M weights are the vocabulary table; fine-tuning moves few rows of it, and
        # skipping its dense gradient and Adam update saved ~20% of a CPU step (benchmarks/README.md).
        model[0].auto_model.get_input_embeddings().requires_grad_(False)
    if params.train.fast_dropout and not torch.cuda.is_available():  # GPU masks are cheap; fused SDPA wins there
        fast_dropout.install(model[0].auto_model)
    if params.train.unpad:
        unpad.install(model[0])
    if lora := params.train.lora:
        from peft import LoraConfig, TaskType

        model.add_adapter(LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, r=lora.rank, lora_alpha=lora.alpha,
                                     lora_dropout=lora.dropout, target_modules=list(lora.target_modules)))

    frame, shape = read_split(dataset, "train")
    train_frame, rule = adapt(frame, shape, LOSSES[loss_config.class_name].needs, params.adapt, params.seed, model)
    if len(train_frame) < 2:
        raise PipelineError(f"{paths.split_file(dataset, 'train')}: only {len(train_frame)} training rows after adaptation ({rule})")
    train_dataset = Dataset.from_pandas(train_frame, preserve_index=False)
    matryoshka = loss_config.matryoshka
    dims = truncated_dims(params, loss, model.get_embedding_dimension())
    evaluator = similarity_evaluator(scored_split(dataset, "validation", params), "validation", params.train.batch_size, dims)
    precision, why = choose_precision(params.train.precision)
    precision_note = f"{precision} ({why})" if why else precision
    training_args = training_arguments(params, loss_config.class_name, precision, paths.checkpoints(dataset, loss),
                                       model.tokenizer)
    loss_object = build_loss(loss_config.class_name, loss_config.params, model, params.base_model,
                             (matryoshka.dims, matryoshka.weights) if matryoshka else None, params.trust_remote_code)
    ingest_report = paths.ingest_report(dataset)

    run_context = tracking.cell_run(params.mlflow.experiment, dataset, loss, base, new=True) if main_process else nullcontext()
    with run_context as run:
        if main_process:
            mlflow.log_params({
                "pipeline.dataset": dataset, "pipeline.loss": loss, "pipeline.loss_class": loss_config.class_name,
                **{f"pipeline.loss.{k}": v for k, v in loss_config.params.items()},
                **{f"pipeline.matryoshka.{k}": v for k, v in (matryoshka.model_dump() if matryoshka else {}).items()},
                "pipeline.base_model": base, "pipeline.precision": precision, "pipeline.precision_choice": precision_note,
                "pipeline.train_rows": len(train_frame),
                "pipeline.adaptation": rule or "none",
                **{f"pipeline.train.{k}": v for k, v in params.train.model_dump(exclude={"lora"}).items()},
                **{f"pipeline.lora.{k}": v for k, v in (lora.model_dump() if lora else {}).items()},
            })
            if ingest_report.exists():
                mlflow.log_dict(json.loads(ingest_report.read_text()), "data/ingest_report.json")
        trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=train_dataset,
                                             loss=loss_object, evaluator=evaluator, callbacks=[skip_final_checkpoint()])
        with training_args.main_process_first(desc="checkpoint lookup"):  # rank 0 may discard stale checkpoints first
            resume = resumable_checkpoint(params, dataset, loss)
        if resume and main_process:
            print(f"train {dataset}/{loss}: resumed from {Path(resume).name} of an interrupted run")
            mlflow.set_tag("resumed_from", Path(resume).name)
        started = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=resume)
        seconds = time.perf_counter() - started
        if not main_process:
            return
        mlflow.log_metrics({"train_seconds": seconds, "train_samples_per_second": len(train_frame) * training_args.num_train_epochs / seconds})

        staging = out_dir.with_name(f".{out_dir.name}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        model.save(str(staging), create_model_card=False)
        reload_diff = reload_difference(model, staging, train_frame.iloc[:8, 0].tolist())
        if reload_diff > 1e-5:  # e.g. an adapter saved without its base weights
            raise PipelineError(f"{out_dir}: the saved model does not reproduce the trained embeddings (max diff {reload_diff:.2e})")
        staging.rename(out_dir)
        loss_csv, val_csv = log_history_curves(trainer.state.log_history)
        paths.write_text(paths.loss_curve(dataset, loss), loss_csv)
        paths.write_text(paths.val_curve(dataset, loss), val_csv)
        card_facts = model.model_card_data.facts()
        # The library leaves the evaluation schedule out of the card; the seed cards list it.
        schedule = {"eval_strategy": params.train.eval_strategy}
        if params.train.eval_strategy == "steps":
            schedule["eval_steps"] = params.train.eval_steps
        card_facts["all_hyperparameters"] = {**schedule, **card_facts["all_hyperparameters"]}
        if params.train.eval_strategy != "no":
            card_facts["non_default_hyperparameters"] = {**schedule, **card_facts["non_default_hyperparameters"]}
        paths.write_json(paths.train_facts(dataset, loss), {
            "card": card_facts,
            "dataset": {"key": dataset, "name": ds_config.name or dataset, "shape": shape, "source": ds_config.source,
                        "train_rows": len(train_frame), "adaptation": rule},
            "loss": {"name": loss, "class": loss_config.class_name, "params": loss_config.params,
                     "matryoshka": matryoshka.model_dump() if matryoshka else None},
            "base_model": base, "precision": precision_note, "train_seconds": round(seconds, 2),
            "adapter": (f"LoraConfig(r={lora.rank}, lora_alpha={lora.alpha}, lora_dropout={lora.dropout}, "
                        f"target_modules={list(lora.target_modules)}) via PEFT; only adapter weights are trained and saved")
                       if lora else None,
            "train_loss": result.training_loss, "global_step": result.global_step, "reload_max_abs_diff": reload_diff,
        })
        tracking.write_run_file(paths.mlflow_run(dataset, loss), run)
    shutil.rmtree(paths.checkpoints(dataset, loss), ignore_errors=True)
    print(f"train {dataset}/{loss}: {len(train_frame)} rows, {result.global_step} steps, {seconds:.1f}s, "
          f"precision {precision}, final loss {result.training_loss:.4f}")


if __name__ == "__main__":
    main()
