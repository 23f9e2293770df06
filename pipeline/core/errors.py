"""The one exception type users see, and the wrapper that turns it (or Ctrl-C) into a one-line exit."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pipeline.core import disk, memory

F = TypeVar("F", bound=Callable[..., object])
INTERRUPTED_EXIT = 130  # 128 + SIGINT, what shells and DVC expect from a process stopped by Ctrl-C
TERMINATED_EXIT = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `timeout`, `docker stop`, a CI cancel, a job scheduler) raised where the stage is, so that
    everything that cleans up after Ctrl-C (MLflow runs ended KILLED, checkpoints kept, locks released) does
    the same for it."""


def _raise_terminated(signum: int, frame: object) -> None:
    # one is enough: a second SIGTERM (a supervisor repeating itself) must not cut short the cleanup it started
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def _raise_interrupted(signum: int, frame: object) -> None:
    # the same for Ctrl-C: a terminal sends it to the stage and to its supervising parent, which passes it on
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt()


def interrupted(interruption: KeyboardInterrupt) -> str:
    """What stopped the process, as the one line says it: "interrupted (Ctrl-C)" or "interrupted (SIGTERM)"."""
    return f"interrupted ({'SIGTERM' if isinstance(interruption, Terminated) else 'Ctrl-C'})"


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While inside, SIGTERM raises Terminated in the main thread (elsewhere signals cannot be handled), and
    SIGINT KeyboardInterrupt as usual (unless it is ignored), each only once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_terminated)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started with SIGINT ignored
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _raise_interrupted)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class PipelineError(Exception):
    """A user-fixable problem (bad params, malformed data, unreachable service), phrased as one line
    that names the file and the row / key at fault."""


@dataclass
class _StageScope:
    held: contextlib.ExitStack  # locks a stage holds until its main() returns or fails
    on_interrupt: list[Callable[[], str | None]] = field(default_factory=list)  # what a Ctrl-C leaves behind
    writes: list[disk.Write] = field(default_factory=list)  # outputs it declared, for a full disk's line


_running: list[_StageScope] = []  # the stage main() running now (a list: tests run stages one after another)


def hold_while_stage_runs(resource: Any) -> Any:
    """Enter a context manager (a lock) and keep it entered until the running stage's main() ends."""
    if not _running:  # called outside a stage (a helper under test): hold it for the process's life
        return resource.__enter__()
    return _running[-1].held.enter_context(resource)


def on_interrupt(note: Callable[[], str | None]) -> None:
    """Add to the line a Ctrl-C prints what it leaves behind (asked when it happens; None: nothing to say)."""
    if _running:
        _running[-1].on_interrupt.append(note)


def expect_writes(path: Path, needs: int | None, what: str) -> None:
    """Declare an output the running stage is about to write and the bytes it needs, so that a disk too full
    for it is named in the stage's one line (core/disk.py)."""
    if _running:
        _running[-1].writes.append(disk.Write(path, needs, what))


def _out_of_memory_line(main: Callable[..., object], args: tuple[Any, ...], error: Exception) -> str | None:
    if not memory.is_out_of_memory(error):
        return None
    module = main.__module__ if main.__module__ != "__main__" else memory.main_module()
    argv = args[0] if args and isinstance(args[0], list) else sys.argv[1:]
    detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
    detail = detail.split("DefaultCPUAllocator: ")[-1][:200]  # torch's line starts with its source position
    return f"out of memory in {memory.stage_label(module, argv)} ({detail}): {memory.settings_hint(module, argv)}"


def cli(main: F) -> F:
    """Wrap a stage's main(): a PipelineError prints `error: <line>` to stderr and exits with status 2,
    so DVC shows the cause instead of a traceback wall; Ctrl-C prints one line saying what it left (the MLflow
    run ended KILLED, checkpoints kept) and exits with status 130, SIGTERM the same with status 143; a refused
    allocation prints one line naming the stage and the settings that lower its memory, a full disk one naming
    the output and the space it needs. Anything else is a bug and keeps its traceback.
    Without a terminal, progress bars are turned off."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not sys.stderr.isatty():
            # Captured output (DVC's logs, CI): no progress bars (model loading, saving, widget examples),
            # which would print as lines of carriage returns; training reports in lines of its own instead.
            os.environ.setdefault("TQDM_DISABLE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        with contextlib.ExitStack() as held, sigterm_interrupts():
            _running.append(scope := _StageScope(held))
            try:
                return main(*args, **kwargs)
            except PipelineError as error:
                print(f"error: {error}", file=sys.stderr)
                raise SystemExit(2) from None
            except Exception as error:  # a resource ran out (memory, disk): one line; anything else is a bug
                line = _out_of_memory_line(main, args, error) or disk.full_disk_line(error, scope.writes)
                if line is None:
                    raise
                print(f"error: {line}", file=sys.stderr)
                raise SystemExit(2) from None
            except KeyboardInterrupt as interruption:
                # the last registered first: the MLflow run ending KILLED on the way out, then what it left
                notes = [text for note in reversed(scope.on_interrupt) if (text := note())]
                print(f"{interrupted(interruption)}: " + "; ".join(notes or ["stopped before writing its outputs"]),
                      file=sys.stderr)
                raise SystemExit(TERMINATED_EXIT if isinstance(interruption, Terminated) else INTERRUPTED_EXIT) from None
            finally:
                _running.pop()

    return wrapper  # type: ignore[return-value]
