"""Stage processes forked from a warm server that has already imported the heavy libraries.

    python -m pipelines.register sft      # unchanged: the stage hands itself to the server

Every stage is its own ``python -m pipelines.<stage>`` process, and most of a light stage's
time is importing torch, transformers, TRL, MLflow, great-expectations or presidio (2-6 CPU s
each, against well under a second of work for a prepare, register or validate stage). A
stage server imports those libraries once, in the background, and then forks one child per
stage: the child starts with them in memory and runs the stage module as ``python -m``
would, in the caller's directory, with the caller's environment, arguments and standard
streams (passed over a Unix socket), and the caller exits with the child's status.

What the child shares with the server is third-party code only. The server never imports
``pipelines`` or ``governance`` (it runs as a script, not as a module of the package), and
the child drops any such module before it runs the stage, so the stage's own code is read
from the caller's checkout every time, exactly as a fresh interpreter would read it.

When a stage does not use it: ``GOVERN_STAGE_SERVER=off``; a stage under a distributed
launcher (``RANK`` set: its process tree is the launcher's); a platform without ``fork``
and ``AF_UNIX``; and while no server is ready: the first stage starts one in the background
and runs in a fresh interpreter itself (``os.execv``, as if this module did not exist).

Which server: one per Python, environment and installed-packages state. Its socket name is
a hash of the interpreter, this file, the stage's environment (as ``pipelines._env`` makes
it, less per-invocation variables: ``DVC_*``, ``PYTEST_*``, ``PWD``...) and the
modification times of the interpreter's site-packages directories, so a library installed
or upgraded, or a variable a library reads at import (``HF_HUB_OFFLINE``,
``OMP_NUM_THREADS``...), never meets a server that imported under other conditions. A
server exits after ``IDLE_SECONDS`` without a stage, or when its packages change. Sockets
live in a directory only the user can open (``$XDG_RUNTIME_DIR`` or the temp dir), and the
server serves only its own user (``SO_PEERCRED``).

Signals: Ctrl-C or a kill of the caller is passed to the stage; a caller that disappears
(killed outright) gets its stage terminated. If the server dies under a stage, the caller
terminates the stage and fails (exit 1): no status, no success.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

#: A server with no stage running exits after this long (``GOVERN_STAGE_SERVER_IDLE_SECONDS``).
IDLE_SECONDS = 60.0

#: What the server imports before it serves: the libraries the stages use, whose import is the
#: fixed cost of a stage. ``module:attribute`` reads an attribute too (lazy packages import then).
PRELOAD = (
    "torch",
    "transformers",
    "transformers:AutoModelForCausalLM",
    "transformers:AutoModelForSequenceClassification",
    "transformers:AutoTokenizer",
    "transformers:PreTrainedModel",
    "transformers.generation.utils",
    "transformers.models.qwen2.modeling_qwen2",
    "transformers.models.llama.modeling_llama",
    "peft",
    "peft:LoraConfig",
    "peft:get_peft_model",
    "trl",
    "trl:SFTTrainer",
    "trl:DPOTrainer",
    "trl:KTOTrainer",
    "trl:RewardTrainer",
    "trl:GRPOTrainer",
    "trl:RLOOTrainer",
    "accelerate",
    "datasets",
    "mlflow",
    "mlflow.tracking",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "great_expectations",
    "presidio_analyzer",
    "presidio_anonymizer",
    "pydantic",
    "yaml",
    "jinja2",
)

#: Environment variables that differ from one invocation (or kind of stage) to the next and that
#: no library reads at import: left out of the server's identity (the stage still gets them).
#: ``ACCELERATE_*`` is what the train_* stages' launcher adds; accelerate reads it when it builds
#: its state (no module of accelerate, transformers, TRL or PEFT reads one at import).
VOLATILE_PREFIXES = ("DVC_", "PYTEST_", "ACCELERATE_")
VOLATILE_NAMES = frozenset(
    {"GOVERN_STAGE_SERVER", "GOVERN_STAGE_SERVER_IDLE_SECONDS", "PWD", "OLDPWD", "SHLVL", "_", "TERM"}
    | {"COLUMNS", "LINES"}
)

#: Project packages: never imported by the server, dropped in a child before its stage runs.
PROJECT_PACKAGES = ("pipelines", "governance")

_HEADER = struct.Struct("!I")


# --- the caller's side ---------------------------------------------------------------------

#: ``python -X govern-fresh-interpreter -m pipelines.<stage>``: run here, never through a server.
FRESH_OPTION = "govern-fresh-interpreter"


def handoff_from_argv() -> None:
    """For ``pipelines/__init__.py`` while ``python -m pipelines.<stage> ...`` imports the package:
    hand the stage to the server (see :func:`handoff`). Only the plain command is handed off: with
    any interpreter option (``-X importtime``, ``-u``, ``-W`` ...) the stage runs here."""
    argv = list(getattr(sys, "orig_argv", []))
    if len(argv) < 3 or argv[1] != "-m" or FRESH_OPTION in sys._xoptions:  # noqa: SLF001
        return
    module, args = argv[2], argv[3:]
    if _is_stage_module(module):
        handoff(module, args)


def handoff(module: str, args: list[str]) -> None:
    """Run ``python -m <module> <args>`` in a child of the stage server, and exit with its status.

    Returns (having done nothing) where the server is not used; the caller then goes on
    importing and running the stage itself.
    """
    if not _usable(os.environ):
        return
    from pipelines._env import stage_environ

    env = stage_environ(os.environ)
    try:
        path = socket_path(env)
    except OSError:
        return  # no private directory for sockets here: the stage runs in this interpreter
    try:
        connection = _connect(path)
    except OSError:
        connection = None
    code = None if connection is None else _run_in_server(connection, module, args, env)
    if code is None:
        if connection is None:
            _start_server(path, env)
        # This stage runs in a fresh interpreter, exactly as without a server
        os.execv(sys.executable, [sys.executable, "-X", f"{FRESH_OPTION}", "-m", module, *args])
    sys.stdout.flush()
    sys.stderr.flush()
    if code < 0:  # killed by a signal: die of it, as the stage did
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code
    os._exit(code)


def _usable(environ) -> bool:
    return (
        environ.get("GOVERN_STAGE_SERVER", "on").lower() not in ("off", "0", "false", "no")
        and "RANK" not in environ
        and hasattr(os, "fork")
        and hasattr(socket, "AF_UNIX")
        and hasattr(socket, "send_fds")
        and sys.platform.startswith("linux")
    )


def server_identity(env: dict[str, str]) -> str:
    """The hash naming the server for this interpreter, this file, ``env`` and the installed packages."""
    digest = hashlib.sha256()
    digest.update(f"{sys.executable}\0{sys.version}\0".encode())
    digest.update(Path(__file__).read_bytes())
    for name in sorted(env):
        if name in VOLATILE_NAMES or name.startswith(VOLATILE_PREFIXES):
            continue
        digest.update(f"{name}={env[name]}\0".encode(errors="surrogateescape"))
    digest.update(packages_state().encode())
    return digest.hexdigest()[:32]


def packages_state() -> str:
    """Modification times of the interpreter's package directories (site-packages, the standard
    library's): installing, upgrading or removing a package changes its directory's."""
    import site

    directories = {os.path.dirname(os.__file__), *site.getsitepackages()}
    if site.ENABLE_USER_SITE and site.USER_SITE:
        directories.add(site.USER_SITE)
    parts = []
    for directory in sorted(directories):
        try:
            parts.append(f"{directory}:{os.stat(directory).st_mtime_ns}")
        except OSError:
            continue
    return "\n".join(parts)


def socket_dir() -> Path:
    """A directory for this user's server sockets that no one else can open."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = Path(base) / f"govern-stage-servers-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not path.is_dir() or path.is_symlink():
        raise OSError(f"{path}: not a private directory of this user")
    return path


