"""A throwaway git + DVC copy of this project with the params you give it.

The end-to-end tests and the benchmarks run the real `dvc repro`, `dvc exp run` and `python -m pipeline.sweep`
in such a copy: this repository's `dvc.yaml`, `pipeline/` package, DVC plot template and (optionally) built-in
data, and a `params.yaml` of their own, so what they exercise is exactly what a user's clone runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
