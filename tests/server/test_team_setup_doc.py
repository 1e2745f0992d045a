"""``docs/how-to/team-setup.md`` runs as written: every block, in page order, against real services.

    python -m pytest -q tests/server/test_team_setup_doc.py                       # default: every block is walked
    python -m pytest -q -s -m server_slow tests/server/test_team_setup_doc.py     # the walk itself (about 7 minutes)

The page's own commands start the ``mlflow server`` (basic-auth, PostgreSQL
on 127.0.0.1, later a second one over TLS), create the five accounts and
their grants, make the keys, the team's commit (the ``high`` SFT tier chosen
up front), train the SFT policy and the reward model as the service account
and ``dvc push --with-deps``, approve and promote, pull, verify and report in
a reviewer's clone with its own environment and account; then day two: a
withdraw by the release manager, a reviewer added by an approved policy
change, the reward model's tier raised by another (its approved version then
needs a third approval before it is promoted), the trail key
rotated with a stale clone's diagnosis, and the server moved behind TLS with
its certificate pinned. After the walk an impostor TLS endpoint (another
certificate) at the pinned address is refused before a password is sent.
The default run checks without any service that every block of the page is
walked (:func:`test_every_block_of_the_page_is_walked`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from doc_walk import PAGE, PLACEHOLDERS, Block, Walk, page_blocks
from e2e_support import pipeline_env

from tests.server.server_support import ADMIN_DSN, admin_connection, free_port

#: What the page must walk through (the issue's list); each must be in a block that runs.
MUST_RUN = (
    "mkdir -p /srv/",
    "createdb ",
    "mlflow server --app-name basic-auth",
    "grant rel-dee MANAGE",
    "permissions/revoke",
    "sft: high",
    "govern audit key --owner",
    "git push",
    "dvc repro register_sft register_rm",
    "dvc push --with-deps register_sft",
    "govern approve",
    "govern promote",
    "make .venv/bin/.installed",
    "dvc pull --with-deps register_sft",
    "govern verify",
    "govern report",
    "govern reproduce",
    "govern withdraw",
    "create_user rev-eve",
    "govern policy-change",
    "rm: high",
    "govern show govllm-rm 1",
    "govern promote govllm-rm 1",
    "govern audit rotate-key",
    "git pull",
    "--ssl-certfile",
    "tls_sha256_fingerprint: <fingerprint of",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
)


def test_every_block_of_the_page_is_walked():
    """Every fenced block has a way to run (or a stated reason not to), so the page cannot drift from the test."""
    blocks = page_blocks()
    kinds = {}
    for block in blocks:
        kinds.setdefault(block.kind, []).append(block)
        where = f"docs/how-to/team-setup.md:{block.line}"
        assert block.kind != "illustration" or block.lang == "", f"{where}: a {block.lang} block the walk cannot run"
        if block.kind == "skip":
            assert block.title.startswith("not run: "), f"{where}: say why it is not run"
        if block.kind == "edit":
            assert block.lang == "yaml", f"{where}: only YAML is merged"
    assert len(kinds["skip"]) == 1, [b.line for b in kinds["skip"]]  # the S3 remote: nothing to reach here
    walked = "\n".join(b.body for b in blocks if b.kind in ("run", "background", "file", "edit"))
    for needed in MUST_RUN:
        assert needed in walked, f"docs/how-to/team-setup.md walks no {needed!r}"
    # The placeholders the page's table names are the test's, and every <...> of a walked block is one of them
    text = PAGE.read_text()
    for page_name, _ in PLACEHOLDERS:
        assert f"`{page_name}`" in text or page_name.startswith(("postgresql", "-h ", "--host")), page_name
    leftover = {m for b in blocks if b.kind != "skip" for m in re.findall(r"<[a-z][^<>\n]*>", b.body)}
    known = {"<admin password>"}
    assert {m for m in leftover if not m.startswith(("<password of ", "<fingerprint of "))} <= known, leftover


def test_block_titles_read_as_the_page_says():
    blocks = {b.line: b for b in page_blocks()}
    (trainer,) = [b for b in blocks.values() if "dvc repro register_sft" in b.body]
    assert trainer.users == ("svc-trainer",) and trainer.kind == "run"
    (early,) = [b for b in blocks.values() if b.exits and "govern promote govllm-sft" in b.body]
    assert early.users == ("rel-dee",) and early.shows == ("approval.min_approvers",)
    (raised,) = [b for b in blocks.values() if b.exits and "govern promote govllm-rm" in b.body]
    assert raised.users == ("rel-dee",) and "approval.min_approvers" in raised.shows
    (reproduce,) = [b for b in blocks.values() if "govern reproduce" in b.body]
    assert reproduce.slow
    servers = [b for b in blocks.values() if b.kind == "background"]
    assert len(servers) == 2 and "--ssl-certfile" in servers[1].body


# --------------------------------------------------------------------------- the walk, against real services


@pytest.fixture
def walk(postgres, tmp_path):
    from urllib.parse import urlsplit

    dsn = urlsplit(ADMIN_DSN)
    suffix = os.urandom(4).hex()
    root = tmp_path
    (root / "home").mkdir()
    bare = root / "git/governed-post-training.git"
    bare.parent.mkdir()
    repo = Path(__file__).resolve().parents[2]
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "push", "-q", str(bare), "HEAD:main"], cwd=repo, check=True, capture_output=True)
    env = pipeline_env(root)
    env.pop("GOVERN_USER", None)  # against a server, who acts is who the server authenticates
    env.update(
        HOME=str(root / "home"),
        XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"),
        PGPORT=str(dsn.port or 5432),
        GIT_AUTHOR_NAME="doc walk",
        GIT_AUTHOR_EMAIL="walk@localhost",
        GIT_COMMITTER_NAME="doc walk",
        GIT_COMMITTER_EMAIL="walk@localhost",
    )
    w = Walk(
        root=root,
        pg_host=dsn.hostname or "127.0.0.1",
        pg_port=dsn.port or 5432,
        databases={"mlflow_registry": f"mlflow_registry_{suffix}", "govern_audit": f"govern_audit_{suffix}"},
        ports={5000: free_port(), 5443: free_port()},
        env=env,
    )
    (root / "shell.state.cwd").write_text(str(root / "home"))
    try:
        yield w
    finally:
        w.stop()
        conn = admin_connection()
        with conn.cursor() as cursor:
            for name in w.databases.values():
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()
        print("\n" + "\n".join(w.log))  # noqa: T201 - each block's time, shown with -s


@pytest.fixture
def opted_in(request):
    # The walk trains a whole chain against a server (about 7 minutes on 2 cores): opt-in, so the default run
    # stays under its 20 minutes; the default run checks that every block of the page is walked
    if "server_slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("opt-in: pytest -m server_slow tests/server/test_team_setup_doc.py (the walk: minutes)")


@pytest.mark.server
@pytest.mark.server_slow
def test_team_setup_runs_as_written(opted_in, walk, request):
    slow = True  # opted in: `govern reproduce` in the reviewer's clone too
    started = time.perf_counter()
    for block in page_blocks():
        if block.kind == "file":
            walk.write(block)
        elif block.kind == "edit":
            walk.edit(block)
        elif block.kind == "background":
            walk.start(block)
        elif block.kind == "run" and (slow or not block.slow):
            for user in block.users or (None,):
                walk.run(block, user)
    print(f"\nthe page: {time.perf_counter() - started:.1f}s")  # noqa: T201
    events = exported(walk)
    # Gate and evaluation decisions of the server run name the service account, authenticated by the server
    decisions = [e for e in events if e["event_type"] in ("gate_decision", "eval_decision")]
    assert decisions and {(e["actor"], e["identity_method"]) for e in decisions} == {
        ("svc-trainer", "mlflow-basic-auth")
    }
    sft = [e for e in events if (e["subject"].get("model"), e["subject"].get("version")) == ("govllm-sft", "1")]
    by_kind: dict[str, list[dict]] = {}
    for event in sft:
        by_kind.setdefault(event["event_type"], []).append(event)
    (registered,) = by_kind["model_registered"]
    assert registered["actor"] == "svc-trainer" and registered["details"]["risk_tier"] == "high"
    # Three reviewers (the high tier chosen up front), then again over TLS after the withdraw
    assert sorted(e["actor"] for e in by_kind["approved"]) == sorted(["rev-ana", "rev-ben", "rev-cho"] * 2)
    assert {e["identity_method"] for e in by_kind["approved"]} == {"mlflow-basic-auth"}
    (withdrawn,) = by_kind["withdrawn"]
    assert withdrawn["actor"] == "rel-dee"
    assert [e["actor"] for e in by_kind["promoted"]] == ["rel-dee", "rel-dee"]
    fingerprint = walk.substitute("<fingerprint of /srv/mlflow/tls.crt>").replace(":", "").lower()
    over_tls = by_kind["approved"][3:] + by_kind["promoted"][1:]
    assert {e["details"].get("identity_server_tls_sha256") for e in over_tls} == {fingerprint}
    # The reward model: approved by two at medium, its tier raised by a policy change, then a third approval
    rm = [e for e in events if (e["subject"].get("model"), e["subject"].get("version")) == ("govllm-rm", "1")]
    (rm_registered,) = [e for e in rm if e["event_type"] == "model_registered"]
    assert rm_registered["actor"] == "svc-trainer" and rm_registered["details"]["risk_tier"] == "medium"
    assert [e["actor"] for e in rm if e["event_type"] == "approved"] == ["rev-ana", "rev-ben", "rev-cho"]
    assert [e["actor"] for e in rm if e["event_type"] == "promoted"] == ["rel-dee"]
    changes = [e for e in events if e["event_type"] == "policy_changed"]
    assert [e["actor"] for e in changes] == ["rev-ana", "rel-dee"] * 3
    assert any(e["event_type"] == "key_rotated" for e in events)
    impostor_is_refused(walk)


def exported(walk: Walk) -> list[dict]:
    result = walk.run(Block(0, "bash", "", "govern audit export > ~/events.jsonl\n"), "rev-ana")
    assert result.returncode == 0
    return [json.loads(line) for line in (walk.home / "events.jsonl").read_text().splitlines()]


def impostor_is_refused(walk: Walk) -> None:
    """Another certificate at the pinned https address (the TLS server stopped, a proxy in its place)."""
    http_server, tls_server = walk.background
    walk.background = [tls_server]
    walk.stop()
    walk.background = [http_server]
    cert, key = walk.root / "impostor.crt", walk.root / "impostor.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    with tls_proxy(walk.ports[5443], walk.ports[5000], cert, key):
        (refused_block,) = [b for b in page_blocks() if b.title == "refused"]
        # The page's line, less the policy's path (relative there, as the process found it here) and the elided pin
        shown = walk.substitute(refused_block.body.strip())
        expected = [shown.split(" policies/approvals.yaml")[0], "; no credentials were sent"]
        # MLflow's own client is given the impostor's certificate (as a victim told to trust it would be): the pin
        # is what refuses it
        attempt = (
            f"export MLFLOW_TRACKING_SERVER_CERT_PATH={cert}\n"
            "govern approve govllm-sft 1 --reason 'through the impostor'\n"
        )
        script = walk.script(attempt, "rev-ana")
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], env=walk.env, capture_output=True, text=True
        )
        assert result.returncode != 0, result.stdout + result.stderr
        assert all(part in result.stderr for part in expected), (expected, result.stderr)


@contextlib.contextmanager
def tls_proxy(port: int, upstream: int, cert: Path, key: Path):
    """A TLS endpoint on 127.0.0.1:``port`` forwarding each connection's bytes to 127.0.0.1:``upstream``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def pipe(reader, writer):
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", upstream)
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=context)
        ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            async with server:
                await server.serve_forever()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield
    finally:
        for task in asyncio.all_tasks(loop):
            loop.call_soon_threadsafe(task.cancel)
        thread.join(5)
