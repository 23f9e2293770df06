"""Writing outputs so that DVC never caches a half-written file, clearing a stage's previous outputs before it
runs (so a failed stage cannot leave them looking current), and finding a stage's inputs or saying which stage
makes them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from pipeline.core import paths
from pipeline.core.errors import PipelineError, hold_while_stage_runs


def _replace(path: Path, write: Any) -> None:
    """Write through a temporary sibling and rename it into place (atomic on one filesystem)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    _replace(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: Any) -> None:
    # allow_nan=False: a bare NaN is not JSON (strict readers reject the file); an undefined metric is left out
    # where it is computed, so reaching this is a bug and must not produce a file
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n")


def write_parquet(path: Path, frame: Any) -> None:
    _replace(path, lambda tmp: frame.to_parquet(tmp, index=False))


def _in_output_folders(target: Path) -> bool:
    """Whether `target` lies strictly inside one of the project's output folders (relative to the project
    root, the working directory every stage runs in), both as written and once symlinks below the folder
    are followed."""
    root = Path.cwd()
    written = Path(os.path.abspath(target))  # ".." collapsed, symlinks not followed
    for folder in paths.OUTPUT_FOLDERS:
        base = root / folder
        if written != base and written.is_relative_to(base):
            return written.parent.resolve().is_relative_to(base.resolve())
    return False


def remove(*outputs: Path) -> None:
    """Delete a stage's previous outputs (files or folders) before it runs. Refuses, with one line, any target
    outside the project's output folders: a deletion must never reach the user's other files."""
    for output in outputs:
        if not _in_output_folders(output):
            folders = ", ".join(str(folder) for folder in paths.OUTPUT_FOLDERS)
            raise PipelineError(f"{output}: refusing to delete it: not inside the project's output folders ({folders})")
        if output.is_dir() and not output.is_symlink():
            shutil.rmtree(output)
        else:
            output.unlink(missing_ok=True)


def require(path: Path, writer: str) -> Path:
    """`path` when it exists; otherwise one line naming the missing input and the stage that makes it."""
    if not path.exists():
        raise PipelineError(f"{path}: not found; the {writer} stage writes it: run `dvc repro` (or that stage first)")
    return path


def hold_lock(lock_file: Path, what: str) -> None:
    """Hold an exclusive lock on `lock_file` until the running stage ends; when another process holds it,
    stop at once with one line: two processes writing the same outputs would corrupt each other's."""
    from filelock import FileLock, Timeout

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        hold_while_stage_runs(FileLock(lock_file, timeout=0))
    except Timeout:
        raise PipelineError(f"{what} is already running in another process (it holds {lock_file}); "
                            f"wait for it to finish, or stop it") from None
