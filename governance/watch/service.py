"""The receiver: a small threaded HTTP server (stdlib) that takes MLflow's signed deliveries and checks models.

``POST`` (any path) takes one delivery: refused with 401 unless its signature verifies
(:mod:`governance.watch.signature`), acknowledged with 202 once queued; ``GET /health`` says it
runs. One worker thread checks the queued models in order (:func:`governance.watch.check.check_model`),
so two deliveries about one model never race each other; the trail's append lock orders it
against govern actions in other processes.

Trust boundary: the receiver believes nothing a delivery says beyond the model name to look at,
and only once the signature verifies; nothing is recorded for a refused delivery.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from governance.errors import GovernanceError
from governance.identity import Identity
from governance.watch.check import CheckOutcome, check_model
from governance.watch.signature import WATCHED_EVENTS, BadDelivery, Delivery, verify_delivery

log = logging.getLogger(__name__)

#: Bodies larger than this are refused unread: MLflow's payloads for these events are well under 2 KiB.
MAX_BODY_BYTES = 64 * 1024


class Watcher:
    """The receiving HTTP server and the worker that checks what it queues."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        secret: str,
        identity: Identity,
        on_outcome: Callable[[CheckOutcome], None] | None = None,
    ) -> None:
        self.secret = secret
        self.identity = identity
        self.on_outcome = on_outcome
        self.pending: queue.Queue[Delivery | None] = queue.Queue()
        self.http = ThreadingHTTPServer((host, port), _handler(self))
        self.http.daemon_threads = True
        self._worker = threading.Thread(target=self._work, name="govern-watch-checks", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.http.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Serve and check in background threads (the webhook's test delivery needs a live receiver)."""
        self._worker.start()
        threading.Thread(target=self.http.serve_forever, name="govern-watch-http", daemon=True).start()

    def wait(self) -> None:
        """Block until :meth:`stop` (or Ctrl-C in the caller)."""
        self._worker.join()

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.pending.put(None)

    def check(self, name: str, delivery: Delivery | None = None) -> CheckOutcome:
        """Check one model now, in the calling thread."""
        outcome = check_model(name, self.identity, delivery)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome

    def _work(self) -> None:
        while (delivery := self.pending.get()) is not None:
            try:
                self.check(delivery.model, delivery)
            except GovernanceError as exc:  # one model's failure is said; the watcher keeps serving
                log.error("%s (delivery %s): %s", delivery.model, delivery.delivery_id[:80], exc)
            except Exception:  # a service outlives one bad check; the traceback goes to its log, nothing is recorded
                log.exception("%s (delivery %s): check failed", delivery.model, delivery.delivery_id[:80])


def _handler(watcher: Watcher) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "govern-watch"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.rstrip("/") == "/health":
                self._answer(200, "ok")
            else:
                self._answer(404, "not found")

        def do_POST(self) -> None:  # noqa: N802
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._answer(411, "Content-Length required")
                return
            if length > MAX_BODY_BYTES:
                self._answer(413, f"body over {MAX_BODY_BYTES} bytes")
                return
            body = self.rfile.read(length)
            headers = {key.lower(): value for key, value in self.headers.items()}
            try:
                delivery = verify_delivery(watcher.secret, headers, body)
            except BadDelivery as exc:
                log.warning("delivery refused from %s: %s", self.client_address[0], exc)
                self._answer(401, f"refused: {exc}")
                return
            if delivery.event not in WATCHED_EVENTS:
                self._answer(200, f"ignored: {delivery.event} is not watched")
                return
            watcher.pending.put(delivery)
            self._answer(202, "queued")

        def _answer(self, status: int, text: str) -> None:
            data = (text + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
            log.info("%s %s", self.client_address[0], format % args)

    return Handler
