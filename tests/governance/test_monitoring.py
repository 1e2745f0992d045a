"""``govern monitor``: traffic windows against a version's recorded evaluation generations, as records.

Real pieces throughout: an SQLite MLflow store with a registered version whose
training run carries ``evaluation/generations.json`` (the default baseline), a
registered reward model (a tiny real sequence-classification model whose score
follows the answer's last word, so a test can lower it on purpose), the
bundled all-MiniLM-L6-v2 encoder, the project's PII scanner and a real audit
trail. A window drawn like the baseline passes; each drifted window denies
with its rule named and no raw PII anywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import shutil
import sys
from pathlib import Path

import pytest
from e2e_support import commit_reviewed

from governance import registry, trail
from governance.cli import main
from governance.errors import DataError
from governance.monitoring import check_window, record_check
from governance.monitoring.traffic import read_window

REPO = Path(__file__).resolve().parents[2]
MODEL = "mon-sft"
RM = "govllm-rm"  # the name policies/monitoring.yaml gives the reward model
MODEL_SHA256 = "d" * 64  # the monitored version's model (its tag: no test's trail registers it)
LEAKED_EMAIL = "pat.leaky@example.com"

BANK = [
    "Open the app, tap Sign in then Forgot password and follow the code we send to your device.",
    "Freeze the card in the app under Cards then order a replacement from the same screen.",
    "A deductible is the part of a claim you pay yourself before the insurer pays the rest.",
    "Transfers to other banks usually arrive within two hours on working days.",
    "Go to Cards then Limits in the app and choose a new daily limit up to the maximum shown.",
    "Payments are declined when the balance is too low or the card is frozen.",
    "Choose Payments then Standing orders then New, enter the payee and the amount, and confirm.",
    "The easy saver account pays a variable rate shown on the Savings tab, paid monthly.",
]
#: Answers about something else entirely, of the same lengths as BANK's.
GARDEN = [
    "Water tomato seedlings at the base each morning and pinch out side shoots every week or so.",
    "Sow carrots thinly in loose sandy soil then cover them with a fine mesh against root flies.",
    "Prune roses in late winter just above an outward facing bud to keep the centre open.",
    "Compost heaps need a mix of green and brown waste and a turn every fortnight.",
    "Plant garlic cloves pointed end up in autumn about ten centimetres apart in full sun.",
    "Slugs avoid copper tape and gritty mulch around young lettuce and hosta leaves.",
    "Lift dahlia tubers after the first frost, dry them and store them in a frost free shed.",
    "Mow the lawn high in summer so the grass shades its own roots and needs less water.",
]
REFUSAL = "I'm sorry, but I can't help with that request."


def answer(rng: random.Random, *, topic=BANK, p_good: float = 0.8, longer: bool = False) -> str:
    text = rng.choice(topic)
    if longer:
        text = " ".join([text, *rng.sample(topic, 2)])
    return f"{text} Overall the service was {'good' if rng.random() < p_good else 'poor'}"


def requests(n: int, seed: int, *, version: str = "1", start: str = "2026-11-20T10:00", **style) -> list[dict]:
    """``n`` requests a second apart from ``start`` (minutes precision; a window after a registration passes now())."""
    rng = random.Random(seed)
    refuse = style.pop("refuse", 0.0)
    leak = style.pop("leak", 0)
    rows = []
    for i in range(n):
        response = REFUSAL if rng.random() < refuse else answer(rng, **style)
        if i < leak:
            # (not "Write to ...": the small NER model tags a sentence-initial "Write" as a PERSON)
            response += f" For details, write to {LEAKED_EMAIL}."
        rows.append(
            {
                "request_id": f"r-{seed}-{i}",
                "timestamp": f"{start[:14]}{int(start[14:16]) + i // 60:02d}:{i % 60:02d}Z",
                "model": MODEL,
                "version": version,
                "prompt": [{"role": "user", "content": "How do I manage my account?"}],
                "response": response,
                "latency_ms": 300 + rng.random() * 400,
                "feedback": rng.choice([1, 1, 1, 1, 1, 0, -1, None]),
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the world: store, versions, models


def _build_reward_model(out: Path) -> Path:
    """A real (tiny) reward model: score +/- by the answer's last word (good / poor), 0 otherwise."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "good", "poor", "the", "service", "was", "overall"]
    vocab = {w: i for i, w in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]")
    config = LlamaConfig(
        vocab_size=len(words),
        hidden_size=8,
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        num_labels=1,
        pad_token_id=0,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config)
    with torch.no_grad():  # the layer adds nothing; the score reads one embedding coordinate of the last token
        model.model.layers[0].self_attn.o_proj.weight.zero_()
        model.model.layers[0].mlp.down_proj.weight.zero_()
        embeddings = model.model.embed_tokens.weight
        embeddings[:, 0] = 0.0
        embeddings[vocab["good"], 0], embeddings[vocab["poor"], 0] = 5.0, -5.0
        model.score.weight.zero_()
        model.score.weight[0, 0] = 1.0
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out


