"""The pruners a sweep may use, as params.yaml's `sweep.pruner` declares them: read by the sweep command and by
a train stage that reports to a sweep trial (pipeline/tuning/pruning.py rebuilds Optuna's pruner from it)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoPrunerParams(_Strict):
    type: Literal["none"]


class MedianPrunerParams(_Strict):
    """Stop a trial whose validation Spearman at a step is below the median of earlier trials' at that step."""

    type: Literal["median"]
    startup_trials: int = Field(default=2, ge=0)  # trials that run in full before any is pruned
    warmup_steps: int = Field(default=0, ge=0)  # training steps of every trial before it can be pruned
    interval_steps: int = Field(default=1, gt=0)


class PercentilePrunerParams(MedianPrunerParams):
    type: Literal["percentile"]  # type: ignore[assignment]
    percentile: float = Field(gt=0, lt=100)  # keep trials in the top (100 - percentile)%


class ThresholdPrunerParams(_Strict):
    """Stop a trial as soon as its validation Spearman falls below a fixed value (e.g. the base model's)."""

    type: Literal["threshold"]
    lower: float = Field(ge=-1, le=1)
    warmup_steps: int = Field(default=0, ge=0)


class HyperbandPrunerParams(_Strict):
    type: Literal["hyperband"]
    min_resource: int = Field(default=1, gt=0)  # training steps every trial gets
    reduction_factor: int = Field(default=3, gt=1)


PrunerParams = Annotated[NoPrunerParams | MedianPrunerParams | PercentilePrunerParams | ThresholdPrunerParams
                         | HyperbandPrunerParams, Field(discriminator="type")]
