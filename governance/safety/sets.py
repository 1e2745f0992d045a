"""The shipped safety prompt sets: red-team requests, benign-but-sensitive requests, sycophancy probes.

Each is a JSON Lines file of prompt-only records (the PII gate reads them as
kind ``prompt``), conversational like every other prompt in the pipeline:

* red team: ``{"id", "category", "topic", "variant", "prompt"}`` — harmful requests,
  each as a direct request, a paraphrase and a role-play jailbreak; ``category`` is a
  hazard category of the MLCommons AILuminate v1.0 taxonomy (:data:`HAZARD_CATEGORIES`),
  ``topic`` the narrower subject (fraud, stalking, ...);
* over-refusal: ``{"id", "category", "prompt", "reference"}`` — legitimate
  requests that sound sensitive, with a short helpful reference answer;
* sycophancy: ``{"id", "prompt", "answer", "asserted"}`` — the user asserts a
  wrong answer (``asserted``) to a checkable question whose answer is ``answer``.

Beside each family of sets, a sources file (``data/safety/sources.yaml`` for the
built-in sets, ``data/safety/real/sources.yaml`` for the real-model profile's) names
every set's file, the SHA-256 of its bytes, its licence and how it was selected, and
the public sources it was drawn from (:class:`SetSources`). :func:`set_provenance`
binds it to the files an evaluation judged: a set is described only when the bytes
judged are the bytes the entry hashes, or the PII gate's cleared copy of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, ValidationError

from governance.errors import DataError
from governance.lineage import sha256_file
from governance.policy import Strict, load_yaml, parse_yaml, validate_model
from governance.records import ReadDigest, iter_records


class Message(Strict):
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


#: The twelve hazard categories of the MLCommons AILuminate v1.0 benchmark (Ghosh et al., 2025), snake_case
Hazard = Literal[
    "violent_crimes",
    "sex_related_crimes",
    "child_sexual_exploitation",
    "suicide_and_self_harm",
    "indiscriminate_weapons",
    "intellectual_property",
    "defamation",
    "non_violent_crimes",
    "hate",
    "privacy",
    "specialized_advice",
    "sexual_content",
]
HAZARD_CATEGORIES: tuple[str, ...] = get_args(Hazard)


class RedTeamPrompt(Strict):
    id: str
    category: Hazard
    topic: str = Field(min_length=1)
    variant: Literal["direct", "paraphrase", "roleplay"]
    prompt: list[Message] = Field(min_length=1)


class SensitivePrompt(Strict):
    id: str
    category: str
    prompt: list[Message] = Field(min_length=1)
    reference: str = Field(min_length=1)


class SycophancyProbe(Strict):
    id: str
    prompt: list[Message] = Field(min_length=1)
    answer: str = Field(min_length=1)
    asserted: str = Field(min_length=1)


class SetSource(Strict):
    """One public source a set was drawn from, as read: where, at which commit, the bytes' hash, the licence."""

    title: str = Field(min_length=1)
    repository: str = Field(min_length=1)
    original: str | None = None  # the upstream, where the file was read from a copy
    commit: str = Field(min_length=1)
    file: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    license: str = Field(min_length=1)
    count: int = Field(ge=0)


class SetEntry(Strict):
    """A shipped set: its file, the SHA-256 of its bytes, its records, licence, selection and sources."""

    file: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    records: int = Field(ge=0)
    license: str = Field(min_length=1)
    selection: str = Field(min_length=1)
    sources: list[SetSource] = Field(min_length=1)


class SetSources(Strict):
    """A sources file: each set by name (``red_team``, ``over_refusal``, ``sycophancy``, ...)."""

    version: int
    sets: dict[str, SetEntry] = Field(min_length=1)


def load_set_sources(path: str | Path, data: bytes | None = None) -> SetSources:
    """Parse a sources file (``data``: its bytes as already read, to parse exactly what was checked); a missing
    file or field is a ConfigError naming the file, line or key path."""
    document = load_yaml(path) if data is None else parse_yaml(data, Path(path))
    return validate_model(document, SetSources, str(path))


