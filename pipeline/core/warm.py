"""Warm start: a stage command forks from a process that has already imported the ML stack.

Each stage that trains or scores imports sentence-transformers and MLflow: 4-9 s of a 2-core CPU, paid again
by each of the ~40 such processes of the default `dvc repro`, about a third of its time (benchmarks/README.md).
So the first such command starts a server: a Python process that imports those libraries once (with the
modules a stage would import lazily at its first MLflow call and first evaluator: process.ML_STACK), then
waits on a Unix socket. Each command, once its stage has checked its arguments and params and is about to import the
libraries (pipeline.core.process.import_ml_stack), asks it for a fork instead, which takes the command's
working directory, environment, `sys.path`, arguments, umask and standard streams, drops every `pipeline`
module (the server imported none but this one) so the stage runs the project's code as it is now on disk,
and runs the stage from the start as `python -m` would.

The command stays the process DVC started: it passes SIGINT and SIGTERM on to the stage, exits with the
stage's status and reports a stage killed outright as before (pipeline.core.process). Between them sits the
fork's own parent, a copy of the server that waits for the stage, sends back its status and peak memory, and
kills the stage if the command goes away (`kill -9` of what DVC started must not leave the stage running).

A fork is only as good as a fresh process if nothing that shaped the imports differs, so that is checked, not
assumed: a server serves only commands whose interpreter, flags, `sys.path` (after its first, the working
directory), environment (less the few variables listed in VOLATILE_ENV), user, groups, cgroup, resource
limits, CPU affinity, priority, installed packages (the mtime of each site-packages folder) and this file
are the same as its own; their digest names its socket, and a server that computes another digest for
itself exits. What its imports set in the environment (torch sets KMP_DUPLICATE_LIB_OK) is set in each stage
too. A server idle for IDLE_SECONDS (`PIPELINE_WARM_IDLE_S`) exits. `PIPELINE_WARM_START=0` turns warm starts
off; a server that cannot be reached or started (no Unix sockets or pidfds, a socket path too long, an import
failing) means a cold start, never an error. A debugging run (`-X importtime`, `-v`) starts cold, so that what
it reports covers the imports. Linux only, like the supervision it extends.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

IDLE_SECONDS = 120  # long enough to span two `dvc repro` runs of one session; PIPELINE_WARM_IDLE_S overrides it
START_SECONDS = 180  # a server's imports on a loaded 2-core machine; past this the command starts cold
REPLY_SECONDS = 60  # a server forks the stage within milliseconds; one that does not answer is given up
CHILD_MARK = "PIPELINE_WARM_CHILD"  # set in a stage forked here: its run_command must not supervise it again
# set in a stage forked here (and so in what it starts): the pid of the command it runs for, whose ancestors
# lead to DVC (pipeline.tracking.runs.run_group looks there); the stage's own lead to the server
STAGE_COMMAND = "PIPELINE_STAGE_COMMAND"
# set per call by shells, pytest and DVC; no library reads them while importing
VOLATILE_ENV = ("PWD", "OLDPWD", "SHLVL", "_", "PYTEST_CURRENT_TEST", CHILD_MARK, STAGE_COMMAND)
VOLATILE_PREFIXES = ("DVC_",)
_import_env: dict[str, str | None] = {}  # in a server: the variables its imports set (None: removed)


def enabled() -> bool:
    """Warm starts are on, this system has what they use, and this is no debugging run (`-X importtime`, `-v`,
    `-i`: what those report must cover the imports, so such a run starts cold)."""
    return (os.environ.get("PIPELINE_WARM_START", "1") != "0" and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")
            and not (sys._xoptions or sys.flags.verbose or sys.flags.inspect))


def is_forked_stage() -> bool:
    """True once, in a stage this module forked (the mark is taken out of the environment it passes on)."""
    return os.environ.pop(CHILD_MARK, None) == "1"


def digest(modules: tuple[str, ...]) -> str:
    """What a forked stage must share with a fresh process: see the module docstring."""
    env = {key: value for key, value in os.environ.items()
           if key not in VOLATILE_ENV and not key.startswith(VOLATILE_PREFIXES)}
    folders = []  # an install or uninstall changes its site-packages folder's mtime; other folders are code
    for entry in sys.path[1:]:
        try:
            changed = os.stat(entry).st_mtime_ns if Path(entry).name in ("site-packages", "dist-packages") else None
        except OSError:
            changed = None
        folders.append((entry, changed))
    limits = [(name, resource.getrlimit(getattr(resource, name))) for name in dir(resource) if name.startswith("RLIMIT_")]
    try:
        cgroup = Path("/proc/self/cgroup").read_text()
    except OSError:
        cgroup = ""
    facts = [sys.executable, sys.version, repr(sys.flags), sorted(sys._xoptions.items()), sys.warnoptions, folders,
             sorted(env.items()), os.getuid(), os.getgid(), sorted(os.getgroups()), cgroup, limits,
             sorted(os.sched_getaffinity(0)), os.getpriority(os.PRIO_PROCESS, 0), list(modules),
             hashlib.sha256(Path(__file__).read_bytes()).hexdigest()]
    return hashlib.sha256(json.dumps(facts, default=str).encode()).hexdigest()[:24]


def socket_path(key: str) -> Path:
    folder = Path(tempfile.gettempdir()) / f"pipeline-warm-{os.getuid()}"
    if len(str(folder)) > 70:  # a Unix socket's path holds at most 107 bytes; the name takes 30 of them
        folder = Path("/tmp") / f"pipeline-warm-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise OSError(f"{folder} is not this user's private folder")
    return folder / f"{key}.sock"


# ---------------------------------------------------------------- the command's side


def run_stage(module: str, modules: tuple[str, ...]) -> tuple[int, int | None] | None:
    """Run `module` (with this process's argv, cwd, env, streams) in a fork of a warm server; returns the
    stage's wait status and peak resident KiB (None: not known), or None when no server could be had (start
    cold then)."""
    connection = None
    try:
        key = digest(modules)
        path = socket_path(key)
        connection = _connect(path, modules)
        if connection is None:
            return None
        # a shell running a script's `cmd &` starts it with SIGINT ignored: so must the stage be, as a fork would
        ignored = [signum for signum in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(signum) == signal.SIG_IGN]
        env = {**os.environ, STAGE_COMMAND: os.environ.get(STAGE_COMMAND, str(os.getpid()))}
        request = {"module": module, "argv": sys.argv, "cwd": os.getcwd(), "env": env,
                   "path": sys.path, "umask": _umask(), "ignored": ignored, "key": key}
        sys.stdout.flush()
        sys.stderr.flush()
        socket.send_fds(connection, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
        connection.settimeout(REPLY_SECONDS)  # a stopped or stuck server still accepts connections (the backlog)
        reader = connection.makefile("r")
        started = json.loads(reader.readline() or "null")
        connection.settimeout(None)  # from here on the stage runs, for as long as it takes
    except (OSError, ValueError):
        if connection is not None:
            connection.close()  # if the stage was forked after all, its parent kills it when this closes
        return None
    if not started or "pid" not in started:  # the server refused (its digest differs): start cold
        return None
    for forwarded in (signal.SIGINT, signal.SIGTERM):
        signal.signal(forwarded, lambda signum, frame: _send(connection, {"signal": signum}))
    line = reader.readline()
    if not line:  # the fork's parent died before reporting: the stage died with it (PR_SET_PDEATHSIG), unmeasured
        return (signal.SIGKILL, None)
    result = json.loads(line)
    if not result["ran"]:  # it could not take on this command's context: nothing ran yet
        return None
    return result["status"], result["maxrss"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _send(connection: socket.socket, message: dict[str, Any]) -> None:
    try:
        connection.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass


def _connect(path: Path, modules: tuple[str, ...]) -> socket.socket | None:
    """A connection to the server of `path`, starting one if none listens; None if none could be had."""
    deadline, server = time.monotonic() + START_SECONDS, None
    while time.monotonic() < deadline:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(str(path))
            return connection
        except OSError as error:
            connection.close()
            if error.errno not in (errno.ENOENT, errno.ECONNREFUSED):
                return None
        if server is None:
            # the interpreter's flags as this command's (-u, -W, -O...), or the digests differ
            flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined] - as multiprocessing does
            server = subprocess.Popen([sys.executable, *flags, "-m", "pipeline.core.warm", str(path), *modules],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        elif server.poll() is not None and not _locked(path):  # it failed, and no other server is starting
            return None
        time.sleep(0.05)
    return None


def _locked(path: Path) -> bool:
    """Whether a live server holds the lock of `path` (it may still be importing)."""
    try:
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
    except BlockingIOError:
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- the server's side


def serve(path: Path, modules: tuple[str, ...]) -> None:
    """Import `modules`, then fork a stage for each connection on `path` until idle for IDLE_SECONDS."""
    import gc
    import importlib

    lock = open(path.with_suffix(".lock"), "a")  # noqa: SIM115 - held for the server's whole life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another server of this digest is starting or serving
    if path.stem != digest(modules):  # started with something that would shape the imports differently
        return
    try:  # each stage's parent waits on a pidfd; where a sandbox refuses them, commands must start cold
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return
    before = dict(os.environ)
    gc.disable()
    for module in modules:
        importlib.import_module(module)
    gc.freeze()  # the imported objects are never collected: no pass over them in the server or its forks
    gc.enable()
    # what the imports put into the environment (torch: KMP_DUPLICATE_LIB_OK...), as a cold stage would have it
    _import_env.update({key: value for key, value in os.environ.items() if before.get(key) != value})
    _import_env.update({key: None for key in before.keys() - os.environ.keys()})
    os.chdir("/")  # a server must not keep a project folder busy; each stage takes its command's
    path.unlink(missing_ok=True)  # a dead server's socket
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    try:
        idle = float(os.environ.get("PIPELINE_WARM_IDLE_S", IDLE_SECONDS))
    except ValueError:
        idle = IDLE_SECONDS
    listener.settimeout(idle)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the per-stage parents are reaped by the kernel
    try:
        while True:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                return
            if os.fork() == 0:
                listener.close()
                lock.close()  # the server's alone: a stage outliving the server must not keep others from starting
                _stage_parent(connection)  # never returns
            connection.close()
    finally:
        path.unlink(missing_ok=True)


def _stage_parent(connection: socket.socket) -> None:
    """In a fork of the server: fork the stage, then relay signals to it until it ends and report how."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        connection.settimeout(None)
        message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
        request = json.loads(message.decode())
        if len(fds) != 3 or request.get("key") != Path(connection.getsockname()).stem:
            return
        ready, set_up = os.pipe()  # the stage writes one byte here once it has taken on the command's context
        stage = os.fork()
        if stage == 0:
            connection.close()
            os.close(ready)
            _become_stage(request, fds, set_up)  # never returns
        for fd in (*fds, set_up):
            os.close(fd)
        connection.sendall(json.dumps({"pid": stage}).encode() + b"\n")
        _relay(connection, stage, ready)
    finally:
        os._exit(0)


