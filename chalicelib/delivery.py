"""Webhook delivery: at least once, one webhook-id per outcome, retried off the stream.

The stream handler only queues the first attempt; the queue consumer sends, records the
result on the item, and queues the next attempt on the stage's schedule. Every attempt
is fenced by a conditional write, so duplicated stream records or queue messages never
send an attempt twice.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from chalicelib import images, links, logs
from chalicelib.config import Settings
from chalicelib.queues import SQS_MAX_DELAY, DeliveryQueue, DeliveryTask
from chalicelib.records import ImageRecords
from chalicelib.storage import ImageStorage
from chalicelib.webhooks import AttemptResult, Sender, build_event, encode_event, sign, utc_from_epoch

log = logs.get("delivery")

SLOW_DOWN_CODES = (429, 502, 503, 504)
MAX_RETRY_AFTER = 24 * 3600
MAX_WAIT = 7 * 24 * 3600  # a task due later than this was not made by us


def next_delay(attempt: int, schedule: tuple[int, ...], result: AttemptResult) -> float | None:
    """Seconds before the attempt after `attempt`, or None when the schedule is spent."""
    if result.delivered or result.gone or attempt > len(schedule):
        return None
    delay = float(schedule[attempt - 1])
    if result.status_code in SLOW_DOWN_CODES and result.retry_after is not None:
        delay = max(delay, float(min(result.retry_after, MAX_RETRY_AFTER)))
    return delay


def describe(result: AttemptResult) -> dict[str, Any]:
    """What the item records of an attempt: the status code or a short error, never a body."""
    if result.status_code is not None:
        return {"lastStatusCode": result.status_code, "lastError": None}
    return {"lastStatusCode": None, "lastError": result.error or "unknown error"}


@dataclass
class WebhookDelivery:
    records: ImageRecords
    queue: DeliveryQueue
    sender: Sender
    storage: ImageStorage
    settings: Settings
    clock: Callable[[], float] = time.time

    def _iso(self, epoch: float) -> str:
        return images.iso(utc_from_epoch(epoch))

    @property
    def lease(self) -> float:
        """How long a claimed attempt may stay unrecorded before another sender takes it."""
        return self.settings.webhook_connect_timeout + self.settings.webhook_read_timeout + 30

    def on_item_changed(self, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
        """Queue the first attempt when an item enters completed/failed with a webhook.

        If the resize already claimed it (and is sending it now), the queued copy waits out
        the claim's lease: it finds the attempt recorded and does nothing, or takes over
        from a resize that died before recording it.
        """
        status = images.entered_final_status(old, new)
        state = (new or {}).get("webhook")
        if status is None or not isinstance(state, Mapping):
            return False
        try:
            attempts = int(state.get("attempts", 0))
            claimed = attempts > 0 and state.get("inFlight") == attempts
            task = DeliveryTask(
                image_id=str(new["id"]),  # type: ignore[index]
                webhook_id=str(state["id"]),
                round=int(state.get("round", 1)),
                attempt=attempts if claimed else attempts + 1,
            )
        except (KeyError, TypeError, ValueError):
            # A record we cannot read would block the shard if we raised: skip it.
            logs.event(log, "webhook.malformed_state", level=logging.WARNING, outcome="skipped")
            return False
        # an SQS failure raises: the batch is retried, idempotently
        self.queue.enqueue(task, delay=self.lease + 1 if claimed else 0)
        return True

    def send_claimed(self, item: Mapping[str, Any]) -> str:
        """Send the attempt the outcome's write claimed (the resize's own first attempt)."""
        state = item["webhook"]
        task = DeliveryTask(str(item["id"]), str(state["id"]), int(state.get("round", 1)), int(state["attempts"]))
        now = self.clock()
        return self._record(task, self._send(item, state), started=now)

    def handle(self, task: DeliveryTask) -> str:
        """Run one queued task; returns what happened (for logs and tests)."""
        now = self.clock()
        if task.not_before > now + MAX_WAIT:
            logs.event(log, "webhook.stale_task", level=logging.WARNING, webhookId=task.webhook_id,
                       outcome="dropped", dueIn=round(task.not_before - now))
            return "stale"
        if task.not_before > now:
            self.queue.enqueue(task, delay=task.not_before - now)
            return "waiting"
        item = self.records.claim_attempt(
            task.image_id, task.webhook_id, task.round, task.attempt,
            self._iso(now), self._iso(now - self.lease),
        )
        if item is None:
            return "skipped"  # duplicate message, superseded round, or already delivered
        result = self._send(item, item["webhook"])
        return self._record(task, result, started=now)

    def _send(self, item: Mapping[str, Any], state: Mapping[str, Any]) -> AttemptResult:
        ttl = self.settings.download_url_ttl
        event = build_event(
            item, links.original_url(item, self.storage, ttl), links.thumbnail_urls(item, self.storage, ttl)
        )
        body = encode_event(event)
        headers = sign(self.settings.webhook_secret, state["id"], body, utc_from_epoch(self.clock()))
        return self.sender.post(state["url"], body, headers)

    def _record(self, task: DeliveryTask, result: AttemptResult, started: float) -> str:
        now = self.clock()
        outcome: dict[str, Any] = describe(result)
        delay = next_delay(task.attempt, self.settings.webhook_retry_schedule, result)
        if result.delivered:
            outcome.update(status="delivered", deliveredAt=self._iso(now))
            verdict = "delivered"
        elif delay is not None:
            due = now + delay
            outcome.update(status="pending", nextAttemptAt=self._iso(due))
            # Queue first: if recording fails after this, the next attempt still comes.
            nxt = DeliveryTask(task.image_id, task.webhook_id, task.round, task.attempt + 1,
                               not_before=due if delay > SQS_MAX_DELAY else 0.0)
            self.queue.enqueue(nxt, delay=delay)
            verdict = "retry"
        else:
            outcome.update(status="failed")
            # The dead-letter queue holds delivery tasks only, in one shape, whether SQS
            # moved them there or the schedule ran out: any of them can be replayed as is.
            self.queue.dead_letter(task, {k: v for k, v in outcome.items() if v is not None})
            verdict = "failed"
        if not self.records.record_attempt(
            task.image_id, task.webhook_id, task.round, task.attempt, outcome, self._iso(now)
        ):
            logs.event(log, "webhook.record_refused", level=logging.WARNING, imageId=task.image_id,
                       webhookId=task.webhook_id, attempt=task.attempt, outcome=verdict)
        logs.event(log, "webhook.attempt", imageId=task.image_id, webhookId=task.webhook_id,
                   round=task.round, attempt=task.attempt, outcome=verdict,
                   statusCode=result.status_code, error=result.error,
                   durationMs=round((now - started) * 1000))
        return verdict

    def redeliver(self, image_id: str, max_round: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Start a new round with the same webhook-id: (its state, {}), or (None, the item
        as the refusal saw it) when a round is in flight, rounds are spent or it is gone."""
        state, seen = self.records.restart_delivery(image_id, self._iso(self.clock()), max_round)
        if state is not None:
            self.queue.enqueue(DeliveryTask(image_id, state["id"], int(state["round"]), 1))
        return state, seen
