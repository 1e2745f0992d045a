"""`govern watch`: registry changes made outside govern (the MLflow UI, a REST call) caught as they happen.

An ``mlflow server`` with a SQL backend store (MLflow 3.x) calls a webhook when a model version's
alias is set or removed, or a version tag is set or deleted, through its REST API — which is what
the UI's "Add alias" and tag edits use. The watcher registers that webhook
(:mod:`~governance.watch.webhook`), checks each delivery's HMAC signature
(:mod:`~governance.watch.signature`), and looks at the model again
(:mod:`~governance.watch.check`): drift from the trail is recorded as a ``registry_drift`` event
and, under ``registry_watch.on_drift: revert`` in ``policies/approvals.yaml``, reverted by
reconcile (a ``registry_reconciled`` event). :mod:`~governance.watch.service` is the receiver.

Trust boundary: a signed delivery only says *look at this model now*. The truth is the trail; the
registry is read again, and once more under the trail's append lock, before anything is recorded.
Changes that fire no webhook (the embedded SQLite store, a write to the backend database, a
version's source) are found by :func:`sweep` (``govern watch --once`` on a schedule) and
``govern audit verify``. Runbook: docs/how-to/registry-watch.md.
"""

from __future__ import annotations

from governance import registry_view
from governance.identity import Identity
from governance.watch.check import CheckOutcome, check_model
from governance.watch.service import Watcher
from governance.watch.signature import WATCHED_EVENTS, BadDelivery, Delivery, sign, verify_delivery
from governance.watch.webhook import DEFAULT_WEBHOOK_NAME, ensure_webhook

__all__ = [
    "DEFAULT_WEBHOOK_NAME",
    "WATCHED_EVENTS",
    "BadDelivery",
    "CheckOutcome",
    "Delivery",
    "Watcher",
    "check_model",
    "ensure_webhook",
    "sign",
    "sweep",
    "verify_delivery",
]


def sweep(identity: Identity) -> list[CheckOutcome]:
    """Check every registered model once (what changed while no watcher listened, or on a store without webhooks)."""
    return [check_model(name, identity) for name in registry_view.model_names()]
