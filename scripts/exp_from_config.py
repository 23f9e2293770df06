"""Run a DVC experiment from a params override file:

    python scripts/exp_from_config.py configs/seed_003_triplet_zh_products.yaml

The override is a partial params.yaml; each leaf becomes a `-S key=value` of `dvc exp run`, so the
experiment is an ordinary DVC experiment (see it with `dvc exp show`, its cells in MLflow tagged with
the experiment name). It runs in a temporary copy (`--temp`): the workspace keeps its params and outputs
whether the experiment succeeds or fails; `dvc exp apply NAME` brings a finished one into the workspace.
Extra arguments go to `dvc exp run` (e.g. --queue to queue it instead, --dry, more -S overrides); an
extra `-S key=value` replaces the config's value of that key.
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
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)
    config = Path(sys.argv[1])
    override = yaml.safe_load(config.read_text())
    name = override.pop("experiment_name", config.stem.replace("_", "-"))
    override.pop("notes", None)
    extra = sys.argv[2:]
    where = [] if {"--queue", "--temp"} & set(extra) else ["--temp"]
    args = ["dvc", "exp", "run", *where, "--name", name]
    given = {extra[i + 1].split("=", 1)[0].lstrip("+") for i, arg in enumerate(extra[:-1]) if arg in ("-S", "--set-param")}
    for item in flatten(override, yaml.safe_load(Path("params.yaml").read_text())):
        if item.split("=", 1)[0].lstrip("+") not in given:  # the command line's own -S wins
            args += ["-S", item]
    print(" ".join(args + extra))
    code = subprocess.call(args + extra)
    if code == 0 and "--queue" not in extra:
        print(f"experiment {name} done: compare with `dvc exp show`, `dvc exp diff`; "
              f"`dvc exp apply {name}` puts its params and outputs in the workspace")
    raise SystemExit(code)


if __name__ == "__main__":
    main()
