"""Loss registry: which sentence-transformers losses the pipeline offers, what input each needs and which
parameters it takes, checked when params.yaml is loaded (pipeline/training/losses.py builds them).

`needs` is the input format the loss consumes; data of another shape is adapted by the rules in
`pipeline.data.adaptation` (documented in the README and on every card that used one).
Nothing here imports torch: params validation must stay instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Needs = Literal["pairs", "triplets", "scored", "binary", "labels"]
ALL_SHAPES = ("pairs", "triplets", "scored")


def _positive(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{name} must be a number > 0, got {value!r}")

    return check


def _non_negative(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")

    return check


def _positive_int(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be an integer > 0, got {value!r}")

    return check


def _bool(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")

    return check


def _model_id(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a Hub model id or a local model directory, got {value!r}")

    return check


def _choice(name: str, choices: tuple[str, ...]) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")

    return check


SIMILARITIES = ("cos_sim", "dot_score")
TRIPLET_DISTANCES = ("EUCLIDEAN", "COSINE", "MANHATTAN")
SIAMESE_DISTANCES = ("EUCLIDEAN", "COSINE_DISTANCE", "MANHATTAN")


@dataclass(frozen=True)
class LossSpec:
    needs: Needs
    params: dict[str, Callable[[Any], None]] = field(default_factory=dict)
    in_batch_negatives: bool = False  # duplicates inside a batch become false negatives
    guided: bool = False  # GISTEmbed: a frozen guide model (the base model unless `guide` says) filters negatives

    @property
    def accepts(self) -> tuple[str, ...]:
        """Dataset shapes this loss can train on, directly or through an adaptation rule."""
        return () if self.needs == "labels" else ALL_SHAPES


_MNRL_PARAMS = {"scale": _positive("scale"), "similarity_fct": _choice("similarity_fct", SIMILARITIES)}
_GIST_PARAMS = {
    "guide": _model_id("guide"), "temperature": _positive("temperature"),
    "margin_strategy": _choice("margin_strategy", ("absolute", "relative")), "margin": _non_negative("margin"),
    "contrast_anchors": _bool("contrast_anchors"), "contrast_positives": _bool("contrast_positives"),
}
LOSSES: dict[str, LossSpec] = {
    "MultipleNegativesRankingLoss": LossSpec("pairs", _MNRL_PARAMS, in_batch_negatives=True),
    "CachedMultipleNegativesRankingLoss": LossSpec(
        "pairs", {**_MNRL_PARAMS, "mini_batch_size": _positive_int("mini_batch_size")}, in_batch_negatives=True
    ),
    "MultipleNegativesSymmetricRankingLoss": LossSpec("pairs", _MNRL_PARAMS, in_batch_negatives=True),
    "GISTEmbedLoss": LossSpec("pairs", _GIST_PARAMS, in_batch_negatives=True, guided=True),
    "CachedGISTEmbedLoss": LossSpec(
        "pairs", {**_GIST_PARAMS, "mini_batch_size": _positive_int("mini_batch_size")}, in_batch_negatives=True, guided=True
    ),
    "TripletLoss": LossSpec(
        "triplets",
        {"distance_metric": _choice("distance_metric", TRIPLET_DISTANCES), "triplet_margin": _non_negative("triplet_margin")},
    ),
    "CosineSimilarityLoss": LossSpec("scored"),
    "CoSENTLoss": LossSpec("scored", {"scale": _positive("scale")}),
    "AnglELoss": LossSpec("scored", {"scale": _positive("scale")}),
    "ContrastiveLoss": LossSpec(
        "binary", {"distance_metric": _choice("distance_metric", SIAMESE_DISTANCES), "margin": _non_negative("margin")}
    ),
    "OnlineContrastiveLoss": LossSpec(
        "binary", {"distance_metric": _choice("distance_metric", SIAMESE_DISTANCES), "margin": _non_negative("margin")}
    ),
    # Batch*TripletLoss need a class label per sentence, which none of the three shapes carries.
    "BatchHardTripletLoss": LossSpec("labels", {"margin": _non_negative("margin")}),
    "BatchSemiHardTripletLoss": LossSpec("labels", {"margin": _non_negative("margin")}),
    "BatchAllTripletLoss": LossSpec("labels", {"margin": _non_negative("margin")}),
}


def loss_accepts(class_name: str, shape: str) -> bool:
    return shape in LOSSES[class_name].accepts


# The winner rule's tie-break (pipeline/evaluation/leaderboard.py): among losses with equal validation
# Spearman, the simpler one wins. Simpler = earlier here: a pointwise regression on the cosine, then
# margin-based pair and triplet losses, then ranking with in-batch negatives, then guided ones; cached
# variants (the same objective with a memory trick) after their plain form.
SIMPLICITY = ("CosineSimilarityLoss", "ContrastiveLoss", "OnlineContrastiveLoss", "TripletLoss", "CoSENTLoss",
              "AnglELoss", "MultipleNegativesRankingLoss", "MultipleNegativesSymmetricRankingLoss",
              "CachedMultipleNegativesRankingLoss", "GISTEmbedLoss", "CachedGISTEmbedLoss",
              "BatchHardTripletLoss", "BatchSemiHardTripletLoss", "BatchAllTripletLoss")


def simplicity(class_name: str, matryoshka: bool) -> tuple[int, bool]:
    """Sort key: lower is simpler; a Matryoshka wrapper makes a loss less simple than its plain form."""
    return SIMPLICITY.index(class_name), matryoshka
