"""python -m pipeline.sweep: an Optuna study whose trials are real DVC experiments and MLflow runs.

Fast: the sweep: section's one-line errors, the trial slots (exactly N, stale trials failed), the `-S`
spelling and the params.yaml rewrite. Slow, with real parts: a tiny study end to end (a worker killed
mid-trial, the next one finishing the study, `dvc exp show`, MLflow study -> trial -> cell runs,
`--apply-best`, `dvc exp apply`), a pruned trial on a constructed case, and two workers in two clones
sharing one study in a real PostgreSQL server and one real `mlflow server`.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml

from pipeline.core import paths
from pipeline.core.errors import PipelineError
from pipeline.core.loading import load_params
from pipeline.core.params import ParamsError, parse_params
from pipeline.core.sweep_params import TrialState, check_sweep, read_sweep
from pipeline.tuning import experiments, study
from pipeline.tuning import storage as stores
from scripts.scratch_project import commit, free_port, mlflow_server, scratch_env, scratch_project, stage_processes
from tests.conftest import ROOT, run, tiny_params

SWEEP = {"study": "s", "objective": {"dataset": "sts", "loss": "cosent"}, "trials": 4, "pruner": {"type": "none"},
         "heartbeat_seconds": 1,  # a killed worker's trial is failed 2 s after its last heartbeat
         "space": {"train.learning_rate": {"type": "float", "low": 1.0e-5, "high": 1.0e-3, "log": True},
                   "losses.cosent.params.scale": {"type": "float", "low": 2.0, "high": 30.0}}}
EXPERIMENT = "sentence-embedding-finetune"


def sweep_params(model: Path | str, losses: tuple[str, ...] = ("cosent", "mnrl"), **changes: object) -> dict:
    params = tiny_params(model, ["sts"], list(losses), rows=40)
    params["sweep"] = {**copy.deepcopy(SWEEP), **changes}
    return params


# --- bad input: one line before any training ---------------------------------------------------------------

@pytest.mark.parametrize(("change", "expected"), [
    ({"space": {"train.learnin_rate": {"type": "float", "low": 1e-5, "high": 1e-4}}},
     "sweep.space.train.learnin_rate: not a params key (train.learnin_rate is unknown)"),
    ({"space": {"train.learning_rate.x": {"type": "float", "low": 1e-5, "high": 1e-4}}},
     "sweep.space.train.learning_rate.x: not a params key"),
    ({"space": {"train.batch_size": {"type": "categorical", "choices": [1, 8]}}},
     "sweep.space.train.batch_size: 1 is not a valid value (train.batch_size = 1: Input should be greater than 1)"),
    ({"space": {"losses.cosent.params.margin": {"type": "float", "low": 0.1, "high": 1}}},
     "CoSENTLoss has no parameter 'margin'"),
    ({"space": {"losses.mnrl.params.scale": {"type": "float", "low": 5, "high": 30}}},
     "sweep.space.losses.mnrl.params.scale: does not change the objective's cells (sts x tiny x cosent)"),
    ({"space": {"run.losses": {"type": "categorical", "choices": ["mnrl"]}}}, "sweep.space.run.losses: run.* cannot be swept"),
    ({"objective": {"dataset": "docstrings", "loss": "cosent"}},
     "sweep.objective.dataset: 'docstrings' is not in run.datasets: sts"),
    ({"objective": {"dataset": "sts", "loss": "triplet"}}, "sweep.objective.loss: 'triplet' is not in run.losses"),
    ({"objective": {"dataset": "sts", "loss": "best"}, "pruner": {"type": "median"}},
     "sweep.pruner: median needs one curve per trial"),
    ({"sampler": "grid"}, "sweep.space.train.learning_rate: sampler grid needs choices"),
])
def test_search_that_does_not_fit_the_run_is_one_line(change: dict, expected: str) -> None:
    params = parse_params(sweep_params("base", **change))
    with pytest.raises(ParamsError) as error:
        check_sweep(params, read_sweep(params))
    assert expected in str(error.value) and str(error.value).startswith("params.yaml: ")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("dimension", "expected"), [
    ({"type": "float", "low": 1e-4, "high": 1e-5},
     "sweep.space.train.learning_rate: empty range: low 0.0001 must be below high 1e-05"),
    ({"type": "float", "low": 0.0, "high": 1e-3, "log": True}, "log scale needs low > 0"),
    ({"type": "int", "low": 3, "high": 3}, "empty range"),
    ({"type": "categorical", "choices": []}, "sweep.space.train.learning_rate.choices = []: List should have at least 1 item"),
    ({"type": "range", "low": 1, "high": 2}, "does not match any of the expected tags: 'float', 'int', 'categorical'"),
])
def test_invalid_range_is_one_line(dimension: dict, expected: str) -> None:
    with pytest.raises(ParamsError) as error:
        read_sweep(parse_params(sweep_params("base", space={"train.learning_rate": dimension})))
    assert expected in str(error.value)


def test_dvc_written_exponent_floats_load_as_floats(tmp_path: Path) -> None:
    # `dvc exp run -S train.learning_rate=1e-5` writes `1e-05`, a string to YAML 1.1
    text = (ROOT / "params.yaml").read_text().replace("learning_rate: 5.0e-5", "learning_rate: 1e-05")
    (tmp_path / "params.yaml").write_text(text)
    assert load_params(tmp_path / "params.yaml").train.learning_rate == 1e-05


def _sweep_command(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.sweep", *args], cwd=cwd, env=scratch_env(PYTHONPATH=str(ROOT)),
                          capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("change", "args", "expected"), [
    ({"space": {"train.learnin_rate": {"type": "float", "low": 1e-5, "high": 1e-4}}}, [], "not a params key"),
    ({"objective": {"dataset": "nope", "loss": "cosent"}}, [], "sweep.objective.dataset: 'nope' is not in run.datasets"),
    ({}, ["--storage", "postgresql://sweep:s3cret@127.0.0.1:{port}/optuna"],
     "sweep storage postgresql://127.0.0.1:{port}/optuna is unreachable"),
    ({}, ["--study", "no spaces"], "--study 'no spaces': letters, digits, - and _ only"),
    ({}, ["--trials", "0"], "--trials 0: must be at least 1"),
])
def test_command_stops_with_one_error_line_before_any_work(tmp_path: Path, change: dict, args: list[str], expected: str) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(sweep_params("base", **change)))
    port = str(free_port())  # nothing listens there
    proc = _sweep_command(tmp_path, *[arg.replace("{port}", port) for arg in args])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert expected.replace("{port}", port) in proc.stderr
    assert "s3cret" not in proc.stderr  # credentials of the storage URL are never shown
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "logs").exists()


# --- the study: exactly N slots, stale trials failed -----------------------------------------------------------

def _sweep(**changes: object) -> object:
    return read_sweep(parse_params(sweep_params("base", **changes)))


def test_exactly_n_slots_shared_by_workers_and_a_joiner_must_bring_the_same_search(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    sweep = _sweep(trials=3)
    created = study.open_study(stores.open_storage(url), "s", sweep, 42, None, set_up=lambda _: "run-id")
    other = stores.open_storage(url)  # a second worker: its own connection to the same store
    joined = study.open_study(other, "s", sweep, 42, None, set_up=lambda _: pytest.fail("only the creator sets up"))
    claims = [study.claim_trial(created, stores.open_storage(url)), study.claim_trial(joined, other),
              study.claim_trial(created, stores.open_storage(url))]
    assert study.claim_trial(joined, other) is None  # all 3 slots taken: no fourth trial is ever created
    assert sorted(trial.number for trial, _ in claims) == [0, 1, 2]
    assert len(joined.get_trials()) == 3
    values = [study.suggest(trial, sweep) for trial, _ in claims]
    assert len({json.dumps(v, sort_keys=True) for v in values}) == 3  # seeded per trial number: no two alike
    with pytest.raises(PipelineError, match="was created with another search"):
        study.open_study(other, "s", _sweep(sampler="random"), 42, None, set_up=lambda _: "x")
    with pytest.raises(PipelineError, match="has 3 trials in total; --trials 4 differs"):
        study.open_study(other, "s", sweep, 42, 4, set_up=lambda _: "x")


def test_a_grid_study_runs_every_point_once_whichever_worker_claims_it(tmp_path: Path) -> None:
    # a 3 x 3 grid ran (1.8e-4, 18) twice and never (6e-5, 6) while each trial seeded its own grid order
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    space = {"train.learning_rate": {"type": "categorical", "choices": [2.0e-5, 6.0e-5, 1.8e-4]},
             "losses.cosent.params.scale": {"type": "categorical", "choices": [2.0, 6.0, 18.0]}}
    sweep = _sweep(trials=9, sampler="grid", space=space)
    workers = [study.open_study(stores.open_storage(url), "g", sweep, 42, None, set_up=lambda _: "run-id")]
    workers.append(study.open_study(stores.open_storage(url), "g", sweep, 42, None, set_up=lambda _: "x"))
    points = []
    for number in range(9):
        worker = workers[number % 2]
        trial, _ = study.claim_trial(worker, worker._storage)
        values = study.suggest(trial, sweep)
        worker.tell(trial, 0.5)
        points.append((values["train.learning_rate"], values["losses.cosent.params.scale"]))
    assert sorted(points) == sorted((lr, scale) for lr in (2.0e-5, 6.0e-5, 1.8e-4) for scale in (2.0, 6.0, 18.0))


def test_a_trial_whose_worker_stopped_beating_is_failed_and_the_study_goes_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    stale: list[int] = []
    storage = stores.open_storage(url, heartbeat_seconds=1, on_stale=lambda _, trial: stale.append(trial.number))
    found = study.open_study(storage, "s", _sweep(trials=2), 42, None, set_up=lambda _: "run-id")
    trial, trial_id = study.claim_trial(found, storage)  # claimed, then its worker "dies": no more heartbeats
    time.sleep(3.5)  # past Optuna's grace period of 2 heartbeat intervals (sqlite keeps whole seconds)
    study.fail_stale_trials(found)
    assert found.trials[trial.number].state == optuna.trial.TrialState.FAIL and stale == [trial.number]
    with study.heartbeat(storage, study.claim_trial(found, storage)[1], 1):
        time.sleep(2.5)
        study.fail_stale_trials(found)  # a live worker's trial is left alone
    assert [t.state.name for t in found.trials] == ["FAIL", "RUNNING"]


# --- DVC glue --------------------------------------------------------------------------------------------

def test_set_param_args_spell_new_keys_and_values_as_dvc_takes_them() -> None:
    document = {"train": {"learning_rate": 5e-5}, "losses": {"cosent": {"params": {"scale": 5.0}}}}
    args = experiments.set_param_args({"train.learning_rate": 1e-05, "train.lora.rank": 8,
                                       "losses.cosent.params.scale": 7.5, "train.batch_sampler": "length_bucket"}, document)
    assert args == ["-S", "train.learning_rate=1e-05", "-S", "+train.lora.rank=8", "-S", "losses.cosent.params.scale=7.5",
                    "-S", '+train.batch_sampler="length_bucket"']
    assert experiments.targets("sts", "tiny", ["cosent", "mnrl"]) == ["train@sts-tiny-cosent", "evaluate@sts-tiny-cosent",
                                                             "train@sts-tiny-mnrl", "evaluate@sts-tiny-mnrl"]


def test_write_values_keeps_comments_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    experiments.write_values(path, {"train.learning_rate": 3.5e-05, "train.lora.rank": 4})
    text = path.read_text()
    assert "# Everything the pipeline does is driven from here." in text and "params: {scale: 20.0}" in text
    loaded = load_params(path)
    assert loaded.train.learning_rate == 3.5e-05 and loaded.train.lora.rank == 4


# --- slow: real DVC experiments, MLflow, PostgreSQL -----------------------------------------------------------

def _wait(predicate: object, seconds: float, what: str, worker: subprocess.Popen | None = None,
          log: Path | None = None) -> None:
    """Poll `predicate`; fail at once, with what the worker and its trial's log said, when `worker` exits."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        if worker is not None and worker.poll() is not None:
            out, err = worker.communicate()
            pytest.fail(f"the worker exited {worker.returncode} before {what}:\n{(out or '')[-3000:]}\n{(err or '')[-3000:]}\n"
                        f"{log.read_text()[-5000:] if log and log.exists() else ''}")
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-5000:] if log and log.exists() else 'no trial log'}")


