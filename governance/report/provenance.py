"""The report's signatures, provenance statement and reproduction: checked when the report is made.

:func:`provenance_facts` runs the same verification ``govern verify`` runs
(:func:`governance.provenance.verify_version`: the files ``models:/NAME/VERSION``
serves, downloaded through MLflow, against the signature and the DSSE-signed
in-toto/SLSA statement the trail recorded at registration, under the trusted
public key) and shows what it found: which files, their digests, the key's id
and where its public half is pinned, and the result. A check that fails or
cannot run says so with the reason; the report never claims a signature check
that did not run.

The statement's subjects are folded into the folder hash
(:func:`governance.lineage.sha256_of_file_digests`) and shown beside the
registered weights' hash of the trail's ``model_registered`` evidence: equal
when the statement describes exactly the registered weights. The authenticity
hash is given with :data:`RECOMPUTE_COMMAND`, which a reviewer runs on the
downloaded files with nothing but Python.

Trust boundary: believed are the trail (registration evidence, reproduction
events) and a signature that verifies under the trusted key at report time;
the registry's ``lineage.*`` tags are not read here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from governance.errors import ArtifactTampered, GovernanceError
from governance.lineage import sha256_of_file_digests

#: Recomputes the registered weights' hash (governance.lineage.sha256_dir) of a downloaded model folder with
#: Python alone: SHA-256 over "relative path NUL file sha256 LF" of every file in path order, manifest.json
#: and README.md excluded (they describe the weights and are written after the hash is taken).
RECOMPUTE_COMMAND = (
    'python3 -c "import hashlib,pathlib,sys;r=pathlib.Path(sys.argv[1]);h=hashlib.sha256();'
    "[h.update(p.relative_to(r).as_posix().encode()+b'\\0'+hashlib.sha256(p.read_bytes()).hexdigest().encode()"
    "+b'\\n') for p in sorted(r.rglob('*')) if p.is_file() and p.name not in ('manifest.json','README.md')];"
    'print(h.hexdigest())" MODEL_DIR'
)
NEVER_REPRODUCED = "never reproduced"


def fetch_commands(name: str, version: str, run_id: str, folder: str = "provenance") -> dict[str, str]:
    """How a reviewer fetches the registered files, the signature and the statement (from the run's ``folder``),
    and checks them."""
    run = run_id or "RUN_ID"
    return {
        # The files the registry serves (what models:/ loads), not the run's copy
        "files": f"mlflow artifacts download -u models:/{name}/{version} -d {name}-v{version}/model",
        "provenance": f"mlflow artifacts download -r {run} -a {folder} -d {name}-v{version}",
        "statement": f"govern provenance {name} {version} --out {name}-v{version}.intoto.json --as-registered",
        "signature": (
            f"model_signing verify key {name}-v{version}/model --signature {name}-v{version}/{folder}/model.sig "
            "--public_key pinned.pub"
        ),
        "authenticity": RECOMPUTE_COMMAND.replace("MODEL_DIR", f"{name}-v{version}/model"),
    }


def _signature_check(name: str, version: str, recorded: dict[str, str]) -> tuple[dict[str, Any], Any]:
    """The verification as it ran now: result, reason, files, key; and the :class:`Verified` (None unless it passed)."""
    from governance.provenance import keys, verify_version

    check: dict[str, Any] = {
        "checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "result": "not run",
        "reason": None,
        "files": [],
        "signing_key": recorded.get("signing_key"),
        "public_key": None,
        "pinned": None,
    }
    if "signature_sha256" not in recorded:
        check["reason"] = "registered without a signature (no signature_sha256 in its model_registered event)"
        return check, None
    try:
        trusted = keys.trusted_public_key()
        check.update(public_key=trusted.label(), pinned=trusted.pinned)
        verified = verify_version(name, version)
    except ArtifactTampered as exc:
        check.update(result="failed", reason=str(exc))
        return check, None
    except GovernanceError as exc:  # no trusted key, registry unreachable: the check did not run
        check["reason"] = str(exc)
        return check, None
    check.update(
        result="verified",
        signing_key=verified.signing_key,
        files=[{"path": path, "sha256": digest} for path, digest in sorted(verified.subjects.items())],
    )
    return check, verified


def _statement(name: str, version: str, verified: Any) -> tuple[dict[str, str], str | None]:
    """The statement's subjects: from the verification that just passed, else the registered envelope (its DSSE
    signature and trail digest checked); with the reason when neither can be read."""
    if verified is not None:
        return dict(verified.subjects), None
    from governance.provenance import registered_envelope
    from governance.provenance.statement import payload_of

    try:
        statement = payload_of(registered_envelope(name, version))
    except GovernanceError as exc:
        return {}, str(exc)
    return {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}, None


def provenance_facts(
    name: str, version: str, reproductions: list[dict[str, Any]], *, trail_problem: str | None = None
) -> dict[str, Any]:
    """Signature check, statement subject digest vs registered weights' hash, last reproduction.

    ``reproductions``: the version's ``reproduction_checked`` events as the report's audit section reads them
    (oldest first). ``trail_problem``: why the audit trail cannot be read (nothing is checked without the
    registration it recorded). Raises nothing for a failed or impossible check: its result and reason are the fact.
    """
    from governance.provenance.version import STATEMENT_FILE, recorded_provenance_folder, registration_event

    registered, not_registered = None, trail_problem
    if trail_problem is None:
        try:
            registered = registration_event(name, version)
        except ArtifactTampered as exc:
            not_registered = str(exc)
    evidence = dict(registered.evidence) if registered is not None else {}
    recorded = {k: evidence[k] for k in ("signature_sha256", "statement_sha256", "signing_key") if k in evidence}
    if registered is None:
        check: dict[str, Any] = {"result": "not run", "reason": not_registered, "files": []}
        verified = None
    else:
        check, verified = _signature_check(name, version, recorded)
    folder = verified.provenance_folder if verified is not None else recorded_provenance_folder(version, recorded)
    run_id = (verified.provenance_run_id if verified is not None else None) or (
        str(registered.details.get("run_id") or "") if registered is not None else ""
    )
    subjects, statement_problem = (
        ({}, check["reason"]) if "signature_sha256" not in recorded else _statement(name, version, verified)
    )
    registered_sha256 = evidence.get("model_sha256")
    subject_sha256 = sha256_of_file_digests(subjects) if subjects else None
    last = reproductions[-1] if reproductions else None
    return {
        "signed": "signature_sha256" in recorded,
        "recorded": recorded,
        "check": check,
        "statement": {
            "file": f"{folder}/{STATEMENT_FILE}",
            "sha256": recorded.get("statement_sha256"),
            "subjects": len(subjects),
            "subject_sha256": subject_sha256,
            "registered_model_sha256": registered_sha256,
            "equal": (subject_sha256 == registered_sha256) if subject_sha256 and registered_sha256 else None,
            "problem": statement_problem,
        },
        "authenticity": {"model_sha256": registered_sha256, "command": RECOMPUTE_COMMAND},
        "fetch": fetch_commands(name, version, run_id, folder),
        "reproduction": {
            "count": len(reproductions),
            "last": last,
            "line": _reproduction_line(last),
        },
    }


def _reproduction_line(last: dict[str, Any] | None) -> str:
    if last is None:
        return NEVER_REPRODUCED
    verdict = last.get("verdict") or "no verdict recorded"
    line = f"{verdict}, {last.get('at') or 'time not recorded'} by {last.get('actor') or 'unknown'}"
    if verdict != "bit-exact":
        line += f": {last.get('differences') or 'nothing named'}"
    return line
