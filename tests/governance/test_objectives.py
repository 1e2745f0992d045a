"""Objective approval: hashes of reward functions, approval on the CLI or in code review, refusal to train."""

from __future__ import annotations

import hashlib
import inspect
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml

from governance import objectives, trail
from governance.cli import main
from governance.errors import ConfigError, PolicyViolation
from governance.identity import Identity

REPO = Path(__file__).resolve().parents[2]

REWARDS_SOURCE = """
def exact_reward(prompts, completions, **kwargs):
    return [1.0 if c == a else 0.0 for c, a in zip(completions, kwargs["answer"])]


def length_reward(prompts, completions, **kwargs):
    return [-len(c) / 100 for c in completions]
"""


def git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Reviewer", "-c", "user.email=reviewer@example.org", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A git checkout with policies, params.yaml and a reward module importable by name."""
    root = tmp_path / "project"
    (root / "policies").mkdir(parents=True)
    shutil.copy(REPO / "policies" / "approvals.yaml", root / "policies" / "approvals.yaml")
    module = f"rewards_{uuid.uuid4().hex[:8]}"
    (root / f"{module}.py").write_text(REWARDS_SOURCE)
    (root / "params.yaml").write_text(
        yaml.safe_dump({"train_demo": {"reward_funcs": ["exact_reward", "length_reward"]}})
    )
    write_objectives(root, module, approved=[])
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "project")
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(root / "policies"))
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("GOVERN_USER", "erin")
    yield root, module
    sys.modules.pop(module, None)


def write_objectives(root: Path, module: str, approved: list[dict], severity: str = "deny") -> Path:
    path = root / "policies" / "objectives.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": "1",
                "rules": {"approved_hash": {"id": "objective.approved_hash", "severity": severity, "rationale": "r"}},
                "stages": {"train_demo": {"reward_module": module, "params_key": "train_demo.reward_funcs"}},
                "approved": approved,
            }
        )
    )
    return path


def current(module: str) -> dict[str, str]:
    imported = __import__(module)
    return objectives.objective_hashes([imported.exact_reward, imported.length_reward])


def test_hash_is_sha256_of_the_function_source(project):
    _, module = project
    imported = __import__(module)
    expected = hashlib.sha256(inspect.getsource(imported.exact_reward).encode()).hexdigest()
    assert objectives.objective_hashes([imported.exact_reward])["exact_reward"] == expected
    assert objectives.objective_hashes({"renamed": imported.exact_reward}) == {"renamed": expected}
    with pytest.raises(ConfigError) as info:
        objectives.objective_hashes([len])
    assert str(info.value) == "objective len: cannot read its source code, so it cannot be hashed and approved"


def test_unapproved_objective_is_refused_naming_hash_and_command(project):
    root, module = project
    hashes = current(module)
    with pytest.raises(PolicyViolation) as info:
        objectives.require_approved_objective("train_demo", hashes)
    path = root / "policies" / "objectives.yaml"
    assert str(info.value) == (
        f"train_demo: objective exact_reward has sha256 {hashes['exact_reward']} which is not approved "
        f"(objective.approved_hash); review it, then run `govern approve-objective train_demo --reason TEXT` or "
        f"list the hash in {path} in a reviewed commit (and 1 more unapproved: length_reward)"
    )
    (denied,) = trail.events(event_types=["permission_denied"])
    assert denied.actor == "erin" and denied.subject.objective == "train_demo:exact_reward"
    assert denied.evidence == hashes


