"""Switch the network off inside a Python process, for the offline tests (``test_offline.py``).

:func:`install` makes every attempt to reach an address other than the loopback (``connect``,
``connect_ex``, ``sendto``, ``socket.create_connection`` and the name lookup
``socket.getaddrinfo``) raise :class:`NetworkBlocked`, an ``OSError`` as on a machine without a
network, and appends one line per attempt to a log file, so that an attempt that some code
catches and swallows is still seen. Loopback and Unix sockets stay open (pytest-xdist, Jupyter
kernels and local test servers use them; they are not the network).

``offline_site/sitecustomize.py`` installs it in every Python process started with that folder on
``PYTHONPATH`` and ``VISIONBOOK_NETWORK_LOG`` set: ``.ci/run`` does so for the whole build and
test session, and ``test_offline.py`` for its rerun of the unit suite; :func:`blocked` does the
same inside one test.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import traceback
from collections.abc import Iterator

_LOCAL_NAMES = {None, "", "localhost", "localhost.localdomain", "ip6-localhost"}
_ORIGINAL = {
    "connect": socket.socket.connect,
    "connect_ex": socket.socket.connect_ex,
    "sendto": socket.socket.sendto,
    "create_connection": socket.create_connection,
    "getaddrinfo": socket.getaddrinfo,
}


class NetworkBlocked(OSError):
    """Raised instead of reaching the network."""


def _is_local(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _host(family: int, address: object) -> object:
    """The host of an ``AF_INET``/``AF_INET6`` address, or None for other families (Unix
    sockets)."""
    if family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        return address[0]
    return None


class _Guard:
    def __init__(self, log: str | None) -> None:
        self.log, self.attempts = log, []

    def refuse(self, what: str, target: object) -> None:
        where = "".join(traceback.format_stack(limit=12)[:-2])
        self.attempts.append(f"{what} {target!r}")
        if self.log:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(f"{what} {target!r}\n{where}\n")
        raise NetworkBlocked(f"network access blocked by the offline tests: {what} {target!r}")

    def patch(self) -> None:
        guard = self

        def connect(sock, address):
            if not _is_local(host := _host(sock.family, address)):
                guard.refuse("connect", host)
            return _ORIGINAL["connect"](sock, address)

        def connect_ex(sock, address):
            if not _is_local(host := _host(sock.family, address)):
                guard.refuse("connect_ex", host)
            return _ORIGINAL["connect_ex"](sock, address)

        def sendto(sock, data, *args):
            if not _is_local(host := _host(sock.family, args[-1])):
                guard.refuse("sendto", host)
            return _ORIGINAL["sendto"](sock, data, *args)

        def create_connection(address, *args, **kwargs):
            if not _is_local(address[0]):
                guard.refuse("create_connection", address[0])
            return _ORIGINAL["create_connection"](address, *args, **kwargs)

        def getaddrinfo(host, *args, **kwargs):
            if not _is_local(host):
                guard.refuse("getaddrinfo", host)
            return _ORIGINAL["getaddrinfo"](host, *args, **kwargs)

        socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = (
            connect,
            connect_ex,
            sendto,
        )
        socket.create_connection, socket.getaddrinfo = create_connection, getaddrinfo


def install(log: str | None = None) -> list[str]:
    """Block the network in this process for good; returns the list that collects the attempts."""
    guard = _Guard(log)
    guard.patch()
    return guard.attempts


def _current() -> dict:
    """The socket functions in place now (the originals, or a guard's)."""
    return {
        "connect": socket.socket.connect,
        "connect_ex": socket.socket.connect_ex,
        "sendto": socket.socket.sendto,
        "create_connection": socket.create_connection,
        "getaddrinfo": socket.getaddrinfo,
    }


def _restore(functions: dict) -> None:
    socket.socket.connect, socket.socket.connect_ex = functions["connect"], functions["connect_ex"]
    socket.socket.sendto = functions["sendto"]
    socket.create_connection, socket.getaddrinfo = (
        functions["create_connection"],
        functions["getaddrinfo"],
    )


def installed() -> bool:
    """Whether a guard is in place in this process (installed for good, or inside a block)."""
    return _current() != _ORIGINAL


@contextlib.contextmanager
def blocked() -> Iterator[list[str]]:
    """Block the network inside the block; yields the list of attempts (empty when
    nothing tried). On leaving, the functions in place before the block come back, so a guard
    installed for the whole process (CI's, through ``sitecustomize``) stays on."""
    before = _current()
    attempts = install()
    try:
        yield attempts
    finally:
        _restore(before)