def set_provenance(
    files: dict[str, dict[str, Any]],
    sources: SetSources,
    sources_path: str | Path,
    cleared_from: dict[str, dict[str, str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each judged set's entry of the sources file, bound to the bytes judged; a DataError where they differ.

    ``files`` are :attr:`SafetySets.files` (name -> path, sha256 of the bytes judged);
    ``cleared_from`` maps a PII gate's cleared copy (path) to the input it was cleared
    from (``path``, ``sha256``), as the gate's verified decision records it. A set is
    described when its judged bytes hash as its entry says, or are the cleared copy of
    a file that does; the entry's file is re-hashed too, so the sources file cannot
    describe bytes that are no longer there.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, judged in files.items():
        entry = sources.sets.get(name)
        if entry is None:
            raise DataError(
                f"{sources_path}: field sets.{name}: missing; the set {judged['path']} needs its source and licence"
            )
        if Path(entry.file).is_file() and sha256_file(entry.file) != entry.sha256:
            raise DataError(
                f"{sources_path}: field sets.{name}.sha256: {entry.sha256[:12]}… but {entry.file} hashes to "
                f"{sha256_file(entry.file)[:12]}…; the set changed without its sources entry (re-run the script "
                "that writes both)"
            )
        origin = (cleared_from or {}).get(str(Path(judged["path"])))
        if judged["sha256"] == entry.sha256:
            how = "as shipped"
        elif origin is not None and origin.get("sha256") == entry.sha256:
            how = f"PII-cleared copy of {origin.get('path')}"
        else:
            raise DataError(
                f"{sources_path}: field sets.{name}.sha256: {entry.sha256[:12]}… describes {entry.file}, but "
                f"{judged['path']} (sha256 {judged['sha256'][:12]}…) is neither that file nor its PII-cleared copy; "
                "point the evaluation's sources at the sources file of the sets it reads"
            )
        out[name] = {
            "sources_file": str(sources_path),
            "file": entry.file,
            "sha256": entry.sha256,
            "judged": how,
            "license": entry.license,
            "selection": entry.selection,
            "sources": [s.model_dump(exclude_none=True) for s in entry.sources],
        }
    return out


@dataclass(frozen=True)
class SafetySets:
    """The three sets, parsed, with each file's path and SHA-256 (the bytes judged)."""

    red_team: list[RedTeamPrompt]
    over_refusal: list[SensitivePrompt]
    sycophancy: list[SycophancyProbe]
    files: dict[str, dict[str, Any]]

    def conversations(self) -> list[list[dict[str, str]]]:
        """Every prompt as chat messages, red team first, then over-refusal, then sycophancy."""
        items: Sequence[RedTeamPrompt | SensitivePrompt | SycophancyProbe] = [
            *self.red_team,
            *self.over_refusal,
            *self.sycophancy,
        ]
        return [[m.model_dump() for m in item.prompt] for item in items]


def _parse(path: str | Path, model: type[Strict], digest: ReadDigest) -> list[Any]:
    out, seen = [], set()
    for record in iter_records(path, digest=digest):
        try:
            item = model.model_validate(record.data)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"]) or "record"
            raise DataError(f"{path}:{record.line}: field {field}: {error['msg']}") from None
        if item.id in seen:
            raise DataError(f"{path}:{record.line}: field id: duplicate id {item.id!r}")
        seen.add(item.id)
        out.append(item)
    return out


def load_safety_sets(red_team: str | Path, over_refusal: str | Path, sycophancy: str | Path) -> SafetySets:
    """Parse the three sets; a bad record is a DataError naming file, line and field.

    Each file is read once: its ``sha256`` in :attr:`SafetySets.files` is of the bytes parsed (never the path hashed
    again, which could hold other bytes by then).
    """
    paths = {"red_team": red_team, "over_refusal": over_refusal, "sycophancy": sycophancy}
    digests = {name: ReadDigest() for name in paths}
    parsed = {
        "red_team": _parse(red_team, RedTeamPrompt, digests["red_team"]),
        "over_refusal": _parse(over_refusal, SensitivePrompt, digests["over_refusal"]),
        "sycophancy": _parse(sycophancy, SycophancyProbe, digests["sycophancy"]),
    }
    files = {
        name: {"path": str(path), "sha256": digests[name].sha256, "records": len(parsed[name])}
        for name, path in paths.items()
    }
    return SafetySets(**parsed, files=files)


#: Share of an evaluation prompt's word trigrams found in one training text at which it counts as a near-duplicate
NEAR_DUPLICATE = 0.5
_WORD = re.compile(r"[a-z0-9]+")


def _trigrams(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.casefold())
    return {tuple(words[i : i + 3]) for i in range(max(len(words) - 2, 1))}


@dataclass(frozen=True)
class Contamination:
    """An evaluation prompt found (whole or nearly) in a training text."""

    eval_id: str
    train_ref: str
    overlap: float


def contamination(
    eval_prompts: Iterable[tuple[str, str]], train_texts: Iterable[tuple[str, str]], threshold: float = NEAR_DUPLICATE
) -> list[Contamination]:
    """Evaluation prompts held in a training text: ``(id, text)`` pairs in, one finding per prompt and text.

    A training text holds an evaluation prompt when at least ``threshold`` of
    the prompt's word trigrams (case- and punctuation-folded) occur in it: an
    exact copy, a copy inside a role-play wrapper, or a copy with a few words
    changed. Sharing a frame ("What is the best way to ...") is not enough.
    """
    prompts = [(i, _trigrams(t)) for i, t in eval_prompts]
    found = []
    for ref, text in train_texts:
        grams = _trigrams(text)
        for eval_id, wanted in prompts:
            overlap = len(wanted & grams) / len(wanted)
            if overlap >= threshold:
                found.append(Contamination(eval_id, ref, round(overlap, 3)))
    return found
