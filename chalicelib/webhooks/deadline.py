"""A deadline for a whole HTTP exchange made with requests, on the calling thread.

requests' timeouts bound each connect and each socket read, never the exchange: a peer
that drips one byte per read keeps it going forever. Inside `with Deadline(s):`, every
socket that a session prepared with `watch_connections` opens is registered. When the
time is up a timer shuts those sockets down, which wakes a blocked recv or send at once.
The exchange then fails on its own thread and cleans up as it would after any connection
error, so no thread or socket outlives it.

A name lookup (getaddrinfo) has no socket to shut down and no timeout of its own: the
system resolver may take its retries x servers x seconds. `Deadline.run` runs it on a
thread of its own and waits only until the deadline; the session's own lookup
(requests-hardened resolves while it picks the connection pool) runs the same way. A
lookup that answers in time leaves no thread behind; one given up on ends in the
background, bounded by the resolver's own timeouts.
"""
from __future__ import annotations

import socket
import threading
import time
from contextvars import ContextVar
from typing import Any, Callable, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_active: ContextVar["Deadline | None"] = ContextVar("http_deadline", default=None)
T = TypeVar("T")


class LookupTimeout(TimeoutError):
    """A name lookup was still running at the deadline."""


class Deadline:
    """Shuts down the calling thread's watched sockets `seconds` after entry."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._expired = False
        self._seconds = seconds
        self._ends = time.monotonic() + seconds
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    @property
    def expired(self) -> bool:
        with self._lock:
            return self._expired

    def remaining(self) -> float:
        return max(0.0, self._ends - time.monotonic())

    def run(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` -- a blocking call no socket shutdown can cut short, such as a
        name lookup -- on a lookup thread, waited for at most until the deadline:
        LookupTimeout after that."""
        outcome: list[Any] = []

        def work() -> None:
            try:
                outcome.append((True, call(*args)))
            except BaseException as exc:  # handed to the caller, on its own thread
                outcome.append((False, exc))

        worker = threading.Thread(target=work, name="thumbgen-lookup", daemon=True)
        worker.start()
        worker.join(self.remaining())
        if not outcome:
            raise LookupTimeout(f"not done within the attempt's {self._seconds:g} s")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def watch(self, sock: socket.socket) -> None:
        # A duplicate descriptor: shutdown acts on the connection, which all descriptors
        # share, and ours cannot be closed (and its number reused) by anyone else.
        watched = sock.dup()
        with self._lock:
            self._sockets.append(watched)
            if self._expired:
                _shut_down(watched)

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            for sock in self._sockets:
                _shut_down(sock)

    def __enter__(self) -> "Deadline":
        self._token = _active.set(self)
        self._ends = time.monotonic() + self._seconds
        self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._timer.cancel()
        self._timer.join()
        _active.reset(self._token)
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()


def _shut_down(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already disconnected


class _Watched:
    """Registers each new TCP socket (before any TLS handshake) with the active Deadline."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        deadline = _active.get()
        if deadline is not None:
            try:
                deadline.watch(sock)
            except OSError:
                sock.close()
                raise
        return sock


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _within_deadline(pick_pool: Callable[..., Any]) -> Callable[..., Any]:
    """An adapter's choice of connection pool, where requests-hardened resolves the host
    and checks the address it pins, run within the active deadline."""
    def pick(*args: Any, **kwargs: Any) -> Any:
        deadline = _active.get()
        if deadline is None:
            return pick_pool(*args, **kwargs)
        try:
            return deadline.run(lambda: pick_pool(*args, **kwargs))
        except LookupTimeout as late:
            raise requests.exceptions.ConnectTimeout(f"name lookup: {late}") from None
    return pick


def watch_connections(session: requests.Session) -> requests.Session:
    """Have the session's adapters (whatever they pin or filter) open watched connections,
    and make the lookups of those that resolve before connecting keep to the deadline."""
    for adapter in session.adapters.values():
        if isinstance(adapter, HTTPAdapter):
            adapter.poolmanager.pool_classes_by_scheme = {
                "http": _WatchedHTTPConnectionPool,
                "https": _WatchedHTTPSConnectionPool,
            }
            picks = type(adapter).build_connection_pool_key_attributes
            if picks is not HTTPAdapter.build_connection_pool_key_attributes:  # it looks names up
                adapter.build_connection_pool_key_attributes = _within_deadline(  # type: ignore[method-assign]
                    adapter.build_connection_pool_key_attributes)
    return session
