"""Checkpoints: resuming an interrupted run of the same cell, only from a checkpoint that is whole, and not
paying for a checkpoint nobody reads."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.core import digests, files, paths
from pipeline.core.errors import on_interrupt
from pipeline.core.params import Params, TrainParams


def checkpoint_schedule(train: TrainParams, clock: Callable[[], float] = time.monotonic) -> Any:
    """A callback for when the trainer saves a resumable checkpoint.

    `checkpoint_steps: N`: every N steps (the trainer's save_steps). `auto`: once `checkpoint_minutes` of the run
    have passed since it began or last saved, so what a kill can cost is bounded in time on any machine. A fixed
    step count is not: 50 steps of MiniLM are ~17 s on a 2-core CPU, where a save (~210 MiB: the weights, the
    optimizer's moments, the best weights so far; ~0.3 s, benchmarks/checkpoint_cost.py) costs ~2 % of the
    run, and a second or less on a GPU, where the same save would cost a fifth of it or more; a run shorter
    than the interval saves none. Under a launcher rank 0's clock decides for every rank, since a save is
    collective.
    Either way no checkpoint at the last step: train.py saves the model right after and deletes the checkpoints;
    that save (model, optimizer, RNG states) took 1.1 s of a 26 s benchmark run."""
    from transformers import TrainerCallback

    seconds = train.checkpoint_minutes * 60 if train.checkpoint_steps == "auto" else None

    class CheckpointSchedule(TrainerCallback):
        since = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.since = clock()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if seconds is not None and rank_zero_decides(clock() - self.since >= seconds):
                control.should_save = True
            if state.global_step >= state.max_steps:
                control.should_save = False

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.since = clock()  # the interval runs from the end of a save

    return CheckpointSchedule()


def rank_zero_decides(due: bool) -> bool:
    """Rank 0's `due`, on every process of a launched run (one process: `due` itself)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return due
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    flag = torch.tensor([int(due)], device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


MANIFEST = "manifest.json"  # each file's size and SHA-256, written once the checkpoint is complete


def record_complete_checkpoints() -> Any:
    """A callback that writes the manifest of each checkpoint the trainer has just saved (on_save comes after
    every file of it, trainer_state.json last, is written). A checkpoint without one was cut short; one that
    no longer matches its manifest was damaged on disk: neither is resumed from."""
    from transformers import TrainerCallback

    class RecordCompleteCheckpoints(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and folder.is_dir():
                files.write_json(folder / MANIFEST, digests.folder_digest(folder, skip=(MANIFEST,)))

    return RecordCompleteCheckpoints()


def resumable_checkpoint(params: Params, dataset: str, base: str, loss: str) -> str | None:
    """The last checkpoint of an interrupted run of this same cell and configuration, if any.

    A fingerprint of everything training reads (params and the training split's bytes) is stored beside
    the checkpoints; a different fingerprint means a different run, whose checkpoints are discarded."""
    ckpt_dir = paths.checkpoints(dataset, base, loss)
    config = params.model_dump(include={"seed", "adapt", "train"}) | {
        "base": params.base(base).model_dump(), "loss": params.losses[loss].model_dump(),
        "dataset": params.datasets[dataset].model_dump()}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    digest.update(paths.split_file(dataset, "train").read_bytes())
    stamp = ckpt_dir / "fingerprint.txt"
    on_interrupt(lambda: kept_after_interrupt(ckpt_dir))
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        for candidate in _newest_first(ckpt_dir):
            if (problem := _damage(candidate)) is None:
                return str(candidate)
            if problem != "no manifest":  # without one it was cut short by a kill while saving: nothing to say
                print(f"{candidate}: {problem}; not resumed from (removed)", flush=True)
            files.remove(candidate)
        return None
    files.remove(ckpt_dir)
    ckpt_dir.mkdir(parents=True)
    stamp.write_text(digest.hexdigest())
    return None


def _newest_first(ckpt_dir: Path) -> list[Path]:
    return sorted(ckpt_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]), reverse=True)


def _damage(checkpoint: Path) -> str | None:
    try:
        recorded = json.loads((checkpoint / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no manifest"
    return digests.damage(checkpoint, recorded)


def kept_after_interrupt(ckpt_dir: Path) -> str:
    """What an interrupted training leaves for the next run of its cell."""
    complete = [c for c in _newest_first(ckpt_dir) if (c / MANIFEST).exists()]
    if not complete:
        return "no checkpoint saved yet: the next run of this cell starts over"
    return f"{complete[0]} kept: the next run of this cell resumes from it"