def _register(name: str, *, artifacts: dict[str, Path] | None = None, generations: list | None = None) -> str:
    client = registry.client()
    experiment = registry.ensure_experiment("monitoring-tests")
    run = client.create_run(experiment)
    for artifact_path, folder in (artifacts or {}).items():
        client.log_artifacts(run.info.run_id, str(folder), artifact_path)
    if generations is not None:
        client.log_text(run.info.run_id, json.dumps(generations), "evaluation/generations.json")
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    return str(
        client.create_model_version(
            name,
            source=f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags={"lineage.trained_by": "trainer", "lineage.registered_by": "ci-bot", "lineage.risk_tier": "low"},
        ).version
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One MLflow store per module: the monitored version (40 recorded generations) and the reward model."""
    root = tmp_path_factory.mktemp("monitoring")
    patch = pytest.MonkeyPatch()
    patch.chdir(root)
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    patch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    patch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    baseline = [{"prompt": "How do I manage my account?", "completion": r["response"]} for r in requests(40, 1)]
    _register(MODEL, generations=baseline)
    registry.client().set_model_version_tag(MODEL, "1", "lineage.model_sha256", MODEL_SHA256)
    generations_sha256 = hashlib.sha256(json.dumps(baseline).encode()).hexdigest()  # as log_text stored them
    _register(RM, artifacts={"model": _build_reward_model(root / "rm")})
    from governance.lineage import sha256_dir

    rm_sha256 = sha256_dir(root / "rm")  # what the reward model's registration froze (each test's trail: env)
    from governance.pii import PiiScanner
    from governance.policy.pii import load_pii_policy

    scanner = PiiScanner(load_pii_policy(REPO / "policies/pii.yaml"), REPO / "policies/pii.yaml")
    yield {"root": root, "scanner": scanner, "rm_sha256": rm_sha256, "generations_sha256": generations_sha256}
    patch.undo()


@pytest.fixture
def env(world, tmp_path, monkeypatch):
    """A fresh audit trail and a copy of the shipped policies per test, committed: the monitor runs in a checkout
    where they are the reviewed version."""
    policies = tmp_path / "policies"
    policies.mkdir()
    for name in ("approvals.yaml", "waivers.yaml", "monitoring.yaml", "pii.yaml"):
        shutil.copy(REPO / "policies" / name, policies / name)
    commit_reviewed(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(policies))
    monkeypatch.delenv("GOVERN_REVIEWED_REF", raising=False)
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("GOVERN_USER", "mona")
    monkeypatch.setenv("GOVERN_MONITOR_CACHE", str(tmp_path / "cache"))  # baseline embeddings: per test
    # Each test has its own trail: the monitored model's anchor from another test's trail is not this one's
    if registry.client().get_registered_model(MODEL).tags.get("governance.trail_head"):
        registry.client().delete_registered_model_tag(MODEL, "governance.trail_head")
    # The generations a signed evaluation of the monitored version's model bound: its default baseline (M6)
    trail.record(
        "eval_decision",
        actor="ci-bot",
        role="gate stage",
        subject=trail.Subject(objective="gate:evaluate_sft", objective_hash="e" * 64),
        reason="evaluate_sft: evaluation gate passed",
        evidence={"model_sha256": MODEL_SHA256, "generations_sha256": world["generations_sha256"]},
    )
    # The reward model's weights as its signed registration froze them: the monitor judges only with those (M5)
    trail.record(
        "model_registered",
        actor="ci-bot",
        role="registrant",
        subject=trail.Subject(model=RM, version="1"),
        reason="the reward model the monitor scores with",
        evidence={"model_sha256": world["rm_sha256"]},
    )
    return {**world, "tmp": tmp_path, "policies": policies}


def monitor(env, rows: list[dict], **kw):
    traffic = write_jsonl(env["tmp"] / "window.jsonl", rows)
    result = check_window(MODEL, "1", traffic, scanner=env["scanner"], **kw)
    return result, record_check(result)


def denied_lines(result) -> list[str]:
    return [v.line() for v in result.blocking]


# --------------------------------------------------------------------------- verdicts


def test_a_window_drawn_like_the_baseline_passes_and_is_recorded(env, capsys):
    traffic = write_jsonl(env["tmp"] / "window.jsonl", requests(40, 2))
    code = main(["monitor", MODEL, "1", "--traffic", str(traffic)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"monitor {MODEL} v1: PASSED: 40 requests (2026-11-20T10:00:00Z to 2026-11-20T10:00:39Z)" in out
    # the trail holds the verdict, each rule's observed value, and the evidence it relied on
    (event,) = trail.events(model=MODEL, event_types=["monitoring_checked"])
    assert event.details["verdict"] == "passed" and event.actor == "mona"
    assert {r["rule_id"] for r in event.details["rules"]} >= {
        "monitor.length_drift",
        "monitor.refusal_rate",
        "monitor.pii",
        "monitor.preference_drift",
        "monitor.embedding_drift",
    }
    assert all(r["status"] != "fail" for r in event.details["rules"])
    assert event.evidence["reward_model"] == f"{RM} v1"
    # the MLflow run: tagged with the version, metrics, the drift report with inline SVG charts
    client = registry.client()
    run = client.get_run(event.evidence["mlflow_run"])
    assert run.data.tags["monitor.version"] == "1" and run.data.tags["monitor.verdict"] == "passed"
    assert run.data.metrics["window_requests"] == 40
    report = Path(client.download_artifacts(run.info.run_id, "monitoring/drift_report.html", str(env["tmp"])))
    html = report.read_text()
    assert html.count("<svg") == 1 and "Response length" in html and "PASSED" in html
    assert registry.get_version(MODEL, "1").tags["governance.monitoring"].startswith(f"passed #{event.seq} ")


def test_longer_responses_deny_length_drift(env):
    result, event = monitor(env, requests(40, 3, longer=True))
    assert not result.passed and event.details["verdict"] == "denied"
    assert "monitor.length_drift" in event.details["blocking"]
    line = next(x for x in denied_lines(result) if "monitor.length_drift" in x)
    assert line == (
        f"deny  monitor.length_drift  {MODEL} v1: response length KS D=1.000 (max 0.3), p=1.9e-23 (alpha 0.01); "
        "median 285 chars vs baseline 117"
    )


def test_attack_an_uncommitted_monitoring_policy_decides_nothing(env, capsys):
    """Length drift loosened to "never" in policies/monitoring.yaml, not committed, then the production window
    checked: refused before anything is judged or recorded, naming the file; the committed policy still denies."""
    policy = env["policies"] / "monitoring.yaml"
    reviewed = policy.read_text()
    policy.write_text(reviewed.replace("max_ks_statistic: 0.3   #", "max_ks_statistic: 1.0   #", 1))
    traffic = write_jsonl(env["tmp"] / "window.jsonl", requests(40, 3, longer=True))
    assert main(["monitor", MODEL, "1", "--traffic", str(traffic)]) == 1  # a policy violation
    assert capsys.readouterr().err.strip() == (
        f"govern: {policy}: this monitoring policy decides, and it is not the reviewed version (uncommitted "
        f"change); only the version committed at the reviewed ref counts: restore the reviewed version (git checkout "
        f"HEAD -- {policy}) or get the change reviewed and merged"
    )
    assert trail.events(model=MODEL) == []
    policy.write_text(reviewed)
    result, event = monitor(env, requests(40, 3, longer=True))
    assert "monitor.length_drift" in event.details["blocking"]
    assert event.evidence["monitoring_policy_sha256"] == hashlib.sha256(reviewed.encode()).hexdigest()
    assert event.evidence["traffic_sha256"] == hashlib.sha256(traffic.read_bytes()).hexdigest()


def test_attack_an_uncommitted_pii_policy_does_not_blind_the_monitor(env, capsys):
    """M3: ``pii.email_address`` set to ``action: allow`` in policies/pii.yaml, not committed, so a window that leaks
    e-mail addresses counts none of them. The monitor's PII scan counts only under the reviewed PII policy (as the
    gate's does), and the recorded check binds the bytes it scanned under."""
    policy = env["policies"] / "pii.yaml"
    reviewed = policy.read_text()
    edited = reviewed.replace(
        "entity: EMAIL_ADDRESS\n    action: redact", "entity: EMAIL_ADDRESS\n    action: allow", 1
    )
    assert edited != reviewed
    policy.write_text(edited)
    traffic = write_jsonl(env["tmp"] / "window.jsonl", requests(40, 2, leak=3))
    assert main(["monitor", MODEL, "1", "--traffic", str(traffic)]) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .startswith(
            f"govern: {policy}: this PII policy (what the monitor counts as personal data) decides, and it is not the "
            "reviewed version (uncommitted change)"
        )
    )
    assert trail.events(model=MODEL) == []  # the reviewed policy still denies: test_pii_in_responses_denies_...


