"""The shipped safety sets in a test workspace, gated, and the ``safety:`` params block for them."""

from __future__ import annotations

import shutil
from pathlib import Path

from e2e_support import commit_reviewed

from governance.gates import DatasetRef, dataset_ref, decide, publish_decision, read_decision
from governance.lineage import sha256_file

REPO = Path(__file__).resolve().parents[2]
SETS = ("red_team", "over_refusal", "sycophancy")
PII_DECISION = "artifacts/pii_scan_safety/decision.json"


def gate_safety_sets(root: Path) -> None:
    """Copy data/safety/ into ``root`` with a passing PII decision for its exact bytes, published as pii_scan_safety
    publishes it (into the audit trail in force)."""
    shutil.copytree(REPO / "data/safety", root / "data/safety", dirs_exist_ok=True)
    if not (root / "policies").is_dir():  # a gate decides only under the reviewed policy: the workspace's, committed
        shutil.copytree(REPO / "policies", root / "policies")
    # So does the judge, and the sources file that says which sets the safety rules mean: committed with the policies
    commit_reviewed(root, "policies", "data/safety")
    decision = decide(
        gate="pii",
        stage="pii_scan_safety",
        datasets=[
            DatasetRef(path=f"data/safety/{name}.jsonl", sha256=sha256_file(root / f"data/safety/{name}.jsonl"))
            for name in SETS
        ],
        policy_path="policies/pii.yaml",
        policy_version="1.0",
        violations=[],
    )
    publish_decision(decision, root / PII_DECISION, policy_sha256=sha256_file(REPO / decision.policy_path))


def republish_gate_decisions(root: Path) -> None:
    """Publish the workspace's data-gate decisions again, into the audit trail now in force (a test's own trail).

    The files are unchanged (a decision's bytes are a function of what it judged); only their signed events are
    new. Policy paths are read as the shipped policies (``REPO / policy_path``), as the fixtures decided them.
    """
    for path in sorted((root / "artifacts").glob("*/decision.json")):
        if path.parent.name.startswith(("pii_scan_", "validate_")):
            decision = read_decision(path)
            publish_decision(decision, path, policy_sha256=sha256_file(REPO / decision.policy_path))


def safety_params(
    *, parent_evaluation: str | None = None, reward_model: str | None = None, max_new_tokens: int = 24
) -> dict:
    """A ``safety:`` block reading the workspace copies (paths relative to the workspace); the budget is the shipped
    eval policy's floor (``safety.min_new_tokens``)."""
    return {
        **{name: f"data/safety/{name}.jsonl" for name in SETS},
        "sources": "data/safety/sources.yaml",
        "judge": "data/safety/judge.yaml",
        "pii_decision": PII_DECISION,
        "max_new_tokens": max_new_tokens,
        "batch_size": 26,
        "parent_evaluation": parent_evaluation,
        "reward_model": reward_model,
    }


#: The validation kind each test dataset is judged as (a training stage refuses data judged under another kind)
DATASET_KIND = {"sft": "sft", "preference": "preference", "kto": "kto", "grpo": "prompt", "rlhf": "rlhf"}


def gate_details(gate: str, files: list[str] | list[Path], dataset: str) -> dict | None:
    """What a real validation decision says of the rules' kind and each file's role (``details``): a training stage
    trains only on the file judged as ``train`` under its method's kind, an evaluation holds out only one judged as
    ``eval``; a file named ``eval.jsonl`` is the eval split here."""
    if gate != "validation":
        return None
    roles = {str(f): {"role": "eval" if Path(f).stem == "eval" else "train"} for f in files}
    return {"kind": DATASET_KIND[dataset], "files": roles}


def publish_passing_gates(dataset: str, files: list[str] | None = None) -> None:
    """Passing PII and validation decisions for these exact files (default: the prepared train and eval files
    of ``dataset``), as the gate stages publish them, into the audit trail in force."""
    files = files or [f"data/prepared/{dataset}/train.jsonl", f"data/prepared/{dataset}/eval.jsonl"]
    for gate, stage in (("pii", f"pii_scan_{dataset}"), ("validation", f"validate_{dataset}")):
        decision = decide(
            gate=gate,
            stage=stage,
            datasets=[dataset_ref(f) for f in files],
            policy_path=f"policies/{'pii' if gate == 'pii' else 'data'}.yaml",
            policy_version="1.0",
            violations=[],
            details=gate_details(gate, files, dataset),
        )
        publish_decision(decision, f"artifacts/{stage}/decision.json")


def lower_eval_budgets(policies: Path) -> None:
    """A test checkout's eval policy with every budget floor at 1 (``budgets``): these tests evaluate on a few prompts
    and tokens to stay fast, a change their checkout's ``commit_reviewed`` reviews. The floors themselves are
    ``test_evaluation_budgets.py``'s."""
    import re

    path = Path(policies) / "eval.yaml"
    out, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("budgets:"):
            inside = True
        elif inside and line[:1] not in (" ", "#", "\n"):
            inside = False
        out.append(re.sub(r": \d+", ": 1", line) if inside and line.startswith("  ") else line)
    path.write_text("".join(out), encoding="utf-8")