def _relay(connection: socket.socket, stage: int, ready: int) -> None:
    ended = os.pidfd_open(stage)
    pending = b""
    while True:
        readable, _, _ = select.select([connection, ended], [], [])
        if ended in readable:
            _, status, usage = os.wait4(stage, 0)
            _send(connection, {"status": status, "maxrss": usage.ru_maxrss, "ran": os.read(ready, 1) == b"1"})
            return
        try:
            data = connection.recv(4096)
        except OSError:
            data = b""
        if not data:  # the command is gone (killed): so must the stage be
            os.kill(stage, signal.SIGKILL)
            os.wait4(stage, 0)
            return
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            os.kill(stage, int(json.loads(line)["signal"]))


def _become_stage(request: dict[str, Any], fds: list[int], set_up: int) -> None:
    """In the stage's process: take on the command's context, then run its module as `python -m` would. If
    taking it on fails, the stage has not run: the command hears so and starts it cold."""
    code: Any = 1
    try:
        _take_on(request, fds)
        os.write(set_up, b"1")
        os.close(set_up)
        code = _run_module(request["module"])
    except BaseException as error:  # noqa: BLE001 - before the stage ran: one line, and the command starts cold
        print(f"note: warm start failed ({type(error).__name__}: {error}); starting cold", file=sys.stderr)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def _take_on(request: dict[str, Any], fds: list[int]) -> None:
    """The command's standard streams, working directory, umask, environment, sys.path and argv; signal
    handling and random state as in a fresh interpreter; no server copy of a `pipeline` module."""
    import ctypes
    import importlib
    import random

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG, dies with its parent
    # 15: PR_SET_NAME, what top and ps -o comm show (the command line stays the server's: a fork keeps it)
    libc.prctl(15, request["module"].rpartition(".")[2][:15].encode())
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    _reopen_standard_streams()
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"], **{CHILD_MARK: "1"})
    for key, value in _import_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    sys.path[:] = request["path"]
    sys.argv[:] = request["argv"]
    for name in [name for name in sys.modules if name == "pipeline" or name.startswith("pipeline.")]:
        del sys.modules[name]  # the server's copy of this module; the stage imports the project's as it is now
    importlib.invalidate_caches()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for signum in request["ignored"]:
        signal.signal(signum, signal.SIG_IGN)
    random.seed()  # a fresh process seeds from the OS: forks of one server would share the stream


