"""The validate_<dataset> stage: decision bound to the files, exit codes, no stale decision on bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from e2e_support import commit_reviewed

from governance import trail
from governance.datasets.quarantine import record_prepared
from governance.errors import PolicyViolation
from governance.gates import read_decision, require_passed_gates
from governance.lineage import sha256_file
from governance.policy import load_yaml, validate_model
from pipelines.validate import ValidateParams, main

REPO = Path(__file__).resolve().parents[2]


def _conv(i: int, role: str = "assistant") -> dict:
    return {
        "id": f"c{i}",
        "messages": [
            {"role": "user", "content": f"Question {i}: how many legs has a spider number {i}?"},
            {"role": role, "content": f"Spider {i} has eight legs, like every spider."},
        ],
    }


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _prepared(folder: str, stage: str, records_read: int) -> str:
    """A prepare stage's out_dir as it leaves it with nothing quarantined: its manifest and an empty quarantine."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    (path / "quarantine.jsonl").write_text("")
    quarantine = {"action": "quarantine", "by_reason": {}, "file": f"{folder}/quarantine.jsonl", "quarantined": 0,
                  "records_read": records_read, "rule": "data.malformed", "max_fraction": 0.01}  # fmt: skip
    (path / "manifest.json").write_text(json.dumps({"stage": stage, "quarantine": quarantine}))
    # signed as the stage signs what it wrote (P8: the gate judges only a quarantine its prepare stage signed)
    record_prepared(stage, path / "manifest.json", {"quarantine": sha256_file(path / "quarantine.jsonl")})
    return folder


def validate(dataset: str) -> int:
    """The validate stage, run on the data as it stands after its PII gate cleared it from its preparation.

    As the pipeline leaves it: ``prepare_<dataset>`` signed its outputs (a ``data_prepared`` event binding its
    manifest, quarantine and the train and eval data) and ``pii_scan_<dataset>`` published a decision binding the
    cleared files and the inputs they came from (here byte-identical copies: nothing needed redaction). The stage
    judges the quarantine only for data cleared from that preparation (P8)."""
    section = yaml.safe_load(Path("params.yaml").read_text()).get(f"validate_{dataset}") or {}
    prepared, files = section.get("prepared"), [f for f in (section.get("train"), section.get("eval")) if f]
    if prepared and (Path(prepared) / "manifest.json").is_file() and all(Path(f).is_file() for f in files):
        folder = Path(prepared)
        stage = json.loads((folder / "manifest.json").read_text())["stage"]
        hashes = {Path(f).stem: sha256_file(f) for f in files}
        record_prepared(
            stage, folder / "manifest.json", {**hashes, "quarantine": sha256_file(folder / "quarantine.jsonl")}
        )
        trail.record(
            "gate_decision",
            actor="ci-bot",
            role="gate stage",
            subject=trail.Subject(
                objective=f"gate:pii_scan_{dataset}", objective_hash=hashlib.sha256(b"%d" % len(files)).hexdigest()
            ),
            reason=f"pii_scan_{dataset}: pii gate passed",
            evidence={
                **{f"data:{Path(f)}": h for f, h in zip(files, hashes.values(), strict=True)},
                **{f"input:{folder / Path(f).name}": h for f, h in zip(files, hashes.values(), strict=True)},
            },
        )
    return main([dataset])


@pytest.fixture
def stage_dir(tmp_path, monkeypatch, mlflow_store):
    """A working directory with params.yaml, the shipped policy (small min_rows), data and its own audit trail."""
    monkeypatch.chdir(tmp_path)
    policy = yaml.safe_load((REPO / "policies" / "data.yaml").read_text())
    for section in ("sft", "rlhf"):
        policy[section]["min_rows"].update(min_train=8, min_eval=2)
    Path("policies").mkdir()
    Path("policies/data.yaml").write_text(yaml.safe_dump(policy))
    commit_reviewed(tmp_path)  # a policy decides only as the reviewed version
    params = {
        "validate_sft": {
            "kind": "sft",
            "train": "data/train.jsonl",
            "eval": "data/eval.jsonl",
            "out_dir": "artifacts/validate_sft",
            "policy": "policies/data.yaml",
            "prepared": _prepared("data/prepared/sft", "prepare_sft", 13),
        },
        "validate_rlhf": {
            "kind": "rlhf",
            "train": "data/rlhf.jsonl",
            "eval": None,
            "out_dir": "artifacts/validate_rlhf",
            "policy": "policies/data.yaml",
            "prepared": _prepared("data/prepared/rlhf", "prepare_rlhf", 10),
        },
    }
    Path("params.yaml").write_text(yaml.safe_dump(params))
    _write(Path("data/train.jsonl"), [_conv(i) for i in range(10)])
    _write(Path("data/eval.jsonl"), [_conv(i) for i in range(100, 103)])
    return tmp_path