def _running_trial_with_run(url: str, name: str) -> bool:
    try:
        trials = optuna.load_study(study_name=name, storage=url).get_trials(states=(optuna.trial.TrialState.RUNNING,))
    except Exception:
        return False
    return any("mlflow_run" in t.user_attrs for t in trials)


@pytest.fixture(scope="module")
def swept(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str], str]]:
    """A 4-trial study in a tiny repo, reproduced and committed as a user's would be: the first worker is
    killed (with its dvc exp run) mid-trial 0; a second worker fails that trial for its missing heartbeats
    and runs the other 3."""
    repo = tmp_path_factory.mktemp("sweep-repo")
    env = scratch_project(repo, sweep_params(tiny_model_dir, losses=("cosent",)))
    commit(repo, env, "tiny pipeline with a sweep", repro=True)
    sweep = [sys.executable, "-m", "pipeline.sweep"]
    first = subprocess.Popen(sweep, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        # the log first: polling optuna.db while the worker creates it would race its table creation
        _wait(lambda: (repo / paths.trial_log("s", 0)).exists(), 180, "trial 0's dvc exp run", first)
        assert _running_trial_with_run(f"sqlite:///{repo / 'optuna.db'}", "s")
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the worker, its dvc exp run and the stage it runs
        first.wait()
    # killed this early, `dvc exp run` may have been writing the trial's values into params.yaml to stash them
    # (DVC's own first second: docs/reliability.md); what a user would do then. Waiting for the cell's stage
    # instead races the tiny trial's end, after which trial 0 would be a finished experiment
    run(["git", "checkout", "HEAD", "--", "params.yaml"], repo, env)
    time.sleep(4)  # past the 2 s grace of a 1 s heartbeat (sqlite keeps whole seconds)
    out = run(sweep, repo, env, timeout=1500).stdout
    yield repo, env, out


def _store(repo: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")


@pytest.mark.slow
def test_killed_worker_leaves_a_failed_trial_and_the_next_worker_finishes_the_study(swept: tuple) -> None:
    repo, _, out = swept
    trials = optuna.load_study(study_name="s", storage=f"sqlite:///{repo / 'optuna.db'}").get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("trial ")] == [f"trial {n}" for n in (1, 2, 3)]
    assert "sweep s: 4/4 trials done (3 complete, 0 pruned, 1 fail)" in out


@pytest.mark.slow
def test_trials_are_dvc_experiments_with_their_params_and_objective(swept: tuple) -> None:
    repo, env, _ = swept
    trials = {t.number: t for t in optuna.load_study(study_name="s", storage=f"sqlite:///{repo / 'optuna.db'}").trials}
    shown = json.loads(run([sys.executable, "-m", "dvc", "exp", "show", "--json"], repo, env).stdout)
    exps = {exp["name"]: exp["revs"][0]["data"] for baseline in shown for exp in baseline.get("experiments") or []}
    assert set(exps) == {"s-1", "s-2", "s-3"}  # the killed trial 0 never became an experiment
    for name, data in exps.items():
        trial = trials[int(name.split("-")[1])]
        swept_params = data["params"]["params.yaml"]["data"]
        assert swept_params["train"]["learning_rate"] == pytest.approx(trial.params["train.learning_rate"])
        assert swept_params["losses"]["cosent"]["params"]["scale"] == pytest.approx(trial.params["losses.cosent.params.scale"])
        # the cell's training metrics are an output of the experiment (not a DVC metric: they would crowd
        # `dvc exp show`); the sweep reads them from it the same way
        from dvc.api import DVCFileSystem

        cell_metrics = paths.train_metrics("sts", "tiny", "cosent").as_posix()
        metrics = json.loads(DVCFileSystem(str(repo), rev=name).read_text(cell_metrics))
        assert metrics["best_validation"] == pytest.approx(trial.value) and metrics["pruned"] is False
        log = (repo / paths.trial_log("s", trial.number)).read_text()
        assert "Running stage 'train@sts-tiny-cosent'" in log and "Running stage 'report'" not in log  # its cell only
    assert run(["git", "status", "--porcelain"], repo, env).stdout == ""  # --temp: the workspace is left alone


@pytest.mark.slow
def test_mlflow_study_run_holds_trial_runs_holding_cell_runs(swept: tuple) -> None:
    repo, _, _ = swept
    store = _store(repo)
    experiment = store.get_experiment_by_name(EXPERIMENT).experiment_id
    runs = store.search_runs([experiment])
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    (study_run,) = [r for r in runs if r.data.tags.get("kind") == "study"]
    assert study_run.info.run_name == "sweep s"
    assert study_run.data.params["space.train.learning_rate"] == "float [1e-05, 0.001] log"
    trials = {t.number: t for t in optuna.load_study(study_name="s", storage=f"sqlite:///{repo / 'optuna.db'}").trials}
    best = max((t for t in trials.values() if t.value is not None), key=lambda t: t.value)
    assert study_run.data.metrics["best_value"] == pytest.approx(best.value)
    assert json.loads(study_run.data.tags["best_params"]) == pytest.approx(best.params)
    assert len(store.get_metric_history(study_run.info.run_id, "objective")) == 3
    assert [a.path for a in store.list_artifacts(study_run.info.run_id)] == ["objective_over_trials.png"]
    trial_runs = {int(r.data.tags["sweep_trial"]): r for r in runs if r.data.tags.get("kind") == "trial"}
    assert set(trial_runs) == set(trials)
    assert trial_runs[0].info.status == "KILLED"  # failed for its missing heartbeats
    for number in (1, 2, 3):
        trial_run = trial_runs[number]
        assert trial_run.data.tags["mlflow.parentRunId"] == study_run.info.run_id
        assert trial_run.info.status == "FINISHED" and trial_run.data.tags["trial_state"] == "COMPLETE"
        assert trial_run.data.metrics["objective"] == pytest.approx(trials[number].value)
        assert float(trial_run.data.params["train.learning_rate"]) == pytest.approx(trials[number].params["train.learning_rate"])
        assert len(store.get_metric_history(trial_run.info.run_id, "validation_spearman_cosent")) >= 2
        assert "test_spearman_cosent" in trial_run.data.metrics
        cells = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == trial_run.info.run_id]
        assert [(c.info.run_name, c.data.tags["dvc_exp"]) for c in cells] == [("sts/tiny/cosent", f"s-{number}")]
        assert cells[0].data.metrics["test_spearman_cosine"] == pytest.approx(trial_run.data.metrics["test_spearman_cosent"])