def test_more_refusals_deny_refusal_rate(env):
    result, _ = monitor(env, requests(40, 4, refuse=0.5))
    line = next(x for x in denied_lines(result) if "monitor.refusal_rate" in x)
    assert line == (
        f"deny  monitor.refusal_rate  {MODEL} v1: refusal rate 62.5% (25/40) vs baseline 0.0% (0/40): +62.5% "
        "(max +10%), p=1.1e-10 (alpha 0.01)"
    )


def test_pii_in_responses_denies_with_masked_examples_only(env, capsys):
    traffic = write_jsonl(env["tmp"] / "window.jsonl", requests(40, 2, leak=3))
    code = main(["monitor", MODEL, "1", "--traffic", str(traffic)])
    captured = capsys.readouterr()
    assert code == 1
    assert (
        f"deny  monitor.pii  {MODEL} v1: 3 of 40 responses contain PII (EMAIL_ADDRESS 3), rate 7.50% (max 0.00%); "
        f"first at {traffic}:1 (EMAIL_ADDRESS ***@***.com)"
    ) in captured.out
    (event,) = trail.events(model=MODEL, event_types=["monitoring_checked"])
    # scanned under the reviewed PII policy, whose bytes the recorded check binds
    assert (
        event.evidence["pii_policy_sha256"] == hashlib.sha256((env["policies"] / "pii.yaml").read_bytes()).hexdigest()
    )
    client = registry.client()
    report = client.download_artifacts(event.evidence["mlflow_run"], "monitoring", str(env["tmp"]))
    stored = [p.read_text() for p in Path(report).iterdir()]
    for text in [captured.out, captured.err, event.model_dump_json(), *stored]:
        assert LEAKED_EMAIL not in text and "pat.leaky" not in text
    assert "***@***.com" in stored[0] + stored[1]


def test_lower_reward_model_scores_deny_preference_drift(env):
    result, _ = monitor(env, requests(40, 5, p_good=0.1))
    line = next(x for x in denied_lines(result) if "monitor.preference_drift" in x)
    assert line == (
        f"deny  monitor.preference_drift  {MODEL} v1: reward-model ({RM} v1) mean score -2.545 vs baseline 1.697: "
        "drop 1.88 baseline std (max 0.5), KS p=1.5e-11 (alpha 0.01)"
    )
    assert [r.status for r in result.results if r.rule_id == "monitor.length_drift"] == ["pass"]


def test_m5_reward_model_weights_changed_in_the_artifact_store_judge_nothing(env):
    """Attack M5: the reward model's files replaced in the artifact store (a head that scores every answer the
    same: no preference drift, ever). Before, the monitor loaded whatever the store held and its signed event
    named the genuine hash, read from a version tag."""
    from governance.errors import ConfigError

    source = Path(registry.get_version(RM, "1").source.removeprefix("file://"))
    weights = next(p for p in source.iterdir() if p.suffix == ".safetensors")
    genuine = weights.read_bytes()
    weights.write_bytes(genuine[:-8] + bytes(b ^ 0x40 for b in genuine[-8:]))  # the last weights changed
    try:
        with pytest.raises(ConfigError) as refused:
            monitor(env, requests(40, 5, p_good=0.1))
    finally:
        weights.write_bytes(genuine)
    assert str(refused.value).startswith(f"{RM} v1: its artifacts hash to ")
    assert f"not the {env['rm_sha256'][:12]}… its signed registration froze" in str(refused.value)


