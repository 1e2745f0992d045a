"""Signing: the trail's Ed25519 key, and the ring of public keys a verifier trusts.

Every event's hash is signed (``cryptography``'s Ed25519) by the trail's
signing key, and the event names the key (``key_id``, its fingerprint). Where
the private key comes from, in order:

1. ``GOVERN_TRAIL_KEY``: PEM text or the raw 32-byte seed in base64 (a CI or
   server secret);
2. ``GOVERN_TRAIL_KEY_FILE``: a PEM (PKCS#8) file, e.g.
   ``openssl genpkey -algorithm ed25519 -out trail.key``;
3. the embedded default, SQLite only: ``audit.key`` beside ``audit.db``,
   created on first use (mode 0600) of a store that holds no events. Its
   public half is appended to ``audit.key.pub`` beside it then, and only
   then: a key file that appears later (deleted and re-created, or replaced)
   is never listed by the trail. Keys change only through ``govern audit
   rotate-key``.

Trust boundary — what a verifier believes:

* keys listed in ``policies/trail_keys.yaml`` are **reviewed** only while
  that file is committed and unchanged in the working tree
  (:func:`governance.policy.review.review_status`); a key listed in an
  uncommitted edit, or outside a git checkout, is trusted as "listed …, not
  reviewed in git (why)" — like the local key it may sign and verify, and
  every verification and report says it was not reviewed;
* keys in ``audit.key.pub`` beside a SQLite store are a **local key, not
  reviewed in git**: they prove the events came from whoever holds that
  store's key file, which on a laptop is anyone who can write the folder.
  A key trusted only that way must be the key that signed event #1 or one a
  ``key_rotated`` event introduced; any other is a finding (the key file was
  replaced outside ``rotate-key``), however it got into ``audit.key.pub``;
* a key introduced by a ``key_rotated`` event that verifies under a trusted
  key is trusted from that event on, and the old key is retired there.

A writer refuses to sign with a key the ring does not trust (so a production
key must be listed in policies before it is used), with a retired key, or
with a replaced embedded key. Verify reports every key it used and how it is
trusted, and a replaced ``audit.key`` even before it signs anything.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from governance.errors import AuditError, ConfigError
from governance.files import write_atomic
from governance.policy import load_policy_file
from governance.policy.review import review_status
from governance.policy.trail_keys import TrailKeysPolicy, fingerprint
from governance.trail.location import KEY_ENV, KEY_FILE_ENV, TrailFiles

log = logging.getLogger(__name__)

#: Domain separation: a trail signature can never be replayed as a signature over something else.
_CONTEXT = b"govern-trail-event-v1:"
LOCAL_TRUST = "local key, not reviewed in git"
#: A key listed in policies/trail_keys.yaml whose listing is not committed (or outside git).
LISTED_TRUST = "listed in policies/trail_keys.yaml, not reviewed in git"


def is_reviewed(trust: str | None) -> bool:
    """Whether a trust label (:meth:`KeyRing.check`) means reviewed in git."""
    return trust is not None and trust.startswith("reviewed ")


def message(event_hash: str) -> bytes:
    """The bytes an event's signature covers: its hash, prefixed by the trail's context."""
    return _CONTEXT + event_hash.encode("ascii", errors="replace")


@dataclass(frozen=True)
class SigningKey:
    """A private key that signs events, with its public half and id."""

    private: Ed25519PrivateKey = field(repr=False)

    @property
    def raw_public(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return fingerprint(self.raw_public)

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.raw_public).decode("ascii")

    def sign(self, event_hash: str) -> str:
        return base64.b64encode(self.private.sign(message(event_hash))).decode("ascii")

    def pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def generate_key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


def parse_private_key(text: str | bytes, source: str) -> SigningKey:
    """A PEM Ed25519 private key, or a base64 raw 32-byte seed; errors name ``source``, never the key."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(data.strip(), validate=True))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ConfigError(
            f"{source}: not an unencrypted Ed25519 private key (PEM, or the 32-byte seed in base64); "
            "make one with `openssl genpkey -algorithm ed25519`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{source}: the trail signs with Ed25519; this is a {type(key).__name__}")
    return SigningKey(key)


