"""``dvc repro register_sft`` against a real ``mlflow server`` (basic-auth, PostgreSQL, served artifacts).

The team set-up of ``docs/how-to/team-setup.md`` as ``team_support.py`` builds it
(the page itself, command by command, is ``test_team_setup_doc.py``): a clone
with the team's policies committed, ``team.env`` sourced, the stages
authenticating as the trainer service account, the audit trail in
PostgreSQL. The version is registered at the ``high`` risk tier, so the
shipped ``approval.authenticated`` rule is in force: three reviewers approve
with their own server credentials and the release manager promotes. Every
artifact is read back through the server (``mlflow-artifacts:`` URIs, served
by ``--serve-artifacts``) by ``govern verify`` and ``govern report`` in a
clone that only pulled; ``govern reproduce`` there, and two clones running the
whole chain at once, are opt-in (``-m server_slow``: minutes each).

Every MLflow client this module makes in-process names the team's server as
both its tracking and its registry URI: MLflow resolves an unnamed registry
URI from the process-wide one (``mlflow.set_registry_uri``, set by any earlier
test's :func:`governance.registry.client`), so ``MlflowClient(tracking_uri=…)``
alone would ask another server's registry (and get 401 for this team's users).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from team_support import RELEASER, REVIEWERS, TRAINER, git, make_team, timed

from tests.server.conftest import running_server

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture(scope="module")
def team(postgres, tmp_path_factory):
    # The team's own server and trail: the session server holds other tests' models and their trail, signed
    # by other keys, which the team's `govern audit verify` would rightly call foreign
    with running_server(tmp_path_factory.mktemp("team-server")) as server:
        yield make_team(server, tmp_path_factory.mktemp("team"))


@pytest.fixture(scope="module")
def trained(team, tmp_path_factory):
    """Clone A: the SFT chain run by the trainer service account, its outputs pushed to the DVC remote."""
    workdir = team.clone(tmp_path_factory.mktemp("clone-a") / "repo")
    started = time.perf_counter()
    result = team.run(["dvc", "repro", "register_sft"], workdir)
    assert result.returncode == 0, f"dvc repro failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    seconds = timed("dvc repro register_sft against the server", started)
    registration = json.loads((workdir / "artifacts/register_sft/registration.json").read_text())
    # What the trainer shares: the lock in git, the data and model in the DVC remote
    git(workdir, "add", "dvc.lock")
    git(workdir, "commit", "-qm", "dvc.lock: register_sft against the team server")
    pushed = team.run(["dvc", "push"], workdir)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    return workdir, registration, seconds


@pytest.fixture(scope="module")
def pulled(team, trained, tmp_path_factory):
    """A factory of clones that did not train: ``git clone`` of the trainer's, then ``dvc pull``."""
    trainer_clone = trained[0]

    def make(label: str) -> Path:
        workdir = tmp_path_factory.mktemp(label) / "repo"
        cloned = subprocess.run(
            ["git", "clone", "-q", str(trainer_clone), str(workdir)], capture_output=True, text=True
        )
        assert cloned.returncode == 0, cloned.stderr
        pulled = team.run(["dvc", "pull", "--with-deps", "register_sft"], workdir, REVIEWERS[0])
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        return workdir

    return make


def server_client(team, monkeypatch, user: str):
    """An in-process ``MlflowClient`` of the team's server (tracking and registry both) acting as ``user``."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", team.server.passwords[user])
    return MlflowClient(tracking_uri=team.server.url, registry_uri=team.server.url)


def served_artifact_reads(team) -> int:
    """How many artifact downloads the server has served so far (its access log)."""
    log = team.server.log_path.read_text(errors="replace")
    return log.count('"GET /api/2.0/mlflow-artifacts/artifacts/')


def audit_events(team, workdir, name: str, version: str) -> dict[str, list[dict]]:
    """The trail's events about one version by kind, as `govern audit export` writes them (one export)."""
    exported = team.run(["govern", "audit", "export"], workdir)
    assert exported.returncode == 0, exported.stderr
    by_kind: dict[str, list[dict]] = {}
    for event in map(json.loads, exported.stdout.splitlines()):
        if (event["subject"]["model"], event["subject"]["version"]) == (name, version):
            by_kind.setdefault(event["event_type"], []).append(event)
    return by_kind


