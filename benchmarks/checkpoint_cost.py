"""What one resumable checkpoint costs: MiniLM's, as the train stage saves it, timed in one process.

    python benchmarks/checkpoint_cost.py [--saves 5] [--steps 40]

Trains MiniLM with MultipleNegativesRankingLoss on the built-in docstring pairs for `--steps` steps (batch 32,
the precision `precision: auto` picks, frozen word embeddings as the pipeline trains) to time a training step,
then times `--saves` checkpoints the way the train stage writes them: the trainer's own save (weights,
optimizer moments, scheduler, RNG states) and the manifest of every file's SHA-256 that marks it complete.
Prints the size, the seconds per save and a step, and what share of a run the saves take at a checkpoint every
50 steps and every 5 minutes (`checkpoint_steps: auto`). Prints the CPU; nothing is asserted (run by hand).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare_bases import cpu_name  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--saves", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()

    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from pipeline.core import digests, files
    from pipeline.core.models import resolve_model
    from pipeline.data.builtin.docstrings import docstring_pairs
    from pipeline.training.checkpoints import MANIFEST
    from pipeline.training.precision import choose_precision

    precision, _ = choose_precision("auto")
    model = SentenceTransformer(resolve_model("sentence-transformers/all-MiniLM-L6-v2", "base_models.minilm.model"))
    model[0].auto_model.get_input_embeddings().requires_grad_(False)  # as train.freeze_word_embeddings does
    data = Dataset.from_list(docstring_pairs(args.steps * 32, seed=42))
    with tempfile.TemporaryDirectory(prefix="checkpoint-cost-") as folder:
        training = SentenceTransformerTrainingArguments(output_dir=folder, max_steps=args.steps, per_device_train_batch_size=32,
                                                        bf16=precision == "bf16", use_cpu=True, save_strategy="no",
                                                        report_to="none", disable_tqdm=True, seed=42)
        trainer = SentenceTransformerTrainer(model=model, args=training, train_dataset=data,
                                             loss=MultipleNegativesRankingLoss(model))
        started = time.perf_counter()
        trainer.train()
        step = (time.perf_counter() - started) / args.steps
        seconds, size = [], 0
        for number in range(args.saves):
            trainer.state.global_step = args.steps + number  # a new checkpoint folder each time
            began = time.perf_counter()
            trainer._save_checkpoint(trainer.model, trial=None)  # noqa: SLF001 - the save the trainer does at a step
            checkpoint = Path(folder) / f"checkpoint-{trainer.state.global_step}"
            files.write_json(checkpoint / MANIFEST, digests.folder_digest(checkpoint, skip=(MANIFEST,)))
            seconds.append(time.perf_counter() - began)
            size = sum(path.stat().st_size for path in checkpoint.rglob("*") if path.is_file())
            shutil.rmtree(checkpoint)
    save = statistics.median(seconds)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; MiniLM, {precision}")
    print(f"a checkpoint: {size / 2**20:.0f} MiB, {save:.2f} s to save (median of {args.saves}: "
          + ", ".join(f"{s:.2f}" for s in seconds) + f"); a training step {step:.3f} s (batch 32, docstring pairs)")
    print(f"every 50 steps: {save / (50 * step + save):.1%} of the run; every 5 minutes (auto): {save / (300 + save):.2%}")


if __name__ == "__main__":
    main()
