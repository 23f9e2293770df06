"""The real thing: `dvc repro` in a temporary git repository with tiny params and the tiny model, then what a
user looks at — metrics files, `dvc metrics show` / `dvc plots show`, the MLflow runs (one invocation run
holding the leaderboard, the cells under it), the registry, the published folder, `dvc status` after a
one-loss or one-base change and after a code change, and the MLflow UI in a real browser (queued experiments landing in
the same store: tests/test_experiments.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from pipeline import code
from pipeline.core import paths
from pipeline.core.handoffs import BaselineScores, EvalResult, PublishRecord, RunRef, TrainFacts, Winner
from scripts.scratch_project import commit, scratch_project
from tests.conftest import ROOT, run, tiny_params

DATASETS = ["sts"]
EVAL_SET = "stdlib_search"  # the shipped eval set: a search over a corpus (tiny_params leaves it out)
BASES = ["tiny", "other"]  # two base models (other random weights): one comparison across both
LOSSES = ["mnrl", "cosent"]
EXPERIMENT = "sentence-embedding-finetune"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tiny_model_dir: Path, other_tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[Path, dict[str, str]]:
    repo = tmp_path_factory.mktemp("repo")
    params = tiny_params(tiny_model_dir, DATASETS, LOSSES)
    params["base_models"]["other"] = {"model": str(other_tiny_model_dir)}
    params["run"]["base_models"] = BASES
    params["eval_sets"] = {EVAL_SET: yaml.safe_load((ROOT / "params.yaml").read_text())["eval_sets"][EVAL_SET]}
    env = scratch_project(repo, params)
    commit(repo, env, "tiny pipeline")
    out = run([sys.executable, "-m", "dvc", "repro"], repo, env, timeout=1500).stdout
    REPRO_OUTPUT.append(out)
    return repo, env


REPRO_OUTPUT: list[str] = []  # what the fixture's `dvc repro` printed


def client(repo: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")


def experiment_runs(repo: Path, filter_string: str = "") -> list:
    store = client(repo)
    return store.search_runs([store.get_experiment_by_name(EXPERIMENT).experiment_id], filter_string)


def test_every_cell_has_metrics_mlflow_history_and_card(repo: tuple[Path, dict[str, str]]) -> None:
    root, _ = repo
    store = client(root)
    cells = [(dataset, name, loss) for dataset in DATASETS for name in BASES for loss in LOSSES]
    for dataset, name, loss in cells:
        base = BaselineScores.read(root / paths.baseline_scores(dataset, name))
        result = EvalResult.read(root / paths.eval_result(dataset, name, loss))
        # each cell beside its own base model, on its own set and on the eval set
        assert result.test.base == base.test and sorted(result.transfer) == [EVAL_SET]
        assert result.transfer[EVAL_SET].base == BaselineScores.read(root / paths.baseline_scores(EVAL_SET, name)).test
        # the shipped eval set is a search: its queries searched its whole corpus, for this cell and its base
        assert all(0 <= side.retrieval["cosine_ndcg@10"] <= 1 for side in (result.transfer[EVAL_SET].tuned,
                                                                           result.transfer[EVAL_SET].base))
        run_id = RunRef.read(root / paths.mlflow_run(dataset, name, loss)).run_id
        mlrun = store.get_run(run_id)
        assert mlrun.info.status == "FINISHED" and mlrun.info.run_name == f"{dataset}/{name}/{loss}"
        assert mlrun.data.tags["base"] == name and mlrun.data.params["pipeline.base"] == name
        assert len(store.get_metric_history(run_id, "loss")) >= 3
        validation = store.get_metric_history(run_id, "eval_validation_spearman_cosine")
        assert validation[0].step == 0 and validation[0].value == pytest.approx(base.validation.spearman)
        assert mlrun.data.metrics["test_spearman_cosine"] == pytest.approx(result.test.tuned.spearman)
        assert mlrun.data.metrics["train_seconds"] > 0
        assert mlrun.data.tags["mlflow.source.git.commit"]
        assert [a.path for a in store.list_artifacts(run_id, "card")] == ["card/README.md"]
        card = (root / paths.card(dataset, name, loss)).read_text()
        facts = TrainFacts.read(root / paths.train_facts(dataset, name, loss))
        assert f"dataset_size:{facts.dataset.train_rows}" in card
        assert str(root) not in card and f"base_model: {facts.base_model}" in card
        assert facts.base_model == {"tiny": "tiny-bert", "other": "other-bert"}[name]
        assert f'model = SentenceTransformer("models/{dataset}/{name}/{loss}")' in card
    base_scores = {name: BaselineScores.read(root / paths.baseline_scores("sts", name)).test.spearman for name in BASES}
    assert base_scores["tiny"] != base_scores["other"]  # two different models, each scored once per set
    assert all(r.info.status == "FINISHED" for r in experiment_runs(root))
    searched = pd.read_parquet(root / paths.test_corpus(EVAL_SET))["text"]
    assert len(searched) == yaml.safe_load((ROOT / "params.yaml").read_text())["eval_sets"][EVAL_SET]["corpus"]
    retrieval_table = (root / "reports/leaderboard.md").read_text().split("## Retrieval")[1].split("## Transfer")[0]
    assert f"| {EVAL_SET} |" in retrieval_table


def test_the_invocation_run_spans_the_repro_and_holds_the_leaderboard(repo: tuple[Path, dict[str, str]]) -> None:
    root, _ = repo
    store = client(root)
    assert store.get_experiment_by_name(EXPERIMENT).tags["mlflow.experimentKind"] == "custom_model_development"
    (parent,) = [r for r in experiment_runs(root) if r.data.tags.get("kind") == "parent"]
    assert parent.info.run_name.startswith("dvc repro ") and parent.info.status == "FINISHED"
    cells = [r for r in experiment_runs(root) if r.data.tags.get("cell")]
    assert {r.data.tags["mlflow.parentRunId"] for r in cells} == {parent.info.run_id}
    # it spans every stage that logged: from before the first cell started to after the last one ended
    assert parent.info.start_time <= min(r.info.start_time for r in cells)
    assert parent.info.end_time >= max(r.info.end_time for r in cells)
    # a cell run lasts as long as its training, not until its card is written
    for cell in cells:
        facts = TrainFacts.read(root / paths.train_facts(*cell.data.tags["cell"].split("/")))
        assert (cell.info.end_time - cell.info.start_time) / 1000 < facts.train_seconds + 60
    # shared params, the leaderboard as metrics, which loss won, the report as artifacts
    assert parent.data.params["run.base_models"] == "tiny=tiny-bert,other=other-bert"
    assert parent.data.params["train.batch_size"] == "8"
    winner = Winner.read(root / paths.winner("sts"))
    assert parent.data.tags["winner.sts"] == f"{winner.base}/{winner.loss}"
    assert parent.data.metrics["sts/winner_validation_spearman"] == pytest.approx(winner.validation)
    assert parent.data.metrics["sts/winner_test_spearman"] == pytest.approx(winner.test)
    shown = {a.path for a in store.list_artifacts(parent.info.run_id, "report")}
    assert {"report/leaderboard.md", "report/curves.png", "report/heatmap.png", "report/transfer.csv"} <= shown


def test_report_dvc_metrics_and_plots(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    board = (root / paths.LEADERBOARD_MD).read_text()
    assert board.count("★") == 2  # the rule's text and the winner of sts, across both bases
    assert "| sts | tiny |" in board and "| sts | other |" in board and "| other (untuned) |" in board
    shown = json.loads(run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], root, env).stdout)
    files = next(iter(shown.values()))["data"]
    assert list(files) == [paths.dataset_metrics("sts").as_posix()]  # one row per dataset, nothing per cell
    metrics = files[paths.dataset_metrics("sts").as_posix()]["data"]
    result = EvalResult.read(root / paths.eval_result("sts", "tiny", "cosent"))
    assert metrics["test"]["tiny"]["cosent"] == pytest.approx(result.test.tuned.spearman, abs=1e-6)
    winner = Winner.read(root / paths.winner("sts"))
    assert metrics["winner"] == f"{winner.base}/{winner.loss}"
    assert metrics["winner_val"] == pytest.approx(winner.validation)
    for name in BASES:
        untuned = BaselineScores.read(root / paths.baseline_scores("sts", name)).test.spearman
        assert metrics["base_test"][name] == pytest.approx(untuned)
        assert sorted(metrics["test"][name]) == sorted(LOSSES)
    assert len(metrics) == 6 and metrics["metric"] == "spearman"  # the metric, winner, its two scores, base_test.*, test.*.*
    # the winner: the best validation Spearman of all four cells (both bases), whatever their test scores
    kept = {(name, loss): TrainFacts.read(root / paths.train_facts("sts", name, loss)).selection.kept_value
            for name in BASES for loss in LOSSES}
    assert kept[winner.base, winner.loss] == max(kept.values())
    run([sys.executable, "-m", "dvc", "plots", "show", "-o", "plots_html"], root, env)
    page = (root / "plots_html" / "index.html").read_text()
    assert "Validation Spearman per dataset" in page and '"column": {"field": "dataset"' in page
    assert (root / paths.HEATMAP).stat().st_size > 1000


def test_repro_ends_with_the_leaderboard_the_published_versions_and_the_mlflow_link(repo: tuple) -> None:
    root, _ = repo
    experiment_id = client(root).get_experiment_by_name(EXPERIMENT).experiment_id
    record = PublishRecord.read(root / paths.publish_record("sts"))
    summary = REPRO_OUTPUT[0].split("Running stage 'summary':", 1)[1]
    assert "Running stage" not in summary  # the last stage
    assert "| sts | other |" in summary and "★ **" in summary
    assert f"sts  {record.base}/{record.loss}  validation " in summary
    assert f"{record.model_uri} (version {record.version})" in summary
    link = f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    assert f"MLflow runs: {link}" in summary


def test_publish_registers_the_winner_once(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    record, winner = PublishRecord.read(root / paths.publish_record("sts")), Winner.read(root / paths.winner("sts"))
    assert (record.base, record.loss) == (winner.base, winner.loss)  # the overall winner, across base models
    version = client(root).get_model_version_by_alias(record.registered_model, "champion")
    assert str(version.version) == record.version and version.tags["dataset"] == "sts"
    assert version.tags["base"] == winner.base and version.tags["base_model"] == record.base_model
    assert (root / paths.publish_dir("sts") / "README.md").exists()
    run([sys.executable, "-m", "dvc", "repro", "-s", "-f", "publish@sts"], root, env)  # forced: the same files again
    assert len(client(root).search_model_versions(f"name = '{record.registered_model}'")) == 1


def test_status_clean_then_one_loss_change_dirties_only_its_cells(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    dvc = [sys.executable, "-m", "dvc"]
    assert json.loads(run(dvc + ["status", "--json"], root, env).stdout) == {}
    params_path = root / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["losses"]["cosent"]["params"]["scale"] = 25.0
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        changed = set(json.loads(run(dvc + ["status", "--json"], root, env).stdout))
    finally:
        params_path.write_text(original)
    # the stages whose own params changed (evaluate reads the loss's Matryoshka dims); card, report and
    # publish follow from their changed deps when `dvc repro` runs; no other loss and no dataset stage
    assert changed == {f"{stage}@{d}-{name}-cosent" for d in DATASETS for name in BASES for stage in ("train", "evaluate")}


def test_one_base_models_change_dirties_only_its_cells(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    params_path = root / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["base_models"]["other"]["max_seq_length"] = 24
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        changed = set(json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], root, env).stdout))
    finally:
        params_path.write_text(original)
    # its baselines and cells; card, report, publish and summary follow from their changed deps in `dvc repro`
    assert changed == ({f"baseline@{d}-other" for d in DATASETS} | {f"baseline_eval@{EVAL_SET}-other"}
                       | {f"{stage}@{d}-other-{loss}" for d in DATASETS for loss in LOSSES
                          for stage in ("train", "evaluate", "card")} | {"report", "summary"}
                       | {f"publish@{d}" for d in DATASETS})


def test_a_code_change_dirties_exactly_the_stages_that_run_the_module(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    dvc = [sys.executable, "-m", "dvc"]
    stage_names = run(dvc + ["stage", "list", "--name-only"], root, env).stdout.split()
    for module in ("pipeline/evaluation/leaderboard.py", "pipeline/tracking/cards.py"):
        target = root / module
        original = target.read_text()
        target.write_text(original + "\n# an edit\n")
        try:
            # DVC sees the package changed; the code stage's fingerprints say which stages run the module
            assert set(json.loads(run(dvc + ["status", "--json"], root, env).stdout)) == {"code"}, module
            run(dvc + ["repro", "-s", "code"], root, env)
            changed = set(json.loads(run(dvc + ["status", "--json"], root, env).stdout))
        finally:
            target.write_text(original)
            run(dvc + ["repro", "-s", "code"], root, env)
        runs_it = {group for group in {stage.split("@")[0] for stage in stage_names}
                   if module in code.code_files(f"pipeline.{group.removesuffix('_eval')}")}
        assert changed == {stage for stage in stage_names if stage.split("@")[0] in runs_it}, module
        assert changed, module
        assert json.loads(run(dvc + ["status", "--json"], root, env).stdout) == {}, module


def test_editing_the_sweep_rules_dirties_no_stage(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    dvc = [sys.executable, "-m", "dvc"]
    for module in ("pipeline/core/sweep_params.py", "pipeline/tuning/study.py", "pipeline/sweep.py"):
        target = root / module
        original = target.read_text()
        target.write_text(original + "\n# an edit\n")
        try:
            run(dvc + ["repro", "-s", "code"], root, env)  # no stage's fingerprint holds a sweep module
            assert json.loads(run(dvc + ["status", "--json"], root, env).stdout) == {}, module
        finally:
            target.write_text(original)
            run(dvc + ["repro", "-s", "code"], root, env)


@pytest.mark.parametrize(("module", "ingests"), [("pipeline/data/builtin/similarity.py", {"ingest@sts"}),
                                                 ("pipeline/data/builtin/docstrings.py", {f"ingest_eval@{EVAL_SET}"}),
                                                 ("pipeline/data/builtin/products.py", set())])  # products: not in the run
def test_editing_one_generator_re_ingests_only_its_sets(repo: tuple[Path, dict[str, str]], module: str, ingests: set[str]
                                                        ) -> None:
    root, env = repo
    dvc = [sys.executable, "-m", "dvc"]
    target = root / module
    original = target.read_text()
    target.write_text(original + "\n# an edit\n")
    try:
        assert set(json.loads(run(dvc + ["status", "--json"], root, env).stdout)) == {"code", "sources"}
        # refingerprints (a generator is no stage's code: `code` changes nothing); the ingests are judged against it
        run(dvc + ["repro", "-s", "code", "sources"], root, env)
        assert set(json.loads(run(dvc + ["status", "--json"], root, env).stdout)) == ingests
    finally:
        target.write_text(original)
        run(dvc + ["repro", "-s", "code", "sources"], root, env)
    assert json.loads(run(dvc + ["status", "--json"], root, env).stdout) == {}


def test_a_model_damaged_on_disk_is_never_scored_and_repro_repairs_it(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    weights = root / paths.model_dir("sts", "tiny", "cosent") / "model.safetensors"
    whole = weights.read_bytes()
    weights.unlink()  # DVC links outputs from its cache: write a new file, never into the cached one
    weights.write_bytes(whole[: len(whole) // 2])
    proc = subprocess.run([sys.executable, "-m", "pipeline.evaluate", "--dataset", "sts", "--base", "tiny", "--loss", "cosent"],
                          cwd=root, env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: models/sts/tiny/cosent: model.safetensors is damaged ({len(whole) // 2:,} bytes; {len(whole):,} when written); "
        f"not used: `dvc repro` restores it from DVC's cache or trains it again (train@sts-tiny-cosent)"]
    assert not (root / paths.eval_result("sts", "tiny", "cosent")).exists()  # cleared, not left looking current
    out = run([sys.executable, "-m", "dvc", "repro"], root, env, timeout=900).stdout
    assert weights.read_bytes() == whole, out[-2000:]
    assert (root / paths.eval_result("sts", "tiny", "cosent")).exists()
    assert json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], root, env).stdout) == {}


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (CI installs it)")
def test_mlflow_ui_in_a_real_browser(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, env = repo
    out = tmp_path / "ui"
    proc = run([sys.executable, str(ROOT / "scripts" / "ui_screenshots.py"), "--store", f"sqlite:///{root / 'mlflow.db'}",
                "--out", str(out)], root, env, timeout=600)
    assert proc.stdout.split() == [str(out / "runs_table.png"), str(out / "cell_charts.png")]
    table = (out / "runs_table.html").read_text()
    assert "dvc repro " in table and "Model training" in table  # the invocation run, in the training view
    charts = (out / "cell_charts.html").read_text()
    assert "eval_validation_spearman_cosine" in charts and "kept_validation_spearman" in charts
    assert all((out / f"{name}.png").stat().st_size > 20_000 for name in ("runs_table", "cell_charts"))
