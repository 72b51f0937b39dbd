"""The resize sends the first webhook attempt itself; the stream's queued copy of it is
only a safety net: one delivery per outcome, whoever sends it."""
from __future__ import annotations

import json

import boto3
from standardwebhooks import Webhook

from tests.conftest import put_upload, queue_messages, sqs_event, upload_event
from tests.handlers.test_ownership import stream_records
from tests.imagegen import make_jpeg


def created(client, url):
    body = {"filename": "a.jpg", "contentType": "image/jpeg", "fileSize": 10, "webhookUrl": url}
    return json.loads(client.http.post("/images", headers={"Content-Type": "application/json"},
                                       body=json.dumps(body)).body)["id"]


def delayed(aws) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.webhook_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def attempt_one(image_id: str) -> str:
    """The task the stream queues for the outcome's claimed first attempt."""
    from chalicelib.webhooks.queue import DeliveryTask

    return DeliveryTask(image_id, f"msg_{image_id}_completed", 1, 1).to_json()


def table(aws):
    return boto3.resource("dynamodb").Table(aws.table)


def test_the_resize_delivers_and_the_queued_copy_sends_nothing(local_client, aws, receiver):
    image_id = created(local_client, receiver.url())
    put_upload(aws, image_id, make_jpeg(640, 480))
    before = table(aws).get_item(Key={"id": image_id})["Item"]
    local_client.lambda_.invoke("resize_upload", upload_event(aws.bucket, f"uploads/{image_id}"))
    [got] = receiver.received()  # sent from the resize itself, before any stream record
    secret = json.loads(local_client.http.get("/webhook-secret").body)["secret"]  # the uploader's own
    assert Webhook(secret).verify(got.body, got.headers)["data"]["status"] == "completed"
    after = table(aws).get_item(Key={"id": image_id})["Item"]
    assert after["webhook"]["status"] == "delivered" and after["webhook"]["attempts"] == 1
    # the stream record of the outcome (the state as the outcome's write left it: claimed)
    claimed = {**after, "webhook": {**after["webhook"], "status": "pending", "inFlight": 1}}
    local_client.lambda_.invoke("on_image_change", stream_records(aws, (before, claimed)))
    # queued, but held back for the claim's lease: not on anyone's latency path
    assert delayed(aws) == 1 and queue_messages(aws) == []
    # when it comes, it is the same attempt (not a second one), already recorded: nothing
    local_client.lambda_.invoke("deliver_webhook", sqs_event([attempt_one(image_id)]))
    assert len(receiver.received()) == 1


def test_a_resize_that_dies_before_sending_its_attempt_is_taken_over_after_the_lease(
        local_client, aws, receiver, monkeypatch):
    from chalicelib import service

    # The worker dies right after the outcome's write claimed attempt 1, before sending it.
    monkeypatch.setattr(service, "_first_attempt", lambda claimed: lambda done: None)
    image_id = created(local_client, receiver.url())
    put_upload(aws, image_id, make_jpeg(640, 480))
    before = table(aws).get_item(Key={"id": image_id})["Item"]
    local_client.lambda_.invoke("resize_upload", upload_event(aws.bucket, f"uploads/{image_id}"))
    after = table(aws).get_item(Key={"id": image_id})["Item"]
    assert receiver.received() == [] and after["webhook"]["inFlight"] == 1
    local_client.lambda_.invoke("on_image_change", stream_records(aws, (before, after)))
    assert delayed(aws) == 1
    local_client.lambda_.invoke("deliver_webhook", sqs_event([attempt_one(image_id)]))
    assert receiver.received() == []  # within the lease the claim is still the resize's
    table(aws).update_item(Key={"id": image_id}, UpdateExpression="SET webhook.lastAttemptAt = :old",
                           ExpressionAttributeValues={":old": "2000-01-01T00:00:00.000Z"})  # the lease ran out
    local_client.lambda_.invoke("deliver_webhook", sqs_event([attempt_one(image_id)]))
    [got] = receiver.received()
    assert got.headers["webhook-id"] == f"msg_{image_id}_completed"
    assert table(aws).get_item(Key={"id": image_id})["Item"]["webhook"]["status"] == "delivered"
