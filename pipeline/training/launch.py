"""Multi-process training: the train stage re-runs itself under torchrun or accelerate.

`train.launcher: torchrun | accelerate` with `train.num_processes: N` starts N workers of the same
`python -m pipeline.train ...`; PIPELINE_LAUNCHED keeps them from launching again. Every worker trains;
only rank 0 (is_main_process) writes outputs and owns the MLflow run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.core.params import Params

LAUNCHED = "PIPELINE_LAUNCHED"  # set for the launched workers, so none of them launches again


def launch_command(params: Params, argv: list[str]) -> list[str] | None:
    """The command that re-runs this stage under torchrun / accelerate, or None to train in this process
    (no launcher set, or already one of the launched workers)."""
    train = params.train
    if train.launcher == "none" or LAUNCHED in os.environ:
        return None
    stage = ["-m", "pipeline.train", *argv]
    if train.launcher == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={train.num_processes}", *stage]
    import torch

    # --multi_gpu is accelerate's torchrun-based multi-process mode; without a GPU the workers use gloo on CPU
    device = ["--multi_gpu"] if train.num_processes > 1 else [] if torch.cuda.is_available() else ["--cpu"]
    return [sys.executable, "-m", "accelerate.commands.launch", *device, f"--num_processes={train.num_processes}",
            "--num_machines=1", "--mixed_precision=no", "--dynamo_backend=no", *stage]


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def relaunched(params: Params, argv: list[str], cell: str) -> bool:
    """Run this stage under the configured launcher and wait; False when this process should train itself."""
    command = launch_command(params, argv)
    if command is None:
        return False
    print(f"train {cell}: launching {params.train.num_processes} processes with {params.train.launcher}")
    # the workers must import this same `pipeline` package, wherever the stage runs from
    code_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, LAUNCHED: "1", "PYTHONPATH": os.pathsep.join(filter(None, [code_root, os.environ.get("PYTHONPATH")])),
           # each worker's environment differs (RANK...): a warm server would start per worker and save nothing
           "PIPELINE_WARM_START": "0"}
    if (code := subprocess.call(command, env=env)) != 0:
        raise PipelineError(f"train {cell}: {params.train.launcher} exited with status {code}")
    return True
