"""The stream handler and the delivery handler, with moto and a receiver on 127.0.0.1."""
from __future__ import annotations

import copy
import json
import time
from datetime import datetime
from pathlib import Path

import boto3
import pytest
from standardwebhooks import Webhook

from chalicelib.webhooks.queue import DeliveryTask
from tests.conftest import queue_messages, secret_of, sqs_event, sub_of
from tests.handlers.test_ownership import stream_records
from thumbgen.receiver import Reply

EVENTS = Path(__file__).resolve().parent.parent / "events"
IMAGE_ID = "11111111-1111-4111-8111-111111111111"


def stream_event(url: str) -> dict:
    event = json.loads((EVENTS / "stream_completed.json").read_text())
    text = json.dumps(event).replace("http://127.0.0.1:9/hook", url)
    return json.loads(text)


def store_new_image(aws, event: dict, owner: str = "someone") -> None:
    stored = {**event["Records"][0]["dynamodb"]["NewImage"], "owner": {"S": owner}}
    boto3.client("dynamodb").put_item(TableName=aws.table, Item=stored)


def item(aws) -> dict:
    return boto3.resource("dynamodb").Table(aws.table).get_item(Key={"id": IMAGE_ID})["Item"]


def deliver_queued(client, aws) -> list[dict]:
    """Play SQS -> Lambda: hand every queued task to the delivery handler once."""
    messages = queue_messages(aws)
    for message in messages:
        client.lambda_.invoke("deliver_webhook", sqs_event([message["Body"]]))
    return messages


def test_entering_completed_queues_one_signed_delivery(local_client, aws, receiver):
    event = stream_event(receiver.url())
    store_new_image(aws, event)
    local_client.lambda_.invoke("on_image_change", event)
    assert len(deliver_queued(local_client, aws)) == 1
    [got] = receiver.received()
    payload = Webhook(secret_of(aws, "someone")).verify(got.body, got.headers)  # the owner's own secret
    assert got.headers["webhook-id"] == f"msg_{IMAGE_ID}_completed"
    assert payload["type"] == "thumbnails.generated"
    assert payload["data"]["id"] == IMAGE_ID and payload["data"]["status"] == "completed"
    assert [t["size"] for t in payload["data"]["thumbnails"]] == [
        {"width": 400, "height": 300}, {"width": 160, "height": 120}, {"width": 120, "height": 120}]
    assert payload["data"]["metadata"] == {"fileSize": 2048, "type": "image/jpeg", "filename": "cat.jpg"}
    state = item(aws)["webhook"]
    assert state["status"] == "delivered" and state["attempts"] == 1 and state["lastStatusCode"] == 204


def test_a_duplicated_stream_record_sends_one_webhook(local_client, aws, receiver):
    event = stream_event(receiver.url())
    store_new_image(aws, event)
    local_client.lambda_.invoke("on_image_change", event)
    local_client.lambda_.invoke("on_image_change", copy.deepcopy(event))
    assert len(deliver_queued(local_client, aws)) == 2
    assert len(receiver.received()) == 1


def test_records_that_do_not_enter_a_final_status_send_nothing(local_client, aws, receiver):
    event = stream_event(receiver.url())
    record = event["Records"][0]["dynamodb"]
    record["OldImage"] = copy.deepcopy(record["NewImage"])  # bookkeeping write on a final item
    local_client.lambda_.invoke("on_image_change", event)
    insert = stream_event(receiver.url())
    insert["Records"][0]["eventName"] = "INSERT"
    insert["Records"][0]["dynamodb"]["NewImage"]["status"] = {"S": "pending_upload"}
    del insert["Records"][0]["dynamodb"]["OldImage"]
    local_client.lambda_.invoke("on_image_change", insert)
    assert queue_messages(aws) == []


def test_malformed_stream_records_are_skipped_not_raised(local_client, aws):
    event = stream_event("http://127.0.0.1:9/hook")
    event["Records"][0]["dynamodb"]["NewImage"] = {"id": {"X": "nonsense"}}
    local_client.lambda_.invoke("on_image_change", event)
    assert queue_messages(aws) == []


def test_a_final_record_with_a_garbled_webhook_state_is_skipped(local_client, aws):
    event = stream_event("http://127.0.0.1:9/hook")
    event["Records"][0]["dynamodb"]["NewImage"]["webhook"] = {"M": {"round": {"S": "not a number"}}}
    local_client.lambda_.invoke("on_image_change", event)  # must not raise
    assert queue_messages(aws) == []


