"""Sender.post against receivers that misbehave on 127.0.0.1: every attempt ends by its
total deadline and leaves no thread and no socket behind, so a container that met many
such receivers still delivers to the next one."""
from __future__ import annotations

import itertools
import os
import selectors
import socket
import threading
import time
from datetime import datetime, timezone

import pytest
from requests_hardened import Config, HTTPSession
from standardwebhooks import Webhook

from chalicelib.webhooks.events import USER_AGENT, sign
from chalicelib.webhooks.sender import Sender
from chalicelib.webhooks.urls import UrlPolicy
from tests.conftest import TEST_SECRET
from thumbgen.receiver import WebhookReceiver

LOCAL = UrlPolicy(allow_private_networks=True)
CONNECT, READ = 0.5, 0.7
TOTAL = CONNECT + READ
DRIP_EVERY = 0.3

STATUS = b"HTTP/1.1 200 OK\r\n"
ENDLESS_HEADER = itertools.chain(b"X-Pad: ", itertools.repeat(ord("a")))
# mode -> (sent at once when the request arrives, dripped one byte per DRIP_EVERY,
#          sent as fast as the client takes it, close after the first part)
MODES = {
    "silent": (b"", None, None, False),
    "drip_status": (b"", lambda: itertools.chain(STATUS, ENDLESS_HEADER), None, False),
    "drip_headers": (STATUS, lambda: ENDLESS_HEADER, None, False),
    "drip_body": (STATUS + b"Content-Length: 100000\r\n\r\n", lambda: itertools.repeat(ord("a")),
                  None, False),
    "endless_body": (STATUS + b"Transfer-Encoding: chunked\r\n\r\n", None,
                     b"4000\r\n" + b"a" * 0x4000 + b"\r\n", False),
    "close_midway": (b"HTTP/1.1 2", None, None, True),
}


class _Conn:
    def __init__(self, sock: socket.socket):
        self.sock, self.answered, self.drip, self.next_drip = sock, False, None, 0.0


class MisbehavingReceiver:
    """A one-thread raw TCP server answering every request in one bad way; counts the
    connections it still has open (it closes its side once the client has gone)."""

    def __init__(self, mode: str):
        self.mode = mode
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0 if mode == "never_accept" else 64)
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._conns: dict[socket.socket, _Conn] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._fillers: list[socket.socket] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/hook"

    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def __enter__(self) -> "MisbehavingReceiver":
        if self.mode == "never_accept":
            self._fill_backlog()
        else:
            self._listener.setblocking(False)
            self._selector.register(self._listener, selectors.EVENT_READ)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        for sock in [*self._conns, *self._fillers, self._listener]:
            sock.close()
        self._selector.close()

    def _fill_backlog(self) -> None:
        """Queue connections nobody accepts until the kernel drops new SYNs."""
        for _ in range(8):
            filler = socket.socket()
            filler.settimeout(0.2)
            try:
                filler.connect(("127.0.0.1", self.port))
            except OSError:
                filler.close()
                return
            self._fillers.append(filler)
        raise RuntimeError("the listen backlog never filled")

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(0.02):
                if key.fileobj is self._listener:
                    self._accept()
                else:
                    self._readable(self._conns.get(key.fileobj))
            now = time.monotonic()
            for conn in list(self._conns.values()):
                self._answer(conn, now)

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ)
        with self._lock:
            self._conns[sock] = _Conn(sock)

    def _readable(self, conn: _Conn | None) -> None:
        if conn is None:
            return
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)  # the client is gone
            return
        if not conn.answered:
            conn.answered = True
            prefix, drip, _, close = MODES[self.mode]
            conn.drip = drip() if drip else None
            conn.next_drip = time.monotonic() + DRIP_EVERY
            if not self._send(conn, prefix) or close:
                self._close(conn)

    def _answer(self, conn: _Conn, now: float) -> None:
        if not conn.answered:
            return
        flood = MODES[self.mode][2]
        if flood is not None:
            self._send(conn, flood, partial=True)
        elif conn.drip is not None and now >= conn.next_drip:
            conn.next_drip = now + DRIP_EVERY
            self._send(conn, bytes([next(conn.drip)]))

    def _send(self, conn: _Conn, data: bytes, partial: bool = False) -> bool:
        try:
            if partial:
                conn.sock.send(data)
            elif data:
                conn.sock.sendall(data)
            return True
        except BlockingIOError:
            return True  # the client reads slowly; try again later
        except OSError:
            self._close(conn)
            return False

    def _close(self, conn: _Conn) -> None:
        with self._lock:
            if self._conns.pop(conn.sock, None) is None:
                return
        self._selector.unregister(conn.sock)
        conn.sock.close()


