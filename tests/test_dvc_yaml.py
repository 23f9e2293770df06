"""dvc.yaml keeps DVC's promise: every stage depends on the fingerprint of exactly the project modules it runs,
its matrix comes from params.yaml alone, every ingest depends on its own set's source fingerprint, outputs match
pipeline/core/paths.py, and the package imports point down (stages -> sub-packages -> core) with no cycle."""

from __future__ import annotations

import ast
import hashlib
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import code
from pipeline.core import paths
from tests.conftest import ROOT

DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = {name: stage.get("do", stage) for name, stage in DVC_YAML["stages"].items()}  # a foreach stage's `do:`
# Which sub-packages each layer may import: stages (the top-level modules) anything below them.
# tuning (the Optuna study) needs only params: training reports to its trials, pipeline.sweep drives it.
LAYERS = {"core": set(), "data": {"core"}, "evaluation": {"core", "data"}, "tracking": {"core", "data", "evaluation"},
          "tuning": {"core"}, "training": {"core", "data", "evaluation", "tracking", "tuning"}}


def stage_module(body: dict) -> str:
    match = re.match(r"python -m pipeline\.(\w+)", body["cmd"])
    assert match, f"stage command {body['cmd']!r} does not run `python -m pipeline.<module>`"
    return match.group(1)


def test_every_stage_depends_on_its_own_code_fingerprint_and_on_no_module() -> None:
    # a module listed as well would put its 4 lines per stage back into dvc.lock; one missed would mean stale code
    assert STAGES["code"] == {"cmd": "python -m pipeline.code", "deps": ["pipeline"],
                              "outs": [paths.CODE_FINGERPRINTS.as_posix()]}
    for name, body in STAGES.items():
        if name == "code":
            continue
        assert paths.code_fingerprint(stage_module(body)).as_posix() in body["deps"], name
        modules = [dep for dep in body["deps"] if dep.startswith("pipeline")]
        assert modules == (["pipeline/data/builtin"] if name == "sources" else []), name


def test_every_stage_module_is_fingerprinted() -> None:
    assert {stage_module(body) for body in STAGES.values()} <= set(code.stage_modules())


def test_fingerprints_follow_lazy_imports_inside_functions() -> None:
    # the stages import their heavy helpers inside main(); those count as much as top-level imports
    train = code.code_files("pipeline.train")
    assert "pipeline/training/recipe.py" in train and "pipeline/training/unpad.py" in train
    assert "pipeline/tracking/cards.py" not in train  # train never renders a card
    assert "pipeline/data/readers.py" not in code.code_files("pipeline.evaluate")
    fingerprint = code.fingerprint("pipeline.train")
    assert list(fingerprint["files"]) == train
    assert fingerprint["files"]["pipeline/train.py"] == hashlib.sha256((ROOT / "pipeline" / "train.py").read_bytes()).hexdigest()


def test_only_ingest_and_sources_run_a_generator() -> None:
    # the generators are left out of every fingerprint: exact only while no other stage runs one (ingest reads
    # them through its set's source fingerprint; sources depends on their folder as data)
    generators = {f"pipeline.data.builtin.{path.stem}" for path in (ROOT / "pipeline/data/builtin").glob("*.py")} - {
        "pipeline.data.builtin.__init__"}
    assert generators
    running = {stage for stage in code.stage_modules() if code.modules_run_by(f"pipeline.{stage}") & generators}
    assert running == {"ingest", "sources"}
    assert not [path for path in code.code_files("pipeline.ingest") if path.startswith(code.GENERATORS)
                and not path.endswith("__init__.py")]


def test_matrix_axes_come_from_params_yaml_alone() -> None:
    # `dvc exp run -S` rewrites params.yaml only: any other file the matrix read would be stale for that run
    assert DVC_YAML["vars"] == ["params.yaml"]
    stages = DVC_YAML["stages"]
    for name in ("ingest", "split"):
        assert stages[name]["foreach"] == "${run.datasets}" and stages[f"{name}_eval"]["foreach"] == "${eval_sets}"
    assert stages["baseline"]["matrix"] == {"dataset": "${run.datasets}", "base": "${run.base_models}"}
    assert stages["baseline_eval"]["matrix"] == {"set": "${eval_sets}", "base": "${run.base_models}"}
    for name in ("train", "evaluate", "card"):
        assert stages[name]["matrix"] == {"dataset": "${run.datasets}", "base": "${run.base_models}", "loss": "${run.losses}"}
    assert stages["publish"]["matrix"] == {"dataset": "${run.datasets}"}