@pytest.mark.slow
def test_apply_best_and_dvc_exp_apply_restore_the_best_trial(swept: tuple) -> None:
    repo, env, _ = swept
    best = optuna.load_study(study_name="s", storage=f"sqlite:///{repo / 'optuna.db'}").best_trial
    out = run([sys.executable, "-m", "pipeline.sweep", "--apply-best"], repo, env).stdout
    assert f"trial {best.number} (s-{best.number}" in out
    applied = load_params(repo / "params.yaml")
    assert applied.train.learning_rate == best.params["train.learning_rate"]
    assert applied.losses["cosent"].params["scale"] == best.params["losses.cosent.params.scale"]
    run(["git", "checkout", "params.yaml"], repo, env)
    run([sys.executable, "-m", "dvc", "exp", "apply", f"s-{best.number}"], repo, env)
    restored = json.loads((repo / paths.train_metrics("sts", "tiny", "cosent")).read_text())
    assert restored["best_validation"] == pytest.approx(best.value)
    assert load_params(repo / "params.yaml").train.learning_rate == pytest.approx(best.params["train.learning_rate"])
    run(["git", "checkout", "."], repo, env)


@pytest.mark.slow
def test_pruned_trial_is_pruned_in_optuna_mlflow_and_its_dvc_metrics(swept: tuple) -> None:
    repo, env, _ = swept
    # Constructed case: a threshold above any validation Spearman the tiny model reaches (0.87 here) prunes
    # the trial at its first evaluation (step 2 of 4).
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["sweep"].update(study="pruned", trials=1, pruner={"type": "threshold", "lower": 0.99},
                           space={"train.learning_rate": {"type": "float", "low": 2e-4, "high": 4e-4}})
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        out = run([sys.executable, "-m", "pipeline.sweep"], repo, env, timeout=600).stdout
    finally:
        run(["git", "checkout", "params.yaml"], repo, env)
    assert "trial 0: pruned-0 PRUNED" in out
    (trial,) = optuna.load_study(study_name="pruned", storage=f"sqlite:///{repo / 'optuna.db'}").trials
    assert trial.state.name == "PRUNED" and list(trial.intermediate_values) == [2]
    from dvc.api import DVCFileSystem

    fs = DVCFileSystem(str(repo), rev="pruned-0")
    metrics = json.loads(fs.read_text(paths.train_metrics("sts", "tiny", "cosent").as_posix()))
    assert metrics["pruned"] is True and metrics["steps"] == 2 and metrics["best_step"] == 2
    # complete outputs only: the model DVC cached for the experiment is whole (it loads, trained 2 steps)
    assert fs.exists(f"{paths.model_dir('sts', 'tiny', 'cosent').as_posix()}/model.safetensors")
    store = _store(repo)
    experiment = store.get_experiment_by_name(EXPERIMENT).experiment_id
    (trial_run,) = store.search_runs([experiment], "tags.sweep_study = 'pruned' and tags.kind = 'trial'")
    assert trial_run.info.status == "FINISHED" and trial_run.data.tags["trial_state"] == "PRUNED"
    (cell,) = store.search_runs([experiment], f"tags.mlflow.parentRunId = '{trial_run.info.run_id}'")
    assert cell.data.tags["pruned_at_step"] == "2" and cell.info.status == "FINISHED"