DECISION = Path("artifacts/validate_sft/decision.json")


def test_stage_passes_and_binds_decision_to_train_and_eval(stage_dir):
    assert validate("sft") == 0
    decision = read_decision(DECISION)
    assert decision.passed and decision.stage == "validate_sft" and decision.gate == "validation"
    assert [(d.path, d.records) for d in decision.datasets][:2] == [("data/train.jsonl", 10), ("data/eval.jsonl", 3)]
    # ... and the prepare stage's quarantine that data.malformed judged, bound by hash with its manifest
    assert {d.path for d in decision.datasets[2:]} <= {
        "data/prepared/sft/quarantine.jsonl",
        "data/prepared/sft/manifest.json",
    }
    # what a training stage does before it touches the data
    require_passed_gates(["data/train.jsonl", "data/eval.jsonl"], [DECISION])
    manifest = json.loads(Path("artifacts/validate_sft/manifest.json").read_text())
    assert manifest["policy"]["version"] == decision.policy_version
    assert {"data/train.jsonl", "data/eval.jsonl"} <= set(manifest["inputs"])


def test_changed_data_after_gate_is_refused(stage_dir):
    assert validate("sft") == 0
    _write(Path("data/train.jsonl"), [_conv(i) for i in range(11)])
    with pytest.raises(PolicyViolation, match="the data changed since it was gated"):
        require_passed_gates(["data/train.jsonl", "data/eval.jsonl"], [DECISION])


def test_stage_denies_with_exit_1_and_keeps_the_decision(stage_dir, caplog):
    _write(Path("data/eval.jsonl"), [_conv(100), _conv(3), _conv(101)])  # a train prompt leaks into eval
    assert validate("sft") == 1
    decision = read_decision(DECISION)
    assert not decision.passed
    assert decision.summary_lines() == [
        "deny  data.train_eval_overlap  data/eval.jsonl: 1 of 3 eval records (33.33%) share a normalised prompt "
        "with the train file (max 0%); first at line 2"
    ]
    assert decision.summary_lines()[0] in caplog.text
    with pytest.raises(PolicyViolation, match="validation gate denied 1 rule"):
        require_passed_gates(["data/train.jsonl", "data/eval.jsonl"], [DECISION])


def test_denied_decision_rewritten_to_passed_is_refused(stage_dir):
    """Issue 31: the gate's denial edited into a pass in the working tree is no signed decision."""
    _write(Path("data/eval.jsonl"), [_conv(100), _conv(3), _conv(101)])
    assert validate("sft") == 1
    denied = json.loads(DECISION.read_text())
    DECISION.write_text(
        json.dumps({**denied, "passed": True, "counts": {**denied["counts"], "deny": 0}, "violations": []}, indent=2)
    )
    assert read_decision(DECISION).passed
    with pytest.raises(PolicyViolation) as refused:
        require_passed_gates(["data/train.jsonl", "data/eval.jsonl"], [DECISION])
    assert str(refused.value).startswith(
        f"{DECISION}: no signed gate_decision event in the audit trail matches this file (sha256 "
    )
    assert str(refused.value).endswith("re-run the gate: dvc repro -f validate_sft")


def test_bad_input_exits_2_and_removes_stale_decision(stage_dir, capsys):
    assert validate("sft") == 0 and DECISION.exists()
    _write(Path("data/eval.jsonl"), [_conv(100), _conv(101, role="bot")])
    assert validate("sft") == 2
    assert capsys.readouterr().err.strip() == (
        "validate: DataError: data/eval.jsonl:2: field messages[1].role: 'bot' is not one of system, user, assistant"
    )
    assert not DECISION.exists()
    assert not Path("artifacts/validate_sft/manifest.json").exists()


def test_prompt_only_dataset_without_eval(stage_dir):
    _write(Path("data/rlhf.jsonl"), [{"prompt": f"Write a haiku about river number {i}."} for i in range(9)])
    assert validate("rlhf") == 0
    decision = read_decision("artifacts/validate_rlhf/decision.json")
    assert [d.path for d in decision.datasets][0] == "data/rlhf.jsonl"
    # data.malformed judges prepare_rlhf's quarantine (P4: a prepared folder is required where the rule exists)
    assert decision.details["not_applicable"] == {"data.train_eval_overlap": "no eval file given"}


def test_params_errors_exit_2(stage_dir, capsys):
    assert validate("kto") == 2
    assert "params.yaml: section 'validate_kto' is missing" in capsys.readouterr().err
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["validate_sft"]["kind"] = "chat"
    Path("params.yaml").write_text(yaml.safe_dump(params))
    assert validate("sft") == 2
    assert "validate_sft: kind:" in capsys.readouterr().err


