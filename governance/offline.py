"""The environment that keeps the governance library's dependencies off the network (stdlib only).

``governance/__init__.py`` applies it when the package is first imported, so it is in place before
any module under ``governance/`` imports presidio (whose e-mail validator builds tldextract's
extractor, which fetches the public-suffix list unless ``TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS`` is
empty), huggingface_hub, MLflow (its telemetry thread) or DVC (its analytics). This is the one place
these variables are set: ``pipelines._env`` builds a stage's environment from :data:`OFFLINE_ENV`.

Trust boundary: a value the caller set explicitly wins (``HF_HUB_OFFLINE=0`` to fetch a base model on
purpose); an unset variable gets the offline value. tests/governance/test_offline.py runs every
``govern`` command and a stage with outbound network refused and fails on any attempt.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

#: Variable -> value that keeps one library offline.
OFFLINE_ENV: dict[str, str] = {
    # huggingface_hub (and transformers, datasets through it): no hub requests, no telemetry
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    # tldextract (presidio's e-mail and URL validation): the bundled suffix-list snapshot, no fetch
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
    # MLflow 3's usage telemetry fetches a config and posts records from a background thread
    # (DO_NOT_TRACK disables it only when set to "true", not "1")
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # DVC's usage analytics (``govern reproduce`` runs dvc)
    "DVC_NO_ANALYTICS": "1",
}


def apply_offline_env(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set every :data:`OFFLINE_ENV` variable the caller has not set (an explicit value wins)."""
    for key, value in OFFLINE_ENV.items():
        environ.setdefault(key, value)
