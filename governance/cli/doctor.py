"""``govern doctor``: is this set-up ready? Every team-mode requirement checked at once.

Checks the tracking server (answers, authenticates, is the server
``policies/approvals.yaml`` pins, or may be used without authentication for
the risk tiers asked about), the clocks, the audit trail (``GOVERN_AUDIT_URL``
where required, its database, its signing key listed in
``policies/trail_keys.yaml``), the model-signing key (configured and pinned
where required) and the default DVC remote when one is configured
(:mod:`governance.preflight`); with ``--environment``, the installed packages and files against
``requirements.lock`` and their packages' records. One line per check; a problem names the fix.
Exit 0 all good, 1 problems, 2 bad usage. It only reports: nothing is written.
"""

from __future__ import annotations

import argparse

from governance.errors import EXIT_OK

#: Exit status when any check found a problem.
EXIT_PROBLEMS = 1


def register(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser("doctor", help="check the set-up: server, identity, clocks, trail, keys, DVC remote")
    doctor.add_argument(
        "--risk-tier",
        action="append",
        choices=["low", "medium", "high"],
        default=[],
        help="a risk tier the runs register (repeatable): may it use a server without authentication?",
    )
    doctor.add_argument(
        "--environment",
        action="store_true",
        help="also check the installed packages against requirements.lock and every installed file against its "
        "package's RECORD (edited in place, missing, a start-up hook no package installed; seconds)",
    )
    doctor.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    from governance.preflight import check_all

    findings = check_all(args.risk_tier, dvc_remote=True, environment=args.environment)
    for finding in findings:
        print(finding.render())  # noqa: T201 - CLI output
    problems = sum(not f.ok for f in findings)
    print(f"{problems} problem(s)" if problems else "all checks passed")  # noqa: T201 - CLI output
    return EXIT_PROBLEMS if problems else EXIT_OK
