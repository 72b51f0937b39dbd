"""The per-user request rate limit against moto's DynamoDB, on a clock of the test's own:
a window's burst passes, the next request waits for the next window, users never share a
count, and a table that cannot be written lets requests through (fail-open)."""
from __future__ import annotations

import logging

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.api.rate_limit import RateLimit, RateLimiter, Throttled
from tests.clock import Clock


@pytest.fixture
def dynamodb():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="limits", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        yield client


def test_rate_and_burst_make_windows_of_burst_over_rate_seconds():
    limit = RateLimit(per_second=10, burst=50)
    assert limit.window_seconds == 5
    assert limit.window_of(12.3) == (2, 15.0)
    assert limit.window_of(15.0) == (3, 20.0)
    assert RateLimit(0, 50).enabled is False and limit.enabled


def test_a_burst_per_window_then_429_until_the_next_window(dynamodb):
    clock = Clock(1000.5)  # window 200: [1000, 1005)
    limiter = RateLimiter(dynamodb, "limits", RateLimit(per_second=2, burst=10), clock)
    for _ in range(10):
        limiter.admit("alice")
    with pytest.raises(Throttled) as throttled:
        limiter.admit("alice")
    assert throttled.value.retry_after == 5  # 4.5 s to the window's end, rounded up
    clock.now = 1004.2
    with pytest.raises(Throttled) as throttled:
        limiter.admit("alice")
    assert throttled.value.retry_after == 1
    limiter.admit("bob")  # one user's count is never another's
    clock.now = 1005.0
    limiter.admit("alice")
    items = {i["id"]["S"]: int(i["requests"]["N"]) for i in dynamodb.scan(TableName="limits")["Items"]}
    assert items == {"alice#200": 10, "alice#201": 1, "bob#200": 1}


def test_one_write_per_request_and_each_window_expires(dynamodb):
    limiter = RateLimiter(dynamodb, "limits", RateLimit(per_second=10, burst=50), Clock(1000.0))
    calls = []
    dynamodb.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    limiter.admit("alice")
    assert calls == ["UpdateItem"]  # no read, no second write
    [item] = dynamodb.scan(TableName="limits")["Items"]
    assert int(item["expiresAtEpoch"]["N"]) == 1005 + 60  # the window's end and a minute


def test_no_limit_when_the_rate_is_zero(dynamodb):
    limiter = RateLimiter(dynamodb, "limits", RateLimit(per_second=0, burst=1), Clock(1000.0))
    for _ in range(5):
        limiter.admit("alice")
    assert dynamodb.scan(TableName="limits")["Items"] == []


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ResourceNotFoundException",
                                  "InternalServerError"])
def test_a_table_that_cannot_be_written_lets_requests_through_and_says_so(code, caplog):
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    limiter = RateLimiter(client, "limits", RateLimit(per_second=1, burst=1), Clock(1000.0))
    with Stubber(client) as stub, caplog.at_level(logging.WARNING, logger="thumbgen.rate_limit"):
        stub.add_client_error("update_item", service_error_code=code)
        limiter.admit("alice")  # fail-open: no Throttled
    assert [r.getMessage() for r in caplog.records] == ["ratelimit.unavailable"]
    assert caplog.records[0].fields == {"outcome": "admitted", "reason": code}


def test_no_endpoint_at_all_lets_requests_through(monkeypatch):
    from botocore.config import Config

    from thumbgen.local.stack import free_port

    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
                          endpoint_url=f"http://127.0.0.1:{free_port()}",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    RateLimiter(client, "limits", RateLimit(per_second=1, burst=1), Clock(1000.0)).admit("alice")
