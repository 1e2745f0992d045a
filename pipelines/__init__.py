"""DVC stage entry points: one module per stage, run as ``python -m pipelines.<stage>``.

Stages read ``params.yaml``, call ``governance`` for gates, lineage and the
registry, and write only their declared outs.
"""

import sys as _sys

# `python -m pipelines.<stage>`: the stage may run in a child of a warm stage server (see _stage_server)
if _sys.argv[:1] == ["-m"]:
    from pipelines._stage_server import handoff_from_argv

    handoff_from_argv()
