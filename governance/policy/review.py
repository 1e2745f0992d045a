"""Whether a file that decides is the reviewed one: its bytes equal the blob at the reviewed commit of the project.

Every file that decides (anything under ``policies/``: gate and approval
policies, waivers, the trail key list, pinned keys; the chat templates the
project ships) counts only as the *reviewed* version. :func:`read_reviewed`
reads the file's bytes once, hashes them, and asks git whether exactly those
bytes are the file's blob at the reviewed commit; callers parse and use the
same buffer (no window between what was checked and what decides).

What is trusted, and why:

* **The project's repository** is the git checkout the command runs in (the
  current directory's top level: where ``dvc repro`` and ``govern`` run). A
  file outside it (``GOVERN_POLICY_DIR`` pointed at another folder, another
  repository) is not reviewed, whatever that other repository says.
* **The reviewed commit** is what ``GOVERN_REVIEWED_REF`` names, else the
  documented default: ``origin/main`` (the protected branch as last fetched;
  a local commit does not move it), else ``HEAD`` in a checkout without that
  remote (a local sandbox, a copy made by ``git init``). The ref and the commit
  id are part of every answer and are recorded with each decision, so anyone
  can check that commit against the protected branch later. A named ref is
  always a remote-tracking ref: ``origin/main`` is read as
  ``refs/remotes/origin/main``, never by git's short-name rules (a local branch
  called ``origin/main`` would win them), and ``HEAD``, a local branch, a tag or a
  commit id is refused, since a local commit or ``git tag`` moves them.
* **git itself runs with a clean environment**: every ``GIT_*`` variable of
  the caller is dropped (``GIT_DIR``, ``GIT_WORK_TREE``, ``GIT_INDEX_FILE``,
  ``GIT_OBJECT_DIRECTORY``...), replace refs are ignored
  (``GIT_NO_REPLACE_OBJECTS``, ``core.useReplaceRefs=false``) and so are
  grafts (``GIT_GRAFT_FILE`` set to an empty file): ``git replace`` can make
  ``HEAD`` *look* like another commit to ``git show``, never to this check.

* **A signature, where the team names its signers** (``GOVERN_REVIEW_SIGNERS``:
  an ssh allowed-signers file in git's format, kept *outside* the checkout,
  e.g. installed by the platform beside ``team.env``): the reviewed commit then
  counts only if ``git verify-commit`` finds a good signature on it by a key that
  file lists (the forge's merge key, or the reviewers'), checked with the system's
  ``ssh-keygen`` and ``gpg.minTrustLevel=fully`` whatever the checkout's git
  config says. A file inside the checkout is refused: whoever commits would
  choose the signers.

What is not defended here, without signers: a local user who can rewrite
``origin/main`` (``git update-ref``) or the object store can make a commit of
their own the reviewed one. That is visible: the recorded commit is not on the
protected branch. With signers, such a user can only point the ref at an older
signed commit (an older reviewed version), which the recorded commit shows.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from governance.git_trust import blob_id as _blob_id
from governance.git_trust import git as _git
from governance.git_trust import git_environment as git_environment

log = logging.getLogger(__name__)

#: Names the reviewed ref or commit (team.env sets it to the protected branch's remote-tracking ref).
REVIEWED_REF_ENV = "GOVERN_REVIEWED_REF"
#: An ssh allowed-signers file outside the checkout: when set, the reviewed commit must be signed by a key it lists.
REVIEW_SIGNERS_ENV = "GOVERN_REVIEW_SIGNERS"
#: The documented default, in order: the protected branch as fetched, else the checkout's HEAD.
DEFAULT_REVIEWED_REFS = ("refs/remotes/origin/main", "HEAD")
REVIEWED = "reviewed"


@dataclass(frozen=True)
class Review:
    """One decisive file as read: its bytes, their SHA-256, and whether they are the reviewed version.

    ``problem`` is ``None`` when reviewed, else why not: ``"not readable"``,
    ``"not a git checkout"``, ``"git not available"``, ``"outside the project's
    repository (<root>)"``, ``"no reviewed ref (<ref>)"``, ``"not committed"``
    (no such path at the reviewed commit), ``"uncommitted change"`` (the
    bytes differ from the reviewed blob) or, with ``GOVERN_REVIEW_SIGNERS``, why
    the reviewed commit's signature does not count.
    """

    path: Path
    data: bytes
    sha256: str
    problem: str | None
    ref: str | None = None
    commit: str | None = None
    #: With ``GOVERN_REVIEW_SIGNERS``: who signed the reviewed commit, as git verified it (principal and key).
    signer: str | None = None

    @property
    def reviewed(self) -> bool:
        return self.problem is None

    @property
    def status(self) -> str:
        """``"reviewed"`` or the reason it is not: what decisions record as the file's review."""
        return REVIEWED if self.problem is None else self.problem

    def describe(self) -> str:
        """One phrase for a message: ``reviewed at origin/main (1a2b3c4d5e6f)`` or ``not reviewed (why)``."""
        if self.problem is None:
            return f"reviewed at {self.ref} ({(self.commit or '')[:12]})"
        return f"not reviewed ({self.problem})"

    def refusal(self, what: str = "file") -> str:
        """The one line an unreviewed decisive file is refused with: the file, why, and the fix."""
        fix = (
            f"restore the reviewed version (git checkout {self.ref} -- {self.path}) "
            "or get the change reviewed and merged"
            if self.ref
            else "run from the project's git checkout, on a reviewed commit"
        )
        return (
            f"{self.path}: this {what} decides, and it is not the reviewed version ({self.problem}); "
            f"only the version committed at the reviewed ref counts: {fix}"
        )


