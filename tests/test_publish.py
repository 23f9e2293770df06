"""Publishing a dataset's winner, against the real sqlite MLflow store: the folder ready for the Hub (model
files + card as README.md, loadable with SentenceTransformer(path)), a registered model version with the
`champion` alias and its tags, the `models:/<name>@champion` round trip, nothing new on a re-run, and
`--push` failing with one line offline while the folder stays as it is."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from sentence_transformers import SentenceTransformer

from pipeline import card, evaluate, publish, report, train
from pipeline.core import paths
from pipeline.core.handoffs import PublishRecord, Winner
from pipeline.tracking.registry import FINGERPRINT, fingerprint
from tests.conftest import ROOT, stage_project, tiny_params

LOSSES = ["mnrl", "cosent"]
TEXTS = ["Return the sum of two numbers.", "A cat sits on the mat.", "def add(a, b)"]
NAME = "sentence-embedding-finetune-sts"


@pytest.fixture(scope="module")
def published(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("publish")
    with stage_project(root, tiny_params(tiny_model_dir, ["sts"], LOSSES), ["sts"]):
        for loss in LOSSES:
            for stage in (train, evaluate, card):
                stage.main(["--dataset", "sts", "--base", "tiny", "--loss", loss])
        report.main([])
        publish.main(["--dataset", "sts"])
        yield root


def client(root: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")


def test_folder_holds_the_winner_and_its_card(published: Path) -> None:
    winner = Winner.read(published / paths.winner("sts"))
    assert winner.loss in LOSSES
    folder = published / paths.publish_dir("sts")
    assert (folder / "README.md").exists() and (folder / "model.safetensors").exists()
    ours = SentenceTransformer(str(folder)).encode(TEXTS)
    trained = SentenceTransformer(str(published / paths.model_dir("sts", "tiny", winner.loss))).encode(TEXTS)
    assert np.abs(ours - trained).max() < 1e-6
    text = (folder / "README.md").read_text()
    front = yaml.safe_load(text.split("---")[1])
    loss_class = 'CoSENTLoss' if winner.loss == 'cosent' else 'MultipleNegativesRankingLoss'
    assert front["model-index"][0]["name"] == f"tiny-bert fine-tuned on Synthetic STS with {loss_class}"
    assert 'model = SentenceTransformer("publish/sts")' in text  # no hub id set: the card points at the folder
    assert "sentence_transformers_model_id" not in text
    for section in ("## Evaluation", "### Training Recipe", "Checkpoint kept:", "### Training Logs",
                    "[<code>EmbeddingSimilarityEvaluator</code>]"):
        assert section in text, section
    assert str(published) not in text and "/tmp/" not in text


def test_registered_version_with_alias_and_tags(published: Path) -> None:
    record = PublishRecord.read(published / paths.publish_record("sts"))
    assert record.registered_model == NAME and record.alias == "champion" and record.model_uri == f"models:/{NAME}@champion"
    version = client(published).get_model_version_by_alias(NAME, "champion")
    assert str(version.version) == record.version == "1"
    tags = version.tags
    winner = Winner.read(published / paths.winner("sts"))
    assert tags["dataset"] == "sts" and tags["loss"] == winner.loss
    assert float(tags["validation_spearman"]) == pytest.approx(winner.validation, abs=1e-6)
    assert float(tags["test_spearman"]) == pytest.approx(winner.test, abs=1e-6)
    assert tags[FINGERPRINT] == fingerprint(published / paths.model_dir("sts", "tiny", winner.loss))
    assert tags["git_commit"] and tags["dvc_exp"] == "none" and tags["card"] == "card/README.md"
    assert version.description == (published / paths.publish_dir("sts") / "README.md").read_text()


def test_champion_loads_back_with_the_same_embeddings(published: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{published / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{published / 'mlflow.db'}")
    loaded = mlflow.sentence_transformers.load_model(f"models:/{NAME}@champion")
    folder = SentenceTransformer(str(published / paths.publish_dir("sts")))
    assert np.abs(loaded.encode(TEXTS) - folder.encode(TEXTS)).max() < 1e-6


def test_registered_requirements_are_the_stack_pinned_and_installable(published: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import version

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{published / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{published / 'mlflow.db'}")
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}@champion"))
    requirements = (folder / "requirements.txt").read_text().split()
    torch_version = version("torch").split("+")[0]  # PyPI serves no local label such as +cpu
    assert requirements == sorted([f"mlflow=={mlflow.__version__}", f"sentence-transformers=={version('sentence-transformers')}",
                                   f"torch=={torch_version}", f"transformers=={version('transformers')}"])


def test_requirements_come_without_a_warning_in_the_stage_output() -> None:
    # MLflow logs a WARNING for torch's +cpu label when it pins the flavour's requirements; a default run's
    # output carries no library warnings
    code = "from pathlib import Path; from pipeline.tracking.registry import pip_requirements; print(pip_requirements(Path('.')))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "sentence-transformers==" in proc.stdout and "WARNING" not in proc.stderr, proc.stderr


def test_rerun_with_nothing_changed_registers_nothing(published: Path, capsys: pytest.CaptureFixture) -> None:
    publish.main(["--dataset", "sts"])
    assert "unchanged since sentence-embedding-finetune-sts version 1" in capsys.readouterr().out
    assert [str(v.version) for v in client(published).search_model_versions(f"name = '{NAME}'")] == ["1"]


def test_hub_id_goes_on_the_card_and_push_offline_is_one_line(published: Path, capsys: pytest.CaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    params = yaml.safe_load((published / "params.yaml").read_text())
    params["publish"] = {"hub_model_id": "my-org/minilm-{dataset}"}
    (published / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit) as exited:
        publish.main(["--dataset", "sts", "--push"])
    assert exited.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert errors == ["error: cannot push publish/sts to my-org/minilm-sts: the Hugging Face Hub is unreachable from "
                      "here; the folder is ready, push it where the Hub is reachable"]
    text = (published / paths.publish_dir("sts") / "README.md").read_text()
    assert 'model = SentenceTransformer("my-org/minilm-sts")' in text
    # the same files, so the registry still holds one version
    assert len(client(published).search_model_versions(f"name = '{NAME}'")) == 1


KILLED_AT = """
import os, signal, sys
import mlflow
from pipeline import publish
from pipeline.tracking import cards

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[1] == "alias":  # the new version is registered, its alias not yet moved
    mlflow.MlflowClient.set_registered_model_alias = die
