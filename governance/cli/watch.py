"""``govern watch``: record (and under policy revert) alias and tag changes made outside govern, as they happen.

    GOVERN_WATCH_SECRET=... govern watch --listen 0.0.0.0:8790 --url http://watch.internal:8790/
    govern watch --once        # one sweep of every model, then exit (a schedule, or the embedded store)

Against an ``mlflow server`` (SQL backend store) it serves a receiver, registers the MLflow
webhook ``govern-watch`` pointing at ``--url`` (an MLflow admin's credentials) and proves it with
a test delivery, sweeps every model once, then checks each model a signed delivery names.
Exit: 0 stopped (SIGTERM/Ctrl-C) or, with ``--once``, no drift left; 1 drift left; 2 configuration.
See docs/how-to/registry-watch.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

#: The shared secret MLflow signs deliveries with (from the environment, never from git).
SECRET_ENV = "GOVERN_WATCH_SECRET"
#: Shorter secrets are refused: the HMAC is only as strong as the secret.
MIN_SECRET_CHARS = 24
DEFAULT_LISTEN = "127.0.0.1:8790"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "watch", help="record alias/tag changes made outside govern as registry drift (MLflow webhooks)"
    )
    parser.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT to receive on (default {DEFAULT_LISTEN})")
    parser.add_argument("--url", help="the URL MLflow calls (default http://HOST:PORT/ of --listen)")
    parser.add_argument("--webhook-name", default=None, help="the webhook's name in MLflow (default govern-watch)")
    parser.add_argument(
        "--no-register", action="store_true", help="do not create/update/test the webhook (an admin registered it)"
    )
    parser.add_argument(
        "--no-sweep", action="store_true", help="do not check every model at start (a scheduled --once covers it)"
    )
    parser.add_argument("--once", action="store_true", help="check every registered model once and exit")
    parser.set_defaults(handler=run)


def _say(line: str, *, err: bool = False) -> None:
    print(line, file=sys.stderr if err else sys.stdout, flush=True)  # noqa: T201 - CLI output (a service's log)


def _show(outcome) -> None:
    if outcome.recorded is None:
        return
    verb = "recorded" if outcome.recorded.created else "already on record"
    _say(f"{outcome.model}: registry drift {verb} (event #{outcome.recorded.seq})")
    for d in outcome.drift:
        _say(f"  drift: {d.line()}")
    if outcome.reconciled is not None:
        _say(f"{outcome.model}: reverted by reconcile (event #{outcome.reconciled.seq})")


def run(args: argparse.Namespace) -> int:
    from governance import registry, watch
    from governance.errors import ConfigError
    from governance.identity import current_identity

    identity = current_identity()
    if args.once:
        outcomes = watch.sweep(identity)
        for outcome in outcomes:
            _show(outcome)
        left = [o for o in outcomes if o.left]
        if not left:
            _say(f"{len(outcomes)} model(s) checked: MLflow matches the audit trail")
        return 1 if left else 0
    uri = registry.tracking_uri()
    if not uri.startswith(("http://", "https://")):
        raise ConfigError(
            f"MLFLOW_TRACKING_URI is {uri}: webhooks need an `mlflow server` with a SQL backend store; "
            "for this store run `govern watch --once` on a schedule"
        )
    secret = os.environ.get(SECRET_ENV, "")
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"{SECRET_ENV} must hold the webhook secret, at least {MIN_SECRET_CHARS} characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`), from the environment, never git"
        )
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--listen {args.listen!r}: write HOST:PORT, e.g. 127.0.0.1:8790")
    try:
        watcher = watch.Watcher(host, int(port), secret=secret, identity=identity, on_outcome=_show)
    except OSError as exc:
        raise ConfigError(f"--listen {args.listen}: cannot listen there ({exc.strerror or exc})") from None
    watcher.start()
    bound_host, bound_port = watcher.address
    url = args.url or f"http://{bound_host}:{bound_port}/"
    try:
        if not args.no_register:
            name = args.webhook_name or watch.DEFAULT_WEBHOOK_NAME
            webhook_id = watch.ensure_webhook(url, secret, name)
            _say(f"webhook {name} ({webhook_id}) calls {url}; MLflow's signed test delivery arrived")
        if not args.no_sweep:  # what changed while nobody listened
            for outcome in watch.sweep(identity):
                _show(outcome)
    except BaseException:
        watcher.stop()
        raise
    _say(f"govern watch: listening on {bound_host}:{bound_port} as {identity.describe()}")
    signal.signal(signal.SIGTERM, lambda *_: watcher.stop())
    try:
        watcher.wait()
    except KeyboardInterrupt:
        watcher.stop()
    _say("govern watch: stopped")
    return 0