def test_repo_params_validate_sections_are_valid():
    params = load_yaml(REPO / "params.yaml")
    sections = [name for name in params if name.startswith("validate_")]
    assert "validate_sft" in sections
    for name in sections:
        section = validate_model(params[name], ValidateParams, f"params.yaml: {name}")
        assert (REPO / section.policy).is_file()


def test_the_decision_binds_the_bytes_the_gate_read_not_a_later_read_of_the_path(stage_dir, monkeypatch):
    """R1 at the gate: the file swapped right after the gate read it; the decision names what was validated."""
    from governance.validation import gate as validation_gate

    read = Path("data/train.jsonl").read_bytes()
    stream = validation_gate._stream_file

    def swapped_after_reading(path, **kwargs):
        result = stream(path, **kwargs)
        if Path(path).name == "train.jsonl":
            Path(path).write_text('{"messages": [{"role": "user", "content": "poisoned"}]}\n')
        return result

    monkeypatch.setattr(validation_gate, "_stream_file", swapped_after_reading)
    assert validate("sft") == 0
    (train,) = [d for d in read_decision(DECISION).datasets if d.path == "data/train.jsonl"]
    assert train.sha256 == hashlib.sha256(read).hexdigest() != sha256_file("data/train.jsonl")
    with pytest.raises(PolicyViolation, match="the data changed since it was gated"):
        require_passed_gates(["data/train.jsonl", "data/eval.jsonl"], [DECISION])


# --------------------------------------------------------------------------- T1, T2: what training may take from it


def _pair(i: int) -> dict:
    answer = [{"role": "assistant", "content": f"Spider {i} has eight legs, like every spider."}]
    return {"id": f"p{i}", "prompt": [{"role": "user", "content": f"How many legs has spider {i}?"}],
            "chosen": answer, "rejected": answer}  # fmt: skip


def test_t1_training_on_the_held_out_split_is_refused_naming_the_params_key(stage_dir):
    """T1: ``-S train_sft.train_file=…/eval.jsonl`` trained on the held-out split, which every evaluation then read
    as unseen (a memorising model passed). The validation decision's signed roles now decide which file trains."""
    from governance.gates import read_published_decision
    from governance.training_data import require_validated_roles

    assert validate("sft") == 0
    published = [read_published_decision(DECISION)]
    require_validated_roles("train_sft", {"train_file": "data/train.jsonl", "eval_file": "data/eval.jsonl"}, published)
    with pytest.raises(PolicyViolation) as refused:
        require_validated_roles("train_sft", {"train_file": "data/eval.jsonl"}, published)
    assert str(refused.value) == (
        "params.yaml: train_sft.train_file: data/eval.jsonl is the file the validation gate judged as the eval split "
        f"({DECISION}), not the train split; a stage trains on the train split and holds the eval split out, so "
        "that every evaluation reads data the model never trained on"
    )


def test_t2_preference_data_validated_under_another_kinds_rules_is_refused_for_training(stage_dir):
    """T2: ``-S validate_preference.kind=rlhf``: pairs whose rejected answer is the chosen one pass the rlhf rules
    (they never compare the two) where the preference rules deny them. Which rules judge the data is now the
    training method's: train_dpo refuses a decision made under another kind's."""
    from governance.gates import read_published_decision
    from governance.training_data import require_validated_roles

    params = yaml.safe_load(Path("params.yaml").read_text())
    prepared = _prepared("data/prepared/preference", "prepare_preference", 10)
    params["validate_preference"] = {**params["validate_rlhf"], "train": "data/pairs.jsonl",
                                     "out_dir": "artifacts/validate_preference", "prepared": prepared}  # fmt: skip
    Path("params.yaml").write_text(yaml.safe_dump(params))
    _write(Path("data/pairs.jsonl"), [_pair(i) for i in range(10)])
    assert validate("preference") == 0  # judged as rlhf: passed
    decision = Path("artifacts/validate_preference/decision.json")
    published = [read_published_decision(decision)]
    with pytest.raises(PolicyViolation) as refused:
        require_validated_roles("train_dpo", {"train_file": "data/pairs.jsonl"}, published)
    assert str(refused.value) == (
        f"{decision}: the validation gate judged data/pairs.jsonl under the rlhf rules of policies/data.yaml, but "
        "train_dpo trains on preference data, which only the preference rules judge; validate it as preference "
        "(the validate stage's kind in params.yaml) and re-run: dvc repro"
    )
    params["validate_preference"]["kind"] = "preference"
    Path("params.yaml").write_text(yaml.safe_dump(params))
    assert validate("preference") == 1  # under the preference rules the same pairs are denied


