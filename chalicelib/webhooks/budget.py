"""Per-user fairness of webhook delivery: how many attempts one user may aim at one host
in one clock hour (WEBHOOK_HOURLY_ATTEMPTS_PER_HOST).

The delivery function is shared by everyone: without a bound, one user's failing or
hanging receiver, fed by many images, keeps it busy with retries that each may take the
whole attempt deadline. An attempt over the bound is deferred to the next hour -- its
task is queued again, nothing is claimed or recorded -- so it is neither lost nor
counted as a failure, and the schedule resumes where it was.

One counter item per user, host and hour in the images table
(`attempts#<sub>#<host>#<hour>`, record.HostAttempts), incremented by one conditional
write; the table's TTL removes it once its hour is over.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from chalicelib.images.record import HostAttempts, Item, host_attempts_key

HOUR = 3600


def host_of(url: str) -> str:
    """The host an attempt is aimed at, as the bound counts it (port and path aside)."""
    return (urlsplit(url).hostname or "").lower()


class HostBudget:
    """DynamoDB adapter: takes one attempt from a user's hourly budget for a host."""

    def __init__(self, table: Any, per_hour: int):
        self._table = table
        self.per_hour = per_hour

    def take(self, owner: str, url: str, now_epoch: float) -> float | None:
        """Count one attempt now: None if it fits this hour's budget, else the epoch
        second when the next hour (and its budget) begins."""
        hour = int(now_epoch // HOUR)
        try:
            self._table.update_item(
                Key={Item.ID: host_attempts_key(owner, host_of(url), hour)},
                UpdateExpression="ADD #count :one SET #expires = :expires",
                ConditionExpression="attribute_not_exists(#count) OR #count < :limit",
                ExpressionAttributeNames={"#count": HostAttempts.COUNT, "#expires": Item.EXPIRES_AT_EPOCH},
                ExpressionAttributeValues={":one": 1, ":limit": self.per_hour, ":expires": (hour + 2) * HOUR},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return float((hour + 1) * HOUR)
            raise
        return None