def test_each_ingest_depends_on_its_own_sources_fingerprint_and_params() -> None:
    for name, (item, section) in (("ingest", ("${item}", "datasets")), ("ingest_eval", ("${key}", "eval_sets"))):
        body = DVC_YAML["stages"][name]["do"]
        assert body["deps"] == [paths.source_fingerprint(item).as_posix(), paths.code_fingerprint("ingest").as_posix()]
        assert body["params"] == ["seed", f"{section}.{item}"]
    sources = DVC_YAML["stages"]["sources"]  # the one stage that sees every raw file and every generator
    assert sources["deps"] == [paths.RAW.as_posix(), code.GENERATORS.rstrip("/"), paths.code_fingerprint("sources").as_posix()]
    assert sources["params"] == ["datasets", "eval_sets"] and sources["outs"] == [paths.SOURCE_FINGERPRINTS.as_posix()]


def test_per_cell_training_metrics_stay_out_of_the_default_metrics_view() -> None:
    train = DVC_YAML["stages"]["train"]
    assert paths.train_metrics("${item.dataset}", "${item.base}", "${item.loss}").as_posix() in train["outs"]
    declared = [path for stage in DVC_YAML["stages"].values() for path in stage.get("do", stage).get("metrics", [])]
    assert declared == [paths.METRICS.as_posix()]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_runs_its_own_module(stage: str) -> None:
    module = stage.removesuffix("_eval")  # the eval sets' ingest / split / baseline run the same modules
    assert stage_module(STAGES[stage]) == module
    assert (ROOT / "pipeline" / f"{module}.py").is_file()


def test_outputs_match_paths_module() -> None:
    text = (ROOT / "dvc.yaml").read_text()
    cell = ("${item.dataset}", "${item.base}", "${item.loss}")
    templated = {  # each path function rendered with the placeholders dvc.yaml uses
        *(path(name) for name in ("${item}", "${key}") for path in (paths.ingested, paths.ingest_report, paths.split_report)),
        paths.baseline_scores("${item.dataset}", "${item.base}"), paths.baseline_scores("${item.set}", "${item.base}"),
        paths.split_file("${item}", "test"), paths.split_file("${key}", "test"), paths.split_dir("${item}"),
        *(path(*cell) for path in (paths.model_dir, paths.train_facts, paths.model_files, paths.mlflow_run, paths.eval_result,
                                   paths.card, paths.loss_curve, paths.val_curve, paths.train_metrics)),
        paths.LEADERBOARD_MD, paths.METRICS, paths.HEATMAP,
    }
    missing = sorted(str(p) for p in templated if str(p) not in text)
    assert not missing, missing


def _package_imports() -> dict[str, set[str]]:
    """{module: project modules it imports} for every module of the package."""
    graph = {}
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        graph[module] = code.imports(path)
    return graph


def test_sub_packages_import_only_downwards() -> None:
    wrong = []
    for module, imported in _package_imports().items():
        parts = module.split(".")
        if len(parts) < 3:  # a stage module or the package itself: it may import anything
            continue
        allowed = LAYERS[parts[1]] | {parts[1]}
        for name in imported:
            target = name.split(".")
            if len(target) < 2 or target[1] not in allowed:
                wrong.append(f"{module} -> {name}")
    assert not wrong, wrong


def test_no_import_cycles() -> None:
    graph = _package_imports()
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for name in graph.get(module, ()):
            if state.get(name) == 1:
                pytest.fail("import cycle: " + " -> ".join(trail[trail.index(name):] + [name]) if name in trail
                            else f"import cycle through {name}")
            if name not in state:
                visit(name, trail + [name])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_stage_modules_do_no_work_at_import() -> None:
    # stages import heavy libraries inside main() only, so `--help` and params errors are instant
    heavy = {"torch", "sentence_transformers", "transformers", "mlflow", "datasets", "pandas", "matplotlib"}
    for stage in {name.removesuffix("_eval") for name in STAGES}:
        tree = ast.parse((ROOT / "pipeline" / f"{stage}.py").read_text())
        top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
        top |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
        assert not top & heavy, (stage, top & heavy)


def test_dvc_resolves_the_shipped_pipeline(tmp_path: Path) -> None:
    # what `dvc repro` sees on a fresh clone: this dvc.yaml templated by the shipped params.yaml, text as is
    from scripts.scratch_project import scratch_project
    from tests.conftest import run

    env = scratch_project(tmp_path, {})
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    names = set(run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"], tmp_path, env).stdout.split())
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())
    sets, bases, losses = shipped["run"]["datasets"], shipped["run"]["base_models"], shipped["run"]["losses"]
    cells = {f"{d}-{b}-{loss}" for d in sets for b in bases for loss in losses}
    expected = ({"code", "sources", "report", "summary"}
                | {f"{stage}@{d}" for d in sets for stage in ("ingest", "split", "publish")}
                | {f"{stage}_eval@{s}" for s in shipped["eval_sets"] for stage in ("ingest", "split")}
                | {f"baseline@{d}-{b}" for d in sets for b in bases} | {f"baseline_eval@{s}-{b}" for s in shipped["eval_sets"]
                                                                       for b in bases}
                | {f"{stage}@{cell}" for cell in cells for stage in ("train", "evaluate", "card")})
    assert names == expected
