"""The embedded stack, started as `make run` starts it (`thumbgen run`), once per session."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import TEST_SECRET
from thumbgen.client import ThumbgenClient
from thumbgen.receiver import WebhookReceiver
from thumbgen.stack import free_port, local_client
from thumbgen.users import local_pool, token_for

ROOT = Path(__file__).resolve().parents[2]


class RunningStack:
    def __init__(self, api_url: str, aws_url: str, log: Path):
        self.api_url, self.aws_url, self.log = api_url, aws_url, log
        self._tokens: dict[str, str] = {}
        self.client = self.client_for("e2e-alice")

    def boto(self, service: str):
        return local_client(service, self.aws_url)

    def token(self, user: str) -> str:
        """An access token of the stack's own user pool (the user is made on first use)."""
        if user not in self._tokens:
            cognito = self.boto("cognito-idp")
            pool_id, client_id = local_pool(cognito)
            self._tokens[user] = token_for(cognito, pool_id, client_id, user)
        return self._tokens[user]

    def client_for(self, user: str) -> ThumbgenClient:
        return ThumbgenClient(self.api_url, token=self.token(user))


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    aws_port, api_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("stack") / "stack.log"
    faults_dir = tmp_path_factory.mktemp("faults")
    env = {**os.environ, "AWS_PORT": str(aws_port), "API_PORT": str(api_port),
           "THUMBGEN_FAULTS_DIR": str(faults_dir),
           "WEBHOOK_SECRET": TEST_SECRET, "WEBHOOK_RETRY_SCHEDULE": "1,1,1",
           "WEBHOOK_CONNECT_TIMEOUT": "1", "WEBHOOK_READ_TIMEOUT": "1.5"}
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "thumbgen.cli", "run"], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    api_url = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{api_url}/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the local stack did not start:\n{log.read_text()}")
        time.sleep(0.1)
    running = RunningStack(api_url, f"http://127.0.0.1:{aws_port}", log)
    running.faults_dir = faults_dir
    yield running
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def receiver():
    with WebhookReceiver() as r:
        yield r
