"""The local stack's own rules: every stage setting passes through from the environment,
a bad one stops it before anything starts, and a failed start leaves no process behind."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from thumbgen.local import resources
from thumbgen.local.stack import LocalStack, PortInUse, free_port

ROOT = Path(__file__).resolve().parents[2]


def fake_resources() -> resources.LocalResources:
    return resources.LocalResources(
        bucket="b", table="t", stream_arn="arn:s", upload_queue_url="http://q/u", upload_queue_arn="arn:u",
        upload_dlq_url="http://q/ud", upload_dlq_arn="arn:ud", webhook_queue_url="http://q/w",
        webhook_queue_arn="arn:w", webhook_dlq_url="http://q/wd", user_pool_id="us-east-1_x", app_client_id="c")


def test_every_stage_setting_can_be_set_for_make_run(monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "false")
    monkeypatch.setenv("MAX_PENDING_UPLOADS", "3")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "1,2")
    stack = LocalStack()
    stack.resources = fake_resources()
    env = stack._environment()
    # the local default (true, so a receiver on 127.0.0.1 works) yields to the environment
    assert env["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] == "false"
    assert env["MAX_PENDING_UPLOADS"] == "3" and env["WEBHOOK_RETRY_SCHEDULE"] == "1,2"
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE_NETWORKS")
    assert stack._environment()["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] == "true"


# A value, valid for it, of every setting a stage reads (chalicelib/platform/config.py SETTING_NAMES).
A_VALUE_OF_EVERY_SETTING = {
    "BUCKET_NAME": "my-bucket", "TABLE_NAME": "my-table", "TABLE_STREAM_ARN": "arn:my-stream",
    "UPLOAD_QUEUE_NAME": "my-uploads", "UPLOAD_QUEUE_URL": "https://sqs/my-uploads", "UPLOAD_DLQ_NAME": "my-dlq",
    "WEBHOOK_QUEUE_NAME": "my-webhooks", "WEBHOOK_QUEUE_URL": "https://sqs/my-webhooks",
    "WEBHOOK_DLQ_URL": "https://sqs/my-webhooks-dlq", "MAX_UPLOAD_BYTES": "1234567", "MAX_PIXELS": "7654321",
    "UPLOAD_URL_TTL_SECONDS": "61", "DOWNLOAD_URL_TTL_SECONDS": "62", "WEBHOOK_SECRET_OVERLAP_SECONDS": "63",
    "WEBHOOK_HOURLY_ATTEMPTS_PER_HOST": "64", "WEBHOOK_RETRY_SCHEDULE": "1,2,3",
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "false", "WEBHOOK_REQUIRE_HTTPS": "true", "WEBHOOK_CONNECT_TIMEOUT": "1.5",
    "WEBHOOK_READ_TIMEOUT": "2.5", "PROCESSING_LEASE_SECONDS": "9", "STUCK_AFTER_SECONDS": "99",
    "MAX_PENDING_UPLOADS": "7", "MAX_REDELIVERIES": "2", "DEFAULT_RENDITIONS": '[{"width": 64, "height": 64}]',
    "RATE_LIMIT_TABLE_NAME": "my-rates", "RATE_LIMIT_PER_SECOND": "3", "RATE_LIMIT_BURST": "30",
    "COGNITO_REGION": "eu-west-1", "COGNITO_USER_POOL_ID": "eu-west-1_mine", "COGNITO_APP_CLIENT_ID": "my-client",
    "COGNITO_JWKS_URL": "http://127.0.0.1:9/my-keys.json", "LOG_LEVEL": "DEBUG", "STAGE": "mine",
}
# What only the local stack can name: its own resources and user pool.
OWNED_BY_THE_STACK = {
    "BUCKET_NAME", "TABLE_NAME", "TABLE_STREAM_ARN", "UPLOAD_QUEUE_NAME", "UPLOAD_QUEUE_URL", "UPLOAD_DLQ_NAME",
    "WEBHOOK_QUEUE_NAME", "WEBHOOK_QUEUE_URL", "WEBHOOK_DLQ_URL", "RATE_LIMIT_TABLE_NAME",
    "COGNITO_REGION", "COGNITO_USER_POOL_ID", "COGNITO_APP_CLIENT_ID",
}


def test_make_run_passes_every_other_setting_through_cognito_jwks_url_included():
    from chalicelib.platform.config import SETTING_NAMES

    assert set(A_VALUE_OF_EVERY_SETTING) == set(SETTING_NAMES)  # a new setting: add it above
    stack = LocalStack()
    stack.resources = fake_resources()
    env = stack._environment(A_VALUE_OF_EVERY_SETTING)
    passed = {name for name in SETTING_NAMES if env[name] == A_VALUE_OF_EVERY_SETTING[name]}
    assert passed == set(SETTING_NAMES) - OWNED_BY_THE_STACK
    assert env["BUCKET_NAME"] == "b" and env["COGNITO_USER_POOL_ID"] == "us-east-1_x"
    assert env["UPLOAD_QUEUE_NAME"] == resources.UPLOAD_QUEUE and env["COGNITO_REGION"] == "us-east-1"


def test_make_run_notes_every_variable_of_the_environment_it_overrides():
    stack = LocalStack(aws_port=4566)
    stack.resources = fake_resources()
    environ = {**A_VALUE_OF_EVERY_SETTING, "AWS_ENDPOINT_URL": "http://localhost:4566",  # the same, another name
               "AWS_ENDPOINT_URL_S3": "http://localhost:4566", "AWS_PROFILE": "work", "AWS_REGION": "us-east-1",
               "PATH": "/usr/bin", "BUCKET_NAME": "b"}  # the stack's own bucket name: nothing overridden
    stack._apply_environment(environ)
    assert stack.overridden == sorted(OWNED_BY_THE_STACK - {"BUCKET_NAME"} | {
        "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"})
    assert "AWS_ENDPOINT_URL_S3" not in environ and "AWS_PROFILE" not in environ  # S3 would go elsewhere
    assert environ["AWS_ENDPOINT_URL"] == stack.aws_url and environ["PATH"] == "/usr/bin"
    assert environ["COGNITO_JWKS_URL"] == "http://127.0.0.1:9/my-keys.json"

    quiet = LocalStack()
    quiet.resources = fake_resources()
    quiet._apply_environment({"MAX_PENDING_UPLOADS": "3", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "false"})
    assert quiet.overridden == []


class StartedStack:
    """What `thumbgen run` sees of a started stack."""

    api_url, aws_url, tables_url, demo_password = "http://api", "http://aws", "http://tables", "pw"

    def __init__(self, overridden: list[str], **kwargs):
        self.overridden = overridden

    def start(self):
        return self

    def demo_token(self) -> str:
        import time

        import jwt

        return jwt.encode({"exp": int(time.time()) + 3600}, "k" * 32, algorithm="HS256")

    def webhook_secret(self, token: str) -> str:
        import requests

        raise requests.HTTPError("401 Client Error: Unauthorized for url: http://api/webhook-secret")

    def stop(self):
        pass


@pytest.mark.parametrize("overridden", [["AWS_PROFILE", "BUCKET_NAME"], []])
def test_make_run_names_what_it_overrides_in_one_line_at_start(monkeypatch, capsys, overridden):
    from thumbgen.local import runner

    monkeypatch.setattr(runner, "LocalStack", lambda **kwargs: StartedStack(overridden))
    monkeypatch.setattr(runner, "wait_for_shutdown", lambda: None)
    monkeypatch.setattr(runner.signal, "signal", lambda *args: None)
    assert runner.run_forever(aws_port=1, api_port=2) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    if overridden:
        assert notes == ["note: ignoring AWS_PROFILE, BUCKET_NAME from your environment: the local stack uses "
                         "its own endpoints, credentials and resources"]
    else:
        assert notes == []
    # the demo user's secret cannot be had (a COGNITO_JWKS_URL refusing the token): said, not a traceback
    assert "  webhook secret: unavailable (401 Client Error" in out


def test_a_bad_setting_stops_make_run_with_its_name_and_starts_nothing():
    aws_port, api_port = free_port(), free_port()
    result = subprocess.run([sys.executable, "-m", "thumbgen.cli", "run"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60,
                            env={**os.environ, "WEBHOOK_REQUIRE_HTTPS": "ture",
                                 "AWS_PORT": str(aws_port), "API_PORT": str(api_port)})
    assert result.returncode == 2
    assert "WEBHOOK_REQUIRE_HTTPS='ture' is not valid" in result.stderr
    for port in (aws_port, api_port):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # nothing was left listening


def test_a_start_that_fails_half_way_stops_the_embedded_aws(monkeypatch):
    stack = LocalStack(aws_port=free_port(), api_port=free_port())

    def broken(self):
        raise RuntimeError("the app failed to import")

    monkeypatch.setattr(LocalStack, "_import_app", broken)
    saved = dict(os.environ)  # the stack points this process's environment at itself
    try:
        with pytest.raises(RuntimeError, match="failed to import"):
            stack.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert stack._moto and all(p.poll() is not None for p in stack._moto)  # the embedded AWS is gone
    for port in (stack.aws_port, stack.tables_port):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_the_embedded_aws_answers_without_nagle_delays():
    """Its answers go out in several sends; with Nagle on, a kept-alive connection holds
    some back until the client's delayed ACK (three parallel PUTs: 17 ms instead of 8)."""
    import threading
    import urllib.request

    from thumbgen.local import embedded_aws

    port = free_port()
    server = embedded_aws.make_server("127.0.0.1", port)
    nodelay = []

    class Watch(server.RequestHandlerClass):
        def setup(self):
            super().setup()
            nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server.RequestHandlerClass = Watch
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()  # S3's bucket list
    finally:
        server.shutdown()
        thread.join()
    assert nodelay and all(nodelay)


