"""One model looked at again: its registry drift recorded in the trail, and reverted when the policy says so.

Trust boundary: the trail (with the approvals policy) says what each alias, ``governance.*`` tag
and frozen ``lineage.*`` tag must be; the registry is read afresh here and read once more under the trail's append lock
before anything is recorded, so a govern action's own mirror write (made just before its event
commits) is never mistaken for drift. What triggered the look (a verified webhook delivery) is
recorded beside the drift as what was announced, never as what was found.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict, dataclass

from governance import trail
from governance.approvals import Drift, PolicyInForce, find_drift, policy_in_force, reconcile
from governance.approvals import write_trail_head as _write_trail_head
from governance.errors import PermissionDenied, RegistryError
from governance.identity import Identity
from governance.trail import Event, Subject
from governance.watch.signature import Delivery

log = logging.getLogger(__name__)

#: The role a drift event is recorded under when the watcher's account holds none in the policy.
WATCH_ROLE = "registry watch"
#: Times the check starts over when the drift changed between the first read and the locked one.
_ATTEMPTS = 3


@dataclass(frozen=True)
class CheckOutcome:
    """What one look at a model found and did."""

    model: str
    drift: list[Drift]
    recorded: Event | None = None  # the registry_drift event (created now, or the same drift already on record)
    reconciled: Event | None = None  # the registry_reconciled event of a revert

    @property
    def left(self) -> bool:
        """Whether MLflow still disagrees with the trail after this check."""
        return bool(self.drift) and self.reconciled is None


class _DriftChanged(Exception):
    """Under the append lock the drift was gone or different from what was read before it."""


def check_model(name: str, identity: Identity, delivery: Delivery | None = None) -> CheckOutcome:
    """Compare ``name``'s aliases and ``governance.*`` tags with the trail; record drift as a ``registry_drift``
    event (once: the same standing drift is not recorded twice) and, under ``registry_watch.on_drift: revert``,
    run reconcile, which restores MLflow and records ``registry_reconciled``.
    """
    in_force = policy_in_force()
    policy = in_force.policy
    for _ in range(_ATTEMPTS):
        drift = find_drift(name, policy=in_force, served=False)  # a served location has no webhook; audit verify
        if not drift:
            return CheckOutcome(name, [])
        trail.require_intact()
        try:
            event = _record(name, drift, identity, delivery, in_force)
            break
        except _DriftChanged:
            continue
    else:
        log.warning("%s: the registry kept changing during %d checks; the next delivery looks again", name, _ATTEMPTS)
        return CheckOutcome(name, [])
    if event.created:
        with contextlib.suppress(RegistryError, PermissionDenied):  # recorded; the model's anchor tag can lag
            _write_trail_head(name)
        for d in drift:
            log.warning("registry drift recorded (event #%s): %s", event.seq, d.line())
    if policy.registry_watch.on_drift != "revert":
        return CheckOutcome(name, drift, event)
    _, reconciled = reconcile(
        name,
        identity=identity,
        reason=f"govern watch (registry_watch.on_drift: revert): undoing the drift recorded as event #{event.seq}",
    )
    return CheckOutcome(name, drift, event, reconciled)


def _record(
    name: str, drift: list[Drift], identity: Identity, delivery: Delivery | None, in_force: PolicyInForce
) -> Event:
    policy, on_drift = in_force.policy, in_force.policy.registry_watch.on_drift
    found = [asdict(d) for d in drift]

    def same_drift_or_already_recorded(events: list[Event]) -> Event | None:
        # Read again with the lock held: a govern action mirrors MLflow just before its event commits
        if [asdict(d) for d in find_drift(name, policy=in_force, served=False)] != found:
            raise _DriftChanged()
        # A redelivery, or another tag event while the same drift stands: on record once
        last = next((e for e in reversed(events) if e.event_type in ("registry_drift", "registry_reconciled")), None)
        if last is not None and last.event_type == "registry_drift" and last.details.get("drift") == found:
            return last
        return None

    announced = f"after {delivery.event}" if delivery else "on a sweep"
    return trail.record(
        "registry_drift",
        actor=identity.user,
        role=",".join(policy.roles_of(identity.user)) or WATCH_ROLE,
        subject=Subject(model=name),
        reason=(
            f"MLflow disagrees with the audit trail in {len(drift)} alias/tag value(s) of {name}, seen by govern watch "
            f"{announced}; on_drift: {on_drift}"
        ),
        identity_method=identity.method,
        evidence={"approvals_policy_sha256": in_force.sha256},
        details={
            **identity.details(),
            "drift": found,
            "announced": delivery.summary() if delivery else {"event": "sweep"},
            "on_drift": on_drift,
        },
        guard=same_drift_or_already_recorded,
    )
