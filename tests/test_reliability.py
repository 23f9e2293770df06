"""Failures are loud, local and recoverable: SIGKILL mid-training resumes from a checkpoint, exceptions end
MLflow runs FAILED, a dead tracking server fails fast, runs are deterministic, nothing secret is logged."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pandas as pd
import psutil
import pytest
import yaml

from pipeline import baseline, card, evaluate, ingest, split, train
from pipeline.core import paths
from pipeline.core.handoffs import EvalResult
from scripts.scratch_project import free_port, scratch_env, stage_worker
from tests.conftest import ROOT, prepare_set, tiny_params


def stage_env(workdir: Path) -> dict[str, str]:
    return scratch_env(PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=f"sqlite:///{workdir / 'mlflow.db'}")


def interruptible() -> None:
    """preexec_fn for a stage the test will Ctrl-C: a shell that runs the suite in the background without job
    control (`cmd &` in a script) starts it with SIGINT ignored, and Python keeps an ignored SIGINT ignored;
    a stage run from a terminal gets the default, so the stage under test does too."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def prepare(workdir: Path, tiny_model_dir: Path, **train: object) -> None:
    params = tiny_params(tiny_model_dir, ["sts"], ["cosent"])
    params["train"].update(train)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    ingest.main(["--dataset", "sts"])
    split.main(["--dataset", "sts"])
    baseline.main(["--dataset", "sts", "--base", "tiny"])


def cell_runs(workdir: Path) -> list:
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("sentence-embedding-finetune")
    return client.search_runs([experiment.experiment_id], "tags.cell = 'sts/tiny/cosent'") if experiment else []