# --- two machines: one study in PostgreSQL, one mlflow server, two clones ---------------------------------------

def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.fixture
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 (Debian's `postgresql` package), with a password."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql; .ci/run does)")
    # not under pytest's tmp dirs: those are private to this user, and as root the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="sweep-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    (root / "pw").write_text("s3cret\n")
    port = free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(root / "data"), "-U", "sweep", "--pwfile", str(root / "pw"),
                    "--auth", "scram-sha-256"], check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-w", "-l", str(root / "log"), "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://sweep:s3cret@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tracking_server(tmp_path: Path) -> Iterator[str]:
    with mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", artifacts=tmp_path / "artifacts") as (base, _):
        yield base


@pytest.mark.slow
def test_two_workers_in_two_clones_share_one_study(tiny_model_dir: Path, tmp_path: Path, postgres: str,
                                                   tracking_server: str) -> None:
    # two trials, one per worker: each claims a slot while the other's trial runs (a trial takes a minute,
    # a worker starts in seconds), which is what sharing a study needs to show
    n_trials = 2
    origin, remote_cache = tmp_path / "origin", tmp_path / "dvc-remote"
    origin.mkdir()
    # 5 s heartbeats: on a loaded 2-core machine a 1 s beat could come late and get a live trial failed
    env = scratch_project(origin, sweep_params(tiny_model_dir, study="shared", trials=n_trials, heartbeat_seconds=5))
    run([sys.executable, "-m", "dvc", "remote", "add", "-d", "shared", str(remote_cache)], origin, env)
    commit(origin, env, "tiny pipeline with a sweep")
    bare = tmp_path / "origin.git"
    run(["git", "clone", "-q", "--bare", str(origin), str(bare)], tmp_path, env)
    clones = [tmp_path / f"machine{i}" for i in (1, 2)]
    worker_env = {**env, "MLFLOW_TRACKING_URI": tracking_server}
    workers = []
    for clone in clones:
        run(["git", "clone", "-q", str(bare), str(clone)], tmp_path, env)
        workers.append(subprocess.Popen([sys.executable, "-m", "pipeline.sweep", "--storage", postgres, "--push", "origin"],
                                        cwd=clone, env=worker_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [worker.communicate(timeout=1500)[0] for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outs
    ran = [[line.split(":")[0] for line in out.splitlines() if line.startswith("trial ")] for out in outs]
    assert all(ran) and sorted(sum(ran, [])) == [f"trial {n}" for n in range(n_trials)], outs  # each ran one, none twice

    trials = optuna.load_study(study_name="shared", storage=study.storage_url(postgres, tmp_path)).trials
    assert [t.number for t in trials] == list(range(n_trials)) and all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.user_attrs["dvc_exp"] for t in trials}) == n_trials

    store = mlflow.MlflowClient(tracking_server)
    experiment = store.get_experiment_by_name(EXPERIMENT).experiment_id
    runs = store.search_runs([experiment])
    (study_run,) = [r for r in runs if r.data.tags.get("kind") == "study"]
    assert study_run.data.tags["optuna_storage"] == "postgresql://127.0.0.1:" + postgres.rsplit(":", 1)[1]
    assert all("s3cret" not in json.dumps({**r.data.tags, **r.data.params}) for r in runs)
    trial_runs = [r for r in runs if r.data.tags.get("kind") == "trial"]
    assert sorted(int(r.data.tags["sweep_trial"]) for r in trial_runs) == list(range(n_trials))
    assert all(r.data.tags["mlflow.parentRunId"] == study_run.info.run_id and r.info.status == "FINISHED" for r in trial_runs)
    cells = [r for r in runs if r.data.tags.get("cell")]
    assert {r.data.tags["cell"] for r in cells} == {"sts/tiny/cosent"}  # the objective's cell only, not mnrl's
    assert sorted(r.data.tags["mlflow.parentRunId"] for r in cells) == sorted(r.info.run_id for r in trial_runs)

    # every trial's experiment reached the shared git remote, its outputs the shared DVC remote: a third
    # clone pulls one it never ran and reads its model from the pulled cache
    refs = run(["git", "ls-remote", str(bare), "refs/exps/*"], tmp_path, env).stdout
    assert sorted(line.rsplit("/", 1)[1] for line in refs.splitlines()) == [f"shared-{n}" for n in range(n_trials)]
    reader = tmp_path / "reader"
    run(["git", "clone", "-q", str(bare), str(reader)], tmp_path, env)
    run([sys.executable, "-m", "dvc", "exp", "pull", "origin", f"shared-{n_trials - 1}"], reader, env)
    from dvc.api import DVCFileSystem

    fs = DVCFileSystem(str(reader), rev=f"shared-{n_trials - 1}")
    assert json.loads(fs.read_text(paths.train_metrics("sts", "tiny", "cosent").as_posix()))["best_validation"] == \
        pytest.approx(trials[-1].value)
    assert fs.exists(f"{paths.model_dir('sts', 'tiny', 'cosent').as_posix()}/model.safetensors")


def _update_study_runs_in_step(run_ids: list[str], number: int, barrier: object, failures: object) -> None:
    """One sweep worker's end-of-trial update of each study run, in step with another worker's (spawned)."""
    from pipeline.tracking import study_runs

    outcome = study_runs.TrialOutcome(number=number, state=TrialState.COMPLETE, value=0.5 + number / 10)
    for run_id in run_ids:
        barrier.wait()  # type: ignore[attr-defined]
        try:
            study_runs.update_study_run(run_id, outcome, [outcome], (number, outcome.value, {"train.learning_rate": 1e-4}))
        except Exception as error:  # noqa: BLE001 - reported to the test, which fails on it
            failures.put(repr(error)[:300])  # type: ignore[attr-defined]


@pytest.mark.slow
def test_workers_finishing_trials_at_once_both_update_the_study_run(tracking_server: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Two workers writing the same new tags of one study run at the same moment raced in MLflow's store
    # (select-then-insert: UNIQUE constraint failed: tags.key, tags.run_uuid), and the losing worker died;
    # without the retry this lost ~1 in 10 writes here. Each round is a fresh study run, so every write races.
    import multiprocessing

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    store = mlflow.MlflowClient(tracking_server)
    experiment = store.create_experiment("racing-workers")
    run_ids = [store.create_run(experiment, run_name=f"sweep race-{n}").info.run_id for n in range(15)]
    spawn = multiprocessing.get_context("spawn")
    barrier, failures = spawn.Barrier(2), spawn.Queue()
    workers = [spawn.Process(target=_update_study_runs_in_step, args=(run_ids, number, barrier, failures))
               for number in (0, 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
    errors = []
    while not failures.empty():
        errors.append(failures.get())
    assert [worker.exitcode for worker in workers] == [0, 0] and errors == []
    for run_id in run_ids:
        found = store.get_run(run_id)
        assert found.data.tags["trials_done"] == "1" and found.data.tags["best_trial"] in {"0", "1"}
        assert found.data.metrics["best_value"] in (0.5, 0.6)


@pytest.mark.slow
def test_sigterm_to_a_worker_ends_its_trial_and_every_run_it_opened(tiny_model_dir: Path, tmp_path: Path) -> None:
    # `kill`, `timeout` or a CI cancel signal the worker alone: its trial's run was left RUNNING, and its
    # dvc exp run and the stage under it trained on
    import psutil

    repo = tmp_path / "repo"
    params = sweep_params(tiny_model_dir, losses=("cosent",), trials=1)
    params["train"].update(max_steps=2000, eval_steps=1000, checkpoint_steps=1000)  # trains until signalled
    env = scratch_project(repo, params)
    commit(repo, env, "a long trial")  # no repro: the trial's experiment runs ingest, split and baseline itself
    worker = subprocess.Popen([sys.executable, "-m", "pipeline.sweep"], cwd=repo, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)

    def cell_training() -> bool:
        experiment = store.get_experiment_by_name(EXPERIMENT)
        return bool(experiment and store.search_runs([experiment.experiment_id],
                                                     "tags.cell = 'sts/tiny/cosent' and attributes.status = 'RUNNING'"))

    try:
        # No store is opened before the worker has created both: MlflowClient creates and migrates a missing
        # sqlite store as it is constructed, racing the worker's own migration (the pipeline's processes take
        # mlflow.db.lock; CI: a client made beside the worker's first open broke both). The trial's log appears
        # once its Optuna trial and MLflow run exist.
        _wait(lambda: (repo / paths.trial_log("s", 0)).exists(), 300, "trial 0's dvc exp run", worker)
        store = _store(repo)
        _wait(cell_training, 600, "the trial's cell to train", worker, repo / paths.trial_log("s", 0))
        time.sleep(2)
        below = stage_processes(worker.pid, repo)  # dvc exp run, its shell, the train stage (perhaps warm-started)
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=300)
    finally:
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGKILL)
    (trial,) = optuna.load_study(study_name="s", storage=f"sqlite:///{repo / 'optuna.db'}").get_trials()
    assert worker.returncode == 143 and trial.state.name == "FAIL"
    assert err.strip().splitlines()[-1] == (f"interrupted (SIGTERM): trial 0 failed in Optuna, its MLflow run "
                                            f"({trial.user_attrs['mlflow_run']}) ended KILLED"), err[-2000:]
    runs = store.search_runs([store.get_experiment_by_name(EXPERIMENT).experiment_id])
    statuses = {r.data.tags.get("kind") or r.data.tags.get("cell"): r.info.status for r in runs}
    assert statuses["trial"] == "KILLED" and statuses["sts/tiny/cosent"] == "KILLED"
    assert "RUNNING" not in statuses.values(), statuses
    assert len(below) >= 2 and not [p for p in below if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not list((repo / ".dvc" / "tmp" / "exps").glob("tmp*"))  # DVC removed the trial's temporary copy
