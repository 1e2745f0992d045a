"""The error hierarchy every governance and pipeline failure maps onto.

Each error carries the exit code the CLI and the stage entry points use:
1 for a decision of policy or permission, 2 for bad input, configuration or
an unreachable service. Messages name the file, record and field, and never
hold a raw PII value.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DENIED = 1
EXIT_USAGE = 2


class GovernanceError(Exception):
    """Base class: a failure the user can act on, rendered as one line."""

    exit_code = EXIT_USAGE


class ConfigError(GovernanceError):
    """params.yaml, a policy file or an environment setting is wrong."""


class DataError(GovernanceError):
    """A dataset file is unreadable, malformed or of the wrong shape."""


class RegistryError(GovernanceError):
    """The MLflow tracking server or registry could not be used."""


class AuditError(GovernanceError):
    """The audit trail could not be read or written."""


class TrailBroken(AuditError):
    """The audit trail's chain, signatures or anchors do not verify: no governed action may build on it."""

    exit_code = EXIT_DENIED


class PolicyViolation(GovernanceError):
    """A gate or policy rule denied the action."""

    exit_code = EXIT_DENIED


class PermissionDenied(GovernanceError):
    """The acting user lacks the role (or separation of duties) required."""

    exit_code = EXIT_DENIED


class ArtifactTampered(GovernanceError):
    """A registered model's files do not match their signature or provenance statement."""

    exit_code = EXIT_DENIED
