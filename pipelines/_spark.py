"""The ``engine``/``spark`` params the gate stages share: which engine runs a gate, and Spark's settings."""

from __future__ import annotations

from typing import Literal

from governance.policy import Strict


class SparkParams(Strict):
    """``spark:`` of a gate section; a cluster master URL (``spark://host:7077``, ``yarn``) is configuration."""

    master: str = "local[2]"
    app_name: str = "governance-gates"
    conf: dict[str, str] = {}


Engine = Literal["local", "spark"]
