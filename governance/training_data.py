"""Hash what you train: a training stage's data files, read once, refused unless the required gates cleared those bytes.

    data = read_gated_data("train_dpo", {"train_file": ..., "eval_file": ...}, params.gate_decisions)
    train = data["train_file"].dataset(("prompt", "chosen", "rejected"))   # parsed from the bytes checked
    lineage["datasets"] = data.refs()                                        # the hashes of those bytes

Every ``train_*`` stage reads its data through :func:`read_gated_data`, so all
methods refuse alike:

* a gate that ``policies/report.yaml`` requires (``evidence.required_gates``)
  with no configured decision, or whose decision did not judge the file;
  a file that is only the *input* of a gate (the prepared file the PII gate
  scanned, not the copy it cleared) is named with its params key;
* anything :func:`governance.gates.require_passed_gates` refuses (a decision
  no signed trail event published, a denied gate, a file changed since gated);
* bytes read for training that are not the bytes the gates judged: each file
  is read once (:func:`governance.datasets.hashed.read_hashed`), after the
  gate check, and that buffer's SHA-256 must equal what every configured
  decision's signed event judged. A file swapped on disk after the check and
  swapped back after the read is caught here; the buffer is what is parsed
  and trained on, and its hash is what the manifest records.

Trust boundary: believed are the audit trail (a decision counts only through
the signed event that published its bytes), ``policies/report.yaml`` (which
gates are required) and the buffer this module read. Not believed: the list
of decisions in ``params.yaml`` (it can leave a required gate out or point at
a gate's input), and any hash of a data file taken by another read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from governance.datasets.hashed import HashedFile, read_hashed
from governance.errors import ConfigError, DataError, PolicyViolation
from governance.gates import (
    DatasetRef,
    GateDecision,
    PublishedDecision,
    judged_files,
    read_published_decision,
    require_passed_gates,
)

if TYPE_CHECKING:
    from governance.trail import Event

#: Where the gates every file trained on must pass are named (``evidence.required_gates``).
REPORT_POLICY = Path("policies/report.yaml")
#: The gate whose decisions say which file was held out for evaluation (``details.files[path].role == "eval"``)
VALIDATION_GATE = "validation"
#: The validation rules (``policies/data.yaml``, by the decision's ``details.kind``) each stage's data must have
#: passed: the method decides which rules mean "fit to train on", never ``validate_*.kind`` in params (as ``rlhf``,
#: preference data with every rejected answer equal to the chosen one passes; as ``preference`` it is denied).
TRAINING_KIND = {
    "base_model": "text",
    "train_sft": "sft",
    "train_rm": "preference",
    "train_dpo": "preference",
    "train_orpo": "preference",
    "train_kto": "kto",
    "train_grpo": "prompt",
    "train_rlhf": "rlhf",
}
#: The role (``details.files[path].role``) the validation gate must have judged each params key's file in.
ROLE_OF_KEY = {"train_file": "train", "eval_file": "eval", "corpus": "train"}


@dataclass(frozen=True)
class GatedData:
    """A stage's data files as read once (by params key) and the gate decisions that cleared those bytes."""

    files: dict[str, HashedFile]
    decisions: list[GateDecision]

    def __getitem__(self, key: str) -> HashedFile:
        return self.files[key]

    @property
    def paths(self) -> list[str]:
        return [file.path for file in self.files.values()]

    def refs(self) -> dict[str, dict[str, str]]:
        """``{path: {"sha256", "md5"}}`` of the buffers: the manifest's ``datasets``."""
        return {file.path: file.ref() for file in self.files.values()}


def required_gates(policy_path: str | Path = REPORT_POLICY) -> list[str]:
    """The gate names every file trained on must have passed (``policies/report.yaml`` ``evidence.required_gates``)."""
    from governance.policy import load_reviewed_policy
    from governance.report.policy import ReportPolicy

    path = Path(policy_path)
    if not path.is_file():
        raise ConfigError(
            f"{path}: file not found; training reads evidence.required_gates from it (the gates every file "
            "trained on must pass)"
        )
    return list(load_reviewed_policy(path, ReportPolicy, "list of required gates").evidence.required_gates)


def read_gated_data(
    section: str,
    files: Mapping[str, str | Path],
    decision_paths: Sequence[str | Path],
    *,
    report_policy: str | Path = REPORT_POLICY,
) -> GatedData:
    """Read each of ``files`` (params key -> path) once, refusing unless the required gates cleared those bytes.

    ``section`` is the stage's params section (named in refusals). Raises
    :class:`PolicyViolation` naming the params key and file, the decision, or
    the file whose bytes differ; :class:`DataError` for a missing file.
    """
    files = {key: str(Path(path)) for key, path in files.items()}
    for key, path in files.items():
        if not Path(path).is_file():
            raise DataError(
                f"params.yaml: {section}.{key}: {path}: training data file not found; "
                "run the gate stages that write it (dvc repro)"
            )
    required = required_gates(report_policy)
    published = [read_published_decision(path) for path in decision_paths]
    require_required_gates(section, files, published, required, report_policy)
    require_validated_roles(section, files, published)
    decisions = require_passed_gates(list(files.values()), decision_paths)
    # Read once, after the check: what is parsed and trained on is this buffer, and it must be what was judged
    buffers = {key: read_hashed(path) for key, path in files.items()}
    require_judged_bytes(buffers.values(), published)
    return GatedData(buffers, decisions)