def load_signing_key(
    files: TrailFiles, url_for_messages: str, store_is_empty: Callable[[], bool] = lambda: True
) -> SigningKey:
    """The trail's signing key (see the module docstring for the order); creates the embedded default.

    ``store_is_empty()`` says whether the trail holds no events: only then is
    the embedded default created or its public half listed.
    """
    inline = os.environ.get(KEY_ENV)
    if inline:
        return parse_private_key(inline, KEY_ENV)
    configured = os.environ.get(KEY_FILE_ENV)
    if configured:
        path = Path(configured)
        try:
            return parse_private_key(path.read_bytes(), f"{KEY_FILE_ENV}={path}")
        except OSError as exc:
            raise ConfigError(f"{KEY_FILE_ENV}={path}: cannot read the trail signing key ({exc.strerror})") from None
    if files.default_key is None:
        raise ConfigError(
            f"the audit trail at {url_for_messages} needs a signing key: set {KEY_FILE_ENV} (a PEM Ed25519 key, "
            f"e.g. `openssl genpkey -algorithm ed25519 -out trail.key`) or {KEY_ENV}, and list its public half "
            "in policies/trail_keys.yaml"
        )
    return _default_key(files, store_is_empty)


def _default_key(files: TrailFiles, store_is_empty: Callable[[], bool]) -> SigningKey:
    """The embedded default: read ``audit.key``, or create it (0600, atomically) with its public half beside.

    Two processes creating it at once both write a complete temporary file and
    ``link`` it into place; exactly one link succeeds and both use that key.
    It is created, and its public half listed in ``audit.key.pub``, only for
    a store with no events: a missing key file of a trail with events is
    refused, and a key file nobody listed is returned unlisted (the writer
    then refuses it as replaced, and verify reports it).
    """
    path = files.default_key
    assert path is not None
    if not path.exists():
        if not store_is_empty():
            # Another process may have created the key and written the trail's first event since we looked: the key
            # is linked into place before any event is signed with it, so a trail with events and no key is refused
            # only when the key is still missing after the store answered
            if not path.exists():
                raise AuditError(
                    f"the trail signing key {path} is missing but the trail holds events; restore it from its "
                    "backup (a new key is made only with a new trail; key changes go through "
                    "`govern audit rotate-key`)"
                )
        else:
            _create_default_key(path)
    try:
        key = parse_private_key(path.read_bytes(), str(path))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the trail signing key ({exc.strerror})") from None
    if files.local_public_keys is not None and key.key_id not in _listed_ids(files.local_public_keys):
        if store_is_empty():  # first use (or a crash between creating the key and listing it)
            add_local_public_key(files, key)
    return key