def test_m6_baseline_generations_replaced_in_the_run_are_not_a_baseline(env):
    """Attack M6: the version's evaluation/generations.json replaced by the drifted window itself, so every drift
    rule compared the window with itself and passed (and no incident opened)."""
    from governance.errors import ConfigError

    drifted = requests(40, 6, topic=GARDEN)
    run_id = registry.get_version(MODEL, "1").run_id
    artifact = Path(registry.client().get_run(run_id).info.artifact_uri.removeprefix("file://"))
    artifact = artifact / "evaluation" / "generations.json"
    genuine = artifact.read_bytes()
    artifact.write_text(json.dumps([{"prompt": r["prompt"], "completion": r["response"]} for r in drifted]))
    try:
        with pytest.raises(ConfigError) as refused:
            monitor(env, drifted)
    finally:
        artifact.write_bytes(genuine)
    assert str(refused.value).startswith(f"run {run_id}:evaluation/generations.json: sha256 ")
    assert f"is not the generations a signed evaluation of {MODEL} v1's model ({'d' * 12}…) bound" in str(refused.value)


def test_m7_a_baseline_file_counts_only_if_the_trail_vouches_for_it(env, capsys):
    """Attack M7: ``govern monitor --baseline FILE`` took any file the person running it named. The drifted window
    named as its own baseline made every drift rule compare the window with itself and pass; so did the same
    window checked first as a rehearsal (which anybody may record). A production verdict compares only with a
    baseline the trail vouches for: a window a signed production check of the model recorded and passed."""
    drifted = write_jsonl(env["tmp"] / "drifted.jsonl", requests(40, 6, topic=GARDEN))
    checked = len(trail.events(model=MODEL))
    assert main(["monitor", MODEL, "1", "--traffic", str(drifted), "--baseline", str(drifted)]) == 2
    digest = hashlib.sha256(drifted.read_bytes()).hexdigest()
    assert capsys.readouterr().err.strip() == (
        f"govern: {drifted}: sha256 {digest[:12]}… is not a traffic window a signed monitoring check of {MODEL} "
        "recorded as production evidence that passed against a version's evaluation generations; a production "
        "verdict compares only with a baseline the audit trail vouches for: omit --baseline (the version's "
        "evaluation generations, which its signed evaluation bound), pass a window govern monitor checked that "
        "way and passed, or record this check as a rehearsal (--rehearsal)"
    )
    assert len(trail.events(model=MODEL)) == checked  # refused before anything was judged or recorded
    # A rehearsal may compare with any file: it is recorded as one (the window against itself: no drift rule
    # fires, the names in it still deny PII), and so vouches for nothing
    assert main(["monitor", MODEL, "1", "--traffic", str(drifted), "--baseline", str(drifted), "--rehearsal"]) == 1
    rehearsal = trail.events(model=MODEL, event_types=["monitoring_checked"])[-1]
    assert rehearsal.details["evidence"]["kind"] == "rehearsal" and rehearsal.details["blocking"] == ["monitor.pii"]
    capsys.readouterr()
    assert main(["monitor", MODEL, "1", "--traffic", str(drifted), "--baseline", str(drifted)]) == 2
    # A denied production check vouches for nothing either: its drift would become the norm
    assert main(["monitor", MODEL, "1", "--traffic", str(drifted)]) == 1
    capsys.readouterr()
    assert main(["monitor", MODEL, "1", "--traffic", str(drifted), "--baseline", str(drifted)]) == 2
    assert "is not a traffic window a signed monitoring check" in capsys.readouterr().err
    # A window checked as production evidence against the signed generations, which passed, is a baseline; the
    # next window drifted from it still denies, and the event names the check that vouched for its baseline
    earlier = write_jsonl(env["tmp"] / "earlier.jsonl", requests(40, 2))
    assert main(["monitor", MODEL, "1", "--traffic", str(earlier)]) == 0
    (vouching,) = [e for e in trail.events(model=MODEL, event_types=["monitoring_checked"])
                   if e.evidence["traffic_sha256"] == hashlib.sha256(earlier.read_bytes()).hexdigest()]  # fmt: skip
    capsys.readouterr()
    assert main(["monitor", MODEL, "1", "--traffic", str(drifted), "--baseline", str(earlier)]) == 1
    last = trail.events(model=MODEL, event_types=["monitoring_checked"])[-1]
    assert last.details["verdict"] == "denied" and "monitor.embedding_drift" in last.details["blocking"]
    assert last.evidence["baseline_checked_event"] == str(vouching.seq)
    assert last.details["baseline"]["label"] == f"traffic window {earlier} (checked and passed: event #{vouching.seq})"
    # A window judged against a vouched window, and passed, vouches for nothing: no chain of windows, each within
    # bounds of the last, lets drift creep in; every baseline was held to the signed generations
    later = write_jsonl(env["tmp"] / "later.jsonl", requests(40, 3))
    assert main(["monitor", MODEL, "1", "--traffic", str(later), "--baseline", str(earlier)]) == 0
    capsys.readouterr()
    assert main(["monitor", MODEL, "1", "--traffic", str(drifted), "--baseline", str(later)]) == 2
    assert "is not a traffic window a signed monitoring check" in capsys.readouterr().err


