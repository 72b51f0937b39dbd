"""Creates the local stack's AWS resources in the embedded moto server (or moto in-process).

The same shapes as infra/thumbgen.yaml declares for AWS: the bucket notifying the uploads
queue, the images table with its stream and indexes, the rate-limit table, the queues with
their dead-letter queues, and a Cognito user pool with a public app client.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

BUCKET = "thumbgen-images"
TABLE = "thumbgen-images"
RATE_LIMIT_TABLE = "thumbgen-rate-limits"
UPLOAD_QUEUE = "thumbgen-uploads"
UPLOAD_DLQ = "thumbgen-uploads-dlq"
WEBHOOK_QUEUE = "thumbgen-webhooks"
WEBHOOK_DLQ = "thumbgen-webhooks-dlq"
USER_POOL = "thumbgen-local"
APP_CLIENT = "thumbgen-local-public"
# Local visibility timeout and lease: short, so that a killed resize is retried in seconds.
LOCAL_UPLOAD_VISIBILITY = 10


@dataclass(frozen=True)
class LocalResources:
    bucket: str
    table: str
    stream_arn: str
    upload_queue_url: str
    upload_queue_arn: str
    upload_dlq_url: str
    upload_dlq_arn: str
    webhook_queue_url: str
    webhook_queue_arn: str
    webhook_dlq_url: str
    user_pool_id: str
    app_client_id: str
    rate_limit_table: str = RATE_LIMIT_TABLE


def _queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _table(dynamodb: Any) -> str:
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "owner", "AttributeType": "S"},
            {"AttributeName": "createdAt", "AttributeType": "S"},
            {"AttributeName": "activeState", "AttributeType": "S"},
            {"AttributeName": "processingStartedAt", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {"IndexName": "owner-created",
             "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"},
                           {"AttributeName": "createdAt", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "ALL"}},
            {"IndexName": "processing-started",
             "KeySchema": [{"AttributeName": "activeState", "KeyType": "HASH"},
                           {"AttributeName": "processingStartedAt", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "KEYS_ONLY"}},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]


def _rate_limit_table(dynamodb: Any) -> str:
    """One counter item per user and window (chalicelib/api/rate_limit.py): no index, no stream."""
    dynamodb.create_table(
        TableName=RATE_LIMIT_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return RATE_LIMIT_TABLE


def _user_pool(cognito: Any) -> tuple[str, str]:
    pool = cognito.create_user_pool(
        PoolName=USER_POOL,
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
    )["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName=APP_CLIENT, GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    return pool, client


def create_resources(s3: Any, dynamodb: Any, sqs: Any, cognito: Any) -> LocalResources:
    s3.create_bucket(Bucket=BUCKET)
    stream_arn = _table(dynamodb)
    rate_limit_table = _rate_limit_table(dynamodb)
    upload_dlq_url, upload_dlq_arn = _queue(sqs, UPLOAD_DLQ, {"MessageRetentionPeriod": "1209600"})
    upload_url, upload_arn = _queue(sqs, UPLOAD_QUEUE, {
        "VisibilityTimeout": str(LOCAL_UPLOAD_VISIBILITY),
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
    pool, client = _user_pool(cognito)
    return LocalResources(
        bucket=BUCKET, table=TABLE, stream_arn=stream_arn,
        upload_queue_url=upload_url, upload_queue_arn=upload_arn,
        upload_dlq_url=upload_dlq_url, upload_dlq_arn=upload_dlq_arn,
        webhook_queue_url=webhook_url, webhook_queue_arn=webhook_arn, webhook_dlq_url=dlq_url,
        user_pool_id=pool, app_client_id=client, rate_limit_table=rate_limit_table,
    )