def _create_default_key(path: Path) -> None:
    """Write a new key to ``path`` (0600) unless one is there: exactly one of several racing processes links its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(generate_key().pem())
    try:
        os.link(tmp, path)
        log.info("created the trail signing key at %s", path)
    except FileExistsError:
        pass  # another process created it first: use theirs
    finally:
        tmp.unlink(missing_ok=True)


def _listed_ids(path: Path) -> set[str]:
    try:
        return {line.split(" ", 1)[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    except FileNotFoundError:
        return set()


def install_default_key(files: TrailFiles, key: SigningKey) -> None:
    """Replace the embedded default key (after its rotation was recorded); the old private half is gone."""
    path = files.default_key
    assert path is not None
    add_local_public_key(files, key)
    write_atomic(path, key.pem(), permissions=0o600)


def add_local_public_key(files: TrailFiles, key: SigningKey) -> None:
    """Append ``<key id> <public key>`` to the local trusted-keys file."""
    if files.local_public_keys is None:
        return
    with files.local_public_keys.open("a", encoding="utf-8") as handle:
        handle.write(f"{key.key_id} {key.public_b64}\n")


@dataclass
class KeyRing:
    """Public keys a verifier trusts: listed in policies (reviewed when committed) and local (beside the store)."""

    reviewed: dict[str, tuple[bytes, str, dt.date]] = field(default_factory=dict)  # id -> (raw, owner, valid_from)
    local: dict[str, bytes] = field(default_factory=dict)
    #: why ``policies/trail_keys.yaml`` is not reviewed in git (None: committed and unchanged).
    unreviewed: str | None = None
    #: the key list this ring read (a stale-checkout diagnosis names it).
    policy_path: Path | None = None
    #: public keys parsed once per ring (a full verification checks a million signatures).
    _loaded: dict[bytes, Ed25519PublicKey] = field(default_factory=dict, repr=False, compare=False)

    def check(self, key_id: str, timestamp: str) -> tuple[str | None, str | None]:
        """``(trust, None)`` for a key trusted at ``timestamp``; ``(None, why not)`` otherwise."""
        if key_id in self.reviewed:
            _, owner, valid_from = self.reviewed[key_id]
            if timestamp[:10] >= valid_from.isoformat():
                if self.unreviewed is not None:
                    return f"{LISTED_TRUST} ({self.unreviewed}), owner {owner}", None
                return f"reviewed (policies/trail_keys.yaml, owner {owner})", None
            if key_id not in self.local:
                return None, f"signed by key {key_id} before its valid_from {valid_from.isoformat()}"
        if key_id in self.local:
            return LOCAL_TRUST, None
        return None, None

    def verify(self, key_id: str, event_hash: str, signature: str, public: str | bytes | None = None) -> bool:
        """Whether ``signature`` is ``key_id``'s signature of ``event_hash`` (``public`` for a rotated-in key)."""
        raw = self.reviewed[key_id][0] if key_id in self.reviewed else self.local.get(key_id)
        if raw is None and public is not None:
            raw = base64.b64decode(public) if isinstance(public, str) else public
        if raw is None:
            return False
        try:
            public_key = self._loaded.get(raw)
            if public_key is None:
                public_key = self._loaded[raw] = Ed25519PublicKey.from_public_bytes(raw)
            public_key.verify(base64.b64decode(signature, validate=True), message(event_hash))
        except (InvalidSignature, ValueError, binascii.Error):
            return False
        return True


_POLICY_CACHE: dict[tuple[str, int, int], TrailKeysPolicy] = {}


def load_keyring(files: TrailFiles) -> KeyRing:
    """The reviewed keys of ``policies/trail_keys.yaml`` (a missing file lists none) and this trail's local keys."""
    ring = KeyRing()
    ring.policy_path = files.trail_keys_policy  # named in a stale-checkout diagnosis, never trusted from history
    policy = _load_policy(files.trail_keys_policy)
    for key in policy.keys if policy is not None else []:
        ring.reviewed[key.id] = (base64.b64decode(key.public_key), key.owner, key.valid_from)
    if ring.reviewed:  # an empty list trusts nothing: no need to ask git
        ring.unreviewed = review_status(files.trail_keys_policy)
    path = files.local_public_keys
    if path is not None and path.is_file():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                key_id, public = line.split()
                raw = base64.b64decode(public, validate=True)
            except (ValueError, binascii.Error):
                raise ConfigError(f"{path}:{number}: not '<key id> <base64 public key>'") from None
            if fingerprint(raw) != key_id:
                raise ConfigError(f"{path}:{number}: key id {key_id} does not match its public key")
            ring.local[key_id] = raw
    return ring


def _load_policy(path: Path) -> TrailKeysPolicy | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    cache_key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if cache_key not in _POLICY_CACHE:
        _POLICY_CACHE[cache_key] = load_policy_file(path, TrailKeysPolicy)
    return _POLICY_CACHE[cache_key]


def stale_listing(keys: KeyRing, key_id: str) -> str | None:
    """The diagnosis of a stale checkout: another commit's key list names a key this checkout's does not.

    Says what to do (``git pull``); trusts nothing: the key still signs
    nothing here and every action still refuses until the checkout lists it.
    """
    from governance.policy.review import listed_in_history

    path = getattr(keys, "policy_path", None)
    found = listed_in_history(path, key_id) if path is not None else None
    if found is None:
        return None
    commit, ref = found
    return (
        f"which this checkout's {path} does not list but commit {commit[:12]} ({ref}) does: this checkout's policy "
        "is older than the trail; `git pull`, then verify again (every action refuses until then)"
    )
