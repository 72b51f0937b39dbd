"""Lazy boto3 clients: nothing touches AWS at import time.

The endpoint comes from AWS_ENDPOINT_URL (boto3 reads it itself), so the same code talks
to the embedded moto server locally and to AWS in Lambda. S3 presigning is always SigV4.
"""
from __future__ import annotations

import os
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


def s3_config(environ: Any = os.environ) -> Config:
    """SigV4 always. On AWS, virtual-hosted URLs on the region's own host
    (`bucket.s3.<region>.amazonaws.com`, us-east-1 included): botocore would otherwise sign
    the global `bucket.s3.amazonaws.com`, which answers 307 for up to a day after a bucket
    is made outside us-east-1, and a browser does not follow a redirect of a preflighted
    PUT. On a local endpoint (AWS_ENDPOINT_URL), path style: no DNS name per bucket."""
    if environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL"):
        addressing = {"addressing_style": "path"}
    else:
        addressing = {"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"}
    return _RETRIES.merge(Config(signature_version="s3v4", s3=addressing))


def client(service: str) -> Any:
    with _lock:
        if service not in _clients:
            _clients[service] = boto3.session.Session().client(
                service, config=s3_config() if service == "s3" else _RETRIES
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
