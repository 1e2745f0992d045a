"""Governance library for the post-training pipeline.

Gates (PII, validation, evaluation), lineage, the MLflow registry view, the
hash-chained audit trail, approvals and reports. ``pipelines/`` calls into this
package; this package never imports ``pipelines/``.

Importing the package first sets the offline environment (:mod:`governance.offline`), so no
module below it can load a library that would reach the network before that is in place.
"""

from governance.offline import apply_offline_env

apply_offline_env()

__version__ = "0.1.0"
