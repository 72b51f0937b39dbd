"""DynamoDB adapter for the image record: every transition is a conditional write.

S3 and DynamoDB streams deliver at least once; the conditions make a duplicate event a
no-op instead of a second outcome or a second webhook.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from chalicelib import images

OWNER_INDEX = "owner-created"
PROCESSING_INDEX = "processing-started"
_deserializer = TypeDeserializer()


def plain_values(value: Any) -> Any:
    """DynamoDB's Decimals back to ints/floats, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_values(v) for v in value]
    return value


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _old_item(exc: ClientError) -> dict[str, Any]:
    """The item a failed condition saw (ReturnValuesOnConditionCheckFailure=ALL_OLD), as
    raw attribute values: the resource layer converts only successful answers."""
    raw = exc.response.get("Item") or {}
    return plain_values({k: _deserializer.deserialize(v) for k, v in raw.items()})


def quota_key(owner: str) -> str:
    return f"quota#{owner}"


def quota_entry(expires_epoch: int, image_id: str) -> str:
    """One pending upload in its owner's quota: it stops counting at expires_epoch."""
    return f"{expires_epoch}:{image_id}"


def entry_expiry(entry: str) -> int:
    try:
        return int(entry.split(":", 1)[0])
    except ValueError:
        return 0


@dataclass(frozen=True)
class QuotaFull(Exception):
    """The owner has max_pending uploads waiting; the earliest stops counting in retry_after s."""

    retry_after: int


