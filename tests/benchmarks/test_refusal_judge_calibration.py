"""benchmarks/refusal_judge.py --calibrate: the head it writes names the judge version it was fitted for, and the
decision rule scores the shipped judge's settings by the same folds, fitted only on the shipped head's sets.

Judge 3.0's head said ``judge_version: "2.1"``: calibration read the version from the judge file before the
file was raised to 3.0. The version is now an argument of --calibrate, required. These run on a few dozen
synthetic completions (random embeddings of the frozen views, refusals shifted along one direction; the
fine-tuned view reads their two texts), not the public sets.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from governance.encoder import EMBEDDING_DIM
from governance.safety import load_judge

REPO = Path(__file__).resolve().parents[2]
JUDGE = REPO / "data/safety/judge.yaml"


def _seen_part(bench, per_set: int = 20, sets: tuple = ()):
    """Seen completions of two fitted sets (WildGuardTest's seen half and the hand set) and ``sets`` (name, model),
    half refusals, with views that tell them apart along one direction, and exemplars' opinions that agree with
    the label."""
    import numpy as np

    rng = np.random.default_rng(7)
    items, rows = [], []
    for set_name, model in (("wildguardtest", "mixed"), (bench.HAND_SET, "hand-written"), *sets):
        for n in range(per_set):
            refused = n % 2 == 0
            text = "I'm sorry, but I can't help with that." if refused else "Sure, here is how: first, open it."
            items.append(bench.Item(set_name, model, f"{set_name}-{n}", text, refused, str(refused), "seen",
                                    group=f"p{n}"))  # fmt: skip
            rows.append(rng.normal(size=2 * EMBEDDING_DIM) + (1.5 if refused else -1.5))
    rows = np.asarray(rows)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    views = {"completion": rows[:, :EMBEDDING_DIM], "opening": rows[:, EMBEDDING_DIM:]}
    opinions = [SimpleNamespace(scores={"refusal": 0.9 if i.refusal else 0.1, "compliance": 0.1, "other": 0.0})
                for i in items]  # fmt: skip
    return items, views, opinions


def test_calibrate_needs_the_version_it_fits_for(bench, capsys):
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--calibrate", "--no-write"])
    assert stopped.value.code == 2
    assert "--calibrate needs --version" in capsys.readouterr().err


def test_the_head_names_the_version_it_was_fitted_for_not_the_judge_files(bench, tmp_path):
    items, views, opinions = _seen_part(bench)
    judge = load_judge(JUDGE)
    out = tmp_path / "refusal_head.json"
    written = bench.calibrate(items, views, opinions, judge, out, "9.9", previous=judge)
    provenance = json.loads(out.read_text())["provenance"]
    assert provenance["judge_version"] == written["judge_version"] == "9.9" != judge.version
    # The head reads the fine-tuned view and pins the layers written beside it; both load as the judge reads them
    from governance.safety.refusal_head import load_refusal_head

    head = load_refusal_head(out, written["sha256"])
    assert head.features == ("tuned",) and head.layers.sha256 == written["encoder_layers"]["sha256"]
    assert (tmp_path / written["encoder_layers"]["path"]).is_file()
    # The rule's other side is the judge file's own head and settings, named by version and hash
    rule = provenance["rule"]
    assert rule["previous"]["version"] == judge.version
    assert rule["previous"]["head_sha256"] == judge.refusal_head.sha256
    assert (rule["previous"]["C"], rule["previous"]["refusal_threshold"], rule["previous"]["pattern_threshold"]) == (
        judge.refusal_head.provenance["C"],
        judge.classifier.refusal_threshold,
        judge.classifier.pattern_threshold,
    )
    assert rule["ships"] == bench.ships(
        {"validation_worst": rule["new_worst"], "validation_mean_per_model": rule["new_mean_per_model"]},
        {"validation_worst": rule["previous_worst"], "validation_mean_per_model": rule["previous_mean_per_model"]},
    )


def test_a_head_over_the_top_three_layers_is_decided_against_a_head_over_the_top_two(bench, tmp_path):
    # --from-layer 3 (how judge 3.5 was decided): the new side reads layer 3's states, the previous judge's side
    # (3.3, the top two) reads layer 4's; each side's layers are fitted on its own states, and the head loads as
    # written
    from governance.safety.refusal_head import load_refusal_head
    from governance.safety.tuned_encoder import TuningSettings

    items, views, opinions = _seen_part(bench)
    judge = load_judge(REPO / "benchmarks/data/refusal_judge_candidates/3.3/judge.yaml")
    out = tmp_path / "refusal_head.json"
    written = bench.calibrate(items, views, opinions, judge, out, "9.9", previous=judge,
                              settings=TuningSettings(from_layer=3))  # fmt: skip
    head = load_refusal_head(out, written["sha256"])
    assert head.layers.from_layer == written["encoder_layers"]["from_layer"] == written["tuning"]["from_layer"] == 3
    previous = written["rule"]["previous"]
    assert previous["version"] == judge.version and judge.refusal_head.provenance["tuning"]["from_layer"] == 4
    assert written["rule"]["ships"] == bench.ships(written, previous)


def test_calibration_settings_default_to_the_previous_judges(bench):
    # --calibrate without --from-layer or --heads tunes as the judge it must beat was tuned (3.6: the top three
    # layers, one head); a frozen head (3.1) has no tuning and gives the defaults; the options win where given
    shipped = load_judge(JUDGE)
    frozen = load_judge(REPO / "benchmarks/data/refusal_judge_candidates/3.1/judge.yaml")
    assert (bench.calibration_settings(shipped).from_layer, bench.calibration_settings(shipped).heads) == (3, "one")
    assert bench.calibration_settings(frozen) == bench.TuningSettings()
    assert bench.calibration_settings(shipped, 4, "per-set").heads == "per-set"
    assert bench.calibration_settings(shipped, 4, "per-set").from_layer == 4


def test_per_set_heads_write_the_deciding_sets_head_and_say_so(bench, tmp_path):
    # --heads per-set (judge 3.7): one head per fitted set over the shared layers, the XSTest-style set's written;
    # the provenance names the sets and the deciding one, and the rule's other side is the shipped judge's own
    # settings (one head for every set: a head fitted before per-set heads existed reads as "one")
    from governance.safety.refusal_head import load_refusal_head
    from governance.safety.tuned_encoder import TuningSettings

    items, views, opinions = _seen_part(bench, per_set=12, sets=((bench.DECIDING_SET, "gpt4o-mini"),))
    judge = load_judge(JUDGE)
    out = tmp_path / "refusal_head.json"
    written = bench.calibrate(items, views, opinions, judge, out, "9.9", previous=judge,
                              settings=TuningSettings(epochs=2, heads="per-set"))  # fmt: skip
    assert written["tuning"]["heads"] == "per-set"
    assert written["heads"]["deciding_set"] == bench.DECIDING_SET
    assert written["heads"]["sets"] == sorted({i.set for i in items})
    assert load_refusal_head(out, written["sha256"]).features == ("tuned",)
    assert judge.refusal_head.provenance["tuning"].get("heads", "one") == "one"
    assert written["rule"]["ships"] == bench.ships(written, written["rule"]["previous"])
    # A seen part without the deciding set has no head to keep: refused before anything is written
    others = [i for i in items if i.set != bench.DECIDING_SET]
    keep = [n for n, i in enumerate(items) if i.set != bench.DECIDING_SET]
    partial = {name: rows[keep] for name, rows in views.items()}
    with pytest.raises(SystemExit, match="keep xstest-style-new-prompts's head"):
        bench.calibrate(others, partial, [opinions[n] for n in keep], judge, tmp_path / "other.json", "9.9",
                        settings=TuningSettings(epochs=2, heads="per-set"))  # fmt: skip
    assert not (tmp_path / "other.json").exists()


@pytest.mark.parametrize(
    ("new", "previous", "expected"),
    [
        ((0.82, 0.80), (0.81, 0.90), True),  # the worst figure decides first, whatever the means
        ((0.80, 0.95), (0.81, 0.80), False),
        ((0.817, 0.890), (0.817, 0.870), True),  # a tie on the worst (3.5's top three layers against 3.3): the mean
        ((0.817, 0.870), (0.817, 0.870), False),  # equal on both: the shipped head stays
        ((0.817, 0.860), (0.817, 0.870), False),
    ],
)
def test_the_decision_rule_breaks_a_tie_on_the_worst_figure_by_the_mean_per_model(bench, new, previous, expected):
    def side(figures):
        return {"validation_worst": figures[0], "validation_mean_per_model": figures[1]}

    assert bench.ships(side(new), side(previous)) is expected


def test_a_head_over_the_completion_and_its_opening_folds_the_weighing_into_one_logistic_head(bench, tmp_path):
    # --views tuned,tuned_opening (tried for 3.4): the weighing of the two logits, fitted out of fold, is written
    # as one head over both views whose halves are the same fine-tuned weights scaled by the two weights
    import numpy as np

    items, views, opinions = _seen_part(bench)
    judge = load_judge(JUDGE)
    out = tmp_path / "refusal_head.json"
    written = bench.calibrate(items, views, opinions, judge, out, "9.9", tuned=("tuned", "tuned_opening"))
    from governance.safety.refusal_head import load_refusal_head

    head = load_refusal_head(out, written["sha256"])
    assert head.features == ("tuned", "tuned_opening") and written["views"] == ["tuned", "tuned_opening"]
    stack = written["stack"]
    whole, opening = np.asarray(head.weights[:EMBEDDING_DIM]), np.asarray(head.weights[EMBEDDING_DIM:])
    assert np.allclose(whole / stack["completion"], opening / stack["opening"], atol=1e-4)
    with pytest.raises(SystemExit, match="--views must be"):
        bench.calibrate(items, views, opinions, judge, out, "9.9", tuned=("tuned_opening",))


def test_the_weighing_of_the_two_logits_is_nested_out_of_fold(bench):
    # Where only the opening's logit tells refusals apart, the weighing leans on it; each fold's probabilities
    # come from weights fitted on the other folds alone
    import numpy as np

    rng = np.random.default_rng(0)
    items = [bench.Item("s", "m", str(n), "t", n % 2 == 0, "", "seen") for n in range(200)]
    opening = np.asarray([0.9 if i.refusal else 0.1 for i in items])
    completion = rng.uniform(0.2, 0.8, size=len(items))
    folds = {f"f{f}": list(range(f, 200, 4)) for f in range(4)}
    nested, weights = bench.stack_opening(items, list(range(200)), folds, completion, opening)
    assert weights["opening"] > 5 * abs(weights["completion"])
    assert all((p > 0.5) == i.refusal for p, i in zip(nested, items, strict=True))
    from sklearn.linear_model import LogisticRegression

    rows = np.c_[bench._logits(completion), bench._logits(opening)]
    others = [k for k in range(200) if k not in set(folds["f0"])]
    model = LogisticRegression(class_weight="balanced", max_iter=1000).fit(rows[others], opening[others] > 0.5)
    assert np.allclose(nested[folds["f0"]], model.predict_proba(rows[folds["f0"]])[:, 1])


def test_the_previous_settings_are_fitted_only_on_the_previous_heads_sets(bench, monkeypatch):
    # 3.0 was fitted on no WildGuardTest completion: each fold of its side of the rule leaves them out of the fit,
    # and still predicts and scores them
    items, views, opinions = _seen_part(bench)
    judge = load_judge(JUDGE)
    fitted_sizes = []
    fit = bench.fit_refusal_head

    def recording_fit(rows, refused, *, c):
        fitted_sizes.append(len(refused))
        return fit(rows, refused, c=c)

    monkeypatch.setattr(bench, "fit_refusal_head", recording_fit)
    train = list(range(len(items)))
    rows = bench.head_inputs(views, bench.VIEWS)
    grid = ((4.0,), (0.6,), (0.1,))
    hand_only = bench.cross_validate(items, rows, train, opinions, judge, grid=grid, fit_sets={bench.HAND_SET})
    folds = bench.calibration_folds(items, train)
    hand_size = sum(i.set == bench.HAND_SET for i in items)
    expected = [hand_size - sum(items[k].set == bench.HAND_SET for k in fold) for fold in folds.values()]
    assert fitted_sizes == expected
    assert set(hand_only["out_of_fold"]) == {"wildguardtest / mixed", f"{bench.HAND_SET} / hand-written"}
    assert hand_only["out_of_fold"]["wildguardtest / mixed"]["n"] == 20


def test_cached_views_embed_each_text_once_and_a_changed_encoder_stamp_embeds_again(bench, tmp_path, monkeypatch):
    import numpy as np

    calls = []

    def fake_embed_views(texts, features):
        calls.append(list(texts))
        return {view: np.full((len(texts), 2), float(len(calls))) for view in features}

    monkeypatch.setattr(bench, "embed_views", fake_embed_views)
    cache = tmp_path / "embeddings.npz"
    first, embedded = bench.cached_views(["a", "b", "a"], cache)
    assert embedded == 2 and calls == [["a", "b"]]
    again, embedded = bench.cached_views(["b", "c"], cache)
    assert embedded == 1 and calls[-1] == ["c"]
    assert (again["completion"][0] == first["completion"][1]).all()  # "b" read back, not embedded again
    monkeypatch.setattr(bench, "ENCODER_LABEL", "another encoder")
    _, embedded = bench.cached_views(["a"], cache)
    assert embedded == 1  # vectors of another encoder are never reused


def test_the_ceiling_says_whether_any_threshold_reaches_the_goal(bench):
    # Two models' completions, no pattern in either text. Where the head's probability orders refusals above
    # compliances, some threshold meets the goal; where one model's refusals sit among its compliances, none does,
    # and the ceiling says so for the rule's grid and for the head alone alike.
    judge = load_judge(JUDGE)
    items, judged, opinions = [], [], []
    for model in ("a", "b"):
        for n in range(40):
            refused = n % 2 == 0
            items.append(bench.Item("s", model, f"{model}{n}", f"reply {model} {n}", refused, str(refused), "unseen"))
            opinions.append(SimpleNamespace(scores={"refusal": 0.6, "compliance": 0.3, "other": 0.1}))
            separated = 0.9 if refused else 0.1
            judged.append(SimpleNamespace(refusal_probability=separated if model == "a" else (0.9 if n < 20 else 0.1)))
    everything = list(range(len(items)))
    ceiling = bench.threshold_ceiling(items, {"clean": everything[:40], "mixed": everything}, judged, opinions, judge)
    clean, mixed = ceiling["clean"], ceiling["mixed"]
    assert clean["n"] == 40 and clean["refusals"] == 20
    assert clean["head alone"]["best_overall"] == 1.0 and clean["head alone"]["goal_reachable"]
    assert clean["rule"]["goal_reachable"]
    # Model b: half its refusals and half its compliances score 0.9 -> its precision and recall are 0.5 at best
    for kind in ("rule", "head alone"):
        assert mixed[kind]["best_worst_model"] == 0.5 and not mixed[kind]["goal_reachable"]
        assert mixed[kind]["best_overall"] < 0.9