@pytest.mark.parametrize("prepared", [None, "data/prepared/other"])
def test_p4_no_prepared_folder_or_another_datasets_is_refused(stage_dir, capsys, prepared):
    """P4: ``-S validate_sft.prepared=null`` made ``data.malformed`` "not applicable", and another dataset's folder
    judged another quarantine: a 30% quarantine was never judged. The folder must be prepare_<dataset>'s own."""
    _prepared("data/prepared/other", "prepare_kto", 13)
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["validate_sft"]["prepared"] = prepared
    Path("params.yaml").write_text(yaml.safe_dump(params))
    assert validate("sft") == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    if prepared is None:
        assert last.endswith(
            "params.yaml: validate_sft.prepared: not set, but policies/data.yaml sft.malformed judges the share of "
            "records prepare_sft set aside; name its out_dir (the folder of its manifest.json)"
        )
    else:
        assert last.endswith(
            "params.yaml: validate_sft.prepared: data/prepared/other is prepare_kto's folder, not prepare_sft's: "
            "sft.malformed would judge another dataset's quarantine; name prepare_sft's out_dir"
        )
    assert not DECISION.exists()


def test_p8_a_quarantine_emptied_after_its_prepare_stage_signed_it_is_not_judged(stage_dir, capsys):
    """P8 at the stage: prepare_sft set aside 5 of 13 records (signed), then all but one were removed from the
    quarantine and its manifest's counts edited to match, in place (1 of 13 would still deny, but a smaller
    share than people signed off): validate_sft refuses (exit 2), leaving no decision."""
    folder = Path("data/prepared/sft")
    entries = [{"where": f"data/raw/sft.jsonl:{i}", "line": i, "field": "messages", "reason": "no user turn"}
               for i in range(1, 6)]  # fmt: skip
    _write(folder / "quarantine.jsonl", entries)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["quarantine"].update(quarantined=5, by_reason={"no user turn": 5})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert validate("sft") == 1  # as prepare_sft signed it: 5 of 13 set aside (max 1%) denies
    assert "5 of 13 records quarantined" in read_decision(DECISION).summary_lines()[0]
    _write(folder / "quarantine.jsonl", entries[:1])
    manifest["quarantine"].update(quarantined=1, by_reason={"no user turn": 1})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["sft"]) == 2
    assert (
        "is not a quarantine a data_prepared event of prepare_sft signed in the audit trail" in capsys.readouterr().err
    )
    assert not DECISION.exists()


def test_p8_an_earlier_preparations_quarantine_is_not_judged_for_todays_data(stage_dir, capsys):
    """P8, replayed: an earlier preparation's quarantine (nothing set aside, signed) put back beside today's data,
    whose own preparation set 5 of 13 aside: the quarantine judged must be the one of the data validated."""
    folder = Path("data/prepared/sft")
    earlier = {name: (folder / name).read_bytes() for name in ("quarantine.jsonl", "manifest.json")}
    assert validate("sft") == 0  # the earlier preparation: nothing set aside, signed with its data
    _write(Path("data/train.jsonl"), [_conv(i) for i in range(20, 30)])  # today's preparation: other data
    entries = [{"where": f"data/raw/sft.jsonl:{i}", "line": i, "field": "messages", "reason": "no user turn"}
               for i in range(1, 6)]  # fmt: skip
    _write(folder / "quarantine.jsonl", entries)
    manifest = json.loads(earlier["manifest.json"])
    manifest["quarantine"].update(quarantined=5, by_reason={"no user turn": 5})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert validate("sft") == 1  # 5 of 13 set aside: denied
    for name, data in earlier.items():
        (folder / name).write_bytes(data)
    earlier_sha256 = hashlib.sha256(earlier["manifest.json"]).hexdigest()
    *_, signed = [e for e in trail.events(objective="prepared:prepare_sft", event_types=["data_prepared"])
                  if e.evidence["manifest_sha256"] == earlier_sha256]  # fmt: skip
    capsys.readouterr()
    assert main(["sft"]) == 1
    said = capsys.readouterr().err.strip().splitlines()[-1]
    digest = sha256_file("data/train.jsonl")[:12]
    assert said.endswith(
        f"params.yaml: validate_sft.prepared: the quarantine judged is prepare_sft's of trail event #{signed.seq}, "
        f"but no signed PII gate decision cleared data/train.jsonl (sha256 {digest}…) from that preparation's "
        "train.jsonl: the share set aside would be another run's; re-run prepare_sft and its PII gate (dvc repro)"
    )
    assert not DECISION.exists()
