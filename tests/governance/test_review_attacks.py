"""The review check says what it trusts, and git cannot be told to lie to it (issue 38, K1 and variants).

Each test builds a project checkout with a reviewed ``policies/trail_keys.yaml``
and replays one way of making an attacker's edit look committed: ``git
replace``, a graft, ``GIT_DIR``/``GIT_WORK_TREE``/``GIT_INDEX_FILE`` pointed at
the attacker's repository, ``GOVERN_POLICY_DIR`` pointed at a repository of the
attacker's, and the attacker's own commit where the reviewed ref is the
protected branch. Real git, no mocks.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from governance.git_trust import checkout_state
from governance.policy.review import read_reviewed, review_status

REVIEWED = 'version: "1"\nkeys: []\n'
FORGED = (
    'version: "1"\nkeys:\n  - {id: "ed25519:mallory", public_key: "AAAA", owner: mallory, valid_from: 2026-01-01}\n'
)
FILE = "policies/trail_keys.yaml"


def git(folder: Path, *args: str) -> str:
    command = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def attackers_repository(tmp_path: Path) -> Path:
    """A repository of the attacker's own, where the forged key list is committed."""
    evil = tmp_path / "evil"
    (evil / "policies").mkdir(parents=True)
    (evil / FILE).write_text(FORGED)
    git(evil, "init", "-q")
    git(evil, "add", FILE)
    git(evil, "commit", "-qm", "mine")
    return evil


def clone_with_own_commit(project: Path, tmp_path: Path) -> Path:
    """A clone of the project (origin/main: the protected branch as fetched) where the attacker committed the forged
    file on their own."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    (clone / FILE).write_text(FORGED)
    git(clone, "add", FILE)
    git(clone, "commit", "-qm", "mine, not reviewed")
    return clone


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A checkout whose HEAD holds the reviewed key list; the test runs inside it, as dvc repro and govern do."""
    root = tmp_path / "project"
    (root / "policies").mkdir(parents=True)
    (root / FILE).write_text(REVIEWED)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", FILE)
    git(root, "commit", "-qm", "reviewed key list")
    monkeypatch.chdir(root)
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GOVERN_REVIEWED_REF", "GOVERN_REVIEW_SIGNERS"):
        monkeypatch.delenv(name, raising=False)
    return root


def test_the_committed_file_is_reviewed_and_says_at_which_commit(project):
    review = read_reviewed(FILE)
    head = git(project, "rev-parse", "HEAD")
    assert (review.reviewed, review.ref, review.commit) == (True, "HEAD", head)
    assert review.describe() == f"reviewed at HEAD ({head[:12]})"
    assert review.data == REVIEWED.encode()


def test_an_uncommitted_edit_is_refused_with_one_line_naming_the_file(project):
    (project / FILE).write_text(FORGED)
    review = read_reviewed(FILE)
    assert review.problem == "uncommitted change"
    assert review.refusal("key list") == (
        f"{FILE}: this key list decides, and it is not the reviewed version (uncommitted change); only the "
        f"version committed at the reviewed ref counts: restore the reviewed version (git checkout HEAD -- {FILE}) "
        "or get the change reviewed and merged"
    )