def test_answers_on_another_topic_deny_embedding_drift(env):
    result, _ = monitor(env, requests(40, 6, topic=GARDEN))
    line = next(x for x in denied_lines(result) if "monitor.embedding_drift" in x)
    assert line == (
        f"deny  monitor.embedding_drift  {MODEL} v1: response embeddings: mean cosine distance to the baseline "
        "centroid 0.823 vs 0.398, KS D=0.900 (max 0.3), p=9e-12 (alpha 0.01)"
    )
    assert [r.status for r in result.results if r.rule_id == "monitor.preference_drift"] == ["pass"]


# --------------------------------------------------------------------------- models per rule, cached baseline


def _rules(result) -> list[tuple]:
    return [(r.rule_id, r.status, r.observed, r.message) for r in result.results]


def test_the_cached_baseline_gives_the_same_verdicts_and_the_encoder_is_not_loaded_again(env, monkeypatch):
    from governance.monitoring import models

    baseline = write_jsonl(env["tmp"] / "baseline.jsonl", requests(40, 1))
    traffic = write_jsonl(env["tmp"] / "window.jsonl", requests(40, 6, topic=GARDEN))
    cold = check_window(
        MODEL, "1", traffic, baseline=baseline, scanner=env["scanner"], reward_model=None, rehearsal=True
    )
    (cached,) = (env["tmp"] / "cache").glob("embeddings-*.npz")
    # warm: the baseline's vectors come from the cache; the window's new texts are all the encoder sees
    seen: list[str] = []
    encode = models.embed
    monkeypatch.setattr(models, "embed", lambda texts: seen.extend(texts) or encode(texts))
    warm = check_window(
        MODEL, "1", traffic, baseline=baseline, scanner=env["scanner"], reward_model=None, rehearsal=True
    )
    assert _rules(warm) == _rules(cold)
    assert warm.evidence["baseline_embeddings_sha256"] == cold.evidence["baseline_embeddings_sha256"]
    assert set(seen) == set(read_window(traffic).responses) - set(read_window(baseline).responses)
    assert len(seen) == len(set(seen)) and "monitor.embedding_drift" in [v.rule_id for v in warm.blocking]
    # a window the baseline already holds needs no encoder at all
    seen.clear()
    check_window(MODEL, "1", baseline, baseline=baseline, scanner=env["scanner"], reward_model=None, rehearsal=True)
    assert seen == []
    # the same verdict as the rule applied without store or cache: every text embedded as it comes
    from governance.monitoring import checks, load_monitoring_policy

    rule = load_monitoring_policy(env["policies"] / "monitoring.yaml").rules.embedding_drift
    direct = checks.embedding_drift(
        read_window(traffic), read_window(baseline), rule, f"{MODEL} v1", embed=encode, seed=13
    )
    (drift,) = [r for r in warm.results if r.rule_id == rule.id]
    assert (drift.status, drift.message) == (direct.status, direct.message)
    assert cached.is_file()


def test_a_changed_baseline_or_encoder_names_another_cache_file_and_a_bad_one_is_recomputed(env, monkeypatch):
    from governance.monitoring import embeddings, models

    baseline = write_jsonl(env["tmp"] / "baseline.jsonl", requests(40, 1))
    traffic = write_jsonl(env["tmp"] / "window.jsonl", requests(40, 2))
    first = check_window(
        MODEL, "1", traffic, baseline=baseline, scanner=env["scanner"], reward_model=None, rehearsal=True
    )
    (one,) = (env["tmp"] / "cache").glob("*.npz")
    write_jsonl(baseline, requests(40, 9))  # other content, same path
    check_window(MODEL, "1", traffic, baseline=baseline, scanner=env["scanner"], reward_model=None, rehearsal=True)
    assert len(list((env["tmp"] / "cache").glob("*.npz"))) == 2
    encoder_id = models.encoder_id
    monkeypatch.setattr(models, "encoder_id", lambda: "another encoder")
    check_window(MODEL, "1", traffic, baseline=baseline, scanner=env["scanner"], reward_model=None, rehearsal=True)
    assert len(list((env["tmp"] / "cache").glob("*.npz"))) == 3
    monkeypatch.setattr(models, "encoder_id", encoder_id)
    # a cache file that is not what its name says (edited, truncated) is ignored and rewritten
    write_jsonl(baseline, requests(40, 1))
    one.write_bytes(b"not a cache")
    again = check_window(
        MODEL, "1", traffic, baseline=baseline, scanner=env["scanner"], reward_model=None, rehearsal=True
    )
    assert _rules(again) == _rules(first)
    store = embeddings.EmbeddingStore(models.embed, model_id=models.encoder_id(), key=one.stem[11:], path=one)
    assert store.loaded > 0
    # GOVERN_MONITOR_CACHE=off keeps nothing
    monkeypatch.setenv("GOVERN_MONITOR_CACHE", "off")
    assert embeddings.cache_dir() is None


