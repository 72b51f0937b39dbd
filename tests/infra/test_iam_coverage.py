"""The execution roles of infra/thumbgen.yaml against what each function really calls.

Every test already holds each call a handler makes, presigned URLs included, to its
function's role (tests/iam/plugin.py). This one runs the whole pipeline through the
handlers (Chalice's test Client, moto, a webhook receiver on 127.0.0.1) and checks the
other way too: every permission of a role is used by a call, or is one the Lambda
service uses on its behalf (listed below with the reason): nothing granted "just in case".
"""
from __future__ import annotations

import json

import boto3

from tests.conftest import put_upload, queue_messages, s3_notification, sqs_event
from tests.handlers.test_ownership import stream_records
from tests.iam.evaluate import unused_grants
from tests.iam.plugin import problems
from tests.iam.stack import Stack
from tests.imagegen import make_jpeg
from tests.infra import cfn
from thumbgen.receiver import Reply, WebhookReceiver

REGION = "us-east-1"  # moto's
# Granted for the Lambda service, not for the code: (role, action) -> why.
SERVICE_USE = {
    **{(role, action): "Lambda writes the function's logs"
       for role in ("ApiRole", "ResizeRole", "DeadUploadsRole", "StreamRole", "DeliverRole", "SweepRole")
       for action in ("logs:CreateLogStream", "logs:PutLogEvents")},
    **{("StreamRole", f"dynamodb:{a}"): "the event source mapping reads the stream"
       for a in ("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams")},
    **{(role, f"sqs:{a}"): "the event source mapping polls the queue"
       for role in ("ResizeRole", "DeadUploadsRole", "DeliverRole")
       for a in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")},
    ("StreamRole", "sqs:SendMessage"): "the mapping's on-failure destination (failures queue)",
    ("SweepRole", "sqs:SendMessage"): "the async invocations' on-failure destination (failures queue)",
    ("ResizeRole", "s3:ListBucket"): "S3 then answers 404 NoSuchKey, not 403, for a vanished upload",
    ("DeliverRole", "s3:ListBucket"): "the links it signs answer 404, not 403, once a DELETE removed the objects",
}


def _stream_event(aws, image_id: str) -> dict:
    """The records DynamoDB Streams sends for the resize's claim (the upload leaves
    pending_upload: its quota slot frees) and for its final write."""
    final = boto3.client("dynamodb").get_item(TableName=aws.table, Key={"id": {"S": image_id}})["Item"]
    processing = {k: v for k, v in final.items() if k != "webhook"} | {"status": {"S": "processing"}}
    pending = processing | {"status": {"S": "pending_upload"}}

    def record(n: int, old: dict, new: dict) -> dict:
        return {"eventID": str(n), "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
                "awsRegion": REGION, "eventSourceARN": aws.stream_arn,
                "dynamodb": {"ApproximateCreationDateTime": 1767225600, "Keys": {"id": {"S": image_id}},
                             "NewImage": new, "OldImage": old, "SequenceNumber": str(n), "SizeBytes": 1,
                             "StreamViewType": "NEW_AND_OLD_IMAGES"}}
    return {"Records": [record(1, pending, processing), record(2, processing, final)]}


def _create(client, url: str) -> str:
    created = client.http.post("/images", headers={"Content-Type": "application/json"}, body=json.dumps(
        {"filename": "cat.jpg", "contentType": "image/jpeg", "fileSize": 1, "webhookUrl": url}))
    assert created.status_code == 201, created.body
    return json.loads(created.body)["id"]


def _run_the_pipeline(client, aws, receiver: WebhookReceiver) -> str:
    """Every path that reaches AWS, failures and duplicates included: create, list,
    complete, resize with its inline webhook attempt, stream, retry, dead letter,
    redeliver, an orphan upload, a dead-lettered upload, the sweeper, delete."""
    def deliver_all():
        while messages := queue_messages(aws):
            for message in messages:
                client.lambda_.invoke("deliver_webhook", sqs_event([message["Body"]]))

    def resize_all():
        for message in queue_messages(aws, aws.upload_queue_url):
            client.lambda_.invoke("resize_upload", sqs_event([message["Body"]]))

    receiver.script("/hook", [Reply(500), Reply(500), Reply(410)])  # inline attempt, a retry, the end
    receiver.script("/gone", [Reply(410)])  # the inline attempt itself ends it
    image_id = _create(client, receiver.url("/hook"))
    gone_id = _create(client, receiver.url("/gone"))
    for i in (image_id, gone_id):
        put_upload(aws, i, make_jpeg(1600, 1200))
        assert client.http.post(f"/images/{i}/complete").status_code == 202
    assert client.http.get("/images?limit=1").status_code == 200
    table = boto3.resource("dynamodb").Table(aws.table)
    table.update_item(Key={"id": gone_id}, UpdateExpression="SET #s = :p, processingStartedAt = :t",
                      ExpressionAttributeNames={"#s": "status"},  # another worker holds it for now
                      ExpressionAttributeValues={":p": "processing", ":t": "2999-01-01T00:00:00.000Z"})
    resize_all()  # S3's notifications and the complete messages; gone_id's are queued again
    table.update_item(Key={"id": gone_id}, UpdateExpression="SET processingStartedAt = :t",
                      ExpressionAttributeValues={":t": "2000-01-01T00:00:00.000Z"})  # that worker died
    client.lambda_.invoke("resize_upload", sqs_event([s3_notification(aws.bucket, f"uploads/{gone_id}")]))
    client.lambda_.invoke("on_image_change", _stream_event(aws, image_id))
    deliver_all()
    dead = queue_messages(aws, aws.webhook_dlq_url)
    assert len(dead) == 2  # both 410s ended them
    for message in dead:  # an operator replays them (the receivers were fixed)
        client.lambda_.invoke("deliver_webhook", sqs_event([message["Body"]]))
    assert len(receiver.received("/gone")) == 2
    described = client.http.get(f"/images/{image_id}")
    before = table.get_item(Key={"id": image_id})["Item"]
    assert client.http.get("/webhook-secret").status_code == 200
    assert client.http.post("/webhook-secret/rotate").status_code == 200
    redelivered = client.http.post(f"/images/{image_id}/webhook/redeliver")
    assert described.status_code == 200 and json.loads(described.body)["status"] == "completed"
    assert redelivered.status_code == 202, redelivered.body
    client.lambda_.invoke("on_image_change", stream_records(aws, (before, table.get_item(Key={"id": image_id})["Item"])))
    deliver_all()
    assert len(receiver.received("/hook")) == 5

    orphan = "00000000-0000-4000-8000-00000000dead"  # deleted while its thumbnails were written
    put_upload(aws, orphan, make_jpeg(64, 48))
    boto3.client("s3").put_object(Bucket=aws.bucket, Key=f"thumbnails/{orphan}/400x300.jpg", Body=b"x")
    resize_all()  # no record: every object of it is removed
    dead_id = _create(client, receiver.url("/dead"))
    client.lambda_.invoke("fail_dead_uploads", sqs_event([s3_notification(aws.bucket, f"uploads/{dead_id}")]))
    stuck_id = _create(client, receiver.url("/stuck"))
    boto3.resource("dynamodb").Table(aws.table).update_item(
        Key={"id": stuck_id}, UpdateExpression="SET #s = :p, activeState = :p, processingStartedAt = :t",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":p": "processing", ":t": "2000-01-01T00:00:00.000Z"})
    client.lambda_.invoke("sweep_stuck_images", client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    for i in (dead_id, stuck_id):
        assert json.loads(client.http.get(f"/images/{i}").body)["status"] == "failed"
    assert client.http.delete(f"/images/{image_id}").status_code == 204
    return image_id


def test_every_role_allows_exactly_what_its_function_calls(make_client, aws, iam_calls):
    client = make_client(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true", WEBHOOK_RETRY_SCHEDULE="0,0")
    with WebhookReceiver() as receiver:
        _run_the_pipeline(client, aws, receiver)

    calls = iam_calls.calls
    assert problems(calls) == []
    stack = Stack(cfn.load(), dict(calls[0].environment))
    assert sorted({c.function for c in calls}) == sorted(stack.functions()), "every function should have made calls"
    for function in stack.functions():
        role = stack.role_of(function)
        used = [c.request for c in calls if c.function == function]
        unused = [g for g in unused_grants(stack.statements(role), used) if (role, g[0]) not in SERVICE_USE]
        assert not unused, f"{role} ({function}) grants what it never uses: {unused}"