def test_a_failing_receiver_gets_retries_with_the_same_id(make_client, aws, receiver):
    local_client = make_client(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true", WEBHOOK_RETRY_SCHEDULE="0,0")
    receiver.script("/hook", [Reply(500), Reply(500), Reply(204)])
    event = stream_event(receiver.url())
    store_new_image(aws, event)
    local_client.lambda_.invoke("on_image_change", event)
    deliver_queued(local_client, aws)
    state = item(aws)["webhook"]
    assert state["status"] == "pending" and state["attempts"] == 1 and state["lastStatusCode"] == 500
    assert state["nextAttemptAt"]
    [retry] = queue_messages(aws)
    assert json.loads(retry["Body"])["attempt"] == 2
    local_client.lambda_.invoke("deliver_webhook", sqs_event([retry["Body"]]))
    [third] = queue_messages(aws)
    task = json.loads(third["Body"])
    assert task["attempt"] == 3
    local_client.lambda_.invoke("deliver_webhook", sqs_event([third["Body"]]))
    ids = {r.headers["webhook-id"] for r in receiver.received()}
    assert ids == {f"msg_{IMAGE_ID}_completed"} and len(receiver.received()) == 3
    for got in receiver.received():
        Webhook(secret_of(aws, "someone")).verify(got.body, got.headers)
    state = item(aws)["webhook"]
    assert state["status"] == "delivered" and state["attempts"] == 3


def test_retry_after_is_honoured_when_told_to_slow_down(local_client, aws, receiver):
    receiver.script("/hook", [Reply(429, headers={"Retry-After": "120"})])
    event = stream_event(receiver.url())
    store_new_image(aws, event)
    local_client.lambda_.invoke("on_image_change", event)
    deliver_queued(local_client, aws)
    state = item(aws)["webhook"]
    assert state["status"] == "pending" and state["lastStatusCode"] == 429
    created = datetime.fromisoformat(state["lastAttemptAt"].replace("Z", "+00:00"))
    due = datetime.fromisoformat(state["nextAttemptAt"].replace("Z", "+00:00"))
    assert 119 <= (due - created).total_seconds() <= 125  # not the schedule's 5 s
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.webhook_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"


def test_410_gone_stops_and_dead_letters(local_client, aws, receiver):
    receiver.script("/hook", [Reply(410)])
    event = stream_event(receiver.url())
    store_new_image(aws, event)
    local_client.lambda_.invoke("on_image_change", event)
    deliver_queued(local_client, aws)
    assert queue_messages(aws) == []
    state = item(aws)["webhook"]
    assert state["status"] == "failed" and state["lastStatusCode"] == 410
    [dead] = queue_messages(aws, aws.webhook_dlq_url, attributes=True)
    # one shape in the dead-letter queue: the delivery task itself, replayable as is,
    # with why it ended in message attributes
    assert DeliveryTask.from_json(dead["Body"]) == DeliveryTask(IMAGE_ID, f"msg_{IMAGE_ID}_completed", 1, 1,
                                                                dead_lettered=True)
    assert dead["MessageAttributes"]["thumbgen-lastStatusCode"]["StringValue"] == "410"


def test_schedule_exhausted_ends_failed(make_client, aws, receiver):
    client = make_client(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true", WEBHOOK_RETRY_SCHEDULE="0")
    receiver.script("/hook", [Reply(500), Reply(502)])
    event = stream_event(receiver.url())
    store_new_image(aws, event)
    client.lambda_.invoke("on_image_change", event)
    deliver_queued(client, aws)
    deliver_queued(client, aws)
    state = item(aws)["webhook"]
    assert state["status"] == "failed" and state["attempts"] == 2 and state["lastStatusCode"] == 502
    assert len(queue_messages(aws, aws.webhook_dlq_url)) == 1


def test_private_receiver_is_refused_at_send_time_without_connecting(client, aws, receiver):
    event = stream_event(receiver.url())  # 127.0.0.1 — not allowed on this stage
    store_new_image(aws, event)
    client.lambda_.invoke("on_image_change", event)
    deliver_queued(client, aws)
    assert receiver.received() == []
    state = item(aws)["webhook"]
    assert state["status"] == "failed" and state["lastError"].startswith("refused")


def test_malformed_and_stale_tasks_are_dropped(local_client, aws, receiver):
    local_client.lambda_.invoke("deliver_webhook", sqs_event(["not json", "[]", '{"image_id": "x"}']))
    stale = {"image_id": IMAGE_ID, "webhook_id": f"msg_{IMAGE_ID}_completed", "round": 1, "attempt": 1}
    local_client.lambda_.invoke("deliver_webhook", sqs_event([json.dumps(stale)]))  # no such item
    assert receiver.received() == []


def test_early_task_waits_for_its_time(local_client, aws, receiver):
    event = stream_event(receiver.url())
    store_new_image(aws, event)
    task = {"image_id": IMAGE_ID, "webhook_id": f"msg_{IMAGE_ID}_completed", "round": 1,
            "attempt": 1, "not_before": time.time() + 3600}
    local_client.lambda_.invoke("deliver_webhook", sqs_event([json.dumps(task)]))
    assert receiver.received() == []
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.webhook_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    assert item(aws)["webhook"]["attempts"] == 0


def test_redeliver_sends_the_same_event_again(local_client, aws, receiver, tokens):
    event = stream_event(receiver.url())
    store_new_image(aws, event, owner=sub_of(tokens("alice")))
    local_client.lambda_.invoke("on_image_change", event)
    deliver_queued(local_client, aws)
    before = item(aws)
    response = local_client.http.post(f"/images/{IMAGE_ID}/webhook/redeliver")
    assert response.status_code == 202
    assert json.loads(response.body)["webhook"]["status"] == "pending"
    local_client.lambda_.invoke("on_image_change", stream_records(aws, (before, item(aws))))  # the new round
    deliver_queued(local_client, aws)
    first, second = receiver.received()
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert item(aws)["webhook"]["status"] == "delivered" and item(aws)["webhook"]["round"] == 2


def test_a_failed_queue_send_cannot_strand_a_redelivery(local_client, aws, receiver, tokens, monkeypatch):
    """The round is one write; its stream record queues its attempt, and a send that fails
    there fails the batch, which the stream hands over again until it succeeds."""
    from chalicelib.platform import aws as aws_clients

    event = stream_event(receiver.url())
    store_new_image(aws, event, owner=sub_of(tokens("alice")))
    local_client.lambda_.invoke("on_image_change", event)
    deliver_queued(local_client, aws)
    before = item(aws)

    sqs = aws_clients.client("sqs")
    real_send, failures = sqs.send_message, []

    def send_message(**kwargs):
        if not failures:  # SQS fails once, whoever sends
            failures.append(kwargs)
            raise ConnectionError("SQS is unreachable")
        return real_send(**kwargs)

    monkeypatch.setattr(sqs, "send_message", send_message)
    assert local_client.http.post(f"/images/{IMAGE_ID}/webhook/redeliver").status_code == 202
    assert failures == []  # the API sent nothing that could fail
    round_started = stream_records(aws, (before, item(aws)))
    with pytest.raises(ConnectionError):
        local_client.lambda_.invoke("on_image_change", round_started)  # the batch fails...
    assert queue_messages(aws) == [] and len(failures) == 1
    local_client.lambda_.invoke("on_image_change", round_started)  # ...and the stream retries it
    deliver_queued(local_client, aws)
    assert len(receiver.received()) == 2
    assert item(aws)["webhook"]["status"] == "delivered" and item(aws)["webhook"]["round"] == 2


def test_a_duplicated_round_start_record_sends_the_round_once(local_client, aws, receiver, tokens):
    event = stream_event(receiver.url())
    store_new_image(aws, event, owner=sub_of(tokens("alice")))
    local_client.lambda_.invoke("on_image_change", event)
    deliver_queued(local_client, aws)
    before = item(aws)
    assert local_client.http.post(f"/images/{IMAGE_ID}/webhook/redeliver").status_code == 202
    round_started = stream_records(aws, (before, item(aws)))
    local_client.lambda_.invoke("on_image_change", round_started)
    local_client.lambda_.invoke("on_image_change", copy.deepcopy(round_started))
    assert len(deliver_queued(local_client, aws)) == 2
    assert len(receiver.received()) == 2  # the first round's and this one's, once


def test_a_transient_dns_failure_at_send_time_is_retried_not_dead_lettered(make_client, aws, monkeypatch):
    import socket

    client = make_client(WEBHOOK_RETRY_SCHEDULE="0,0")

    def getaddrinfo(host, *args, **kwargs):  # a stubbed resolver: never real DNS
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    event = stream_event("https://hooks.example.com/hook")
    store_new_image(aws, event)
    client.lambda_.invoke("on_image_change", event)
    deliver_queued(client, aws)
    state = item(aws)["webhook"]
    assert state["status"] == "pending" and state["lastError"] == "name lookup failed"
    assert state["nextAttemptAt"]
    [retry] = queue_messages(aws)
    assert json.loads(retry["Body"])["attempt"] == 2
    assert queue_messages(aws, aws.webhook_dlq_url) == []


def failed_for_good(client, aws, receiver) -> dict:
    """A delivery that ended failed (410), and the dead letter it left."""
    receiver.script("/hook", [Reply(410)])
    event = stream_event(receiver.url())
    store_new_image(aws, event)
    client.lambda_.invoke("on_image_change", event)
    deliver_queued(client, aws)
    assert item(aws)["webhook"]["status"] == "failed"
    [dead] = queue_messages(aws, aws.webhook_dlq_url)
    return dead


def test_a_replayed_dead_letter_delivers_the_event_in_a_new_round(make_client, aws, receiver):
    client = make_client(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true", MAX_REDELIVERIES="0")  # users may not
    dead = failed_for_good(client, aws, receiver)
    before = item(aws)
    # the operator moves the dead letters back to the webhook queue, as they are
    client.lambda_.invoke("deliver_webhook", sqs_event([dead["Body"]]))
    first, again = receiver.received()
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    Webhook(secret_of(aws, "someone")).verify(again.body, again.headers)
    state = item(aws)["webhook"]
    assert state["status"] == "delivered" and state["round"] == 2 and state["attempts"] == 1
    # the stream's record of the replay's write (attempt 1 claimed) queues the usual
    # copy, which waits out the claim and then finds it done
    after = item(aws)
    claimed = {**after, "webhook": {**{k: v for k, v in after["webhook"].items()
                                       if k not in ("lastStatusCode", "deliveredAt")},
                                    "status": "pending", "inFlight": 1}}
    client.lambda_.invoke("on_image_change", stream_records(aws, (before, claimed)))
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.webhook_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    client.lambda_.invoke("deliver_webhook", sqs_event([DeliveryTask(IMAGE_ID, state["id"], 2, 1).to_json()]))
    assert len(receiver.received()) == 2


def test_a_dead_letter_replayed_twice_starts_one_round(local_client, aws, receiver):
    dead = failed_for_good(local_client, aws, receiver)
    receiver.script("/hook", [Reply(500)])  # the replay fails again: its round goes on
    local_client.lambda_.invoke("deliver_webhook", sqs_event([dead["Body"]]))
    local_client.lambda_.invoke("deliver_webhook", sqs_event([dead["Body"]]))
    assert len(receiver.received()) == 2
    state = item(aws)["webhook"]
    assert state["round"] == 2 and state["attempts"] == 1 and state["status"] == "pending"


def test_a_late_duplicate_of_a_live_task_does_not_restart_a_failed_delivery(local_client, aws, receiver):
    dead = failed_for_good(local_client, aws, receiver)
    live = DeliveryTask.from_json(dead["Body"])
    live = DeliveryTask(live.image_id, live.webhook_id, live.round, live.attempt)  # as it was queued
    local_client.lambda_.invoke("deliver_webhook", sqs_event([live.to_json()]))
    assert len(receiver.received()) == 1
    assert item(aws)["webhook"]["status"] == "failed" and item(aws)["webhook"]["round"] == 1


def test_a_dead_letter_of_a_round_since_redelivered_is_not_replayed(local_client, aws, receiver, tokens):
    receiver.script("/hook", [Reply(410)])
    event = stream_event(receiver.url())
    store_new_image(aws, event, owner=sub_of(tokens("alice")))
    local_client.lambda_.invoke("on_image_change", event)
    deliver_queued(local_client, aws)
    [dead] = queue_messages(aws, aws.webhook_dlq_url)
    before = item(aws)
    assert local_client.http.post(f"/images/{IMAGE_ID}/webhook/redeliver").status_code == 202
    local_client.lambda_.invoke("on_image_change", stream_records(aws, (before, item(aws))))
    deliver_queued(local_client, aws)  # the user's redelivery got through
    local_client.lambda_.invoke("deliver_webhook", sqs_event([dead["Body"]]))
    assert len(receiver.received()) == 2
    assert item(aws)["webhook"]["round"] == 2