def test_approve_objective_on_the_cli_then_training_may_start(project, capsys):
    _, module = project
    hashes = current(module)
    assert main(["approve-objective", "train_demo", "--reason", "exact match only; length bounded"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"approved: train_demo objective exact_reward sha256 {hashes['exact_reward']} by erin")
    approvals = objectives.require_approved_objective("train_demo", hashes)
    assert [(a.objective, a.source, a.approved_by) for a in approvals] == [
        ("exact_reward", "cli", "erin"),
        ("length_reward", "cli", "erin"),
    ]
    assert main(["approve-objective", "train_demo", "--reason", "again"]) == 0
    assert capsys.readouterr().out.startswith("already approved: train_demo objective exact_reward")
    assert len(trail.events(event_types=["objective_approved"])) == 2


def test_only_objective_owners_may_approve(project, monkeypatch, capsys):
    monkeypatch.setenv("GOVERN_USER", "bob")
    assert main(["approve-objective", "train_demo", "--reason", "lgtm"]) == 1
    assert capsys.readouterr().err == (
        "govern: approve-objective refused by approval.role_required: train_demo: bob holds no role allowed to "
        "approve objectives (allowed: objective_owner; bob's roles: reviewer)\n"
    )
    (denied,) = trail.events(event_types=["permission_denied"])
    assert denied.actor == "bob" and denied.details["action"] == "approve_objective"
    assert trail.events(event_types=["objective_approved"]) == []


def test_changing_the_reward_code_stops_training_until_reapproved(project):
    root, module = project
    objectives.approve_objective("train_demo", reason="ok", identity=Identity("erin", "local"))
    assert len(objectives.require_approved_objective("train_demo", current(module))) == 2
    source = (root / f"{module}.py").read_text().replace("-len(c) / 100", "-len(c) / 10")
    (root / f"{module}.py").write_text(source)
    sys.modules.pop(module)
    changed = current(module)
    with pytest.raises(PolicyViolation, match=f"objective length_reward has sha256 {changed['length_reward']} which"):
        objectives.require_approved_objective("train_demo", changed)


def test_code_review_approval_is_recorded_with_its_commit(project):
    root, module = project
    hashes = current(module)
    entries = [
        {"stage": "train_demo", "objective": n, "sha256": h, "approved_by": "erin", "reason": "reviewed in PR 12"}
        for n, h in hashes.items()
    ]
    path = write_objectives(root, module, entries)
    with pytest.raises(PolicyViolation) as info:  # listed, not committed: the policy is not the reviewed version
        objectives.require_approved_objective("train_demo", hashes)
    assert str(info.value).startswith(
        f"{path}: this objectives policy decides, and it is not the reviewed version (uncommitted change)"
    )
    assert trail.events(event_types=["objective_approved"]) == []
    git(root, "commit", "-q", "-am", "approve demo rewards")
    commit = git(root, "rev-parse", "HEAD")
    approvals = objectives.require_approved_objective("train_demo", hashes)
    assert [(a.source, a.approved_by, a.evidence["git_commit"]) for a in approvals] == [
        ("code_review", "erin", commit),
        ("code_review", "erin", commit),
    ]
    recorded = trail.events(event_types=["objective_approved"])
    assert [e.actor for e in recorded] == ["erin", "erin"] and recorded[0].reason == "reviewed in PR 12"
    objectives.require_approved_objective("train_demo", hashes)
    assert len(trail.events(event_types=["objective_approved"])) == 2


def test_code_review_approver_must_hold_the_role(project):
    root, module = project
    hashes = current(module)
    entry = {
        "stage": "train_demo",
        "objective": "exact_reward",
        "sha256": hashes["exact_reward"],
        "approved_by": "bob",
        "reason": "lgtm",
    }
    path = write_objectives(root, module, [entry])
    git(root, "commit", "-q", "-am", "bob approves")
    with pytest.raises(PolicyViolation) as info:
        objectives.require_approved_objective("train_demo", {"exact_reward": hashes["exact_reward"]})
    assert str(info.value).startswith(
        f"train_demo: objective exact_reward has sha256 {hashes['exact_reward']} is listed in {path} as approved "
        "by bob, who holds no role allowed to approve objectives (allowed: objective_owner) (objective.approved_hash)"
    )


def test_warn_severity_reports_without_refusing(project, caplog):
    root, module = project
    write_objectives(root, module, [], severity="warn")
    git(root, "commit", "-q", "-am", "warn only, reviewed")
    assert objectives.require_approved_objective("train_demo", current(module)) == []
    assert "objective exact_reward has sha256" in caplog.text


def test_explicit_hash_for_a_stage_without_a_declared_source(project, capsys):
    digest = "cd" * 32
    assert main(["approve-objective", "train_rlhf", "--reason", "recipe reviewed"]) == 2
    assert capsys.readouterr().err.startswith(
        "govern: " + str(Path("policies").resolve() / "objectives.yaml") + ": stages.train_rlhf: not declared"
    )
    assert (
        main(
            [
                "approve-objective",
                "train_rlhf",
                "--objective",
                "reward_model_recipe",
                "--sha256",
                digest,
                "--reason",
                "recipe reviewed",
            ]
        )
        == 0
    )
    assert objectives.require_approved_objective("train_rlhf", {"reward_model_recipe": digest})[0].source == "cli"
    assert main(["approve-objective", "train_rlhf", "--objective", "x", "--sha256", "nothex", "--reason", "r"]) == 2
    assert capsys.readouterr().err.endswith(
        "govern: train_rlhf: objective x: 'nothex' is not a SHA-256 (64 lowercase hex characters)\n"
    )


def test_hashes_from_a_provider_and_params_errors(project, monkeypatch):
    root, module = project
    (root / f"{module}_provider.py").write_text(
        textwrap.dedent("""
        def hashes():
            return {"reward_model_recipe": "ef" * 32}
        """)
    )
    path = root / "policies" / "objectives.yaml"
    data = yaml.safe_load(path.read_text())
    data["stages"]["train_rlhf"] = {"hashes_from": f"{module}_provider:hashes"}
    data["stages"]["train_broken"] = {"reward_module": module, "params_key": "train_broken.reward_funcs"}
    path.write_text(yaml.safe_dump(data))
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "provider and a stage without params, reviewed")
    assert objectives.current_objective_hashes("train_rlhf") == {"reward_model_recipe": "ef" * 32}
    with pytest.raises(ConfigError) as info:
        objectives.current_objective_hashes("train_broken")
    assert str(info.value) == (f"{path}: stages.train_broken.params_key: params.yaml has no train_broken.reward_funcs")
    data["stages"]["train_bad"] = {"reward_module": module, "functions": ["x"], "hashes_from": "a:b"}
    path.write_text(yaml.safe_dump(data))
    git(root, "commit", "-q", "-am", "an invalid stage, reviewed")
    with pytest.raises(ConfigError, match="give either hashes_from, or reward_module with functions/params_key"):
        objectives.load_objectives_policy()


