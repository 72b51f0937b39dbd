"""A deadline for a whole HTTP exchange made with requests, on the calling thread.

requests' timeouts bound each connect and each socket read, never the exchange: a peer
that drips one byte per read keeps it going forever. Inside `with Deadline(s):`, every
socket that a session prepared with `watch_connections` opens is registered. When the
time is up a timer shuts those sockets down, which wakes a blocked recv or send at once.
The exchange then fails on its own thread and cleans up as it would after any connection
error, so no thread or socket outlives it.
"""
from __future__ import annotations

import socket
import threading
from contextvars import ContextVar
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_active: ContextVar["Deadline | None"] = ContextVar("http_deadline", default=None)


class Deadline:
    """Shuts down the calling thread's watched sockets `seconds` after entry."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    @property
    def expired(self) -> bool:
        with self._lock:
            return self._expired

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


def watch_connections(session: requests.Session) -> requests.Session:
    """Have the session's adapters (whatever they pin or filter) open watched connections."""
    for adapter in session.adapters.values():
        if isinstance(adapter, HTTPAdapter):
            adapter.poolmanager.pool_classes_by_scheme = {
                "http": _WatchedHTTPConnectionPool,
                "https": _WatchedHTTPSConnectionPool,
            }
    return session
