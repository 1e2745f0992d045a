"""Is this set-up ready? Every team-mode requirement checked at once, before anything runs.

Used by ``govern doctor`` and by the root stages of the pipeline (those with
no upstream stage), so a misconfigured team set-up stops in the first stage
with every problem listed, one line each, instead of one per stage after
training. Checks:

* ``tracking``: the MLflow tracking server answers (skipped for the local store);
* ``identity``: the server authenticates, the credentials work and the server
  is the one ``policies/approvals.yaml`` pins, or the policy allows a server
  without authentication for the run's risk tiers;
* ``clock``: the server's HTTP ``Date`` against the local clock;
* ``trail``: ``GOVERN_AUDIT_URL`` set where required, the database answers,
  its signing key configured and listed in ``policies/trail_keys.yaml``;
* ``signing``: the model-signing key configured and pinned where required;
* ``dvc_remote`` (doctor only): the default DVC remote, when one is configured;
* ``environment`` (``govern doctor --environment``): installed packages against ``requirements.lock``, and
  every installed file against its package's ``RECORD`` (:mod:`governance.environment`; seconds).

``govern reproduce`` re-runs a version's stages against a scratch store of its
own (never the team's server: nothing of the re-run is recorded there) and
names that folder in ``GOVERN_REPRODUCTION_SCRATCH``: a local store inside it
is not the forgotten ``team.env`` the tracking check looks for, and a run that
registers nothing needs no signing key. The variable excuses only a store in
the folder it names, and the signer still refuses an unpinned key.

On the embedded default (SQLite MLflow, local trail, embedded keys) nothing
here touches the network or writes a file: a key not yet created is reported
as "created on first use".

Trust boundary: this module only *reports*; each action still enforces its
own requirement where it acts (identity, trail writer, signer). A passing
check is no permission; a failing one is a refusal before work is wasted.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from governance.errors import ConfigError, GovernanceError

if TYPE_CHECKING:
    from governance.policy.approvals import ApprovalsPolicy

#: The clock difference that counts as a problem: event times in the trail and the registry are compared
#: across machines (approval windows, expiries), and NTP keeps honest machines well within a second.
MAX_CLOCK_SKEW_S = 60
#: How long one network check may take: a server that needs longer is a problem worth reporting.
NETWORK_TIMEOUT_S = 5
#: Set by ``govern reproduce`` for the stages it re-runs: the folder of their scratch MLflow store and trail.
REPRODUCTION_SCRATCH_ENV = "GOVERN_REPRODUCTION_SCRATCH"
#: How long the server may take to check a password: basic-auth hashes it on purpose slowly (a CPU-bound
#: KDF), and a busy server's one worker queues it behind other requests (5 s timed out under load).
IDENTITY_TIMEOUT_S = 30


@dataclass(frozen=True)
class Finding:
    """One check's result: ``problem`` findings carry the fix."""

    check: str
    ok: bool
    line: str
    fix: str | None = None

    def render(self) -> str:
        status = "ok     " if self.ok else "problem"
        return f"{status} {self.check:<10} {self.line}" + ("" if self.ok or not self.fix else f"; {self.fix}")


def _ok(check: str, line: str) -> Finding:
    return Finding(check, True, line)


def _problem(check: str, line: str, fix: str | None = None) -> Finding:
    return Finding(check, False, line, fix)


def _tracking_uri() -> str:
    from governance import registry

    return registry.tracking_uri()


def _approvals_policy():
    from governance.policy import load_policy_file
    from governance.policy.approvals import ApprovalsPolicy

    path = _approvals_policy_path()
    return load_policy_file(path, ApprovalsPolicy), path


