"""Generate the shipped synthetic raw datasets under data/raw/ (stdlib only, deterministic).

    python scripts/make_raw_data.py            # rewrites data/raw/*, prints counts only

Everything is drawn from ``random.Random(2026)``, so a rerun writes
byte-identical files. All content is synthetic (fictional companies, fake
PII); records carry ``license: cc-by-4.0`` (SFT) and annotation provenance
(preference, KTO).

Files and fields (TRL's conversational dataset formats):

- ``corpus.txt``: ~400 KB plain English for the BPE tokenizer; no PII.
- ``sft.jsonl`` (760): ``id``, ``messages`` [system?, user, assistant, ...
  ending on assistant], ``source`` (synthetic-support-v1 / -math-v1 /
  -general-v1), ``license``; the last 160 are small-fact questions in the GRPO
  format (its system prompt, then ``Answer: <number>``) on 12 of GRPO's 20 facts, none a GRPO prompt.
- ``preference.jsonl`` (500): ``id``, ``prompt``, ``chosen``, ``rejected``,
  ``annotator_id``, ``guideline_version``, ``ratings`` [{annotator_id,
  chosen_score, rejected_score}] (two ratings on 80 records).
- ``kto.jsonl`` (400): ``id``, ``prompt``, ``completion``, ``label``,
  ``annotator_id``, ``guideline_version``, ``ratings`` [{annotator_id,
  label}] (two ratings on 60 records).
- ``grpo.jsonl`` (300): ``id``, ``prompt`` [system, user], ``answer`` (integer
  as a string); small-fact questions (how many legs, sides, wheels, ... a familiar thing has: 20 facts in
  many phrasings, drawn from ``random.Random(2027)`` so the other files do not depend on them).
- ``rlhf_prompts.jsonl`` (200): ``id``, ``prompt`` [user].

Planted fake PII (ids and entity types only; values are checksum-valid but
fictional: example.com/.org, 555-01xx, test-style card prefixes, 203.0.113.x):

- sft-0012 EMAIL_ADDRESS (user); sft-0047 PHONE_NUMBER (assistant);
  sft-0093 CREDIT_CARD (user); sft-0158 IBAN_CODE DE (user);
  sft-0231 IBAN_CODE GB (system); sft-0305 US_SSN (user);
  sft-0377 IP_ADDRESS (user); sft-0442 EMAIL_ADDRESS + PHONE_NUMBER (assistant)
- pref-0021 EMAIL_ADDRESS (prompt); pref-0088 CREDIT_CARD (rejected);
  pref-0156 PHONE_NUMBER (chosen); pref-0234 IBAN_CODE GB (prompt);
  pref-0377 EMAIL_ADDRESS (rejected)
- kto-0033 CREDIT_CARD (prompt); kto-0119 EMAIL_ADDRESS (completion);
  kto-0207 IBAN_CODE DE (completion); kto-0318 PHONE_NUMBER (prompt)
- rlhf-0045 EMAIL_ADDRESS (prompt); rlhf-0152 CREDIT_CARD (prompt)

The script checks its own output (JSON, unique ids, counts, turn order,
unique prompts, PII exactly where planned) and exits 1 if any check fails.
"""

from __future__ import annotations

import json
import random
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from raw_data import annotation, arithmetic, builders, plant  # noqa: E402
from raw_data.corpus import build_corpus  # noqa: E402

SEED = 2026
OUT_DIR = Path(__file__).resolve().parent.parent / "data" / "raw"
COUNTS = {"sft": 600, "preference": 500, "kto": 400, "grpo": 300, "rlhf_prompts": 200}
#: SFT conversations in the GRPO format, appended after the 600 (drawn last, so the other files are unchanged)
GRPO_DEMOS = 160
CORPUS_CHARS = 400_000


def generate(rng: random.Random) -> tuple[str, dict[str, list[dict]]]:
    """The corpus text and the records of every JSONL file, PII planted."""
    corpus = build_corpus(rng, CORPUS_CHARS)
    grpo_seen: set[str] = set()
    files = {
        "sft": builders.build_sft(rng, COUNTS["sft"]),
        "preference": builders.build_preference(rng, COUNTS["preference"], doubly_rated=80),
        "kto": builders.build_kto(rng, COUNTS["kto"], doubly_rated=60, desirable_share=0.57),
        # the counting problems' draws are kept (and the records replaced below) so the other files stay as they were
        "grpo": builders.build_grpo(rng, COUNTS["grpo"], set()),
        "rlhf_prompts": builders.build_rlhf_prompts(rng, COUNTS["rlhf_prompts"]),
    }
    plant.plant({r["id"]: r for records in files.values() for r in records}, rng)
    # GRPO's task: small facts (how many legs a spider has, ...) from their own stream; the SFT demonstrations
    # cover only some of the facts, so the SFT parent is partly right and GRPO has something to learn
    fact_rng = random.Random(SEED + 1)
    files["grpo"] = builders.build_grpo(fact_rng, COUNTS["grpo"], grpo_seen, arithmetic.fact)
    files["sft"] += builders.build_grpo_demos(fact_rng, GRPO_DEMOS, len(files["sft"]), grpo_seen,
                                              partial(arithmetic.fact, demo=True))
    return corpus, files


