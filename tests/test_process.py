"""A stage command's process (pipeline/core/process.py): the collector paused for imports and skipped at exit
only in a command, with exit status, error lines and atexit handlers as without it."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command(body: str) -> subprocess.CompletedProcess[str]:
    """Run `body` as a stage module's __main__ would: run_command(main) in a fresh interpreter."""
    script = textwrap.dedent("""
        import atexit, gc, sys
        from pipeline.core.errors import PipelineError, cli
        from pipeline.core.process import import_ml_stack, run_command
        atexit.register(lambda: print("atexit ran", flush=True))
        """) + textwrap.dedent(body) + "\nrun_command(main)\n"
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_in_process_imports_leave_the_collector_alone() -> None:
    from pipeline.core.process import import_ml_stack

    frozen = gc.get_freeze_count()
    import_ml_stack("json", "csv")
    # the tests run many stages in one process: freezing here would keep earlier tests' garbage alive
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_a_command_freezes_the_imported_stack_and_keeps_collecting_after() -> None:
    done = command("""
        @cli
        def main():
            assert gc.get_freeze_count() == 0
            import_ml_stack("email.mime.text", "xml.dom.minidom")
            print("enabled", gc.isenabled(), "frozen", gc.get_freeze_count() > 0, "imported", "xml.dom.minidom" in sys.modules)
            loop = []
            loop.append(loop)  # a cycle made after the imports is still collected
            del loop
            print("collected", gc.collect() > 0)
        """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["enabled True frozen True imported True", "collected True", "atexit ran"]


def test_a_failing_command_keeps_its_exit_status_and_error_line() -> None:
    done = command("""
        @cli
        def main():
            import_ml_stack("json")
            raise PipelineError("params.yaml: train.epochs: expected a number >= 1, got 0")
        """)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: params.yaml: train.epochs: expected a number >= 1, got 0"
    assert done.stdout.strip() == "atexit ran"


def test_every_stage_module_runs_as_a_command() -> None:
    # the stages DVC runs as `python -m pipeline.<stage>` enter through run_command (import freezing only applies there)
    stages = [p for p in (ROOT / "pipeline").glob("*.py") if p.name != "__init__.py"]
    assert len(stages) >= 7
    for stage in stages:
        assert stage.read_text().rstrip().endswith(('if __name__ == "__main__":\n    run_command(main)',
                                                    'if __name__ == "__main__":\n    run_command(main, after_kill)')), stage.name
