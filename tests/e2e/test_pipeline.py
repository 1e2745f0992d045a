"""`dvc repro` end to end in a fresh copy: data → gates → training → evaluation → registry."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
import yaml
from e2e_support import fresh_copy, run

pytestmark = pytest.mark.slow


def _versions(workdir):
    result = run(["govern", "models", "--json"], workdir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _tags(workdir, name, version):
    from mlflow import MlflowClient

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(name, version).tags


def test_registered_lineage_matches_dvc_lock(repro_once):
    workdir, _, _ = repro_once
    lock = yaml.safe_load((workdir / "dvc.lock").read_text())["stages"]
    registration = json.loads((workdir / "artifacts/register_sft/registration.json").read_text())
    tags = _tags(workdir, registration["name"], registration["version"])
    locked = {dep["path"]: dep["md5"] for dep in lock["train_sft"]["deps"]}
    for path in ("artifacts/pii_scan_sft/data/train.jsonl", "artifacts/pii_scan_sft/data/eval.jsonl"):
        name = path.rsplit("/", 1)[-1]
        assert tags[f"lineage.data.{name}.md5"] == locked[path]
    assert tags["lineage.git_commit"] != "unknown"
    assert tags["lineage.parent_model"] == "builtin:tiny"


def test_gate_decisions_are_recorded(repro_once):
    workdir, _, _ = repro_once
    registration = json.loads((workdir / "artifacts/register_sft/registration.json").read_text())
    tags = _tags(workdir, registration["name"], registration["version"])
    assert tags["lineage.gate_decisions"] == "passed"
    assert set(tags["lineage.gates"].split(",")) == {"pii_scan_sft=passed", "validate_sft=passed"}
    for stage in ("pii_scan_sft", "validate_sft", "evaluate_sft"):
        decision = json.loads((workdir / f"artifacts/{stage}/decision.json").read_text())
        assert decision["passed"] is True, stage
    metrics = run(["dvc", "metrics", "show", "--json"], workdir)
    assert "pii_scan_sft/decision.json" in metrics.stdout


def test_every_version_is_pending_unless_its_evaluation_failed(repro_once):
    workdir, _, _ = repro_once
    versions = _versions(workdir)
    assert versions, "nothing registered"
    by_method = {v["method"]: v for v in versions}
    # Every method passes its evaluation on the built-in fixture with every deny rule measurable (issue 11): GRPO's
    # parent answers some held-out fact questions (not 0 vs 0), and neither RLHF parent nor child loops on every
    # held-out prompt (not 1 vs 1). A deny rule that could not be measured would leave its version blocked.
    assert {method: v["status"] for method, v in by_method.items()} == dict.fromkeys(by_method, "pending")
    for method in ("grpo", "rlhf"):
        decision = json.loads((workdir / f"artifacts/evaluate_{method}/decision.json").read_text())
        assert "not measurable" not in json.dumps([v for v in decision["violations"] if v["severity"] == "deny"])
    table = run(["govern", "models"], workdir).stdout
    assert "govllm-sft" in table and "pending" in table


def _metrics(workdir, method):
    return json.loads((workdir / f"artifacts/evaluate_{method}/metrics.json").read_text())


def test_each_method_moves_its_primary_metric_on_held_out_data(repro_once):
    """The default demonstrates each method learning what it optimises, measured on its held-out split."""
    workdir, _, _ = repro_once
    assert set(_versions_by_method(workdir)) == {"sft", "rm", "dpo", "kto", "orpo", "grpo", "rlhf"}
    sft = _metrics(workdir, "sft")
    assert sft["eval_loss"] < sft["base_eval_loss"]
    rm = _metrics(workdir, "rm")
    assert rm["accuracy"] > 0.5 and rm["mean_margin"] > 0  # chosen over rejected, above chance
    dpo = _metrics(workdir, "dpo")
    assert dpo["reward_accuracy"] > 0.5 and dpo["reward_margin"] > 0
    kto = _metrics(workdir, "kto")
    assert kto["reward_auc"] > 0.5 and kto["reward_separation"] > 0
    orpo = _metrics(workdir, "orpo")
    assert orpo["log_odds_accuracy"] > 0.5 and orpo["log_odds_ratio_gain"] > 0
    grpo = _metrics(workdir, "grpo")
    # Measurable (the parent answers some held-out prompts; issue 11) and ends on the checkable line more often. Since
    # SFT learns to refuse (issue 27) GRPO trains at a rate that keeps those refusals; on 31 held-out fact questions
    # its accuracy moves by a question either way from one setting to the next (params.yaml), so what holds is the
    # gate's own tolerance (eval.grpo.accuracy_vs_parent: at most 0.05 below the parent).
    assert grpo["parent_accuracy"] > 0 and grpo["accuracy_delta_vs_parent"] >= -0.05
    assert grpo["format_compliance"] > grpo["parent_format_compliance"]
    rlhf = _metrics(workdir, "rlhf")
    assert rlhf["reward_gain_vs_parent"] > 0 and rlhf["win_rate_vs_parent"] > 0.5  # the reward model prefers it


def _versions_by_method(workdir):
    return {v["method"]: v for v in _versions(workdir)}


def test_second_repro_does_no_work(repro_once):
    workdir, _, _ = repro_once
    started = time.perf_counter()
    again = run(["dvc", "repro"], workdir)
    seconds = time.perf_counter() - started
    print(f"\nno-op dvc repro: {seconds:.1f}s")  # noqa: T201
    assert again.returncode == 0, again.stderr
    assert "Running stage" not in again.stdout
    assert "up to date" in again.stdout


def test_reregistering_the_same_lineage_creates_no_duplicate(repro_once):
    workdir, _, _ = repro_once
    before = _versions(workdir)
    again = run(["python", "-m", "pipelines.register", "sft"], workdir)
    assert again.returncode == 0, again.stderr
    assert _versions(workdir) == before


def _registered_count(workdir) -> int:
    db = workdir / "mlflow.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from model_versions").fetchone()[0]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        ("malformed_raw_line", "prepare_sft: DataError: data/raw/sft.jsonl:5: invalid JSON"),
        (
            "params_typo",
            "prepare_sft: ConfigError: params.yaml: prepare_sft: eval_fration: "
            "unknown key (did you mean eval_fraction?)",
        ),
        ("missing_model_path", "base_model: ConfigError: params.yaml: base_model.name_or_path: /nonexistent/model"),
    ],
)
def test_bad_input_stops_with_one_clear_line(tmp_path, breakage, expected):
    workdir = fresh_copy(tmp_path / "repo")
    if breakage == "malformed_raw_line":
        lines = (workdir / "data/raw/sft.jsonl").read_text().splitlines(keepends=True)
        lines[4] = lines[4][: len(lines[4]) // 2] + "\n"
        (workdir / "data/raw/sft.jsonl").write_text("".join(lines))
    else:
        params = (workdir / "params.yaml").read_text()
        if breakage == "params_typo":
            params = params.replace("  eval_fraction:", "  eval_fration:", 1)
        else:
            params = params.replace("name_or_path: builtin:tiny", "name_or_path: /nonexistent/model", 1)
        (workdir / "params.yaml").write_text(params)
    # train_sft's upstream only (base model, SFT data and its gates): evaluate_sft would also pull in the
    # preference chain and the reward model before the broken stage is reached, minutes of a lean test
    failing_stage = expected.split(":", 1)[0]
    locked_before = yaml.safe_load((workdir / "dvc.lock").read_text())["stages"].get(failing_stage)
    result = run(["dvc", "repro", "train_sft"], workdir)
    assert result.returncode != 0
    assert expected in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    # DVC accepted nothing of the failed stage: its lock entry is the committed one
    assert yaml.safe_load((workdir / "dvc.lock").read_text())["stages"].get(failing_stage) == locked_before
    assert _registered_count(workdir) == 0
