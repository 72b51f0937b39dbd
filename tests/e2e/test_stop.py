"""`thumbgen run` stopped by SIGTERM (as a service manager or a test harness stops it)
leaves nothing behind: not the embedded AWS, not a resize worker."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from tests.live_stack import ROOT
from thumbgen.local.stack import free_port


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_sigterm_right_after_start_stops_every_process_it_started(tmp_path):
    api_port = free_port()
    env = {**os.environ, "AWS_PORT": str(free_port()), "API_PORT": str(api_port)}
    with open(tmp_path / "stack.log", "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "thumbgen.cli", "run"], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{api_port}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        process.terminate()  # as soon as the API answers: before or while the banner prints
        process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not group_alive(process.pid), (tmp_path / "stack.log").read_text()[-2000:]
    finally:
        if group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
