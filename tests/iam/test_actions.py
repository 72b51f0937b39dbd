"""API calls -> the IAM requests AWS authorises them as."""
from __future__ import annotations

import pytest

from tests.iam.actions import iam_requests
from tests.iam.evaluate import Request

ACCOUNT, REGION = "123456789012", "us-east-1"
BUCKET = "arn:aws:s3:::bkt"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/tbl"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"

CASES = {
    "GetObject": ("s3", "GetObject", {"Bucket": "bkt", "Key": "uploads/1"}, [Request("s3:GetObject", f"{BUCKET}/uploads/1")]),
    "HeadObject is GetObject": ("s3", "HeadObject", {"Bucket": "bkt", "Key": "uploads/1"},
                                [Request("s3:GetObject", f"{BUCKET}/uploads/1")]),
    "ListObjectsV2 is ListBucket, with its prefix": (
        "s3", "ListObjectsV2", {"Bucket": "bkt", "Prefix": "thumbnails/1/"},
        [Request("s3:ListBucket", BUCKET, (("s3:prefix", "thumbnails/1/"),))]),
    "ListObjectsV2 without a prefix": ("s3", "ListObjectsV2", {"Bucket": "bkt"}, [Request("s3:ListBucket", BUCKET)]),
    "DeleteObjects is DeleteObject per key": (
        "s3", "DeleteObjects", {"Bucket": "bkt", "Delete": {"Objects": [{"Key": "a"}, {"Key": "b"}]}},
        [Request("s3:DeleteObject", f"{BUCKET}/a"), Request("s3:DeleteObject", f"{BUCKET}/b")]),
    "CopyObject reads the source and writes the target": (
        "s3", "CopyObject", {"Bucket": "bkt", "Key": "b", "CopySource": {"Bucket": "src", "Key": "a"}},
        [Request("s3:GetObject", "arn:aws:s3:::src/a"), Request("s3:PutObject", f"{BUCKET}/b")]),
    "UpdateItem": ("dynamodb", "UpdateItem", {"TableName": "tbl", "Key": {}}, [Request("dynamodb:UpdateItem", TABLE)]),
    "Query on an index is on the index": (
        "dynamodb", "Query", {"TableName": "tbl", "IndexName": "owner-created"},
        [Request("dynamodb:Query", f"{TABLE}/index/owner-created")]),
    "TransactWriteItems is each item's action": (
        "dynamodb", "TransactWriteItems",
        {"TransactItems": [{"Put": {"TableName": "tbl", "Item": {}}},
                           {"Update": {"TableName": "tbl", "Key": {}, "UpdateExpression": "SET a = :a"}},
                           {"ConditionCheck": {"TableName": "other", "Key": {}, "ConditionExpression": "x"}}]},
        [Request("dynamodb:PutItem", TABLE), Request("dynamodb:UpdateItem", TABLE),
         Request("dynamodb:ConditionCheckItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/other")]),
    "stream reads are on the stream": (
        "dynamodb", "GetRecords", {"StreamArn": f"{TABLE}/stream/2026"}, [Request("dynamodb:GetRecords", f"{TABLE}/stream/2026")]),
    "SendMessage, AWS queue URL": ("sqs", "SendMessage", {"QueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/q"},
                                   [Request("sqs:SendMessage", QUEUE)]),
    "SendMessage, queue in another region": (
        "sqs", "SendMessage", {"QueueUrl": f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/q"},
        [Request("sqs:SendMessage", f"arn:aws:sqs:eu-west-1:{ACCOUNT}:q")]),
    "SendMessageBatch, local endpoint": ("sqs", "SendMessageBatch", {"QueueUrl": f"http://127.0.0.1:4566/{ACCOUNT}/q"},
                                         [Request("sqs:SendMessage", QUEUE)]),
    "Cognito admin call on its pool": (
        "cognito-idp", "AdminGetUser", {"UserPoolId": "us-east-1_abc"},
        [Request("cognito-idp:AdminGetUser", f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/us-east-1_abc")]),
    "CloudWatch's IAM prefix": ("monitoring", "PutMetricData", {}, [Request("cloudwatch:PutMetricData", "*")]),
}


@pytest.mark.parametrize("service, operation, params, expected", CASES.values(), ids=CASES.keys())
def test_iam_requests(service, operation, params, expected):
    assert iam_requests(service, operation, params, REGION, ACCOUNT) == expected
