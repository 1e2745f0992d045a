"""Network guard for tests: this interpreter (and every Python child that inherits ``PYTHONPATH``) may
reach loopback and Unix sockets only.

Used only by tests/governance/test_offline.py, which puts this folder first on ``PYTHONPATH`` so
Python imports it at start-up, before any project or library code. Every outbound attempt (a name
lookup or a connect/send to a non-loopback address) is refused with ``OSError`` and recorded as one
JSON line in the file named by ``NO_NETWORK_LOG``, tagged with ``NO_NETWORK_CONTEXT`` (the command
running). Recording matters because libraries swallow the error and fall back (tldextract uses its
bundled suffix list when the fetch fails): the refusal alone would go unseen.

Trust boundary: it guards Python's ``socket`` module. Native code that opens sockets itself (not
through ``socket``) is not seen; the project's network paths (urllib3/requests, http.client,
tldextract, MLflow's telemetry thread) all go through ``socket``.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import sys
import threading
import traceback

_LOG = os.environ.get("NO_NETWORK_LOG", "")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_loopback(host: object) -> bool:
    if host is None:  # getaddrinfo(None, port): the local wildcard / loopback
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    host = host.strip("[]").split("%", 1)[0]
    if host.lower() in _LOOPBACK_NAMES or host == "":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse(call: str, host: object, port: object) -> OSError:
    record = {
        "context": os.environ.get("NO_NETWORK_CONTEXT", " ".join(sys.orig_argv)),
        "pid": os.getpid(),
        "thread": threading.current_thread().name,
        "call": call,
        "host": str(host),
        "port": str(port),
        "stack": traceback.format_stack()[:-2],
    }
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    return OSError(errno.ENETUNREACH, f"outbound network refused by the test guard: {call} {host}:{port}")


def _inet_target(sock: socket.socket, address: object) -> tuple[object, object] | None:
    """(host, port) for an AF_INET/AF_INET6 address that is not loopback; None when allowed."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return None
    host, port = address[0], address[1] if len(address) > 1 else None
    return None if _is_loopback(host) else (host, port)


_connect, _connect_ex, _sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
_getaddrinfo, _gethostbyname, _gethostbyname_ex = socket.getaddrinfo, socket.gethostbyname, socket.gethostbyname_ex


def _guarded_connect(self: socket.socket, address: object) -> None:
    target = _inet_target(self, address)
    if target:
        raise _refuse("connect", *target)
    return _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    target = _inet_target(self, address)
    if target:
        _refuse("connect_ex", *target)
        return errno.ENETUNREACH
    return _connect_ex(self, address)


def _guarded_sendto(self: socket.socket, data: bytes, *args: object) -> int:
    target = _inet_target(self, args[-1]) if args else None
    if target:
        raise _refuse("sendto", *target)
    return _sendto(self, data, *args)


def _guarded_getaddrinfo(host: object, port: object, *args: object, **kwargs: object) -> list:
    if not _is_loopback(host):
        raise _refuse("getaddrinfo", host, port)
    return _getaddrinfo(host, port, *args, **kwargs)


def _guarded_gethostbyname(host: str) -> str:
    if not _is_loopback(host):
        raise _refuse("gethostbyname", host, None)
    return _gethostbyname(host)


def _guarded_gethostbyname_ex(host: str) -> tuple:
    if not _is_loopback(host):
        raise _refuse("gethostbyname_ex", host, None)
    return _gethostbyname_ex(host)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.socket.sendto = _guarded_sendto  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo
socket.gethostbyname = _guarded_gethostbyname
socket.gethostbyname_ex = _guarded_gethostbyname_ex
