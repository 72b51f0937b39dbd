"""Shared fixtures: a moto-backed AWS for handler tests, and the app's test Client.

The Client gets a generated project dir whose `test` stage points the app at the moto
resources, as `chalice deploy` would set a stage's environment.
"""
from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Every handler a test runs is held to its own execution role (tests/iam/); `stack`, the
# running local stack of the end-to-end and browser tests, is in tests/live_stack.py.
pytest_plugins = ["tests.iam.plugin", "tests.live_stack"]

# A fixed Standard Webhooks secret for tests of signing itself (users' own are made by the API).
TEST_SECRET = "whsec_" + "dGhpcy1pcy1hLXRlc3Qtc2VjcmV0LW9ubHkh"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Browser tests skipped for want of Chromium are not a quiet `s` among hundreds: the
    run ends with a banner saying how many and how to get Chromium (after the short test
    summary and the coverage table, just above the final counts)."""
    from tests.browser import chromium

    yield
    skipped = {report.nodeid for report in terminalreporter.stats.get("skipped", [])
               if isinstance(report.longrepr, tuple) and chromium.INSTALL_HINT in report.longrepr[-1]}
    if not skipped:
        return
    terminalreporter.write_sep("!", f"{len(skipped)} browser test{'s' if len(skipped) != 1 else ''} "
                                    "skipped: no Chromium", yellow=True, bold=True)
    terminalreporter.write_line(f"The web page's tests (tests/browser/) need Chromium at {chromium.CHROMIUM} "
                                "(or THUMBGEN_CHROMIUM=/path/to/chromium); they did not run.")
    terminalreporter.write_line("Install it with `sudo apt-get install -y chromium` (as .ci/run does), "
                                "then run `make test` again.")


@pytest.fixture
def aws(monkeypatch):
    """moto's in-memory AWS with the app's resources; yields the LocalResources."""
    from moto import mock_aws

    from chalicelib import service
    from thumbgen.local.resources import create_resources

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        service.reset()
        s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
        resources = create_resources(s3, boto3.client("dynamodb"), boto3.client("sqs"),
                                     boto3.client("cognito-idp"))
        yield resources
        service.reset()


@pytest.fixture
def tokens(aws):
    """tokens("alice") -> a real access token of the moto user pool (user made on first use)."""
    from thumbgen.users import token_for

    cache: dict[str, str] = {}
    cognito = boto3.client("cognito-idp")

    def token(user: str = "alice") -> str:
        if user not in cache:
            cache[user] = token_for(cognito, aws.user_pool_id, aws.app_client_id, user)
        return cache[user]
    return token


def stage_environment(resources, **overrides: str) -> dict[str, str]:
    env = {
        "BUCKET_NAME": resources.bucket,
        "TABLE_NAME": resources.table,
        "TABLE_STREAM_ARN": resources.stream_arn,
        "RATE_LIMIT_TABLE_NAME": resources.rate_limit_table,
        "RATE_LIMIT_PER_SECOND": "1000",  # tests of the limit set their own
        "RATE_LIMIT_BURST": "10000",
        "UPLOAD_QUEUE_URL": resources.upload_queue_url,
        "WEBHOOK_QUEUE_URL": resources.webhook_queue_url,
        "WEBHOOK_DLQ_URL": resources.webhook_dlq_url,
        "WEBHOOK_RETRY_SCHEDULE": "5,300",
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "false",
        "WEBHOOK_READ_TIMEOUT": "2",
        "WEBHOOK_CONNECT_TIMEOUT": "1",
        "COGNITO_USER_POOL_ID": resources.user_pool_id,
        "COGNITO_APP_CLIENT_ID": resources.app_client_id,
        "COGNITO_REGION": "us-east-1",
    }
    env.update(overrides)
    return env


class _HttpAs:
    """Chalice's test HTTP client, sending one user's bearer token unless told otherwise."""

    def __init__(self, http, token: str | None):
        self._http, self._token = http, token

    def request(self, method, path, headers=None, body=b""):
        headers = dict(headers or {})
        if self._token and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = f"Bearer {self._token}"
        return self._http.request(method, path, headers=headers, body=body)

    def __getattr__(self, method):
        return lambda path, **kwargs: self.request(method.upper(), path, **kwargs)


class ClientAs:
    """A test Client acting as one user: `client.as_user("bob")`, `client.anonymous()`."""

    def __init__(self, client, tokens, user: str | None):
        self._client, self._tokens, self.user = client, tokens, user
        self.http = _HttpAs(client.http, tokens(user) if user else None)

    def as_user(self, user: str) -> "ClientAs":
        return ClientAs(self._client, self._tokens, user)

    def anonymous(self) -> "ClientAs":
        return ClientAs(self._client, self._tokens, None)

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.fixture
def make_client(aws, tmp_path, tokens):
    """Build a chalice.test.Client whose stage environment points at moto, acting as alice."""
    from chalice.test import Client

    from app import app
    from chalicelib import service

    clients = []

    def build(**overrides: str):
        service.reset()
        project = tmp_path / f"project{len(clients)}"
        (project / ".chalice").mkdir(parents=True)
        (project / ".chalice" / "config.json").write_text(json.dumps({
            "version": "2.0", "app_name": "thumbgen",
            "stages": {"test": {"environment_variables": stage_environment(aws, **overrides)}},
        }))
        client = Client(app, stage_name="test", project_dir=str(project))
        client.__enter__()
        clients.append(client)
        return ClientAs(client, tokens, "alice")

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


def sub_of(token: str) -> str:
    """The user id (`sub`) a token names, as the API sees its caller."""
    import jwt

    return jwt.decode(token, options={"verify_signature": False})["sub"]


def queue_messages(resources, url: str | None = None, attributes: bool = False) -> list[dict]:
    """Drain the visible messages of a queue (default: the webhook queue)."""
    sqs = boto3.client("sqs")
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url or resources.webhook_queue_url,
                                  MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"],
                                  MessageAttributeNames=["All"] if attributes else []).get("Messages", [])
        if not got:
            return out
        for message in got:
            sqs.delete_message(QueueUrl=url or resources.webhook_queue_url,
                               ReceiptHandle=message["ReceiptHandle"])
        out.extend(got)


def secret_of(resources, owner: str) -> str:
    """The owner's current webhook signing secret, as the table holds it."""
    item = boto3.resource("dynamodb").Table(resources.table).get_item(Key={"id": f"secret#{owner}"})["Item"]
    return item["current"]


