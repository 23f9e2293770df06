"""Warm starts (pipeline/core/warm.py): a stage command forked from a server that imported its libraries
already must behave as the cold process did — the code on disk, the command's context and streams, its exit
status, signals both ways, a SIGKILL named — and a server serves only commands whose imports it matches.

The stage here imports a small module instead of the ML stack, so each test takes seconds; the last test
checks that a real stage is forked from a server that imported sentence-transformers and MLflow, and the
end-to-end tests run every stage through warm starts as `dvc repro` does."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from scripts.scratch_project import scratch_env, stage_worker
from tests.conftest import ROOT

STAGE = '''
import os, signal, sys, time

from pipeline.core import process
from pipeline.core.process import import_ml_stack, run_command

process.ML_STACK = ("stack",)  # what a warm server imports: a small stand-in for sentence-transformers and MLflow


def parent_of(pid):
    return int(open(f"/proc/{pid}/status").read().split("PPid:")[1].split()[0])


def server():
    """The pid of this process's grandparent if that is a warm server, else 0."""
    grandparent = parent_of(os.getppid())
    return grandparent if b"pipeline.core.warm" in open(f"/proc/{grandparent}/cmdline", "rb").read() else 0


def command():
    """The parent of the process the stage says it runs for (PIPELINE_STAGE_COMMAND): the command started here."""
    pid = os.environ.get("PIPELINE_STAGE_COMMAND")
    return parent_of(pid) if pid else None


