"""The audit report of a version built by `dvc repro`, opened in headless Chromium.

Chromium is driven over the DevTools protocol on ``--remote-debugging-pipe``
(file descriptors 3 and 4, NUL-separated JSON; no websocket library needed):
every network request the page makes, every console message and uncaught
exception is recorded, then the rendered text is read back and a full-page
screenshot taken. The page must make no request beyond its own file, log no
error, and show each section's recorded values; no raw PII planted in
``data/raw`` may appear in the report, the model card or anything MLflow holds.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from e2e_support import REPO, run

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]
TEXT_SUFFIXES = {".json", ".jsonl", ".md", ".html", ".svg", ".txt", ".yaml", ".yml", ".csv"}


class DevTools:
    """A minimal Chrome DevTools protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, user_data_dir: Path):
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # The browser expects to read commands on fd 3 and write replies on fd 4.
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)

        def wire_fds() -> None:
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            preexec_fn=wire_fds,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(child_in)
        os.close(child_out)
        self.write_fd, self.read_fd = to_browser_w, from_browser_r
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no reply from Chromium")
            ready, _, _ = select.select([self.read_fd], [], [], remaining)
            if ready:
                chunk = os.read(self.read_fd, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.write_fd)
        os.close(self.read_fd)


def open_page(page: Path, screenshot: Path, user_data_dir: Path) -> dict:
    """Load ``page`` and return its requests, console errors, exceptions and rendered text; save a screenshot."""
    browser = DevTools(user_data_dir)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        text = browser.send(
            "Runtime.evaluate", {"expression": "document.body.innerText", "returnByValue": True}, session=session
        )["result"]["value"]
        height = browser.send(
            "Runtime.evaluate",
            {"expression": "document.documentElement.scrollHeight", "returnByValue": True},
            session=session,
        )["result"]["value"]
        width = browser.send(
            "Runtime.evaluate",
            {"expression": "document.documentElement.scrollWidth", "returnByValue": True},
            session=session,
        )["result"]["value"]
        shot = browser.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1},
            },
            session=session,
        )
        screenshot.write_bytes(base64.b64decode(shot["data"]))
    finally:
        browser.close()
    events = browser.events
    return {
        "requests": [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"],
        "console_errors": [
            e["params"]
            for e in events
            if e.get("method") == "Runtime.consoleAPICalled"
            and e["params"].get("type") in ("error", "warning", "assert")
        ],
        "exceptions": [e["params"] for e in events if e.get("method") == "Runtime.exceptionThrown"],
        "log_errors": [
            e["params"]["entry"]
            for e in events
            if e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") in ("error", "warning")
        ],
        "text": text,
        "height": height,
        "width": width,
    }


def planted_values(raw: Path) -> set[str]:
    """Raw PII values in a raw dataset, found by the project's own scanner (kept in memory only)."""
    from governance.pii import PiiScanner
    from governance.policy.pii import load_pii_policy

    policy_path = REPO / "policies/pii.yaml"
    scanner = PiiScanner(load_pii_policy(policy_path), policy_path)
    values: set[str] = set()

    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)

    for line in raw.read_text(encoding="utf-8").splitlines():
        for text in strings(json.loads(line)):
            for finding in scanner.findings_in(text):
                if finding.entity in (
                    "EMAIL_ADDRESS",
                    "CREDIT_CARD",
                    "IBAN_CODE",
                    "US_SSN",
                    "PHONE_NUMBER",
                    "IP_ADDRESS",
                ):
                    values.add(text[finding.start : finding.end])
    return values


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (make browser)")
def test_browser_harness_sees_external_requests_and_console_errors(tmp_path):
    """The checks below would catch a page that fetched from a CDN or logged an error."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!doctype html><html><head><link rel="stylesheet" href="https://cdn.example.com/x.css"></head>'
        '<body><img src="http://example.com/a.png"><script>console.error("boom"); missingFn();</script>'
        "<p>hello</p></body></html>"
    )
    page = open_page(bad, tmp_path / "bad.png", tmp_path / "chrome")
    assert "https://cdn.example.com/x.css" in page["requests"] and "http://example.com/a.png" in page["requests"]
    assert len(page["console_errors"]) == 1 and len(page["exceptions"]) == 1
    assert {e.get("url") for e in page["log_errors"]} >= {"https://cdn.example.com/x.css"}
    assert "hello" in page["text"]


@pytest.fixture(scope="module")
def sft_report(repro_once, tmp_path_factory):
    workdir, _, _ = repro_once
    registration = json.loads((workdir / "artifacts/register_sft/registration.json").read_text())
    out = tmp_path_factory.mktemp("sft-report")
    started = time.perf_counter()
    result = run(["govern", "report", registration["name"], registration["version"], "--out", str(out)], workdir)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    print(f"\ngovern report (new process, imports included): {seconds:.1f}s")  # noqa: T201
    return workdir, registration, out / registration["name"] / f"v{registration['version']}", result


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (make browser)")
def test_report_opens_offline_in_chromium_with_every_section(sft_report, tmp_path):
    workdir, registration, out, _ = sft_report
    facts = json.loads((out / "facts.json").read_text())["facts"]
    screenshot = tmp_path / "report.png"
    page = open_page(out / "report.html", screenshot, tmp_path / "chrome")
    print(f"screenshot: {screenshot} ({page['height']}px)")  # noqa: T201
    # No request beyond the page itself; no console error, CSP violation or exception
    assert page["requests"] and all(url.startswith(("file://", "data:", "about:")) for url in page["requests"]), page[
        "requests"
    ]
    assert page["console_errors"] == [] and page["exceptions"] == [] and page["log_errors"] == [], page
    assert screenshot.stat().st_size > 50_000 and page["height"] > 3000
    # Nothing (a hash, a run id, a JSON value, a chart label) widens the page past a 1280 px window
    assert page["width"] <= 1280, f"the page is {page['width']} px wide at a 1280 px window"
    # Each section shows recorded values, not just its heading
    lock = yaml.safe_load((workdir / "dvc.lock").read_text())["stages"]
    train_md5 = {d["path"]: d["md5"] for d in lock["train_sft"]["deps"]}["artifacts/pii_scan_sft/data/train.jsonl"]
    verified = run(["govern", "audit", "verify"], workdir)
    head = re.search(r"head ([0-9a-f]{64})", verified.stdout)
    text = page["text"]
    expected = {
        "verdict": "May not be promoted",
        "approvals missing": "risk tier medium needs 2",
        "identity": f"{registration['name']} v{registration['version']}",
        "licence": "apache-2.0",
        "intended use": "Customer-support assistant drafts",
        "training commit": facts["training"]["git_commit"],
        "lock hash": facts["training"]["lock_sha256"],
        "steps": str(facts["training"]["global_steps"]),
        "dataset md5 = dvc.lock": train_md5,
        "pii gate": "pii_scan_sft",
        "validation rule": "data.min_rows",
        "eval rule": "eval.sft.perplexity_vs_base",
        "chain head": facts["integrity"]["chain"]["head"],
        "retention": "10 years after the version is retired",
        "compliance": "Annex XI 2(c)",
    }
    missing = {k: v for k, v in expected.items() if not v or v not in text}
    assert not missing, missing
    assert verified.returncode == 0 and head, verified.stdout + verified.stderr
    assert head.group(1) == facts["integrity"]["chain"]["head"]
    html = (out / "report.html").read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html, flags=re.I)


def test_no_raw_pii_in_report_card_or_mlflow(sft_report):
    workdir, _, out, _ = sft_report
    planted = planted_values(workdir / "data/raw/sft.jsonl")
    assert len(planted) >= 5, "the shipped raw data should carry planted PII"
    files = [p for p in out.rglob("*") if p.is_file()]
    files += [p for p in (workdir / "mlartifacts").rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES]
    reports = workdir / "reports"
    if reports.is_dir():  # the dvc `report` stage's own output, where dvc.yaml has it
        files += [p for p in reports.rglob("*") if p.is_file()]
    assert any(p.name == "findings.json" for p in files) and any(p.name == "README.md" for p in files)
    leaks = [p for p in files for value in planted if value in p.read_text(encoding="utf-8", errors="replace")]
    assert not leaks, f"raw PII found in {sorted({str(p) for p in leaks})}"


def test_report_stage_output_when_in_the_dag(repro_once):
    workdir, _, _ = repro_once
    stages = yaml.safe_load((workdir / "dvc.yaml").read_text())["stages"]
    if "report" not in stages:
        pytest.skip("dvc.yaml has no report stage yet")
    registration = json.loads((workdir / "artifacts/register_sft/registration.json").read_text())
    folder = workdir / "reports" / registration["name"] / f"v{registration['version']}"
    for name in ("report.html", "report.md", "README.md", "facts.json"):
        assert (folder / name).is_file(), name
    facts = json.loads((folder / "facts.json").read_text())["facts"]
    assert facts["integrity"]["checkout"] and all(row["match"] for row in facts["integrity"]["checkout"])
