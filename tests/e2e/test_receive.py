"""`thumbgen receive` against the running stack: it verifies with the signed-in user's own
secret, fetched from the API, and fetches it again after a rotation."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid

from tests.imagegen import make_jpeg
from tests.live_stack import ROOT
from thumbgen.local.stack import free_port

USER = "e2e-receive"


class Receive:
    """`thumbgen receive` in a subprocess; its stdout, a line at a time."""

    def __init__(self, stack, port: int):
        env = {**os.environ, "THUMBGEN_API_URL": stack.api_url, "THUMBGEN_TOKEN": stack.token(USER)}
        self.process = subprocess.Popen([sys.executable, "-m", "thumbgen.cli", "receive", "--port", str(port)],
                                        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def line_with(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if text in line:
                return line
        raise AssertionError(f"`thumbgen receive` printed no line with {text!r}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            return self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)


def test_receive_verifies_with_the_users_own_secret_and_follows_a_rotation(stack):
    client, port = stack.client_for(USER), free_port()
    receive = Receive(stack, port)
    try:
        receive.line_with("listening on")
        first = client.upload(make_jpeg(320, 240), content_type="image/jpeg",
                              webhook_url=f"http://127.0.0.1:{port}/{uuid.uuid4().hex}")
        line = receive.line_with(f"webhook-id=msg_{first.id}_completed")
        assert line.endswith("signature OK")

        client.rotate_webhook_secret()
        client.rotate_webhook_secret()  # the secret `receive` holds no longer signs at all
        second = client.upload(make_jpeg(320, 240), content_type="image/jpeg",
                               webhook_url=f"http://127.0.0.1:{port}/{uuid.uuid4().hex}")
        line = receive.line_with(f"webhook-id=msg_{second.id}_completed")
        assert line.endswith("signature OK (with the new secret: it was rotated)")

        other = stack.client_for("e2e-alice").upload(make_jpeg(320, 240), content_type="image/jpeg",
                                                       webhook_url=f"http://127.0.0.1:{port}/other")
        line = receive.line_with(f"webhook-id=msg_{other.id}_completed")
        assert "signature INVALID" in line  # another user's webhook: not signed with this user's secret
    finally:
        assert receive.stop() == 0