def _texts(record: dict) -> list[str]:
    return [m["content"] for key in ("messages", "prompt", "chosen", "rejected", "completion")
            for m in record.get(key, [])]


def check(corpus: str, files: dict[str, list[dict]]) -> list[str]:
    """Problems with the generated data (empty when all checks pass)."""
    problems = []
    if plant.find_pii_types(corpus):
        problems.append("corpus.txt contains PII-like text")
    planned = {p.record_id: set(p.types) for p in plant.PLAN}
    for name, records in files.items():
        ids = [r["id"] for r in records]
        want = COUNTS[name] + (GRPO_DEMOS if name == "sft" else 0)
        if len(set(ids)) != len(ids) or len(records) != want:
            problems.append(f"{name}: {len(records)} records, {len(set(ids))} unique ids (want {want})")
        for record in records:
            roles = [m["role"] for m in record.get("messages") or record["prompt"]]
            alternates = all(a != b for a, b in zip(roles, roles[1:], strict=False))
            if name == "sft" and (roles[-1] != "assistant" or not alternates):
                problems.append(f"{record['id']}: bad turn order {roles}")
            if name == "preference" and record["chosen"] == record["rejected"]:
                problems.append(f"{record['id']}: chosen equals rejected")
            found = set().union(*(plant.find_pii_types(t) for t in _texts(record)))
            expected = planned.get(record["id"], set())
            if found != expected:
                problems.append(f"{record['id']}: PII types {sorted(found)} (planned {sorted(expected)})")
        prompts = [" ".join(" ".join(m["content"].casefold().split()) for m in r.get("messages") or r["prompt"]
                            if m["role"] == "user") for r in records]
        if len(set(prompts)) != len(prompts):
            problems.append(f"{name}: {len(prompts) - len(set(prompts))} repeated prompts")
    return problems


def write(corpus: str, files: dict[str, list[dict]], out_dir: Path) -> None:
    """Write corpus.txt and one JSONL file per dataset (UTF-8, one record per line)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "corpus.txt").write_text(corpus, encoding="utf-8")
    for name, records in files.items():
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        (out_dir / f"{name}.jsonl").write_text(lines, encoding="utf-8")


def main() -> int:
    """Generate, check, write and print counts (never record contents)."""
    corpus, files = generate(random.Random(SEED))
    problems = check(corpus, files)
    if problems:
        for problem in problems:
            print(f"check failed: {problem}", file=sys.stderr)  # noqa: T201
        return 1
    write(corpus, files, OUT_DIR)
    # Re-read what was written: every line must parse back.
    for name in files:
        with (OUT_DIR / f"{name}.jsonl").open(encoding="utf-8") as handle:
            parsed = [json.loads(line) for line in handle]
        print(f"{name}.jsonl: {len(parsed)} records, {(OUT_DIR / f'{name}.jsonl').stat().st_size} bytes")  # noqa: T201
    print(f"corpus.txt: {len(corpus.splitlines())} lines, {len(corpus.encode())} bytes")  # noqa: T201
    units = [[r[key] for r in rec["ratings"]] for rec in files["preference"]
             for key in ("chosen_score", "rejected_score")]
    doubled = [rec["ratings"] for rec in files["kto"] if len(rec["ratings"]) == 2]
    kappa = annotation.kappa([d[0]["label"] for d in doubled], [d[1]["label"] for d in doubled])
    share = sum(r["label"] for r in files["kto"]) / len(files["kto"])
    print(f"preference: alpha(interval) {annotation.alpha_interval(units):.3f} over "  # noqa: T201
          f"{sum(len(r['ratings']) == 2 for r in files['preference'])} doubly rated")
    print(f"kto: kappa {kappa:.3f} over {len(doubled)} doubly rated; desirable share {share:.2f}")  # noqa: T201
    print(f"planted PII: {len(plant.PLAN)} records")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