def test_attack_git_replace_of_head_does_not_make_the_edit_reviewed(project):
    """K1: HEAD's commit object replaced by one whose tree lists the attacker's key; HEAD's id and status unchanged."""
    (project / FILE).write_text(FORGED)
    blob = git(project, "hash-object", "-w", FILE)
    sub = subprocess.run(
        ["git", "-C", str(project), "mktree"],
        input=f"100644 blob {blob}\ttrail_keys.yaml\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree = subprocess.run(
        ["git", "-C", str(project), "mktree"],
        input=f"040000 tree {sub}\tpolicies\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    forged = git(project, "commit-tree", tree, "-m", "reviewed key list")
    git(project, "replace", git(project, "rev-parse", "HEAD"), forged)
    git(project, "add", FILE)
    assert git(project, "show", f"HEAD:{FILE}") == FORGED.strip()  # git itself now believes the forgery
    assert git(project, "status", "--porcelain") == ""
    assert review_status(FILE) == "uncommitted change"


def test_attack_a_graft_does_not_make_the_edit_reviewed(project):
    (project / FILE).write_text(FORGED)
    git(project, "add", FILE)
    git(project, "commit", "-qm", "mine")  # the attacker's commit...
    mine = git(project, "rev-parse", "HEAD")
    git(project, "reset", "-q", "--soft", "HEAD~1")
    git(project, "reset", "-q")
    # ...grafted so that HEAD appears to have it as its only parent does not change HEAD's tree
    (project / ".git" / "info").mkdir(exist_ok=True)
    (project / ".git" / "info" / "grafts").write_text(f"{git(project, 'rev-parse', 'HEAD')} {mine}\n")
    assert review_status(FILE) == "uncommitted change"


@pytest.mark.parametrize("variable", ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"])
def test_attack_git_variables_pointed_at_the_attackers_repository_are_ignored(project, tmp_path, monkeypatch, variable):
    evil = attackers_repository(tmp_path)
    (project / FILE).write_text(FORGED)
    values = {"GIT_DIR": str(evil / ".git"), "GIT_WORK_TREE": str(evil), "GIT_INDEX_FILE": str(evil / ".git/index")}
    monkeypatch.setenv(variable, values[variable])
    assert review_status(FILE) == "uncommitted change"


def test_attack_govern_policy_dir_in_a_repository_of_ones_own_is_not_reviewed(project, tmp_path):
    evil = attackers_repository(tmp_path)
    assert review_status(evil / FILE) == f"outside the project's repository ({project.resolve()})"


def test_attack_ones_own_commit_is_not_reviewed_where_the_protected_branch_is_the_reviewed_ref(project, tmp_path):
    """A clone has origin/main: a local commit does not move it, so the attacker's commit is not the reviewed one."""
    clone = clone_with_own_commit(project, tmp_path)
    import os

    os.chdir(clone)
    try:
        review = read_reviewed(FILE)
    finally:
        os.chdir(project)
    assert (review.problem, review.ref) == ("uncommitted change", "origin/main")


def test_a_pinned_reviewed_ref_that_does_not_resolve_reviews_nothing(project, monkeypatch):
    monkeypatch.setenv("GOVERN_REVIEWED_REF", "refs/remotes/origin/release")
    assert review_status(FILE) == "no reviewed ref (refs/remotes/origin/release)"
    monkeypatch.setenv("GOVERN_REVIEWED_REF", "origin/release")  # a short name is the remote-tracking ref
    assert review_status(FILE) == "no reviewed ref (refs/remotes/origin/release)"


@pytest.mark.parametrize("named", ["HEAD", "refs/heads/main", "refs/tags/reviewed", "commit"])
def test_attack_a_reviewed_ref_named_at_ones_own_commit_reviews_nothing(project, tmp_path, monkeypatch, named):
    """``GOVERN_REVIEWED_REF=HEAD`` (or a local branch, a tag, a commit id) after committing the forged file in a
    clone: each is moved by a local commit or ``git tag``, so none is a review; only remote-tracking refs count."""
    clone = clone_with_own_commit(project, tmp_path)
    git(clone, "tag", "reviewed")
    monkeypatch.chdir(clone)
    value = git(clone, "rev-parse", "HEAD") if named == "commit" else named
    monkeypatch.setenv("GOVERN_REVIEWED_REF", value)
    wanted = value if value.startswith("refs/") else f"refs/remotes/{value}"
    expected = f"no reviewed ref ({wanted}, not a remote-tracking ref)" if value.startswith("refs/") else (
        f"no reviewed ref ({wanted})"
    )  # fmt: skip
    assert review_status(FILE) == expected


def test_attack_a_local_branch_named_like_the_protected_branch_is_not_the_reviewed_ref(project, tmp_path, monkeypatch):
    """``git branch origin/main`` on one's own commit: git itself resolves the short name ``origin/main`` (what
    team set-ups name) to that local branch, the review check never does."""
    clone = clone_with_own_commit(project, tmp_path)
    git(clone, "branch", "origin/main")
    own = git(clone, "rev-parse", "HEAD")
    assert git(clone, "rev-parse", "--verify", "--quiet", "origin/main^{commit}") == own  # what git would trust
    monkeypatch.chdir(clone)
    monkeypatch.setenv("GOVERN_REVIEWED_REF", "origin/main")
    review = read_reviewed(FILE)
    assert (review.problem, review.ref) == ("uncommitted change", "origin/main")
    assert review.commit == git(project, "rev-parse", "HEAD") != own  # the protected branch as fetched


def test_attack_deleting_the_protected_branchs_ref_reviews_nothing_where_the_ref_is_named(
    project, tmp_path, monkeypatch
):
    """Team set-ups name the reviewed ref: deleting it (``git update-ref -d``) leaves no reviewed commit, not the
    attacker's own HEAD. Under the unnamed default the check falls back to HEAD and records the ref as ``HEAD``,
    which is what a sandbox made with ``git init`` has (docs/explanation/threat-model.md says so)."""
    clone = clone_with_own_commit(project, tmp_path)
    git(clone, "update-ref", "-d", "refs/remotes/origin/main")
    monkeypatch.chdir(clone)
    monkeypatch.setenv("GOVERN_REVIEWED_REF", "refs/remotes/origin/main")
    assert review_status(FILE) == "no reviewed ref (refs/remotes/origin/main)"
    monkeypatch.delenv("GOVERN_REVIEWED_REF")
    review = read_reviewed(FILE)
    assert (review.problem, review.ref) == (None, "HEAD")  # the default's sandbox fallback, recorded as such


# --------------------------------------------------------------------------- signed reviewed commits


def _key(folder: Path, name: str) -> Path:
    """An ssh signing key (no passphrase), as a reviewer's or the forge's merge key."""
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


def _signed_commit(folder: Path, key: Path, message: str) -> str:
    git(folder, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key}.pub", "commit", "-qS", "-m", message)
    return git(folder, "rev-parse", "HEAD")


@pytest.fixture
def signed_project(project, tmp_path, monkeypatch):
    """The project whose protected branch is signed by the forge's merge key, a clone of it (origin/main as
    fetched), and the team's allowed-signers file outside both, named by GOVERN_REVIEW_SIGNERS."""
    keys = tmp_path / "keys"
    keys.mkdir()
    forge = _key(keys, "forge")
    (project / "README").write_text("signed\n")
    git(project, "add", "README")
    _signed_commit(project, forge, "merged after review, signed by the forge")
    signers = tmp_path / "platform" / "allowed_signers"
    signers.parent.mkdir()
    signers.write_text(f'forge-merge-key namespaces="git" {(keys / "forge.pub").read_text()}')
    clone = tmp_path / "signed-clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    monkeypatch.chdir(clone)
    monkeypatch.setenv("GOVERN_REVIEWED_REF", "origin/main")
    monkeypatch.setenv("GOVERN_REVIEW_SIGNERS", str(signers))
    return clone, keys, signers


def test_with_named_signers_a_signed_protected_branch_is_reviewed(signed_project):
    clone, _, _ = signed_project
    review = read_reviewed(FILE)
    assert (review.problem, review.ref, review.commit) == (None, "origin/main", git(clone, "rev-parse", "origin/main"))
    # who signed it, as git verified it, goes with each decision (reviewed_signed_by) and the report prints it
    assert review.signer.startswith("forge-merge-key (ED25519 key SHA256:")
    from governance.report.render import decided

    shown = decided(
        {
            "decided_at": "2026-11-28T10:00:00Z",
            "decided_event": 7,
            "decided_review": {"ref": review.ref, "commit": review.commit, "signed_by": review.signer},
        }
    )
    assert f"policy reviewed at origin/main ({review.commit[:12]}…, signed by forge-merge-key (ED25519" in shown


def test_attack_update_ref_of_the_protected_branch_to_ones_own_commit_is_not_reviewed_where_signers_are_named(
    signed_project, tmp_path
):
    """The one move the ref alone cannot see: ``git update-ref refs/remotes/origin/main`` on one's own commit, signed
    with one's own key or not at all. With the team's signers named, that commit's signature does not count."""
    clone, keys, signers = signed_project
    (clone / FILE).write_text(FORGED)
    git(clone, "add", FILE)
    own = _signed_commit(clone, _key(keys, "mallory"), "mine, signed by me")
    git(clone, "update-ref", "refs/remotes/origin/main", own)
    review = read_reviewed(FILE)
    assert review.problem == f"reviewed commit {own[:12]} is not signed by a key {signers} lists"
    assert review.commit == own  # recorded as what was refused
    git(clone, "commit", "-q", "--amend", "--no-gpg-sign", "-m", "mine, unsigned")
    git(clone, "update-ref", "refs/remotes/origin/main", git(clone, "rev-parse", "HEAD"))
    assert review_status(FILE).startswith("reviewed commit ") and review_status(FILE).endswith(f"{signers} lists")
    # git configured in the checkout to believe any signature changes nothing: the check sets its own
    fake = tmp_path / "always-good"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    git(clone, "config", "gpg.ssh.program", str(fake))
    git(clone, "config", "gpg.minTrustLevel", "undefined")
    assert review_status(FILE).endswith(f"{signers} lists")


def test_attack_a_signers_file_inside_the_checkout_is_refused(signed_project, monkeypatch):
    clone, keys, _ = signed_project
    inside = clone / "allowed_signers"
    inside.write_text(f'mallory-key namespaces="git" {(keys / "forge.pub").read_text()}')
    monkeypatch.setenv("GOVERN_REVIEW_SIGNERS", str(inside))
    assert review_status(FILE) == (
        f"GOVERN_REVIEW_SIGNERS {inside} is inside the checkout: whoever commits would choose the signers"
    )
    monkeypatch.setenv("GOVERN_REVIEW_SIGNERS", str(clone.parent / "missing"))
    assert review_status(FILE) == f"GOVERN_REVIEW_SIGNERS {clone.parent / 'missing'} is not a file"


# --------------------------------------------------------------------------- the commit a lineage records


def test_a_clean_checkout_is_clean_and_a_staged_new_file_is_not(project):
    from governance.lineage import git_state

    head = git(project, "rev-parse", "HEAD")
    assert git_state(project) == {"commit": head, "dirty": False}
    (project / "dvc.lock").write_text("schema: '2.0'\n")  # dvc repro writes it: not code
    git(project, "add", "dvc.lock")
    assert git_state(project)["dirty"] is False
    (project / "extra.py").write_text("x = 1\n")
    git(project, "add", "extra.py")
    assert checkout_state(project)["changed"] == ["extra.py"]


@pytest.mark.parametrize("hide", ["assume-unchanged", "skip-worktree", "clean filter", "GIT_DIR"])
def test_attack_an_edit_hidden_from_git_status_is_still_recorded_as_dirty(project, tmp_path, monkeypatch, hide):
    """L1: train from edited code, hiding the edit from ``git status``, so the lineage, the registry tag and the report
    say "commit X, no uncommitted changes". Before, the lineage believed ``git status --porcelain``; now each file's
    bytes are compared with the commit's blob, with git's environment cleaned."""
    head = git(project, "rev-parse", "HEAD")
    (project / FILE).write_text(FORGED)
    if hide in ("assume-unchanged", "skip-worktree"):
        git(project, "update-index", f"--{hide}", FILE)
    elif hide == "clean filter":  # local only (.git/info, .git/config): shows git the committed text instead
        (project / ".git/info/attributes").write_text(f"{FILE} filter=lie\n")
        git(project, "config", "filter.lie.clean", f"cat >/dev/null; git show HEAD:{FILE}")
        git(project, "add", FILE)  # the index holds the committed blob with the edited file's stat: status is clean
    else:
        evil = attackers_repository(tmp_path)
        monkeypatch.setenv("GIT_DIR", str(evil / ".git"))
    if hide != "GIT_DIR":  # what git itself says: nothing changed
        assert subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=project,
                              capture_output=True, text=True, check=True).stdout == ""  # fmt: skip
    from governance.lineage import git_state

    assert git_state(project) == {"commit": head, "dirty": True}
    assert checkout_state(project)["changed"] == [FILE]
