"""DynamoDB adapter for the image record: every transition is a conditional write.

S3 and DynamoDB streams deliver at least once; the conditions make a duplicate event a
no-op instead of a second outcome or a second webhook.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from chalicelib import images

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


class ImageRecords:
    def __init__(self, table: Any):
        self._table = table

    def create(self, item: Mapping[str, Any]) -> None:
        self._table.put_item(Item=dict(item), ConditionExpression="attribute_not_exists(id)")

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
                # Raw attribute values: the resource layer converts only successful answers.
                old = exc.response.get("Item") or {}
                return False, plain_values({k: _deserializer.deserialize(v) for k, v in old.items()})
            raise
        return True, plain_values(response.get("Attributes", {}))

    def _update(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """Conditional update; the new item, or None when the condition did not hold."""
        applied, item = self._write(*args, **kwargs)
        return item if applied else None

    def _applied(self, *args: Any) -> bool:
        return self._update(*args, returns="NONE") is not None

    # --- resize lifecycle -------------------------------------------------------------

    def start_processing(self, image_id: str, now_iso: str, stale_before_iso: str) -> dict[str, Any] | None:
        """pending_upload -> processing (or take over an expired claim); the claimed item."""
        return self._update(
            image_id,
            "SET #s = :processing, processingStartedAt = :now, updatedAt = :now "
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
            "SET #s = :pending, updatedAt = :now",
            "#s = :processing AND processingStartedAt = :claimed",
            {
                ":pending": images.PENDING_UPLOAD,
                ":processing": images.PROCESSING,
                ":claimed": claimed_at_iso,
                ":now": now_iso,
            },
            {"#s": "status"},
        )

    def finish(self, image_id: str, claimed_at_iso: str, fields: Mapping[str, Any]) -> bool:
        """processing -> completed|failed, only by the holder of the claim."""
        sets = ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":f{i}": value for i, value in enumerate(fields.values())}
        names["#s"] = "status"
        values.update({":processing": images.PROCESSING, ":claimed": claimed_at_iso})
        return self._applied(
            image_id,
            f"SET {sets}",
            "#s = :processing AND processingStartedAt = :claimed",
            values,
            names,
        )

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

    def restart_delivery(self, image_id: str, now_iso: str) -> dict[str, Any] | None:
        """A new delivery round for redelivery; the new webhook state, or None if not final."""
        try:
            response = self._table.update_item(
                Key={"id": image_id},
                UpdateExpression=(
                    "SET webhook.#s = :pending, webhook.attempts = :zero, updatedAt = :now, "
                    "webhook.#r = webhook.#r + :one "
                    "REMOVE webhook.inFlight, webhook.nextAttemptAt, webhook.lastError, "
                    "webhook.lastStatusCode, webhook.deliveredAt"
                ),
                ConditionExpression="attribute_exists(webhook.id) AND #s IN (:completed, :failed)",
                ExpressionAttributeValues={
                    ":pending": "pending",
                    ":zero": 0,
                    ":one": 1,
                    ":now": now_iso,
                    ":completed": images.COMPLETED,
                    ":failed": images.FAILED,
                },
                ExpressionAttributeNames={"#r": "round", "#s": "status"},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return None
            raise
        return plain_values(response["Attributes"]["webhook"])
