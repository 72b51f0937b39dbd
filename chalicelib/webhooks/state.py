"""The webhook delivery state machine, as pure functions (docs/webhooks.md).

The item's `webhook` map (record.WebhookState) goes:

    pending --attempt n claimed--> pending (inFlight = n) --result recorded--> pending
        (next attempt scheduled) | delivered | failed
    delivered | failed --redelivery--> pending, round + 1, attempts 0

Each decision is made here; images/store.py turns the two that must be atomic (claiming
an attempt, starting a round) into conditional writes that enforce the same rules, and
delivery.py runs the steps. An attempt is claimed at most once, unless its claimer
died: then, once the claim's lease is over, one other sender may take it over.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chalicelib.images.record import DeliveryStatus, Hook, ImageRecord, WebhookState, webhook_id
from chalicelib.webhooks.sender import AttemptResult

SLOW_DOWN_CODES = (429, 502, 503, 504)  # receivers that ask us to wait: Retry-After is honoured
MAX_RETRY_AFTER = 24 * 3600


def initial(image_id: str, url: str, status: str, claimed_at: str | None = None) -> WebhookState:
    """The state written with the outcome. With `claimed_at`, attempt 1 is claimed in that
    same write by the resize, which sends it at once: no second write on the latency path."""
    state = WebhookState(id=webhook_id(image_id, status), url=url)
    if claimed_at is None:
        return state
    return WebhookState(id=state.id, url=url, attempts=1, in_flight=1, last_attempt_at=claimed_at)


def queued_first_attempt(state: WebhookState) -> tuple[int, bool]:
    """What the stream queues when an item enters its final status: (attempt, wait out the
    lease). An attempt the resize claimed is queued again to wait out its lease -- then it
    is found recorded (nothing to do) or taken over from a resize that died."""
    if state.claimed:
        return state.attempts, True
    return state.attempts + 1, False


def round_started(old: WebhookState | None, new: WebhookState | None) -> bool:
    """Whether a stream record shows a new delivery round (a redelivery, a dead-letter
    replay): the record of that write is what queues the round's first attempt."""
    return (old is not None and new is not None and new.id == old.id and new.round > old.round
            and new.status == DeliveryStatus.PENDING)


def recorded(state: WebhookState | None, webhook_id_: str, round_: int, attempt: int) -> bool:
    """Whether `state` shows attempt `attempt` of that round already sent and recorded."""
    return (state is not None and state.id == webhook_id_ and state.round == round_
            and state.attempts >= attempt and state.in_flight is None)


def replayable(state: WebhookState | None, webhook_id_: str, round_: int) -> bool:
    """Whether a dead letter of round `round_` may start a new round: that round still
    stands failed (store.RecordStore.replay_failed_round's condition is the same rule)."""
    return (state is not None and state.id == webhook_id_ and state.round == round_
            and state.status == DeliveryStatus.FAILED)


class Claim(StrEnum):
    NEW = "new"  # the attempt is due and nobody claimed it
    TAKEOVER = "takeover"  # its claimer died without recording it, and the lease is over
    REFUSED = "refused"  # a duplicate, a superseded round, a finished delivery, a live claim


def claim(state: WebhookState | None, webhook_id_: str, round_: int, attempt: int,
          stale_before: str) -> Claim:
    """May attempt `attempt` of round `round_` be sent now? (store.RecordStore.claim_attempt
    writes exactly this with conditions.)"""
    if (state is None or state.id != webhook_id_ or state.round != round_
            or state.status != DeliveryStatus.PENDING):
        return Claim.REFUSED
    if state.attempts == attempt - 1:
        return Claim.NEW
    if (state.attempts == attempt and state.in_flight == attempt
            and (state.last_attempt_at or "") < stale_before):
        return Claim.TAKEOVER
    return Claim.REFUSED


def next_delay(attempt: int, schedule: tuple[int, ...], result: AttemptResult) -> float | None:
    """Seconds before the attempt after `attempt`, or None when the schedule is spent."""
    if result.delivered or result.gone or attempt > len(schedule):
        return None
    delay = float(schedule[attempt - 1])
    if result.status_code in SLOW_DOWN_CODES and result.retry_after is not None:
        delay = max(delay, float(min(result.retry_after, MAX_RETRY_AFTER)))
    return delay


@dataclass(frozen=True)
class AfterAttempt:
    """What an attempt's result makes of the state, and what comes next."""

    status: DeliveryStatus
    retry_in: float | None  # seconds before the next attempt (pending), else None
    dead_letter: bool  # the delivery ended failed: keep the task for an operator

    def fields(self, result: AttemptResult, now_iso: str, due_iso: str | None) -> dict[str, Any]:
        """The webhook keys the result sets (None: removed): a status code or a short
        error, never the receiver's body."""
        return {
            Hook.STATUS: str(self.status),
            Hook.LAST_STATUS_CODE: result.status_code,
            Hook.LAST_ERROR: None if result.status_code is not None else (result.error or "unknown error"),
            Hook.NEXT_ATTEMPT_AT: due_iso if self.status == DeliveryStatus.PENDING else None,
            Hook.DELIVERED_AT: now_iso if self.status == DeliveryStatus.DELIVERED else None,
        }


def after_attempt(attempt: int, schedule: tuple[int, ...], result: AttemptResult) -> AfterAttempt:
    if result.delivered:
        return AfterAttempt(DeliveryStatus.DELIVERED, None, False)
    delay = next_delay(attempt, schedule, result)
    if delay is not None:
        return AfterAttempt(DeliveryStatus.PENDING, delay, False)
    return AfterAttempt(DeliveryStatus.FAILED, None, True)


class Refusal(StrEnum):
    GONE = "gone"  # no such image (deleted meanwhile) or not the caller's
    NO_WEBHOOK = "no_webhook"
    NOT_FINAL = "not_final"
    IN_FLIGHT = "in_flight"  # one round at a time
    ROUNDS_SPENT = "rounds_spent"


def redelivery_refusal(record: ImageRecord | None, owner: str, max_round: int) -> Refusal | None:
    """Why a new delivery round may not start now, or None if it may (store.RecordStore.
    restart_delivery's condition is the same rule)."""
    if record is None or record.owner != owner:
        return Refusal.GONE
    if not record.webhook_url:
        return Refusal.NO_WEBHOOK
    if not record.is_final or record.webhook is None:
        return Refusal.NOT_FINAL
    if record.webhook.status == DeliveryStatus.PENDING:
        return Refusal.IN_FLIGHT
    if record.webhook.round >= max_round:
        return Refusal.ROUNDS_SPENT
    return None