def check_server(uri: str, risk_tiers: list[str]) -> list[Finding]:
    """Reachability, identity and clock of the tracking server at ``uri`` (one request each, no retries)."""
    import requests

    from governance.identity import (
        PASSWORD_ENV,
        USERNAME_ENV,
        server_authenticates,
        server_credentials,
        unauthenticated_server_refusal,
        verify_server_user,
    )

    findings: list[Finding] = []
    try:
        # The certificate as MLflow's client checks it: a private CA's or self-signed one named by
        # MLFLOW_TRACKING_SERVER_CERT_PATH (the identity check below pins the fingerprint on top)
        verify = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or True
        response = requests.get(uri.rstrip("/") + "/health", timeout=NETWORK_TIMEOUT_S, verify=verify)
    except requests.RequestException as exc:
        return [
            _problem(
                "tracking",
                f"MLflow at {uri} does not answer ({exc.__class__.__name__})",
                "start the server or fix MLFLOW_TRACKING_URI",
            )
        ]
    findings.append(_ok("tracking", f"MLflow at {uri} answers (HTTP {response.status_code})"))
    findings.append(check_clock(uri, response.headers.get("Date")))
    try:
        policy, policy_path = _approvals_policy()
    except GovernanceError as exc:
        return [*findings, _problem("identity", str(exc))]
    pin = policy.authentication
    authenticates = server_authenticates(uri, pin, timeout=NETWORK_TIMEOUT_S)
    if authenticates is False:
        refused = [tier for tier in risk_tiers if not pin.unauthenticated_server.allows(tier)]
        if refused or not pin.unauthenticated_server.risk_tiers:
            tier = refused[0] if len(refused) == 1 else None
            return [*findings, _problem("identity", unauthenticated_server_refusal(uri, pin, str(policy_path), tier))]
        return [
            *findings,
            _ok(
                "identity",
                f"MLflow at {uri} authenticates nobody; {policy_path} allows that for risk tiers "
                f"{', '.join(risk_tiers or pin.unauthenticated_server.risk_tiers)} (identities local, unverified)",
            ),
        ]
    username, password = server_credentials(uri)
    if not username or not password:
        return [
            *findings,
            _problem(
                "identity",
                f"MLflow at {uri} needs your credentials",
                f"set {USERNAME_ENV} and {PASSWORD_ENV} (a service account for a pipeline run), "
                f"or add `machine {urlparse(uri).hostname} login USER password …` to ~/.netrc (chmod 600)",
            ),
        ]
    try:
        identity = verify_server_user(
            uri, username, password, timeout=IDENTITY_TIMEOUT_S, pin=pin, policy_source=str(policy_path)
        )
    except GovernanceError as exc:
        return [*findings, _problem("identity", str(exc))]
    findings.append(_ok("identity", f"acting as {identity.describe()}"))
    return [*findings, check_permissions(uri, identity.user, (username, password), policy)]


#: What each govern action writes in MLflow, and the registered-model permission that needs. Moving or removing
#: an alias (promote, canary, rollback, withdraw) needs MANAGE; tags (approve, reject) need EDIT.
_ACTION_PERMISSION = {
    "promote": "MANAGE", "canary": "MANAGE", "rollback": "MANAGE", "withdraw": "MANAGE",
    "approve": "EDIT", "reject": "EDIT",
}  # fmt: skip
_PERMISSION_ORDER = ("NO_PERMISSIONS", "READ", "USE", "EDIT", "MANAGE")


