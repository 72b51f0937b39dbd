"""End-to-end fixtures: `stack` (the embedded stack, tests/live_stack.py, shared with the
browser tests) and a webhook receiver."""
from __future__ import annotations

import pytest

from tests.live_stack import ROOT  # noqa: F401  (tests run the CLI from here)
from thumbgen.receiver import WebhookReceiver


@pytest.fixture(scope="session")
def receiver():
    with WebhookReceiver() as r:
        yield r
