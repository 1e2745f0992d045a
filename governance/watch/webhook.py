"""The MLflow webhook that calls `govern watch`: created or brought in line, then proven with a test delivery.

Webhooks exist only on an ``mlflow server`` with a SQL backend store (MLflow 3.x); creating,
listing and testing them needs an MLflow admin under ``--app-name basic-auth``. The server refuses
an ``http`` URL and any address that is not public unless it is started with
``MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https`` and ``MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true``, and it
keeps the secret encrypted under ``MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY`` (a random key per process
when unset: after a restart, or in a second worker, the stored secret no longer decrypts).

Trust boundary: nothing read back from MLflow here is believed; the test delivery proves end to end
that MLflow signs with the secret this process holds and can reach the receiver.
"""

from __future__ import annotations

import logging

from governance import registry
from governance.errors import ConfigError, RegistryError
from governance.watch.signature import WATCHED_EVENTS

log = logging.getLogger(__name__)

#: The webhook's name in MLflow: one per watcher (``--webhook-name`` for a second one).
DEFAULT_WEBHOOK_NAME = "govern-watch"

#: What the server says when a setting blocks the URL, and the setting that allows it.
_SERVER_HINTS = (
    ("scheme", "start the MLflow server with MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https (or serve on https)"),
    ("public", "start the MLflow server with MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true (the watcher's address is private)"),
    ("decrypt", "start the MLflow server with a fixed MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY (a Fernet key)"),
    ("InvalidToken", "start the MLflow server with a fixed MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY (a Fernet key)"),
)


def _hint(message: str) -> str:
    return next((f"; {fix}" for word, fix in _SERVER_HINTS if word in message), "")


def ensure_webhook(url: str, secret: str, name: str = DEFAULT_WEBHOOK_NAME) -> str:
    """Create the webhook ``name`` calling ``url`` for :data:`WATCHED_EVENTS`, or set an existing one to exactly
    that (URL, events, secret, active); then have MLflow send it a test delivery. Returns the webhook id.

    Raises :class:`ConfigError` naming the server setting to change when MLflow refuses the URL or the
    test delivery does not arrive signed with ``secret``.
    """
    client = registry.client()
    try:
        with registry.registry_errors(f"registering webhook {name} for {url}"):
            found = [hook for hook in _all_webhooks(client) if hook.name == name]
            if found:
                webhook = client.update_webhook(
                    found[0].webhook_id, url=url, events=list(WATCHED_EVENTS), secret=secret, status="ACTIVE"
                )
                log.info("webhook %s (%s) updated to %s", name, webhook.webhook_id, url)
            else:
                webhook = client.create_webhook(
                    name=name,
                    url=url,
                    events=list(WATCHED_EVENTS),
                    secret=secret,
                    description="govern watch: alias and tag changes are compared with the audit trail",
                )
                log.info("webhook %s (%s) created for %s", name, webhook.webhook_id, url)
            for extra in found[1:]:  # one webhook per name: a duplicate would deliver everything twice
                client.delete_webhook(extra.webhook_id)
            result = client.test_webhook(webhook.webhook_id)
    except RegistryError as exc:
        raise RegistryError(f"{exc}{_hint(str(exc))}") from None
    if not result.success:
        why = result.error_message or f"HTTP {result.response_status} {str(result.response_body or '')[:120]}"
        raise ConfigError(
            f"MLflow's test delivery of webhook {name} to {url} failed: {why[:300]}{_hint(why)}"
            + (
                "; the receiver refused the signature: is GOVERN_WATCH_SECRET the same here and there?"
                if result.response_status == 401
                else ""
            )
        )
    return webhook.webhook_id


def _all_webhooks(client) -> list:
    hooks, token = [], None
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        hooks.extend(page)
        token = page.token
        if not token:
            return hooks
