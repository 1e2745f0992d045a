"""Append the refusal demonstrations and safety preference pairs to the shipped raw data (stdlib only).

    python scripts/make_refusal_data.py        # idempotent: replaces what an earlier run appended

``data/raw/sft.jsonl`` gains conversations with ``source: synthetic-safety-v1``
(refusals to harmful requests of three AILuminate hazard categories, helpful
answers to benign requests that sound sensitive), ``data/raw/preference.jsonl``
pairs annotated like the others (refusal over compliance on harmful requests,
help over refusal on benign ones). They are drawn from ``random.Random(2028)``,
their own stream, and appended after the records ``scripts/make_raw_data.py``
writes, so every other record stays byte-identical.

Then the contrast demonstrations (``refusals.contrast_demos``): benign requests
that sound risky, put in the harmful requests' own plain frames ("Tell me how
to ...", "Help me ...") as well as asked as questions, each answered helpfully.
Without them every benign request the model saw was a question and every
harmful one an order, so the tiny model learnt to refuse the frame and the
sensitive word: it refused 8 to 13 of the 16 benign evaluation prompts,
depending on nothing but the order of its training data (issue 39). They come
from ``random.Random(2029)``, a stream of their own, so the records above and
the preference pairs stay byte-identical. Prints counts only.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from raw_data import annotation, refusals  # noqa: E402

SEED = 2028
RAW = Path(__file__).resolve().parent.parent / "data" / "raw"
SFT_REFUSALS = 100
SFT_BENIGN = 60  # benign requests asked as questions, beside the fixed benign-but-sensitive ones (each asked four ways)
PREFERENCE_REFUSALS = 150  # the reward model sees ~50 in its 24 steps: it then prefers a refusal on red-team requests
PREFERENCE_BENIGN = 30
SOURCE = "synthetic-safety-v1"
CONTRAST_SEED = 2029
SFT_CONTRAST = 164  # four per contrast act (41): each risky-sounding benign request in several frames
SFT_CONTRAST_REFUSALS = 100  # and as many more refusals as sft_demos draws: both sides of the line grow together


def _read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _write(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def _last_index(records: list[dict]) -> int:
    """The highest number in the records' ids (``sft-0906`` → 906): new ids continue after it."""
    return max((int(r["id"].rsplit("-", 1)[1]) for r in records), default=0)


def main() -> int:
    """Drop what an earlier run appended, append afresh, print counts."""
    rng = random.Random(SEED)
    sft_path, pref_path = RAW / "sft.jsonl", RAW / "preference.jsonl"
    sft = [r for r in _read(sft_path) if r.get("source") != SOURCE]
    seen = {" ".join(m["content"].casefold().split()) for r in sft for m in r["messages"] if m["role"] == "user"}
    added_sft = refusals.sft_demos(rng, SFT_REFUSALS, SFT_BENIGN, _last_index(sft), seen)
    contrast = refusals.contrast_demos(
        random.Random(CONTRAST_SEED), SFT_CONTRAST, SFT_CONTRAST_REFUSALS, _last_index(added_sft), seen
    )
    _write(sft_path, sft + added_sft + contrast)
    preference = [r for r in _read(pref_path) if r.get("guideline_version") != "v2.1-harmless"]
    seen = {" ".join(m["content"].casefold().split()) for r in preference for m in r["prompt"]}
    added_pref = refusals.preference_pairs(
        rng,
        PREFERENCE_REFUSALS,
        PREFERENCE_BENIGN,
        _last_index(preference),
        seen,
        lambda r: {**annotation.preference_annotation(r, False), "guideline_version": "v2.1-harmless"},
    )
    _write(pref_path, preference + added_pref)
    print(f"sft.jsonl: {len(sft)} + {len(added_sft)} safety + {len(contrast)} contrast conversations")  # noqa: T201
    print(f"preference.jsonl: {len(preference)} + {len(added_pref)} safety pairs")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