def check_permissions(uri: str, user: str, credentials: tuple[str, str], policy: ApprovalsPolicy) -> Finding:
    """Whether the acting user holds, on every registered model, what their roles' actions need in MLflow.

    Asked of the server (``/api/3.0/mlflow/users/current/permissions``: the
    user's own grants) before an incident needs them: a release manager with
    EDIT learns at ``govern withdraw`` that removing an alias needs MANAGE.
    """
    import requests

    from governance.identity import _session

    needed = {
        action: permission
        for action, permission in _ACTION_PERMISSION.items()
        if policy.acting_role(user, action) is not None
    }
    if not needed:
        return _ok("permissions", f"{user}'s roles move no alias and write no tag in MLflow")
    want = max(needed.values(), key=_PERMISSION_ORDER.index)
    try:
        pinned = policy.authentication.tls_sha256_fingerprint
        response = _session(pinned).get(
            uri.rstrip("/") + "/api/3.0/mlflow/users/current/permissions",
            auth=credentials,
            timeout=NETWORK_TIMEOUT_S,
            # The pin replaces the CA check (a self-signed certificate is pinned as well as a CA's)
            **({"verify": False} if pinned is not None else {}),
        )
        response.raise_for_status()
        granted = response.json()
    except (requests.RequestException, ValueError) as exc:
        return _problem("permissions", f"MLflow at {uri} did not list {user}'s permissions ({exc.__class__.__name__})")
    if granted.get("is_admin"):
        return _ok("permissions", f"{user} is an MLflow admin (every permission)")
    held = [
        str(row.get("permission", "NO_PERMISSIONS")).upper()
        for row in granted.get("permissions", [])
        if row.get("resource_type") == "registered_model" and row.get("resource_pattern") == "*"
    ]
    best = max(held, key=lambda p: _PERMISSION_ORDER.index(p) if p in _PERMISSION_ORDER else 0, default="READ")
    if _PERMISSION_ORDER.index(best if best in _PERMISSION_ORDER else "READ") >= _PERMISSION_ORDER.index(want):
        return _ok("permissions", f"{user} holds {best} on every registered model ({', '.join(sorted(needed))})")
    actions = ", ".join(a for a, p in sorted(needed.items()) if p == want)
    return _problem(
        "permissions",
        f"{user} holds {best} on the registered models, but {actions} need{'s' if ',' not in actions else ''} {want}",
        f"an MLflow admin grants it: curl -u admin:$ADMIN_PW -X POST {uri.rstrip('/')}"
        f"/api/3.0/mlflow/users/permissions/grant -H 'Content-Type: application/json' -d '{{\"username\": "
        f'"{user}", "resource_type": "registered_model", "resource_id": "*", "permission": '
        f'"{want}"}}\' (a user who holds a grant already: revoke it first, /users/permissions/revoke)',
    )


def _approvals_policy_path() -> Path:
    return Path(os.environ.get("GOVERN_POLICY_DIR") or "policies") / "approvals.yaml"


def check_tiers() -> Finding:
    """The risk tier each method registers with, as the committed approvals policy decides it (not params)."""
    if not _approvals_policy_path().is_file():  # a folder without policies registers nothing: nothing to show
        return _ok("tiers", f"no approvals policy at {_approvals_policy_path()}: nothing registers here")
    try:
        policy, policy_path = _approvals_policy()
    except GovernanceError as exc:
        return _problem("tiers", str(exc))
    rule = policy.rules.min_approvers
    tiers = ", ".join(
        f"{method} {tier} ({rule.by_risk_tier[tier]} approval{'s' if rule.by_risk_tier[tier] > 1 else ''})"
        for method, tier in rule.min_tier_by_method.items()
    )
    return _ok("tiers", f"{tiers or 'none listed'}; from {policy_path} (params may raise a tier, never lower it)")


def reproduction_scratch(uri: str) -> Path | None:
    """The scratch folder ``govern reproduce`` named (:data:`REPRODUCTION_SCRATCH_ENV`) when the local store ``uri``
    lies inside it; else None (any other store, or no such variable)."""
    folder = os.environ.get(REPRODUCTION_SCRATCH_ENV)
    if not folder or not uri.startswith("sqlite:///"):
        return None
    store = Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).resolve()
    scratch = Path(folder).resolve()
    return scratch if store.is_relative_to(scratch) else None


def check_local_store(uri: str) -> Finding:
    """The embedded store is fine, unless the committed approvals policy pins a server (forgotten team.env)."""
    if not _approvals_policy_path().is_file():
        return _ok("tracking", f"local MLflow store {uri}")
    try:
        policy, policy_path = _approvals_policy()
    except GovernanceError as exc:
        return _problem("tracking", str(exc))
    server = policy.authentication.server
    if server:
        return _problem(
            "tracking",
            f"{policy_path} pins the MLflow server {server}, but this environment uses the local store {uri}",
            f"use the team's configuration (`set -a; . ./team.env`) or set MLFLOW_TRACKING_URI={server}",
        )
    return _ok("tracking", f"local MLflow store {uri}")


