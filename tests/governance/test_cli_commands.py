"""`govern <command>` imports only the module that registers the command; the map stays complete."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from governance.cli import COMMAND_MODULES, COMMAND_OWNERS, _Parser

REPO = Path(__file__).resolve().parents[2]


def test_every_command_is_mapped_to_the_module_that_registers_it():
    registered = {}
    for name in COMMAND_MODULES:
        parser = _Parser(prog="govern")
        sub = parser.add_subparsers(dest="command", parser_class=_Parser)
        importlib.import_module(f"governance.cli.{name}").register(sub)
        registered.update(dict.fromkeys(sub.choices, name))
    assert COMMAND_OWNERS == registered


def test_a_command_imports_only_its_own_module():
    probe = (
        "import sys; from governance.cli import build_parser; build_parser('models'); "
        "print(sorted(m for m in sys.modules if m.startswith('governance.cli.')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['governance.cli.models']"