@pytest.mark.slow
def test_sigkill_mid_training_then_rerun_resumes_from_checkpoint(workdir: Path, tiny_model_dir: Path) -> None:
    # killed at the first checkpoint (step 10) with 90 steps to go; the resumed run trains those 90 and saves
    # 8 more checkpoints (400 steps and a save every 5 cost this test ~4 minutes, mostly in saves)
    prepare(workdir, tiny_model_dir, max_steps=100, checkpoint_steps=10, eval_steps=100)
    command = [sys.executable, "-m", "pipeline.train", "--dataset", "sts", "--base", "tiny", "--loss", "cosent"]
    proc = subprocess.Popen(command, cwd=workdir, env=stage_env(workdir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 300
    ckpt_dir = workdir / paths.checkpoints("sts", "tiny", "cosent")
    while time.time() < deadline and proc.poll() is None:
        if any(ckpt_dir.glob("checkpoint-*/manifest.json")):
            break
        time.sleep(0.1)
    assert proc.poll() is None, "training finished before it could be killed"
    stage = stage_worker(proc.pid, workdir)  # the process that trains, as the kernel's OOM killer picks it
    stage.kill()
    err = proc.communicate(timeout=120)[1]
    assert not (workdir / paths.model_dir("sts", "tiny", "cosent")).exists(), "no half-written model left behind"
    (run,) = cell_runs(workdir)
    assert run.info.status == "KILLED"  # ended by the stage's parent, not left RUNNING
    assert proc.returncode == 137 and re.fullmatch(
        r"error: train sts/tiny/cosent was killed \(SIGKILL\) at \d+\.\d GiB peak memory: (the kernel's out-of-memory killer "
        r"stopped it|most often the kernel's out-of-memory killer, or `kill -9`); to use less memory lower "
        r"train.batch_size \(8\) or train.max_seq_length \(32\); for its validation passes train.eval_batch_size "
        rf"\(128\) or train.validation_pairs \(1000\); MLflow run sts/tiny/cosent \({run.info.run_id}\) ended KILLED; "
        r"checkpoints/sts/tiny/cosent/checkpoint-10 kept: the next run of this cell resumes from it",
        err.strip().splitlines()[-1]), err[-2000:]

    rerun = subprocess.run(command, cwd=workdir, env=stage_env(workdir), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resumed from checkpoint-" in rerun.stdout
    assert (workdir / paths.model_dir("sts", "tiny", "cosent") / "model.safetensors").exists()
    statuses = sorted(r.info.status for r in cell_runs(workdir))
    assert statuses == ["FINISHED", "KILLED"]
    resumed = next(r for r in cell_runs(workdir) if r.info.status == "FINISHED")
    assert resumed.data.tags["resumed_from"].startswith("checkpoint-")


def test_exception_inside_stage_ends_run_failed_with_error(workdir: Path, tiny_model_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    prepare(workdir, tiny_model_dir)
    from sentence_transformers import SentenceTransformerTrainer

    def broken_train(self, *args, **kwargs):  # fault injection: the real trainer up to the failure point
        raise RuntimeError("a bug (injected)")

    monkeypatch.setattr(SentenceTransformerTrainer, "train", broken_train)
    with pytest.raises(RuntimeError, match="injected"):
        train.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
    (run,) = cell_runs(workdir)
    assert run.info.status == "FAILED"
    assert run.data.tags["error"] == "RuntimeError: a bug (injected)"
    assert not (workdir / paths.model_dir("sts", "tiny", "cosent")).exists()
    assert not (workdir / paths.train_facts("sts", "tiny", "cosent")).exists()


def test_unreachable_tracking_server_fails_fast_naming_the_uri(workdir: Path, tiny_model_dir: Path) -> None:
    prepare(workdir, tiny_model_dir)
    port = free_port()  # nothing listens there
    env = {**stage_env(workdir), "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipeline.train", "--dataset", "sts", "--base", "tiny", "--loss", "cosent"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: MLflow tracking store http://127.0.0.1:{port} is unreachable")
    assert "Traceback" not in proc.stderr
    assert time.perf_counter() - started < 120  # never hangs on retries
    assert not (workdir / paths.model_dir("sts", "tiny", "cosent")).exists()


def run_cell(root: Path, tiny_model_dir: Path, seed: int) -> dict:
    root.mkdir()
    os.chdir(root)
    params = tiny_params(tiny_model_dir, ["docstrings"], ["mnrl"])
    params["seed"] = seed
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    prepare_set("docstrings")
    train.main(["--dataset", "docstrings", "--base", "tiny", "--loss", "mnrl"])
    evaluate.main(["--dataset", "docstrings", "--base", "tiny", "--loss", "mnrl"])
    card.main(["--dataset", "docstrings", "--base", "tiny", "--loss", "mnrl"])
    return EvalResult.read(root / paths.eval_result("docstrings", "tiny", "mnrl")).flat()


def test_same_seed_is_deterministic_and_other_seed_differs(workdir: Path, tiny_model_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # credentials present in the environment must never be copied into params, tags or cards
    monkeypatch.setenv("HF_TOKEN", "hf_SENTINELtoken123")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "SENTINELtoken456")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "SENTINELpassword789")
    first = run_cell(workdir / "a", tiny_model_dir, seed=7)
    second = run_cell(workdir / "b", tiny_model_dir, seed=7)
    for name in ("train", "validation", "test"):
        a = (workdir / "a" / paths.split_file("docstrings", name)).read_bytes()
        assert a == (workdir / "b" / paths.split_file("docstrings", name)).read_bytes()
    assert abs(first["test_spearman_cosine"] - second["test_spearman_cosine"]) <= 1e-6
    run_cell(workdir / "c", tiny_model_dir, seed=8)
    assert (workdir / "a" / paths.split_file("docstrings", "test")).read_bytes() != \
        (workdir / "c" / paths.split_file("docstrings", "test")).read_bytes()

    # Nothing secret or machine-specific in what is published: MLflow params and tags, the card.
    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("sentence-embedding-finetune")
    texts = [(workdir / "a" / paths.card("docstrings", "tiny", "mnrl")).read_text()]
    for found in client.search_runs([experiment.experiment_id]):
        texts += [f"{k}={v}" for k, v in {**found.data.params, **found.data.tags}.items()
                  if k not in ("host", "pid")]
    joined = "\n".join(texts)
    for secret in (str(Path.home()) + "/", str(workdir), str(tiny_model_dir), str(ROOT), "site-packages",
                   "SENTINEL"):
        assert secret not in joined, secret


def _train_tiny(output_dir: Path, tiny_model_dir: Path, max_steps: int, save_steps: int | None, callbacks: list) -> None:
    """The library's trainer on 16 tiny pairs, batch 4, every checkpoint kept: `save_steps` None saves only when a
    callback asks."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(str(tiny_model_dir))
    data = Dataset.from_dict({"anchor": [f"query {i}" for i in range(16)], "positive": [f"answer {i}" for i in range(16)]})
    args = SentenceTransformerTrainingArguments(output_dir=str(output_dir), max_steps=max_steps, per_device_train_batch_size=4,
                                                save_strategy="steps" if save_steps else "no", save_steps=save_steps or 500,
                                                report_to="none", use_cpu=True)
    SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model),
                               callbacks=callbacks).train()


def test_periodic_checkpoints_are_saved_but_not_the_final_one(tmp_path: Path, tiny_model_dir: Path) -> None:
    from pipeline.core.params import TrainParams
    from pipeline.training.checkpoints import checkpoint_schedule

    _train_tiny(tmp_path, tiny_model_dir, 4, 2, [checkpoint_schedule(TrainParams(checkpoint_steps=2))])
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2"]


def test_auto_checkpoints_come_by_the_clock_from_the_end_of_the_last_save(tmp_path: Path, tiny_model_dir: Path) -> None:
    from transformers import TrainerCallback

    from pipeline.core.params import TrainParams
    from pipeline.training.checkpoints import checkpoint_schedule

    now = [0.0]

    class Minutes(TrainerCallback):  # a driven clock: each step ends one minute after the run began or the last one
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN202 - the library's hook
            now[0] = 60.0 * state.global_step

        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001, ANN202
            now[0] += 20.0  # saving takes 20 s: the next interval starts after it

    schedule = checkpoint_schedule(TrainParams(checkpoint_minutes=2.5), clock=lambda: now[0])
    # due at 180 s (step 3, saved until 200 s); then at 360 s (step 6: 160 s after); step 9 would be due, but is the last
    _train_tiny(tmp_path, tiny_model_dir, 9, None, [Minutes(), schedule])
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    assert TrainParams().checkpoint_steps == "auto"  # the shipped default


def _agreeing_rank(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from pipeline.training.checkpoints import rank_zero_decides

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    Path(out, f"{rank}.json").write_text(json.dumps([rank_zero_decides(rank == 0), rank_zero_decides(rank == 1)]))
    dist.destroy_process_group()


def test_under_a_launcher_rank_zeros_clock_decides_every_ranks_save(tmp_path: Path) -> None:
    # a save is collective: ranks whose clocks disagree by a step would wait on each other forever
    import torch.multiprocessing as mp

    mp.spawn(_agreeing_rank, args=(free_port(), str(tmp_path)), nprocs=2)
    assert [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in (0, 1)] == [[True, False], [True, False]]


def test_a_checkpoint_damaged_on_disk_is_named_and_never_resumed_from(workdir: Path, tiny_model_dir: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    # a truncated checkpoint was resumed from, failed with a traceback, and so did every later run of the cell

    from pipeline.core import digests
    from pipeline.core.params import parse_params
    from pipeline.training.checkpoints import MANIFEST, checkpoint_schedule, record_complete_checkpoints, resumable_checkpoint

    params = parse_params(tiny_params(tiny_model_dir, ["sts"], ["cosent"]))
    train_split = workdir / paths.split_file("sts", "train")
    train_split.parent.mkdir(parents=True)
    pd.DataFrame({"sentence1": ["a"], "sentence2": ["b"], "score": [0.5]}).to_parquet(train_split)
    assert resumable_checkpoint(params, "sts", "tiny", "cosent") is None  # a new run: its folder, stamped
    ckpt_dir = workdir / paths.checkpoints("sts", "tiny", "cosent")
    _train_tiny(ckpt_dir, tiny_model_dir, 5, 2, [checkpoint_schedule(params.train.model_copy(update={"checkpoint_steps": 2})),
                                                 record_complete_checkpoints()])
    older, newer = ckpt_dir / "checkpoint-2", ckpt_dir / "checkpoint-4"
    for checkpoint in (older, newer):  # the manifest is every file the trainer wrote, as written
        assert digests.damage(checkpoint, json.loads((checkpoint / MANIFEST).read_text())) is None
    assert "model.safetensors" in json.loads((newer / MANIFEST).read_text())
    capsys.readouterr()

    weights = newer / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[:1000])
    newest_whole = paths.checkpoints("sts", "tiny", "cosent") / "checkpoint-2"
    assert resumable_checkpoint(params, "sts", "tiny", "cosent") == str(newest_whole)
    assert capsys.readouterr().out.splitlines() == [
        f"{paths.checkpoints('sts', 'tiny', 'cosent')}/checkpoint-4: model.safetensors is damaged (1,000 bytes; {size:,} when "
        f"written); not resumed from (removed)"]
    assert not newer.exists()

    (older / "tokenizer_config.json").unlink()
    assert resumable_checkpoint(params, "sts", "tiny", "cosent") is None  # nothing whole left: the cell starts over
    assert "checkpoint-2: tokenizer_config.json is missing; not resumed from (removed)" in capsys.readouterr().out
    (ckpt_dir / "checkpoint-6").mkdir()  # cut short by a kill while saving: no manifest, removed without a word
    assert resumable_checkpoint(params, "sts", "tiny", "cosent") is None and capsys.readouterr().out == ""
    assert not list(ckpt_dir.glob("checkpoint-*"))


# --- memory: a refused allocation, the kernel's OOM killer ----------------------------------------

HOG = """
import time
from pipeline.core.process import run_command

def main():
    held = []
    while True:  # 50 MB at a time, every page written, until something stops it
        held.append(bytearray(b"x") * (50 << 20))
        time.sleep(0.01)

def sleep():
    time.sleep(120)

if __name__ == "__main__":
    import sys
    run_command(sleep if "--sleep" in sys.argv else main)
"""


def _memory_cgroup(name: str, limit: int) -> Path | None:
    """A fresh memory cgroup (v2, else v1) holding at most `limit` bytes and no swap; None where this
    process may not make one."""
    v2, v1 = Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/memory")
    try:
        if "memory" in (v2 / "cgroup.subtree_control").read_text().split():
            group = v2 / name
            group.mkdir()
            (group / "memory.max").write_text(str(limit))
            if (group / "memory.swap.max").exists():
                (group / "memory.swap.max").write_text("0")
            return group
    except OSError:
        pass
    try:
        group = v1 / name
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(limit))
        if (group / "memory.memsw.limit_in_bytes").exists():
            (group / "memory.memsw.limit_in_bytes").write_text(str(limit))
        return group
    except OSError:
        return None


def test_the_kernels_oom_killer_is_named_by_the_stages_parent(tmp_path: Path) -> None:
    # a stage killed by the OOM killer ended with DVC's bare "exited with -9"
    (tmp_path / "hog.py").write_text(HOG)
    group = _memory_cgroup(f"pytest-oom-{os.getpid()}", 400 << 20)
    if group is None:
        pytest.skip("no memory cgroup can be made here (needs root and a writable cgroup filesystem)")
    try:
        proc = subprocess.run([sys.executable, "-m", "hog"], cwd=tmp_path, env=scratch_env(PYTHONPATH=f"{tmp_path}:{ROOT}"),
                              capture_output=True, text=True, timeout=120,
                              preexec_fn=lambda: (group / "cgroup.procs").write_text(str(os.getpid())))
    finally:
        group.rmdir()
    assert proc.returncode == 137
    assert re.fullmatch(r"error: hog was killed \(SIGKILL\) at 0\.\d GiB peak memory: the kernel's out-of-memory killer "
                        r"stopped it; to use less memory give it more memory", proc.stderr.strip()), proc.stderr[-2000:]


def test_a_stage_dies_with_the_process_dvc_started(tmp_path: Path) -> None:
    # `kill -9` of the stage command must not leave its supervised worker running on its own
    (tmp_path / "hog.py").write_text(HOG)
    proc = subprocess.Popen([sys.executable, "-m", "hog", "--sleep"], cwd=tmp_path,
                            env=scratch_env(PYTHONPATH=f"{tmp_path}:{ROOT}"))
    deadline = time.time() + 30
    while not psutil.Process(proc.pid).children() and time.time() < deadline:
        time.sleep(0.05)
    (stage,) = psutil.Process(proc.pid).children()
    proc.kill()
    proc.wait()
    stage.wait(timeout=10)  # raises psutil.TimeoutExpired while it runs on


def test_a_refused_allocation_is_one_line_with_the_settings(workdir: Path, tiny_model_dir: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    import torch

    from pipeline.core.errors import cli

    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_model_dir, ["sts"], ["cosent"])))

    def train_stage(argv: list[str]) -> None:
        torch.empty(1 << 60, dtype=torch.uint8)  # far more than any machine: the allocator refuses it

    def evaluate_stage(argv: list[str]) -> None:
        bytearray(1 << 60)

    for function, module, expected in [
        (train_stage, "pipeline.train", r"error: out of memory in train sts/tiny/cosent \(can't allocate memory: you tried to "
         r"allocate 1152921504606846976 bytes\. .*\): lower train\.batch_size \(8\) or train\.max_seq_length \(32\); "
         r"for its validation passes train\.eval_batch_size \(128\) or train\.validation_pairs \(1000\)"),
        (evaluate_stage, "pipeline.evaluate", r"error: out of memory in evaluate sts/tiny/cosent \(MemoryError\): give it more "
         r"memory, or cap the set's rows \(datasets\.sts\.rows\)")]:
        function.__module__ = module
        with pytest.raises(SystemExit) as exited:
            cli(function)(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
        assert exited.value.code == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert re.fullmatch(expected, line), line


# --- a full disk --------------------------------------------------------------------------------

@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[None]:
    """A real tmpfs of `size` mounted at `folder` (root only; the test skips elsewhere)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): needs root (CI runs as root)")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _one_error_line(capsys: pytest.CaptureFixture, run: object) -> str:
    with pytest.raises(SystemExit) as exited:
        run()  # type: ignore[operator]
    assert exited.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith(("error:", "Traceback"))]
    assert len(lines) == 1, lines
    return lines[0]


def test_a_full_disk_is_one_line_naming_the_output_and_nothing_half_written_is_kept(
        workdir: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    # a disk filling while a checkpoint, the model or a result file was written ended in a traceback
    prepare(workdir, tiny_model_dir, max_steps=6, checkpoint_steps=2, eval_steps=3)
    cell = ["--dataset", "sts", "--base", "tiny", "--loss", "cosent"]
    capsys.readouterr()
    with small_disk(workdir / "checkpoints", "1m"):  # smaller than one checkpoint of the tiny model
        line = _one_error_line(capsys, lambda: train.main(cell))
        assert re.fullmatch(r"error: checkpoints/sts/tiny/cosent: no space left on its disk \(.+ free\): a checkpoint needs "
                            r"about .+; free some space \(or move the folder to a larger disk\) and run the stage "
                            r"again; nothing half-written is kept", line), line
        assert not list((workdir / "checkpoints").rglob("manifest.json"))  # no checkpoint looks whole
        assert not (workdir / paths.model_dir("sts", "tiny", "cosent")).exists()
    with small_disk(workdir / "models", "1m"):
        line = _one_error_line(capsys, lambda: train.main(cell))
        assert line.startswith("error: models/sts/tiny/cosent: no space left on its disk (") and "the model needs about" in line
        assert not [p for p in (workdir / "models").rglob("*") if p.is_file()]  # no staging folder, no partial model
    train.main(cell)  # space freed: the cell trains to the end
    assert (workdir / paths.model_files("sts", "tiny", "cosent")).exists()
    assert [r.info.status for r in cell_runs(workdir)].count("FINISHED") == 1

    result = workdir / paths.eval_result("sts", "tiny", "cosent")
    with small_disk(result.parent, "64k"):
        filler = result.parent / "filler"
        with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
            while True:
                out.write(b"x" * 4096)
        line = _one_error_line(capsys, lambda: evaluate.main(cell))
        assert line.startswith("error: results/evaluate/sts/tiny/cosent.json: no space left on its disk (0 bytes free): the "
                               "test scores could not be written"), line
        assert [p.name for p in result.parent.iterdir()] == ["filler"]  # no temporary file left
    evaluate.main(cell)
    assert EvalResult.read(result).test.tuned.spearman is not None


# --- racing writers ------------------------------------------------------------------------------

STORE_WORKER = """
import json, os, sys, time
import mlflow  # imported before the start signal: both workers then reach the store within a millisecond
from pipeline.core.errors import PipelineError
from pipeline.tracking.runs import configure
for directory in sys.argv[1:]:
    print("ready", flush=True)
    while not os.path.exists(os.path.join(directory, "go")):
        time.sleep(0.001)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{directory}/mlflow.db"
    try:
        print(json.dumps({"experiment": configure("race")}), flush=True)
    except PipelineError as error:
        print(json.dumps({"error": str(error)}), flush=True)
"""


def test_two_stages_creating_the_store_at_once_both_succeed(tmp_path: Path) -> None:
    # two stages on a fresh repository race to create mlflow.db: without the store lock one fails
    # ("unreachable"), or both do and leave a half-migrated store. Each round: a fresh directory, two
    # processes released at the same moment into the code path every stage opens the store with.
    import json

    rounds = [tmp_path / f"round{i}" for i in range(4)]
    for directory in rounds:
        directory.mkdir()
    env = {**stage_env(tmp_path), "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-c", STORE_WORKER, *map(str, rounds)], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for _ in range(2)]
    try:
        for directory in rounds:
            assert [w.stdout.readline().strip() for w in workers] == ["ready", "ready"]
            (directory / "go").touch()
            outcomes = [json.loads(w.stdout.readline()) for w in workers]
            assert all("experiment" in o for o in outcomes), (directory.name, outcomes)
            assert outcomes[0] == outcomes[1]
            client = mlflow.MlflowClient(f"sqlite:///{directory / 'mlflow.db'}")  # a later access works too
            assert sorted(e.name for e in client.search_experiments()) == ["Default", "race"]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()


def test_a_store_left_half_created_says_so_in_one_line(workdir: Path) -> None:
    # what an unlocked race leaves: MLflow's migration stopped halfway, every later access fails
    import sqlite3

    from pipeline.core.errors import PipelineError
    from pipeline.tracking.runs import configure

    with sqlite3.connect(workdir / "mlflow.db") as connection:
        connection.execute("create table _alembic_tmp_tags (key varchar(250))")
    with pytest.raises(PipelineError) as caught:
        configure("sentence-embedding-finetune")
    message = str(caught.value)
    assert message.startswith(f"MLflow store sqlite:///{workdir / 'mlflow.db'} cannot be opened (OperationalError: ")
    assert "_alembic_tmp_tags already exists" in message and "unreachable" not in message
    assert message.endswith(f"it holds no runs and was probably left half-created by an interrupted first use: "
                            f"delete {workdir / 'mlflow.db'} and run again")


@pytest.mark.slow
def test_two_train_stages_of_one_cell_at_once(workdir: Path, tiny_model_dir: Path) -> None:
    # both shared models/<d>/.<loss>.tmp (and checkpoints/<d>/<loss>) and the loser crashed with a
    # traceback. Now a second train stage of a cell stops at once with one line while the first runs.
    from sentence_transformers import SentenceTransformer

    prepare(workdir, tiny_model_dir, max_steps=8, checkpoint_steps=2, eval_steps=4)
    command = [sys.executable, "-m", "pipeline.train", "--dataset", "sts", "--base", "tiny", "--loss", "cosent"]
    busy = ("error: train sts/tiny/cosent is already running in another process (it holds checkpoints/sts/tiny/.cosent.lock); "
            "wait for it to finish, or stop it")

    def start() -> subprocess.Popen:
        return subprocess.Popen(command, cwd=workdir, env=stage_env(workdir), text=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, preexec_fn=interruptible)

    def outcome(proc: subprocess.Popen) -> tuple[int, str]:
        err = proc.communicate(timeout=600)[1]
        assert "Traceback" not in err, err[-3000:]
        return proc.returncode, (err.strip().splitlines() or [""])[-1]

    # started at the same moment: the first to take the cell trains, the other stops (or, had the first
    # already finished, trains after it)
    results = [outcome(proc) for proc in [start(), start()]]
    assert all(code == 0 or (code, line) == (2, busy) for code, line in results), results
    assert 0 in [code for code, _ in results]
    SentenceTransformer(str(workdir / paths.model_dir("sts", "tiny", "cosent")))  # one whole model, loadable
    assert not list((workdir / "models" / "sts").glob(".cosent.*.tmp"))

    # started while the first trains (its MLflow run is open): always refused, the first carries on
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["train"].update(max_steps=2000, checkpoint_steps=0)  # long enough to still run when the second arrives
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    first = start()
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None and "RUNNING" not in [r.info.status for r in cell_runs(workdir)]:
        time.sleep(0.1)
    assert outcome(start()) == (2, busy)
    assert first.poll() is None, "the first train stage still runs"
    first.send_signal(signal.SIGINT)
    assert outcome(first)[0] == 130
    assert "RUNNING" not in [r.info.status for r in cell_runs(workdir)]


def test_save_verified_stages_per_process_and_stops_when_another_saved_first(workdir: Path, tiny_model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from pipeline.core.errors import PipelineError
    from pipeline.training.recipe import save_verified

    model, out_dir, texts = SentenceTransformer(str(tiny_model_dir)), Path("models/sts/tiny/cosent"), ["a text", "another"]
    out_dir.parent.mkdir(parents=True)
    dead, alive = out_dir.with_name(".cosent.999999999.tmp"), out_dir.with_name(f".cosent.{os.getppid()}.tmp")
    dead.mkdir()  # left by a train stage killed while saving
    alive.mkdir()  # another live process's: not ours to delete
    assert save_verified(model, out_dir, texts) <= 1e-5
    assert (out_dir / "model.safetensors").exists() and not dead.exists() and alive.exists()

    with pytest.raises(PipelineError, match=r"^models/sts/tiny/cosent: another train stage of this cell saved its model there "
                                            r"first; run one train stage per cell at a time$"):
        save_verified(model, out_dir, texts)  # out_dir now holds "the other process's" model
    assert sorted(p.name for p in out_dir.parent.iterdir()) == [alive.name, "cosent"]


def test_save_verified_stops_on_a_diverged_model(workdir: Path, tiny_model_dir: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    from pipeline.core.errors import PipelineError
    from pipeline.training.recipe import save_verified

    model = SentenceTransformer(str(tiny_model_dir))
    with torch.no_grad():
        for weight in model.parameters():
            weight.fill_(math.nan)  # what a diverged training leaves
    with pytest.raises(PipelineError, match=r"embeddings are NaN or infinite \(training diverged\); lower "
                                            r"train.learning_rate"):
        save_verified(model, Path("models/sts/tiny/cosent"), ["a text", "another"])
    assert list((workdir / "models" / "sts" / "tiny").iterdir()) == []


# --- Ctrl-C, failed stages -----------------------------------------------------------------------

def test_cli_turns_ctrl_c_into_one_line_and_releases_held_locks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from filelock import FileLock

    from pipeline.core.errors import cli, on_interrupt
    from pipeline.core.files import hold_lock

    lock = tmp_path / "cell.lock"

    @cli
    def interrupted_stage(notes: list[str]) -> None:
        hold_lock(lock, "the stage")
        for note in notes:
            on_interrupt(lambda note=note: note)
        on_interrupt(lambda: None)  # a note with nothing to say is left out
        raise KeyboardInterrupt

    for notes, line in [([], "interrupted (Ctrl-C): stopped before writing its outputs"),
                        (["checkpoint kept", "run KILLED"], "interrupted (Ctrl-C): run KILLED; checkpoint kept")]:
        with pytest.raises(SystemExit) as exited:
            interrupted_stage(notes)
        assert exited.value.code == 130
        assert capsys.readouterr().err.splitlines() == [line]
        with FileLock(lock, timeout=0):  # released when the stage ended
            pass


def test_sigterm_is_an_interruption_with_its_own_exit_status(capsys: pytest.CaptureFixture) -> None:
    from pipeline.core.errors import cli, on_interrupt

    @cli
    def stage() -> None:
        on_interrupt(lambda: "run KILLED")
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill`, `timeout` or a scheduler sends it
        time.sleep(5)
        raise AssertionError("SIGTERM did not stop the stage")

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exited:
        stage()
    assert exited.value.code == 143
    assert capsys.readouterr().err.splitlines() == ["interrupted (SIGTERM): run KILLED"]
    assert signal.getsignal(signal.SIGTERM) is before  # the handler lives as long as the stage


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status", "name"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_interrupt_mid_training_is_one_line_run_killed_checkpoint_kept(workdir: Path, tiny_model_dir: Path, signum: int,
                                                                       status: int, name: str) -> None:
    # Ctrl-C printed a KeyboardInterrupt traceback; SIGTERM (kill, timeout, a CI cancel) left the run RUNNING
    prepare(workdir, tiny_model_dir, max_steps=400, checkpoint_steps=5, eval_steps=100)
    command = [sys.executable, "-m", "pipeline.train", "--dataset", "sts", "--base", "tiny", "--loss", "cosent"]
    proc = subprocess.Popen(command, cwd=workdir, env=stage_env(workdir), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    ckpt_dir = workdir / paths.checkpoints("sts", "tiny", "cosent")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not any(ckpt_dir.glob("checkpoint-*/manifest.json")):
        time.sleep(0.1)
    assert proc.poll() is None, "training finished before it could be interrupted"
    proc.send_signal(signum)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == status
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    (run,) = cell_runs(workdir)
    assert run.info.status == "KILLED"
    assert re.fullmatch(rf"interrupted \({name}\): MLflow run sts/tiny/cosent \({run.info.run_id}\) ended KILLED; "
                        r"checkpoints/sts/tiny/cosent/checkpoint-\d+ kept: the next run of this cell resumes from it",
                        err.strip().splitlines()[-1]), err[-1000:]
    assert not (workdir / paths.model_dir("sts", "tiny", "cosent")).exists()
    assert not list((workdir / "models").rglob("*.tmp"))


def test_a_failed_split_leaves_none_of_its_previous_outputs(workdir: Path, tiny_model_dir: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    # a split that failed kept the old data/splits/<d>/ and split.json, against the README's promise
    from tests.test_bad_inputs import expect_one_line_exit

    prepare(workdir, tiny_model_dir)  # ingest and a successful split
    outputs = [workdir / p for p in (paths.split_dir("sts"), paths.split_file("sts", "test"), paths.split_report("sts"))]
    assert all(output.exists() for output in outputs)

    ingested = workdir / paths.ingested("sts")
    full = pd.read_parquet(ingested)
    full.head(2).to_parquet(ingested)  # two rows cannot fill three splits
    capsys.readouterr()
    line = expect_one_line_exit(capsys, lambda: split.main(["--dataset", "sts"]))
    assert "came out empty" in line
    assert not any(output.exists() for output in outputs)

    full.to_parquet(ingested)
    split.main(["--dataset", "sts"])
    assert all(output.exists() for output in outputs)
    (workdir / paths.ingested("sts")).unlink()
    capsys.readouterr()
    line = expect_one_line_exit(capsys, lambda: split.main(["--dataset", "sts"]))
    assert line.startswith("error: data/ingested/sts.parquet: not found; the ingest stage writes it")
    assert not any(output.exists() for output in outputs)