def test_sft_chain_registers_through_the_server_as_the_trainer(team, trained, monkeypatch):
    workdir, registration, _ = trained
    name, version = registration["name"], registration["version"]
    (registered,) = audit_events(team, workdir, name, version)["model_registered"]
    assert registered["actor"] == TRAINER and registered["identity_method"] == "mlflow-basic-auth"
    assert registered["details"]["identity_server"] == team.server.url
    # The gate and evaluation decisions it was trained and registered under name the same authenticated account
    exported = team.run(["govern", "audit", "export"], workdir)
    kinds = ("gate_decision", "eval_decision")
    decisions = [e for e in map(json.loads, exported.stdout.splitlines()) if e["event_type"] in kinds]
    assert decisions and {(e["actor"], e["identity_method"]) for e in decisions} == {(TRAINER, "mlflow-basic-auth")}
    published = [e for e in decisions if e["role"] == "gate stage"]  # as the gate and evaluation stages published
    assert published and {e["details"].get("identity_server") for e in published} == {team.server.url}
    # Artifacts live behind the server: the client sees mlflow-artifacts: URIs, never a path
    client = server_client(team, monkeypatch, TRAINER)
    mv = client.get_model_version(name, version)
    run = client.get_run(mv.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri
    assert mv.tags["lineage.risk_tier"] == "high" and mv.tags["lineage.trained_by"] == TRAINER


def test_govern_doctor_passes_for_the_team_setup_with_credentials_from_netrc(team, trained):
    workdir = trained[0]
    netrc = team.folder / "netrc"
    host = team.server.url.split("://", 1)[1].split(":", 1)[0]
    netrc.write_text(f"machine {host} login {REVIEWERS[0]} password {team.server.passwords[REVIEWERS[0]]}\n")
    netrc.chmod(0o600)
    env = team.env(workdir, REVIEWERS[0])
    del env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"]
    env["NETRC"] = str(netrc)
    doctor = subprocess.run(["govern", "doctor"], cwd=workdir, env=env, capture_output=True, text=True, check=False)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    lines = doctor.stdout.splitlines()
    assert lines[-1] == "all checks passed"
    checks = {line.split()[1]: line for line in lines[:-1]}
    expected = {"tracking", "clock", "identity", "permissions", "trail", "signing", "tiers", "dvc_remote"}
    assert set(checks) == expected, lines
    # A reviewer needs EDIT on the registered models (approvals write tags): what the team doc grants
    assert f"{REVIEWERS[0]} holds EDIT on every registered model (approve, reject)" in checks["permissions"], lines
    assert f"acting as {REVIEWERS[0]} (authenticated by {team.server.url})" in checks["identity"]
    assert f"DVC remote team: folder {team.remote} is writable" in checks["dvc_remote"]
    print("\n" + doctor.stdout)  # noqa: T201 - the output docs/how-to/team-setup.md shows


def test_reviewers_approve_with_their_own_credentials_and_the_high_tier_holds(team, trained):
    workdir, registration, _ = trained
    name, version = registration["name"], registration["version"]
    for reviewer in REVIEWERS[:2]:
        approved = team.run(["govern", "approve", name, version, "--reason", f"read by {reviewer}"], workdir, reviewer)
        assert approved.returncode == 0, approved.stderr
    early = team.run(["govern", "promote", name, version], workdir, RELEASER)
    assert early.returncode == 1 and "approval.min_approvers" in early.stderr, early.stderr
    approved = team.run(["govern", "approve", name, version, "--reason", "third reader"], workdir, REVIEWERS[2])
    assert approved.returncode == 0, approved.stderr
    promoted = team.run(["govern", "promote", name, version], workdir, RELEASER)
    assert promoted.returncode == 0, promoted.stderr
    events = audit_events(team, workdir, name, version)
    assert sorted(e["actor"] for e in events["approved"]) == sorted(REVIEWERS)
    assert {e["identity_method"] for e in events["approved"]} == {"mlflow-basic-auth"}
    (promotion,) = events["promoted"]
    assert promotion["actor"] == RELEASER and promotion["identity_method"] == "mlflow-basic-auth"


def test_two_writers_register_the_same_weights_at_once_as_one_version(team, trained, tmp_path_factory, monkeypatch):
    """Two clones, one server, one trail: ``register_sft`` at the same moment, for weights already registered.

    Both clones hold the trainer's outputs, as if each had run the chain (identical weights; ``-m server_slow``
    runs two chains for real), and both race to register them as ``govllm-sft``: the lineage key is the
    trainer's, so both name the trainer's version, no second version appears, the chain verifies, and so do the
    version's files. (A writer cannot make a new registered model of the same weights by relabelling the method
    in params: the method registered is the one the signed evaluation judged. Writers racing to create the first
    version of a new model are tests/server/test_registry_race.py's.)
    """
    trainer_clone, trainer_registration, _ = trained
    clones = []
    for label in ("clone-c", "clone-d"):
        workdir = tmp_path_factory.mktemp(label) / "repo"
        git(trainer_clone, "clone", "-q", str(trainer_clone), str(workdir))
        # The gate decisions (cache: false, not in the DVC remote) and the outputs, as the trainer's run left them
        shutil.copytree(trainer_clone / "artifacts", workdir / "artifacts", dirs_exist_ok=True)
        clones.append(workdir)
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda w: team.run(["dvc", "repro", "--force", "-s", "register_sft"], w), clones))
    timed("two writers: register_sft at once", started)
    for result in runs:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    registrations = [json.loads((w / "artifacts/register_sft/registration.json").read_text()) for w in clones]
    name, version = trainer_registration["name"], trainer_registration["version"]
    assert [(r["name"], r["version"], r["created"]) for r in registrations] == [(name, version, False)] * 2
    versions = server_client(team, monkeypatch, REVIEWERS[0]).search_model_versions(f"name = '{name}'")
    assert [v.version for v in versions] == [version], [v.version for v in versions]
    registered = audit_events(team, clones[0], name, version)["model_registered"]
    assert len(registered) == 1
    verified = team.run(["govern", "audit", "verify"], clones[0], REVIEWERS[0])
    assert verified.returncode == 0, verified.stdout + verified.stderr
    files = team.run(["govern", "verify", name, version], clones[0], REVIEWERS[0])
    assert files.returncode == 0, files.stdout + files.stderr


