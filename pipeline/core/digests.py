"""What a folder held when it was written (each file's size and SHA-256), and whether it still does.

A model folder or checkpoint damaged on disk (a truncated safetensors file, a missing tokenizer file, a
partial copy) loads with a traceback at best and wrong weights at worst. The writer records the digest
when the folder is complete; a reader compares before it trusts the folder: the train stage before resuming
from a checkpoint, evaluate, card and publish before loading the model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def sha256(path: Path) -> str:
    """The file's SHA-256, read in chunks (model weights are hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    return f"{path.stat().st_size}:{sha256(path)}"


def folder_digest(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """{path relative to the folder: "<bytes>:<sha256>"} for every file below it, except those named in `skip`."""
    return {path.relative_to(folder).as_posix(): _file_digest(path) for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name not in skip}


def damage(folder: Path, expected: dict[str, str]) -> str | None:
    """What differs from the digest recorded when `folder` was written (the first file found), or None when
    every recorded file is there unchanged. Files added since are not damage."""
    if not folder.is_dir():
        return "the folder is missing"
    for name, recorded in expected.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        size, written = path.stat().st_size, int(recorded.split(":")[0])
        if size != written:
            return f"{name} is damaged ({size:,} bytes; {written:,} when written)"
        if _file_digest(path) != recorded:
            return f"{name} is damaged (its contents changed since it was written)"
    return None