def check_clock(what: str, date_header: str | None, now: dt.datetime | None = None) -> Finding:
    """The server's HTTP ``Date`` against the local clock (within :data:`MAX_CLOCK_SKEW_S`)."""
    if not date_header:
        return _ok("clock", f"{what} sends no Date header; clock not compared")
    try:
        theirs = email.utils.parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return _ok("clock", f"{what} sends an unreadable Date header; clock not compared")
    if theirs.tzinfo is None:
        theirs = theirs.replace(tzinfo=dt.UTC)
    skew = ((now or dt.datetime.now(dt.UTC)) - theirs).total_seconds()
    if abs(skew) > MAX_CLOCK_SKEW_S:
        side = "ahead of" if skew > 0 else "behind"
        return _problem(
            "clock",
            f"this machine's clock is {abs(skew):.0f} s {side} {what} (max {MAX_CLOCK_SKEW_S} s)",
            "synchronise both clocks (NTP: timedatectl set-ntp true)",
        )
    return _ok("clock", f"within {MAX_CLOCK_SKEW_S} s of {what} ({skew:+.0f} s)")


def check_trail() -> list[Finding]:
    """The audit trail's location, database and signing key (listed in ``policies/trail_keys.yaml``)."""
    from governance.trail import signing
    from governance.trail.location import KEY_ENV, KEY_FILE_ENV, audit_url, redacted, sqlite_path, trail_files

    try:
        url = audit_url()
    except ConfigError as exc:
        return [_problem("trail", str(exc))]
    shown = redacted(url)
    findings: list[Finding] = []
    database = sqlite_path(url)
    if database is not None:
        findings.append(_ok("trail", f"audit trail {shown} (local file)"))
    else:
        findings.append(_check_database(url, shown))
    files = trail_files(url)
    if not files.key_configured:
        if files.default_key is None:
            return [
                *findings,
                _problem(
                    "trail",
                    f"the audit trail at {shown} needs a signing key",
                    f"set {KEY_FILE_ENV} (openssl genpkey -algorithm ed25519 -out trail.key) or {KEY_ENV}, "
                    f"and list its public half in {files.trail_keys_policy} (`govern audit key` prints the entry)",
                ),
            ]
        state = "present" if files.default_key.is_file() else "created on first use"
        return [*findings, _ok("trail", f"embedded trail signing key {files.default_key} ({state})")]
    try:
        key = signing.load_signing_key(files, shown)
        trust, why_not = signing.load_keyring(files).check(key.key_id, dt.datetime.now(dt.UTC).isoformat())
    except GovernanceError as exc:
        return [*findings, _problem("trail", str(exc))]
    held = KEY_ENV if os.environ.get(KEY_ENV) else KEY_FILE_ENV
    if trust is None:
        keyring = signing.load_keyring(files)
        # A key another commit lists (a rotation this checkout has not pulled) needs `git pull`, not a new listing
        stale = signing.stale_listing(keyring, key.key_id)
        if stale is not None:
            return [*findings, _problem("trail", f"the trail signing key {key.key_id} ({held}) is a key {stale}")]
        return [
            *findings,
            _problem(
                "trail",
                f"the trail signing key {key.key_id} ({held}) is not listed in {files.trail_keys_policy}"
                + (f" ({why_not})" if why_not else ""),
                f"add id: {key.key_id}, public_key: {key.public_b64}, owner, valid_from there in a reviewed commit",
            ),
        ]
    rotated_out = _rotated_out(url, key.key_id)
    if rotated_out is not None:
        return [*findings, _problem("trail", f"the trail signing key {key.key_id} ({held}) {rotated_out}")]
    return [*findings, _ok("trail", f"trail signing key {key.key_id} ({held}): {trust}")]


