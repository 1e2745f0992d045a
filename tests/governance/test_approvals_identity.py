"""Who is acting: GOVERN_USER / OS user locally, the server-verified MLflow user against a tracking server.

The full basic-auth flow runs against a real ``mlflow server`` in tests/server;
here a minimal HTTP endpoint stands in for servers that answer differently.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from governance.errors import ConfigError, PermissionDenied, RegistryError
from governance.identity import current_identity, current_user, verify_server_user

REPO = Path(__file__).resolve().parents[2]


def pin_server(tmp_path: Path, monkeypatch, server: str | None, fingerprint: str | None = None) -> Path:
    """The shipped approvals policy pinning ``server`` (and its certificate), in force via GOVERN_POLICY_DIR."""
    policies = tmp_path / "policies"
    policies.mkdir(exist_ok=True)
    data = yaml.safe_load((REPO / "policies" / "approvals.yaml").read_text())
    data["authentication"].update(server=server, tls_sha256_fingerprint=fingerprint)
    path = policies / "approvals.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(policies))
    return path


def _self_signed(tmp_path: Path) -> tuple[Path, Path, str]:
    """A self-signed certificate for 127.0.0.1: (cert file, key file, its SHA-256 fingerprint)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "server.crt", tmp_path / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file, hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@pytest.fixture
def endpoint():
    yield from _endpoint()


@pytest.fixture
def tls_endpoint(tmp_path):
    """The same endpoint over https with a self-signed certificate: (url, answer, fingerprint)."""
    cert_file, key_file, fingerprint = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    for url, answer in _endpoint(context):
        yield url, answer, fingerprint


