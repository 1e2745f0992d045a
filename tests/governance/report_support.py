"""Build a registered model version the way the SFT spine records one, without training.

Used by the report tests to get a version in seconds: real gate decisions
(the validation gate runs great-expectations on generated conversations; the
PII decision goes through ``governance.gates.decide``), published to the audit
trail as the gate stages publish them, a real evaluation gate
(``governance.evaluation.evaluate_gate`` under ``policies/eval.yaml``), and the
same MLflow run shape as ``pipelines/_training.py`` writes: params
``pipeline.*``, tags ``lineage.*``/``env.*``, artifacts ``lineage.json``,
``gates/<stage>/decision.json``, ``model/`` with ``manifest.json`` and
``evaluation/``, and a loss history like TRL's MLflow callback logs. The full
pipeline's own output is covered by tests/e2e/test_report_browser.py.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow
from e2e_support import commit_reviewed

from governance import approvals, registry
from governance.approvals import record_registration
from governance.evaluation import GENERATIONS_EVIDENCE, evaluate_gate
from governance.gates import dataset_ref, publish_decision, write_decision
from governance.lineage import file_refs, policy_versions, sha256_dir, sha256_file, sha256_json, write_manifest
from governance.pii import PiiScanner, run_pii_gate, write_findings_report
from governance.policy.pii import load_pii_policy
from governance.statistics import ratio_of_sums, shares
from governance.validation.gate import run_validation_gate

REPO = Path(__file__).resolve().parents[2]
PROJECT = "rpt"
#: Raw PII planted in the fixture's prepared data; the PII gate redacts it and no report may contain it.
PLANTED_EMAIL = "jane.planted@example.org"
PLANTED_CARD = "4111 1111 1111 1111"
PLANTED_PHONE = "(415) 555-0132"
PLANTED = (PLANTED_EMAIL, PLANTED_CARD, PLANTED_PHONE)
PLANTED_SENTENCES = (
    f"My email is {PLANTED_EMAIL}.",
    f"Please charge card {PLANTED_CARD} again.",
    f"Call me back on {PLANTED_PHONE} tomorrow.",
)


@dataclass(frozen=True)
class BuiltVersion:
    name: str
    version: str
    run_id: str
    workdir: Path
    model_sha256: str = ""


def use_own_stores(mp, root: Path, user: str = "dana") -> None:
    """Point MLflow, the audit trail and the acting user at ``root``'s own stores, under the shipped policies."""
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mp.setenv("GOVERN_AUDIT_URL", f"sqlite:///{root / 'audit.db'}")
    mp.setenv("GOVERN_POLICY_DIR", str(REPO / "policies"))
    mp.setenv("GOVERN_USER", user)


