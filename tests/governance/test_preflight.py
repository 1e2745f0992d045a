"""Every team-mode requirement checked at once (governance.preflight, `govern doctor`, the root stages).

Real local things only: a project folder in tmp_path, real key files, a real
DVC config, and for a tracking server a real HTTP server on 127.0.0.1 that
answers as a plain ``mlflow server`` does (``/health`` 200, no user API: 404).
The full basic-auth server is exercised in tests/server.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from governance import preflight
from governance.cli import main as govern
from governance.errors import ConfigError
from governance.identity import current_identity
from governance.trail.signing import generate_key

REPO = Path(__file__).resolve().parents[2]
TEAM_ENV = (
    "GOVERN_AUDIT_URL",
    "GOVERN_TRAIL_KEY",
    "GOVERN_TRAIL_KEY_FILE",
    "GOVERN_SIGNING_KEY",
    "GOVERN_SIGNING_PUBLIC_KEY",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder with the shipped policies; the embedded default, nothing team-mode set."""
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(tmp_path / "policies"))
    for name in TEAM_ENV:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def allow_unauthenticated(project: Path, tiers: list[str]) -> Path:
    path = project / "policies" / "approvals.yaml"
    data = yaml.safe_load(path.read_text())
    data["authentication"]["unauthenticated_server"]["risk_tiers"] = tiers
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def plain_server():
    """An HTTP server answering as a plain ``mlflow server``: /health 200, users/get 404; its Date settable."""
    state = {"date_offset_s": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            status = 200 if self.path.startswith("/health") else 404
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def date_time_string(self, timestamp=None):
            return email.utils.formatdate(time.time() + state["date_offset_s"], usegmt=True)

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def problems(findings):
    return [(f.check, f.line, f.fix) for f in findings if not f.ok]


def test_the_embedded_default_passes_at_once_and_writes_nothing(project):
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    started = time.perf_counter()
    findings = preflight.check_all(["medium", "high"])
    elapsed = time.perf_counter() - started
    assert problems(findings) == []
    assert [f.check for f in findings] == ["tracking", "trail", "trail", "signing", "tiers"]
    assert findings[4].line.startswith("sft medium (2 approvals), rm medium (2 approvals), ")
    assert findings[2].line == f"embedded trail signing key {project / 'audit.key'} (created on first use)"
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before
    assert elapsed < 2  # no network, no subprocess but git


def test_a_team_setup_missing_everything_lists_every_problem_at_once(project, monkeypatch):
    uri = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    found = problems(preflight.check_all(["medium"]))
    assert [check for check, _, _ in found] == ["tracking", "trail", "signing"]
    assert found[0][1] == f"MLflow at {uri} does not answer (ConnectionError)"
    assert found[0][2] == "start the server or fix MLFLOW_TRACKING_URI"
    assert found[1][1].startswith(f"GOVERN_AUDIT_URL is not set: with MLflow at {uri} the audit trail must be")
    assert found[2][1].startswith(f"GOVERN_SIGNING_KEY is not set: with MLflow at {uri} the signing key must be")


def test_a_server_without_authentication_is_refused_saying_what_it_is(project, monkeypatch, plain_server):
    uri, _ = plain_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    policy = project / "policies" / "approvals.yaml"
    found = problems(preflight.check_server(uri, ["medium"]))
    assert found == [
        (
            "identity",
            f"MLflow at {uri} authenticates nobody (no basic-auth app): the server needs no credentials, it is this "
            f"project that wants an authenticated identity for risk tier medium ({policy}: "
            "authentication.unauthenticated_server.risk_tiers: []); list a tier there to allow this server for it "
            "(identities then local, unverified), or start the server with `mlflow server --app-name basic-auth`",
            None,
        )
    ]
    # The stages' own identity check says the same, not "needs your credentials"
    with pytest.raises(Exception, match="authenticates nobody .* the server needs no credentials"):
        current_identity()


def test_the_policy_may_allow_a_server_without_authentication_for_some_tiers(project, monkeypatch, plain_server):
    uri, _ = plain_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("GOVERN_USER", "alice")
    policy = allow_unauthenticated(project, ["low"])
    findings = preflight.check_server(uri, ["low"])
    assert problems(findings) == []
    assert findings[-1].line == (
        f"MLflow at {uri} authenticates nobody; {policy} allows that for risk tiers low (identities local, unverified)"
    )
    identity = current_identity()
    assert (identity.user, identity.method) == ("alice", "local-unverified")
    (found,) = problems(preflight.check_server(uri, ["low", "high"]))
    assert "wants an authenticated identity for risk tier high" in found[1]
    assert "authentication.unauthenticated_server.risk_tiers: [low]" in found[1]
    with pytest.raises(Exception, match="for risk tier high"):
        current_identity(risk_tier="high")


def test_a_clock_far_from_the_servers_is_a_problem(project, monkeypatch, plain_server):
    uri, state = plain_server
    state["date_offset_s"] = -600
    clock = next(f for f in preflight.check_server(uri, []) if f.check == "clock")
    assert not clock.ok
    assert clock.line.startswith("this machine's clock is ") and clock.line.endswith(f" s ahead of {uri} (max 60 s)")
    assert clock.fix == "synchronise both clocks (NTP: timedatectl set-ntp true)"
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert preflight.check_clock("x", email.utils.format_datetime(now, usegmt=True), now).ok


def test_a_trail_key_not_listed_is_named_with_the_entry_to_add(project, monkeypatch):
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{project / 'team-audit.db'}")
    key = generate_key()
    monkeypatch.setenv("GOVERN_TRAIL_KEY", base64.b64encode(key.private.private_bytes_raw()).decode())
    (found,) = problems(preflight.check_trail())
    listing = project / "policies" / "trail_keys.yaml"
    assert found == (
        "trail",
        f"the trail signing key {key.key_id} (GOVERN_TRAIL_KEY) is not listed in {listing}",
        f"add id: {key.key_id}, public_key: {key.public_b64}, owner, valid_from there in a reviewed commit",
    )
    data = yaml.safe_load(listing.read_text())
    data["keys"] = [{"id": key.key_id, "public_key": key.public_b64, "owner": "ci", "valid_from": "2020-01-01"}]
    listing.write_text(yaml.safe_dump(data))
    assert problems(preflight.check_trail()) == []  # a local SQLite trail may sign with a listed, unreviewed key


def test_a_trail_key_another_commit_lists_is_a_stale_checkout_told_to_git_pull(project, monkeypatch):
    """The team doc's stale clone: the rotation's listing is on a fetched branch, not in this checkout."""
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{project / 'team-audit.db'}")
    key = generate_key()
    monkeypatch.setenv("GOVERN_TRAIL_KEY", base64.b64encode(key.private.private_bytes_raw()).decode())
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "policies"], check=True)
    subprocess.run([*git, "commit", "-qm", "set-up"], check=True)
    listing = project / "policies" / "trail_keys.yaml"
    data = yaml.safe_load(listing.read_text())
    data["keys"] = [{"id": key.key_id, "public_key": key.public_b64, "owner": "ci", "valid_from": "2020-01-01"}]
    listing.write_text(yaml.safe_dump(data))
    subprocess.run([*git, "checkout", "-qb", "rotation"], check=True)
    subprocess.run([*git, "commit", "-qam", "trail_keys: the new key"], check=True)
    rotation = subprocess.run(["git", "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout
    subprocess.run([*git, "checkout", "-q", "main"], check=True)  # the checkout that has not pulled
    (found,) = problems(preflight.check_trail())
    assert found == (
        "trail",
        f"the trail signing key {key.key_id} (GOVERN_TRAIL_KEY) is a key which this checkout's {listing} does not "
        f"list but commit {rotation[:12]} (rotation) does: this checkout's policy is older than the trail; "
        "`git pull`, then verify again (every action refuses until then)",
        None,
    )


def test_a_trail_key_a_rotation_retired_is_a_problem_before_an_action_refuses_it(project, monkeypatch):
    """The team doc's rotation: a clone whose team.env still names the old key is told at doctor, not at approve."""
    from governance import trail

    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{project / 'team-audit.db'}")
    monkeypatch.setenv("GOVERN_USER", "kim")
    old, new = generate_key(), generate_key()
    listing = project / "policies" / "trail_keys.yaml"
    data = yaml.safe_load(listing.read_text())
    data["keys"] = [
        {"id": k.key_id, "public_key": k.public_b64, "owner": "ci", "valid_from": "2020-01-01"} for k in (old, new)
    ]
    listing.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("GOVERN_TRAIL_KEY", base64.b64encode(old.private.private_bytes_raw()).decode())
    trail.record("approved", actor="kim", role="reviewer", subject=trail.Subject(model="m", version="1"), reason="ok")
    assert problems(preflight.check_trail()) == []
    rotation = trail.rotate_key(actor="kim", reason="yearly", new_key=new)[0]
    assert problems(preflight.check_trail()) == [
        (
            "trail",
            f"the trail signing key {old.key_id} (GOVERN_TRAIL_KEY) was rotated out at #{rotation.seq} "
            f"(new key {new.key_id}); configure the new key (team.env)",
            None,
        )
    ]
    monkeypatch.setenv("GOVERN_TRAIL_KEY", base64.b64encode(new.private.private_bytes_raw()).decode())
    assert problems(preflight.check_trail()) == []


def test_a_shared_trail_that_does_not_answer_or_has_no_key(project, monkeypatch):
    port = closed_port()
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"postgresql://trail:secret@127.0.0.1:{port}/audit")
    found = problems(preflight.check_trail())
    assert found[0] == (
        "trail",
        f"the audit trail database postgresql+psycopg2://trail@127.0.0.1:{port}/audit does not answer "
        "(OperationalError)",
        "start it or fix GOVERN_AUDIT_URL",
    )
    assert found[1][1] == f"the audit trail at postgresql+psycopg2://trail@127.0.0.1:{port}/audit needs a signing key"
    assert all("secret" not in " ".join(filter(None, f)) for f in found)  # the password never shows


def test_a_configured_model_signing_key_must_be_pinned(project, monkeypatch):
    monkeypatch.setenv("GOVERN_SIGNING_KEY", str(project / "nowhere.pem"))
    assert problems([preflight.check_model_signing()]) == [
        ("signing", f"GOVERN_SIGNING_KEY={project / 'nowhere.pem'}: no such key file", None)
    ]
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (project / "key.pem").write_bytes(pem)
    monkeypatch.setenv("GOVERN_SIGNING_KEY", "key.pem")
    (found,) = problems([preflight.check_model_signing()])
    assert found[1].startswith("GOVERN_SIGNING_KEY=key.pem: no pinned public key at ")


def test_the_dvc_remote_is_checked_only_when_one_is_configured(project):
    assert preflight.check_dvc_remote(project).line == "not a DVC checkout; no DVC remote to check"
    (project / ".dvc").mkdir()
    config = "[core]\n    remote = team\n['remote \"team\"']\n    url = {}\n"
    (project / ".dvc" / "config").write_text(config.format("/nonexistent/dvc-store"))
    finding = preflight.check_dvc_remote(project)
    assert (finding.ok, finding.line, finding.fix) == (
        False,
        "DVC remote team: folder /nonexistent/dvc-store does not exist",
        "create or mount it",
    )
    store = project / "store"
    store.mkdir()
    (project / ".dvc" / "config").write_text(config.format(store))
    assert preflight.check_dvc_remote(project).line == f"DVC remote team: folder {store} is writable"
    (project / ".dvc" / "config").write_text("[core]\n    analytics = false\n")
    assert preflight.check_dvc_remote(project).line == "no DVC remote configured"


def test_an_object_store_remote_is_opened_with_dvcs_own_client(project):
    # s3:// without the dvc-s3 plugin installed here: the missing client is the problem, with its install line
    (project / ".dvc").mkdir()
    config = "[core]\n    remote = team\n['remote \"team\"']\n    url = {}\n"
    (project / ".dvc" / "config").write_text(config.format("s3://team-bucket/dvc"))
    finding = preflight.check_dvc_remote(project)
    assert (finding.ok, finding.fix) == (False, "pip install dvc-s3")
    assert finding.line.startswith("DVC remote team (s3://team-bucket/dvc): s3 is supported, but requires 'dvc-s3'")
    # An http remote whose server is down: DVC's client error, in one line, with where to look
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{port.getsockname()[1]}/dvc"
    port.close()
    (project / ".dvc" / "config").write_text(config.format(url))
    finding = preflight.check_dvc_remote(project)
    assert not finding.ok and finding.line.startswith(f"DVC remote team ({url}) "), finding.line
    assert "\n" not in finding.line


def test_govern_doctor_prints_one_line_per_check_and_exits_1_on_problems(project, monkeypatch, capsys):
    assert govern(["doctor"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "all checks passed"
    uri = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert govern(["doctor", "--risk-tier", "high"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"problem tracking   MLflow at {uri} does not answer (ConnectionError); "
        "start the server or fix MLFLOW_TRACKING_URI"
    )
    assert [line.split()[1] for line in lines[:-1]] == ["tracking", "trail", "signing", "tiers", "dvc_remote"]
    assert lines[-1] == "3 problem(s)"


def test_a_root_stage_stops_listing_every_problem_and_writes_nothing(project, monkeypatch, capsys):
    from pipelines import prepare_sft

    raw = project / "raw.jsonl"
    raw.write_text(json.dumps({"id": "a", "prompt": "p", "completion": "c"}) + "\n")
    params = {
        "prepare_sft": {"input": str(raw), "out_dir": "prepared", "eval_fraction": 0.2, "seed": 1},
        "register_sft": {"risk_tier": "medium"},
    }
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    uri = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    assert prepare_sft.main([]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        "prepare_sft: ConfigError: the set-up is not ready, 3 problem(s) (`govern doctor` checks the same):"
    )
    assert [line.split(":", 1)[0].strip() for line in err[1:4]] == ["tracking", "trail", "signing"]
    # Nothing but the stage's OpenLineage START/FAIL record (every stage run writes one, failed or not)
    after = sorted(p.relative_to(project) for p in project.rglob("*") if "openlineage" not in p.parts[-3:])
    assert after == before and not (project / "prepared").exists()


def test_doctor_fails_on_the_local_store_when_the_committed_policy_pins_a_server(project):
    """team.env forgotten: the committed policy names the team's server, the environment the embedded store."""
    path = project / "policies" / "approvals.yaml"
    data = yaml.safe_load(path.read_text())
    data["authentication"]["server"] = "http://mlflow.example.org:5000"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    (finding,) = [f for f in preflight.check_all() if f.check == "tracking"]
    assert not finding.ok
    assert finding.line == (
        f"{path} pins the MLflow server http://mlflow.example.org:5000, but this environment uses the local store "
        f"sqlite:///{project / 'mlflow.db'}"
    )
    assert finding.fix == (
        "use the team's configuration (`set -a; . ./team.env`) or set MLFLOW_TRACKING_URI=http://mlflow.example.org:5000"
    )


def test_a_reproductions_scratch_store_is_not_a_forgotten_team_env(project, monkeypatch):
    """`govern reproduce` re-runs a team's stages on a scratch store of its own: the pins do not stop them there."""
    from e2e_support import commit_reviewed

    path = project / "policies" / "approvals.yaml"
    data = yaml.safe_load(path.read_text())
    data["authentication"]["server"] = "http://mlflow.example.org:5000"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    key = ec.generate_private_key(ec.SECP256R1())
    pinned = project / "policies" / "keys" / "model_signing.pub"
    pinned.parent.mkdir(parents=True)
    pinned.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    commit_reviewed(project)
    scratch = project / "govern-reproduce-x"
    scratch.mkdir()
    monkeypatch.setenv("GOVERN_REPRODUCTION_SCRATCH", str(scratch))
    # A store elsewhere is still the forgotten team.env, whatever the variable says
    found = {f.check: f for f in preflight.check_all()}
    assert not found["tracking"].ok and not found["signing"].ok
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{scratch / 'mlflow.db'}")
    found = {f.check: f for f in preflight.check_all()}
    assert found["tracking"].ok and found["tracking"].line == (
        f"scratch store sqlite:///{scratch / 'mlflow.db'} of `govern reproduce` (GOVERN_REPRODUCTION_SCRATCH)"
    )
    assert found["signing"].ok and found["signing"].line == (
        "not needed: a reproduction's re-run registers and signs nothing"
    )
    # The signer is not excused: registering there with the embedded key is still refused
    from governance.provenance import keys

    with pytest.raises(ConfigError):
        keys.signing_key_path(create=True)


def test_doctor_fails_when_a_key_is_pinned_but_the_environment_would_sign_with_the_embedded_one(project):
    from e2e_support import commit_reviewed

    key = ec.generate_private_key(ec.SECP256R1())
    pinned = project / "policies" / "keys" / "model_signing.pub"
    pinned.parent.mkdir(parents=True)
    pinned.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    commit_reviewed(project)
    finding = preflight.check_model_signing()
    assert not finding.ok
    assert finding.line.startswith(f"{pinned} pins key ")
    assert finding.line.endswith("GOVERN_SIGNING_KEY is not set and the embedded key (none yet) is not the pinned one")
    assert finding.fix == "set GOVERN_SIGNING_KEY to the pinned key's private half (a team: `set -a; . ./team.env`)"
