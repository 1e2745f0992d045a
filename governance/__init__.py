"""Governance library for the post-training pipeline.

Gates (PII, validation, evaluation), lineage, the MLflow registry view, the
hash-chained audit trail, approvals and reports. ``pipelines/`` calls into this
package; this package never imports ``pipelines/``.
"""

__version__ = "0.1.0"
