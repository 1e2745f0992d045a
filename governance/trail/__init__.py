"""The audit trail: an append-only, hash-chained, signed and anchored event store — the truth of who did what.

Every governance decision (registration, gate and eval decisions, approvals,
rejections, promotions, canaries, rollbacks, waivers, objective approvals,
refusals and key rotations) is one :class:`Event`, written only through
:func:`record`. Public API::

    from governance import trail

    event = trail.record("approved", actor="bob", role="reviewer", identity_method="mlflow-basic-auth",
                         subject=trail.Subject(model="govllm-sft", version="3"), reason="looks right")
    trail.require_intact(anchors=[trail.Anchor.decode(tag_value, source="MLflow tag")])  # raises TrailBroken
    trail.verify().findings     # one line per problem; [] when intact
    trail.events(model="govllm-sft", version="3"); trail.head()

The package is split along its seams: :mod:`.chain` (the event, canonical
JSON, hashing, verifying rows), :mod:`.signing` (Ed25519 keys and the ring of
trusted public keys), :mod:`.anchor` (signed heads kept outside the database:
the checkpoint file, MLflow tags handed in by the registry), :mod:`.storage`
(SQLAlchemy, SQLite/PostgreSQL, the append lock) and :mod:`.location` (where a
trail and its files live). The trail imports nothing from MLflow: the registry
mirrors the trail, never the reverse.

Trust boundary: an event is believed only when its hash and link recompute,
its signature verifies under a key listed in ``policies/trail_keys.yaml``
(reviewed when that file is committed and unchanged in git) or this store's
local key (reported as not reviewed; a key not reviewed must be the one that
signed event #1 or one rotated in), it carries this store's trail id, and no
anchor contradicts the chain. :func:`require_intact` is what every governed action calls first.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from governance.errors import ConfigError, TrailBroken
from governance.trail.anchor import Anchor
from governance.trail.chain import (
    COLUMNS,
    EVENT_TYPES,
    GENESIS_HASH,
    IDENTITY_METHODS,
    MAX_NAME_CHARS,
    MAX_REASON_BYTES,
    Event,
    EventType,
    IdentityMethod,
    Subject,
    Verification,
    canonical_json,
    normalize_user,
    now_utc,
    require_bounded,
    require_printable,
    require_user_name,
    row_hash,
    shown_reason,
    verify_rows,
)
from governance.trail.location import (
    AUDIT_URL_ENV,
    CHECKPOINT_ENV,
    KEY_ENV,
    KEY_FILE_ENV,
    audit_url,
    redacted,
)
from governance.trail.location import normalize_url as _normalize_url
from governance.trail.signing import KeyRing, SigningKey, generate_key, load_keyring, parse_private_key
from governance.trail.storage import Trail, events_table, read_export

__all__ = [
    "AUDIT_URL_ENV",
    "CHECKPOINT_ENV",
    "COLUMNS",
    "EVENT_TYPES",
    "GENESIS_HASH",
    "IDENTITY_METHODS",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "MAX_NAME_CHARS",
    "MAX_REASON_BYTES",
    "Anchor",
    "Event",
    "EventType",
    "IdentityMethod",
    "KeyRing",
    "SigningKey",
    "Subject",
    "Trail",
    "Verification",
    "audit_url",
    "canonical_json",
    "events",
    "events_table",
    "generate_key",
    "head",
    "keyring",
    "load_keyring",
    "normalize_user",
    "now_utc",
    "open_trail",
    "parse_private_key",
    "read_anchor_file",
    "read_export",
    "record",
    "redacted",
    "require_bounded",
    "require_intact",
    "require_printable",
    "require_user_name",
    "rotate_key",
    "row_hash",
    "shown_reason",
    "verify",
    "verify_rows",
]

_TRAILS: dict[str, Trail] = {}
_TRAILS_LOCK = threading.Lock()


def open_trail(url: str | None = None) -> Trail:
    """The trail at ``url`` (default :func:`audit_url`), one engine per URL per process."""
    url = _normalize_url(url) if url else audit_url()
    with _TRAILS_LOCK:
        if url not in _TRAILS:
            _TRAILS[url] = Trail(url)
        return _TRAILS[url]


def _after_fork_in_child() -> None:  # pragma: no cover - exercised by the multi-process tests
    # A forked child must not reuse the parent's pooled connections.
    for opened in _TRAILS.values():
        opened.engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def record(
    event_type: str,
    *,
    actor: str,
    role: str,
    subject: Subject,
    reason: str,
    identity_method: str = "local-unverified",
    evidence: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
    guard: Callable[[list[Event]], Event | None] | None = None,
    before_commit: Callable[[Event, list[Event]], None] | None = None,
    url: str | None = None,
) -> Event:
    """Append one signed event to the audit trail — the only way anything writes to it.

    ``identity_method`` says how ``actor`` was identified (``local-unverified``
    or ``mlflow-basic-auth``); it is hashed and signed with the rest, with the
    store's trail id. Refused with one line (exit 2): control characters in
    ``actor``, ``role`` or ``reason``; a reason over :data:`MAX_REASON_BYTES`
    or an actor/role over :data:`MAX_NAME_CHARS`; an actor that is not
    NFKC-normalised or mixes scripts (:func:`normalize_user` is what the
    identity layer applies first).
    ``guard(events)`` runs under the append lock with every stored event of
    the same model (or objective); return an existing event to append nothing
    (the result then has ``created`` False), raise to refuse.
    ``before_commit(event, events)`` runs after the insert, before the commit;
    if it raises, the event is rolled back and the exception propagates. Both
    may run more than once when an append is retried, so they must be
    idempotent. After the commit the new head goes to the checkpoint file.
    """
    return open_trail(url).append(
        event_type,
        actor=actor,
        role=role,
        subject=subject,
        reason=reason,
        identity_method=identity_method,
        evidence=evidence,
        details=details,
        guard=guard,
        before_commit=before_commit,
    )


def events(
    *,
    model: str | None = None,
    version: str | None = None,
    objective: str | None = None,
    event_types: Iterable[str] | None = None,
    url: str | None = None,
) -> list[Event]:
    """Stored events in chain order, e.g. ``events(model="govllm-sft", version="3")``."""
    return open_trail(url).events(model=model, version=version, objective=objective, event_types=event_types)


def head(url: str | None = None) -> Event | None:
    """The newest event; ``Anchor.of(head())`` is what the registry tags on a model."""
    return open_trail(url).head()


def keyring(url: str | None = None) -> KeyRing:
    """The public keys a verifier of this trail trusts (reviewed in policies, and local)."""
    return load_keyring(open_trail(url).files)


def verify(
    url: str | None = None,
    archive: str | Path | None = None,
    anchors: Iterable[Anchor] = (),
    *,
    every_signature: bool = False,
) -> Verification:
    """Recompute the chain, check the signatures, and compare with the checkpoint file, ``anchors`` and ``archive``.

    Always every event (``govern audit verify``, the scheduled check): the
    verified checkpoint is never read here, only moved forward by a clean
    result when this process holds the trail key. Every hash and link is
    recomputed; of the signatures, each key's last one and any no later
    event's hash covers are checked one by one and the chain vouches for the
    rest, unless ``every_signature`` (see :func:`governance.trail.chain.verify_rows`).
    """
    opened = open_trail(url)
    return opened.verify(archive, anchors, signer=opened.held_signing_key(), every_signature=every_signature)


def read_anchor_file(path: str | Path) -> list[Anchor]:
    """The heads of an off-box copy of a checkpoint file, to hand to :func:`verify` as ``anchors``."""
    from governance.trail.anchor import read_checkpoint

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: anchor file not found")
    heads, unreadable = read_checkpoint(path)
    if unreadable:
        raise ConfigError(unreadable[0][1].removeprefix("checkpoint ") + " (not a copy of a checkpoint file?)")
    return [head.model_copy(update={"source": f"off-box copy {path}"}) for head in heads]


def require_intact(url: str | None = None, anchors: Iterable[Anchor] = ()) -> Verification:
    """Verify the trail and raise :class:`TrailBroken` (exit 1) naming the first problem unless it is intact.

    Every governed action (approve, reject, promote, canary, rollback,
    approve-objective, registration) calls this first: nothing may be appended
    to, or decided from, a chain that does not verify. It starts from the
    signed verified checkpoint (:mod:`governance.trail.verified`): the events
    since, the checkpoint file's heads since and ``anchors`` are checked in
    full, the prefix by its recorded head (O(events since), not O(trail)).
    An edit to an event before the checkpoint is left to ``govern audit
    verify``, which reads everything and is run on a schedule.
    """
    opened = open_trail(url)
    # From the signed verified checkpoint: only events since are read (trail/verified.py); the key holder moves it
    result = opened.verify(None, anchors, signer=opened.held_signing_key(), since_checkpoint=True)
    if not result.ok:
        more = f" (and {len(result.findings) - 1} more)" if len(result.findings) > 1 else ""
        raise TrailBroken(f"refusing to act on a broken audit trail: {result.problem}{more}; see `govern audit verify`")
    return result


def rotate_key(
    *,
    actor: str,
    reason: str,
    identity_method: str = "local-unverified",
    new_key: SigningKey | None = None,
    url: str | None = None,
) -> tuple[Event, SigningKey]:
    """Record a ``key_rotated`` event signed by the current key naming ``new_key``, then sign with the new key.

    The embedded default key is replaced in place (a new one is generated when
    ``new_key`` is None; it is written to ``audit.key.next`` first so a crash
    cannot lose it). A configured key (``GOVERN_TRAIL_KEY_FILE`` /
    ``GOVERN_TRAIL_KEY``) cannot be swapped from here: pass the new key and
    point the configuration at it afterwards. From this event on, the old key
    is retired: events it signs later are findings.
    """
    require_intact(url)
    opened = open_trail(url)
    old = opened.signing_key()
    embedded = not opened.files.key_configured and opened.files.default_key is not None
    if new_key is None and not embedded:
        raise ConfigError(
            f"the trail key is configured ({KEY_FILE_ENV} / {KEY_ENV}): give the new key (--new-key-file), "
            "then point the configuration at it"
        )
    new_key = new_key or generate_key()
    if new_key.key_id == old.key_id:
        raise ConfigError(f"the new key is the current key ({old.key_id})")
    staged = None
    if embedded:
        staged = opened.files.default_key.with_name(opened.files.default_key.name + ".next")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(new_key.pem())
    try:
        event = opened.append(
            "key_rotated",
            actor=actor,
            role="trail key holder",
            subject=Subject(),
            reason=reason,
            identity_method=identity_method,
            evidence={"old_key_id": old.key_id},
            details={"new_key_id": new_key.key_id, "new_public_key": new_key.public_b64},
            signer=old,
        )
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    if staged is not None:
        from governance.trail.signing import add_local_public_key

        add_local_public_key(opened.files, new_key)
        staged.replace(opened.files.default_key)
    return event, new_key


@contextlib.contextmanager
def _benchmark_unsigned(url: str | None = None) -> Iterator[Trail]:
    """The pre-signing trail (no signatures, no checkpoint, chain-only verify) — for the benchmark's baseline only.

    Deliberately private and not reachable from configuration or the CLI: a
    trail written this way does not verify under the signed code path.
    """
    opened = open_trail(url)
    opened._signing = False
    try:
        yield opened
    finally:
        opened._signing = True
