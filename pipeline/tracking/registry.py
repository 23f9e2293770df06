"""The MLflow Model Registry side of publishing: log a dataset's winner with MLflow's sentence_transformers
flavour, register it as a version of one registered model per dataset, point an alias at it, and tag it with
what it is (card, scores, DVC experiment, git commit). Registering the same model files again adds nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.tracking.runs import configure, extend_invocation, parent_run_id, provenance_tags

FINGERPRINT = "model_sha256"  # version tag: the model files' hash, what "nothing changed" is decided on


def fingerprint(model_dir: Path) -> str:
    """sha256 over the model folder's files (names and bytes), independent of where the folder is."""
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(model_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    alias: str
    created: bool  # False: the alias already pointed at a version with the same model files
    experiment_id: str  # where the runs of this invocation are, for the link the summary prints


def register(experiment: str, name: str, alias: str, model_dir: Path, card: str, tags: dict[str, str],
             input_example: list[str], trust_remote_code: bool) -> Registered:
    """Log the model in `model_dir` and register it under `name` with `alias`, unless the version the alias
    points at already holds the same files."""
    import mlflow
    from sentence_transformers import SentenceTransformer

    experiment_id = configure(experiment)
    client = mlflow.MlflowClient()
    sha = fingerprint(model_dir)
    current = _aliased(client, name, alias)
    if current is not None and current.tags.get(FINGERPRINT) == sha:
        if current.description != card:  # same model, card re-rendered (e.g. a new Hub id): keep the page current
            client.update_model_version(name, current.version, description=card)
        return Registered(name, str(current.version), alias, created=False, experiment_id=experiment_id)

    run_tags = {"kind": "publish", **provenance_tags(), **tags}
    if parent := parent_run_id(experiment_id):
        run_tags["mlflow.parentRunId"] = parent
    model = SentenceTransformer(str(model_dir), trust_remote_code=trust_remote_code)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"publish/{tags['dataset']}", tags=run_tags):
        mlflow.log_text(card, "card/README.md")
        info = mlflow.sentence_transformers.log_model(model, name="model", input_example=input_example,
                                                      registered_model_name=name,
                                                      pip_requirements=pip_requirements(model_dir))
    version = str(info.registered_model_version)
    client.update_model_version(name, version, description=card)  # the registry's page renders the card
    provenance = provenance_tags()
    where = {"git_commit": provenance.get("mlflow.source.git.commit", "unknown"), "dvc_exp": provenance.get("dvc_exp", "none")}
    for key, value in {**tags, **where, FINGERPRINT: sha, "card": "card/README.md"}.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, alias, version)
    extend_invocation(experiment_id)
    return Registered(name, version, alias, created=True, experiment_id=experiment_id)


def pip_requirements(model_dir: Path) -> list[str]:
    """What serving the logged model needs: MLflow's own list for the flavour (sentence-transformers,
    transformers, torch at the installed versions), mlflow, and peft for a LoRA adapter.

    Passed to log_model so MLflow skips inferring them: that starts a second Python process that imports the
    stack and loads the model (12 s of a 12.5 s log_model on the 2-core CPU) and lists whatever it saw
    imported (google-auth, pydot, ...), with torch as `2.13.0+cpu`, which PyPI does not serve."""
    import logging
    import re

    import mlflow

    # MLflow warns that torch's `+cpu` label was dropped (it is not, in what it returns); this drops it below
    pins = logging.getLogger("mlflow.utils.requirements_utils")
    level = pins.level
    pins.setLevel(logging.ERROR)
    try:
        installed = [*mlflow.sentence_transformers.get_default_pip_requirements(), f"mlflow=={mlflow.__version__}"]
    finally:
        pins.setLevel(level)
    if (model_dir / "adapter_config.json").exists():
        from importlib.metadata import version

        installed.append(f"peft=={version('peft')}")
    return sorted(re.sub(r"\+.*$", "", requirement) for requirement in installed)  # drop local labels (+cpu)


def _aliased(client: Any, name: str, alias: str) -> Any:
    """The model version `alias` points at, or None (no such registered model or alias yet)."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except Exception:  # MlflowException RESOURCE_DOES_NOT_EXIST, from either store
        return None