def reviewed_ref() -> str | None:
    """The configured reviewed ref (``GOVERN_REVIEWED_REF``), or ``None`` for the documented default."""
    return os.environ.get(REVIEWED_REF_ENV) or None


def _project_root() -> tuple[Path | None, str | None]:
    """The top level of the git checkout this command runs in, or why there is none."""
    try:
        result = _git(["rev-parse", "--show-toplevel"], Path.cwd())
    except FileNotFoundError:
        return None, "git not available"
    except subprocess.TimeoutExpired:
        return None, "git did not answer"
    if result.returncode != 0 or not result.stdout.strip():
        return None, "not a git checkout"
    return Path(result.stdout.strip()).resolve(), None


#: Where a named reviewed ref must live: a remote-tracking ref moves only when the protected branch is fetched.
REMOTE_TRACKING = "refs/remotes/"


def configured_ref_name(configured: str) -> str:
    """The full name ``GOVERN_REVIEWED_REF`` is read as: ``origin/main`` is ``refs/remotes/origin/main``, always.

    Never git's own reading of a short name, which prefers a local branch or tag of the same name (``git branch
    origin/main`` on one's own commit would otherwise make it "reviewed"); and never a local branch, ``HEAD``, a tag
    or a commit id, which a local commit or ``git tag`` moves: a full name outside ``refs/remotes/`` is kept as
    written and refused by :func:`_resolve_commit`.
    """
    return configured if configured.startswith("refs/") else f"{REMOTE_TRACKING}{configured}"


def _resolve_commit(root: Path) -> tuple[str | None, str | None]:
    """``(ref, commit id)`` of the reviewed commit, or ``(wanted ref, None)`` when it does not resolve."""
    configured = reviewed_ref()
    for ref in (configured_ref_name(configured),) if configured else DEFAULT_REVIEWED_REFS:
        if configured and not ref.startswith(REMOTE_TRACKING):
            return f"{ref}, not a remote-tracking ref", None
        result = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root)
        if result.returncode == 0 and result.stdout.strip():
            short = ref.removeprefix("refs/remotes/")
            return short, result.stdout.strip()
    return (configured_ref_name(configured) if configured else DEFAULT_REVIEWED_REFS[-1]), None


#: What ``git verify-commit`` says of a good ssh signature by a listed key: the principal and the key.
_GOOD_SIGNATURE = re.compile(r'Good "git" signature for (?P<who>\S+) with (?P<key>\S+ key \S+)')


def _signature(root: Path, commit: str) -> tuple[str | None, str | None]:
    """``(problem, signer)``: why the reviewed ``commit`` is not signed by a key ``GOVERN_REVIEW_SIGNERS`` lists
    (None when it is, or when no signers are named: the ref alone is trusted then), and who signed it."""
    import shutil

    named = os.environ.get(REVIEW_SIGNERS_ENV)
    if not named:
        return None, None
    signers = Path(named).expanduser().resolve()
    if signers == root or root in signers.parents:
        return f"{REVIEW_SIGNERS_ENV} {named} is inside the checkout: whoever commits would choose the signers", None
    if not signers.is_file():
        return f"{REVIEW_SIGNERS_ENV} {named} is not a file", None
    program = shutil.which("ssh-keygen")
    if program is None:
        return "ssh-keygen is not available to check the reviewed commit's signature", None
    settings = {"gpg.format": "ssh", "gpg.ssh.program": program, "gpg.ssh.allowedSignersFile": str(signers),
                "gpg.minTrustLevel": "fully"}  # fmt: skip
    options = [item for key, value in settings.items() for item in ("-c", f"{key}={value}")]
    result = _git([*options, "verify-commit", commit], root)
    good = _GOOD_SIGNATURE.search(result.stderr or "")
    if result.returncode != 0 or good is None:
        return f"reviewed commit {commit[:12]} is not signed by a key {named} lists", None
    return None, f"{good['who']} ({good['key']})"


