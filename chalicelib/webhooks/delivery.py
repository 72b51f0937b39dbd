"""Webhook delivery: at least once, one webhook-id per outcome, retried off the stream.

The resize sends the first attempt itself (claimed in its outcome's write); the stream
handler queues a copy of it that waits out the claim's lease, and the queue consumer sends
every later attempt, records its result and queues the next on the stage's schedule. A
new round (a redelivery) is only written by the API: the stream record of that write
queues its first attempt, so no failure between the two can leave a round pending with
nothing queued. The decisions are state.py's; every attempt is fenced by a
conditional write, so duplicated stream records or queue messages never send an attempt
twice.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from chalicelib.images import record
from chalicelib.images.record import DeliveryStatus, ImageRecord, WebhookState
from chalicelib.images.store import RecordStore
from chalicelib.platform import logs
from chalicelib.platform.config import Settings
from chalicelib.platform.storage import ImageStorage
from chalicelib.webhooks import state as webhook_state
from chalicelib.webhooks.budget import HostBudget
from chalicelib.webhooks.events import build_event, encode_event, sign, utc_from_epoch
from chalicelib.webhooks.queue import SQS_MAX_DELAY, DeliveryQueue, DeliveryTask
from chalicelib.webhooks.secrets import WebhookSecrets
from chalicelib.webhooks.sender import AttemptResult, Sender
from chalicelib.webhooks.state import Claim

log = logs.get("delivery")

MAX_WAIT = 7 * 24 * 3600  # a task due later than this was not made by us


@dataclass
class WebhookDelivery:
    records: RecordStore
    queue: DeliveryQueue
    sender: Sender
    storage: ImageStorage
    settings: Settings
    secrets: WebhookSecrets
    budget: HostBudget
    clock: Callable[[], float] = time.time

    def _iso(self, epoch: float) -> str:
        return record.iso(utc_from_epoch(epoch))

    @property
    def lease(self) -> float:
        """How long a claimed attempt may stay unrecorded before another sender takes it."""
        return self.settings.webhook_connect_timeout + self.settings.webhook_read_timeout + 30

    def on_changes(self, changes: list[tuple[ImageRecord | None, ImageRecord | None]]) -> int:
        """A batch of stream records: queue what on_item_changed would, except the copies of
        attempts that later records of the same batch show already recorded."""
        queued = 0
        for n, (old, new) in enumerate(changes):
            later = [after for _, after in changes[n + 1:] if after is not None and new is not None
                     and after.id == new.id]
            queued += self.on_item_changed(old, new, later=later)
        return queued

    def on_item_changed(self, old: ImageRecord | None, new: ImageRecord | None,
                        later: Sequence[ImageRecord] = ()) -> bool:
        """Queue the first attempt of a round: when an item enters completed/failed with a
        webhook, or a new round starts (webhook_state.queued_first_attempt: a claimed one
        is a copy that waits out its claim, unless a later record shows it recorded)."""
        if new is None or new.webhook is None:
            return False
        if (record.entered_final_status(old, new) is None
                and not webhook_state.round_started(old.webhook if old else None, new.webhook)):
            return False
        attempt, wait = webhook_state.queued_first_attempt(new.webhook)
        if wait and any(webhook_state.recorded(after.webhook, new.webhook.id, new.webhook.round, attempt)
                        for after in later):
            return False
        task = DeliveryTask(new.id, new.webhook.id, new.webhook.round, attempt)
        # an SQS failure raises: the batch is retried, idempotently
        self.queue.enqueue(task, delay=self.lease + 1 if wait else 0)
        return True

    def signing_secrets(self, owner: str) -> tuple[str, ...]:
        """The owner's secrets valid now: read for every attempt, so each is signed with
        the secrets as they are when it is sent (made on first use)."""
        return self.secrets.signing(owner)

    def send_claimed(self, claimed: ImageRecord, secrets: tuple[str, ...] | None = None) -> str:
        """Send the attempt the outcome's write claimed (the resize's own first attempt),
        signed with `secrets` when the caller read them already (while the outcome was written)."""
        state = claimed.webhook
        assert state is not None and state.claimed
        task = DeliveryTask(claimed.id, state.id, state.round, state.attempts)
        now = self.clock()
        return self._record(task, self._send(claimed, secrets), started=now)

    def handle(self, task: DeliveryTask) -> str:
        """Run one queued task; returns what happened (for logs and tests).

        The record is read first: a task whose attempt is not to be sent (a duplicate, a
        superseded round, a delivery that is over, the stream's copy of an attempt that
        was made) ends there, without a write. An attempt to be sent takes its place in
        the owner's hourly budget for the host (budget.py) -- or waits for the
        next hour -- and is then claimed by a conditional write, which still decides."""
        now = self.clock()
        if task.not_before > now + MAX_WAIT:
            logs.event(log, "webhook.stale_task", level=logging.WARNING, webhookId=task.webhook_id,
                       outcome="dropped", dueIn=round(task.not_before - now))
            return "stale"
        if task.not_before > now:
            self.queue.enqueue(task, delay=task.not_before - now)
            return "waiting"
        seen = self.records.get(task.image_id)
        if task.dead_lettered:
            return self._replay(task, seen, now)
        stale_before = self._iso(now - self.lease)
        if (seen is None or seen.webhook is None or webhook_state.claim(
                seen.webhook, task.webhook_id, task.round, task.attempt, stale_before) == Claim.REFUSED):
            return "skipped"  # duplicate message, superseded round, or already delivered
        next_hour = self.budget.take(seen.owner, seen.webhook.url, now)
        if next_hour is not None:
            return self._defer(task, next_hour, now)
        claimed = self.records.claim_attempt(
            task.image_id, task.webhook_id, task.round, task.attempt, self._iso(now), stale_before,
        )
        if claimed is None:
            return "skipped"  # another sender claimed it since the read
        return self._record(task, self._send(claimed), started=now)

    def _defer(self, task: DeliveryTask, until: float, now: float) -> str:
        """Over the owner's hourly budget for the host: the same task comes back when the
        next hour begins; nothing is claimed or recorded, so nothing counts as a failure."""
        self.queue.enqueue(replace(task, not_before=until), delay=until - now)
        if not task.dead_lettered:  # GET /images/{id} shows when it comes
            self.records.postpone_attempt(task.image_id, task.webhook_id, task.round, task.attempt,
                                          self._iso(until))
        logs.event(log, "webhook.deferred", level=logging.WARNING, imageId=task.image_id,
                   webhookId=task.webhook_id, round=task.round, attempt=task.attempt, outcome="deferred",
                   dueIn=round(until - now), perHour=self.budget.per_hour)
        return "deferred"

    def _replay(self, task: DeliveryTask, seen: ImageRecord | None, now: float) -> str:
        """A dead-lettered task replayed by an operator: a new round of its event whose
        attempt 1 is claimed by the same write and sent at once (the stream's record of
        that write queues the usual safety copy). It counts in the owner's budget too."""
        claimed = None
        if seen is not None and seen.webhook is not None and webhook_state.replayable(
                seen.webhook, task.webhook_id, task.round):
            next_hour = self.budget.take(seen.owner, seen.webhook.url, now)
            if next_hour is not None:
                return self._defer(task, next_hour, now)
            claimed = self.records.replay_failed_round(task.image_id, task.webhook_id, task.round, self._iso(now))
        if claimed is None or claimed.webhook is None:
            logs.event(log, "webhook.replay_skipped", imageId=task.image_id, webhookId=task.webhook_id,
                       round=task.round, outcome="skipped")
            return "skipped"  # delivered since, a later round, or the image is gone
        replayed = DeliveryTask(task.image_id, task.webhook_id, claimed.webhook.round, 1)
        logs.event(log, "webhook.replayed", imageId=task.image_id, webhookId=task.webhook_id,
                   round=replayed.round, outcome="replayed")
        return self._record(replayed, self._send(claimed), started=now)

    def _send(self, claimed: ImageRecord, secrets: tuple[str, ...] | None = None) -> AttemptResult:
        state = claimed.webhook
        assert state is not None
        secrets = secrets or self.signing_secrets(claimed.owner)
        body = encode_event(build_event(claimed, self.storage, self.settings.download_url_ttl))
        headers = sign(secrets, state.id, body, utc_from_epoch(self.clock()))
        return self.sender.post(state.url, body, headers)

    def _record(self, task: DeliveryTask, result: AttemptResult, started: float) -> str:
        now = self.clock()
        step = webhook_state.after_attempt(task.attempt, self.settings.webhook_retry_schedule, result)
        due = now + step.retry_in if step.retry_in is not None else None
        fields = step.fields(result, self._iso(now), self._iso(due) if due is not None else None)
        if step.retry_in is not None and due is not None:
            # Queue first: if recording fails after this, the next attempt still comes.
            nxt = DeliveryTask(task.image_id, task.webhook_id, task.round, task.attempt + 1,
                               not_before=due if step.retry_in > SQS_MAX_DELAY else 0.0)
            self.queue.enqueue(nxt, delay=step.retry_in)
        if step.dead_letter:
            # The dead-letter queue holds delivery tasks only, in one shape, whether SQS
            # moved them there or the schedule ran out: any of them can be replayed as is.
            self.queue.dead_letter(task, {k: v for k, v in fields.items() if v is not None})
        verdict = {DeliveryStatus.DELIVERED: "delivered", DeliveryStatus.PENDING: "retry",
                   DeliveryStatus.FAILED: "failed"}[step.status]
        if not self.records.record_attempt(task.image_id, task.webhook_id, task.round, task.attempt,
                                           fields, self._iso(now)):
            logs.event(log, "webhook.record_refused", level=logging.WARNING, imageId=task.image_id,
                       webhookId=task.webhook_id, attempt=task.attempt, outcome=verdict)
        logs.event(log, "webhook.attempt", imageId=task.image_id, webhookId=task.webhook_id,
                   round=task.round, attempt=task.attempt, outcome=verdict,
                   statusCode=result.status_code, error=result.error,
                   durationMs=round((now - started) * 1000))
        return verdict

    def redeliver(self, image_id: str, max_round: int) -> tuple[WebhookState | None, ImageRecord | None]:
        """Start a new round with the same webhook-id: (its state, None), or (None, the
        record as the refusal saw it) when a round is in flight, rounds are spent or it is
        gone. Nothing is queued here: the stream record of this one write queues the
        round's first attempt (on_item_changed), so the round is never left unqueued."""
        return self.records.restart_delivery(image_id, self._iso(self.clock()), max_round)
