"""The embedded stack, started as `make run` starts it (`thumbgen run`): once per test
session for the end-to-end and browser tests (the `stack` fixture), or for a script."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from thumbgen.client import ThumbgenClient
from thumbgen.local.stack import DEMO_USER, free_port, local_client
from thumbgen.users import local_pool, token_for

ROOT = Path(__file__).resolve().parents[1]
# The demo user's password on the test stack, so a browser can sign in as a person would.
DEMO_PASSWORD = "Demo-pass-1234"


class RunningStack:
    def __init__(self, api_url: str, aws_url: str, log: Path):
        self.api_url, self.aws_url, self.log = api_url, aws_url, log
        self.demo_user, self.demo_password = DEMO_USER, DEMO_PASSWORD
        self._tokens: dict[str, str] = {}
        self.client = self.client_for("e2e-alice")

    def boto(self, service: str):
        return local_client(service, self.aws_url)

    def token(self, user: str) -> str:
        """An access token of the stack's own user pool (the user is made on first use)."""
        if user not in self._tokens:
            cognito = self.boto("cognito-idp")
            pool_id, client_id = local_pool(cognito)
            password = self.demo_password if user == self.demo_user else None
            self._tokens[user] = token_for(cognito, pool_id, client_id, user, password)
        return self._tokens[user]

    def client_for(self, user: str, **options: Any) -> ThumbgenClient:
        return ThumbgenClient(self.api_url, token=self.token(user), **options)

    def secret(self, user: str = "e2e-alice") -> str:
        """The user's current webhook signing secret, from the API."""
        return self.client_for(user).webhook_secret()["secret"]


@contextlib.contextmanager
def running_stack(log: Path, **env: str) -> Iterator[RunningStack]:
    """`thumbgen run` in a subprocess on free ports; stopped on exit."""
    aws_port, api_port = free_port(), free_port()
    env = {**os.environ, "AWS_PORT": str(aws_port), "API_PORT": str(api_port),
           "THUMBGEN_DEMO_PASSWORD": DEMO_PASSWORD, **env}
    with open(log, "wb") as out:
        # A process group of its own: whatever happens, nothing it started outlives the tests.
        process = subprocess.Popen([sys.executable, "-m", "thumbgen.cli", "run"], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        api_url = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{api_url}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the local stack did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield RunningStack(api_url, f"http://127.0.0.1:{aws_port}", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        try:
            os.killpg(process.pid, signal.SIGKILL)  # anything left of its group
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    log = tmp_path_factory.mktemp("stack") / "stack.log"
    faults_dir = tmp_path_factory.mktemp("faults")  # thumbgen/local/faults.py: tests arm faults here
    with running_stack(log, WEBHOOK_RETRY_SCHEDULE="1,1,1", WEBHOOK_CONNECT_TIMEOUT="1",
                       WEBHOOK_READ_TIMEOUT="1.5", THUMBGEN_FAULTS_DIR=str(faults_dir)) as running:
        running.faults_dir = faults_dir
        yield running
