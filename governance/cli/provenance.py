"""``govern verify|provenance|reproduce``: check a version's files, export its provenance, re-create it.

``verify NAME VERSION`` checks the files ``models:/NAME/VERSION`` serves (the
version's download URI) against the signature and the provenance statement
recorded at registration, after checking that the registry still serves them
from the ``source``/``storage_location``/``run_id`` the trail froze (exit 0
intact; 1 naming the field or the first file that differs, the refusal
recorded in the trail as ``permission_denied``). ``provenance NAME VERSION --out FILE`` writes the
version's in-toto Statement v1 (SLSA provenance v1 predicate) as a DSSE
envelope. ``reproduce NAME VERSION`` re-runs the version's lineage from its
commit and compares the weights (0 bit-exact; 1 naming what differs; 2 when
inputs are missing).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from governance.errors import EXIT_OK, ArtifactTampered
from governance.files import write_atomic


def register(sub: argparse._SubParsersAction) -> None:
    verify = sub.add_parser("verify", help="check a version's registered files against signature and statement")
    verify.add_argument("name")
    verify.add_argument("version")
    verify.set_defaults(handler=run_verify)
    provenance = sub.add_parser("provenance", help="write a version's signed in-toto/SLSA provenance statement")
    provenance.add_argument("name")
    provenance.add_argument("version")
    provenance.add_argument("--out", type=Path, required=True, help="DSSE envelope (JSON) to write")
    provenance.add_argument(
        "--as-registered",
        action="store_true",
        help="the envelope signed at registration, unchanged (no key needed); default: re-signed with today's trail",
    )
    provenance.set_defaults(handler=run_provenance)
    reproduce = sub.add_parser("reproduce", help="re-run a version's lineage from its commit; compare the weights")
    reproduce.add_argument("name")
    reproduce.add_argument("version")
    reproduce.add_argument("--repo", type=Path, default=Path("."), help="the git checkout holding the commit")
    reproduce.add_argument("--keep", action="store_true", help="keep the temporary worktree (path printed)")
    reproduce.set_defaults(handler=run_reproduce)


def run_verify(args: argparse.Namespace) -> int:
    from governance.approvals.preconditions import require_verified_version

    verified = require_verified_version("verify", args.name, str(args.version))
    if verified is None:  # unreachable: `verify` refuses an unsigned version rather than passing it
        raise ArtifactTampered(f"{args.name} v{args.version}: nothing was verified")
    print(verified.line())  # noqa: T201 - CLI output
    return EXIT_OK


def run_provenance(args: argparse.Namespace) -> int:
    from governance.provenance import current_statement, registered_envelope
    from governance.provenance.keys import load_private_key, signing_key_path
    from governance.provenance.statement import sign_statement

    if args.as_registered:
        envelope = registered_envelope(args.name, args.version)
    else:
        envelope = sign_statement(current_statement(args.name, args.version), load_private_key(signing_key_path()))
    write_atomic(args.out, json.dumps(envelope, indent=2, sort_keys=True) + "\n")
    print(f"wrote the provenance statement of {args.name} v{args.version} to {args.out}")  # noqa: T201
    return EXIT_OK


def run_reproduce(args: argparse.Namespace) -> int:
    from governance.provenance.reproduce import reproduce_version

    result = reproduce_version(args.name, args.version, repo=args.repo, keep=args.keep)
    print(result.line())  # noqa: T201 - CLI output
    return result.exit_code