def test_the_embedded_dynamodb_takes_its_requests_one_at_a_time():
    """moto's backends are not thread-safe; DynamoDB's conditional writes must be atomic."""
    import threading
    import time

    from thumbgen.local.embedded_aws import one_request_at_a_time

    inside, most = [0], [0]
    guard = threading.Lock()

    def slow_app(environ, start_response):
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.02)
        with guard:
            inside[0] -= 1
        start_response("200 OK", [])
        return [b"ok"]

    app = one_request_at_a_time(slow_app)
    threads = [threading.Thread(target=app, args=({}, lambda *a: None)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1


def test_the_local_stack_runs_dynamodb_one_request_at_a_time(monkeypatch):
    started = []

    class Stop(Exception):
        pass

    def popen(args, **kwargs):
        started.append(args)
        if len(started) == 2:
            raise Stop  # both processes' arguments are known: start nothing
        return object()

    monkeypatch.setattr(subprocess, "Popen", popen)
    with pytest.raises(Stop):
        LocalStack(aws_port=free_port(), api_port=free_port())._start()
    assert "--one-request-at-a-time" not in started[0]  # S3/SQS: SQS long polls must not block it
    assert "--one-request-at-a-time" in started[1]


def held_port(listen: bool = False) -> socket.socket:
    """A socket bound (and listening, if asked) on a free port of 127.0.0.1."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    if listen:
        holder.listen()
    return holder


@pytest.mark.parametrize("setting", ["AWS_PORT", "API_PORT"])
def test_a_port_in_use_stops_make_run_at_once_naming_the_port_and_its_setting(setting):
    with held_port() as holder:
        port = holder.getsockname()[1]
        env = {**os.environ, "AWS_PORT": str(free_port()), "API_PORT": str(free_port()), setting: str(port)}
        result = subprocess.run([sys.executable, "-m", "thumbgen.cli", "run"], cwd=ROOT, capture_output=True,
                                text=True, timeout=60, env=env)
    assert result.returncode == 2
    assert f"127.0.0.1:{port} is already in use; choose another with {setting}=" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_the_last_run_left_in_time_wait_is_free_for_the_next():
    """Stopping `make run` leaves its closed connections in TIME_WAIT on its ports for a
    minute; the servers bind with SO_REUSEADDR, so the port is free for them."""
    from thumbgen.local import embedded_aws
    from thumbgen.local.stack import ensure_port_free

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server closes first: its side of the connection waits
        client.recv(1)
        client.close()
    ensure_port_free("127.0.0.1", port, "AWS_PORT")
    embedded_aws.make_server("127.0.0.1", port).server_close()


def start_in_a_restored_environment(stack: LocalStack) -> None:
    saved = dict(os.environ)  # the stack points this process's environment at itself
    try:
        stack.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_the_embedded_aws_finding_its_port_taken_after_the_check_fails_at_once(monkeypatch, capfd):
    """Between the check and the embedded AWS listening, something took AWS_PORT: no 30 s
    wait for a server that will never answer, no traceback, the port and its setting."""
    monkeypatch.setattr("thumbgen.local.stack.ensure_port_free", lambda *args: None)
    with held_port(listen=True) as holder:
        stack = LocalStack(aws_port=holder.getsockname()[1], api_port=free_port())
        with pytest.raises(PortInUse, match=f"127.0.0.1:{stack.aws_port} is already in use; choose another "
                                            "with AWS_PORT="):
            start_in_a_restored_environment(stack)
    assert "Traceback" not in capfd.readouterr().err  # the embedded AWS's own stderr
    assert all(p.poll() is not None for p in stack._moto)


def test_the_embedded_dynamodb_finding_its_port_taken_says_to_start_again(monkeypatch):
    with held_port(listen=True) as holder:
        stack = LocalStack(aws_port=free_port(), api_port=free_port(), tables_port=holder.getsockname()[1])
        with pytest.raises(PortInUse, match=f"127.0.0.1:{stack.tables_port}, the port picked for the embedded "
                                            "DynamoDB, was taken before it could listen there; start again"):
            start_in_a_restored_environment(stack)
    assert all(p.poll() is not None for p in stack._moto)


def test_the_api_finding_its_port_taken_after_the_check_names_api_port(monkeypatch):
    monkeypatch.setattr("thumbgen.local.stack.ensure_port_free", lambda *args: None)
    with held_port(listen=True) as holder:
        stack = LocalStack(aws_port=free_port(), api_port=holder.getsockname()[1])
        with pytest.raises(PortInUse, match=f"127.0.0.1:{stack.api_port} is already in use; choose another "
                                            "with API_PORT="):
            start_in_a_restored_environment(stack)
    assert stack._moto and all(p.poll() is not None for p in stack._moto)