class ImageRecords:
    def __init__(self, table: Any):
        self._table = table

    def create(self, item: Mapping[str, Any]) -> None:
        self._table.put_item(Item=dict(item), ConditionExpression="attribute_not_exists(id)")

    # --- pending-upload quota ---------------------------------------------------------

    def create_within_quota(self, item: Mapping[str, Any], owner: str, entry: str,
                            max_pending: int, now_epoch: int) -> None:
        """Take a slot of the owner's quota, then put the new pending item.

        The quota item holds one entry per pending upload; entries leave when the upload
        is declared complete or starts processing, when the item is removed (stream
        handler), or when they expire. A full quota is pruned of expired entries once
        before QuotaFull is raised. Two conditional writes, not a transaction: a slot
        whose item was never written (a crash in between) expires with its upload URL.
        """
        for attempt in (1, 2):
            try:
                self._table.update_item(
                    Key={"id": quota_key(owner)}, UpdateExpression="ADD pendingIds :entry",
                    ConditionExpression="attribute_not_exists(pendingIds) OR size(pendingIds) < :max",
                    ExpressionAttributeValues={":entry": {entry}, ":max": max_pending},
                )
                break
            except ClientError as exc:
                if not _is_condition_failure(exc):
                    raise
            remaining = self.prune_quota(owner, now_epoch)
            if attempt == 2 or len(remaining) >= max_pending:
                earliest = min((entry_expiry(e) for e in remaining), default=now_epoch + 1)
                raise QuotaFull(retry_after=max(1, earliest - now_epoch))
        try:
            self.create(item)
        except Exception:
            self.release_quota(owner, {entry})
            raise

    def prune_quota(self, owner: str, now_epoch: int) -> list[str]:
        """Drop the owner's expired entries; the entries still counting."""
        got = self._table.get_item(Key={"id": quota_key(owner)}, ConsistentRead=True).get("Item") or {}
        entries = sorted(got.get("pendingIds") or [])
        expired = {e for e in entries if entry_expiry(e) <= now_epoch}
        if expired:
            self.release_quota(owner, expired)
        return [e for e in entries if e not in expired]

    def release_quota(self, owner: str, entries: set[str]) -> None:
        """Give pending-upload slots back; a quota item that is already gone stays gone."""
        try:
            self._table.update_item(
                Key={"id": quota_key(owner)}, UpdateExpression="DELETE pendingIds :entries",
                ConditionExpression="attribute_exists(id)",
                ExpressionAttributeValues={":entries": set(entries)},
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise

    # --- the owner's view -------------------------------------------------------------

    def list_owned(self, owner: str, limit: int,
                   after: Mapping[str, str] | None) -> tuple[list[dict[str, Any]], bool]:
        """The owner's items, newest first: up to `limit`, and whether more follow."""
        kwargs: dict[str, Any] = {
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": "#o = :owner",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":owner": owner},
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if after:
            kwargs["ExclusiveStartKey"] = {"id": after["id"], "createdAt": after["createdAt"], "owner": owner}
        items = [plain_values(i) for i in self._table.query(**kwargs).get("Items", [])]
        return items[:limit], len(items) > limit

    def delete_owned(self, image_id: str, owner: str) -> dict[str, Any] | None:
        """Remove the owner's item; the removed item, or None (unknown or not theirs)."""
        try:
            response = self._table.delete_item(
                Key={"id": image_id}, ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"}, ExpressionAttributeValues={":owner": owner},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return None
            raise
        return plain_values(response.get("Attributes") or {}) or None

    def get(self, image_id: str) -> dict[str, Any] | None:
        response = self._table.get_item(Key={"id": image_id}, ConsistentRead=True)
        item = response.get("Item")
        return plain_values(item) if item else None

    def _write(self, image_id: str, expression: str, condition: str,
               values: dict[str, Any], names: dict[str, str] | None = None,
               returns: str = "ALL_NEW", old_on_failure: bool = False) -> tuple[bool, dict[str, Any]]:
        """One conditional update: (True, the new item; {} with returns="NONE"), or (False,
        the item as it was) when the condition did not hold. The old item is asked for only
        with old_on_failure ({} otherwise, or when there is none); it comes with the failure
        itself (ReturnValuesOnConditionCheckFailure), so it costs no read."""
        kwargs: dict[str, Any] = {
            "Key": {"id": image_id},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ReturnValues": returns,
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if old_on_failure:
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            response = self._table.update_item(**kwargs)
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False, _old_item(exc)
            raise
        return True, plain_values(response.get("Attributes", {}))

    def _update(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """Conditional update; the new item, or None when the condition did not hold."""
        applied, item = self._write(*args, **kwargs)
        return item if applied else None

    def _applied(self, *args: Any) -> bool:
        return self._update(*args, returns="NONE") is not None

    def _update_or_old(self, image_id: str, expression: str, condition: str,
                       values: dict[str, Any], names: dict[str, str]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """(the new item, {}), or (None, the item the condition saw: {} when there is none)."""
        applied, item = self._write(image_id, expression, condition, values, names, old_on_failure=True)
        return (item, {}) if applied else (None, item)

    # --- resize lifecycle -------------------------------------------------------------

    def start_processing(self, image_id: str, now_iso: str,
                         stale_before_iso: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """pending_upload -> processing, or take over a claim whose lease ran out.

        (the claimed item, {}) or (None, the item as it was: {} when there is none).
        `activeState` puts the item in the sparse processing-started index the sweeper reads.
        """
        return self._update_or_old(
            image_id,
            "SET #s = :processing, processingStartedAt = :now, updatedAt = :now, activeState = :processing "
            "ADD processingTries :one REMOVE expiresAtEpoch",
            "attribute_exists(id) AND (#s = :pending OR "
            "(#s = :processing AND processingStartedAt < :stale))",
            {
                ":processing": images.PROCESSING,
                ":pending": images.PENDING_UPLOAD,
                ":now": now_iso,
                ":stale": stale_before_iso,
                ":one": 1,
            },
            {"#s": "status"},
        )

    def release_processing(self, image_id: str, claimed_at_iso: str, now_iso: str) -> bool:
        """processing -> pending_upload after an unexpected error, so a retry can claim it."""
        return self._applied(
            image_id,
            "SET #s = :pending, updatedAt = :now REMOVE activeState",
            "#s = :processing AND processingStartedAt = :claimed",
            {
                ":pending": images.PENDING_UPLOAD,
                ":processing": images.PROCESSING,
                ":claimed": claimed_at_iso,
                ":now": now_iso,
            },
            {"#s": "status"},
        )

    def finish(self, image_id: str, claimed_at_iso: str,
               fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """processing -> completed|failed, only by the holder of the claim; (new, old) as
        for start_processing."""
        return self._finish(image_id, fields, "#s = :processing AND processingStartedAt = :claimed",
                            {":processing": images.PROCESSING, ":claimed": claimed_at_iso})

    def finish_unfinished(self, image_id: str, seen: Mapping[str, Any],
                          fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Give up on an item still as it was seen (same status, same updatedAt): for the
        dead-letter consumer and the sweeper, which act on items no worker finished."""
        return self._finish(image_id, fields, "#s = :seen_status AND updatedAt = :seen_updated",
                            {":seen_status": seen["status"], ":seen_updated": seen["updatedAt"]})

    def _finish(self, image_id: str, fields: Mapping[str, Any], condition: str,
                values: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        sets = ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {**values, **{f":f{i}": value for i, value in enumerate(fields.values())}}
        names["#s"] = "status"
        return self._update_or_old(image_id, f"SET {sets} REMOVE activeState", condition, values, names)

    def processing_since_before(self, before_iso: str, limit: int = 100) -> list[str]:
        """Ids of items processing since before `before_iso` (the sparse index)."""
        response = self._table.query(
            IndexName=PROCESSING_INDEX,
            KeyConditionExpression="activeState = :processing AND processingStartedAt < :before",
            ExpressionAttributeValues={":processing": images.PROCESSING, ":before": before_iso},
            Limit=limit,
        )
        return [str(item["id"]) for item in response.get("Items", [])]

    # --- webhook delivery -------------------------------------------------------------

    def claim_attempt(self, image_id: str, webhook_id: str, round_: int, attempt: int,
                      now_iso: str, stale_before_iso: str) -> dict[str, Any] | None:
        """Fence one delivery attempt; the item, or None if this attempt is not ours to send.

        A duplicate queue message, a superseded round or a finished delivery fail the
        condition. The expression is kept small: it is on the webhook's latency path.
        """
        values = {":n": attempt, ":prev": attempt - 1, ":now": now_iso, ":wid": webhook_id,
                  ":round": round_, ":pending": "pending"}
        names = {"#r": "round", "#st": "status"}
        fence = "webhook.id = :wid AND webhook.#r = :round AND webhook.#st = :pending"
        claimed, item = self._write(
            image_id,
            "SET webhook.attempts = :n, webhook.inFlight = :n, webhook.lastAttemptAt = :now",
            f"{fence} AND webhook.attempts = :prev",
            values, names, old_on_failure=True,
        )
        if claimed:
            return item
        # Rare path: the same attempt was claimed by a sender that died before recording
        # its result (the queue redelivers the message); take it over once it is stale.
        # The item comes with the failed condition: no second read, no GetItem permission.
        webhook = item.get("webhook") or {}
        if webhook.get("inFlight") != attempt:
            return None
        del values[":prev"]
        return self._update(
            image_id,
            "SET webhook.lastAttemptAt = :now",
            f"{fence} AND webhook.attempts = :n AND webhook.inFlight = :n "
            "AND webhook.lastAttemptAt < :stale",
            {**values, ":stale": stale_before_iso}, names,
        )

    def record_attempt(self, image_id: str, webhook_id: str, round_: int, attempt: int,
                       outcome: Mapping[str, Any], now_iso: str) -> bool:
        """Write an attempt's result: new status, last status code or error, next time."""
        sets = ["webhook.#st = :status", "updatedAt = :now"]
        removes = ["webhook.inFlight"]  # nextAttemptAt is set below or removed
        values: dict[str, Any] = {
            ":status": outcome["status"],
            ":now": now_iso,
            ":wid": webhook_id,
            ":round": round_,
            ":n": attempt,
        }
        for field in ("lastStatusCode", "lastError", "nextAttemptAt", "deliveredAt"):
            if outcome.get(field) is not None:
                sets.append(f"webhook.{field} = :{field}")
                values[f":{field}"] = outcome[field]
            else:
                removes.append(f"webhook.{field}")
        return self._applied(
            image_id,
            f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            "webhook.id = :wid AND webhook.#r = :round AND webhook.attempts = :n",
            values,
            {"#r": "round", "#st": "status"},
        )

    def restart_delivery(self, image_id: str, now_iso: str,
                         max_round: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """A new delivery round for redelivery, if the last one is over and rounds remain.

        Returns (the new webhook state, None) on success, else (None, the item as the failed
        condition saw it) so the caller can say why without a second read.
        """
        try:
            response = self._table.update_item(
                Key={"id": image_id},
                UpdateExpression=(
                    "SET webhook.#s = :pending, webhook.attempts = :zero, updatedAt = :now, "
                    "webhook.#r = webhook.#r + :one "
                    "REMOVE webhook.inFlight, webhook.nextAttemptAt, webhook.lastError, "
                    "webhook.lastStatusCode, webhook.deliveredAt"
                ),
                ConditionExpression=(
                    "attribute_exists(webhook.id) AND #s IN (:completed, :failed) "
                    "AND webhook.#s <> :pending AND webhook.#r < :max_round"
                ),
                ExpressionAttributeValues={
                    ":pending": "pending",
                    ":zero": 0,
                    ":one": 1,
                    ":now": now_iso,
                    ":completed": images.COMPLETED,
                    ":failed": images.FAILED,
                    ":max_round": max_round,
                },
                ExpressionAttributeNames={"#r": "round", "#s": "status"},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return None, _old_item(exc)
            raise
        return plain_values(response["Attributes"]["webhook"]), {}
