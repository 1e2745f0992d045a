"""A webhook delivery from MLflow: its HMAC signature checked, its payload read, nothing more.

MLflow 3.x (``mlflow/webhooks/delivery.py``) signs ``{delivery id}.{timestamp}.{body}`` with
HMAC-SHA256 under the webhook's secret and sends ``X-MLflow-Signature: v1,<base64>``,
``X-MLflow-Timestamp`` (Unix seconds) and ``X-MLflow-Delivery-Id``; the body is
``{"entity", "action", "timestamp", "data": {"name", ...}}``.

Trust boundary: a delivery whose signature does not verify under the secret, or whose timestamp
is older than :data:`MAX_AGE_S`, is refused before its body is parsed. A verified delivery is
believed only to the extent of *which model to look at*: its alias, version, key and value are
never used as facts (the registry is read again and compared with the trail).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SIGNATURE_HEADER = "x-mlflow-signature"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
DELIVERY_ID_HEADER = "x-mlflow-delivery-id"
SIGNATURE_VERSION = "v1"
#: A signed delivery older (or further in the future) than this is refused: a captured one cannot be replayed later.
MAX_AGE_S = 300
#: The model-version events `govern watch` subscribes to: what the UI's "Add alias" and tag edits fire.
WATCHED_EVENTS: tuple[str, ...] = (
    "model_version_alias.created",
    "model_version_alias.deleted",
    "model_version_tag.set",
    "model_version_tag.deleted",
)


class BadDelivery(Exception):
    """A delivery refused before anything was read from it (the message says why; it never echoes the body)."""


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: which event, about which model."""

    delivery_id: str
    event: str  # "model_version_alias.created"
    model: str
    data: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, str]:
        """What an event records of it: id, event and the payload's fields, each bounded."""
        fields = {f"payload_{k}": str(v)[:200] for k, v in sorted(self.data.items()) if k != "name"}
        return {"delivery_id": self.delivery_id[:80], "event": self.event, **fields}


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow sends for ``body`` (also what a test forges with a wrong secret)."""
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify_delivery(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> Delivery:
    """The verified delivery, or :class:`BadDelivery`. ``headers`` are keyed in lower case."""
    delivery_id = headers.get(DELIVERY_ID_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not (delivery_id and timestamp and signature):
        raise BadDelivery("unsigned delivery (no X-MLflow-Signature/-Timestamp/-Delivery-Id); is the secret set?")
    if not hmac.compare_digest(signature.encode(), sign(secret, delivery_id, timestamp, body).encode()):
        raise BadDelivery("signature does not verify under GOVERN_WATCH_SECRET")
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except ValueError:
        raise BadDelivery(f"X-MLflow-Timestamp {timestamp[:20]!r} is not Unix seconds") from None
    if abs(age) > MAX_AGE_S:
        raise BadDelivery(f"signed {int(age)} s ago (more than {MAX_AGE_S} s either way): a replay, or a skewed clock")
    try:
        payload = json.loads(body)
        event = f"{payload['entity']}.{payload['action']}"
        data = payload["data"]
        model = data["name"]
    except (ValueError, KeyError, TypeError):
        raise BadDelivery("signed, but not an MLflow webhook payload (entity, action, data.name)") from None
    if not isinstance(model, str) or not isinstance(data, dict):
        raise BadDelivery("signed, but data.name is not a model name")
    return Delivery(delivery_id=delivery_id, event=event, model=model, data=data)
