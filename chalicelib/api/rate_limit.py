"""Per-user request rate limit: one conditional UpdateItem per authenticated request.

API Gateway's throttling is per stage: one user sending fast enough takes every request
the stage allows and everyone else gets 429s. Here each user (`sub`) may make at most
RATE_LIMIT_BURST requests in each window of RATE_LIMIT_BURST / RATE_LIMIT_PER_SECOND
seconds (so RATE_LIMIT_PER_SECOND on average; twice the burst at most across a window's
edge). A window is one item of the rate-limit table, `<sub>#<window number>`, counted up by
a conditional ADD and removed by DynamoDB's TTL after the window: one write unit per
request, refused ones included, and no read. A token bucket would smooth the edge, but
needs a second write whenever the bucket has refilled (DynamoDB's update expressions have
no max()), and the stage's own throttling still bounds the edge. The choices are in
docs/decisions.md, the cost in docs/performance.md.

Fail-open: if the table cannot be written (an outage, a throttled partition) the request
goes on and the failure is logged. The limit shares a user's capacity fairly; it is not
what keeps the service up (API Gateway's stage throttling and Lambda's concurrency are),
and a limiter that fails closed would turn a hiccup of this table into every user's
outage. One user cannot throttle their own counter item into failing open: a partition
takes 1,000 writes a second, ten times the busiest stage's throttling.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.platform import logs

log = logs.get("rate_limit")
TTL_MARGIN_SECONDS = 60  # a window's item outlives the window by this much (TTL is lazy anyway)


@dataclass(frozen=True)
class RateLimit:
    per_second: float  # 0: no limit
    burst: int

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    @property
    def window_seconds(self) -> float:
        return self.burst / self.per_second

    def window_of(self, now: float) -> tuple[int, float]:
        """The number of the window holding `now` (epoch seconds), and when it ends."""
        number = math.floor(now / self.window_seconds)
        return number, (number + 1) * self.window_seconds


class Throttled(Exception):
    """The user used up this window; the next starts in `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many requests; again in {retry_after} s")
        self.retry_after = retry_after


class RateLimiter:
    def __init__(self, dynamodb: Any, table: str, limit: RateLimit, clock: Callable[[], float] = time.time):
        self._dynamodb, self._table, self.limit, self._clock = dynamodb, table, limit, clock

    def admit(self, user: str) -> None:
        """Count one request of `user`; Throttled if the window's burst is used up."""
        if not self.limit.enabled:
            return
        now = self._clock()
        number, ends = self.limit.window_of(now)
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"id": {"S": f"{user}#{number}"}},
                UpdateExpression="ADD #requests :one SET #expires = :expires",
                ConditionExpression="attribute_not_exists(#requests) OR #requests < :burst",
                ExpressionAttributeNames={"#requests": "requests", "#expires": "expiresAtEpoch"},
                ExpressionAttributeValues={":one": {"N": "1"}, ":burst": {"N": str(self.limit.burst)},
                                           ":expires": {"N": str(math.ceil(ends) + TTL_MARGIN_SECONDS)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise Throttled(max(1, math.ceil(ends - now))) from None
            logs.event(log, "ratelimit.unavailable", level=logging.WARNING, outcome="admitted",
                       reason=exc.response.get("Error", {}).get("Code", "unknown"))
        except BotoCoreError as exc:
            logs.event(log, "ratelimit.unavailable", level=logging.WARNING, outcome="admitted", reason=type(exc).__name__)
