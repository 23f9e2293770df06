"""Run a DVC experiment from a params override file: `python scripts/exp_from_config.py configs/seed_003.yaml`.

The override is a partial params.yaml; each leaf becomes a `-S key=value` of `dvc exp run`, so the
experiment is an ordinary DVC experiment (see it with `dvc exp show`, its cells in MLflow tagged with
the experiment name). Extra arguments go to `dvc exp run` (e.g. --queue, --dry).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


def flatten(node: Any, existing: Any, prefix: str = "") -> list[str]:
    """Nested override -> ["key.sub=value", ...] in the Hydra syntax `dvc exp run -S` takes: a key
    that params.yaml does not have yet gets a leading `+`."""
    if isinstance(node, dict) and node:
        items = []
        for key, value in node.items():
            inner = existing.get(key) if isinstance(existing, dict) else None
            items += flatten(value, inner, f"{prefix}.{key}" if prefix else key)
        return items
    return [f"{'' if existing is not None else '+'}{prefix}={json.dumps(node)}"]


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    config = Path(sys.argv[1])
    override = yaml.safe_load(config.read_text())
    name = override.pop("experiment_name", config.stem.replace("_", "-"))
    override.pop("notes", None)
    args = ["dvc", "exp", "run", "--name", name]
    for item in flatten(override, yaml.safe_load(Path("params.yaml").read_text())):
        args += ["-S", item]
    print(" ".join(args))
    raise SystemExit(subprocess.call(args + sys.argv[2:]))


if __name__ == "__main__":
    main()
