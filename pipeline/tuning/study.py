"""The Optuna study behind a sweep: its storage, sampler and pruner, trial slots shared by every worker,
and the trial a train stage reports to.

Exactly N trials across any number of workers: the worker that creates the study also adds N WAITING
trials (slots) in the same storage, and a worker only ever claims a slot (WAITING -> RUNNING, a row-locked
update in the database), never asks Optuna for a new trial, so no race can make an N+1th. While a trial
runs, its worker writes a heartbeat; a worker that finds a RUNNING trial silent for 2 heartbeats fails it
(Optuna's fail_stale_trials), so a killed worker leaves its trial FAIL and the study usable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.core.sweep_params import SweepParams, TrialState
from pipeline.tuning.pruning import CONFIG

SETUP_WAIT_SECONDS = 120  # how long a joining worker waits for the creating worker to add the slots
# Study attributes only the creating worker sets; "mlflow_run" is set last, so its presence means ready.
SEED, TOTAL, MLFLOW_RUN = "seed", "trials", "mlflow_run"


def storage_url(url: str | None, root: Path) -> str:
    """The SQLAlchemy URL of the study store: `sqlite:///<repo>/optuna.db` by default (one machine, no
    server), or a database URL. `postgresql://` is pinned to psycopg 3, the driver this project installs
    (SQLAlchemy 2.0 would otherwise pick psycopg2)."""
    from pipeline.core import paths

    url = url or f"sqlite:///{(root / paths.OPTUNA_DB).resolve()}"
    return "postgresql+psycopg://" + url.removeprefix("postgresql://") if url.startswith("postgresql://") else url


def build_sampler(sweep: SweepParams, seed: int, number: int, total: int) -> Any:
    """The sampler for trial `number` of a study seeded with `seed`. Random draws are seeded per trial (seed +
    number): two workers never draw the same random start, and a trial's draw does not depend on which worker
    runs it. The grid is not: GridSampler shuffles its points with its seed and picks an unvisited point by
    index, so a per-trial seed maps the same index to other points in each trial and repeats some (a 3 x 3
    grid ran one point twice and skipped another); every trial of a study shares the study's order."""
    import optuna

    if sweep.sampler == "grid":
        class SlotGridSampler(optuna.samplers.GridSampler):
            # GridSampler.after_trial calls study.stop() once the grid is used up, which raises RuntimeError
            # outside study.optimize (ask-and-tell, as here: optuna#5141, open), so the last grid trial's tell
            # failed. A sweep ends when its trial slots are taken; there is no optimize loop to stop.
            def after_trial(self, *args: Any) -> None:
                return None

        return SlotGridSampler({key: dim.choices for key, dim in sweep.space.items()}, seed=seed)
    seed += number
    if sweep.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Optuna's 10 random start-up trials would leave a 12-trial sweep nearly random: explore a third of the
    # budget (2 to 10 trials) first. constant_liar: a running trial counts as a bad result, so parallel workers
    # spread out instead of sampling next to the same best point.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, total // 3)), constant_liar=True)


def comparable(sweep: SweepParams) -> dict[str, Any]:
    """The part of the sweep config every worker of a study must share (not the operational knobs)."""
    return sweep.model_dump(mode="json", exclude={"study", "trials", "heartbeat_seconds"})


def open_study(storage: Any, name: str, sweep: SweepParams, seed: int, total: int | None,
               set_up: Callable[[Any], str]) -> Any:
    """Create the study with `total` trial slots, or join it. The creator calls `set_up(study)` (the MLflow
    study run) and stores its result; a joiner waits for that, and must bring the same search."""
    import optuna

    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage)
        _join(study, sweep, seed, total)
        return study
    total = total or sweep.trials
    study.set_user_attr(CONFIG, comparable(sweep))
    study.set_user_attr(SEED, seed)
    study.set_user_attr(TOTAL, total)
    study.add_trials([optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING) for _ in range(total)])
    study.set_user_attr(MLFLOW_RUN, set_up(study))
    return study


