"""The webhook delivery state machine: its decisions without AWS, and the conditional
writes of images/store.py held to the same rules (one table of cases, run against both)."""
from __future__ import annotations

import boto3
import pytest

from chalicelib.images.record import DeliveryStatus, ImageRecord, ImageStatus, WebhookState
from chalicelib.images.store import RecordStore
from chalicelib.webhooks import state as webhook_state
from chalicelib.webhooks.sender import AttemptResult
from chalicelib.webhooks.state import Claim, Refusal

WID = "msg_i_completed"
EARLY, STALE_BEFORE, LATE = "2026-01-01T00:00:00.000Z", "2026-01-01T00:01:00.000Z", "2026-01-01T00:02:00.000Z"


def state(**changes) -> WebhookState:
    values = {"id": WID, "url": "https://h", "status": DeliveryStatus.PENDING, "round": 1, "attempts": 0}
    values.update(changes)
    return WebhookState(**values)


def test_the_outcome_write_can_claim_attempt_one_for_the_resize():
    plain = webhook_state.initial("i", "https://h", "completed")
    assert (plain.id, plain.attempts, plain.claimed) == (WID, 0, False)
    claimed = webhook_state.initial("i", "https://h", "completed", claimed_at=EARLY)
    assert (claimed.attempts, claimed.in_flight, claimed.last_attempt_at, claimed.claimed) == (1, 1, EARLY, True)


def test_the_stream_queues_attempt_one_or_a_copy_that_waits_out_the_claim():
    assert webhook_state.queued_first_attempt(state()) == (1, False)
    assert webhook_state.queued_first_attempt(state(attempts=1, in_flight=1)) == (1, True)
    assert webhook_state.queued_first_attempt(state(attempts=1)) == (2, False)


@pytest.mark.parametrize("old, new, started", [
    (state(status=DeliveryStatus.DELIVERED, attempts=1), state(round=2), True),  # a redelivery
    (state(status=DeliveryStatus.FAILED, attempts=8), state(round=2, attempts=1, in_flight=1), True),  # a replay
    (state(attempts=1), state(attempts=2), False),  # the same round goes on
    (state(round=2), state(round=2, status=DeliveryStatus.DELIVERED, attempts=1), False),
    (None, state(), False),  # a first delivery: entering the final status queues it
    (state(), None, False),
    (state(id="msg_i_failed", status=DeliveryStatus.FAILED), state(round=2), False),  # another event
])
def test_a_new_round_is_seen_in_the_stream_record_of_its_write(old, new, started):
    assert webhook_state.round_started(old, new) is started


CLAIMS = [
    # (state before, round, attempt, expected)
    pytest.param(state(), 1, 1, Claim.NEW, id="first-attempt"),
    pytest.param(state(attempts=1), 1, 2, Claim.NEW, id="next-attempt"),
    pytest.param(state(attempts=1), 1, 1, Claim.REFUSED, id="duplicate-of-a-recorded-attempt"),
    pytest.param(state(attempts=1, in_flight=1, last_attempt_at=LATE), 1, 1, Claim.REFUSED, id="live-claim"),
    pytest.param(state(attempts=1, in_flight=1, last_attempt_at=EARLY), 1, 1, Claim.TAKEOVER, id="dead-claimer"),
    pytest.param(state(attempts=0), 1, 2, Claim.REFUSED, id="attempt-out-of-order"),
    pytest.param(state(round=2), 1, 1, Claim.REFUSED, id="superseded-round"),
    pytest.param(state(status=DeliveryStatus.DELIVERED, attempts=1), 1, 2, Claim.REFUSED, id="delivered"),
    pytest.param(state(status=DeliveryStatus.FAILED, attempts=3), 1, 4, Claim.REFUSED, id="failed"),
    pytest.param(state(id="msg_i_failed"), 1, 1, Claim.REFUSED, id="another-outcome"),
    pytest.param(None, 1, 1, Claim.REFUSED, id="no-webhook"),
]


@pytest.mark.parametrize("before, round_, attempt, expected", CLAIMS)
def test_who_may_send_an_attempt(before, round_, attempt, expected):
    assert webhook_state.claim(before, WID, round_, attempt, STALE_BEFORE) == expected


@pytest.mark.parametrize("before, round_, attempt, expected", CLAIMS)
def test_the_stores_conditional_claim_follows_the_same_rules(aws, before, round_, attempt, expected):
    table = boto3.resource("dynamodb").Table(aws.table)
    image = ImageRecord("i", ImageStatus.COMPLETED, owner="o", webhook=before)
    table.put_item(Item=image.to_item())
    claimed = RecordStore(table).claim_attempt("i", WID, round_, attempt, LATE, STALE_BEFORE)
    assert (claimed is not None) == (expected != Claim.REFUSED)
    if claimed is not None:
        assert claimed.webhook.in_flight == attempt and claimed.webhook.last_attempt_at == LATE


@pytest.mark.parametrize("result, attempt, status, retry_in, dead_letter", [
    (AttemptResult(status_code=204), 1, DeliveryStatus.DELIVERED, None, False),
    (AttemptResult(status_code=500), 1, DeliveryStatus.PENDING, 5.0, False),
    (AttemptResult(error="timeout"), 2, DeliveryStatus.PENDING, 300.0, False),
    (AttemptResult(status_code=429, retry_after=900), 1, DeliveryStatus.PENDING, 900.0, False),
    (AttemptResult(status_code=500), 3, DeliveryStatus.FAILED, None, True),  # schedule spent
    (AttemptResult(status_code=410), 1, DeliveryStatus.FAILED, None, True),  # gone: never again
    (AttemptResult(error="refused: private address"), 1, DeliveryStatus.FAILED, None, True),
])
def test_what_an_attempts_result_makes_of_the_delivery(result, attempt, status, retry_in, dead_letter):
    step = webhook_state.after_attempt(attempt, (5, 300), result)
    assert (step.status, step.retry_in, step.dead_letter) == (status, retry_in, dead_letter)
    fields = step.fields(result, LATE, EARLY if retry_in else None)
    assert fields["status"] == str(status)
    assert (fields["lastStatusCode"] is None) == (result.status_code is None)
    assert (fields["lastError"] is None) == (result.status_code is not None)  # a code or an error, never a body
    assert (fields["nextAttemptAt"] is not None) == (status == DeliveryStatus.PENDING)
    assert (fields["deliveredAt"] is not None) == (status == DeliveryStatus.DELIVERED)


def image(**changes) -> ImageRecord:
    values = {"id": "i", "status": ImageStatus.COMPLETED, "owner": "o", "webhook_url": "https://h",
              "webhook": state(status=DeliveryStatus.DELIVERED, attempts=1)}
    values.update(changes)
    return ImageRecord(**values)


@pytest.mark.parametrize("record, expected", [
    (image(), None),
    (None, Refusal.GONE),
    (image(owner="someone else"), Refusal.GONE),
    (image(webhook_url=None, webhook=None), Refusal.NO_WEBHOOK),
    (image(status=ImageStatus.PROCESSING, webhook=None), Refusal.NOT_FINAL),
    (image(webhook=state()), Refusal.IN_FLIGHT),
    (image(webhook=state(status=DeliveryStatus.FAILED, round=3, attempts=4)), Refusal.ROUNDS_SPENT),
    (image(webhook=state(status=DeliveryStatus.FAILED, round=2, attempts=4)), None),
])
def test_when_a_redelivery_may_start(record, expected):
    assert webhook_state.redelivery_refusal(record, "o", max_round=3) == expected