def socket_path(env: dict[str, str]) -> Path:
    return socket_dir() / f"{server_identity(env)}.sock"


def _connect(path: Path) -> socket.socket | None:
    if not path.exists():
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # By name from its directory: a socket's path may be longer than AF_UNIX's ~107 bytes
    here = os.open(".", os.O_RDONLY)
    try:
        os.chdir(path.parent)
        connection.connect(path.name)
    except OSError:
        connection.close()
        return None
    finally:
        os.fchdir(here)
        os.close(here)
    return connection


def _start_server(path: Path, env: dict[str, str]) -> None:
    """Start a server for ``path`` in the background (one that finds another starting exits)."""
    import subprocess

    server_env = {k: v for k, v in env.items() if k != "GOVERN_STAGE_SERVER"}
    try:
        # What the server itself says (library warnings while preloading, a crash) goes to <socket>.log
        with open(path.with_suffix(".log"), "w") as log:
            subprocess.Popen(
                [sys.executable, __file__, "serve", str(path)],
                env=server_env,
                cwd=str(path.parent),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
    except OSError:
        pass  # no server: every stage runs in a fresh interpreter


def _send(connection: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    payload = _HEADER.pack(len(data)) + data
    if fds:
        sent = socket.send_fds(connection, [payload], fds)
        connection.sendall(payload[sent:])
    else:
        connection.sendall(payload)


def _receive(connection: socket.socket, with_fds: int = 0) -> tuple[dict | None, list[int]]:
    """One message (None at end of stream) and the descriptors that came with it.

    Reads exactly one message's bytes: the server may have sent the next one (a stage's status
    right after its pid, for a stage that ends at once) before the caller reads the first."""
    fds: list[int] = []
    header = _receive_exactly(connection, _HEADER.size, fds, with_fds)
    body = None if header is None else _receive_exactly(connection, _HEADER.unpack(header)[0], fds, 0)
    if body is None:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(body), fds


def _receive_exactly(connection: socket.socket, size: int, fds: list[int], with_fds: int) -> bytes | None:
    """``size`` bytes (None where the stream ends first); descriptors that come with them go to ``fds``."""
    buffer = b""
    while len(buffer) < size:
        if with_fds and not fds:
            chunk, new_fds, _flags, _address = socket.recv_fds(connection, size - len(buffer), with_fds)
            fds.extend(new_fds)
        else:
            chunk = connection.recv(size - len(buffer))
        if not chunk:
            return None
        buffer += chunk
    return buffer


def _run_in_server(connection: socket.socket, module: str, args: list[str], env: dict[str, str]) -> int | None:
    """Send the stage to the server; pass signals to it; its exit status (negative: killed by that
    signal), or None where the server started nothing."""
    request = {"module": module, "args": args, "cwd": os.getcwd(), "env": env}
    try:
        _send(connection, request, [0, 1, 2])
        started, _ = _receive(connection)
    except OSError:
        started = None
    if started is None or "pid" not in started:
        return None  # nothing started (the server was exiting, or refused): the caller runs the stage
    pid = int(started["pid"])

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)
    try:
        ended, _ = _receive(connection)
    except OSError:  # reset: the server was killed
        ended = None
    if ended is None or "status" not in ended:
        # The server went away under the stage: no status, no success
        forward(signal.SIGTERM, None)
        print(f"{module}: the stage server ended before the stage did; stage terminated", file=sys.stderr)  # noqa: T201
        return 1
    return int(ended["status"])


# --- the server's side -----------------------------------------------------------------------


def serve(path: Path) -> int:
    """Preload, then fork a child per request until idle for ``IDLE_SECONDS`` or packages change."""
    import fcntl
    import selectors

    # The script's directory (pipelines/) is not an import root of a stage
    if sys.path and os.path.realpath(sys.path[0]) == os.path.realpath(os.path.dirname(__file__)):
        del sys.path[0]
    lock = open(path.with_suffix(".lock"), "w")  # noqa: SIM115 - held for the server's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another server for this path is starting or serving
    # Terminated: clean up as on idle (the socket is removed; the callers of stages still
    # running see the server gone and terminate them)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    identity, started_env = path.stem, dict(os.environ)
    try:
        idle_seconds = float(os.environ.get("GOVERN_STAGE_SERVER_IDLE_SECONDS", IDLE_SECONDS))
    except ValueError:
        idle_seconds = IDLE_SECONDS
    base_path = list(sys.path)
    _preload()
    import gc

    gc.collect()
    gc.freeze()  # children never walk (nor copy) the preloaded objects
    if path.exists():
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    os.chdir(path.parent)
    # By name (see _connect); bound under a private name and renamed into place once it listens, so a caller that
    # sees the path never meets a socket that refuses it (it would run its stage in a fresh interpreter instead)
    staging = f".{path.name}.{os.getpid()}"
    listener.bind(staging)
    listener.listen(16)
    os.replace(staging, path.name)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    # A child's exit wakes the loop at once (its caller is waiting for the status)
    wake_read, wake_write = socket.socketpair()
    wake_read.setblocking(False)
    wake_write.setblocking(False)
    signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
    selector.register(wake_read, selectors.EVENT_READ, "wake")
    children: dict[int, socket.socket] = {}
    last_active = time.monotonic()
    try:
        while True:
            for key, _events in selector.select(timeout=1.0):
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        wake_read.recv(4096)
                elif key.fileobj is listener:
                    connection, _ = listener.accept()
                    inherited = [listener, wake_read, wake_write, lock, selector, *children.values()]
                    pid = _start_child(connection, base_path, inherited)
                    if pid is None:
                        connection.close()
                        continue
                    children[pid] = connection
                    selector.register(connection, selectors.EVENT_READ, pid)
                else:
                    # The caller went away (it sends nothing after its request): end its stage
                    try:
                        os.kill(key.data, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                    selector.unregister(key.fileobj)
            _reap(children, selector)
            if children:
                last_active = time.monotonic()
                continue
            # Libraries may set variables as they import: the identity is of the environment it started in
            stale = server_identity(started_env) != identity
            if stale or time.monotonic() - last_active > idle_seconds:
                return 0
    finally:
        # Unlinked first: no caller connects any more; one already queued is refused and runs fresh
        try:
            path.unlink()
        except OSError:
            pass
        listener.close()


def _preload() -> None:
    """Import ``PRELOAD`` (or the comma-separated ``GOVERN_STAGE_SERVER_PRELOAD``, part of the identity)."""
    chosen = os.environ.get("GOVERN_STAGE_SERVER_PRELOAD")
    for name in PRELOAD if chosen is None else filter(None, chosen.split(",")):
        module_name, _, attribute = name.partition(":")
        try:
            loaded = importlib.import_module(module_name)
            if attribute:
                getattr(loaded, attribute)
        except Exception:  # noqa: BLE001 - a library missing here is imported (or not) by the stage itself
            continue


def _reap(children: dict[int, socket.socket], selector) -> None:
    while children:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = children.pop(pid, None)
        if connection is None:
            continue
        # The exit code, or minus the signal that killed it
        status = os.waitstatus_to_exitcode(wait_status)
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(connection)
        with contextlib.suppress(OSError):  # the caller is gone
            _send(connection, {"status": status})
        connection.close()


def _start_child(connection: socket.socket, base_path: list[str], inherited: list) -> int | None:
    """Read a request and fork its child; the child's pid, or None for a refused request."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", credentials)
    if uid != os.getuid():
        return None
    connection.settimeout(10)
    try:
        request, fds = _receive(connection, with_fds=3)
    except (OSError, ValueError):
        return None
    connection.settimeout(None)
    module = (request or {}).get("module", "")
    if request is None or len(fds) != 3 or not _is_stage_module(module):
        for fd in fds:
            os.close(fd)
        if request is not None:
            _send(connection, {"error": f"not a stage module: {module!r}"})
        return None
    # Nothing the server's streams buffered may reach the stage: a child flushing an inherited buffer at exit would
    # write it into the caller's stdout (its fd 1 by then), after the stage's own output
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            # Nothing of the server's stays open in the stage: sockets, the server's lock, its selector
            for item in inherited:
                item.close()
            connection.close()
            _child(request, fds, base_path)
        finally:
            os._exit(70)  # only reached if the child itself broke
    for fd in fds:
        os.close(fd)
    _send(connection, {"pid": pid})
    return pid


def _is_stage_module(module: str) -> bool:
    parts = module.split(".")
    return len(parts) == 2 and parts[0] == "pipelines" and parts[1].isidentifier() and not parts[1].startswith("_")


def _child(request: dict, fds: list[int], base_path: list[str]) -> None:
    """Become ``python -m <module> <args>`` in the caller's directory, environment and streams."""
    signal.set_wakeup_fd(-1)
    import atexit
    import io
    import random
    import runpy
    import threading
    import traceback

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), line_buffering=False)
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)), line_buffering=os.isatty(1)
    )
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)), line_buffering=True, errors="backslashreplace"
    )
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # As `python -m`: the working directory first; the project's modules read from it, afresh
    sys.path[:] = [os.getcwd(), *base_path]
    for name in list(sys.modules):
        if name.split(".")[0] in PROJECT_PACKAGES:
            del sys.modules[name]
    importlib.invalidate_caches()
    # A fresh interpreter seeds these from the OS; so does every child (not the server's state)
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    sys.argv = [request["module"], *request["args"]]
    code = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = 128 + signal.SIGINT
    except BaseException:  # noqa: BLE001 - as the interpreter does: the traceback, exit 1
        traceback.print_exc()
        code = 1
    # As the interpreter exits: non-daemon threads, atexit functions, flushed streams
    threading._shutdown()  # noqa: SLF001 - what multiprocessing's children call too
    atexit._run_exitfuncs()  # noqa: SLF001
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _exit_code(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)  # noqa: T201 - as the interpreter prints a non-integer exit
    return 1


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    raise SystemExit(serve(Path(sys.argv[2])))
