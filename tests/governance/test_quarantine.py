"""Malformed records under policies/data.yaml ``malformed``: fail, or quarantine (masked, counted), then the gate.

The sample is hand-made in the published Anthropic HH-RLHF shape
(``{"chosen": "\\n\\nHuman: …\\n\\nAssistant: …", "rejected": …}``), with
records whose transcript carries a turn inline (``…drag kings.  Human: …``) as
record 1255 of harmless-base/test does, one of them holding fake PII. The PII
masker is the project's (policies/pii.yaml through presidio), not a stand-in.
The opt-in test at the end ingests the four real subsets from ``HH_RLHF_DIR``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import yaml

from governance import trail
from governance.datasets import DatasetParams, prepare_dataset, read_quarantine, split_and_write
from governance.datasets.formats import MALFORMED
from governance.datasets.quarantine import QUARANTINE_FILE
from governance.errors import ConfigError, DataError
from governance.lineage import sha256_file
from governance.policy.data import load_data_policy
from governance.validation import validate_dataset

REPO = Path(__file__).resolve().parents[2]
PROVENANCE = ("annotator_id", "guideline_version", "ratings", "source", "license")

#: Fake PII planted in a quarantined record: none of it may leave the quarantine file unmasked
EMAIL, PHONE, CARD = "jane.doe@example.org", "(415) 555-0103", "4111 1111 1111 1111"
INLINE_REASON = 'an inline "Human:" turn (not after a blank line) makes its turn boundaries ambiguous'


def _hh(turns: list[tuple[str, str]]) -> str:
    return "".join(f"\n\n{speaker}: {text}" for speaker, text in turns)


def _pair(i: int) -> dict[str, str]:
    prompt = [("Human", f"How do I water plant number {i}?")]
    return {
        "chosen": _hh([*prompt, ("Assistant", f"Water plant {i} once a week, at the roots.")]),
        "rejected": _hh([*prompt, ("Assistant", "Plants do not need water.")]),
    }


def _inline(i: int, pii: bool = False) -> dict[str, str]:
    """A pair whose chosen transcript carries the next Human turn inline, as HH-RLHF harmless-base test:1255."""
    ask = f"Write to me at {EMAIL} or call {PHONE}; my card is {CARD}." if pii else "Tell me more."
    first = [("Human", f"What are drag kings, {i}?")]
    return {
        "chosen": _hh([*first, ("Assistant", f"Performers who dress as men, drag kings.  Human: {ask}"),
                       ("Assistant", "I would rather not.")]),
        "rejected": _hh([*first, ("Assistant", "Performers who dress as men, drag kings."), ("Human", ask),
                         ("Assistant", "Sure.")]),
    }  # fmt: skip


def _sample(tmp_path: Path, n: int = 40, inline_at: tuple[int, ...] = (7, 23)) -> Path:
    """``n`` HH-RLHF pairs, gzip-compressed as published; the 1-based lines ``inline_at`` carry an inline turn."""
    rows = [_inline(i, pii=i == inline_at[0]) if i in inline_at else _pair(i) for i in range(1, n + 1)]
    path = tmp_path / "raw" / "harmless-base-test.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    return path


def _policy(tmp_path: Path, **malformed) -> Path:
    """The shipped data policy with the preference section's malformed rule changed."""
    policy = yaml.safe_load((REPO / "policies" / "data.yaml").read_text())
    policy["preference"]["malformed"].update(malformed)
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def _prepare(raw: Path, policy: Path, *, pii_policy: str | None = str(REPO / "policies" / "pii.yaml")):
    params = DatasetParams(input=str(raw), format="auto", policy=str(policy), pii_policy=pii_policy)
    return prepare_dataset(params, "preference", PROVENANCE, "prepare_preference")


def _write(prepared, out_dir: Path) -> None:
    split_and_write(prepared, stage="prepare_preference", out_dir=out_dir, seed=42, eval_fraction=0.2, params={})