def test_a_clone_that_pulled_verifies_and_reports_through_the_server(team, trained, pulled):
    """After the twins signed into the same training run (the test above), the trainer's version still verifies."""
    _, registration, _ = trained
    name, version = registration["name"], registration["version"]
    started = time.perf_counter()
    workdir = pulled("clone-b")
    assert (workdir / "artifacts/train_sft/model.safetensors").is_file()
    assert not (workdir / "mlruns").exists() and not (workdir / "mlflow.db").exists()  # a store only the server has
    served_before = served_artifact_reads(team)
    verified = team.run(["govern", "verify", name, version], workdir, REVIEWERS[0])
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "registered files match their signature and provenance statement" in verified.stdout
    assert served_artifact_reads(team) > served_before  # the files came through the server, not from a path
    report = team.run(["govern", "report", name, version, "--out", str(workdir / "team-report")], workdir, REVIEWERS[0])
    assert report.returncode == 0, report.stdout + report.stderr
    assert (workdir / "team-report" / name / f"v{version}").is_dir()
    timed("clone, dvc pull, verify and report through the server", started)


@pytest.mark.server_slow
def test_a_clone_that_pulled_reproduces_the_version_bit_exact(opted_in, team, trained, pulled):
    """``govern reproduce`` re-runs five stages in a scratch copy (minutes): opt-in, ``pytest -m server_slow``."""
    _, registration, _ = trained
    started = time.perf_counter()
    workdir = pulled("clone-r")
    reproduced = team.run(["govern", "reproduce", registration["name"], registration["version"]], workdir, REVIEWERS[0])
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr
    assert "bit-exact" in reproduced.stdout
    timed("clone, dvc pull and reproduce through the server", started)


# --------------------------------------------------------------------------- opt-in: two whole chains at once


@pytest.fixture
def opted_in(request):
    if "server_slow" not in (request.config.getoption("-m") or ""):
        pytest.skip(f"opt-in: pytest -m server_slow ({request.node.name}: minutes)")


@pytest.mark.server_slow
def test_two_clones_run_the_whole_chain_at_once(opted_in, team, tmp_path, monkeypatch):
    """Two fresh clones, ``dvc repro register_sft`` at the same time, for a model line nobody has trained yet:
    every stage of both runs in the trail, one version for the identical weights, the chain verifies."""
    clones = [team.clone(tmp_path / label) for label in ("writer-1", "writer-2")]
    for workdir in clones:
        params = workdir / "params.yaml"
        params.write_text(params.read_text().replace("project: govllm", "project: govllm-race", 1))
        git(workdir, "commit", "-qam", "the race's model line")
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda w: team.run(["dvc", "repro", "register_sft"], w, timeout=1800), clones))
    timed("two clones: dvc repro register_sft at once", started)
    for result in runs:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    registrations = [json.loads((w / "artifacts/register_sft/registration.json").read_text()) for w in clones]
    assert registrations[0] == {**registrations[1], "created": registrations[0]["created"]}
    assert sorted(r["created"] for r in registrations) == [False, True]
    versions = server_client(team, monkeypatch, REVIEWERS[0]).search_model_versions("name = 'govllm-race-sft'")
    assert [v.version for v in versions] == [registrations[0]["version"]]
    # No lost events: both runs' training runs are in the trail's gate and registration history
    exported = team.run(["govern", "audit", "export"], clones[0], REVIEWERS[0])
    events = [json.loads(line) for line in exported.stdout.splitlines()]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the chain has a gap"
    verified = team.run(["govern", "audit", "verify"], clones[0], REVIEWERS[0])
    assert verified.returncode == 0, verified.stdout + verified.stderr
