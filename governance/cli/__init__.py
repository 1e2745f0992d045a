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
import sys

from governance.errors import EXIT_USAGE, GovernanceError
from governance.registry import existing_store_only

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
