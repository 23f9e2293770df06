"""The sources stage: one fingerprint per set that changes with what that set reads and nothing else."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import sources
from pipeline.core import paths
from pipeline.core.digests import sha256
from pipeline.data import builtin
from tests.conftest import ROOT


def test_each_generator_module_is_self_contained() -> None:
    # its fingerprint is the SHA-256 of its own file: an import of another project module would go unseen
    for generator in builtin.GENERATORS.values():
        path = Path(sys.modules[generator.__module__].__file__)
        imported = {node.module for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Import)
                     for alias in node.names}
        assert not {name for name in imported if name and name.split(".")[0] == "pipeline"}, path


def test_a_fingerprint_follows_the_content_of_what_the_source_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = Path("data/raw/search")
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n')
    (folder / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    Path("data/raw/pairs.csv").write_text("anchor,positive\na,b\n")
    before = {source: sources.fingerprint(source) for source in ("data/raw/search", "data/raw/pairs.csv")}
    assert before["data/raw/search"].startswith("folder:") and before["data/raw/pairs.csv"].startswith("file:")
    (folder / "qrels" / "test.tsv").write_text("q1\td1\t2\n")  # one judgement changed
    assert sources.fingerprint("data/raw/search") != before["data/raw/search"]
    assert sources.fingerprint("data/raw/pairs.csv") == before["data/raw/pairs.csv"]
    (folder / "qrels" / "test.tsv").rename(folder / "qrels" / "dev.tsv")  # same bytes, another split
    assert sources.fingerprint("data/raw/search") != before["data/raw/search"]
    assert sources.fingerprint("data/raw/none.csv") == "missing"  # left for ingest to report
    assert sources.fingerprint("hf:org/set:test") == "hf:org/set:test"


def test_built_in_sets_are_fingerprinted_by_their_own_generator_module() -> None:
    pairs, search = sources.fingerprint("builtin:docstring_pairs"), sources.fingerprint("builtin:docstring_search:test")
    assert pairs == search  # one module generates both
    assert len({pairs, sources.fingerprint("builtin:product_triplets"), sources.fingerprint("builtin:similarity_pairs")}) == 3
    # an unknown name (its ingest says which exist) follows the package that lists the generators
    assert sources.fingerprint("builtin:nope") == f"generator:{sha256(Path(builtin.__file__))}"


def test_the_stage_writes_one_file_per_defined_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"]["mine"] = {"source": {"train": "data/raw/train.csv", "test": "data/raw/test.csv"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    stale = paths.source_fingerprint("gone")
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    sources.main([])
    written = {path.stem: json.loads(path.read_text()) for path in paths.SOURCE_FINGERPRINTS.glob("*.json")}
    assert sorted(written) == sorted([*params["datasets"], *params["eval_sets"]])  # the stale one is gone
    assert written["mine"]["parts"] == {"train": "missing", "test": "missing"}
    assert written["sts"]["parts"]["all"] == sources.fingerprint("builtin:similarity_pairs")
    assert not [path.name for path in paths.SOURCE_FINGERPRINTS.iterdir() if path.suffix != ".json"]  # no temporary left
