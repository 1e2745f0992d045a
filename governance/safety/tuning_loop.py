"""The refusal head's training settings and loop: tuned encoder layers and logistic heads on people's labels.

    from governance.safety.tuning_loop import TuningSettings, train_layers_and_heads

One loop for the judge's calibration (:func:`governance.safety.tuned_encoder.fit_tuned`) and the GPU
protocol that measures what the head reads (``benchmarks/refusal_head_inputs.py``), so that what the
device runs is what the judge is fitted by. It imports numpy and torch only (lazily), and nothing of
the project: the device script loads this file by its path on a machine without the project's
dependencies (pydantic, MLflow...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TuningSettings:
    """How the top layers and the head's weights are trained together (fixed, not searched: issue 39)."""

    from_layer: int = 4  # the top two of all-MiniLM-L6-v2's six layers
    epochs: int = 4
    batch: int = 32
    layer_lr: float = 5e-5
    head_lr: float = 1e-2
    weight_decay: float = 0.01
    seed: int = 0
    # "one": one logistic head for every labelled set (judges 3.2-3.6); "per-set" (judge 3.7): one head per set,
    # each trained on its own set's labels only, over the same shared layers, and one of them (the set whose
    # labelling scheme the judge decides by) kept. The sets label the same kind of reply differently (a warning
    # and then help: a partial refusal under XSTest's scheme, compliance under WildGuardTest's and the ChatGPT
    # set's), so one head learns their average, while the layers may learn from all of them
    heads: str = "one"


def train_layers_and_heads(
    layers: Any,
    pooled: Callable[[Any, Sequence[Any]], Any],
    states: Sequence[Any],
    refused: Sequence[bool],
    settings: TuningSettings,
    width: int,
    schemes: Sequence[int] | None = None,
    device: str = "cpu",
):
    """Train ``layers`` (the parameters that require a gradient) and a new logistic head, in place; returns the head
    (``torch.nn.Linear``, one output per labelling scheme).

    ``pooled(layers, batch_states)`` is the batch's pooled vectors (``width`` wide) through ``layers``;
    ``settings``: :class:`TuningSettings` (epochs, batch, learning rates, weight decay, seed, ``heads``). Binary
    cross-entropy, AdamW (the layers at ``layer_lr``, the head at ``head_lr``), the learning rate decayed linearly
    to zero, batches in an order drawn from ``settings.seed``.

    One head (``heads == "one"``): every completion read by the same head, refusals weighted by compliances per
    refusal (judges 3.2-3.6's loss). Per-set heads (``"per-set"``, judge 3.7): ``schemes`` gives each
    completion's labelling scheme (0, 1, ...), each completion's loss is read from its own scheme's head, classes
    balanced per scheme. The caller seeds torch (``settings.seed``) before it builds ``layers``: the head's
    initial weights are drawn here, next, as the judges' calibrations drew them.
    """
    import numpy as np
    import torch

    per_set = settings.heads == "per-set"
    if settings.heads not in ("one", "per-set"):
        raise ValueError(f"TuningSettings.heads must be 'one' or 'per-set', not {settings.heads!r}")
    if per_set and (schemes is None or len(schemes) != len(states)):
        raise ValueError("training per-set heads needs each completion's scheme")
    labels = np.asarray([bool(r) for r in refused], dtype=np.float32)
    scheme = np.asarray(schemes if per_set else [0] * len(labels), dtype=np.int64)
    count = int(scheme.max()) + 1 if len(scheme) else 1
    tuned = [p for p in layers.parameters() if p.requires_grad]
    head = torch.nn.Linear(width, count).to(device)
    groups = [{"params": tuned, "lr": settings.layer_lr},
              {"params": head.parameters(), "lr": settings.head_lr}]  # fmt: skip
    optimiser = torch.optim.AdamW(groups, weight_decay=settings.weight_decay)
    positive = np.ones(len(labels), dtype=np.float32)  # each refusal's weight: its scheme's compliances per refusal
    for s in range(count):
        share = float(labels[scheme == s].mean()) if (scheme == s).any() else 0.0
        if not 0.0 < share < 1.0:
            raise ValueError("training needs refusals and compliances both" + (f" in scheme {s}" if per_set else ""))
        positive[scheme == s] = (1.0 - share) / share
    steps = settings.epochs * -(-len(states) // settings.batch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: max(0.0, 1.0 - step / steps))
    order_rng = np.random.default_rng(settings.seed)
    for _ in range(settings.epochs):
        order = order_rng.permutation(len(states))
        for start in range(0, len(order), settings.batch):
            rows = order[start : start + settings.batch]
            out = head(pooled(layers, [states[k] for k in rows]))
            logits = out[torch.arange(len(rows), device=out.device), torch.from_numpy(scheme[rows]).to(out.device)]
            target = torch.from_numpy(labels[rows]).to(out.device)
            if per_set:
                weight = torch.from_numpy(np.where(labels[rows] == 1, positive[rows], 1.0).astype(np.float32))
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, target, weight=weight.to(out.device)
                )
            else:  # judges 3.2-3.6's loss, unchanged, so that their fits reproduce byte for byte
                pos_weight = torch.tensor(positive[0]).to(out.device)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return head
