"""``govern``: the command line for reviewers and release owners.

Works without a DVC checkout: it needs only the MLflow tracking URI
(``MLFLOW_TRACKING_URI``, default the local SQLite store) and the policy files.
Each command group lives in its own module with a ``register(subparsers)``
function; errors become one line on stderr and the documented exit code
(0 done, 1 refused by policy or permission, 2 usage, input or connection error).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import secrets
import sys
from pathlib import Path

from governance.errors import EXIT_USAGE, ConfigError, GovernanceError
from governance.registry import existing_store_only

log = logging.getLogger(__name__)

#: Command-group modules under governance.cli, each with register(subparsers).
COMMAND_MODULES = [
    "models",
    "validate",
    "pii",
    "approvals",
    "audit",
    "report",
    "monitor",
    "provenance",
    "doctor",
    "watch",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors: exit 2, one line
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


#: The module that registers each command, so ``govern <command>`` imports that module only
#: (the others pull in SQLAlchemy, cryptography, great-expectations: seconds per command).
#: A command missing here still works, only slower: every module is imported then.
#: tests/governance/test_cli_commands.py keeps this in step with what the modules register.
COMMAND_OWNERS = {
    "models": "models",
    "reconcile": "models",
    "validate": "validate",
    "pii": "pii",
    "approve": "approvals",
    "approve-objective": "approvals",
    "canary": "approvals",
    "canary-end": "approvals",
    "history": "approvals",
    "policy-change": "approvals",
    "promote": "approvals",
    "reject": "approvals",
    "rollback": "approvals",
    "show": "approvals",
    "withdraw": "approvals",
    "audit": "audit",
    "report": "report",
    "incident": "monitor",
    "monitor": "monitor",
    "provenance": "provenance",
    "reproduce": "provenance",
    "verify": "provenance",
    "doctor": "doctor",
    "watch": "watch",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; given the command about to run, only the module that registers it is imported."""
    parser = _Parser(prog="govern", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    owner = COMMAND_OWNERS.get(command or "")
    for name in [owner] if owner in COMMAND_MODULES else COMMAND_MODULES:
        importlib.import_module(f"governance.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The top-level options take no value, so the first other word is the command.
    parser = build_parser(next((word for word in argv if not word.startswith("-")), None))
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        # govern reads a store; it never creates one from a mistyped MLFLOW_TRACKING_URI
        with existing_store_only():
            return int(args.handler(args) or 0)
    except GovernanceError as exc:
        print(f"govern: {exc}", file=sys.stderr)  # noqa: T201 - CLI output
        return exc.exit_code
    except KeyboardInterrupt:
        print("govern: interrupted", file=sys.stderr)  # noqa: T201
        return 130
    except BrokenPipeError:
        return _pipe_closed()
    except OSError as exc:  # a file the command could not read or write (disk full, a path that went away)
        log.info("%s", exc, exc_info=True)  # the traceback only with --verbose
        print(f"govern: {_os_error_line(exc, getattr(args, 'out', None))}", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE


def _os_error_line(exc: OSError, out: str | Path | None) -> str:
    """One line for a failed read or write; named as the ``--out`` path when that is what failed to be written."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    if out is not None and _writing(Path(os.path.realpath(exc.filename)), Path(os.path.realpath(out))):
        kernel = _kernel_filesystem(out)
        if kernel is not None:
            return f"--out {out}: {kernel}; give a path on disk"
        return f"--out {out}: cannot be written ({reason})"
    return f"{exc.filename}: {reason}"


def _writing(failed: Path, target: Path) -> bool:
    """Whether ``failed`` is part of writing ``target``: it, a file in it, a folder above it, or its temporary file."""
    if failed == target or target in failed.parents or failed in target.parents:
        return True
    return failed.parent == target.parent and target.name in failed.name


#: Kernel filesystems under these folders hold no files a reader gets back: an output there is a mistake.
_KERNEL_FILESYSTEMS = {
    "/proc": "the kernel's process filesystem",
    "/sys": "the kernel's device filesystem",
    "/dev": "the device filesystem",
}
#: Under /dev, a tmpfs an output may go to.
_DEV_FOLDERS_ON_DISK = ("/dev/shm",)


def _kernel_filesystem(path: str | Path) -> str | None:
    """``/proc is the kernel's process filesystem, not a folder on disk`` for a path on one; else None."""
    resolved = Path(os.path.realpath(path))
    if any(resolved.is_relative_to(ok) for ok in _DEV_FOLDERS_ON_DISK):
        return None
    for top, what in _KERNEL_FILESYSTEMS.items():
        if resolved.is_relative_to(top):
            return f"{top} is {what}, not a folder on disk"
    return None


def writable_folder(path: str | Path, option: str = "--out") -> Path:
    """``path`` as a folder an output may be written into (created later if missing), checked before any work.

    Refused with one :class:`ConfigError` line naming ``option``, the path and
    why: a path on a kernel filesystem (``/proc``, ``/sys``, ``/dev``), a file
    where a folder is needed (the path or a parent), a folder that cannot be
    written (a probe file is created and removed in the nearest existing one;
    so a read-only mount and a folder without permission answer alike, for
    root too). Nothing is left behind.
    """
    path = Path(path)
    where = f"{option} {path}"
    kernel = _kernel_filesystem(path)
    if kernel is not None:
        raise ConfigError(f"{where}: {kernel}; give a folder on disk")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{where}: is a file, not a folder; give a folder")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{where}: cannot be created: {existing} is a file, not a folder; give a folder")
    probe = existing / f".govern-write-check.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise ConfigError(
            f"{where}: cannot be written: {existing} is not writable ({exc.strerror}); give a folder you may write to"
        ) from None
    probe.unlink(missing_ok=True)
    return path


#: Exit status of a command whose reader went away (128 + SIGPIPE), as `cat file | head` reports it.
EXIT_PIPE_CLOSED = 141


def _pipe_closed() -> int:
    """The reader of stdout (``| head``) closed the pipe: end quietly, no traceback, nothing more written.

    stdout is pointed at /dev/null so the interpreter's final flush cannot raise again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE_CLOSED


if __name__ == "__main__":
    raise SystemExit(main())
