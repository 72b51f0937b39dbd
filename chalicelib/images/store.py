"""DynamoDB adapter for the image record (chalicelib/images/record.py): every transition is a
conditional write.

S3 and DynamoDB streams deliver at least once; the conditions make a duplicate event a
no-op instead of a second outcome or a second webhook. A refused write returns the item as
the condition saw it (ReturnValuesOnConditionCheckFailure), so the caller can tell why
without a second read -- or a read permission. Expressions name attributes only through
record.py's constants, as `#<name>` placeholders.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from chalicelib.images.record import (
    OWNER_INDEX,
    PROCESSING_INDEX,
    DeliveryStatus,
    Hook,
    ImageRecord,
    ImageStatus,
    Item,
    Outcome,
    Quota,
    StageKey,
    WebhookState,
    image_of,
    quota_key,
    stage_key_id,
)

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


def dynamo_values(value: Any) -> Any:
    """Floats (a rendition's focus) as the Decimals boto3 requires, recursively; the
    decimal text of the float, so 0.3 is stored as 0.3."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: dynamo_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [dynamo_values(v) for v in value]
    return value


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _old_item(exc: ClientError) -> dict[str, Any]:
    """The item a failed condition saw, from raw attribute values (the resource layer
    converts only successful answers)."""
    raw = exc.response.get("Item") or {}
    return plain_values({k: _deserializer.deserialize(v) for k, v in raw.items()})


def _names(*attributes: str) -> dict[str, str]:
    """`#name` placeholders for attribute names (some are DynamoDB reserved words)."""
    return {f"#{a}": a for a in attributes}


def quota_entry(expires_epoch: int, image_id: str) -> str:
    """One pending upload in its owner's quota: it stops counting at expires_epoch."""
    return f"{expires_epoch}:{image_id}"


def entry_image_id(entry: str) -> str:
    return entry.split(":", 1)[-1]


def entry_expiry(entry: str) -> int:
    try:
        return int(entry.split(":", 1)[0])
    except ValueError:
        return 0


@dataclass(frozen=True)
class QuotaFull(Exception):
    """The owner has max_pending uploads waiting; the earliest stops counting in retry_after s."""

    retry_after: int


QUOTA_CEILING = 2  # entries of one owner's quota item, counting or not yet pruned: x max_pending
_W = f"#{Item.WEBHOOK}"  # the webhook map in expressions: "#webhook.#attempts" and so on


class RecordStore:
    def __init__(self, table: Any):
        self._table = table

    # --- reads --------------------------------------------------------------------------

    def get(self, image_id: str) -> ImageRecord | None:
        item = self._table.get_item(Key={Item.ID: image_id}, ConsistentRead=True).get("Item")
        return image_of(plain_values(item)) if item else None

    def list_owned(self, owner: str, limit: int,
                   after: Mapping[str, str] | None) -> tuple[list[ImageRecord], bool]:
        """The owner's images, newest first: up to `limit`, and whether more follow."""
        kwargs: dict[str, Any] = {
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": f"#{Item.OWNER} = :owner",
            "ExpressionAttributeNames": _names(Item.OWNER),
            "ExpressionAttributeValues": {":owner": owner},
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if after:
            kwargs["ExclusiveStartKey"] = {Item.ID: after["id"], Item.CREATED_AT: after["createdAt"],
                                           Item.OWNER: owner}
        items = [image_of(plain_values(i)) for i in self._table.query(**kwargs).get("Items", [])]
        records = [r for r in items if r is not None]
        return records[:limit], len(records) > limit

    def processing_since_before(self, before_iso: str, page_size: int = 100) -> list[str]:
        """Ids of every image processing since before `before_iso` (the sparse index), read
        page by page: all of them, however many, before any is changed."""
        query: dict[str, Any] = {
            "IndexName": PROCESSING_INDEX,
            "KeyConditionExpression":
                f"#{Item.ACTIVE_STATE} = :processing AND #{Item.PROCESSING_STARTED_AT} < :before",
            "ExpressionAttributeNames": _names(Item.ACTIVE_STATE, Item.PROCESSING_STARTED_AT),
            "ExpressionAttributeValues": {":processing": str(ImageStatus.PROCESSING), ":before": before_iso},
            "Limit": page_size,
        }
        ids: list[str] = []
        while True:
            response = self._table.query(**query)
            ids.extend(str(item[Item.ID]) for item in response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                return ids
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # --- writes -------------------------------------------------------------------------

    def _write(self, image_id: str, expression: str, condition: str, values: dict[str, Any],
               names: dict[str, str], returns: str = "ALL_NEW") -> tuple[bool, dict[str, Any]]:
        """One conditional update: (True, the new item; {} with returns="NONE"), or (False,
        the item as the condition saw it: {} when there is none)."""
        try:
            response = self._table.update_item(
                Key={Item.ID: image_id}, UpdateExpression=expression, ConditionExpression=condition,
                ExpressionAttributeValues=values, ExpressionAttributeNames=names, ReturnValues=returns,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False, _old_item(exc)
            raise
        return True, plain_values(response.get("Attributes", {}))

    def _transition(self, image_id: str, expression: str, condition: str, values: dict[str, Any],
                    names: dict[str, str]) -> tuple[ImageRecord | None, ImageRecord | None]:
        """(the new record, None) or (None, the record as it was: None when there is none)."""
        applied, item = self._write(image_id, expression, condition, values, names)
        return (image_of(item), None) if applied else (None, image_of(item))

    def create(self, record: ImageRecord) -> None:
        self._table.put_item(Item=dynamo_values(record.to_item()), ConditionExpression=f"attribute_not_exists(#{Item.ID})",
                             ExpressionAttributeNames=_names(Item.ID))

    def mark_deleting(self, image_id: str, owner: str, now_iso: str) -> ImageRecord | None:
        """The first step of a DELETE: the owner's image, marked so that no resize may claim
        it or write its outcome any more (a second mark keeps the first time); None when
        unknown or not theirs. The record stays until its objects are gone."""
        applied, item = self._write(
            image_id, f"SET #{Item.DELETING_AT} = if_not_exists(#{Item.DELETING_AT}, :now)",
            f"#{Item.OWNER} = :owner", {":now": now_iso, ":owner": owner}, _names(Item.DELETING_AT, Item.OWNER),
        )
        return image_of(item) if applied else None

    def delete_marked(self, image_id: str, owner: str) -> bool:
        """The last step of a DELETE, once the objects are gone: remove the marked record.
        False when it is already gone (a concurrent DELETE finished first)."""
        try:
            self._table.delete_item(
                Key={Item.ID: image_id},
                ConditionExpression=f"#{Item.OWNER} = :owner AND attribute_exists(#{Item.DELETING_AT})",
                ExpressionAttributeNames=_names(Item.OWNER, Item.DELETING_AT),
                ExpressionAttributeValues={":owner": owner},
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    # --- stage keys ---------------------------------------------------------------------

    def stage_key(self, name: str) -> bytes:
        """The stage's secret `name`: made (32 random bytes) and stored on first use. Two
        first uses at once agree: only one put succeeds, the other reads what it stored."""
        key = {Item.ID: stage_key_id(name)}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        if item is None:
            try:
                self._table.put_item(Item={**key, StageKey.SECRET: secrets.token_bytes(32)},
                                     ConditionExpression=f"attribute_not_exists(#{Item.ID})",
                                     ExpressionAttributeNames=_names(Item.ID))
            except ClientError as exc:
                if not _is_condition_failure(exc):
                    raise
            item = self._table.get_item(Key=key, ConsistentRead=True)["Item"]
        return bytes(item[StageKey.SECRET])

    # --- pending-upload quota -----------------------------------------------------------

    def create_within_quota(self, record: ImageRecord, max_pending: int, now_epoch: int,
                            arrived: Callable[[list[str]], set[str]] = lambda entries: set()) -> None:
        """Take a slot of the owner's quota, then put the new pending record.

        The quota item holds one entry per pending upload; entries leave when the upload's
        bytes arrive (complete, or the stream when its resize starts) and when they expire.
        A full item is pruned: of expired entries, and of those whose bytes `arrived` finds
        in the bucket (S3's event may still be on its way, or queued behind other resizes).
        If fewer than max_pending entries still count, the slot is taken even if the item
        filled again meanwhile -- the owner's other requests race for the freed slots with
        uploads that arrive as fast, and only the next prune can tell -- up to twice
        max_pending entries in all. Two conditional writes, not a transaction: a slot whose
        record was never written (a crash in between) expires with its upload URL.
        """
        owner, entry = record.owner, str(record.quota_entry)
        if not self._add_quota_entry(owner, entry, max_pending):
            remaining = self.prune_quota(owner, now_epoch, arrived)
            if len(remaining) >= max_pending:
                raise QuotaFull(retry_after=max(1, min(entry_expiry(e) for e in remaining) - now_epoch))
            if not self._add_quota_entry(owner, entry, QUOTA_CEILING * max_pending):
                raise QuotaFull(retry_after=1)
        try:
            self.create(record)
        except Exception:
            self.release_quota(owner, {entry})
            raise

    def _add_quota_entry(self, owner: str, entry: str, below: int) -> bool:
        """Add the entry if the owner's item holds fewer than `below`; whether it did."""
        try:
            self._table.update_item(
                Key={Item.ID: quota_key(owner)}, UpdateExpression=f"ADD #{Quota.PENDING} :entry",
                ConditionExpression=f"attribute_not_exists(#{Quota.PENDING}) OR size(#{Quota.PENDING}) < :below",
                ExpressionAttributeNames=_names(Quota.PENDING),
                ExpressionAttributeValues={":entry": {entry}, ":below": below},
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def prune_quota(self, owner: str, now_epoch: int,
                    arrived: Callable[[list[str]], set[str]] = lambda entries: set()) -> list[str]:
        """Drop the owner's expired entries and those `arrived` names; the entries still counting."""
        got = self._table.get_item(Key={Item.ID: quota_key(owner)}, ConsistentRead=True).get("Item") or {}
        entries = sorted(got.get(Quota.PENDING) or [])
        stale = {e for e in entries if entry_expiry(e) <= now_epoch}
        stale |= arrived([e for e in entries if e not in stale])
        if stale:
            self.release_quota(owner, stale)
        return [e for e in entries if e not in stale]

    def release_quota(self, owner: str, entries: set[str]) -> None:
        """Give pending-upload slots back; a quota item that is already gone stays gone."""
        try:
            self._table.update_item(
                Key={Item.ID: quota_key(owner)}, UpdateExpression=f"DELETE #{Quota.PENDING} :entries",
                ConditionExpression=f"attribute_exists(#{Item.ID})",
                ExpressionAttributeNames=_names(Quota.PENDING, Item.ID),
                ExpressionAttributeValues={":entries": set(entries)},
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise

    # --- resize lifecycle ---------------------------------------------------------------

    def start_processing(self, image_id: str, now_iso: str,
                         stale_before_iso: str) -> tuple[ImageRecord | None, ImageRecord | None]:
        """pending_upload -> processing, or take over a claim whose lease ran out.

        `activeState` puts the item in the sparse processing-started index the sweeper reads.
        """
        names = _names(Item.ID, Item.STATUS, Item.PROCESSING_STARTED_AT, Item.UPDATED_AT, Item.ACTIVE_STATE,
                       Item.PROCESSING_TRIES, Item.EXPIRES_AT_EPOCH, Item.DELETING_AT)
        return self._transition(
            image_id,
            f"SET #{Item.STATUS} = :processing, #{Item.PROCESSING_STARTED_AT} = :now, #{Item.UPDATED_AT} = :now, "
            f"#{Item.ACTIVE_STATE} = :processing ADD #{Item.PROCESSING_TRIES} :one REMOVE #{Item.EXPIRES_AT_EPOCH}",
            f"attribute_exists(#{Item.ID}) AND attribute_not_exists(#{Item.DELETING_AT}) AND "
            f"(#{Item.STATUS} = :pending OR (#{Item.STATUS} = :processing AND #{Item.PROCESSING_STARTED_AT} < :stale))",
            {":processing": str(ImageStatus.PROCESSING), ":pending": str(ImageStatus.PENDING_UPLOAD),
             ":now": now_iso, ":stale": stale_before_iso, ":one": 1},
            names,
        )

    def release_processing(self, image_id: str, claimed_at_iso: str, now_iso: str) -> bool:
        """processing -> pending_upload after an unexpected error, so a retry can claim it."""
        applied, _ = self._write(
            image_id,
            f"SET #{Item.STATUS} = :pending, #{Item.UPDATED_AT} = :now REMOVE #{Item.ACTIVE_STATE}",
            f"#{Item.STATUS} = :processing AND #{Item.PROCESSING_STARTED_AT} = :claimed",
            {":pending": str(ImageStatus.PENDING_UPLOAD), ":processing": str(ImageStatus.PROCESSING),
             ":claimed": claimed_at_iso, ":now": now_iso},
            _names(Item.STATUS, Item.UPDATED_AT, Item.ACTIVE_STATE, Item.PROCESSING_STARTED_AT),
            returns="NONE",
        )
        return applied

    def finish(self, image_id: str, claimed_at_iso: str, outcome: Outcome, finished_iso: str,
               webhook: WebhookState | None) -> tuple[ImageRecord | None, ImageRecord | None]:
        """processing -> completed|failed, only by the holder of the claim."""
        return self._finish(image_id, outcome, finished_iso, webhook,
                            f"#{Item.STATUS} = :processing AND #{Item.PROCESSING_STARTED_AT} = :claimed",
                            {":processing": str(ImageStatus.PROCESSING), ":claimed": claimed_at_iso},
                            (Item.PROCESSING_STARTED_AT,))

    def finish_unfinished(self, seen: ImageRecord, outcome: Outcome, finished_iso: str,
                          webhook: WebhookState | None) -> tuple[ImageRecord | None, ImageRecord | None]:
        """Give up on an image still as it was seen (same status, updatedAt and claim): for
        the dead-letter consumer and the sweeper, which act on images no worker finished.
        A worker's claim in between changes processingStartedAt, and the write is refused."""
        condition = f"#{Item.STATUS} = :seen_status AND #{Item.UPDATED_AT} = :seen_updated AND "
        values: dict[str, Any] = {":seen_status": str(seen.status), ":seen_updated": seen.updated_at}
        if seen.processing_started_at is None:
            condition += f"attribute_not_exists(#{Item.PROCESSING_STARTED_AT})"
        else:
            condition += f"#{Item.PROCESSING_STARTED_AT} = :seen_claim"
            values[":seen_claim"] = seen.processing_started_at
        return self._finish(seen.id, outcome, finished_iso, webhook, condition, values,
                            (Item.PROCESSING_STARTED_AT,))

    def _finish(self, image_id: str, outcome: Outcome, finished_iso: str, webhook: WebhookState | None,
                condition: str, values: dict[str, Any],
                condition_names: tuple[str, ...]) -> tuple[ImageRecord | None, ImageRecord | None]:
        fields = {**outcome.fields(), Item.UPDATED_AT: finished_iso, Item.COMPLETED_AT: finished_iso}
        if webhook is not None:
            fields[Item.WEBHOOK] = webhook.to_item()
        sets = ", ".join(f"#{name} = :{name}" for name in fields)
        names = _names(*fields, Item.ACTIVE_STATE, Item.STATUS, Item.UPDATED_AT, Item.DELETING_AT, *condition_names)
        values = {**values, **{f":{name}": value for name, value in fields.items()}}
        return self._transition(image_id, f"SET {sets} REMOVE #{Item.ACTIVE_STATE}",
                                f"attribute_not_exists(#{Item.DELETING_AT}) AND {condition}", values, names)

    # --- webhook delivery (the rules: webhooks/state.py) ---------------------------------

    def claim_attempt(self, image_id: str, webhook_id: str, round_: int, attempt: int,
                      now_iso: str, stale_before_iso: str) -> ImageRecord | None:
        """Fence one delivery attempt (webhook_state.claim); the record, or None if this
        attempt is not ours to send. The expression is kept small: it is on the webhook's
        latency path."""
        names = _names(Item.WEBHOOK, Hook.ID, Hook.ROUND, Hook.STATUS, Hook.ATTEMPTS, Hook.IN_FLIGHT,
                       Hook.LAST_ATTEMPT_AT)
        values = {":n": attempt, ":prev": attempt - 1, ":now": now_iso, ":wid": webhook_id,
                  ":round": round_, ":pending": str(DeliveryStatus.PENDING)}
        fence = (f"{_W}.#{Hook.ID} = :wid AND {_W}.#{Hook.ROUND} = :round "
                 f"AND {_W}.#{Hook.STATUS} = :pending")
        claimed, item = self._write(
            image_id,
            f"SET {_W}.#{Hook.ATTEMPTS} = :n, {_W}.#{Hook.IN_FLIGHT} = :n, {_W}.#{Hook.LAST_ATTEMPT_AT} = :now",
            f"{fence} AND {_W}.#{Hook.ATTEMPTS} = :prev",
            values, names,
        )
        if claimed:
            return image_of(item)
        # Rare path: the same attempt was claimed by a sender that died before recording
        # its result; take it over once its lease is over.
        webhook = item.get(Item.WEBHOOK) or {}
        if webhook.get(Hook.IN_FLIGHT) != attempt:
            return None
        del values[":prev"]
        taken, item = self._write(
            image_id,
            f"SET {_W}.#{Hook.LAST_ATTEMPT_AT} = :now",
            f"{fence} AND {_W}.#{Hook.ATTEMPTS} = :n AND {_W}.#{Hook.IN_FLIGHT} = :n "
            f"AND {_W}.#{Hook.LAST_ATTEMPT_AT} < :stale",
            {**values, ":stale": stale_before_iso}, names,
        )
        return image_of(item) if taken else None

    def record_attempt(self, image_id: str, webhook_id: str, round_: int, attempt: int,
                       fields: Mapping[str, Any], now_iso: str) -> bool:
        """Write an attempt's result (webhook_state.AfterAttempt.fields): the keys given
        are set, those given as None removed, and the claim released."""
        names = _names(Item.WEBHOOK, Item.UPDATED_AT, Hook.ID, Hook.ROUND, Hook.ATTEMPTS, Hook.IN_FLIGHT, *fields)
        values: dict[str, Any] = {":now": now_iso, ":wid": webhook_id, ":round": round_, ":n": attempt}
        sets, removes = [f"#{Item.UPDATED_AT} = :now"], [f"{_W}.#{Hook.IN_FLIGHT}"]
        for key, value in fields.items():
            if value is None:
                removes.append(f"{_W}.#{key}")
            else:
                sets.append(f"{_W}.#{key} = :{key}")
                values[f":{key}"] = value
        applied, _ = self._write(
            image_id,
            f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            f"{_W}.#{Hook.ID} = :wid AND {_W}.#{Hook.ROUND} = :round AND {_W}.#{Hook.ATTEMPTS} = :n",
            values, names, returns="NONE",
        )
        return applied

    def postpone_attempt(self, image_id: str, webhook_id: str, round_: int, attempt: int, due_iso: str) -> bool:
        """Show when a deferred attempt comes (nextAttemptAt), if it is still the next one."""
        applied, _ = self._write(
            image_id,
            f"SET {_W}.#{Hook.NEXT_ATTEMPT_AT} = :due",
            f"{_W}.#{Hook.ID} = :wid AND {_W}.#{Hook.ROUND} = :round AND {_W}.#{Hook.STATUS} = :pending "
            f"AND {_W}.#{Hook.ATTEMPTS} = :prev AND attribute_not_exists({_W}.#{Hook.IN_FLIGHT})",
            {":due": due_iso, ":wid": webhook_id, ":round": round_, ":pending": str(DeliveryStatus.PENDING),
             ":prev": attempt - 1},
            _names(Item.WEBHOOK, Hook.NEXT_ATTEMPT_AT, Hook.ID, Hook.ROUND, Hook.STATUS, Hook.ATTEMPTS, Hook.IN_FLIGHT),
            returns="NONE",
        )
        return applied

    def replay_failed_round(self, image_id: str, webhook_id: str, round_: int,
                            now_iso: str) -> ImageRecord | None:
        """A replayed dead letter: if round `round_` of this event still stands failed, a new
        round starts with its attempt 1 claimed, in one write (so two replays of one dead
        letter start one round). The record, or None when there is nothing to replay: the
        event was delivered since, a later round exists, or the image is gone. Not limited
        by MAX_REDELIVERIES: an operator's decision."""
        names = _names(Item.WEBHOOK, Item.UPDATED_AT, Hook.ID, Hook.STATUS, Hook.ROUND, Hook.ATTEMPTS,
                       Hook.IN_FLIGHT, Hook.LAST_ATTEMPT_AT, Hook.NEXT_ATTEMPT_AT, Hook.LAST_ERROR,
                       Hook.LAST_STATUS_CODE, Hook.DELIVERED_AT)
        replayed, _ = self._transition(
            image_id,
            f"SET {_W}.#{Hook.STATUS} = :pending, {_W}.#{Hook.ROUND} = {_W}.#{Hook.ROUND} + :one, "
            f"{_W}.#{Hook.ATTEMPTS} = :one, {_W}.#{Hook.IN_FLIGHT} = :one, {_W}.#{Hook.LAST_ATTEMPT_AT} = :now, "
            f"#{Item.UPDATED_AT} = :now "
            f"REMOVE {_W}.#{Hook.NEXT_ATTEMPT_AT}, {_W}.#{Hook.LAST_ERROR}, {_W}.#{Hook.LAST_STATUS_CODE}, "
            f"{_W}.#{Hook.DELIVERED_AT}",
            f"{_W}.#{Hook.ID} = :wid AND {_W}.#{Hook.ROUND} = :round AND {_W}.#{Hook.STATUS} = :failed",
            {":pending": str(DeliveryStatus.PENDING), ":failed": str(DeliveryStatus.FAILED), ":one": 1,
             ":now": now_iso, ":wid": webhook_id, ":round": round_},
            names,
        )
        return replayed

    def restart_delivery(self, image_id: str, now_iso: str,
                         max_round: int) -> tuple[WebhookState | None, ImageRecord | None]:
        """A new delivery round for redelivery, if the last one is over and rounds remain
        (webhook_state.redelivery_refusal): (the new state, None), or (None, the record as
        the refusal saw it)."""
        webhook = f"{_W}.#{Hook.ID}"
        names = _names(Item.WEBHOOK, Item.STATUS, Item.UPDATED_AT, Hook.ID, Hook.STATUS, Hook.ATTEMPTS,
                       Hook.ROUND, Hook.IN_FLIGHT, Hook.NEXT_ATTEMPT_AT, Hook.LAST_ERROR,
                       Hook.LAST_STATUS_CODE, Hook.DELIVERED_AT)
        record, seen = self._transition(
            image_id,
            f"SET {_W}.#{Hook.STATUS} = :pending, {_W}.#{Hook.ATTEMPTS} = :zero, #{Item.UPDATED_AT} = :now, "
            f"{_W}.#{Hook.ROUND} = {_W}.#{Hook.ROUND} + :one "
            f"REMOVE {_W}.#{Hook.IN_FLIGHT}, {_W}.#{Hook.NEXT_ATTEMPT_AT}, {_W}.#{Hook.LAST_ERROR}, "
            f"{_W}.#{Hook.LAST_STATUS_CODE}, {_W}.#{Hook.DELIVERED_AT}",
            f"attribute_exists({webhook}) AND #{Item.STATUS} IN (:completed, :failed) "
            f"AND {_W}.#{Hook.STATUS} <> :pending AND {_W}.#{Hook.ROUND} < :max_round",
            {":pending": str(DeliveryStatus.PENDING), ":zero": 0, ":one": 1, ":now": now_iso,
             ":completed": str(ImageStatus.COMPLETED), ":failed": str(ImageStatus.FAILED),
             ":max_round": max_round},
            names,
        )
        return (record.webhook if record else None), seen