def require_required_gates(
    section: str,
    files: Mapping[str, str],
    published: Sequence[PublishedDecision],
    required: Sequence[str],
    report_policy: str | Path = REPORT_POLICY,
) -> None:
    """Refuse a file that a required gate has no configured decision for, naming the params key and the file.

    A file that is only the input of a gate (a published decision lists it
    under ``details.inputs`` but judged another file: the copy it cleared) is
    refused as such, with the copy to train on. A configured decision of the
    gate that did not judge the file is left to :func:`require_passed_gates`.
    """
    for key, path in files.items():
        for gate in required:
            configured = [p for p in published if p.decision.gate == gate]
            if any(_judged(p).get(path) for p in configured):
                continue
            source = _gate_input_of(path, gate, configured)
            if source is not None:
                cleared = next((j for j in _judged(source) if Path(j).name == Path(path).name), None)
                raise PolicyViolation(
                    f"params.yaml: {section}.{key}: {path} is only the input of the {gate} gate ({source.path}), "
                    f"not the copy it cleared; train on {cleared or 'the copy the gate cleared'}"
                )
            if not configured:
                raise PolicyViolation(
                    f"params.yaml: {section}.gate_decisions: no decision of the {gate} gate, which {report_policy} "
                    f"requires for every file trained on (evidence.required_gates: {', '.join(required)}); "
                    f"list the decision of the {gate} gate that judged {path}"
                )


def require_validated_roles(section: str, files: Mapping[str, str], published: Sequence[PublishedDecision]) -> None:
    """Refuse a file the validation gate did not judge in the role its params key trains it in, or under another
    kind's rules than the stage's method needs (:data:`TRAINING_KIND`, :data:`ROLE_OF_KEY`).

    ``-S train_sft.train_file=…/eval.jsonl`` would train on the held-out split, which every evaluation then reads as
    unseen (``read_held_out_records``): a memorising model would pass. ``-S validate_preference.kind=rlhf`` would
    judge preference pairs under rules that never compare chosen with rejected. The role and the kind are read from
    the decision's signed bytes (``details.kind``, ``details.files[path].role``).
    """
    if section not in TRAINING_KIND:
        raise ConfigError(f"{section}: no validation kind is known for this stage (governance.training_data)")
    kind = TRAINING_KIND[section]
    for decision in published:
        if decision.decision.gate != VALIDATION_GATE:
            continue
        details = decision.decision.details
        judged = {str(Path(name)): info for name, info in (details.get("files") or {}).items()}
        for key, path in files.items():
            if path not in judged:
                continue
            if details.get("kind") != kind:
                raise PolicyViolation(
                    f"{decision.path}: the validation gate judged {path} under the {details.get('kind')} rules of "
                    f"policies/data.yaml, but {section} trains on {kind} data, which only the {kind} rules judge; "
                    f"validate it as {kind} (the validate stage's kind in params.yaml) and re-run: dvc repro"
                )
            role, wanted = (judged[path] or {}).get("role"), ROLE_OF_KEY.get(key, "train")
            if role != wanted:
                raise PolicyViolation(
                    f"params.yaml: {section}.{key}: {path} is the file the validation gate judged as the {role} "
                    f"split ({decision.path}), not the {wanted} split; a stage trains on the train split and holds "
                    "the eval split out, so that every evaluation reads data the model never trained on"
                )


def require_judged_bytes(buffers: Iterable[HashedFile], published: Sequence[PublishedDecision]) -> None:
    """Refuse a buffer whose SHA-256 is not what each configured decision's signed event judged for its file."""
    for buffer in buffers:
        for decision in published:
            judged = _judged(decision).get(buffer.path)
            if judged != buffer.sha256:
                raise PolicyViolation(
                    f"{decision.path}: {buffer.path}: the bytes read for training have sha256 {buffer.sha256[:12]}… "
                    f"but the {decision.decision.gate} gate passed {str(judged)[:12]}…; the file changed after "
                    "the gates were checked, nothing was trained on it (re-run the stage)"
                )


def _judged(decision: PublishedDecision) -> dict[str, str]:
    """``{path: sha256}`` the decision's signed event judged, paths normalised as ``files`` are."""
    return {str(Path(path)): digest for path, digest in judged_files(decision.event).items()}


