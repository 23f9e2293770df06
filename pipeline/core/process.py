"""A stage command's process: supervised by a small parent, the garbage collector paused while the ML stack
imports, and skipped at exit.

Every DVC stage is one `python -m pipeline.<stage>` process, nearly all importing sentence-transformers and
MLflow. Importing them creates about a million objects; the collector's passes over them cost 1.5-2 s of an
~8.5 s import on a 2-core CPU, and the interpreter's last collections over every live object ~2 s more after
the stage's work is done (benchmarks/README.md, "The whole pipeline vs plain scripts").

The imported modules live as long as the process, so nothing is lost by never scanning them again
(`gc.freeze`); objects a stage creates later are still collected as usual. In-process callers (the tests,
which run many stages in one process) get plain imports: freezing there would keep every earlier test's
uncollected garbage alive.

A stage killed outright (SIGKILL: most often the kernel's out-of-memory killer) cannot say so itself; DVC
would show only "exited with -9". So a command forks before its work: the child runs the stage, and the
parent, a small process that imported no ML library, waits and turns a SIGKILL into one line naming the
stage, the peak memory it reached, whether the kernel's OOM killer did it, and the settings that lower its
memory; a stage that registers `after_kill` (train) also cleans up after it (its MLflow run ended KILLED).
SIGINT and SIGTERM sent to the parent are passed on to the stage, which reports them.

A stage about to import the ML stack (`import_ml_stack`) hands itself to a warm server where one can be
had: a fork of a process that imported the stack already runs the stage from the start (pipeline.core.warm).
The child then waits for it as the parent waits for the child: signals passed on, the stage's exit status,
a SIGKILL named with its peak memory and the stage's cleanup.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.core import memory

_as_command = False  # set by run_command: this process is one stage run from the command line
_after_kill: Callable[[list[str]], str | None] | None = None  # the stage's cleanup after a SIGKILL (run_command's)
_forked_warm = False  # this process is a stage forked from a warm server
# What a warm server imports, for the stages that score or train: the libraries, then what such a stage would
# import lazily at its first MLflow call (the SQL stores: SQLAlchemy, alembic; the tracing processors, with
# OpenTelemetry, that set_tracking_uri resets) and its first evaluator. Those were 466 modules and ~0.7 s in
# every stage (a card stage's main() 1.45 s -> 0.77 s); none starts a thread, so forks stay safe.
ML_STACK = ("sentence_transformers", "mlflow", "mlflow.store.tracking.sqlalchemy_store",
            "mlflow.store.model_registry.sqlalchemy_store", "mlflow.tracing.processor.base_mlflow",
            "sentence_transformers.sentence_transformer.evaluation")


def run_command(main: Callable[[], object], after_kill: Callable[[list[str]], str | None] | None = None) -> None:
    """A stage module's entry point (`if __name__ == "__main__": run_command(main)`): main() in a supervised
    child process, which ends without the interpreter's final collections (exit status and atexit handlers
    unchanged). `after_kill(argv)` runs in the parent when the stage was killed outright; what it returns is
    added to the line."""
    global _as_command, _after_kill, _forked_warm
    _as_command, _after_kill = True, after_kill
    from pipeline.core import warm

    _forked_warm = warm.is_forked_stage()
    if hasattr(os, "fork") and not _forked_warm:
        _supervise(_oom_kills(), after_kill)  # returns in the child only
    try:
        main()
    finally:
        gc.freeze()


def _hand_over() -> None:
    from pipeline.core import warm

    if warm.enabled():
        oom_kills = _oom_kills()
        if ended := warm.run_stage(memory.main_module(), ML_STACK):
            _exit_as(*ended, oom_kills, _after_kill)


def _supervise(oom_kills: int, after_kill: Callable[[list[str]], str | None] | None) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        _die_with(os.getppid())
        return
    # passed on: the stage reports them (a terminal's Ctrl-C reaches both; the stage heeds only the first)
    for forwarded in (signal.SIGINT, signal.SIGTERM):
        signal.signal(forwarded, lambda signum, frame: os.kill(child, signum))
    _, status, usage = os.wait4(child, 0)  # retried by Python when the SIGTERM handler interrupts it
    _exit_as(status, usage.ru_maxrss, oom_kills, after_kill)


def _exit_as(status: int, peak_kib: int | None, oom_kills: int, after_kill: Callable[[list[str]], str | None] | None
             ) -> None:
    """End this process as the stage ended (wait status `status`), naming a SIGKILL and its likely cause, with
    the stage's peak resident memory where it is known (`peak_kib`)."""
    if os.WIFEXITED(status):
        os._exit(os.WEXITSTATUS(status))
    killed_by = os.WTERMSIG(status)
    if killed_by == signal.SIGKILL:
        module, argv = memory.main_module(), sys.argv[1:]
        cause = ("the kernel's out-of-memory killer stopped it" if _oom_kills() > oom_kills
                 else "most often the kernel's out-of-memory killer, or `kill -9`")
        notes = []
        if after_kill is not None:
            try:
                notes.append(after_kill(argv))
            except Exception as error:  # noqa: BLE001 - the line below matters more than the cleanup
                notes.append(f"cleanup failed: {error}")
        peak = f" at {memory.gib(peak_kib)} peak memory" if peak_kib is not None else ""
        print(f"error: {memory.stage_label(module, argv)} was killed (SIGKILL){peak}: {cause}; to use less memory "
              f"{memory.settings_hint(module, argv)}"
              + "".join(f"; {note}" for note in notes if note), file=sys.stderr, flush=True)
    os._exit(128 + killed_by)


def _die_with(parent: int) -> None:
    """SIGKILL to the parent (`kill -9` of the process DVC started) must not leave the stage running on its own:
    Linux sends this child SIGKILL when the parent dies (PR_SET_PDEATHSIG)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the child outlives a killed parent, as any subprocess would
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(128 + signal.SIGKILL)


# /proc/self/cgroup's controller field -> (mount, file holding the `oom_kill` count): cgroup v2, v1
OOM_COUNTERS = {"": ("/sys/fs/cgroup", "memory.events"), "memory": ("/sys/fs/cgroup/memory", "memory.oom_control")}


def _oom_kills() -> int:
    """How many processes the kernel's OOM killer has killed in this process's memory cgroup (v2 or v1);
    0 where that is not readable."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers in OOM_COUNTERS:
            root, name = OOM_COUNTERS[controllers]
            try:
                text = (Path(root + path) / name).read_text()
            except OSError:
                continue
            for entry in text.splitlines():
                key, _, value = entry.partition(" ")
                if key == "oom_kill" and value.strip().isdigit():
                    return int(value)
    return 0


def import_ml_stack(*modules: str) -> None:
    """Import the heavy libraries a stage needs (e.g. "sentence_transformers", "mlflow") before its own imports
    of them, with the collector paused, then freeze what they created (in a command only).

    In a stage command whose libraries are all in ML_STACK, the stage is handed to a warm server here where one
    can be had (pipeline.core.warm): a fork of a process that imported them already runs main() again from the
    start, and this process ends as that stage ends. So what a stage does before this call must be checks with
    no side effects (its arguments, params, required files), and a failing check costs no server start."""
    if _as_command and not _forked_warm and set(modules) <= set(ML_STACK):
        _hand_over()  # returns only when no warm server could run the stage
    pause = _as_command and gc.isenabled()
    if pause:
        gc.disable()
    try:
        for module in modules:
            importlib.import_module(module)
    finally:
        if pause:
            gc.freeze()
            gc.enable()
