"""The MLflow Model Registry side of publishing: log a dataset's winner with MLflow's sentence_transformers
flavour, register it as a version of one registered model per dataset, point an alias at it, and tag it with
what it is (card, scores, DVC experiment, git commit). Registering the same model files again adds nothing.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.tracking.runs import configure, end_dead_runs, extend_invocation, parent_run_id, provenance_tags

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
    """Log the model in `model_dir` and register it under `name` with `alias`, unless a version already holds
    the same files (then the alias is moved to it).

    Safe to kill at any point: a version is created with all its tags in one request (never a version without
    its fingerprint), and the alias is set last, so the next run finds the version by its fingerprint and
    only sets the alias; a publish run left RUNNING by a killed stage is ended KILLED."""
    import mlflow

    experiment_id = configure(experiment)
    client = mlflow.MlflowClient()
    sha = fingerprint(model_dir)
    current = _aliased(client, name, alias)
    if current is not None and current.tags.get(FINGERPRINT) == sha:
        if current.description != card:  # same model, card re-rendered (e.g. a new Hub id): keep the page current
            client.update_model_version(name, current.version, description=card)
        return Registered(name, str(current.version), alias, created=False, experiment_id=experiment_id)
    end_dead_runs(experiment_id, f"tags.kind = 'publish' and tags.dataset = '{tags['dataset']}'")
    found = _version_with(client, name, sha)
    if found is None:  # not registered yet (or only logged by a run that was killed: logged again)
        found = _create_version(client, experiment_id, name, model_dir, card, tags, sha, input_example,
                                trust_remote_code)
    elif found.description != card:
        client.update_model_version(name, found.version, description=card)
    client.set_registered_model_alias(name, alias, str(found.version))
    extend_invocation(experiment_id)
    return Registered(name, str(found.version), alias, created=True, experiment_id=experiment_id)


def _create_version(client: Any, experiment_id: str, name: str, model_dir: Path, card: str, tags: dict[str, str],
                    sha: str, input_example: list[str], trust_remote_code: bool) -> Any:
    """Log the model with MLflow's sentence_transformers flavour in a publish run, then register it as a new
    version carrying every tag from its first moment."""
    import mlflow
    from sentence_transformers import SentenceTransformer

    run_tags = {"kind": "publish", **provenance_tags(), **tags, "host": socket.gethostname(), "pid": str(os.getpid())}
    if parent := parent_run_id(experiment_id):
        run_tags["mlflow.parentRunId"] = parent
    model = SentenceTransformer(str(model_dir), trust_remote_code=trust_remote_code)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"publish/{tags['dataset']}", tags=run_tags) as run:
        mlflow.log_text(card, "card/README.md")
        info = mlflow.sentence_transformers.log_model(model, name="model", input_example=input_example,
                                                      pip_requirements=pip_requirements(model_dir))
    provenance = provenance_tags()
    where = {"git_commit": provenance.get("mlflow.source.git.commit", "unknown"), "dvc_exp": provenance.get("dvc_exp", "none")}
    if not _exists(client, name):
        client.create_registered_model(name)
    # the registry's page renders the card (description)
    return client.create_model_version(name, info.model_uri, run_id=run.info.run_id, description=card,
                                       tags={**tags, **where, FINGERPRINT: sha, "card": "card/README.md"},
                                       model_id=info.model_id)


def _version_with(client: Any, name: str, sha: str) -> Any:
    """The registered version holding exactly these model files, if any (the newest)."""
    if not _exists(client, name):
        return None
    versions = [v for v in client.search_model_versions(f"name = '{name}'") if v.tags.get(FINGERPRINT) == sha]
    return max(versions, key=lambda v: int(v.version), default=None)


def _exists(client: Any, name: str) -> bool:
    try:
        client.get_registered_model(name)
    except Exception:  # MlflowException RESOURCE_DOES_NOT_EXIST, from either store
        return False
    return True


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
