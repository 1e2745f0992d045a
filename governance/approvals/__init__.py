"""Who may approve, reject, promote, canary, roll back and withdraw a model version — and the record of it.

Every action is decided by ``policies/approvals.yaml`` against facts from the
audit trail (the truth), written to the trail through
:func:`governance.trail.record`, and mirrored to MLflow (aliases and
``governance.*`` version tags: the view the MLflow UI shows). Each refusal
names the rule that failed and is itself recorded as ``permission_denied``.
Open incidents are read from :mod:`governance.incident_state` (the trail); the
incident commands (:mod:`governance.incidents`) sit above this package.

The package is split along its seams:

* :mod:`~governance.approvals.state` — state folded from trail events;
* :mod:`~governance.approvals.checks` — policy checks (who may do what);
* :mod:`~governance.approvals.preconditions` — what must hold before any action;
* :mod:`~governance.approvals.actions` — actions that write the trail and mirror to MLflow;
* :mod:`~governance.approvals.denials` — every refusal recorded as ``permission_denied``;
* :mod:`~governance.approvals.registration` — registration, gate and evaluation facts;
* :mod:`~governance.approvals.mirror` — the MLflow view (tags, aliases) written from the trail (the trail-head
  anchor is :mod:`governance.registry_anchors`, a layer down: incidents, monitoring and reproduction move it too);
* :mod:`~governance.approvals.reconcile` — drift between MLflow and the trail, and its recorded repair;
* :mod:`~governance.approvals.policy_change` — a recorded, approved change of the approvals policy itself.
"""

from governance.approvals.actions import (
    Outcome,
    approve,
    canary,
    canary_end,
    clean_reason,
    history,
    promote,
    reject,
    require_pinned_policy,
    rollback,
    withdraw,
)
from governance.approvals.checks import (
    ACTION_RULES,
    NOT_STATED,
    POLICY_DIR_ENV,
    POLICY_PINNED_RULE,
    Check,
    PolicyInForce,
    approvals_policy_path,
    check_action,
    default_rollback_target,
    load_approval_waivers,
    load_approvals_policy,
    policy_dir,
    policy_in_force,
    policy_pin_message,
    project_policy_pin,
    read_policy,
    role_violation,
)
from governance.approvals.denials import record_denial
from governance.approvals.mirror import (
    TAG_ALIAS_HISTORY,
    TAG_APPROVAL_STATUS,
    TAG_APPROVALS_REQUIRED,
    TAG_APPROVERS,
    TAG_EVAL_STATUS,
    TAG_GATE_STATUS,
    TAG_LAST_EVENT,
    TAG_REJECTED_BY,
    TAG_TRAIL_HEAD,
    mirror,
    registry_anchors,
    view_tags,
    write_trail_head,
)
from governance.approvals.policy_change import PolicyChangeOutcome, policy_diff, record_policy_change
from governance.approvals.preconditions import require_preconditions
from governance.approvals.reconcile import Drift, find_drift, reconcile, reconciled_events
from governance.approvals.registration import (
    production_metrics,
    record_eval_decision,
    record_gate_decision,
    record_registration,
    require_registration_policy,
    require_risk_tier,
)
from governance.approvals.state import (
    ALIAS_CANARY,
    ALIAS_ENDING_EVENTS,
    ALIAS_EVENTS,
    ALIAS_PRODUCTION,
    POLICY_SUBJECT,
    ModelState,
    PolicyChange,
    VersionState,
    alias_history,
    describe_withdrawal,
    event_aliases,
    model_state,
    normalize_version,
    pinned_policy,
    policy_changes,
    policy_trail,
    version_state,
)

__all__ = [
    "ACTION_RULES",
    "ALIAS_CANARY",
    "ALIAS_ENDING_EVENTS",
    "ALIAS_EVENTS",
    "ALIAS_PRODUCTION",
    "POLICY_DIR_ENV",
    "POLICY_PINNED_RULE",
    "POLICY_SUBJECT",
    "TAG_ALIAS_HISTORY",
    "TAG_APPROVALS_REQUIRED",
    "TAG_APPROVAL_STATUS",
    "TAG_APPROVERS",
    "TAG_EVAL_STATUS",
    "TAG_GATE_STATUS",
    "TAG_LAST_EVENT",
    "TAG_REJECTED_BY",
    "TAG_TRAIL_HEAD",
    "Check",
    "Drift",
    "ModelState",
    "Outcome",
    "PolicyChange",
    "PolicyChangeOutcome",
    "NOT_STATED",
    "PolicyInForce",
    "VersionState",
    "alias_history",
    "approvals_policy_path",
    "approve",
    "canary",
    "canary_end",
    "clean_reason",
    "check_action",
    "default_rollback_target",
    "describe_withdrawal",
    "event_aliases",
    "find_drift",
    "history",
    "load_approval_waivers",
    "load_approvals_policy",
    "mirror",
    "model_state",
    "normalize_version",
    "pinned_policy",
    "policy_changes",
    "policy_diff",
    "policy_dir",
    "policy_in_force",
    "policy_pin_message",
    "policy_trail",
    "production_metrics",
    "promote",
    "record_denial",
    "record_eval_decision",
    "record_gate_decision",
    "record_policy_change",
    "record_registration",
    "require_pinned_policy",
    "require_registration_policy",
    "require_risk_tier",
    "project_policy_pin",
    "reconcile",
    "read_policy",
    "reconciled_events",
    "registry_anchors",
    "reject",
    "require_preconditions",
    "role_violation",
    "rollback",
    "version_state",
    "view_tags",
    "withdraw",
    "write_trail_head",
]