def _rotated_out(url: str, key_id: str) -> str | None:
    """How a recorded rotation retired ``key_id``, or None: every append refuses a retired key, so doctor says so
    before an action does (a clone whose team.env still names the old key passed doctor, then could not act)."""
    from governance import trail

    try:
        rotations = trail.events(event_types=["key_rotated"], url=url)
    except GovernanceError:  # an unreadable trail is the database check's finding
        return None
    for rotation in rotations:
        if rotation.key_id == key_id:
            new = rotation.details.get("new_key_id", "")
            return f"was rotated out at #{rotation.seq} (new key {new}); configure the new key (team.env)"
    return None


def _check_database(url: str, shown: str) -> Finding:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    connect_args = {"connect_timeout": NETWORK_TIMEOUT_S} if url.startswith("postgres") else {}
    try:
        engine = create_engine(url, connect_args=connect_args)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        return _problem("trail", f"GOVERN_AUDIT_URL={shown}: not a usable database URL ({exc.__class__.__name__})")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return _problem(
            "trail",
            f"the audit trail database {shown} does not answer ({exc.__class__.__name__})",
            "start it or fix GOVERN_AUDIT_URL",
        )
    finally:
        engine.dispose()
    return _ok("trail", f"audit trail database {shown} answers")


def check_model_signing() -> Finding:
    """The model-signing key: configured and pinned where required (see :mod:`governance.provenance.keys`)."""
    from governance.provenance import keys

    configured = os.environ.get(keys.KEY_ENV)
    try:
        if configured:
            path = keys.signing_key_path(create=True)  # a configured key is only checked against the pin
            trusted = keys.trusted_public_key()
            return _ok("signing", f"model-signing key {path}; verifying with {trusted.label()}")
        embedded = keys.signing_key_path(create=False)  # a server set-up has no "beside the store"
        pinned = keys.pinned_public_key_path()
        if pinned.is_file():
            trusted = keys.trusted_public_key()
            theirs = keys.fingerprint(keys.load_public_key(pinned))
            ours = keys.fingerprint(keys.load_private_key(embedded).public_key()) if embedded.is_file() else None
            if ours != theirs:
                return _problem(
                    "signing",
                    f"{pinned} pins key {theirs[:16]}, but {keys.KEY_ENV} is not set and the embedded key "
                    f"({ours[:16] if ours else 'none yet'}) is not the pinned one",
                    f"set {keys.KEY_ENV} to the pinned key's private half (a team: `set -a; . ./team.env`)",
                )
            return _ok("signing", f"embedded model-signing key; verifying with {trusted.label()}")
        return _ok("signing", "embedded model-signing key beside the local store (not pinned)")
    except GovernanceError as exc:
        return _problem("signing", str(exc))


def check_dvc_remote(root: Path = Path(".")) -> Finding:
    """The default DVC remote, when one is configured: a local or directory remote must exist."""
    if not (root / ".dvc").is_dir():
        return _ok("dvc_remote", "not a DVC checkout; no DVC remote to check")
    try:
        name = _dvc(root, "remote", "default")
    except (OSError, subprocess.SubprocessError) as exc:
        return _problem("dvc_remote", f"cannot ask DVC for its default remote ({exc.__class__.__name__})")
    if not name:
        return _ok("dvc_remote", "no DVC remote configured")
    url = _dvc(root, "config", f"remote.{name}.url")
    if "://" in url and not url.startswith("file://"):
        return _check_remote_store(root, name, url)
    folder = Path(url.removeprefix("file://"))
    folder = folder if folder.is_absolute() else (root / ".dvc" / folder)
    if not folder.is_dir():
        return _problem("dvc_remote", f"DVC remote {name}: folder {folder} does not exist", "create or mount it")
    if not os.access(folder, os.W_OK):
        return _problem("dvc_remote", f"DVC remote {name}: folder {folder} is not writable", "fix its permissions")
    return _ok("dvc_remote", f"DVC remote {name}: folder {folder} is writable")