def test_shipped_reward_functions_are_approved_in_code_review(tmp_path, monkeypatch):
    rewards = pytest.importorskip("pipelines.rewards")
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(REPO / "policies"))
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    hashes = objectives.objective_hashes([rewards.correctness_reward, rewards.brevity_reward])
    approvals = objectives.require_approved_objective("train_grpo", hashes)
    assert [a.objective for a in approvals] == ["correctness_reward", "brevity_reward"]
    assert all(a.source == "code_review" and len(a.evidence["git_commit"]) == 40 for a in approvals)


def test_attack_an_uncommitted_warn_severity_does_not_let_an_unapproved_reward_train(project, caplog):
    """O1: ``rules.approved_hash.severity: warn`` typed into the working copy. Before, the stage logged a warning and
    trained on a reward nobody approved; the objectives policy now counts only as its reviewed version."""
    root, module = project
    path = write_objectives(root, module, [], severity="warn")
    with pytest.raises(PolicyViolation) as info:
        objectives.require_approved_objective("train_demo", current(module))
    assert str(info.value).startswith(
        f"{path}: this objectives policy decides, and it is not the reviewed version (uncommitted change)"
    )
    assert "objective exact_reward has sha256" not in caplog.text


def test_attack_an_entry_committed_on_ones_own_is_not_a_code_review_approval(project, monkeypatch):
    """O2: in a clone of the protected branch, list one's own reward's hash as "approved_by: erin" and commit it
    locally. Before, ``git log -S`` over HEAD's history found that commit and recorded it in the trail as erin's code
    review; now only the policy at the reviewed ref (origin/main) counts, and a commit is searched for only there."""
    root, module = project
    hashes = current(module)
    git(root, "branch", "-M", "main")  # the protected branch: origin/main in every clone
    clone = root.parent / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    entries = [
        {"stage": "train_demo", "objective": n, "sha256": h, "approved_by": "erin", "reason": "reviewed (it was not)"}
        for n, h in hashes.items()
    ]
    write_objectives(clone, module, entries)
    git(clone, "commit", "-q", "-am", "mine, not reviewed")
    monkeypatch.chdir(clone)
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(clone / "policies"))
    with pytest.raises(PolicyViolation) as info:
        objectives.require_approved_objective("train_demo", hashes)
    assert "this objectives policy decides, and it is not the reviewed version (uncommitted change)" in str(info.value)
    assert "git checkout origin/main -- " in str(info.value)
    assert trail.events(event_types=["objective_approved"]) == []


def test_the_code_review_commit_is_searched_for_in_the_reviewed_history_only(project, monkeypatch):
    """The evidence commit is the reviewed commit's ancestor that added the hash, found with git's environment
    cleaned: a ``GIT_DIR`` at a repository of one's own changes neither the review nor the commit recorded."""
    root, module = project
    hashes = current(module)
    entries = [
        {"stage": "train_demo", "objective": n, "sha256": h, "approved_by": "erin", "reason": "reviewed in PR 12"}
        for n, h in hashes.items()
    ]
    write_objectives(root, module, entries)
    git(root, "commit", "-q", "-am", "approve demo rewards")
    reviewed = git(root, "rev-parse", "HEAD")
    evil = root.parent / "evil"
    subprocess.run(["git", "init", "-q", str(evil)], check=True)
    monkeypatch.setenv("GIT_DIR", str(evil / ".git"))
    approvals = objectives.require_approved_objective("train_demo", hashes)
    assert {a.evidence["git_commit"] for a in approvals} == {reviewed}