def test_the_store_embeds_each_distinct_text_once():
    import numpy as np

    from governance.monitoring.embeddings import EmbeddingStore

    calls: list[list[str]] = []

    def lengths(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.array([[len(t), 1.0] for t in texts])

    store = EmbeddingStore(lengths)
    vectors = store.vectors(["ab", "abc", "ab"], baseline=True)
    assert vectors.tolist() == [[2, 1], [3, 1], [2, 1]]
    assert store.vectors(["abc", "abcd"]).tolist() == [[3, 1], [4, 1]]
    assert calls == [["ab", "abc"], ["abcd"]]


def test_presidio_loads_without_torch_and_torch_still_loads_after(env):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from governance.monitoring.monitor import project_scanner\n"
        f"scanner = project_scanner(Path({str(REPO / 'policies/pii.yaml')!r}))\n"
        "assert 'torch' not in sys.modules, 'presidio imported torch'\n"
        "assert [f.entity for f in scanner.findings_in('write to pat@example.com')] == ['EMAIL_ADDRESS']\n"
        "import torch\n"
        "print('ok')\n"
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


# --------------------------------------------------------------------------- bad input: exit 2, one line


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"response": "hi"}, "2: request_id: required field is missing (and 4 more problems in this record)"),
        (
            {"timestamp": "2026-11-20T10:00:00"},
            "2: timestamp: Value error, must be ISO-8601 in UTC (end with Z or +00:00)",
        ),
        ({"feedback": 5}, "2: feedback: Input should be -1, 0 or 1"),
        (
            {"prompt": {"secret": "x"}},
            "2: prompt: expected a string or a list of chat messages ({role, content} objects with string values)",
        ),
    ],
)
def test_a_bad_record_is_one_line_naming_file_line_and_field(env, capsys, line, message):
    good = requests(30, 2)
    bad = {**good[1], **line} if "response" not in line else line
    traffic = write_jsonl(env["tmp"] / "window.jsonl", [good[0], bad, *good[2:]])
    assert main(["monitor", MODEL, "1", "--traffic", str(traffic)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"govern: {traffic}:{message}"
    assert trail.events(model=MODEL) == []


def test_traffic_of_other_versions_only_says_how_to_get_this_versions(env, capsys):
    """The shipped sample is govllm-sft's: monitoring another version says what to do, and the generator does it."""
    import subprocess
    import sys

    traffic = REPO / "data/traffic/window.jsonl"
    assert main(["monitor", MODEL, "1", "--traffic", str(traffic)]) == 2
    policy = env["policies"] / "monitoring.yaml"
    assert capsys.readouterr().err.strip() == (
        f"govern: {traffic}: 0 requests of {MODEL} v1 (min_window 20 in {policy}); 200 requests of other versions "
        f"skipped (govllm-sft v1: 200); the file holds no traffic of {MODEL} v1: export its serving logs in the "
        "traffic shape (docs/how-to/monitoring.md, 'The traffic shape'), or rehearse with a synthetic window: python "
        f"scripts/make_traffic_sample.py --model {MODEL} --version 1 --out traffic/"
    )
    assert trail.events(model=MODEL) == []
    out = env["tmp"] / "traffic"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/make_traffic_sample.py"),
            "--model",
            MODEL,
            "--version",
            "1",
            "--out",
            str(out),
        ],  # fmt: skip
        check=True,
        capture_output=True,
    )
    window = read_window(out / "window.jsonl", model=MODEL, version="1")
    assert len(window) == 200 and window.skipped_other_versions == 0


def test_json_nested_past_the_recursion_limit_is_one_line_not_a_recursion_error(env, capsys):
    depth = sys.getrecursionlimit() + 100
    traffic = env["tmp"] / "window.jsonl"
    traffic.write_text(json.dumps(requests(1, 2)[0]) + "\n\n" + "[" * depth + "]" * depth + "\n")
    assert main(["monitor", MODEL, "1", "--traffic", str(traffic)]) == 2
    expected = f"govern: {traffic}:3: JSON nested {depth} levels deep (max 64); flatten the record"
    assert capsys.readouterr().err.strip() == expected


# --------------------------------------------------------------------------- incidents


def _registered(name: str) -> str:
    """A version registered through the trail and approved by two reviewers (risk tier low needs one)."""
    from governance import approvals
    from governance.identity import Identity

    version = _register(name)
    approvals.record_registration(
        name, version, actor="ci-bot", evidence={"model_sha256": "ab" * 32}, gate_status="passed", eval_status="passed"
    )
    approvals.approve(name, version, reason="reviewed", identity=Identity(user="alice", source="local"))
    return version


def _events(name: str, kind: str) -> list[trail.Event]:
    return trail.events(model=name, event_types=[kind])


def test_an_open_high_incident_blocks_promote_and_canary_until_closed(env, capsys, monkeypatch):
    from governance import approvals
    from governance.errors import PolicyViolation

    name = "mon-incident-1"
    version = _registered(name)
    evidence = write_jsonl(env["tmp"] / "evidence.jsonl", requests(2, 9))
    monkeypatch.setenv("GOVERN_USER", "bob")  # a reviewer may open one
    args = ["incident", "open", name, version, "--severity", "high", "--reason", "leaked e-mail addresses"]
    assert main([*args, "--evidence", str(evidence)]) == 0
    (opened,) = _events(name, "incident_opened")
    incident = f"INC-{opened.seq}"
    assert capsys.readouterr().out.splitlines() == [
        f"opened {incident} on {name} v{version} (high): leaked e-mail addresses",
        f"{name} v{version} cannot be promoted or canaried until {incident} is closed",
    ]
    assert opened.evidence == {"evidence_file": "evidence.jsonl", "evidence_sha256": sha256(evidence)}
    assert registry.get_version(name, version).tags["governance.incidents_open"] == f"{incident}:high"
    # promote and canary are refused, naming the incident, and each refusal is recorded
    monkeypatch.setenv("GOVERN_USER", "dana")
    for action in (approvals.promote, approvals.canary):
        with pytest.raises(PolicyViolation) as refused:
            action(name, version)
        word = "promote" if action is approvals.promote else "canary"
        assert str(refused.value) == (
            f"{word} refused by incident.open_high: {name} v{version}: open incident {incident} (high, opened by "
            f"bob at {opened.timestamp[:19]}Z); close it first (govern incident close {incident} --reason ...)"
        )
    denials = _events(name, "permission_denied")
    assert [(d.actor, d.details["action"], d.details["rules"]) for d in denials] == [
        ("dana", "promote", ["incident.open_high"]),
        ("dana", "canary", ["incident.open_high"]),
    ]
    # closing it (a release manager) lets promotion through
    assert main(["incident", "close", incident, "--reason", "template fixed; window re-checked"]) == 0
    assert capsys.readouterr().out.strip() == f"closed {incident} on {name} v{version} (high) by dana"
    assert registry.get_version(name, version).tags["governance.incidents_open"] == ""
    assert approvals.promote(name, version).created
    assert main(["incident", "close", incident, "--reason", "again"]) == 1
    assert capsys.readouterr().err.strip().startswith(f"govern: {incident} is already closed (by dana at ")
    assert main(["incident", "list", name]) == 0
    assert capsys.readouterr().out.startswith(f"{incident}  {name} v{version}  high    closed ")