def client_sockets_to(port: int) -> int:
    """This process's open TCP sockets whose remote end is port (any state)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in itertools.islice(lines, 1, None):
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                    count += 1
    return count


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def sender(**kwargs) -> Sender:
    return Sender(LOCAL, connect_timeout=CONNECT, read_timeout=READ, **kwargs)


def timed_post(s: Sender, url: str):
    began = time.monotonic()
    result = s.post(url, "{}", {"content-type": "application/json"})
    return result, time.monotonic() - began


@pytest.mark.parametrize("mode, scheme, expected", [
    ("silent", "http", "timeout"),
    ("silent", "https", "timeout"),  # stuck in the TLS handshake
    ("drip_status", "http", "timeout"),
    ("drip_headers", "http", "timeout"),
    ("never_accept", "http", "timeout"),
    ("close_midway", "http", "connection error"),
    ("drip_body", "http", 200),  # the status stands; the ignored body is cut off
    ("endless_body", "http", 200),  # only a few KB are read
])
def test_each_attempt_ends_in_time_and_closes_its_socket(mode, scheme, expected):
    with MisbehavingReceiver(mode) as receiver:
        threads, fillers = threading.active_count(), client_sockets_to(receiver.port)
        result, elapsed = timed_post(sender(), receiver.url(scheme))
        if isinstance(expected, int):
            assert result.status_code == expected and result.error is None
        else:
            assert result.error == expected and result.status_code is None
        assert elapsed < 3 * TOTAL
        assert threading.active_count() <= threads  # none left behind (others may end)
        assert client_sockets_to(receiver.port) == fillers  # the backlog's, for never_accept
        if mode != "never_accept":
            assert wait_until(lambda: receiver.open_connections() == 0)


def test_the_pinning_adapter_is_cut_off_too():
    """requests-hardened's IP-filtering adapter (loopback let through for the test)."""
    def pinned_session():
        return HTTPSession(Config(ip_filter_enable=True, ip_filter_allow_loopback_ips=True,
                                  never_redirect=True, default_timeout=(CONNECT, READ)))

    with MisbehavingReceiver("drip_headers") as receiver:
        threads = threading.active_count()
        result, elapsed = timed_post(sender(session_factory=pinned_session), receiver.url())
        assert result.error == "timeout" and elapsed < 3 * TOTAL
        assert threading.active_count() <= threads  # none left behind (others may end)
        assert client_sockets_to(receiver.port) == 0


def test_many_dripping_receivers_leave_nothing_behind_and_the_next_delivery_goes_through():
    modes = ["drip_status", "drip_headers", "silent", "drip_body"]
    with WebhookReceiver() as good, \
            MisbehavingReceiver(modes[0]) as r0, MisbehavingReceiver(modes[1]) as r1, \
            MisbehavingReceiver(modes[2]) as r2, MisbehavingReceiver(modes[3]) as r3:
        receivers = [r0, r1, r2, r3]
        threads, fds = threading.active_count(), open_fds()
        s = sender()
        results: list = [None] * 40

        def attempt(i: int) -> None:
            results[i] = timed_post(s, receivers[i % 4].url())

        workers = [threading.Thread(target=attempt, args=(i,)) for i in range(40)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

        for i, (result, elapsed) in enumerate(results):
            if receivers[i % 4].mode == "drip_body":
                assert result.status_code == 200
            else:
                assert result.error == "timeout" and result.status_code is None
            assert elapsed < 3 * TOTAL
        assert threading.active_count() <= threads  # none left behind (others may end)
        assert [client_sockets_to(r.port) for r in receivers] == [0, 0, 0, 0]
        assert wait_until(lambda: all(r.open_connections() == 0 for r in receivers))
        assert wait_until(lambda: open_fds() == fds)

        body = '{"type":"thumbnails.generated"}'
        headers = sign((TEST_SECRET,), "msg_1", body, datetime.now(timezone.utc))
        result = s.post(good.url("/after"), body, headers)
        assert result.status_code == 204 and result.delivered
        [got] = good.received("/after")
        assert got.body == body.encode()
        assert got.headers["User-Agent"] == USER_AGENT
        assert got.headers["Host"] == f"127.0.0.1:{good.port}"
        Webhook(TEST_SECRET).verify(got.body, got.headers)
