"""The trail's head as an anchor in MLflow: the ``governance.trail_head`` tag of each registered model.

Written after every append a governed action makes (approvals, incidents,
monitoring verdicts, reproductions), so the registry holds a signed anchor the
trail database cannot rewrite; ``govern audit verify`` reads them all back.

Trust boundary: the anchor is written from the trail and only ever compared
with it (:func:`governance.trail.verify`); a tag that does not decode is
reported, never believed. The trail itself knows nothing of MLflow: this
module sits above both.
"""

from __future__ import annotations

import logging

from governance import registry_view, registry_writes, trail
from governance.errors import AuditError, PermissionDenied, RegistryError
from governance.trail import Anchor

#: On the registered model: the trail's head after the last append a governed action made
#: (seq, hash and, once events are signed, signature and key id) — an anchor outside the trail.
TAG_TRAIL_HEAD = "governance.trail_head"

log = logging.getLogger(__name__)


def write_trail_head(name: str) -> Anchor | None:
    """Write the trail's current head as the ``governance.trail_head`` tag of registered model ``name``.

    Called after every append a governed action makes, so the registry holds
    a signed anchor the trail database cannot rewrite: ``govern audit verify``
    hands every model's anchor to :func:`governance.trail.verify`, which then
    sees a truncated or rewritten trail.
    """
    head = trail.head()
    if head is None:
        return None
    anchor = Anchor.of(head)
    registry_writes.set_model_tag(name, TAG_TRAIL_HEAD, anchor.encode())
    return anchor


def anchor_committed_event(name: str) -> Anchor | None:
    """:func:`write_trail_head` after an event that stands whatever MLflow says (an incident, a monitoring
    verdict, a reproduction): every event kind moves the model's anchor, so `govern audit verify` never shows
    it behind. MLflow unreachable, or this user not allowed to write the model: logged, the anchor lags until
    the next governed action writes it; the committed event is never undone."""
    try:
        return write_trail_head(name)
    except (RegistryError, PermissionDenied) as exc:
        log.warning("%s: trail head not written to MLflow (%s); the next governed action writes it", name, exc)
        return None


def registry_anchors(name: str | None = None) -> tuple[list[Anchor], list[str]]:
    """Every registered model's ``governance.trail_head`` anchor, and a line per unreadable one."""
    anchors, problems = [], []
    for model, value in registry_view.model_tags(TAG_TRAIL_HEAD, name).items():
        source = f"MLflow tag {TAG_TRAIL_HEAD} of {model}"
        try:
            anchors.append(Anchor.decode(value, source))
        except AuditError as exc:
            problems.append(str(exc))
    return anchors, problems
