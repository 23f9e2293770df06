"""A full disk, said in one line: which output could not be written, how much it needs, how much is free.

A write that runs out of space fails in as many ways as there are writers: OSError ENOSPC from Python,
"No space left on device (os error 28)" from safetensors, "unexpected pos" from torch's zip writer (no
mention of space at all). So the failure is recognised by what it says when it says it, and otherwise by the
disk it left behind: a filesystem under the project's outputs with next to nothing free. What the stage was
writing and how much that needs comes from what it declared before writing (`expect_writes`).
"""

from __future__ import annotations

import errno
import shutil
from dataclasses import dataclass
from pathlib import Path

NEARLY_FULL = 1 << 20  # bytes free below which a failed write is put down to the full disk
ENOSPC_TEXT = ("no space left on device", "os error 28", "disk quota exceeded")


@dataclass(frozen=True)
class Write:
    path: Path  # the output (file or folder) being written
    needs: int | None  # bytes it takes, when known
    what: str  # "a checkpoint", "the model"


def _says_no_space(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(seen).lower() for text in ENOSPC_TEXT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _free(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return None


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def full_disk_line(error: BaseException, writes: list[Write]) -> str | None:
    """One line for a write the disk had no room for, or None when `error` is something else."""
    candidates = writes or [Write(Path.cwd(), None, "the stage's outputs")]
    full = [(write, free) for write in candidates if (free := _free(write.path)) is not None
            and (free < NEARLY_FULL or (write.needs is not None and free < write.needs))]
    if not full and not _says_no_space(error):
        return None
    write, free = full[0] if full else (candidates[-1], _free(candidates[-1].path))
    needs = f"{write.what} needs about {_size(write.needs)}" if write.needs else f"{write.what} could not be written"
    return (f"{write.path}: no space left on its disk ({_size(free or 0)} free): {needs}; free some space (or move "
            f"the folder to a larger disk) and run the stage again; nothing half-written is kept")
