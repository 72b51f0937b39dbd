"""Fixtures of the handler tests that talk to a webhook receiver on 127.0.0.1."""
from __future__ import annotations

import pytest

from thumbgen.receiver import WebhookReceiver


@pytest.fixture
def receiver():
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def local_client(make_client):
    """A test client whose stage may call receivers on 127.0.0.1 (as the local stack does)."""
    return make_client(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true")