def write_conversations(path: Path, n: int, offset: int, plant: bool = False) -> None:
    rows = []
    for i in range(offset, offset + n):
        user = f"Question number {i}: how do I change the address on account {i * 7}?"
        if plant and i - offset < len(PLANTED):
            user += " " + PLANTED_SENTENCES[i - offset]
        rows.append(
            {
                "id": str(i),
                "messages": [
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": f"Open settings, choose profile {i}, and edit the address."},
                ],
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@functools.cache
def _scanner() -> PiiScanner:
    """One presidio engine per test process (building it is the slow part of a scan)."""
    path = REPO / "policies/pii.yaml"
    return PiiScanner(load_pii_policy(path), path)


def reviewed_policies(workdir: Path) -> None:
    """The shipped policies in ``workdir``, committed there: a gate decides only under the reviewed policy."""
    if not (workdir / "policies").is_dir():
        shutil.copytree(REPO / "policies", workdir / "policies")
        commit_reviewed(workdir)


def _pii_gate(prepared: list[Path], cleared_dir: Path, stage: str):
    """The real PII gate under policies/pii.yaml: scan, redact into ``cleared_dir``, re-scan, decide."""
    return run_pii_gate(
        prepared,
        kind="sft",
        policy_path="policies/pii.yaml",
        stage=stage,
        cleared_dir=cleared_dir,
        scanner=_scanner(),
    )


def gated_base(workdir: Path, lines: int = 1200) -> dict:
    """The built-in base model's ``base`` block as the base_model stage writes it, on a corpus the real gates passed.

    The corpus is written as prepare_corpus writes it (records, manifest with the dataset card), cleared by
    the real PII gate and judged by the real validation gate (kind text), both published to the trail in
    force; the block is pipelines.base_model.corpus_record over the bytes read through read_gated_data.
    Call with the current directory set to ``workdir``.
    """
    from governance.training_data import read_gated_data
    from pipelines.base_model import corpus_record

    reviewed_policies(workdir)
    prepared = Path("data/prepared/corpus")
    prepared.mkdir(parents=True, exist_ok=True)
    (prepared / "train.jsonl").write_text(
        "".join(
            json.dumps({"id": f"line-{i}", "text": f"Line {i}: open Settings, then Security, to reset a password."})
            + "\n"
            for i in range(1, lines + 1)
        )
    )
    card = {
        "source": "synthetic, written by the report tests",
        "license": "cc-by-4.0",
        "rights_reservation": "none to honour: written for these tests; no third-party works",
    }
    write_manifest(prepared, {"stage": "prepare_corpus", "card": card, "rows": {"train": lines}})
    cleared = Path("artifacts/pii_scan_corpus/data")
    pii = run_pii_gate(
        [prepared / "train.jsonl"],
        kind="text",
        policy_path="policies/pii.yaml",
        stage="pii_scan_corpus",
        cleared_dir=cleared,
        scanner=_scanner(),
    )
    gates = ["artifacts/pii_scan_corpus/decision.json", "artifacts/validate_corpus/decision.json"]
    publish_decision(pii.decision, gates[0])
    validation = run_validation_gate(
        kind="text",
        train=cleared / "train.jsonl",
        eval_path=None,
        policy_path="policies/data.yaml",
        waivers_path=None,
        stage="validate_corpus",
    )
    publish_decision(validation, gates[1])
    corpus = read_gated_data("base_model", {"corpus": str(cleared / "train.jsonl")}, gates)
    return {
        "name_or_path": "builtin:tiny",
        "license": "apache-2.0",
        "model_sha256": "b" * 64,
        "trained_by_project": True,
        "training": {
            "what": "byte-level BPE tokenizer trained on the corpus; weights randomly initialised (seed 42)",
            "wall_seconds": 0.8,
            "environment": {"cpu_model": "Test CPU", "cpu_logical_cores": 2, "accelerator": "cpu"},
            "energy": {"method": "estimate: power limit x time", "joules": None, "reason": "no CUDA device"},
        },
        "corpus": corpus_record(corpus, lines, gates),
    }


def build_version(
    workdir: Path,
    *,
    eval_ratio: float = 0.8,
    with_pii_gate: bool = True,
    tamper_validation: bool = False,
    risk_tier: str = "medium",
    intended_use: bool = True,
    lineage_key: str = "k1",
    in_trail: bool = True,
    project: str = PROJECT,
    forged: bool = False,
    signed: bool = False,
    method: str = "sft",
    parent: BuiltVersion | None = None,
    base: dict | None = None,
    generations: list[dict] | None = None,
) -> BuiltVersion:
    """Create data, gate decisions, a training run and a pending registered version ``<project>-sft``.

    Paths are relative, as the pipeline records them: call with the current
    directory set to ``workdir``. ``forged`` builds the red team's version of
    issue 31: PII appended to the gated data after the PII gate, its hash
    rewritten in that gate's decision (then validated, trained and registered
    on), and an evaluation decision written without its stage publishing it. ``signed`` attests the
    version as ``register_sft`` does (model-signing signature, DSSE in-toto/SLSA statement, digests in the trail).
    ``method`` other than sft registers ``<project>-<method>`` trained (stage ``train_<method>``, full fine-tuning as
    the shipped params do) from ``parent``'s model; ``base`` is the lineage's base block (:func:`gated_base`).
    The evaluation stays the SFT-shaped one either way: the report's chain is what these tests read.
    """
    reviewed_policies(workdir)
    prepared = workdir / "data/prepared/sft"
    write_conversations(prepared / "train.jsonl", 520, 0, plant=True)
    write_conversations(prepared / "eval.jsonl", 60, 10_000)
    data = workdir / "artifacts/pii_scan_sft/data"
    train, evaluation = data / "train.jsonl", data / "eval.jsonl"
    # Gates: the real PII gate (redacting the planted values) and the real validation gate
    pii = _pii_gate([prepared / "train.jsonl", prepared / "eval.jsonl"], data, "pii_scan_sft")
    if not pii.decision.passed:
        raise AssertionError(f"fixture PII gate denied: {pii.decision.summary_lines()}")
    decisions = []
    if with_pii_gate:
        write_findings_report(pii.report, workdir / "artifacts/pii_scan_sft/findings.json")
        publish_decision(pii.decision, workdir / "artifacts/pii_scan_sft/decision.json")
        decisions.append((pii.decision, workdir / "artifacts/pii_scan_sft/decision.json"))
    if forged:
        # The attack as scripted: append records with raw PII to the gated data, rewrite its hash in decision.json
        gated = sha256_file(train)
        with train.open("a") as handle:
            handle.writelines(
                json.dumps({"id": f"x{i}", "messages": [
                    {"role": "user", "content": f"My SSN is 123-45-{6700 + i}; card {PLANTED_CARD}; {PLANTED_EMAIL}"},
                    {"role": "assistant", "content": "Noted."}]}) + "\n"
                for i in range(30)
            )  # fmt: skip
        path = workdir / "artifacts/pii_scan_sft/decision.json"
        path.write_text(path.read_text().replace(gated, sha256_file(train)))
    validation = run_validation_gate(
        kind="sft",
        train=train,
        eval_path=evaluation,
        policy_path="policies/data.yaml",
        waivers_path=None,
        stage="validate_sft",
    )
    publish_decision(validation, workdir / "artifacts/validate_sft/decision.json")
    decisions.append((validation, workdir / "artifacts/validate_sft/decision.json"))
    params = {
        "base_model": "artifacts/base_model",
        "train_file": str(train),
        "eval_file": str(evaluation),
        "gate_decisions": [str(p) for _, p in decisions],
        "adapter": {
            "method": "lora" if method == "sft" else "none",
            "lora": {"r": 8, "lora_alpha": 16, "target_modules": "all-linear"},
        },
        "trl": {
            "max_steps": 12,
            "learning_rate": 0.003,
            "per_device_train_batch_size": 8,
            "seed": 42,
            "logging_steps": 2,
        },
    }
    stage = f"train_{method}"
    lineage = {
        "stage": stage,
        "params": params,
        "params_sha256": sha256_json(params),
        "datasets": file_refs([train, evaluation]),
        "gates": [
            {
                "gate": d.gate,
                "stage": d.stage,
                "passed": d.passed,
                "policy_version": d.policy_version,
                "counts": d.counts,
                "decision": str(p),
                "decision_sha256": sha256_file(p),
            }
            for d, p in decisions
        ],
        "parent": (
            {
                "stage": "train_sft",
                "dir": "artifacts/train_sft",
                "name_or_path": "artifacts/train_sft",
                "model_sha256": parent.model_sha256,
                "license": "apache-2.0",
            }
            if parent is not None
            else {
                "stage": "base_model",
                "dir": "artifacts/base_model",
                "name_or_path": "builtin:tiny",
                "model_sha256": (base or {}).get("model_sha256", "0" * 64),
                "license": "apache-2.0",
            }
        ),
        "base": base or {"name_or_path": "builtin:tiny", "license": "apache-2.0"},
        # As train_sft records it (pipelines/_loss_masking.py): the built-in template carries its own markers
        "loss_masking": {
            "strategy": "template_markers",
            "template_sha256": "7e3a" * 16,
            "template_source": "model chat template",
            "served_template_sha256": "7e3a" * 16,
        },
        "trained_by": "trainer-bot",
        "git_commit": "c0ffee" * 6 + "abcd",
        "git_dirty": False,
        "lock_sha256": sha256_file(REPO / "requirements.lock"),
        "policies": policy_versions(REPO / "policies"),
        "environment": {
            "python": "3.11.9",
            "platform": "Linux-x86_64",
            "cpu_count": 2,
            "torch": "2.13.0",
            "cuda_available": False,
            "accelerator": "cpu",
            "transformers": "5.23.0",
            "trl": "1.16.0",
            "peft": "0.19.1",
        },
    }
    if tamper_validation:
        # Changed after training recorded its hash: the report must flag it.
        path = workdir / "artifacts/validate_sft/decision.json"
        path.write_text(path.read_text().replace('"passed": true', '"passed": true ', 1))
    # The training run, shaped like pipelines/_training.py's
    model_dir = workdir / f"artifacts/{stage}"
    model_dir.mkdir(parents=True)
    (model_dir / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["Qwen2ForCausalLM"],
                "model_type": "qwen2",
                "hidden_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "vocab_size": 2048,
                "max_position_embeddings": 512,
                "dtype": "float32",
            }
        )
    )
    # A forged version's weights differ: the other scenarios' evaluation (same bytes, published) is not its own
    weights = b"forged" if forged else b"weights" if method == "sft" else method.encode() + b"-weights"
    (model_dir / "model.safetensors").write_bytes(weights * 100)
    with registry.stage_run(project, stage, {"method": method}) as run:
        mlflow.log_params({k: str(v) for k, v in registry.flatten("pipeline", params).items()})
        mlflow.log_params({"learning_rate": "0.003", "lr_scheduler_type": "cosine", "num_train_epochs": "3"})
        mlflow.set_tags(
            {
                "lineage.git_commit": lineage["git_commit"],
                **{f"env.{k}": str(v) for k, v in lineage["environment"].items()},
            }
        )
        mlflow.log_dict(lineage, "lineage.json")
        for gate in lineage["gates"]:
            mlflow.log_artifact(gate["decision"], artifact_path=f"gates/{gate['stage']}")
            findings = Path(gate["decision"]).with_name("findings.json")
            if findings.is_file():
                mlflow.log_artifact(str(findings), artifact_path=f"gates/{gate['stage']}")
        for step in range(2, 13, 2):
            mlflow.log_metrics(
                {
                    "loss": 7.0 * math.exp(-step / 6) + 0.5,
                    "learning_rate": 0.003 * (1 - step / 12),
                    "mean_token_accuracy": 0.1 + step / 20,
                },
                step=step,
            )
        mlflow.log_metrics({"train_runtime": 4.2, "total_flos": 1234.0, "train_loss": 2.1})
        manifest = {
            **lineage,
            "model_sha256": sha256_dir(model_dir),
            "model_path": str(model_dir),
            "license": "apache-2.0",
            "run_id": run.info.run_id,
            "wall_seconds": 4.5,
            "global_steps": 12,
            "tokens_seen": 24_576,
            "train_history": [],
            "method": method,
            "adapter": params["adapter"],
            "seed": 42,
        }
        write_manifest(model_dir, manifest)
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
    # Evaluation: the real gate under policies/eval.yaml
    metrics = {
        "eval_loss": 2.0,
        "perplexity": 7.39,
        "base_eval_loss": 2.2,
        "base_perplexity": 9.03,
        "perplexity_ratio_vs_base": eval_ratio,
        "empty_generation_rate": 0.0,
        "mean_generation_chars": 40.0,
        "eval_conversations": 60,
    }
    # The per-item outcomes the gate's intervals read: 60 conversations of 10 tokens, 3 prompts
    spread = [1 + 0.01 * (i % 5 - 2) for i in range(60)]
    evidence = {
        "eval_loss": ratio_of_sums([20.0 * s for s in spread], [10.0] * 60, "conversations"),
        "perplexity_ratio_vs_base": ratio_of_sums(
            [10.0 * eval_ratio * s for s in spread], [10.0] * 60, "conversations"
        ),
        "empty_generation_rate": shares([False] * 3, "prompts"),
    }
    name = f"{project}-{method}"
    decision = evaluate_gate(
        method="sft",
        stage="evaluate_sft",
        metrics=metrics,
        evidence=evidence,
        subject=f"{model_dir} (model {manifest['model_sha256'][:12]})",
        datasets=[dataset_ref(evaluation, 60)],
        policy_path="policies/eval.yaml",
        production=approvals.production_metrics(name),
    )
    eval_dir = workdir / "artifacts/evaluate_sft"
    eval_dir.mkdir(parents=True)
    (eval_dir / "metrics.json").write_text(json.dumps(metrics))
    generated = generations or [{"prompt": "What is 12 + 30?", "completion": "42"}]  # the monitor's default baseline
    generations_bytes = json.dumps(generated).encode()
    (eval_dir / "generations.json").write_bytes(generations_bytes)
    if forged:
        write_decision(decision, eval_dir / "decision.json")  # the file alone: no evaluate stage published it
    else:  # as the evaluate stage publishes it: the model, and the generations the monitor takes as a baseline
        bound = {
            "model_sha256": manifest["model_sha256"],
            GENERATIONS_EVIDENCE: hashlib.sha256(generations_bytes).hexdigest(),
        }
        publish_decision(decision, eval_dir / "decision.json", evidence=bound)
    write_manifest(
        eval_dir,
        {"stage": "evaluate_sft", "model_sha256": manifest["model_sha256"], "training_run_id": run.info.run_id},
    )
    registry.client().log_artifacts(run.info.run_id, str(eval_dir), artifact_path="evaluation")
    # Registration, tagged like pipelines/register.py
    tags = {
        "lineage.method": method,
        "lineage.model_sha256": manifest["model_sha256"],
        "lineage.training_run_id": run.info.run_id,
        "lineage.git_commit": lineage["git_commit"],
        "lineage.base_model": "builtin:tiny",
        "lineage.parent_model": "artifacts/train_sft" if parent is not None else "builtin:tiny",
        "lineage.eval_decision": "passed" if decision.passed else "denied",
        "lineage.eval_decision_sha256": sha256_file(eval_dir / "decision.json"),
        "lineage.trained_by": "trainer-bot",
        "lineage.registered_by": "pipeline-bot",
        "lineage.risk_tier": risk_tier,
        "governance.eval_status": "passed" if decision.passed else "eval_failed",
        **{f"metric.{k}": f"{float(v):.6g}" for k, v in metrics.items()},
    }
    if intended_use:
        tags["lineage.intended_use"] = "Drafts for support agents, reviewed before sending."
        tags["lineage.out_of_scope"] = "Unreviewed advice of any kind."
    version, _ = registry.register_version(
        name,
        run_id=run.info.run_id,
        artifact_path="model",
        lineage_key=lineage_key,
        tags=tags,
        description="SFT model trained from builtin:tiny.",
    )
    attested = {}
    if signed:
        from governance.provenance import attest_registered_version

        attested = attest_registered_version(
            name,
            str(version.version),
            trained=manifest,
            commands={"train_sft": "python -m pipelines.train_sft"},
            runs={"training": run.info.run_id},
        )
    if in_trail:
        # What pipelines/register.py records: the registration, gate and eval status, frozen in the trail
        record_registration(
            name,
            str(version.version),
            actor="pipeline-bot",
            evidence={
                "model_sha256": manifest["model_sha256"],
                "eval_decision_sha256": tags["lineage.eval_decision_sha256"],
                **attested,
            },
            gate_status="passed",
            eval_status=tags["governance.eval_status"],
            metrics=metrics,
        )
    return BuiltVersion(name, str(version.version), run.info.run_id, workdir, manifest["model_sha256"])
