"""Lambda-like workers for the local stack: each invocation runs in a worker process that
can time out or die, as a Lambda execution environment can.

The parent hands an event to an idle worker and waits at most the function's timeout. A
worker that does not answer in time is killed (Lambda's timeout), one that dies is
replaced (a new execution environment, with its cold start); either way the invocation
fails, so the event source retries it as Lambda's would. Worker processes also let the
image engine use every core, free of the stack process's GIL.

Protocol: one JSON line per invocation on the worker's stdin, one JSON line back on the
file descriptor the worker inherited as stdout; the worker's own stdout goes to stderr.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("thumbgen.local.workers")
REPO_ROOT = Path(__file__).resolve().parents[2]


class InvocationFailed(Exception):
    """The function raised, timed out or its worker died."""


class _Worker:
    def __init__(self, function: str, env: dict[str, str]):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "thumbgen.local.workers", function], cwd=REPO_ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
        )
        self.ready = False

    def call(self, event: dict, timeout: float) -> Any:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(event).encode() + b"\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.process.stdout], [], [], remaining)[0]:
                raise TimeoutError
            chunk = os.read(self.process.stdout.fileno(), 1 << 16)
            if not chunk:
                raise EOFError
            line += chunk
        return json.loads(line)

    def wait_ready(self, timeout: float) -> None:
        """The worker says "ready" once its imports and clients are warm (its init phase)."""
        answer = self.call({"ready?": True}, timeout)
        self.ready = answer.get("ready") is True

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class WorkerPool:
    """`count` worker processes for one function; invoke() blocks for a free one."""

    def __init__(self, function: str, count: int, env: dict[str, str], timeout: float,
                 init_timeout: float = 60.0):
        self.function, self.timeout, self.init_timeout = function, timeout, init_timeout
        self._env = {**os.environ, **env}
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self.restarts = 0
        for _ in range(count):
            self._idle.put(self._spawn())

    def warm(self) -> None:
        """Wait for every idle worker's init phase (imports, clients), as provisioned
        concurrency would, so the first upload does not pay the cold start."""
        workers = []
        while True:
            try:
                workers.append(self._idle.get_nowait())
            except queue.Empty:
                break
        try:
            for worker in workers:
                if not worker.ready:
                    worker.wait_ready(self.init_timeout)
        finally:
            for worker in workers:
                self._idle.put(worker)

    def _spawn(self) -> _Worker:
        worker = _Worker(self.function, self._env)
        with self._lock:
            self._all.append(worker)
        return worker

    def invoke(self, event: dict, _context: Any = None) -> Any:
        worker = self._idle.get()
        try:
            if not worker.ready:
                worker.wait_ready(self.init_timeout)
            answer = worker.call(event, self.timeout)
        except (TimeoutError, EOFError, OSError, ValueError) as exc:
            worker.kill()
            with self._lock:
                self._all.remove(worker)
                self.restarts += 1
            self._idle.put(self._spawn())
            what = "timed out" if isinstance(exc, TimeoutError) else "died"
            raise InvocationFailed(f"{self.function} {what}") from None
        self._idle.put(worker)
        if "error" in answer:
            raise InvocationFailed(f"{self.function}: {answer['error']}")
        return answer.get("result")

    def close(self) -> None:
        with self._lock:
            workers = list(self._all)
        for worker in workers:
            worker.kill()


def _serve(function: str) -> None:
    """The worker process: import the app as Lambda's init phase does, then serve."""
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the app's own prints and logs go to stderr, not into the protocol
    sys.stdout = sys.stderr
    from chalice.local import LambdaContext

    import app as app_module
    from chalicelib import service
    from thumbgen.local import faults

    handler = getattr(app_module, function)
    service.resizer()
    service.delivery()
    faults.install(service)
    for line in sys.stdin:
        event = json.loads(line)
        if event.get("ready?"):
            answer: dict[str, Any] = {"ready": True}
        else:
            context = LambdaContext(function_name=function, memory_size=1769, max_runtime_ms=60_000)
            try:
                answer = {"result": handler(event, context)}
            except Exception as exc:  # the invocation failed: the event source retries it
                answer = {"error": f"{type(exc).__name__}: {exc}"}
        protocol.write(json.dumps(answer, default=str).encode() + b"\n")
        protocol.flush()


if __name__ == "__main__":
    _serve(sys.argv[1])