def _endpoint(context: ssl.SSLContext | None = None):
    """An HTTP(S) server whose answer to users/get each test sets: (status, body)."""
    answer: dict = {"status": 200, "body": {}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            answer["path"] = self.path
            answer["authorization"] = self.headers.get("Authorization")
            body = json.dumps(answer["body"]).encode()
            self.send_response(answer["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if context is not None else "http"
    yield f"{scheme}://127.0.0.1:{server.server_address[1]}", answer
    server.shutdown()
    server.server_close()


def test_local_store_uses_govern_user_then_the_os_user(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("GOVERN_USER", "alice")
    assert current_identity().user == "alice" and current_identity().source == "local"
    monkeypatch.delenv("GOVERN_USER")
    assert current_user() == getpass.getuser()


def test_a_server_needs_credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # not the developer's own ~/.netrc
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.setenv("GOVERN_USER", "alice")  # not an identity against a server
    with pytest.raises(ConfigError) as info:
        current_identity()
    assert str(info.value) == (
        "MLflow at http://mlflow.internal:5000 needs your credentials: set MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD, or add the server's host to ~/.netrc (governance actions are recorded under the "
        "user the server authenticates)"
    )


def test_credentials_from_netrc_as_mlflow_sends_them(endpoint, monkeypatch, tmp_path):
    url, answer = endpoint
    pin_server(tmp_path, monkeypatch, url)
    answer["body"] = {"user": {"id": 3, "username": "bob", "is_admin": False}}
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login bob password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    identity = current_identity()
    assert (identity.user, identity.source) == ("bob", "mlflow-basic-auth")
    assert answer["authorization"] == "Basic Ym9iOnMzY3JldA=="  # bob:s3cret, read from the netrc file


def test_the_server_confirms_the_user(endpoint, monkeypatch, tmp_path):
    url, answer = endpoint
    pin_server(tmp_path, monkeypatch, url)
    answer["body"] = {"user": {"id": 3, "username": "bob", "is_admin": False}}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret")
    monkeypatch.setenv("GOVERN_USER", "alice")
    identity = current_identity()
    assert (identity.user, identity.source, identity.server) == ("bob", "mlflow-basic-auth", url)
    assert answer["path"] == "/api/2.0/mlflow/users/get?username=bob"
    assert answer["authorization"] == "Basic Ym9iOnMzY3JldA=="  # bob:s3cret


def test_server_answers_become_one_line_errors(endpoint):
    url, answer = endpoint
    answer["status"] = 401
    with pytest.raises(PermissionDenied) as info:
        verify_server_user(url, "bob", "wrong")
    assert str(info.value) == (
        f"MLflow at {url} rejected the credentials of 'bob' (MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD); "
        "check the password"
    )
    answer["status"] = 404
    with pytest.raises(ConfigError) as info:
        verify_server_user(url, "bob", "pw")
    assert str(info.value) == (
        f"MLflow at {url} authenticates nobody (no basic-auth app): the server needs no credentials, it is "
        "this project that wants an authenticated identity for every risk tier (the approvals policy: "
        "authentication.unauthenticated_server.risk_tiers: []); list a tier there to allow this server for it "
        "(identities then local, unverified), or start the server with `mlflow server --app-name basic-auth`"
    )
    answer.update(status=200, body={"user": {"username": "mallory"}})
    with pytest.raises(PermissionDenied, match="confirmed user 'mallory', not 'bob'"):
        verify_server_user(url, "bob", "pw")
    with pytest.raises(RegistryError) as info:
        verify_server_user("http://127.0.0.1:9", "bob", "pw")
    assert str(info.value) == "cannot reach http://127.0.0.1:9 to verify user 'bob' (ConnectionError)"


# --------------------------------------------------------------------------- the pinned server (#31)


def test_attack_a_server_the_policy_does_not_name_is_refused_before_credentials_are_sent(
    endpoint, monkeypatch, tmp_path
):
    """As the attacker did it: a basic-auth server started on the project's own store, users created at will."""
    url, answer = endpoint
    answer["body"] = {"user": {"username": "alice"}}
    policy = pin_server(tmp_path, monkeypatch, "https://mlflow.internal:5000", "ab" * 32)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "made-up")
    with pytest.raises(PermissionDenied) as info:
        current_identity()
    assert str(info.value) == (
        f"MLflow at {url} is not the authenticating server {policy} pins "
        "(authentication.server: https://mlflow.internal:5000); an identity from any other server is refused"
    )
    assert "path" not in answer  # nothing was sent to it
    pin_server(tmp_path, monkeypatch, None)
    with pytest.raises(PermissionDenied) as info:
        current_identity()
    assert str(info.value) == (
        f"MLflow at {url} is not an authenticating server: {policy} pins none "
        "(authentication.server: null); name the server there before acting against it"
    )


def test_the_pinned_server_is_recorded_with_the_identity(endpoint, monkeypatch, tmp_path):
    url, answer = endpoint
    answer["body"] = {"user": {"username": "bob"}}
    pin_server(tmp_path, monkeypatch, url.replace("http://", "HTTP://") + "/")  # spelt otherwise, same server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret")
    identity = current_identity()
    assert identity.details() == {"identity": "mlflow-basic-auth", "identity_server": url}


def test_https_server_must_present_the_pinned_certificate(tls_endpoint, monkeypatch, tmp_path):
    url, answer, fingerprint = tls_endpoint
    answer["body"] = {"user": {"username": "bob"}}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret")
    # The right certificate (written as openssl prints it): a self-signed one is fine, the pin replaces the CA
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    pin_server(tmp_path, monkeypatch, url, colons)
    identity = current_identity()
    assert identity.details() == {
        "identity": "mlflow-basic-auth",
        "identity_server": url,
        "identity_server_tls_sha256": fingerprint,
    }
    # Another certificate on the pinned URL: refused, and the password never leaves
    answer.clear()
    answer.update(status=200, body={"user": {"username": "bob"}})
    policy = pin_server(tmp_path, monkeypatch, url, "cd" * 32)
    with pytest.raises(PermissionDenied) as info:
        current_identity()
    assert str(info.value) == (
        f"MLflow at {url}: its TLS certificate does not match the SHA-256 fingerprint {policy} pins "
        f"(authentication.tls_sha256_fingerprint: {'cd' * 8}…); no credentials were sent"
    )
    assert "authorization" not in answer


def test_an_https_pin_needs_its_certificate(tmp_path, monkeypatch):
    from governance.approvals import load_approvals_policy

    path = pin_server(tmp_path, monkeypatch, "https://mlflow.internal")
    with pytest.raises(ConfigError) as info:
        load_approvals_policy()
    assert str(info.value) == (
        f"{path}: authentication: Value error, authentication: https://mlflow.internal is https; pin its "
        "certificate in tls_sha256_fingerprint"
    )