def _join(study: Any, sweep: SweepParams, seed: int, total: int | None) -> None:
    deadline = time.monotonic() + SETUP_WAIT_SECONDS
    while MLFLOW_RUN not in study.user_attrs:
        if time.monotonic() > deadline:
            raise PipelineError(f"study {study.study_name!r} exists but its creating worker never finished setting it up; "
                                f"delete it (optuna delete-study --study-name {study.study_name} --storage URL) or "
                                f"use another sweep.study")
        time.sleep(1)
    attrs = study.user_attrs
    if attrs[CONFIG] != comparable(sweep) or attrs[SEED] != seed:
        raise PipelineError(f"study {study.study_name!r} was created with another search (objective, space, sampler, "
                            f"pruner or seed) than params.yaml's; use the same params or another sweep.study")
    if total is not None and total != attrs[TOTAL]:
        raise PipelineError(f"study {study.study_name!r} has {attrs[TOTAL]} trials in total; --trials {total} differs "
                            f"(leave it out to join, or name a new study to search again)")


def stored_sweep(study: Any) -> SweepParams:
    return SweepParams.model_validate(study.user_attrs[CONFIG])


def fail_stale_trials(study: Any) -> None:
    """FAIL every RUNNING trial whose worker stopped sending heartbeats (killed, machine lost)."""
    import optuna

    optuna.storages.fail_stale_trials(study)


def load(storage: Any, name: str) -> Any:
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise PipelineError(f"no study {name!r} in this storage; run `python -m pipeline.sweep` first") from None


def claim_trial(study: Any, storage: Any) -> tuple[Any, int] | None:
    """Take the next free slot (WAITING -> RUNNING; another worker's claim of the same slot loses) and
    return it as a trial to suggest from, with its storage id; None when every slot is taken."""
    import optuna

    study_id = storage.get_study_id_from_name(study.study_name)
    for slot in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, slot.number)
        try:
            if not storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.RUNNING):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        if storage.get_heartbeat_interval():  # a trial without any heartbeat is never found stale
            storage.record_heartbeat(trial_id)
        attrs = study.user_attrs
        study.sampler = build_sampler(stored_sweep(study), attrs[SEED], slot.number, attrs[TOTAL])
        return optuna.trial.Trial(study, trial_id), trial_id
    return None


def tell(study: Any, trial: Any, state: TrialState, value: float | None) -> bool:
    """End the trial in Optuna: COMPLETE with its objective, PRUNED (Optuna keeps its last reported value), or
    FAIL. False when another worker had already failed it (its heartbeats were missed)."""
    import optuna

    state_ = optuna.trial.TrialState[state.value]
    try:
        study.tell(trial, value if state_ == optuna.trial.TrialState.COMPLETE else None, state=state_)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    return True


def finished(study: Any) -> tuple[list[tuple[int, TrialState, float | None]], tuple[int, float, dict[str, Any]] | None]:
    """Every finished trial as (number, state, value), and the best complete one as (number, value, params)."""
    import optuna

    done = [(t.number, TrialState(t.state.name), t.value) for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    best = max(complete, key=lambda t: t.value) if complete else None
    return done, (best.number, best.value, dict(best.params)) if best else None


def suggest(trial: Any, sweep: SweepParams) -> dict[str, Any]:
    """The trial's value for every key of the search space."""
    values: dict[str, Any] = {}
    for key, dim in sweep.space.items():
        if dim.type == "float":
            values[key] = trial.suggest_float(key, dim.low, dim.high, log=dim.log, step=dim.step)
        elif dim.type == "int":
            values[key] = trial.suggest_int(key, dim.low, dim.high, log=dim.log, step=dim.step)
        else:
            values[key] = trial.suggest_categorical(key, dim.choices)
    return values


@contextmanager
def heartbeat(storage: Any, trial_id: int, seconds: int) -> Iterator[None]:
    """Record the trial's heartbeat every `seconds` while the block runs (what Study.optimize does for its
    own trials; here the trial runs in a `dvc exp run` child process, outside optimize)."""
    stop = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial_id)
            if stop.wait(seconds):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