def test_an_incident_closes_with_the_evidence_that_it_is_resolved(env, capsys, monkeypatch):
    from governance.report.monitoring import monitoring_facts

    name = "mon-incident-evidence"
    version = _registered(name)
    monkeypatch.setenv("GOVERN_USER", "dana")
    assert main(["incident", "open", name, version, "--severity", "medium", "--reason", "slow answers"]) == 0
    (opened,) = _events(name, "incident_opened")
    fixed = write_jsonl(env["tmp"] / "recheck.jsonl", requests(2, 5))
    args = ["incident", "close", f"INC-{opened.seq}", "--reason", "latency back to normal"]
    assert main([*args, "--evidence", str(env["tmp"] / "absent.html")]) == 2  # refused before anything is written
    assert _events(name, "incident_closed") == []
    assert main([*args, "--evidence", str(fixed)]) == 0
    (closed,) = _events(name, "incident_closed")
    assert closed.evidence == {
        "incident_event": opened.hash,
        "evidence_file": "recheck.jsonl",
        "evidence_sha256": sha256(fixed),
    }
    (incident,) = monitoring_facts(name, version)["incidents"]
    assert incident["close_evidence"] == {"evidence_file": "recheck.jsonl", "evidence_sha256": sha256(fixed)}
    assert not any("no evidence" in c for c in incident["concerns"])


def _anchor_seq(name: str) -> int:
    return int(registry.client().get_registered_model(name).tags["governance.trail_head"].split()[0])


def test_every_event_kind_moves_the_trail_head_anchor_and_audit_verify_shows_no_lag(env, capsys, monkeypatch):
    # a monitoring verdict moves the monitored model's anchor
    _, checked = monitor(env, requests(40, 2))
    assert _anchor_seq(MODEL) == trail.head().seq == checked.seq
    # incidents too: in a store of their own, so `govern audit verify` checks this model's anchor alone
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{env['tmp'] / 'anchors.db'}")
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{env['tmp'] / 'anchors-audit.db'}")
    name = "mon-incident-anchor"
    version = _registered(name)
    monkeypatch.setenv("GOVERN_USER", "dana")
    assert main(["incident", "open", name, version, "--severity", "low", "--reason", "slow answers"]) == 0
    (opened,) = _events(name, "incident_opened")
    assert _anchor_seq(name) == trail.head().seq == opened.seq
    assert main(["incident", "close", f"INC-{opened.seq}", "--reason", "latency back to normal"]) == 0
    (closed,) = _events(name, "incident_closed")
    assert _anchor_seq(name) == trail.head().seq == closed.seq
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0
    assert f"anchor MLflow tag governance.trail_head of {name}: head #{closed.seq}, matches" in capsys.readouterr().out


def test_the_report_shows_monitoring_history_and_counts_an_open_high_incident_as_a_blocker(env, monkeypatch):
    from types import SimpleNamespace

    from markupsafe import Markup

    from governance import incidents
    from governance.monitoring.charts import trend_svg
    from governance.report.monitoring import monitoring_facts
    from governance.report.render import _environment
    from governance.report.verdict import _incidents_check

    monitor(env, requests(40, 2))
    monitor(env, requests(40, 4, refuse=0.5))
    monkeypatch.setenv("GOVERN_USER", "dana")
    opened = incidents.open_incident(MODEL, "1", severity="high", reason="refusals doubled")
    facts = monitoring_facts(MODEL, "1")
    assert [c["verdict"] for c in facts["checks"]] == ["passed", "denied"]
    assert "monitor.refusal_rate" in facts["checks"][1]["blocking"]
    assert facts["blocking_incidents"] == [opened.id]
    check = _incidents_check(SimpleNamespace(monitoring=facts))
    assert (check.id, check.status) == ("operations.incidents", "fail")
    assert (
        check.detail
        == f"open: {opened.id} (high, opened by dana: refusals doubled); close it with govern incident close"
    )
    # the report's partials, rendered in the report's own environment with its own pill macro
    trend = trend_svg(facts["checks"])
    assert trend.count("<svg") == 1
    source = (REPO / "governance/report/templates/report.html.j2").read_text()
    pill = source[source.index("{% macro pill") : source.index("{%- endmacro %}") + len("{%- endmacro %}")]
    env_ = _environment()
    f = SimpleNamespace(name=MODEL, version="1", monitoring=facts)
    html = env_.from_string(pill + "{% include '_monitoring.html.j2' %}").render(
        f=f, figures={"monitoring_trend": Markup(trend)}
    )
    assert html.count("<svg") == 1 and f"<strong>{opened.id}</strong>" in html and "refusals doubled" in html
    assert "<code>monitor.refusal_rate</code>" in html
    markdown = env_.get_template("_monitoring.md.j2").render(f=f, figure_files={})
    assert f"| {opened.id}: refusals doubled | high | open | " in markdown


