"""Output writing and removal: a deletion never reaches outside the project's output folders, JSON
never holds NaN, a missing input names the stage that makes it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.core import files
from pipeline.core.errors import PipelineError


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/project as the working directory, with a victim folder beside it that nothing may touch."""
    project, victim = tmp_path / "project", tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "sub" / "keep.txt").write_text("the user's own file")
    (project / "data" / "raw").mkdir(parents=True)
    (project / "data" / "raw" / "mine.csv").write_text("anchor,positive\na,b\n")
    (project / "params.yaml").write_text("{}\n")
    monkeypatch.chdir(project)
    return project


@pytest.mark.parametrize("target", [
    "../victim", "../victim/sub", "models/../../victim", "data/splits/../../../victim",  # climbing out by ".."
    "params.yaml", "data/raw/mine.csv", "data/raw", "data",  # the project's own inputs
    "models", "results",  # an output folder as a whole
])
def test_remove_refuses_anything_outside_the_output_folders(project: Path, target: str) -> None:
    with pytest.raises(PipelineError, match=r"refusing to delete it: not inside the project's output folders"):
        files.remove(Path(target))
    with pytest.raises(PipelineError, match=r"refusing to delete it"):
        files.remove((project / target).absolute())
    assert (project.parent / "victim" / "sub" / "keep.txt").exists()
    assert (project / "params.yaml").exists() and (project / "data" / "raw" / "mine.csv").exists()


def test_remove_does_not_follow_a_symlink_out_of_an_output_folder(project: Path) -> None:
    (project / "models").mkdir()
    (project / "models" / "escape").symlink_to(project.parent / "victim")
    with pytest.raises(PipelineError, match="refusing to delete it"):
        files.remove(Path("models/escape/sub"))
    files.remove(Path("models/escape"))  # the link itself lies inside models/: only the link goes
    assert not (project / "models" / "escape").exists()
    assert (project.parent / "victim" / "sub" / "keep.txt").exists()


def test_remove_deletes_outputs_and_staging_folders(project: Path) -> None:
    for path in ("models/sts/tiny/cosent/model.safetensors", "models/sts/.cosent.123.tmp/x",
                 "results/evaluate/sts/tiny/cosent.json",
                 "data/splits/sts/train.parquet", "checkpoints/sts/tiny/cosent/checkpoint-5/x"):
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text("x")
    files.remove(Path("models/sts/tiny/cosent"), Path("models/sts/.cosent.123.tmp"),
                 Path("results/evaluate/sts/tiny/cosent.json"),
                 Path("data/splits/sts"), (project / "checkpoints/sts/tiny/cosent").absolute(), Path("results/not/there.json"))
    assert not any((project / p).exists() for p in ("models/sts/tiny/cosent", "models/sts/.cosent.123.tmp", "data/splits/sts",
                                                    "results/evaluate/sts/tiny/cosent.json", "checkpoints/sts/tiny/cosent"))
    assert (project / "models" / "sts").is_dir()


def test_json_never_holds_nan(project: Path) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        files.write_json(project / "results" / "x.json", {"spearman": math.nan})
    assert not (project / "results").exists()  # nothing written, not even a temporary file


def test_require_names_the_stage_that_writes_a_missing_input(project: Path) -> None:
    assert files.require(Path("params.yaml"), "nobody") == Path("params.yaml")
    with pytest.raises(PipelineError) as caught:
        files.require(Path("data/ingested/sts.parquet"), "ingest")
    assert str(caught.value) == ("data/ingested/sts.parquet: not found; the ingest stage writes it: "
                                 "run `dvc repro` (or that stage first)")
