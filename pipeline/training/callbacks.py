"""Trainer callbacks: keep the best checkpoint (and stop early), and report progress in one line per log.

Best checkpoint: the library's way is `load_best_model_at_end`, which writes a full checkpoint (weights,
optimizer and RNG state) at every evaluation and reloads the best one at the end, and its
EarlyStoppingCallback is built on that. Here the trainable weights of the best evaluation so far are kept
in memory instead (a copy of ~11M floats for MiniLM with frozen token embeddings, milliseconds) and put back
when training ends; the periodic resume checkpoints carry them along, so a resumed run still knows its best.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from pipeline.core.handoffs import Selection

BEST_FILE = "best_weights.safetensors"  # beside a resume checkpoint: the best weights seen up to it
BEST_STATE = "best_state.json"


class BestCheckpoint(TrainerCallback):
    """Track the validation metric that chooses (`key`, as the trainer logs `metric`); keep the best weights;
    stop after `patience` evaluations without a new best."""

    def __init__(self, model: Any, metric: str, key: str, select: str, patience: int | None) -> None:
        self.model, self.metric, self.key, self.select, self.patience = model, metric, key, select, patience
        self.best: float | None = None
        self.best_step: int | None = None
        self.misses = 0
        self.history: list[tuple[int, float]] = []  # (step, validation score) of every evaluation
        self.stopped_early_at: int | None = None
        self.weights: dict[str, Any] | None = None

    def _trainable(self) -> dict[str, Any]:
        # frozen weights (token embeddings, a LoRA base) never change: only trainable ones need keeping
        return {name: p for name, p in self.model.named_parameters() if p.requires_grad}

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kwargs: Any) -> None:
        value = (metrics or {}).get(self.key)
        if value is None:
            return
        self.history.append((state.global_step, float(value)))
        if self.best is None or value > self.best:
            self.best, self.best_step, self.misses = float(value), state.global_step, 0
            if self.select == "best":
                self.weights = {name: p.detach().clone() for name, p in self._trainable().items()}
        else:
            self.misses += 1
            if self.patience and self.misses >= self.patience and state.global_step < state.max_steps:
                control.should_training_stop = True
                self.stopped_early_at = state.global_step

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not checkpoint.is_dir():
            return
        if self.weights is not None:
            from safetensors.torch import save_file

            save_file({name: t.contiguous() for name, t in self.weights.items()}, str(checkpoint / BEST_FILE))
        state_json = {"best": self.best, "best_step": self.best_step, "misses": self.misses, "history": self.history}
        (checkpoint / BEST_STATE).write_text(json.dumps(state_json))

    def resume_from(self, checkpoint: str | None) -> None:
        """Take over the best-so-far of an interrupted run from its resume checkpoint."""
        if checkpoint is None or not (Path(checkpoint) / BEST_STATE).exists():
            return
        saved = json.loads((Path(checkpoint) / BEST_STATE).read_text())
        self.best, self.best_step, self.misses = saved["best"], saved["best_step"], saved["misses"]
        self.history = [tuple(item) for item in saved["history"]]
        if (Path(checkpoint) / BEST_FILE).exists():
            from safetensors.torch import load_file

            self.weights = load_file(str(Path(checkpoint) / BEST_FILE))

    def restore_best(self) -> None:
        """Put the best weights back into the model (select: best)."""
        if self.weights is None:
            return
        import torch

        with torch.no_grad():
            for name, parameter in self._trainable().items():
                parameter.copy_(self.weights[name].to(parameter.device))

    def selection(self, last_step: int) -> Selection:
        last = self.history[-1] if self.history else (None, None)
        keep_best = self.select == "best" and self.best_step is not None
        return Selection(
            rule=self.select, metric=self.metric, kept_step=self.best_step if keep_best else last_step,
            kept_value=self.best if keep_best else (last[1] if last[0] == last_step else None),
            best_step=self.best_step, best_value=self.best, last_step=last_step,
            last_value=last[1] if last[0] == last_step else None, evaluations=len(self.history),
            stopped_early_at=self.stopped_early_at,
        )


class CompactProgress(TrainerCallback):
    """One line per logging step where no terminal shows a progress bar (DVC's captured output, CI):
    step, share done, loss, the last validation score (`key`: how the trainer logs `name`), elapsed time and
    an estimate of the rest: the steps left at the training steps' own pace plus the validation passes left
    at theirs (a pass embeds the validation set, not a batch; folded into a per-step rate, the estimate was 21 %
    short at a tenth of a 30k-pair run, before the first pass)."""

    def __init__(self, cell: str, name: str, key: str, stream: Any = None) -> None:
        self.cell, self.name, self.key, self.stream = cell, name, key, stream or sys.stdout
        self.started = self.step_ended = time.perf_counter()
        self.validation: float | None = None
        self.validating, self.passes = 0.0, 0  # seconds spent in validation passes, and how many

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started, self.first_step = time.perf_counter(), state.global_step  # a resumed run starts later

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step_ended = time.perf_counter()  # the trainer evaluates after a step ends, before the next begins

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kwargs: Any) -> None:
        self.validating += time.perf_counter() - self.step_ended
        self.passes += 1
        self.validation = (metrics or {}).get(self.key, self.validation)
        self._line(state, f"validation {self.name} {self.validation:.4f}" if self.validation is not None else "",
                   passes_left(args, state))

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self._line(state, f"loss {float(logs['loss']):.4f}", passes_left(args, state, at_this_step=True))

    def _line(self, state: Any, what: str, passes: int) -> None:
        elapsed = time.perf_counter() - self.started
        done = max(state.global_step - self.first_step, 1)
        per_pass = self.validating / self.passes if self.passes else 0.0  # unknown until the first pass
        left = (elapsed - self.validating) / done * (state.max_steps - state.global_step) + per_pass * passes
        print(f"train {self.cell}: step {state.global_step}/{state.max_steps} ({state.global_step / state.max_steps:.0%}) "
              f"{what} | {_clock(elapsed)} elapsed, ~{_clock(left)} left", file=self.stream, flush=True)


def passes_left(args: Any, state: Any, at_this_step: bool = False) -> int:
    """Validation passes still to come after this point of the run (`at_this_step`: the one due at the current
    step too, since the trainer logs before it evaluates)."""
    strategy = getattr(args, "eval_strategy", "no")
    if getattr(strategy, "value", strategy) != "steps" or not args.eval_steps:
        return 0
    # a fraction below 1 is a share of the run's steps, as the trainer reads it
    every = int(args.eval_steps) if args.eval_steps >= 1 else max(round(args.eval_steps * state.max_steps), 1)
    due_now = at_this_step and state.global_step % every == 0
    return state.max_steps // every - state.global_step // every + int(due_now)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d}"
