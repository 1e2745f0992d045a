"""Attack P6: presidio's e-mail check reads only the pinned public-suffix list, never tldextract's disk cache.

    python -m pytest -q tests/governance/test_pii_suffix_list.py

presidio's EmailRecognizer accepts an address only if ``tldextract.extract`` finds a public suffix in it, and
tldextract's default extractor reads a cache first (``$TLDEXTRACT_CACHE``, else ``~/.cache/python-tldextract``),
even with no list URLs. A list planted there with no real suffix made every address "not an e-mail": the PII gate
signed "0 findings" over a file of addresses, and so did the monitor and the quarantine masker.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from governance.errors import ConfigError
from governance.pii import normalise

REPO = Path(__file__).resolve().parents[2]

PLANT_AND_CHECK = textwrap.dedent(
    """
    import sys
    from tldextract.cache import DiskCache
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    # The attacker's list, where tldextract looks first (the key its default extractor asks for)
    DiskCache(sys.argv[1]).set(
        namespace="publicsuffix.org-tlds", key={"urls": (), "fallback_to_snapshot": True}, value=[["x"], []]
    )
    text = "write to bob.smith@example.com today"
    found = lambda: len(EmailRecognizer().analyze(text, ["EMAIL_ADDRESS"]))  # noqa: E731
    before = found()
    from governance.pii import build_engine
    from governance.policy.pii import load_pii_policy

    build_engine(load_pii_policy("policies/pii.yaml"))
    print(before, found())
    """
)


def test_p6_a_planted_suffix_list_in_tldextracts_cache_hides_no_address(tmp_path):
    cache = tmp_path / "tldextract-cache"
    result = subprocess.run(
        [sys.executable, "-c", PLANT_AND_CHECK, str(cache)],
        cwd=REPO,
        env={**__import__("os").environ, "TLDEXTRACT_CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    before, after = result.stdout.split()[-2:]
    assert before == "0"  # the attack, without the pin: the address is not an address
    assert after == "1"  # once the PII engine is built: the pinned list, read from the package, decides


def test_a_suffix_list_other_than_the_pinned_one_is_refused(monkeypatch):
    monkeypatch.setattr(normalise, "SUFFIX_LIST_SHA256", {"5.4.0": "0" * 64})
    normalise.use_pinned_suffix_list.cache_clear()
    try:
        with pytest.raises(
            ConfigError, match=r"tldextract 5\.4\.0: its public-suffix list \(\.tld_set_snapshot\) hashes"
        ):
            normalise.use_pinned_suffix_list()
    finally:
        monkeypatch.undo()
        normalise.use_pinned_suffix_list.cache_clear()
        normalise.use_pinned_suffix_list()
