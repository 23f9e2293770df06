"""params.yaml validation: every mistake is one line naming the key, the value and the valid choices."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.core.loading import load_params
from pipeline.core.params import ParamsError, parse_params

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_change(path: str, value: object) -> dict:
    raw = copy.deepcopy(SHIPPED)
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    node[last] = value
    return raw


def test_shipped_params_are_valid() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.run.base_models == ["minilm"] and params.base("minilm").model == "sentence-transformers/all-MiniLM-L6-v2"
    assert params.max_seq_length("minilm") == params.train.max_seq_length
    assert set(params.run.losses) >= {"mnrl", "triplet", "cosine", "cosent"}
    shapes = {params.datasets[d].shape or params.datasets[d].source for d in params.run.datasets}
    assert len(params.run.datasets) >= 3 and shapes


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("train.learning_rate", -0.1, "train.learning_rate = -0.1: Input should be greater than 0"),
        ("train.precision", "fp8", "train.precision = 'fp8'"),
        ("train.bogus", 1, "train.bogus = 1: unknown key"),
        ("train.checkpoint_steps", -5, "train.checkpoint_steps = -5: must be a number of steps >= 0 (0: never), or auto"),
        ("train.eval_steps", "often", "train.eval_steps = 'often': must be a number of steps > 0, or auto"),
        ("train.checkpoint_minutes", 0, "train.checkpoint_minutes = 0: Input should be greater than 0"),
        ("losses.mnrl.class", "NoSuchLoss", "unknown loss 'NoSuchLoss'; valid: AnglELoss"),
        ("losses.mnrl.params", {"scale": -1}, "scale must be a number > 0, got -1"),
        ("losses.mnrl.params", {"margin": 1}, "MultipleNegativesRankingLoss has no parameter 'margin'; valid: scale"),
        ("run.datasets", ["docstrings", "nope"], "run.datasets: 'nope' is not defined under datasets:"),
        ("split.test", 0.85, "leaves under 10% to train"),
        ("datasets.sts.score_range", [5, 0], "low < high"),
        ("adapt.scored", "best", "adapt.scored = 'best': Input should be 'graded' or 'threshold'"),
    ],
)
def test_bad_params_give_one_line(path: str, value: object, expected: str) -> None:
    with pytest.raises(ParamsError) as caught:
        parse_params(with_change(path, value))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("params.yaml: ")
    assert expected in message


def test_the_single_base_model_key_names_its_replacement() -> None:
    raw = with_change("seed", 42)
    raw["base_model"] = "sentence-transformers/all-mpnet-base-v2"
    with pytest.raises(ParamsError, match=r"^params.yaml: base_model: replaced by base_models .* and run.base_models"):
        parse_params(raw)


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("run.base_models", ["minilm", "nope"], "run.base_models: 'nope' is not defined under base_models:; defined: minilm, mpnet"),
    ("base_models.minilm.max_seq_length", 0, "base_models.minilm.max_seq_length = 0: Input should be greater than 0"),
    ("base_models.minilm.modle", "x", "base_models.minilm.modle = 'x': unknown key"),
    ("base_models", {"../up": {"model": "x"}}, "base model name '../up' is not allowed"),
])
def test_a_bad_base_model_entry_is_one_line(path: str, value: object, expected: str) -> None:
    with pytest.raises(ParamsError) as caught:
        parse_params(with_change(path, value))
    assert expected in str(caught.value)


def test_a_base_models_own_sequence_length_wins() -> None:
    params = parse_params(with_change("base_models.mpnet.max_seq_length", 384))
    assert params.max_seq_length("mpnet") == 384 and params.max_seq_length("minilm") == params.train.max_seq_length


def test_loss_that_cannot_use_any_shape_is_rejected() -> None:
    raw = with_change("losses.mnrl", {"class": "BatchHardTripletLoss"})
    with pytest.raises(ParamsError, match=r"loss 'mnrl' \(BatchHardTripletLoss\) cannot use dataset"):
        parse_params(raw)


def test_stage_reports_params_error_fast_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_change("train.learning_rate", -1)))
    started = time.perf_counter()
    command = [sys.executable, "-m", "pipeline.train", "--dataset", "docstrings", "--base", "minilm", "--loss", "mnrl"]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    elapsed = time.perf_counter() - started
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: params.yaml: train.learning_rate = -1: Input should be greater than 0"]
    assert "Traceback" not in proc.stderr
    assert elapsed < 10  # generous: the point is no torch import (measured ~0.5 s)


def test_help_does_not_import_heavy_libraries() -> None:
    code = ("import sys, runpy; sys.argv=['x','--help']\n"
            "try: runpy.run_module('pipeline.train', run_name='__main__')\n"
            "except SystemExit: pass\n"
            "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules, 'heavy import'\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Fine-tune one base model" in proc.stdout


def test_the_base_comparison_config_runs_every_cell_from_both_bases() -> None:
    from tests.test_seeds import merge

    override = yaml.safe_load((ROOT / "configs" / "compare_bases.yaml").read_text())
    override.pop("experiment_name")
    params = parse_params(merge(yaml.safe_load((ROOT / "params.yaml").read_text()), override))
    assert params.run.base_models == ["minilm", "mpnet"]
    assert params.base("mpnet").model == "sentence-transformers/all-mpnet-base-v2"
    assert params.run.datasets == ["docstrings", "products", "sts"] and len(params.run.losses) == 4


def test_the_metric_a_winner_is_chosen_by() -> None:
    raw = copy.deepcopy(SHIPPED)
    auto = parse_params(raw)
    assert auto.choice_metric(searches_corpus=True) == "ndcg@10" and auto.choice_metric(searches_corpus=False) == "spearman"
    chosen = copy.deepcopy(raw)
    chosen["report"] = {"metric": "recall@10"}
    assert parse_params(chosen).choice_metric(searches_corpus=False) == "recall@10"
    chosen["report"] = {"metric": "ndcg@5"}
    with pytest.raises(ParamsError, match=r"report.metric = 'ndcg@5': unknown metric 'ndcg@5'; valid: auto, spearman"):
        parse_params(chosen)


SHIPPED_FILES = ["params.yaml", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").glob("*.yaml"))]


@pytest.mark.parametrize("path", SHIPPED_FILES)
def test_dvc_reads_each_shipped_params_file_as_the_pipeline_does(path: str) -> None:
    # DVC parses params.yaml (ruamel, YAML 1.2) before any stage runs, the pipeline with PyYAML: a flow mapping
    # holding `builtin:name` unquoted passes PyYAML and stops DVC ("found unexpected ':'")
    from dvc.utils.serialize import parse_yaml

    from pipeline.core.loading import _Loader

    text = (ROOT / path).read_text()
    assert parse_yaml(text, path) == yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def test_every_yaml_example_in_the_docs_reads_in_dvc() -> None:
    import re

    from dvc.utils.serialize import parse_yaml

    blocks = [(doc.name, block) for doc in sorted((ROOT / "docs").glob("*.md"))
              for block in re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)]
    assert len(blocks) >= 5
    for name, block in blocks:
        parse_yaml(block, name)  # raises, naming the line, on what DVC cannot read
    with pytest.raises(Exception, match="corrupted"):  # the check can fail: the form that broke params.yaml
        parse_yaml("eval_sets:\n  s: {source: builtin:docstring_search, corpus: 600}\n", "example")
