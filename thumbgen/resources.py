"""Creates the local stack's AWS resources in the embedded moto server.

The same names and settings as infra/ declares for AWS: the bucket, the images table with
a NEW_AND_OLD_IMAGES stream, the S3 -> SQS notification standing in for S3's Lambda
trigger, and the webhook delivery queue with its dead-letter queue.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

BUCKET = "thumbgen-images"
TABLE = "thumbgen-images"
UPLOAD_EVENTS_QUEUE = "thumbgen-upload-events"
UPLOAD_EVENTS_DLQ = "thumbgen-upload-events-dlq"
WEBHOOK_QUEUE = "thumbgen-webhooks"
WEBHOOK_DLQ = "thumbgen-webhooks-dlq"


@dataclass(frozen=True)
class LocalResources:
    bucket: str
    table: str
    stream_arn: str
    upload_events_url: str
    webhook_queue_url: str
    webhook_queue_arn: str
    webhook_dlq_url: str


def _queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def create_resources(s3: Any, dynamodb: Any, sqs: Any) -> LocalResources:
    s3.create_bucket(Bucket=BUCKET)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    stream_arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]

    _, upload_dlq_arn = _queue(sqs, UPLOAD_EVENTS_DLQ, {})
    upload_url, upload_arn = _queue(sqs, UPLOAD_EVENTS_QUEUE, {
        "VisibilityTimeout": "10",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": upload_dlq_arn, "maxReceiveCount": "4"}),
    })
    dlq_url, dlq_arn = _queue(sqs, WEBHOOK_DLQ, {"MessageRetentionPeriod": "1209600"})
    webhook_url, webhook_arn = _queue(sqs, WEBHOOK_QUEUE, {
        "VisibilityTimeout": "60",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
    })
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [{
                "QueueArn": upload_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
            }]
        },
    )
    return LocalResources(
        bucket=BUCKET, table=TABLE, stream_arn=stream_arn, upload_events_url=upload_url,
        webhook_queue_url=webhook_url, webhook_queue_arn=webhook_arn, webhook_dlq_url=dlq_url,
    )
