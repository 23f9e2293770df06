"""Search hyperparameters: an Optuna study over params keys, each trial a DVC experiment and an MLflow run.

Usage: python -m pipeline.sweep [--trials N] [--storage URL] [--study NAME] [--push REMOTE]
       python -m pipeline.sweep --apply-best [--storage URL] [--study NAME]

Reads params.yaml's `sweep:` section (objective, search space, trials, sampler, pruner). Each trial runs
`dvc exp run --temp --name <study>-<n> -S key=value ... train@<dataset>-<base>-<loss> evaluate@...`,
so it shows in `dvc exp show` and `dvc exp apply <study>-<n>` restores it; its train stage reports
validation Spearman to the trial and stops early when the pruner says so. `--trials` is the study's
total across all workers; run the same command on several machines with `--storage postgresql://...` to
share one study (docs/experiments.md, Sweeps). `--apply-best` writes the best trial's params into params.yaml.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.core import paths
from pipeline.core.errors import PipelineError, cli, interrupted, on_interrupt
from pipeline.core.handoffs import SweepTrial
from pipeline.core.loading import load_params
from pipeline.core.params import Params, parse_params
from pipeline.core.process import run_command
from pipeline.core.sweep_params import SweepParams, TrialState, check_sweep, read_sweep, with_value

if TYPE_CHECKING:
    from pipeline.tracking.study_runs import TrialOutcome


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, help="total trials of the study (default: sweep.trials); only when creating it")
    parser.add_argument("--storage", help="Optuna storage URL (default: sqlite:///optuna.db in this repository)")
    parser.add_argument("--study", help="study name (default: sweep.study); also names the DVC experiments")
    parser.add_argument("--push", metavar="REMOTE", help="dvc exp push each trial to this git remote and the DVC remote")
    parser.add_argument("--apply-best", action="store_true", help="write the best trial's params into params.yaml")
    args = parser.parse_args(argv)
    if args.trials is not None and args.trials <= 0:
        raise PipelineError(f"--trials {args.trials}: must be at least 1")
    return args


@cli
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params()
    sweep = read_sweep(params, args.study)
    check_sweep(params, sweep)

    from pipeline.tracking import runs, study_runs
    from pipeline.tuning import experiments, study
    from pipeline.tuning import storage as stores

    root = runs.repo_root()
    url = study.storage_url(args.storage, root)
    # the progress lines are this command's output: no "View run at" line from MLflow per run ended
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if args.apply_best:
        return apply_best(stores.open_storage(url), sweep.study, root)
    # Everything that can stop the sweep is checked before the first trial trains: params, storage, MLflow, git.
    storage = stores.open_storage(url, sweep.heartbeat_seconds,
                                 on_stale=lambda _, trial: study_runs.mark_trial_run_killed(trial.user_attrs.get("mlflow_run")))
    runs.configure(params.mlflow.experiment)
    if not experiments.is_git_commit_present(root):
        raise PipelineError(f"{root.name}: trials are DVC experiments of the current commit; commit first (git commit)")
    if args.push:
        experiments.check_can_push(args.push, root)

    def set_up(created: Any) -> str:  # by the worker that creates the study, once
        return study_runs.create_study_run(params.mlflow.experiment, sweep.study, sweep, stores.display_url(url),
                                           created.user_attrs[study.TOTAL], params.selection_name)

    found = study.open_study(storage, sweep.study, sweep, params.seed, args.trials, set_up)
    total, losses = found.user_attrs[study.TOTAL], sweep.objective_losses(params.run.losses)
    base = sweep.objective_base(params.run.base_models)
    print(f"sweep {sweep.study}: {total} trials in {stores.display_url(url)}, objective best validation "
          f"{params.selection_name} of {sweep.objective.dataset} x {base} x {sweep.objective.loss}, "
          f"{sweep.sampler} sampler, {sweep.pruner.type} pruner")
    while True:
        study.fail_stale_trials(found)
        claimed = study.claim_trial(found, storage)
        if claimed is None:
            break
        run_trial(claimed, found, storage, url, params, sweep, losses, root, args.push)
    summary(found)


def run_trial(claimed: Any, found: Any, storage: Any, url: str, params: Params, sweep: SweepParams, losses: list[str],
              root: Path, push: str | None) -> None:
    """One trial: sample, run its DVC experiment, read its objective back, tell Optuna and MLflow."""
    import yaml

    from pipeline.tracking import runs, study_runs
    from pipeline.tuning import experiments, study

    trial, trial_id = claimed
    started, number, base = time.monotonic(), trial.number, sweep.objective_base(params.run.base_models)
    values = study.suggest(trial, sweep)
    name, log = experiments.exp_name(sweep.study, number), paths.trial_log(sweep.study, number)
    run_id = study_runs.start_trial_run(params.mlflow.experiment, found.user_attrs[study.MLFLOW_RUN], sweep.study,
                                        number, name, values)
    trial.set_user_attr("mlflow_run", run_id)
    trial.set_user_attr("dvc_exp", name)
    outcome = study_runs.TrialOutcome(number, TrialState.FAIL, None, error="interrupted")  # until the trial says otherwise
    try:
        document = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
        for key, value in values.items():  # each bound was checked alone at load; here the combination
            document = with_value(document, key, value)
        parse_params(document)
        handed = SweepTrial(storage=url, study=sweep.study, trial_id=trial_id, dataset=sweep.objective.dataset,
                            base=base, losses=losses)
        env = {**os.environ, **handed.environment(), runs.OUTER_PARENT: run_id}
        with study.heartbeat(storage, trial_id, sweep.heartbeat_seconds):
            error = experiments.run_experiment(name, experiments.set_param_args(values, document),
                                               experiments.targets(sweep.objective.dataset, base, losses), env, log)
        outcome = outcome_of(number, error, root, name, sweep.objective.dataset, base, losses, log)
        if outcome.state != TrialState.FAIL and push and (push_error := experiments.push_experiment(push, name, root, log)):
            print(f"warning: {push_error}")
    except PipelineError as error:
        outcome = study_runs.TrialOutcome(number, TrialState.FAIL, None, error=str(error))
    except KeyboardInterrupt as interruption:  # Ctrl-C or SIGTERM: the trial fails, its run ends KILLED
        outcome = study_runs.TrialOutcome(number, TrialState.FAIL, None, error=interrupted(interruption), killed=True)
        on_interrupt(lambda: f"trial {number} failed in Optuna, its MLflow run ({run_id}) ended KILLED")
        raise
    finally:
        if not study.tell(found, trial, outcome.state, outcome.value):
            print(f"warning: trial {number} was failed by another worker meanwhile (heartbeats missed for "
                  f"{2 * sweep.heartbeat_seconds}s); its result stays in DVC and MLflow only")
        study_runs.end_trial_run(run_id, outcome)
    done, best = study.finished(found)
    history = [study_runs.TrialOutcome(n, state, value) for n, state, value in done]
    study_runs.update_study_run(found.user_attrs[study.MLFLOW_RUN], outcome, history, best)
    shown = " ".join(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}" for key, value in values.items())
    result = f"objective {outcome.value:.4f}" if outcome.value is not None else outcome.error or ""
    best_text = f" (best {best[1]:.4f}, trial {best[0]})" if best else ""
    print(f"trial {number}: {name} {outcome.state} {result}{best_text} {shown} [{time.monotonic() - started:.0f}s, "
          f"{len(done)}/{found.user_attrs[study.TOTAL]} done]", flush=True)


def outcome_of(number: int, error: str | None, root: Path, name: str, dataset: str, base: str, losses: list[str],
               log: Path) -> TrialOutcome:
    """COMPLETE with the best validation score of the objective's cells (in the metric that chose each one's kept
    weights: train.select_metric), PRUNED when the pruner stopped
    every one of them, FAIL when the experiment failed (its log holds why)."""
    from pipeline.tracking.study_runs import TrialOutcome
    from pipeline.tuning import experiments

    if error is not None:
        return TrialOutcome(number, TrialState.FAIL, None, error=f"{error} (log: {log})")
    cells = experiments.read_cells(root, name, dataset, base, losses)
    curves = {loss: cell.curve for loss, cell in cells.items()}
    tests = {loss: cell.test_spearman for loss, cell in cells.items() if cell.test_spearman is not None}
    kept = [cell.metrics.best_validation for cell in cells.values() if not cell.metrics.pruned]
    if not kept:
        reached = max(cell.metrics.best_validation or float("-inf") for cell in cells.values())
        return TrialOutcome(number, TrialState.PRUNED, reached if reached > float("-inf") else None, curves, tests)
    if any(value is None for value in kept):
        return TrialOutcome(number, TrialState.FAIL, None, curves, tests, error="a cell ran no validation (train.eval_strategy)")
    return TrialOutcome(number, TrialState.COMPLETE, max(kept), curves, tests)


def summary(found: Any) -> None:
    from pipeline.tuning import study

    done, best = study.finished(found)
    states = {state: sum(s == state for _, s, _ in done) for state in TrialState}
    print(f"sweep {found.study_name}: {len(done)}/{found.user_attrs[study.TOTAL]} trials done "
          f"({', '.join(f'{n} {s.lower()}' for s, n in states.items())})" +
          (f"; best {best[1]:.4f} by trial {best[0]}: {best[2]} (python -m pipeline.sweep --apply-best)" if best else ""))


def apply_best(storage: Any, name: str, root: Path) -> None:
    from pipeline.tuning import experiments, study

    _, best = study.finished(study.load(storage, name))
    if best is None:
        raise PipelineError(f"study {name!r} has no completed trial yet")
    number, value, values = best
    experiments.write_values(root / "params.yaml", values)
    load_params(root / "params.yaml")
    print(f"params.yaml: trial {number} ({experiments.exp_name(name, number)}, best validation Spearman {value:.4f}): "
          + ", ".join(f"{key}={value}" for key, value in values.items()) + "; now `dvc repro` and commit")


if __name__ == "__main__":
    run_command(main)
