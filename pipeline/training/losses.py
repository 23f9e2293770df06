"""Build the sentence-transformers loss a params.yaml entry names, turning its YAML values into library objects."""

from __future__ import annotations

from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.core.loss_specs import LOSSES
from pipeline.core.models import display_id, resolve_model


def build_loss(class_name: str, params: dict[str, Any], model: Any, base_model: str,
               matryoshka: tuple[list[int], list[float] | None] | None = None, trust_remote_code: bool = False) -> Any:
    """Instantiate the sentence-transformers loss, turning the YAML strings into library objects;
    wrap it in MatryoshkaLoss when `matryoshka` gives (dims, weights)."""
    from sentence_transformers import SentenceTransformer, util
    from sentence_transformers.sentence_transformer import losses

    kwargs = dict(params)
    if "similarity_fct" in kwargs:
        kwargs["similarity_fct"] = getattr(util, kwargs["similarity_fct"])
    if "distance_metric" in kwargs:
        metric_enum = losses.TripletDistanceMetric if class_name == "TripletLoss" else losses.SiameseDistanceMetric
        kwargs["distance_metric"] = getattr(metric_enum, kwargs["distance_metric"])
    guide_id = kwargs.pop("guide", base_model)
    if LOSSES[class_name].guided:
        key = "losses.<loss>.params.guide" if "guide" in params else "base_models.<base>.model"
        guide = SentenceTransformer(resolve_model(guide_id, key), trust_remote_code=trust_remote_code)
        guide.max_seq_length = max(guide.max_seq_length, model.max_seq_length)  # the library refuses a shorter guide
        kwargs["guide"] = guide.requires_grad_(False)
    loss = getattr(losses, class_name)(model, **kwargs)
    if LOSSES[class_name].guided:
        # the card and MLflow show the loss config; the guide must appear as its id, not as a module repr with a local path
        config = loss.get_config_dict()
        loss.get_config_dict = lambda: {**config, "guide": display_id(guide_id)}
    if matryoshka:
        dims, weights = matryoshka
        if max(dims) > model.get_embedding_dimension():
            raise PipelineError(f"params.yaml: matryoshka dims {dims}: the model's embeddings have only "
                                f"{model.get_embedding_dimension()} dimensions")
        loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=dims, matryoshka_weights=weights)
    return loss



def non_default_params(loss: Any, model: Any) -> dict[str, tuple[Any, Any]]:
    """{parameter: (value used, the library's default)} where the loss differs from its class's defaults,
    compared through the library's own config of each, so enums and functions compare by name. A
    Matryoshka wrapper is looked through (its dims are stated apart)."""
    inner = getattr(loss, "loss", loss) if type(loss).__name__ == "MatryoshkaLoss" else loss
    extra = {"guide": inner.guide} if LOSSES.get(type(inner).__name__) and LOSSES[type(inner).__name__].guided else {}
    default = type(inner)(model, **extra).get_config_dict()
    used = inner.get_config_dict()
    return {key: (value, default.get(key)) for key, value in used.items() if key != "guide" and value != default.get(key)}