def read_reviewed(path: str | Path) -> Review:
    """Read ``path`` once and say whether those bytes are its blob at the reviewed commit of this checkout."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        return Review(path, b"", "", "not readable")
    return review_of(path, data)


def review_of(path: str | Path, data: bytes) -> Review:
    """Whether ``data``, bytes a caller already read from ``path`` and decides by, are its reviewed blob."""
    path = Path(path)
    digest = hashlib.sha256(data).hexdigest()
    root, why = _project_root()
    if root is None:
        return Review(path, data, digest, why)
    try:
        relative = path.resolve().relative_to(root)
    except ValueError:
        return Review(path, data, digest, f"outside the project's repository ({root})")
    try:
        ref, commit = _resolve_commit(root)
        if commit is None:  # a configured ref that does not resolve; or a checkout with nothing committed yet
            return Review(path, data, digest, f"no reviewed ref ({ref})" if reviewed_ref() else "not committed")
        unsigned, signer = _signature(root, commit)
        if unsigned is not None:
            return Review(path, data, digest, unsigned, ref=ref, commit=commit)
        result = _git(["rev-parse", "--verify", "--quiet", f"{commit}:{relative.as_posix()}"], root)
    except FileNotFoundError:
        return Review(path, data, digest, "git not available")
    except subprocess.TimeoutExpired:
        return Review(path, data, digest, "git did not answer")
    blob = result.stdout.strip()
    if result.returncode != 0 or not blob:
        return Review(path, data, digest, "not committed", ref=ref, commit=commit)
    if _blob_id(data, len(blob)) != blob:
        return Review(path, data, digest, "uncommitted change", ref=ref, commit=commit)
    return Review(path, data, digest, None, ref=ref, commit=commit, signer=signer)


def require_reviewed(path: str | Path, what: str = "file") -> Review:
    """``path`` read once, refused unless those bytes are its reviewed version: a missing file is a
    :class:`~governance.errors.ConfigError`, an unreviewed one a :class:`~governance.errors.PolicyViolation` naming
    the file, why, and the fix (:meth:`Review.refusal`). Callers parse :attr:`Review.data`, the bytes checked."""
    from governance.errors import ConfigError, PolicyViolation

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    review = read_reviewed(path)
    if not review.reviewed:
        raise PolicyViolation(review.refusal(what))
    return review


def reviewed_version(review: Review) -> bytes | None:
    """The reviewed blob's bytes where the working copy has an uncommitted change, else ``None``.

    For a reader that *states* a policy (the audit report's provider, limitations and high-risk uses), never
    for one that decides (those refuse: :func:`require_reviewed`): what the report states then comes from the
    version that was reviewed, read from the same commit the check compared against, and the working copy's
    change is reported beside it instead of being stated as policy.
    """
    if review.problem != "uncommitted change" or not review.commit:
        return None
    result = _git_on_file(review, lambda relative: ["cat-file", "blob", f"{review.commit}:{relative}"], text=False)
    return result.stdout if result is not None and result.returncode == 0 else None


def commit_adding(review: Review, text: str) -> str | None:
    """The oldest commit in the reviewed commit's history whose change to the file added ``text`` (``git log -S``).

    Only the reviewed history is searched, from :attr:`Review.commit` (never ``HEAD``: a local commit of one's
    own is not in it), with git's environment as every review check has it (no caller ``GIT_*`` variable,
    no replace refs, no grafts). ``None`` for a file that is not reviewed, or where git cannot say.
    """
    if not review.reviewed or not review.commit:
        return None
    commit = str(review.commit)
    result = _git_on_file(review, lambda relative: ["log", "--format=%H", "-S", text, commit, "--", relative])
    commits = result.stdout.split() if result is not None and result.returncode == 0 else []
    return commits[-1] if commits else None


def _git_on_file(review: Review, args, *, text: bool = True) -> subprocess.CompletedProcess | None:
    """git run in the project's checkout on the reviewed file (``args(relative path)``), as the review check runs
    it; ``None`` where there is no checkout or git cannot answer."""
    root, _ = _project_root()
    if root is None:
        return None
    try:
        return _git(args(review.path.resolve().relative_to(root).as_posix()), root, text=text)
    except (FileNotFoundError, subprocess.TimeoutExpired, ValueError):
        return None


def review_status(path: str | Path) -> str | None:
    """``None`` when ``path`` is the reviewed version (see :func:`read_reviewed`); otherwise why it is not."""
    return read_reviewed(path).problem


def listed_in_history(path: str | Path, needle: str) -> tuple[str, str] | None:
    """``(commit, ref)`` of the newest commit on any ref of this checkout whose ``path`` holds ``needle``; else None.

    For a diagnosis only, never for trust: a key missing from this checkout's
    ``policies/trail_keys.yaml`` that a newer commit lists means the checkout
    is older than the trail (``git pull``), not that the trail was forged.
    """
    root, _ = _project_root()
    if root is None:
        return None
    try:
        relative = Path(path).resolve().relative_to(root).as_posix()
        found = _git(["log", "--all", "--format=%H", "-S", needle, "--", relative], root)
        for commit in found.stdout.split():
            shown = _git(["show", f"{commit}:{relative}"], root)
            if shown.returncode == 0 and needle in shown.stdout:
                refs = _git(["branch", "-a", "--contains", commit, "--format=%(refname:short)"], root)
                return commit, (refs.stdout.split() or ["no branch"])[0]
    except (ValueError, FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return None
