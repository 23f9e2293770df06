"""A stage command's process (pipeline/core/process.py): the collector paused for imports and skipped at exit
only in a command, with exit status, error lines and atexit handlers as without it."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

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


def test_every_stage_main_reports_a_pipeline_error_in_one_line() -> None:
    # cli (pipeline.core.errors) turns a PipelineError into one line and exit 2; the report stage's main once
    # lacked it (the decorator sat on a helper above it) and a bad params.yaml printed a traceback there
    import importlib

    for stage in sorted(p.stem for p in (ROOT / "pipeline").glob("*.py") if p.name != "__init__.py"):
        main = importlib.import_module(f"pipeline.{stage}").main
        assert getattr(main, "__wrapped__", None) is not None and main.__code__.co_name == "wrapper", stage


def test_a_bad_params_file_stops_the_report_stage_in_one_line(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["report"]["metric"] = "ndcg@11"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-m", "pipeline.report"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: params.yaml: report.metric = 'ndcg@11': unknown metric 'ndcg@11'; valid: auto, spearman, pearson, "
        "ndcg@10, mrr@10, map@10, recall@1, recall@10, recall@100, precision@1, precision@10, precision@100, "
        "accuracy@1, accuracy@10, triplet_accuracy"]


def test_every_stage_of_one_dvc_invocation_finds_the_same_invocation_run_key(tmp_path: Path) -> None:
    """Stages find their `dvc repro` by walking up to the dvc process; its start is read as the kernel's tick
    count, so two stages (two processes, at two moments) always agree on the key."""
    ask = [sys.executable, "-c", "from pipeline.tracking.runs import run_group; print(run_group()[0])"]
    fake_dvc = tmp_path / "dvc"  # any process whose program is named dvc counts as the invocation
    fake_dvc.write_text("import subprocess, sys, time\n"
                        f"first = subprocess.run({ask!r}, capture_output=True, text=True).stdout\n"
                        "time.sleep(1.2)\n"
                        f"second = subprocess.run({ask!r}, capture_output=True, text=True).stdout\n"
                        "print(first.strip(), second.strip())\n")
    proc = subprocess.run([sys.executable, str(fake_dvc)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    first, second = proc.stdout.split()
    assert first == second and first.startswith("repro:"), proc.stdout + proc.stderr