def _check_remote_store(root: Path, name: str, url: str) -> Finding:
    """An object-store or SSH remote (s3://, gs://, ssh://, ...): DVC opens it with its configured credentials."""
    scheme = url.split("://", 1)[0]
    try:
        from dvc.config import Config
        from dvc.fs import get_cloud_fs

        # The repo's config with .dvc/config.local merged: credentials stay out of git, as DVC keeps them
        fs_class, fs_config, fs_path = get_cloud_fs(Config(dvc_dir=str(root / ".dvc")), name=name)
        found = fs_class(**fs_config).exists(fs_path)
    except ImportError as exc:  # the plugin for the scheme (dvc-s3, dvc-ssh...) is not installed
        return _problem("dvc_remote", f"DVC remote {name} ({url}): {exc}", f"pip install dvc-{scheme}")
    except Exception as exc:  # any client error (credentials, DNS, permission) is the finding, in one line
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        return _problem(
            "dvc_remote",
            f"DVC remote {name} ({url}) cannot be opened ({exc.__class__.__name__}: {first})",
            f"check its credentials (dvc remote modify --local {name} ...) and the endpoint",
        )
    if not found:
        return _problem("dvc_remote", f"DVC remote {name} ({url}) does not exist", "create the bucket or folder")
    return _ok("dvc_remote", f"DVC remote {name} ({url}) answers")


def _dvc(root: Path, *args: str) -> str:
    result = subprocess.run(["dvc", *args], cwd=root, capture_output=True, text=True, timeout=60, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def check_environment(root: Path = Path(".")) -> list[Finding]:
    """The installed packages against the lock's pins, and their files against their packages' records."""
    from governance.environment import environment_differences, installed_file_differences

    rebuild = "rebuild the environment: rm -rf .venv && make .venv/bin/.installed"
    lock = root / "requirements.lock"
    if not lock.is_file():
        findings = [_problem("environment", f"{lock}: not found", "run from the project's checkout")]
    elif versions := environment_differences(lock):
        shown = ", ".join(versions[:3])
        findings = [_problem("environment", f"{len(versions)} package(s) differ from {lock}: {shown}", rebuild)]
    else:
        findings = [_ok("environment", f"every package of {lock} installed at its pinned version")]
    files = installed_file_differences()
    if files.ok:
        line = f"{files.files} files of {files.distributions} packages match their RECORD; no stray start-up hook"
        return [*findings, _ok("environment", line)]
    return findings + [_problem("environment", line, rebuild) for line in files.lines()]


def check_all(
    risk_tiers: list[str] | None = None, *, dvc_remote: bool = False, environment: bool = False
) -> list[Finding]:
    """Every check, in order; ``risk_tiers`` are the tiers this run registers (for a server without auth)."""
    from governance import registry

    tiers = sorted(set(risk_tiers or []))
    uri = _tracking_uri()
    scratch = reproduction_scratch(uri)
    if scratch is not None:
        findings = [_ok("tracking", f"scratch store {uri} of `govern reproduce` ({REPRODUCTION_SCRATCH_ENV})")]
    elif registry.is_local_store(uri):
        findings = [check_local_store(uri)]
    else:
        findings = check_server(uri, tiers)
    findings += check_trail()
    if scratch is not None:
        findings.append(_ok("signing", "not needed: a reproduction's re-run registers and signs nothing"))
    else:
        findings.append(check_model_signing())
    findings.append(check_tiers())
    if dvc_remote:
        findings.append(check_dvc_remote())
    if environment:
        findings += check_environment()
    return findings


def require_ready(risk_tiers: list[str] | None = None) -> list[Finding]:
    """Raise one :class:`ConfigError` listing every problem (one line each), or return the findings."""
    findings = check_all(risk_tiers)
    problems = [f for f in findings if not f.ok]
    if problems:
        lines = "\n".join(f"  {p.check}: {p.line}" + (f"; {p.fix}" if p.fix else "") for p in problems)
        raise ConfigError(
            f"the set-up is not ready, {len(problems)} problem(s) (`govern doctor` checks the same):\n{lines}"
        )
    return findings