def _run_module(module: str) -> int:
    """Run `module` as `python -m` would, then do what the interpreter does at exit, less its final
    collections (pipeline.core.process skips those too); returns the exit status."""
    import atexit
    import runpy
    import threading
    import traceback

    code: Any = 1
    interrupted = False
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = stop.code
    except BaseException as error:  # noqa: BLE001 - printed as the interpreter would, then exit 1
        traceback.print_exc()
        interrupted = isinstance(error, KeyboardInterrupt)
    threading._shutdown()  # type: ignore[attr-defined] - waits for non-daemon threads, as exit does
    atexit._run_exitfuncs()
    if interrupted:  # the interpreter ends an uncaught Ctrl-C by SIGINT, so the shell sees "interrupted"
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    if code is None:
        return 0
    if not isinstance(code, int):
        print(code, file=sys.stderr)
        return 1
    return code


def _reopen_standard_streams() -> None:
    """sys.std* for the command's descriptors, made as Python made the server's (same flags and environment:
    unbuffered under -u / PYTHONUNBUFFERED), except that stdout is line-buffered only on a terminal."""
    import io

    streams = {}
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        old = getattr(sys, name)
        unbuffered = isinstance(old.buffer, io.FileIO)
        binary = open(fd, "rb" if fd == 0 else "wb", buffering=0 if unbuffered else -1, closefd=False)  # noqa: SIM115
        streams[name] = io.TextIOWrapper(binary, encoding=old.encoding, errors=old.errors,
                                         line_buffering=fd == 2 or (fd == 1 and os.isatty(fd)),
                                         write_through=old.write_through)
    for name, stream in streams.items():
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)

if __name__ == "__main__":  # started by run_stage, not by hand
    if len(sys.argv) < 3 or not sys.argv[1].endswith(".sock"):
        sys.exit("usage: python -m pipeline.core.warm SOCKET.sock MODULE [MODULE ...] (started by stage commands)")
    serve(Path(sys.argv[1]), tuple(sys.argv[2:]))
