"""Writing outputs so that DVC never caches a half-written file, and clearing a stage's previous outputs
before it runs, so a failed stage cannot leave them looking current."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any


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
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet(path: Path, frame: Any) -> None:
    _replace(path, lambda tmp: frame.to_parquet(tmp, index=False))


def remove(*outputs: Path) -> None:
    """Delete a stage's previous outputs (files or folders) before it runs."""
    for output in outputs:
        if output.is_dir() and not output.is_symlink():
            shutil.rmtree(output)
        else:
            output.unlink(missing_ok=True)