def test_attack_an_uncommitted_role_does_not_let_one_approve_ones_own_reward(project, monkeypatch, capsys):
    """O3: give oneself ``objective_owner`` in an uncommitted ``policies/approvals.yaml``, then approve one's own
    reward. Before, approve-objective read the working copy and recorded the approval, and the stage trained on it."""
    root, module = project
    path = root / "policies" / "approvals.yaml"
    policy = yaml.safe_load(path.read_text())
    policy["roles"]["objective_owner"].append("mallory")
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("GOVERN_USER", "mallory")
    assert main(["approve-objective", "train_demo", "--reason", "mine"]) == 1
    assert capsys.readouterr().err.startswith(
        f"govern: {path}: this approvals policy (who may approve objectives) decides, and it is not the reviewed "
        "version (uncommitted change)"
    )
    assert trail.events(event_types=["objective_approved"]) == []
    with pytest.raises(PolicyViolation):
        objectives.require_approved_objective("train_demo", current(module))


HELPED_SOURCE = """
from decimal import Decimal


def scale(value):
    return Decimal(value) / 10


def exact_reward(prompts, completions, **kwargs):
    return [float(scale(1)) * (c == a) for c, a in zip(completions, kwargs["answer"])]
"""


def _hash_of(root: Path, source: str, name: str = "helped_rewards") -> str:
    """The objective's hash with ``source`` as its module's file (read afresh by each load)."""
    (root / f"{name}.py").write_text(source)
    return objectives.objective_hashes([objectives.load_objective_module(name).exact_reward])["exact_reward"]


def test_attack_a_changed_helper_or_a_rebound_name_changes_the_approved_hash(project):
    """O4: the hash covered the function's own text only; a helper of its module it calls, or a name of the module
    it reads (``Decimal = ...`` further down), changed every reward under the approved hash. Both are part of what
    is hashed now: the helper's source, and what each global name the code uses is bound to."""
    root, _ = project
    approved = _hash_of(root, HELPED_SOURCE)
    assert _hash_of(root, HELPED_SOURCE) == approved  # the same code, the same hash
    helper_changed = HELPED_SOURCE.replace("/ 10", "/ 1")
    rebound = HELPED_SOURCE + "\n\nDecimal = float\n"
    assert len({approved, _hash_of(root, helper_changed), _hash_of(root, rebound)}) == 3


def test_attack_a_stale_bytecode_file_or_a_swapped_source_never_runs_under_the_approved_hash(project):
    """O5: a stage imported its reward module (``__pycache__`` holds what runs: a ``.pyc`` with the source's size
    and mtime in its header runs whatever it was compiled from) and hashed ``inspect.getsource``, which reads the
    file again. The objectives now run from the source bytes read once, and the hash is of those same bytes."""
    import importlib
    import importlib.util
    from importlib._bootstrap_external import _code_to_timestamp_pyc

    root, _ = project
    name = f"stale_{uuid.uuid4().hex[:8]}"
    path = root / f"{name}.py"
    honest = "def exact_reward(prompts, completions, **kwargs):\n    return [0.0 for _ in completions]\n"
    evil = "def exact_reward(prompts, completions, **kwargs):\n    return [1.0 for _ in completions]\n"
    path.write_text(honest)
    stat = path.stat()
    cached = Path(importlib.util.cache_from_source(str(path)))
    cached.parent.mkdir(exist_ok=True)
    cached.write_bytes(_code_to_timestamp_pyc(compile(evil, str(path), "exec"), stat.st_mtime, stat.st_size))
    imported = importlib.import_module(name)
    sys.modules.pop(name, None)
    assert imported.exact_reward([], ["x"]) == [1.0]  # an import runs the stale bytecode...
    assert inspect.getsource(imported.exact_reward) == honest  # ...while the source it shows is the honest one
    loaded = objectives.load_objective_module(name)
    assert loaded.exact_reward([], ["x"]) == [0.0]  # run from the source bytes
    hashed = objectives.objective_hashes([loaded.exact_reward])["exact_reward"]
    path.write_text(evil)  # the file swapped after the load: the hash is still of the bytes that run
    assert objectives.objective_hashes([loaded.exact_reward])["exact_reward"] == hashed
    assert hashed == hashlib.sha256(honest.encode()).hexdigest()
