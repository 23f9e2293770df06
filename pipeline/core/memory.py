"""Running out of memory, said in one line: which stage was running and the settings that lower its memory.

Two ways a stage meets its memory limit. An allocation refused under an address-space limit (`ulimit -v`)
raises in the stage (MemoryError, or torch's allocator error), and the stage's `cli` wrapper says it. The
kernel's out-of-memory killer (a cgroup limit, a container, a full machine) sends SIGKILL, which nothing in
the process survives: the stage's supervising parent (core/process.py) says it, with the peak memory the
stage reached.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _names(argv: list[str]) -> list[str]:
    """The values of a stage's flags: ["sts", "cosent"] for `--dataset sts --loss cosent`."""
    return [arg for arg in argv if not arg.startswith("-")]


def stage_label(module: str, argv: list[str]) -> str:
    """"train sts/cosent" for `python -m pipeline.train --dataset sts --loss cosent`."""
    return " ".join(filter(None, [module.rsplit(".", 1)[-1], "/".join(_names(argv))]))


def is_out_of_memory(error: BaseException) -> bool:
    """A refused allocation: Python's MemoryError, torch's CPU allocator error or its CUDA OutOfMemoryError."""
    if isinstance(error, MemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("can't allocate memory" in text or type(error).__name__ == "OutOfMemoryError")


def settings_hint(module: str, argv: list[str]) -> str:
    """The settings that lower this stage's memory, with their values from params.yaml when it loads."""
    stage, values = module.rsplit(".", 1)[-1], _names(argv)
    if stage == "train":
        shown = [_with_value(f"train.{key}") for key in ("batch_size", "max_seq_length", "eval_batch_size",
                                                          "validation_pairs")]
        return f"lower {shown[0]} or {shown[1]}; for its validation passes {shown[2]} or {shown[3]}"
    if stage in ("baseline", "evaluate", "card", "publish") and values:  # a whole test split is embedded at once
        return f"give it more memory, or cap the set's rows (datasets.{values[0]}.rows)"
    return "give it more memory"


def _with_value(key: str) -> str:
    """`train.batch_size (32)`, the value as params.yaml spells it (read as plain YAML: the failing stage's
    validated params are out of reach here, and the key alone when the file does not set it)."""
    import yaml

    try:
        value: object = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
        for part in key.split("."):
            value = value[part]  # type: ignore[index]
    except Exception:  # noqa: BLE001 - the hint goes without a value rather than hide the memory error
        return key
    return f"{key} ({value})"


def main_module() -> str:
    """The module this process runs (`python -m pipeline.train` -> "pipeline.train")."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec.name if spec else Path(sys.argv[0]).stem


def gib(kib: int) -> str:
    return f"{kib / 2**20:.1f} GiB"