def main():
    if "--bad" in sys.argv:  # a check before the heavy imports, as a stage validates its params
        sys.exit("error: bad arguments")
    imported_before = "stack" in sys.modules
    import_ml_stack("stack")
    print(f"stage {os.getpid()} {os.getppid()} {server()} {os.getcwd()} {sys.argv[1:]} {os.environ.get('STAGE_NOTE')} "
          f"{os.environ.get('PIPELINE_WARM_CHILD')} {imported_before} {os.environ.get('SET_BY_IMPORT')} "
          f"{command()} VERSION", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    if "--sleep" in sys.argv:
        time.sleep(120)
    if "--fail" in sys.argv:
        sys.exit(3)
    if "--kill" in sys.argv:
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    run_command(main)
'''


# stands for the ML stack: a library that sets an environment variable as it imports (torch sets KMP_DUPLICATE_LIB_OK)
STACK = """
import email.mime.text, os
os.environ["SET_BY_IMPORT"] = "yes"
"""


@pytest.fixture
def stage(tmp_path: Path):
    """A stage module in a project folder, and a runner; every server started is stopped at the end."""
    if sys.platform != "linux":
        pytest.skip("warm starts are Linux only")
    (tmp_path / "stage.py").write_text(STAGE.replace("VERSION", "v1"))
    (tmp_path / "stack.py").write_text(STACK)
    servers: set[int] = set()
    sockets = Path(tempfile.mkdtemp(prefix="w", dir="/tmp"))  # this test's servers alone, at a short socket path

    def env(**extra: str) -> dict[str, str]:
        return scratch_env(**{"PYTHONPATH": f"{tmp_path}:{ROOT}", "TMPDIR": str(sockets), "PIPELINE_WARM_IDLE_S": "60",
                              "PIPELINE_WARM_START": "1", **extra})

    def run(*args: str, **extra: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
        command = subprocess.Popen([sys.executable, "-m", "stage", *args], cwd=tmp_path, env=env(**extra),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stdout, stderr = command.communicate(timeout=120)
        proc = subprocess.CompletedProcess(command.args, command.returncode, stdout, stderr)
        facts = {**facts_of(stdout), "command": str(command.pid)}
        if server := facts.get("server"):
            servers.add(int(server))
        return proc, facts

    run.env, run.folder, run.servers, run.sockets = env, tmp_path, servers, sockets / f"pipeline-warm-{os.getuid()}"
    yield run
    for pid in servers:
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass
    shutil.rmtree(sockets, ignore_errors=True)


def facts_of(stdout: str) -> dict[str, str]:
    """What the stage printed about itself, with the server it was forked from (its parent's parent), if any."""
    line = next((line for line in stdout.splitlines() if line.startswith("stage ")), None)
    if line is None:
        return {}
    _, pid, parent, server, cwd, *rest = line.split(" ")
    facts = {"pid": pid, "parent": parent, "cwd": cwd, "rest": " ".join(rest)}
    if server != "0":
        facts["server"] = server
    return facts


def test_a_warm_stage_runs_the_code_on_disk_in_the_commands_context(stage) -> None:
    first, facts = stage("--flag", "x", STAGE_NOTE="note")
    assert first.returncode == 0, first.stderr
    assert "server" in facts and facts["parent"] != facts["command"], first.stdout  # forked from a server
    # the command's argv, working directory and environment; the server's import and what it set in the
    # environment; the mark taken out again; the command it runs for (its ancestors lead to DVC)
    assert facts["cwd"] == str(stage.folder)
    assert facts["rest"] == f"['--flag', 'x'] note None True yes {facts['command']} v1"
    assert first.stderr.strip() == "to stderr"  # the command's own standard streams
    (stage.folder / "stage.py").write_text(STAGE.replace("VERSION", "v2"))  # edited while the server runs
    second, again = stage("--flag", "x", STAGE_NOTE="note")
    assert again["server"] == facts["server"] and again["rest"].endswith(" v2")


def test_a_check_that_fails_before_the_imports_starts_no_server(stage) -> None:
    bad, facts = stage("--bad")
    assert bad.returncode == 1 and bad.stderr.strip() == "error: bad arguments" and "pid" not in facts
    assert not list(stage.sockets.glob("*"))  # no server was ever asked for


def test_exit_status_and_a_sigkill_are_reported_as_from_a_cold_start(stage) -> None:
    failed, facts = stage("--fail")
    assert failed.returncode == 3 and "server" in facts
    killed, facts = stage("--kill")
    assert killed.returncode == 128 + signal.SIGKILL and "server" in facts
    assert killed.stderr.strip().endswith("error: stage was killed (SIGKILL) at 0.0 GiB peak memory: most often the "
                                          "kernel's out-of-memory killer, or `kill -9`; to use less memory give it "
                                          "more memory"), killed.stderr


def start_sleeping(stage, sigint: object = signal.SIG_DFL, stderr: int = subprocess.DEVNULL
                   ) -> tuple[subprocess.Popen, psutil.Process]:
    proc = subprocess.Popen([sys.executable, "-m", "stage", "--sleep"], cwd=stage.folder, env=stage.env(),
                            stdout=subprocess.PIPE, stderr=stderr, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))
    facts = facts_of(proc.stdout.readline())
    assert "server" in facts
    stage.servers.add(int(facts["server"]))
    return proc, psutil.Process(int(facts["pid"]))


def test_signals_reach_the_stage_and_a_killed_command_takes_it_down(stage) -> None:
    proc, worker = start_sleeping(stage)
    proc.send_signal(signal.SIGTERM)  # as DVC passes a stop on
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    worker.wait(timeout=10)
    proc, worker = start_sleeping(stage)
    proc.send_signal(signal.SIGINT)  # Ctrl-C: uncaught, the interpreter ends by SIGINT
    assert proc.wait(timeout=30) == 128 + signal.SIGINT
    worker.wait(timeout=10)
    proc, worker = start_sleeping(stage, sigint=signal.SIG_IGN)  # started by a script's `cmd &`: SIGINT ignored
    proc.send_signal(signal.SIGINT)
    time.sleep(1)
    assert worker.is_running() and proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    proc, worker = start_sleeping(stage)
    proc.kill()  # `kill -9` of what DVC started
    proc.wait(timeout=30)
    worker.wait(timeout=10)  # raises psutil.TimeoutExpired while the stage runs on


def test_a_stage_whose_fork_parent_dies_is_named_killed_without_a_made_up_peak(stage) -> None:
    # the fork's parent measures the stage; if it dies first (killed with the server's process group, say),
    # the stage dies with it and nobody measured it: the line says so rather than "0.0 GiB"
    proc, worker = start_sleeping(stage, stderr=subprocess.PIPE)
    worker.parent().kill()
    _, stderr = proc.communicate(timeout=30)
    worker.wait(timeout=10)
    assert proc.returncode == 128 + signal.SIGKILL
    assert "error: stage was killed (SIGKILL): most often the kernel's out-of-memory killer" in stderr, stderr
    assert "peak memory" not in stderr


def test_a_server_serves_only_commands_whose_imports_it_matches(stage) -> None:
    _, first = stage(STAGE_NOTE="a")
    _, same = stage(STAGE_NOTE="a", DVC_EXP_NAME="x", PYTEST_CURRENT_TEST="y")  # set per call; no import reads them
    _, other = stage(STAGE_NOTE="b")  # any other variable may shape an import: another server
    assert first["server"] == same["server"] != other["server"]
    cold, facts = stage(PIPELINE_WARM_START="0")
    assert cold.returncode == 0 and "server" not in facts and facts["rest"] == "[] None None False yes None v1"
    assert facts["parent"] == facts["command"]  # the command's own fork, as before
    flagged = subprocess.run([sys.executable, "-X", "importtime", "-m", "stage"], cwd=stage.folder, env=stage.env(),
                             capture_output=True, text=True, timeout=120)
    assert flagged.returncode == 0 and "server" not in facts_of(flagged.stdout)  # other flags: a cold start


def test_an_idle_server_exits_and_leaves_no_socket(stage) -> None:
    proc, facts = stage(PIPELINE_WARM_IDLE_S="1")
    assert proc.returncode == 0 and "server" in facts
    psutil.Process(int(facts["server"])).wait(timeout=30)
    deadline = time.time() + 10
    while list(stage.sockets.glob("*.sock")) and time.time() < deadline:
        time.sleep(0.1)
    assert not list(stage.sockets.glob("*.sock"))


def test_a_real_stage_is_forked_from_a_server_that_imported_the_ml_stack(tiny_model_dir: Path, tmp_path: Path) -> None:
    # the stages' own path, not the stand-in's: a digest that never matches (an import that changes the
    # environment, say) would make every stage start cold again without a single test failing
    from pipeline.core.process import ML_STACK
    from tests.conftest import stage_project, tiny_params

    sockets = Path(tempfile.mkdtemp(prefix="w", dir="/tmp"))
    env = scratch_env(PYTHONPATH=str(ROOT), TMPDIR=str(sockets), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
                      PIPELINE_WARM_START="1")
    try:
        with stage_project(tmp_path, tiny_params(tiny_model_dir, ["sts"], ["cosent"]), ["sts"]):
            command = subprocess.Popen([sys.executable, "-m", "pipeline.baseline", "--dataset", "sts", "--base", "tiny"],
                                       cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            forked = None
            while command.poll() is None and forked is None:
                worker = stage_worker(command.pid, tmp_path)
                forked = worker if worker is not None and "pipeline.core.warm" in worker.cmdline() else None
                time.sleep(0.05)
            out, err = command.communicate(timeout=300)
        assert command.returncode == 0, err[-2000:]
        assert out.strip().startswith("baseline sts/tiny: spearman"), out
        assert forked is not None, "the baseline stage ran cold"
        servers = [p for p in psutil.process_iter(["cmdline"]) if str(sockets) in " ".join(p.info["cmdline"] or [])
                   and p.info["cmdline"][-len(ML_STACK):] == list(ML_STACK)]
        assert len(servers) == 1  # the one this stage started, with the stack (and its lazy imports) preloaded
    finally:
        for process in psutil.process_iter(["cmdline"]):
            if str(sockets) in " ".join(process.info["cmdline"] or []):
                process.kill()
        shutil.rmtree(sockets, ignore_errors=True)
