"""Each sweep trial is one real DVC experiment: its params applied with `dvc exp run -S` (so `dvc exp show`
lists it and `dvc exp apply` restores it), run in a temporary copy (`--temp`, the workspace is left
alone) and only for the stages its objective reads; its results read back from the experiment itself.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core import files, paths
from pipeline.core.errors import PipelineError, Terminated
from pipeline.core.handoffs import EvalResult, TrainMetrics


def exp_name(study: str, number: int) -> str:
    """`<study>-<trial number>`: unique across every worker of a study, so pushed experiments never clash."""
    return f"{study}-{number}"


def targets(dataset: str, base: str, losses: list[str]) -> list[str]:
    """The objective's cells only (and what they depend on), not the whole matrix."""
    return [paths.stage_name(stage, dataset, base, loss) for loss in losses for stage in ("train", "evaluate")]


def _has_key(document: Any, key: str) -> bool:
    for part in key.split("."):
        if not isinstance(document, dict) or part not in document:
            return False
        document = document[part]
    return True


def set_param_args(values: dict[str, Any], params_document: dict[str, Any]) -> list[str]:
    """`-S key=value` for each value, in the Hydra syntax DVC takes: `+key` for a key params.yaml lacks
    (as scripts/exp_from_config.py), values as JSON (quoted strings, true/false, null)."""
    args = []
    for key, value in values.items():
        args += ["-S", f"{'' if _has_key(params_document, key) else '+'}{key}={json.dumps(value)}"]
    return args


def run_experiment(name: str, set_args: list[str], stage_targets: list[str], env: dict[str, str],
                   log: Path) -> str | None:
    """Run the trial's `dvc exp run` with its output in `log`; returns None on success, else the error line."""
    command = [sys.executable, "-m", "dvc", "exp", "run", "--temp", "--name", name, *set_args, *stage_targets]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out:
        out.write(" ".join(command) + "\n")
        out.flush()
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            code = child.wait()
        except Terminated:
            stop_experiment(child)
            raise
    if code == 0:
        return None
    lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("error:", "ERROR:"))]
    return (errors[0] if errors else lines[-1] if lines else f"dvc exp run exited with {code}")[:500]


def stop_experiment(child: subprocess.Popen, grace_seconds: float = 120) -> None:
    """SIGTERM reached the sweep alone (`kill`, `timeout`), not its `dvc exp run` (Ctrl-C reaches the whole
    process group, so it needs nothing): pass it to every stage DVC runs (`python -m pipeline.<stage>`) until
    DVC exits. Each ends its MLflow run KILLED; DVC sees its stage fail, runs no further stage and removes its
    temporary workspace. SIGTERM to DVC, or to the shell between it and the stage, would leave the stage running
    and the workspace behind. Anything still running after the grace period is killed."""
    import psutil

    def is_stage(process: psutil.Process) -> bool:
        with contextlib.suppress(psutil.Error):
            command = process.cmdline()
            return any(flag == "-m" and module.startswith("pipeline.") for flag, module in zip(command, command[1:]))
        return False

    signalled: set[psutil.Process] = set()
    deadline = time.monotonic() + grace_seconds
    while child.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(psutil.NoSuchProcess):
            for process in filter(is_stage, set(psutil.Process(child.pid).children(recursive=True)) - signalled):
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.send_signal(signal.SIGTERM)
                signalled.add(process)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=0.5)
    if child.poll() is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            for process in [*psutil.Process(child.pid).children(recursive=True), psutil.Process(child.pid)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
        child.wait()


@dataclass(frozen=True)
class CellResult:
    metrics: TrainMetrics
    curve: list[tuple[int, float]]  # (training step, validation Spearman)
    test_spearman: float | None  # None when the evaluate stage did not run


def read_cells(root: Path, name: str, dataset: str, base: str, losses: list[str]) -> dict[str, CellResult]:
    """The objective cells' DVC metrics, validation curves and test scores, as committed in experiment
    `name` (read from DVC's cache, the same whether a stage ran or DVC restored it from its run cache)."""
    from dvc.api import DVCFileSystem

    fs = DVCFileSystem(str(root), rev=name)
    cells = {}
    for loss in losses:
        metrics = TrainMetrics.model_validate_json(fs.read_text(paths.train_metrics(dataset, base, loss).as_posix()))
        rows = fs.read_text(paths.val_curve(dataset, base, loss).as_posix()).strip().splitlines()[1:]
        curve = [(int(step), float(value)) for step, _, value in (row.split(",") for row in rows)]
        try:
            result = EvalResult.model_validate_json(fs.read_text(paths.eval_result(dataset, base, loss).as_posix()))
            test = result.test.tuned.spearman
        except FileNotFoundError:
            test = None
        cells[loss] = CellResult(metrics, curve, test)
    return cells


def check_can_push(remote: str, root: Path) -> None:
    """`--push REMOTE` needs that git remote and a default DVC remote; say so before any training."""
    if subprocess.run(["git", "remote", "get-url", remote], cwd=root, capture_output=True).returncode != 0:
        raise PipelineError(f"--push {remote}: no such git remote in {root.name} (git remote add {remote} URL)")
    default = subprocess.run([sys.executable, "-m", "dvc", "remote", "default"], cwd=root, capture_output=True, text=True)
    if default.returncode != 0 or not default.stdout.strip():
        raise PipelineError("--push: no default DVC remote for the outputs (dvc remote add -d NAME URL)")


def push_experiment(remote: str, name: str, root: Path, log: Path) -> str | None:
    """`dvc exp push`: the experiment's git ref to `remote` and its outputs to the default DVC remote."""
    with log.open("a", encoding="utf-8") as out:
        code = subprocess.call([sys.executable, "-m", "dvc", "exp", "push", remote, name], cwd=root,
                               stdout=out, stderr=subprocess.STDOUT)
    return None if code == 0 else f"dvc exp push {remote} {name} failed (see {log})"


def is_git_commit_present(root: Path) -> bool:
    return subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=root, capture_output=True).returncode == 0


def write_values(path: Path, values: dict[str, Any]) -> None:
    """Set dotted keys in params.yaml, keeping its comments and layout (ruamel round trip, as DVC does)."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML()
    yaml.width = 120
    yaml.preserve_quotes = True
    document = yaml.load(path.read_text(encoding="utf-8"))
    for key, value in values.items():
        *parents, last = key.split(".")
        node = document
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = CommentedMap()
            node = node[part]
        node[last] = value
    text = io.StringIO()
    yaml.dump(document, text)
    files.write_text(path, text.getvalue())
