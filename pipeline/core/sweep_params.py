"""params.yaml's `sweep:` section, an Optuna search over params keys run by `python -m pipeline.sweep`, and the
checks that keep the search inside the stage schema. No stage reads it: stages see `sweep` as an opaque
mapping, so a change here re-runs nothing."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.core.errors import PipelineError
from pipeline.core.params import Params, ParamsError, one_line
from pipeline.core.pruner_params import MedianPrunerParams, PrunerParams


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatDimension(_Strict):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False  # sample log-uniformly (learning rates)
    step: float | None = Field(default=None, gt=0)  # a grid of low, low + step, ... (not with log)

    @model_validator(mode="after")
    def _valid_range(self) -> FloatDimension:
        _check_range(self.low, self.high, self.log, self.step)
        return self


class IntDimension(_Strict):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, gt=0)

    @model_validator(mode="after")
    def _valid_range(self) -> IntDimension:
        _check_range(self.low, self.high, self.log, self.step if self.step != 1 else None)
        return self


class ChoiceDimension(_Strict):
    type: Literal["categorical"]
    choices: list[str | bool | int | float | None] = Field(min_length=1)  # what Optuna can store


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    """The rules of Optuna's distributions, checked here so a bad range is one params.yaml line, not a
    traceback in the middle of a sweep."""
    if not low < high:
        raise ValueError(f"empty range: low {low} must be below high {high}")
    if log and low <= 0:
        raise ValueError(f"log scale needs low > 0, got {low}")
    if log and step is not None:
        raise ValueError("log and step cannot be combined")


SearchDimension = Annotated[FloatDimension | IntDimension | ChoiceDimension, Field(discriminator="type")]


class ObjectiveParams(_Strict):
    dataset: str  # one of run.datasets
    loss: str  # one of run.losses, or "best": every loss of run.losses is trained and the best one counts
    base: str | None = None  # one of run.base_models; may be left out when the run has one


# Keys a sweep may not set: run.* decides which cells exist, sweep.* is the search itself, mlflow.* where runs go.
UNSWEEPABLE = ("run", "sweep", "mlflow")


class SweepParams(_Strict):
    study: str = Field(default="sweep", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # also names its DVC experiments
    objective: ObjectiveParams
    space: dict[str, SearchDimension] = Field(min_length=1)  # dotted params key -> its range or choices
    trials: int = Field(default=20, gt=0)  # in total, across every worker of the study
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    pruner: PrunerParams = MedianPrunerParams(type="median")
    heartbeat_seconds: int = Field(default=60, gt=0)  # a worker silent for 2x this long has its trial failed

    def objective_losses(self, run_losses: list[str]) -> list[str]:
        return list(run_losses) if self.objective.loss == "best" else [self.objective.loss]

    def objective_base(self, run_bases: list[str]) -> str:
        """The base model of the objective's cells: the one named, else the run's only one (checked by check_sweep)."""
        return self.objective.base or run_bases[0]


class TrialState(StrEnum):
    """How a trial ended: Optuna's TrialState of the same name, and the MLflow trial run's `trial_state` tag."""

    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAIL = "FAIL"


def read_sweep(params: Params, study: str | None = None) -> SweepParams:
    """The `sweep:` section of these params, validated (one line naming the key on a problem); `study`
    overrides its name (the command's --study)."""
    if params.sweep is None:
        raise PipelineError("params.yaml: no sweep: section (objective, space, ...); see docs/experiments.md, Sweeps")
    document = {"sweep": {**params.sweep, **({"study": study} if study else {})}}
    try:
        return _SweepSection.model_validate(document).sweep
    except ValidationError as error:
        if study and error.errors()[0]["loc"][:2] == ("sweep", "study"):
            raise PipelineError(f"--study {study!r}: letters, digits, - and _ only (it names DVC experiments)") from None
        raise ParamsError(one_line(error, document, Path("params.yaml"))) from None


class _SweepSection(_Strict):
    """The section under its key, so a problem's location reads `sweep.<key>` as in params.yaml."""

    sweep: SweepParams


def check_sweep(params: Params, sweep: SweepParams) -> None:
    """The sweep's objective names a cell of the run, and every value its search space can take (each
    bound and choice) gives valid params: the search cannot wander outside the schema mid-sweep.

    Run by `pipeline.sweep` before any training, not by every stage: a sweep section that no longer fits
    the run (say run.datasets changed) must not stop `dvc repro`."""
    try:
        _check_sweep(params, sweep)
    except ParamsError as error:
        raise ParamsError(f"params.yaml: {error}") from None


def _check_sweep(params: Params, sweep: SweepParams) -> None:
    objective = sweep.objective
    if objective.dataset not in params.run.datasets:
        raise ParamsError(f"sweep.objective.dataset: {objective.dataset!r} is not in run.datasets: "
                          f"{', '.join(params.run.datasets)}")
    if objective.loss != "best" and objective.loss not in params.run.losses:
        raise ParamsError(f"sweep.objective.loss: {objective.loss!r} is not in run.losses: "
                          f"{', '.join(params.run.losses)} (or best: the best of them)")
    if objective.base is None and len(params.run.base_models) > 1:
        raise ParamsError(f"sweep.objective.base: run.base_models has {len(params.run.base_models)} "
                          f"({', '.join(params.run.base_models)}); name the one whose cells the sweep tunes")
    if objective.base is not None and objective.base not in params.run.base_models:
        raise ParamsError(f"sweep.objective.base: {objective.base!r} is not in run.base_models: "
                          f"{', '.join(params.run.base_models)}")
    if objective.loss == "best" and sweep.pruner.type != "none":
        # a pruner compares one validation curve per trial at the same step; "best" trains several losses
        raise ParamsError(f"sweep.pruner: {sweep.pruner.type} needs one curve per trial, and objective loss 'best' "
                          f"trains {len(params.run.losses)}: name one loss, or set pruner type none")
    if params.train.eval_strategy == "no":
        raise ParamsError("sweep.objective: the objective is validation Spearman during training, but "
                          "train.eval_strategy is no; set steps or epoch")
    base = params.model_dump(mode="json", by_alias=True, exclude={"sweep"})
    cells, objective_base = sweep.objective_losses(params.run.losses), sweep.objective_base(params.run.base_models)
    for key, dimension in sweep.space.items():
        where = f"sweep.space.{key}"
        section, _, rest = key.partition(".")
        if section in UNSWEEPABLE:
            raise ParamsError(f"{where}: {section}.* cannot be swept (run decides the cells, sweep is the search, "
                              f"mlflow where runs go)")
        name = rest.partition(".")[0]
        if (section == "datasets" and name != objective.dataset or section == "losses" and name not in cells
                or section == "base_models" and name != objective_base):
            raise ParamsError(f"{where}: does not change the objective's cells ({objective.dataset} x {objective_base} x "
                              f"{', '.join(cells)})")
        if sweep.sampler == "grid" and dimension.type != "categorical":
            raise ParamsError(f"{where}: sampler grid needs choices (type: categorical), got a {dimension.type} range")
        values = dimension.choices if isinstance(dimension, ChoiceDimension) else [dimension.low, dimension.high]
        for value in values:
            _check_swept_value(base, where, key, value)


def _check_swept_value(base: dict[str, Any], where: str, key: str, value: Any) -> None:
    try:
        document = with_value(base, key, value)
        Params.model_validate(document)
    except ValidationError as error:
        if error.errors()[0]["type"] == "extra_forbidden":
            raise ParamsError(f"{where}: not a params key ({'.'.join(map(str, error.errors()[0]['loc']))} is unknown)") from None
        problem = one_line(error, document, Path("params.yaml")).removeprefix("params.yaml: ")
        raise ParamsError(f"{where}: {value!r} is not a valid value ({problem})") from None
    except ParamsError as error:
        raise ParamsError(f"{where}: {value!r} is not a valid value ({error})") from None
    except ValueError as error:  # a key below a plain value
        raise ParamsError(f"{where}: not a params key ({error})") from None


def with_value(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of a params document with the dotted `key` set to `value` (missing mappings created, as
    `dvc exp run -S +key=value` does)."""
    import copy

    document = copy.deepcopy(raw)
    node, parts = document, key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ValueError(f"{'.'.join(parts[:depth + 1])} is a value, so {key} is not a params key")
        node = child
    node[parts[-1]] = value
    return document
