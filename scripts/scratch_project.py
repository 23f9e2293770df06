"""The scaffolding tests and benchmarks share: a throwaway git + DVC copy of this project, committing in it,
a free port, and a real `mlflow server`.

The end-to-end tests and the benchmarks run the real `dvc repro`, `dvc exp run` and `python -m pipeline.sweep`
in such a copy: this repository's `dvc.yaml`, `pipeline/` package, DVC plot template and (optionally) built-in
data, and a `params.yaml` of their own, so what they exercise is exactly what a user's clone runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def scratch_env(**extra: str) -> dict[str, str]:
    """The environment to run git, dvc and the stages in: no inherited MLflow or DVC settings (a user's
    `MLFLOW_TRACKING_URI` would send the copy's runs to their store), the offline Hub, a git identity, and
    this interpreter's bin folder first on PATH so `python` in dvc.yaml is the same venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="scratch",
               GIT_AUTHOR_EMAIL="scratch@localhost", GIT_COMMITTER_NAME="scratch", GIT_COMMITTER_EMAIL="scratch@localhost")
    env.update(extra)
    return env


def scratch_project(repo: Path, params: dict, *, builtin_data: bool = True, **extra_env: str) -> dict[str, str]:
    """Make `repo` (empty or absent) a fresh git + DVC repository holding the pipeline and `params`, nothing
    committed yet; returns the environment from `scratch_env`. `builtin_data=False` leaves `data/raw` empty
    for the caller's own files."""
    (repo / "data" / "raw").mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / "pipeline", repo / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    if builtin_data:
        shutil.copytree(ROOT / "data" / "raw", repo / "data" / "raw", dirs_exist_ok=True)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = scratch_env(**extra_env)
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        proc = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(command)} in {repo} failed: {proc.stderr.strip()}")
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")  # the report's DVC plot template
    return env


def commit(repo: Path, env: dict[str, str], message: str, *, repro: bool = False) -> None:
    """`git add -A && git commit` in `repo` (after a `dvc repro` when `repro`), failing with the command's output."""
    commands = [[sys.executable, "-m", "dvc", "repro"]] if repro else []
    for command in [*commands, ["git", "add", "-A"], ["git", "commit", "-qm", message]]:
        proc = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(command)} in {repo} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def stage_processes(command: int, folder: Path) -> list:
    """The processes doing a stage's (or a `dvc repro`'s) work: those below the process `command` that are not
    warm servers, and the stages forked from a warm server (pipeline/core/warm.py) working in `folder`, which
    are not below the command that asked for them. A fork keeps the server's command line: such a stage is a
    grandchild of a server, under the server's copy that waits for it. Returns psutil.Process objects."""
    import psutil

    def warm(process: psutil.Process | None) -> bool:
        return process is not None and "pipeline.core.warm" in (process.cmdline() or [])

    found = []
    try:
        found = [child for child in psutil.Process(command).children(recursive=True) if not warm(child)]
    except psutil.Error:
        pass
    for process in psutil.process_iter(["cwd"]):
        try:
            cwd = process.info["cwd"]
            if cwd and Path(cwd).is_relative_to(folder) and warm(process) and warm(parent := process.parent()) \
                    and warm(parent.parent()):
                found.append(process)
        except psutil.Error:
            continue
    return found


def stage_worker(command: int, folder: Path):  # noqa: ANN201 - a psutil.Process (psutil is imported lazily)
    """The one process running a stage command's work (as the kernel's OOM killer would pick it): the stage
    forked for it by a warm server, else the command's own supervised child; None while there is neither."""
    import psutil

    processes = stage_processes(command, folder)
    warm = [p for p in processes if "pipeline.core.warm" in p.cmdline()]
    try:
        own = psutil.Process(command).children()
    except psutil.Error:
        own = []
    return (warm or [p for p in own if p in processes] or [None])[0]


def free_port() -> int:
    """A loopback port nothing listens on (at the moment of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def mlflow_server(store: str, artifacts: Path | None = None, cwd: Path | None = None, timeout: float = 120,
                  port: int | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real `mlflow server` on a loopback port (a free one unless given) over the tracking store `store`:
    yields its base URL and process once /health answers; stopped on exit."""
    port = port or free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", store, "--workers", "1"]
    if artifacts is not None:
        command += ["--artifacts-destination", str(artifacts)]
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"mlflow server exited with status {proc.returncode}") from None
                if time.time() > deadline:
                    raise RuntimeError(f"mlflow server did not answer /health within {timeout:.0f} s") from None
                time.sleep(0.5)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
