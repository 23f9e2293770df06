"""What the trainer is configured with: training arguments (batch sampler included) and the resumable
checkpoint of an interrupted run of the same cell."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from pipeline import paths
from pipeline.losses import LOSSES
from pipeline.params import Params


def training_arguments(params: Params, loss_class: str, precision: str, output_dir: Path, tokenizer: Any = None) -> Any:
    import functools

    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments

    train = params.train
    from pipeline.sampling import LengthBucketBatchSampler, NoDuplicatesLengthBucketBatchSampler

    sampler: Any = train.batch_sampler
    if sampler == "auto":  # duplicates in a batch would be false in-batch negatives
        sampler = "no_duplicates_length_bucket" if LOSSES[loss_class].in_batch_negatives else "length_bucket"
    sampler = {"length_bucket": LengthBucketBatchSampler,
               "no_duplicates_length_bucket": NoDuplicatesLengthBucketBatchSampler}.get(sampler, sampler)
    if not isinstance(sampler, str):  # bucket on token counts, with the model's own tokenizer
        sampler = functools.partial(sampler, tokenizer=tokenizer)
    on_cpu = not torch.cuda.is_available()
    return SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=train.epochs,
        max_steps=train.max_steps,
        per_device_train_batch_size=train.batch_size,
        per_device_eval_batch_size=train.batch_size,
        learning_rate=train.learning_rate,
        warmup_ratio=train.warmup_ratio,
        weight_decay=train.weight_decay,
        lr_scheduler_type=train.lr_scheduler,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        seed=params.seed,
        data_seed=params.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=on_cpu,  # transformers 5 only honours bf16 on CPU when told it is a CPU run
        batch_sampler=sampler,
        eval_strategy=train.eval_strategy,
        eval_steps=train.eval_steps if train.eval_strategy == "steps" else None,
        logging_steps=train.logging_steps,
        logging_first_step=True,
        save_strategy="steps" if train.checkpoint_steps else "no",
        save_steps=train.checkpoint_steps or 500,
        save_total_limit=1,
        report_to=["mlflow"],
        run_name=output_dir.name,
        disable_tqdm=True,
    )


def skip_final_checkpoint() -> Any:
    """A callback that cancels the checkpoint the trainer saves when the last step ends. train.py saves the
    model right after and then deletes the checkpoints; that save (model, optimizer, RNG states) took 1.1 s
    of a 26 s benchmark run. Periodic checkpoints for resuming are kept."""
    from transformers import TrainerCallback

    class SkipFinalCheckpoint(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step >= state.max_steps:
                control.should_save = False

    return SkipFinalCheckpoint()


def resumable_checkpoint(params: Params, dataset: str, loss: str) -> str | None:
    """The last checkpoint of an interrupted run of this same cell and configuration, if any.

    A fingerprint of everything training reads (params and the training split's bytes) is stored beside
    the checkpoints; a different fingerprint means a different run, whose checkpoints are discarded."""
    ckpt_dir = paths.checkpoints(dataset, loss)
    config = params.model_dump(include={"base_model", "seed", "adapt", "train"}) | {
        "loss": params.losses[loss].model_dump(), "dataset": params.datasets[dataset].model_dump()}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    digest.update(paths.split_file(dataset, "train").read_bytes())
    stamp = ckpt_dir / "fingerprint.txt"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        # A kill during a save leaves a checkpoint without trainer_state.json (written last): skip it.
        for candidate in sorted(ckpt_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]), reverse=True):
            if (candidate / "trainer_state.json").exists():
                return str(candidate)
            shutil.rmtree(candidate, ignore_errors=True)
        return None
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    ckpt_dir.mkdir(parents=True)
    stamp.write_text(digest.hexdigest())
    return None
