"""The installed environment against what it claims to be: the lock's versions, and each package's own record.

``requirements.lock`` is installed by hash (``make``: ``pip install --require-hashes``), and its SHA-256 is in
every model version's lineage. That says what was *installed*; a virtual environment can change afterwards: a
library file edited in place (a debugging print, a patched bug in a recognizer), a file deleted, a package
upgraded by hand, or a start-up hook dropped beside the packages (a ``.pth`` file or ``sitecustomize.py`` that
no package installed: Python runs it in every process, stages included). This module reads what is there:

* :func:`environment_differences` — installed versions against the lock's pins;
* :func:`installed_file_differences` — every installed file against the SHA-256 its package's ``RECORD``
  lists (pip writes it at install), and start-up hooks in the
  environment's site-packages that no package's ``RECORD`` lists.

What it is and is not: a check of the environment's integrity against its own records, for ``govern doctor
--environment`` and ``govern reproduce``. Whoever can write the environment can also rewrite a ``RECORD``,
and code that runs at start-up can hide itself from a check made in the same process, so this is not a
boundary against such a user (the threat model, row U1: keep the environment read-only to the user who runs
the pipeline); it catches edits, drift and leftovers that nobody meant to keep.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import site
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

#: Files Python runs when it starts, from any site-packages directory: ``.pth`` lines that begin with
#: ``import`` are executed, and ``sitecustomize``/``usercustomize`` are imported
STARTUP_HOOK_NAMES = ("sitecustomize.py", "usercustomize.py")


def environment_differences(lock_path: Path) -> list[str]:
    """Installed packages whose version differs from the lock: its ``name==version`` requirements, each maybe
    followed by its ``--hash`` options on continuation lines (pip's requirements-file syntax)."""
    out = []
    for raw in lock_path.read_text().replace("\\\n", " ").splitlines():
        line = raw.split("#", 1)[0].split(" --", 1)[0].strip()  # the requirement, without its options
        if "==" not in line or line.startswith("-"):
            continue
        name, wanted = (part.strip() for part in line.split("==", 1))
        name = name.split("[", 1)[0]  # extras name what to install with it, not another package
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            out.append(f"{name} not installed (lock {wanted})")
            continue
        if installed.split("+", 1)[0] != wanted.split("+", 1)[0]:
            out.append(f"{name} {installed} installed (lock {wanted})")
    return out


@dataclass
class FileCheck:
    """What :func:`installed_file_differences` found: counts, and each difference as ``package: path``."""

    distributions: int = 0
    files: int = 0
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unlisted_hooks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.unlisted_hooks)

    def lines(self) -> list[str]:
        """One line for each kind of difference (the first few named), or none."""
        out = []
        for what, items in (
            ("file(s) differ from the SHA-256 their package's RECORD lists", self.changed),
            ("file(s) their package's RECORD lists are missing", self.missing),
            ("start-up hook(s) no package installed (Python runs them in every process)", self.unlisted_hooks),
        ):
            if items:
                shown = ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")
                out.append(f"{len(items)} {what}: {shown}")
        return out


def _record_digest(data: bytes, mode: str) -> str:
    """A file's digest as a wheel ``RECORD`` writes it: urlsafe base64 without padding."""
    return base64.urlsafe_b64encode(hashlib.new(mode, data).digest()).rstrip(b"=").decode()


def installed_file_differences(site_dirs: list[str] | None = None) -> FileCheck:
    """Every installed package's files against their ``RECORD`` digests, and unlisted start-up hooks.

    ``site_dirs``: the site-packages folders to read (default: this interpreter's). Files a ``RECORD`` lists
    without a digest (the ``RECORD`` itself, bytecode compiled after install) are not compared. Reads every
    installed file once: seconds for a few GB.
    """
    check = FileCheck()
    listed: set[Path] = set()
    folders = site.getsitepackages() if site_dirs is None else site_dirs
    seen: set[tuple[str, str, str]] = set()
    for dist in metadata.distributions() if site_dirs is None else metadata.distributions(path=folders):
        base = Path(dist.locate_file(""))
        name = dist.metadata["Name"]
        # RECORD read as written (not ``dist.files``: importlib_metadata, which some packages import, installs a
        # finder whose distributions leave out the files that no longer exist, the very ones to report)
        record = dist.read_text("RECORD")
        if record is None or (name, dist.version, str(base)) in seen:
            continue  # no RECORD (an egg-info install): nothing to compare; or the same one found twice
        seen.add((name, dist.version, str(base)))
        check.distributions += 1
        for row in csv.reader(record.splitlines()):
            if not row:
                continue
            path = base / row[0]
            listed.add(path.resolve())
            mode, _, value = (row[1] if len(row) > 1 else "").partition("=")
            if not value:
                continue
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                check.missing.append(f"{name}: {row[0]}")
                continue
            check.files += 1
            try:
                same = _record_digest(data, mode) == value
            except ValueError:  # a digest named by an algorithm hashlib does not know: nothing vouches for the file
                same = False
            if not same:
                check.changed.append(f"{name}: {row[0]}")
    for folder in folders:
        root = Path(folder)
        hooks = sorted(root.glob("*.pth")) + [root / n for n in STARTUP_HOOK_NAMES if (root / n).is_file()]
        check.unlisted_hooks += [str(hook) for hook in hooks if hook.resolve() not in listed]
    return check