else:  # the folder's files are being copied into place
    cards.cell_card = die
publish.main(["--dataset", "sts"])
"""


def test_killed_mid_publish_the_next_run_leaves_one_version_per_winner(published: Path, tmp_path: Path) -> None:
    # a kill between registering a version and moving the alias left an untagged orphan version, and the next
    # run registered the same files again
    import shutil

    from pipeline.core.digests import folder_digest
    from pipeline.core.handoffs import ModelFiles
    from scripts.scratch_project import scratch_env

    root = tmp_path / "copy"
    shutil.copytree(published, root, ignore=shutil.ignore_patterns("mlruns"))
    env = scratch_env(PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}")
    loss = Winner.read(root / paths.winner("sts")).loss
    model_dir = root / paths.model_dir("sts", "tiny", loss)
    (model_dir / "NOTICE.txt").write_text("a retrained winner: other files, so a new version\n")
    ModelFiles(files=folder_digest(model_dir)).write(root / paths.model_files("sts", "tiny", loss))
    store = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")

    def versions() -> list[tuple[str, str | None]]:
        return sorted((str(v.version), v.tags.get(FINGERPRINT)) for v in store.search_model_versions(f"name = '{NAME}'"))

    for point in ("folder", "alias"):
        killed = subprocess.run([sys.executable, "-c", KILLED_AT, point], cwd=root, env=env, capture_output=True, text=True)
        assert killed.returncode == -9, killed.stderr[-2000:]
    assert str(store.get_model_version_by_alias(NAME, "champion").version) == "1"  # the alias did not move yet
    sha = fingerprint(model_dir)
    assert versions() == [("1", fingerprint(published / paths.model_dir("sts", "tiny", loss))), ("2", sha)]  # tagged from birth

    rerun = subprocess.run([sys.executable, "-m", "pipeline.publish", "--dataset", "sts"], cwd=root, env=env,
                           capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert versions() == [("1", versions()[0][1]), ("2", sha)]  # no third version for the same files
    assert str(store.get_model_version_by_alias(NAME, "champion").version) == "2"
    assert PublishRecord.read(root / paths.publish_record("sts")).version == "2"
    folder = root / paths.publish_dir("sts")
    assert (folder / "NOTICE.txt").exists() and (folder / "README.md").exists()
    assert not list(folder.parent.glob(".*.tmp"))  # the killed copy's staging folder is gone
    experiment = store.get_experiment_by_name("sentence-embedding-finetune").experiment_id
    assert not store.search_runs([experiment], "attributes.status = 'RUNNING'")
