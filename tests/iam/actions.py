"""An AWS API call -> the IAM requests (action, resource ARN, condition keys) it needs.

The API operation's name is not always the IAM action: HeadObject needs s3:GetObject,
ListObjectsV2 needs s3:ListBucket, a TransactWriteItems needs the action of each of its
items on each item's table, and a batch SQS call needs the single-message action. A
presigned URL needs, from its signer, the same permission as the call it stands for.
"""
from __future__ import annotations

import re
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

from tests.iam.evaluate import Request

PARTITION = "aws"
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"

# IAM's service prefix where it differs from the SigV4 signing name.
_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}
# Operations authorised under another action of the same service.
_RENAMED = {
    "s3:HeadObject": "s3:GetObject",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjects": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
    "s3:CreateMultipartUpload": "s3:PutObject",
    "s3:UploadPart": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
# TransactWriteItems / TransactGetItems: each item is authorised as its own action.
_TRANSACT_ITEM = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem",
                  "Delete": "dynamodb:DeleteItem", "ConditionCheck": "dynamodb:ConditionCheckItem",
                  "Get": "dynamodb:GetItem"}


def queue_arn(url: str, region: str, account: str) -> str:
    """arn:aws:sqs:… of a queue URL (region from an AWS host name, account from the path)."""
    parts = urlsplit(url)
    path = [p for p in parts.path.split("/") if p]
    if len(path) == 2:
        account = path[0]
    match = re.match(r"(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.", parts.hostname or "")
    return f"arn:{PARTITION}:sqs:{match.group(1) if match else region}:{account}:{path[-1]}"


def table_arn(name: str, region: str, account: str) -> str:
    return f"arn:{PARTITION}:dynamodb:{region}:{account}:table/{name}"


def iam_requests(signing_name: str, operation: str, params: Mapping[str, Any],
                 region: str, account: str) -> list[Request]:
    """The IAM requests one call (or a presigned URL for it) makes."""
    service = _PREFIX.get(signing_name, signing_name)
    if service == "s3":
        return list(_s3(operation, params))
    if service == "dynamodb":
        return list(_dynamodb(operation, params, region, account))
    action = _RENAMED.get(f"{service}:{operation}", f"{service}:{operation}")
    if service == "sqs":
        if "QueueUrl" in params:
            return [Request(action, queue_arn(params["QueueUrl"], region, account))]
        if "QueueName" in params:
            owner = params.get("QueueOwnerAWSAccountId", account)
            return [Request(action, f"arn:{PARTITION}:sqs:{region}:{owner}:{params['QueueName']}")]
    if service == "cognito-idp" and "UserPoolId" in params:
        return [Request(action, f"arn:{PARTITION}:cognito-idp:{region}:{account}:userpool/{params['UserPoolId']}")]
    if service == "sts" and "RoleArn" in params:
        return [Request(action, params["RoleArn"])]
    return [Request(action, "*")]


def _s3(operation: str, params: Mapping[str, Any]) -> Iterator[Request]:
    bucket = f"arn:{PARTITION}:s3:::{params.get('Bucket', '*')}"
    action = _RENAMED.get(f"s3:{operation}", f"s3:{operation}")
    if operation == "DeleteObjects":
        for obj in params.get("Delete", {}).get("Objects", []):
            yield Request("s3:DeleteObject", f"{bucket}/{obj['Key']}")
    elif operation == "CopyObject":
        source = params["CopySource"]
        if isinstance(source, Mapping):
            source = f"{source['Bucket']}/{source['Key']}"
        yield Request("s3:GetObject", f"arn:{PARTITION}:s3:::{source.split('?')[0].lstrip('/')}")
        yield Request("s3:PutObject", f"{bucket}/{params['Key']}")
    elif "Key" in params:
        yield Request(action, f"{bucket}/{params['Key']}")
    elif action == "s3:ListBucket":
        # s3:prefix is absent from the request when no Prefix is given.
        prefix = params.get("Prefix")
        yield Request(action, bucket, (("s3:prefix", prefix),) if prefix is not None else ())
    else:
        yield Request(action, bucket)


def _dynamodb(operation: str, params: Mapping[str, Any], region: str, account: str) -> Iterator[Request]:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        for item in params.get("TransactItems", []):
            for kind, spec in item.items():
                yield Request(_TRANSACT_ITEM[kind], table_arn(spec["TableName"], region, account))
    elif operation in ("BatchGetItem", "BatchWriteItem"):
        for table in params.get("RequestItems", {}):
            yield Request(f"dynamodb:{operation}", table_arn(table, region, account))
    elif "StreamArn" in params:
        yield Request(f"dynamodb:{operation}", params["StreamArn"])
    elif "TableName" in params:
        resource = table_arn(params["TableName"], region, account)
        if params.get("IndexName"):
            resource += f"/index/{params['IndexName']}"
        yield Request(f"dynamodb:{operation}", resource)
    else:
        yield Request(f"dynamodb:{operation}", "*")