@pytest.fixture(scope="module", autouse=True)
def module_trail(tmp_path_factory):
    """One audit trail for the module: the prepare stage signs what it writes there, and the gate reads it (P8)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GOVERN_AUDIT_URL", f"sqlite:///{tmp_path_factory.mktemp('trail') / 'audit.db'}")
        yield


@pytest.fixture(scope="module")
def quarantined(tmp_path_factory):
    """The sample prepared under action quarantine (the PII engine is built once for the module)."""
    tmp_path = tmp_path_factory.mktemp("quarantine")
    raw = _sample(tmp_path)
    logger = logging.getLogger("governance.datasets")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        prepared = _prepare(raw, _policy(tmp_path, action="quarantine", max_fraction=0.01))
    finally:
        logger.removeHandler(handler)
    out_dir = tmp_path / "prepared"
    _write(prepared, out_dir)
    return raw, prepared, out_dir, [r.getMessage() for r in records]


def test_quarantine_counts_per_reason_in_manifest_card_and_curation(quarantined):
    raw, prepared, out_dir, _ = quarantined
    assert len(prepared.rows) == 38 and prepared.format.name == "hh_rlhf"
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["quarantine"] == {
        "rule": "data.malformed",
        "action": "quarantine",
        "max_fraction": 0.01,
        "file": str(out_dir / "quarantine.jsonl"),
        "records_read": 40,
        "quarantined": 2,
        "fraction": 0.05,
        "by_reason": {INLINE_REASON: 2},
        "first": {"where": f"{raw}:7", "field": "chosen (turn 2)", "reason": INLINE_REASON},
        "policy": prepared.quarantine["policy"],
        "masked_with": str(REPO / "policies" / "pii.yaml"),
    }
    assert "quarantine" in manifest["outputs"]
    card = manifest["card"]["malformed"]
    assert card["action"] == "quarantine" and card["quarantined"] == 2 and card["records_read"] == 40
    assert card["by_reason"] == {INLINE_REASON: 2}
    # the card says what this shape treats as malformed rather than repairable
    assert card["malformed"].startswith(MALFORMED["hh_rlhf"]["malformed"]) and "inline" in card["malformed"]
    assert card["repaired"] == MALFORMED["hh_rlhf"]["repaired"]
    steps = [(s["step"], s["rows_in"], s["dropped"], s["rows_out"]) for s in manifest["curation"]][:3]
    assert steps == [
        ("read", 40, 0, 40),
        (f"quarantine malformed: {INLINE_REASON}", 40, 2, 38),
        ("convert hh_rlhf → preference records", 38, 0, 38),
    ]


def test_quarantine_file_names_file_line_field_and_reason_and_masks_pii(quarantined):
    raw, _, out_dir, logs = quarantined
    lines = [json.loads(line) for line in (out_dir / "quarantine.jsonl").read_text().splitlines()]
    assert [(q["where"], q["line"], q["field"], q["reason"]) for q in lines] == [
        (f"{raw}:7", 7, "chosen (turn 2)", INLINE_REASON),
        (f"{raw}:23", 23, "chosen (turn 2)", INLINE_REASON),
    ]
    assert lines[0]["message"] == f"{raw}:7: field chosen (turn 2): {INLINE_REASON}"
    # the record is kept for a person to read, with every PII finding replaced by its tag
    chosen = lines[0]["record"]["chosen"]
    assert "<EMAIL_ADDRESS>" in chosen and "<PHONE_NUMBER>" in chosen and "<CREDIT_CARD>" in chosen
    assert "drag kings.  Human:" in chosen
    # no raw PII anywhere the quarantine is reported: the file, the manifest (card, curation), the logs
    written = "\n".join(p.read_text() for p in out_dir.iterdir()) + "\n".join(logs)
    for value in (EMAIL, PHONE, CARD, "555-0103", "4111"):
        assert value not in written
    assert any("quarantined 2 of 40 records as malformed" in line for line in logs)


def test_pii_stored_as_json_numbers_is_masked_in_the_quarantine_file(tmp_path):
    # A malformed record whose card and phone are JSON numbers, nested too: masking covers every scalar.
    raw = tmp_path / "raw" / "numbers.jsonl"
    raw.parent.mkdir()
    rows = [_pair(i) for i in range(1, 11)]
    rows[4] = {**_inline(5), "card": 4111111111111111, "contact": {"phone": 4155550103, "ids": [4111111111111111, 7]},
               "verified": True, "score": 0.5, "note": None}  # fmt: skip
    raw.write_text("".join(json.dumps(row) + "\n" for row in rows))
    prepared = _prepare(raw, _policy(tmp_path, action="quarantine", max_fraction=0.5))
    _write(prepared, tmp_path / "out")
    [entry] = [json.loads(line) for line in (tmp_path / "out" / "quarantine.jsonl").read_text().splitlines()]
    record = entry["record"]
    assert record["card"] == "<CREDIT_CARD>"
    assert record["contact"] == {"phone": "<PHONE_NUMBER>", "ids": ["<CREDIT_CARD>", 7]}
    assert (record["verified"], record["score"], record["note"]) == (True, 0.5, None)
    written = "\n".join(p.read_text() for p in (tmp_path / "out").iterdir())
    assert "4111111111111111" not in written and "4155550103" not in written


def test_gate_denies_above_max_fraction_with_one_line(quarantined):
    _, _, out_dir, _ = quarantined
    policy = load_data_policy(_policy(out_dir.parent, max_fraction=0.01)).preference
    outcome = validate_dataset("preference", out_dir / "train.jsonl", None, policy, quarantine=read_quarantine(out_dir))
    lines = [v.line() for v in outcome.violations if v.rule_id == "data.malformed"]
    assert lines == [
        f"deny  data.malformed  {out_dir / 'quarantine.jsonl'}: 2 of 40 records quarantined (5%, max 1%); "
        f"first at {out_dir.parent / 'raw' / 'harmless-base-test.jsonl.gz'}:7, field chosen (turn 2): {INLINE_REASON}"
    ]
    judged = {ref.path for ref in outcome.datasets}
    assert {str(out_dir / "quarantine.jsonl"), str(out_dir / "manifest.json")} <= judged
    assert outcome.details["quarantine"]["by_reason"] == {INLINE_REASON: 2}


def test_p8_a_quarantine_its_prepare_stage_did_not_sign_is_not_judged(quarantined, tmp_path):
    """Attack P8: the quarantine emptied in place and its manifest's counts edited to match (or a folder of one's
    own whose manifest names the stage): data.malformed judged "0 of 40 set aside" and passed. The prepare stage
    signs what it wrote (a data_prepared trail event); the gate counts only bytes it signed."""
    _, _, out_dir, _ = quarantined
    forged = tmp_path / "prepared"
    shutil.copytree(out_dir, forged)
    (forged / QUARANTINE_FILE).write_text("")
    manifest = json.loads((forged / "manifest.json").read_text())
    manifest["quarantine"].update(quarantined=0, by_reason={})
    (forged / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError) as refused:
        read_quarantine(forged)
    manifest_sha256 = hashlib.sha256((forged / "manifest.json").read_bytes()).hexdigest()
    assert str(refused.value) == (
        f"{forged / QUARANTINE_FILE}: sha256 {hashlib.sha256(b'').hexdigest()[:12]}… (manifest "
        f"{manifest_sha256[:12]}…) is not a quarantine a data_prepared event of prepare_preference signed in the "
        "audit trail: the folder was changed after the stage wrote it, or was not written by it; re-run the stage "
        "(dvc repro -f prepare_preference)"
    )
    # The signed bytes, wherever they are copied, are the same evidence: counted, naming the event that bound them
    copy = tmp_path / "copy"
    shutil.copytree(out_dir, copy)
    counts = read_quarantine(copy)
    (event,) = [e for e in trail.events(objective="prepared:prepare_preference", event_types=["data_prepared"])
                if e.evidence["quarantine_sha256"] == sha256_file(out_dir / QUARANTINE_FILE)]  # fmt: skip
    assert (counts.quarantined, counts.records_read, counts.prepared_event) == (2, 40, event.seq)
    assert event.evidence["quarantine_sha256"] == counts.sha256 == sha256_file(out_dir / QUARANTINE_FILE)
    assert event.evidence["manifest_sha256"] == counts.manifest_sha256 == sha256_file(out_dir / "manifest.json")


def test_gate_passes_at_or_below_max_fraction(quarantined):
    _, _, out_dir, _ = quarantined
    policy = load_data_policy(_policy(out_dir.parent, max_fraction=0.05)).preference
    outcome = validate_dataset("preference", out_dir / "train.jsonl", None, policy, quarantine=read_quarantine(out_dir))
    rule = next(r for r in outcome.details["rules"] if r["id"] == "data.malformed")
    assert rule["passed"] and rule["observed"]["quarantined"] == 2 and rule["observed"]["records_read"] == 40


def test_a_quarantine_under_action_fail_is_denied(quarantined):
    _, _, out_dir, _ = quarantined
    policy = load_data_policy(_policy(out_dir.parent, action="fail")).preference
    outcome = validate_dataset("preference", out_dir / "train.jsonl", None, policy, quarantine=read_quarantine(out_dir))
    [line] = [v.line() for v in outcome.violations if v.rule_id == "data.malformed"]
    assert "2 of 40 records quarantined (5%, action fail: none may be quarantined)" in line


def test_action_fail_stops_at_the_first_malformed_record(tmp_path):
    raw = _sample(tmp_path)
    with pytest.raises(DataError) as err:
        _prepare(raw, _policy(tmp_path, action="fail"))
    assert str(err.value) == f"{raw}:7: field chosen (turn 2): {INLINE_REASON}"
    assert EMAIL not in str(err.value)


def test_a_clean_file_under_quarantine_writes_an_empty_quarantine(tmp_path):
    raw = _sample(tmp_path, n=10, inline_at=(0,))
    prepared = _prepare(raw, _policy(tmp_path))
    _write(prepared, tmp_path / "out")
    assert (tmp_path / "out" / "quarantine.jsonl").read_text() == ""
    counts = read_quarantine(tmp_path / "out")
    assert (counts.quarantined, counts.records_read, counts.by_reason) == (0, 10, {})
    assert prepared.curation.steps[1].step == "quarantine malformed records (none)"


def test_quarantine_needs_a_pii_policy(tmp_path):
    with pytest.raises(ConfigError) as err:
        _prepare(_sample(tmp_path), _policy(tmp_path), pii_policy=None)
    assert str(err.value) == (
        f"params.yaml: prepare_preference.pii_policy: required, {tmp_path / 'data.yaml'} says "
        "preference.malformed.action: quarantine and quarantined records are PII-masked before they are written "
        "(policies/pii.yaml)"
    )


def test_every_record_malformed_is_one_line(tmp_path):
    raw = _sample(tmp_path, n=3, inline_at=(1, 2, 3))
    with pytest.raises(DataError) as err:
        _prepare(raw, _policy(tmp_path))
    assert str(err.value) == (
        f"{raw}: all 3 records are malformed; first at {raw}:1, field chosen (turn 2): {INLINE_REASON}; "
        "check format: and columns: in params.yaml prepare_preference"
    )


def test_a_manifest_disagreeing_with_the_quarantine_file_is_refused(quarantined, tmp_path):
    _, _, out_dir, _ = quarantined
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "quarantine.jsonl").write_text((out_dir / "quarantine.jsonl").read_text().splitlines()[0] + "\n")
    (forged / "manifest.json").write_text((out_dir / "manifest.json").read_text())
    with pytest.raises(DataError) as err:
        read_quarantine(forged)
    assert str(err.value) == (
        f"{forged / 'manifest.json'}: field quarantine: counts 2 but {forged / 'quarantine.jsonl'} holds 1 "
        "records; the two were not written together, re-run the prepare stage"
    )


def test_every_format_says_what_it_treats_as_malformed():
    from governance.datasets import FORMATS

    assert {f.name for f in FORMATS} == set(MALFORMED)
    assert all(entry["malformed"] and entry["repaired"] for entry in MALFORMED.values())


def test_every_validate_stage_judges_its_prepare_stages_quarantine():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name in ("sft", "grpo", "rlhf", "preference", "kto"):
        assert params[f"validate_{name}"]["prepared"] == params[f"prepare_{name}"]["out_dir"]
        assert params[f"prepare_{name}"]["policy"] == params[f"validate_{name}"]["policy"]


# --- opt-in: the published HH-RLHF subsets ------------------------------------------------------

HH_SUBSETS = ("harmless-base", "helpful-base", "helpful-online", "helpful-rejection-sampled")


@pytest.fixture
def hh_rlhf_dir(request) -> Path:
    if "hh_rlhf" not in (request.config.getoption("-m") or ""):
        pytest.skip("opt-in: HH_RLHF_DIR=<folder of the four subsets' {train,test}.jsonl.gz> pytest -m hh_rlhf")
    folder = Path(os.environ.get("HH_RLHF_DIR", ""))
    missing = [f"{s}/{split}.jsonl.gz" for s in HH_SUBSETS for split in ("train", "test")
               if not (folder / s / f"{split}.jsonl.gz").is_file()]  # fmt: skip
    if missing:
        pytest.fail(f"HH_RLHF_DIR must hold Anthropic/hh-rlhf's subsets as published; missing {', '.join(missing)}")
    return folder


@pytest.mark.hh_rlhf
@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("subset", HH_SUBSETS)
def test_hh_rlhf_subset_ingests_with_format_auto(hh_rlhf_dir, subset, split, tmp_path):
    raw = hh_rlhf_dir / subset / f"{split}.jsonl.gz"
    policy = _policy(tmp_path, action="quarantine", max_fraction=1.0)  # counting, not judging, here
    prepared = _prepare(raw, policy)
    _write(prepared, tmp_path / "out")
    counts = read_quarantine(tmp_path / "out")
    assert prepared.format.name == "hh_rlhf" and prepared.detected
    converted = next(step for step in prepared.curation.steps if step.step.startswith("convert "))
    assert counts.records_read == counts.quarantined + converted.rows_in
    # the figures the README table shows
    print(f"\n{subset}/{split}: {counts.records_read} read, {counts.quarantined} quarantined {counts.by_reason}")  # noqa: T201


def test_report_shows_quarantine_counts_per_reason(quarantined):
    from governance.report.render import _environment

    _, prepared, out_dir, _ = quarantined
    d = {"path": "artifacts/pii_scan_preference/data/train.jsonl", "card": prepared.card}
    markdown = _environment().get_template("_malformed.md.j2").render(d=d)
    assert (
        "(data.malformed, action quarantine, max fraction 0.01): 2 of 40 records read quarantined to "
        f"`{out_dir / 'quarantine.jsonl'}` (PII-masked): 2 × {INLINE_REASON}." in markdown
    )
    assert "Malformed in format hh_rlhf: a transcript not made of blank-line-separated" in markdown
    html = _environment().get_template("_malformed.html.j2").render(d=d)
    assert "2 × an inline &#34;Human:&#34; turn (not after a blank line)" in html
    # a card from before the policy (no malformed entry) shows nothing
    assert _environment().get_template("_malformed.md.j2").render(d={"path": "x", "card": {}}).strip() == ""


def test_attack_an_uncommitted_pii_policy_does_not_unmask_the_quarantine(tmp_path, monkeypatch):
    """Q2: the e-mail rule dropped from an uncommitted policies/pii.yaml, so the quarantined
    record carrying an address would be written to quarantine.jsonl (a DVC output, pushed to the remote) with it. The
    masker counts only under the reviewed PII policy: the stage refuses, naming the file, and writes nothing."""
    import shutil

    from e2e_support import commit_reviewed

    from governance.errors import PolicyViolation

    shutil.copytree(REPO / "policies", tmp_path / "policies")
    commit_reviewed(tmp_path)
    monkeypatch.chdir(tmp_path)
    pii = tmp_path / "policies" / "pii.yaml"
    data = yaml.safe_load(pii.read_text())
    dropped = {"EMAIL_ADDRESS"}
    data["entities"] = [e for e in data["entities"] if e["entity"] not in dropped]
    pii.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyViolation) as info:
        _prepare(_sample(tmp_path), _policy(tmp_path, action="quarantine", max_fraction=0.1), pii_policy=str(pii))
    assert str(info.value).startswith(
        f"{pii}: this PII policy (what a quarantined record is masked by) decides, and it is not the reviewed "
        "version (uncommitted change)"
    )
    assert not (tmp_path / "prepared").exists()
