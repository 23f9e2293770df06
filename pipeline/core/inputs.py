"""dvc.inputs.yaml: what dvc.yaml needs to know about the data params.yaml declares, in a form DVC can read.

DVC's templating cannot compute: it cannot turn a dataset's `source` (a file, a folder, a built-in
generator, a Hub id) into the files its ingest stage must depend on, and a matrix cannot look a value up by
its item. So this file, generated from params.yaml, lists for DVC:

- `inputs.datasets`: the datasets the train matrix runs (params.yaml run.datasets);
- `inputs.sets`: every set that is ingested, split and scored for the base model (the run's datasets and
  the eval sets), with the params key its ingest reads, the local files it reads (a built-in generator's
  module; none for a Hub dataset, whose id and split DVC tracks as params; one per split given as a file),
  padded to FILE_SLOTS entries because DVC cannot interpolate a list (repeated paths count once), and what
  its split writes besides the test set.

Every stage run by DVC checks the file against params.yaml before any work and, when params.yaml has moved
on (a dataset added, a source changed), rewrites it and stops: DVC read the old one for this run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from pipeline.core import files, paths
from pipeline.core.errors import PipelineError

INPUTS_FILE = Path("dvc.inputs.yaml")
FILE_SLOTS = 3
BUILTIN_GENERATORS = "pipeline/data/builtin.py"
NO_LOCAL_FILE = "pipeline/ingest.py"  # already an ingest dep: a set read from the Hub has no file of its own
HEADER = ("# Generated from params.yaml by pipeline/core/inputs.py; do not edit. dvc.yaml reads it for the datasets\n"
          "# the pipeline runs and the files each one's ingest depends on. Any stage DVC runs refreshes it.\n")


def source_files(source: str) -> list[str]:
    """The local files a source reads."""
    if source.startswith("builtin:"):
        return [BUILTIN_GENERATORS]
    if source.startswith("hf:"):
        return []
    return [source]


def dvc_inputs(params: Any) -> dict[str, Any]:
    """The content of dvc.inputs.yaml for these params."""
    sets = {}
    for name in params.evaluation_sets:
        section = "datasets" if name in params.datasets else "eval_sets"
        # a mapping of given splits reads up to three files, one slot each
        files = [file for source in params.data_config(name).sources.values() for file in source_files(source)]
        files = files or [NO_LOCAL_FILE]
        # what split writes besides the test set: a dataset's train / validation folder; an eval set has
        # none, so its test set stands in (a repeated out counts once)
        splits = str(paths.split_dir(name)) if section == "datasets" else str(paths.split_file(name, "test"))
        sets[name] = {"params": f"{section}.{name}", "files": (files + files[-1:] * FILE_SLOTS)[:FILE_SLOTS],
                      "splits": splits}
    return {"inputs": {"datasets": list(params.run.datasets), "sets": sets}}


def render(params: Any) -> str:
    return HEADER + yaml.safe_dump(dvc_inputs(params), sort_keys=False, default_flow_style=None, width=120)


def write_inputs(params: Any, root: Path = Path(".")) -> None:
    files.write_text(root / INPUTS_FILE, render(params))  # atomic: DVC may read it while a stage refreshes it


def check_inputs(params: Any) -> None:
    """Under DVC, stop with one line when dvc.inputs.yaml no longer matches params.yaml (after refreshing it)."""
    if "DVC_STAGE" not in os.environ:  # run by hand or by a test: DVC's view of the matrix is not in play
        return
    expected = render(params)
    try:
        current = INPUTS_FILE.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if current != expected:
        write_inputs(params)
        raise PipelineError(f"{INPUTS_FILE}: out of date with params.yaml (datasets run or their sources changed); "
                            f"refreshed it now, but DVC read the old one for this run: run it again")
