"""DVC stage entry points: one module per stage, run as ``python -m pipelines.<stage>``.

Stages read ``params.yaml``, call ``governance`` for gates, lineage and the
registry, and write only their declared outs.
"""