def _gate_input_of(path: str, gate: str, configured: Sequence[PublishedDecision]) -> PublishedDecision | None:
    """A published decision of ``gate`` that lists ``path`` among its inputs without judging it.

    The configured decisions first; where none of ``gate`` is configured, the
    current decision at each path the trail's ``gate``
    events name. Only to say why a file is refused: a refusal follows either way.
    """
    candidates = list(configured)
    if not candidates:
        candidates = _published_of_gate(gate)
    for decision in candidates:
        inputs = decision.decision.details.get("inputs") or []
        named = {str(Path(ref["path"])) for ref in inputs if isinstance(ref, dict) and "path" in ref}
        if path in named and path not in _judged(decision):
            return decision
    return None


def _published_of_gate(gate: str) -> list[PublishedDecision]:
    """The decision now at each path the trail's ``gate_decision`` events of ``gate`` name, where still published."""
    from governance import trail

    paths = dict.fromkeys(
        str(event.details.get("decision"))
        for event in reversed(trail.events(event_types=["gate_decision"]))
        if event.details.get("gate") == gate and event.details.get("decision")
    )
    found = []
    for path in paths:
        try:
            found.append(read_published_decision(path))
        except (PolicyViolation, DataError):  # moved, rewritten or replaced since: it cannot explain anything
            continue
    return found


def require_required_gate_events(
    events: Sequence[Event], source: str, report_policy: str | Path = REPORT_POLICY
) -> None:
    """Refuse a model whose recorded gate events lack a gate ``policies/report.yaml`` requires (at registration).

    ``events`` are the signed decisions :func:`governance.gates.require_recorded_gates`
    accepted for the model's training manifest; a manifest that lists fewer
    gates than the reviewed policy requires names a model trained around one.
    """
    present = {str(e.details.get("gate")) for e in events}
    missing = [gate for gate in required_gates(report_policy) if gate not in present]
    if missing:
        raise PolicyViolation(
            f"{source}: records no decision of the {', '.join(missing)} gate, which {report_policy} requires for "
            "every file trained on (evidence.required_gates); retrain under every required gate: dvc repro"
        )


# --------------------------------------------------------------------------- evaluation: the held-out split


def read_held_out_records(path: str | Path, trained: Mapping, model_dir: str | Path) -> tuple[list, DatasetRef]:
    """An evaluation's data, read once, refused unless those bytes are the held-out split of the model's training data.

    Held out means: a validation gate decision the model's training recorded (``trained["gates"]``, believed only
    through the signed event that published its exact bytes, :func:`~governance.gates.read_published_decision`)
    judged these bytes in the ``eval`` role beside the training file, so its ``data.train_eval_overlap`` rule
    checked them against what was trained on. Params choose the path (``eval_file``); they cannot make the training
    file, or data no gate held out, the data an evaluation decides on (``-S evaluate_sft.eval_file=…/train.jsonl``
    would measure the loss on what the model memorised).
    """
    from governance.gates import read_judged_records

    records, ref = read_judged_records(path)  # the bytes judged are the bytes named
    held_out = held_out_splits(trained, model_dir)
    if ref.sha256 not in held_out:
        recorded = [e["decision"] for e in trained.get("gates") or [] if e.get("gate") == VALIDATION_GATE]
        named = "; ".join(f"{where} held out {eval_path}" for eval_path, where in sorted(set(held_out.values())))
        if not named:
            named = f"{', '.join(recorded)} held out no file" if recorded else "it recorded no validation decision"
        raise PolicyViolation(
            f"{path}: not the held-out split of {model_dir}'s training data: its bytes (sha256 {ref.sha256[:12]}…) "
            f"are no eval file a validation gate the model's training recorded checked against the training file "
            f"({named}); an evaluation decides only on held-out data: set "
            "eval_file to the held-out split"
        )
    return records, ref


def held_out_splits(trained: Mapping, model_dir: str | Path) -> dict[str, tuple[str, str]]:
    """``{sha256: (eval path, decision path)}`` of the files the model's recorded validation decisions held out."""
    found: dict[str, tuple[str, str]] = {}
    for entry in trained.get("gates") or []:
        if entry.get("gate") != VALIDATION_GATE or not entry.get("decision"):
            continue
        published = read_published_decision(entry["decision"])
        if published.sha256 != entry.get("decision_sha256"):
            raise PolicyViolation(
                f"{entry['decision']}: sha256 {published.sha256[:12]}… is not the validation decision "
                f"{model_dir} was trained under ({str(entry.get('decision_sha256'))[:12]}…); the data was validated "
                "again since training: retrain (dvc repro)"
            )
        judged = _judged(published)
        for name, info in (published.decision.details.get("files") or {}).items():
            digest = judged.get(str(Path(name)))
            if isinstance(info, dict) and info.get("role") == "eval" and digest:
                found[digest] = (str(name), str(entry["decision"]))
    return found
