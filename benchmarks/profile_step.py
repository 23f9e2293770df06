"""Where a training step's time goes: torch.profiler over the train stage's own model, arguments and batches.

    python benchmarks/profile_step.py [--set sts] [--loss cosine] [--warmup 10] [--steps 30] [--top 15] [--compile]
                                      [--autocast-per-forward]

Builds the model exactly as the train stage does for `--set` and MiniLM (pipeline.training.recipe.build_model:
frozen word embeddings, fast dropout, unpadded feed-forward on CPU), its training data adapted to `--loss`, and
its training arguments (the precision `precision: auto` picks, the length-bucket batch sampler, the fused
AdamW) and its trainer (one autocast region per step; `--autocast-per-forward`: the library's region per
forward), with validation passes and checkpoints off; trains `--warmup` steps, then profiles `--steps` steps.
Prints the operators that take the most time (self CPU time, all threads' work attributed to the calling
operator), the share of the profiled wall time by kind of work (matmuls, attention, casts, normalisation and
activations, the optimizer, the rest), real tokens per step and the model FLOP utilisation against a matmul
peak of the training precision measured in the same run. Prints the CPU; nothing is asserted (run by hand).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare_bases import cpu_name  # noqa: E402
from benchmarks.train_speed import matmul_peak  # noqa: E402

# Kinds of work by operator name (aten:: names as torch.profiler reports them); the first match wins.
KINDS = (
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::baddbmm")),
    ("attention", ("scaled_dot_product", "aten::_softmax", "aten::softmax", "_flash_attention", "_efficient_attention")),
    ("casts and copies", ("aten::to", "aten::_to_copy", "aten::copy_", "aten::clone", "aten::contiguous")),
    ("norm, activation, dropout", ("layer_norm", "aten::gelu", "dropout", "aten::bernoulli", "aten::tanh")),
    ("optimizer", ("Optimizer.step", "_fused_adamw", "aten::_foreach", "adamw")),
    ("gather, scatter, index (unpad)", ("aten::index", "aten::gather", "aten::scatter", "aten::nonzero",
                                        "aten::masked", "aten::embedding")),
)


def kind_of(name: str) -> str:
    return next((kind for kind, marks in KINDS if any(mark in name for mark in marks)), "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default="sts", help="a built-in dataset of params.yaml")
    parser.add_argument("--loss", default="cosine", help="a loss of params.yaml")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model as the trainer does (`torch_compile`, inductor); its compiling "
                             "falls in the warm-up steps and the whole run's time")
    parser.add_argument("--autocast-per-forward", action="store_true",
                        help="the library's trainer: an autocast region per forward, so weights are cast once per column")
    args = parser.parse_args()

    import torch
    import yaml
    from torch.profiler import ProfilerActivity, profile, schedule
    from transformers import TrainerCallback

    from pipeline import ingest, split
    from pipeline.core.loading import load_params
    from pipeline.training import recipe
    from pipeline.training.arguments import training_arguments
    from pipeline.training.losses import build_loss
    from pipeline.training.precision import choose_precision, trainer_class

    shipped = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    shipped["datasets"][args.set]["rows"] = max(600, 2 * (args.warmup + args.steps + 2) * shipped["train"]["batch_size"])
    shipped["train"].update(eval_strategy="no", select="last", checkpoint_steps=0, max_steps=args.warmup + args.steps)
    folder = tempfile.mkdtemp(prefix="profile-step-")
    os.chdir(folder)  # the set is ingested and split here, as its DVC stages would
    Path("params.yaml").write_text(yaml.safe_dump(shipped))
    ingest.main(["--dataset", args.set])
    split.main(["--dataset", args.set])
    params = load_params(Path("params.yaml"))
    config = params.losses[args.loss]
    model = recipe.build_model(params, args.set, "minilm")
    data = recipe.training_data(params, args.set, args.loss, model)
    precision, _ = choose_precision("auto")
    loss = build_loss(config.class_name, config.params, model, params.base("minilm").model, None, False)
    profiler = profile(activities=[ProfilerActivity.CPU],
                       schedule=schedule(wait=0, warmup=args.warmup, active=args.steps, repeat=1))
    tokens: list[int] = []

    class Profiled(TrainerCallback):
        def on_step_end(self, args_, state, control, **kwargs):  # noqa: ANN001, ANN202 - the library's hook
            profiler.step()

    training = training_arguments(params, config.class_name, precision, Path(folder) / "checkpoints", len(data.frame),
                                  model.tokenizer)
    training.report_to = []  # no MLflow run for a profile
    if args.compile:
        training.torch_compile, training.torch_compile_backend = True, "inductor"
    if args.autocast_per_forward:
        from sentence_transformers import SentenceTransformerTrainer as trainer_type
    else:
        trainer_type = trainer_class()
    trainer = trainer_type(model=model, args=training, train_dataset=data.as_dataset(), loss=loss,
                                         callbacks=[Profiled()])
    class Counting:  # the library's collator, counting the real tokens of every batch it makes
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        def __call__(self, features: list) -> dict:
            batch = self.inner(features)
            tokens.append(sum(int(mask.sum()) for key, mask in batch.items() if key.endswith("attention_mask")))
            return batch

    trainer.data_collator = Counting(trainer.data_collator)
    with profiler:
        started = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    events = profiler.key_averages()
    profiled_us = sum(event.self_cpu_time_total for event in events)
    by_kind: dict[str, float] = defaultdict(float)
    for event in events:
        by_kind[kind_of(event.key)] += event.self_cpu_time_total
    real_tokens = sum(tokens[args.warmup:args.warmup + args.steps]) / args.steps
    per_step = profiled_us / 1e6 / args.steps
    non_embedding = sum(p.numel() for name, p in model.named_parameters() if "word_embeddings" not in name)
    peak = matmul_peak("bfloat16" if precision == "bf16" else "float32")
    mfu = 6 * non_embedding * real_tokens / per_step / peak
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"MiniLM x {config.class_name} on {args.set}, batch {params.train.batch_size}, {precision}")
    variant = " (compiled)" if args.compile else ""
    variant += " (autocast per forward)" if args.autocast_per_forward else ""
    print(f"{args.steps} profiled steps{variant}: {per_step:.3f} s a step (the whole run, "
          f"{args.warmup} warm-up steps and start included: {wall:.1f} s), {real_tokens:.0f} real tokens a step, "
          f"MFU {mfu:.1%} of a measured {precision} matmul peak of {peak / 1e9:.0f} GFLOP/s\n")
    print("| kind of work | share of the profiled time |\n|:--|--:|")
    for kind, micros in sorted(by_kind.items(), key=lambda item: -item[1]):
        print(f"| {kind} | {micros / profiled_us:.1%} |")
    print(f"\n| operator (top {args.top} by self CPU time) | calls a step | self ms a step | share |\n|:--|--:|--:|--:|")
    for event in sorted(events, key=lambda e: -e.self_cpu_time_total)[:args.top]:
        print(f"| {event.key} | {event.count / args.steps:.0f} | {event.self_cpu_time_total / 1e3 / args.steps:.1f} "
              f"| {event.self_cpu_time_total / profiled_us:.1%} |")


if __name__ == "__main__":
    main()
