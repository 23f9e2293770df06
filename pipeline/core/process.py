"""A stage command's process: the garbage collector paused while the ML stack imports, and skipped at exit.

Every DVC stage is one `python -m pipeline.<stage>` process: the default run starts 39, the benchmark's
four losses on one dataset 14 (against its 4 plain training scripts), nearly all importing sentence-transformers
and MLflow. Importing them creates about a million objects; on the 2-core AMD EPYC of 2026-12-02
(benchmarks/README.md, "The whole pipeline vs plain scripts") the collector's passes over them cost 1.5-2 s of
an ~8.5 s import, and the interpreter's last collections over every live object cost ~2 s more after the
stage's work was done: ~3.5 s a process.

The imported modules live as long as the process, so nothing is lost by never scanning them again
(`gc.freeze`); objects a stage creates later are still collected as usual. In-process callers (the tests,
which run many stages in one process) get plain imports: freezing there would keep every earlier test's
uncollected garbage alive.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable

_as_command = False  # set by run_command: this process is one stage run from the command line


def run_command(main: Callable[[], object]) -> None:
    """A stage module's entry point (`if __name__ == "__main__": run_command(main)`): main(), then the
    process ends without the interpreter's final collections (exit status and atexit handlers unchanged)."""
    global _as_command
    _as_command = True
    try:
        main()
    finally:
        gc.freeze()


def import_ml_stack(*modules: str) -> None:
    """Import the heavy libraries a stage needs (e.g. "sentence_transformers", "mlflow") before its own imports
    of them, with the collector paused, then freeze what they created (in a command only)."""
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