def put_upload(resources, image_id: str, data: bytes) -> None:
    boto3.client("s3").put_object(Bucket=resources.bucket, Key=f"uploads/{image_id}", Body=data)


def s3_notification(bucket: str, key: str) -> str:
    """The body S3 sends to the uploads queue for one ObjectCreated (key URL-encoded)."""
    from urllib.parse import quote_plus

    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-01-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": quote_plus(key), "size": 1, "eTag": "0"}},
    }]})


def upload_event(bucket: str, key: str) -> dict:
    """What the resize function gets from the uploads queue when S3 notifies it."""
    return sqs_event([s3_notification(bucket, key)])


def sqs_event(bodies: list[str]) -> dict:
    return {"Records": [{
        "messageId": f"m{i}", "receiptHandle": f"r{i}", "body": body, "attributes": {},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:thumbgen-webhooks", "awsRegion": "us-east-1",
    } for i, body in enumerate(bodies)]}


def _loopback_only(host) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _only_loopback_traffic(monkeypatch):
    """No test sends a packet beyond 127.0.0.1: connections and name lookups elsewhere fail
    before any packet leaves (moto answers boto3 and `requests` calls in-process)."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else None
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback_only(host):
            raise OSError(f"test traffic to {address} refused: loopback only")
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode()
        if not _loopback_only(host):
            try:
                ipaddress.ip_address(str(host).split("%")[0])
            except ValueError:
                raise socket.gaierror(socket.EAI_NONAME, f"test lookup of {host!r} refused: loopback only") from None
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def _no_stray_endpoint(monkeypatch):
    """Unit and handler tests never talk to a real endpoint by accident."""
    if os.environ.get("AWS_ENDPOINT_URL", "").startswith("http") and "127.0.0.1" not in os.environ["AWS_ENDPOINT_URL"]:
        monkeypatch.delenv("AWS_ENDPOINT_URL")
