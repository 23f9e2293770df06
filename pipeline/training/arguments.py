"""The trainer's arguments, from params.yaml: schedule, precision, batch sampler, evaluation and logging."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from pipeline.core.loss_specs import LOSSES
from pipeline.core.params import Params, TrainParams

EVALUATIONS_PER_RUN = 10  # eval_steps: auto spaces validation passes so a run makes about this many


def total_steps(train: TrainParams, rows: int) -> int:
    """Optimizer steps of a run over `rows` training rows (every process takes batch_size rows a step)."""
    if train.max_steps > 0:
        return train.max_steps
    batches = math.ceil(rows / (train.batch_size * train.num_processes))
    return max(1, math.ceil(math.ceil(batches / train.gradient_accumulation_steps) * train.epochs))


def eval_steps(train: TrainParams, rows: int) -> int | None:
    """Steps between validation passes: as given, or spaced for about EVALUATIONS_PER_RUN passes (auto)."""
    if train.eval_strategy != "steps":
        return None
    if train.eval_steps == "auto":
        return max(1, math.ceil(total_steps(train, rows) / EVALUATIONS_PER_RUN))
    return train.eval_steps


def training_arguments(params: Params, loss_class: str, precision: str, output_dir: Path, train_rows: int,
                       tokenizer: Any = None, prompts: dict[str, str] | None = None) -> Any:
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
        per_device_eval_batch_size=train.eval_batch_size,
        learning_rate=train.learning_rate,
        warmup_steps=train.warmup_ratio,  # a float below 1 is a share of the steps (warmup_ratio is deprecated)
        weight_decay=train.weight_decay,
        lr_scheduler_type=train.lr_scheduler,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        seed=params.seed,
        data_seed=params.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=on_cpu,  # transformers 5 only honours bf16 on CPU when told it is a CPU run
        batch_sampler=sampler,
        prompts=prompts or None,  # column -> text prepended in training (recipe.TrainingData.column_prompts)
        eval_strategy=train.eval_strategy,
        eval_steps=eval_steps(train, train_rows),
        logging_steps=train.logging_steps,
        logging_first_step=True,
        # every N steps by the trainer; auto: by checkpoints.checkpoint_schedule's clock
        save_strategy="steps" if train.checkpoint_every else "no",
        save_steps=train.checkpoint_every or 500,
        save_total_limit=1,
        report_to=["mlflow"],
        run_name=output_dir.name,
        disable_tqdm=not sys.stderr.isatty(),  # a bar on a terminal; elsewhere CompactProgress prints lines
    )
