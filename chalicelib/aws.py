"""Lazy boto3 clients: nothing touches AWS at import time.

The endpoint comes from AWS_ENDPOINT_URL (boto3 reads it itself), so the same code talks
to the embedded moto server locally and to AWS in Lambda. S3 presigning is always SigV4.
"""
from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_resources: dict[str, Any] = {}

# botocore's "standard" retry mode: throttling and transient errors retried with backoff,
# the same on every client (the legacy default retries fewer error kinds).
# A Lambda container serves one event at a time, but the local stack's threads share these.
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=50)
_CONFIGS = {
    "s3": _RETRIES.merge(Config(signature_version="s3v4")),
}


def client(service: str) -> Any:
    with _lock:
        if service not in _clients:
            _clients[service] = boto3.session.Session().client(
                service, config=_CONFIGS.get(service, _RETRIES)
            )
        return _clients[service]


def resource(service: str) -> Any:
    with _lock:
        if service not in _resources:
            _resources[service] = boto3.session.Session().resource(service, config=_RETRIES)
        return _resources[service]


def reset() -> None:
    """Forget cached clients (tests switch endpoints and credentials between runs)."""
    with _lock:
        _clients.clear()
        _resources.clear()
