"""The execution roles of infra/thumbgen.yaml against what each function really calls.

The whole pipeline runs through the handlers (Chalice's test Client, moto, a webhook
receiver on 127.0.0.1) while every AWS call the app makes, presigned URLs included, is
recorded with the function that made it. Then, per function:
- every call is allowed by its role (no AccessDenied in Lambda: the auto-generated
  policy misses calls made through helpers, a hand-written one can too);
- every permission of its role is used by a call, or is one the Lambda service uses on
  its behalf (listed below with the reason): nothing granted "just in case".
"""
from __future__ import annotations

import json
from collections import defaultdict
from contextlib import contextmanager
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

import boto3
import botocore.handlers
import pytest

from infra.project import OUTPUT_ROLE
from tests.conftest import put_upload, queue_messages, sqs_event
from tests.imagegen import make_jpeg
from tests.infra import cfn
from thumbgen.receiver import Reply, WebhookReceiver

ACCOUNT, REGION = "123456789012", "us-east-1"  # moto's
# API operations whose IAM action has another name.
ACTION_OF = {"s3:HeadObject": "s3:GetObject", "s3:ListObjectsV2": "s3:ListBucket"}
# Granted for the Lambda service, not for the code: (role, action) -> why.
SERVICE_USE = {
    **{(role, action): "Lambda writes the function's logs"
       for role in ("ApiRole", "ResizeRole", "StreamRole", "DeliverRole")
       for action in ("logs:CreateLogStream", "logs:PutLogEvents")},
    **{("StreamRole", f"dynamodb:{a}"): "the event source mapping reads the stream"
       for a in ("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams")},
    **{("DeliverRole", f"sqs:{a}"): "the event source mapping polls the queue"
       for a in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")},
    ("ResizeRole", "s3:ListBucket"): "S3 then answers 404 NoSuchKey, not 403, for a vanished upload",
}


def _arn(service: str, params: dict) -> str:
    if service == "s3":
        key = params.get("Key")
        return f"arn:aws:s3:::{params['Bucket']}" + (f"/{key}" if key else "")
    if service == "dynamodb":
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{params['TableName']}"
    if service == "sqs":
        url = urlsplit(params["QueueUrl"])
        account, name = url.path.strip("/").split("/")
        return f"arn:aws:sqs:{url.hostname.split('.')[1]}:{account}:{name}"
    return f"unknown:{service}"


class CallLog:
    """Every boto3 call and presign, by the function running when it was made."""

    def __init__(self):
        self.function: str | None = None
        self.calls: dict[str, set[tuple[str, str]]] = defaultdict(set)

    def __call__(self, params, model, **_):
        if self.function is not None:
            service = model.service_model.signing_name
            action = f"{service}:{model.name}"
            self.calls[self.function].add((ACTION_OF.get(action, action), _arn(service, params)))

    @contextmanager
    def running(self, function: str):
        self.function = function
        try:
            yield
        finally:
            self.function = None


@pytest.fixture
def call_log():
    log = CallLog()
    # Every botocore session made from now on (the app's lazy clients) calls the log.
    botocore.handlers.BUILTIN_HANDLERS.append(("before-parameter-build", log))
    try:
        yield log
    finally:
        botocore.handlers.BUILTIN_HANDLERS.remove(("before-parameter-build", log))


def _stream_event(aws, image_id: str) -> dict:
    """The record DynamoDB Streams sends for the resize's final write."""
    new = boto3.client("dynamodb").get_item(TableName=aws.table, Key={"id": {"S": image_id}})["Item"]
    old = {k: v for k, v in new.items() if k != "webhook"} | {"status": {"S": "processing"}}
    return {"Records": [{
        "eventID": "1", "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": REGION, "eventSourceARN": aws.stream_arn,
        "dynamodb": {"ApproximateCreationDateTime": 1767225600, "Keys": {"id": {"S": image_id}},
                     "NewImage": new, "OldImage": old, "SequenceNumber": "1", "SizeBytes": 1,
                     "StreamViewType": "NEW_AND_OLD_IMAGES"}}]}


def _run_the_pipeline(client, aws, log: CallLog, receiver: WebhookReceiver) -> str:
    """Every path that reaches AWS: create, resize, stream, retry, dead letter, redeliver."""
    def deliver_all():
        while messages := queue_messages(aws):
            for message in messages:
                with log.running("deliver_webhook"):
                    client.lambda_.invoke("deliver_webhook", sqs_event([message["Body"]]))

    receiver.script("/hook", [Reply(500), Reply(410)])  # a retry, then a final failure
    with log.running("api_handler"):
        created = client.http.post("/images", headers={"Content-Type": "application/json"}, body=json.dumps(
            {"filename": "cat.jpg", "contentType": "image/jpeg", "fileSize": 1, "webhookUrl": receiver.url()}))
    assert created.status_code == 201, created.body
    image_id = json.loads(created.body)["id"]
    put_upload(aws, image_id, make_jpeg(1600, 1200))
    with log.running("resize_upload"):
        client.lambda_.invoke("resize_upload",
                              client.events.generate_s3_event(bucket=aws.bucket, key=f"uploads/{image_id}"))
    with log.running("on_image_change"):
        client.lambda_.invoke("on_image_change", _stream_event(aws, image_id))
    deliver_all()
    assert len(queue_messages(aws, aws.webhook_dlq_url)) == 1  # the 410 ended it
    with log.running("api_handler"):
        described = client.http.get(f"/images/{image_id}")
        redelivered = client.http.post(f"/images/{image_id}/webhook/redeliver")
    assert described.status_code == 200 and json.loads(described.body)["status"] == "completed"
    assert redelivered.status_code == 202, redelivered.body
    deliver_all()
    assert len(receiver.received("/hook")) == 3
    return image_id


def _grants(template, role: str, arns: dict[str, str]) -> list[tuple[str, str]]:
    grants = []
    for statement in cfn.role_statements(template, role):
        assert statement["Effect"] == "Allow"
        for action in cfn.as_list(statement["Action"]):
            for resource in cfn.as_list(statement["Resource"]):
                grants.append((action, cfn.resolve_arn(resource, arns)))
    return grants


def _allows(grant: tuple[str, str], call: tuple[str, str]) -> bool:
    return grant[0].lower() == call[0].lower() and fnmatchcase(call[1], grant[1])


def test_every_role_allows_exactly_what_its_function_calls(make_client, aws, call_log, tmp_path):
    client = make_client(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true", WEBHOOK_RETRY_SCHEDULE="0")
    with WebhookReceiver() as receiver:
        _run_the_pipeline(client, aws, call_log, receiver)

    template = cfn.load()
    dlq_arn = _arn("sqs", {"QueueUrl": aws.webhook_dlq_url})
    arns = {"ImagesBucket": f"arn:aws:s3:::{aws.bucket}",
            "ImagesTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{aws.table}",
            "WebhookQueue": aws.webhook_queue_arn, "WebhookDeadLetterQueue": dlq_arn}
    arns |= {name: f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{name}:*"
             for name in cfn.resources(template, "AWS::Logs::LogGroup")}
    role_of = {function: template["Outputs"][output]["Value"]["Fn::GetAtt"][0]
               for output, function in OUTPUT_ROLE.items()}

    assert sorted(call_log.calls) == sorted(role_of), "every function should have made calls"
    for function, role in role_of.items():
        calls, grants = call_log.calls[function], _grants(template, role, arns)
        denied = sorted(c for c in calls if not any(_allows(g, c) for g in grants))
        assert not denied, f"{role} ({function}) would be denied: {denied}"
        unused = sorted(g for g in grants
                        if not any(_allows(g, c) for c in calls) and (role, g[0]) not in SERVICE_USE)
        assert not unused, f"{role} ({function}) grants what it never uses: {unused}"
