"""Shared fixtures: a moto-backed AWS for handler tests, and the app's test Client.

The Client gets a generated project dir whose `test` stage points the app at the moto
resources, as `chalice deploy` would set a stage's environment.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Every handler a test runs is held to its own execution role (tests/iam/).
pytest_plugins = ["tests.iam.plugin"]

TEST_SECRET = "whsec_" + "dGhpcy1pcy1hLXRlc3Qtc2VjcmV0LW9ubHkh"


@pytest.fixture
def aws(monkeypatch):
    """moto's in-memory AWS with the app's resources; yields the LocalResources."""
    from moto import mock_aws

    from chalicelib import service
    from thumbgen.resources import create_resources

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        service.reset()
        s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
        resources = create_resources(s3, boto3.client("dynamodb"), boto3.client("sqs"))
        yield resources
        service.reset()


def stage_environment(resources, **overrides: str) -> dict[str, str]:
    env = {
        "BUCKET_NAME": resources.bucket,
        "TABLE_NAME": resources.table,
        "TABLE_STREAM_ARN": resources.stream_arn,
        "WEBHOOK_QUEUE_URL": resources.webhook_queue_url,
        "WEBHOOK_DLQ_URL": resources.webhook_dlq_url,
        "WEBHOOK_SECRET": TEST_SECRET,
        "WEBHOOK_RETRY_SCHEDULE": "5,300",
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "false",
        "WEBHOOK_READ_TIMEOUT": "2",
        "WEBHOOK_CONNECT_TIMEOUT": "1",
    }
    env.update(overrides)
    return env


@pytest.fixture
def make_client(aws, tmp_path):
    """Build a chalice.test.Client whose stage environment points at moto."""
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
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


def queue_messages(resources, url: str | None = None) -> list[dict]:
    """Drain the visible messages of a queue (default: the webhook queue)."""
    sqs = boto3.client("sqs")
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url or resources.webhook_queue_url,
                                  MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                  AttributeNames=["All"]).get("Messages", [])
        if not got:
            return out
        for message in got:
            sqs.delete_message(QueueUrl=url or resources.webhook_queue_url,
                               ReceiptHandle=message["ReceiptHandle"])
        out.extend(got)


def put_upload(resources, image_id: str, data: bytes) -> None:
    boto3.client("s3").put_object(Bucket=resources.bucket, Key=f"uploads/{image_id}", Body=data)


def sqs_event(bodies: list[str]) -> dict:
    return {"Records": [{
        "messageId": f"m{i}", "receiptHandle": f"r{i}", "body": body, "attributes": {},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:thumbgen-webhooks", "awsRegion": "us-east-1",
    } for i, body in enumerate(bodies)]}


@pytest.fixture(autouse=True)
def _no_stray_endpoint(monkeypatch):
    """Unit and handler tests never talk to a real endpoint by accident."""
    if os.environ.get("AWS_ENDPOINT_URL", "").startswith("http") and "127.0.0.1" not in os.environ["AWS_ENDPOINT_URL"]:
        monkeypatch.delenv("AWS_ENDPOINT_URL")
