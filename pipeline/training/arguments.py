"""The trainer's arguments, from params.yaml: schedule, precision, batch sampler, evaluation and logging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.core.loss_specs import LOSSES
from pipeline.core.params import Params


def training_arguments(params: Params, loss_class: str, precision: str, output_dir: Path, tokenizer: Any = None) -> Any:
    import functools

    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments

    train = params.train
    from pipeline.training.sampling import LengthBucketBatchSampler, NoDuplicatesLengthBucketBatchSampler

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