def test_incident_roles_come_from_the_approvals_policy_and_refusals_are_recorded(env, capsys, monkeypatch):
    name = "mon-incident-2"
    version = _registered(name)
    monkeypatch.setenv("GOVERN_USER", "mallory")
    assert main(["incident", "open", name, version, "--severity", "low", "--reason", "just because"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"govern: open_incident refused by approval.role_required: {name} v{version}: mallory holds no role "
        "allowed to open an incident (allowed: reviewer, release_manager; mallory's roles: none)"
    )
    monkeypatch.setenv("GOVERN_USER", "carol")
    assert main(["incident", "open", name, version, "--severity", "medium", "--reason", "slow answers"]) == 0
    incident = f"INC-{_events(name, 'incident_opened')[0].seq}"
    capsys.readouterr()
    assert main(["incident", "close", incident, "--reason", "fine now"]) == 1  # a reviewer may not close
    assert "allowed to close an incident (allowed: release_manager; carol's roles: reviewer)" in capsys.readouterr().err
    assert [(d.actor, d.details["action"]) for d in _events(name, "permission_denied")] == [
        ("mallory", "open_incident"),
        ("carol", "close_incident"),
    ]
    # a medium incident is listed as open but does not block deployment
    assert main(["incident", "list", "--open"]) == 0
    assert f"{incident}  {name} v{version}  medium  OPEN  opened " in capsys.readouterr().out


def test_incidents_and_monitoring_refuse_a_broken_trail_and_append_nothing(env, capsys, monkeypatch):
    import sqlite3

    name = "mon-incident-3"
    version = _registered(name)
    conn = sqlite3.connect(env["tmp"] / "audit.db")
    conn.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    # the newest event: older ones are covered by the signed verified checkpoint
    conn.execute("UPDATE audit_events SET reason = 'edited' WHERE seq = (SELECT max(seq) FROM audit_events)")
    conn.commit()
    conn.close()
    count = len(trail.events())
    monkeypatch.setenv("GOVERN_USER", "dana")
    traffic = write_jsonl(env["tmp"] / "window.jsonl", requests(30, 2))
    for args in (
        ["incident", "open", name, version, "--severity", "high", "--reason", "r"],
        ["incident", "close", "INC-1", "--reason", "r"],
        ["monitor", MODEL, "1", "--traffic", str(traffic)],
    ):
        assert main(args) == 1, args
        assert capsys.readouterr().err.startswith(f"govern: refusing to act on a broken audit trail: event #{count} (")
    assert len(trail.events()) == count


def test_a_denied_window_of_the_production_version_recommends_the_rollback_target(env, monkeypatch):
    from governance import approvals
    from governance.identity import Identity

    name = MODEL
    monkeypatch.setenv("GOVERN_USER", "dana")
    # v1 (the monitored version) is registered in this test's trail; a later version was production before it
    first = "1"
    approvals.record_registration(
        name, first, actor="ci-bot", evidence={"model_sha256": MODEL_SHA256}, gate_status="passed", eval_status="passed"
    )
    older = _registered(name)
    approvals.approve(name, first, reason="reviewed", identity=Identity(user="bob", source="local"))
    approvals.promote(name, older)
    approvals.promote(name, first)
    # Traffic served after v1's registration in this trail (a window dated before it would be refused)
    (registered,) = trail.events(model=name, version=first, event_types=["model_registered"])
    after = dt.datetime.fromisoformat(registered.timestamp) - dt.timedelta(minutes=2)
    rows = requests(40, 4, refuse=0.5, start=after.strftime("%Y-%m-%dT%H:%M"))
    with pytest.raises(DataError, match=f"before {name} v{first} was registered"):
        check_window(name, first, write_jsonl(env["tmp"] / "early.jsonl", rows), scanner=env["scanner"])
    # the same requests, served between the registration and now
    start = dt.datetime.fromisoformat(registered.timestamp)
    step = (dt.datetime.now(dt.UTC) - start) / (len(rows) + 1)
    for i, row in enumerate(rows, start=1):
        row["timestamp"] = (start + step * i).isoformat().replace("+00:00", "Z")
    result, event = monitor(env, rows)
    assert event.details["recommendation"] == (
        f'roll back {name} to v{older}: govern rollback {name} --to {older} --reason "..."'
    )
    # recommending is all it does: production still points at the monitored version
    assert str(registry.version_by_alias(name, "production").version) == first


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_p7_baseline_vectors_planted_in_a_shared_cache_are_recomputed(tmp_path):
    """Attack P7 on the drift rule: vectors in a group-writable cache file (all the same vector: KS D=0) are
    never judged on; the store embeds the texts itself."""
    import numpy as np

    from governance.monitoring.embeddings import EmbeddingStore

    path = tmp_path / "embeddings.npz"
    texts = ["a drifted answer", "another"]
    planted = EmbeddingStore(lambda batch: np.ones((len(batch), 3), dtype=np.float32), key="k", model_id="m", path=path)
    planted.vectors(texts, baseline=True)
    planted.save()
    assert EmbeddingStore(lambda batch: None, key="k", model_id="m", path=path).loaded == 2  # the user's own file
    path.chmod(0o664)
    honest = EmbeddingStore(lambda batch: np.zeros((len(batch), 3), dtype=np.float32), key="k", model_id="m", path=path)
    assert honest.loaded == 0 and honest.vectors(texts).tolist() == [[0.0] * 3] * 2 and honest.embedded == 2
