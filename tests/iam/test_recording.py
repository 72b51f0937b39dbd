"""The recorder and the check, on real boto3 calls against moto.

Tests that make a call a role does not allow claim the recorded calls with
`iam_calls.take()`, so the check below runs instead of the plugin's.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

from tests.conftest import stage_environment
from tests.iam.plugin import problems, running_as

TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/thumbgen-images"


def test_a_delete_item_by_deliver_webhook_is_refused(aws, iam_calls):
    with running_as("deliver_webhook", stage_environment(aws)):
        boto3.client("dynamodb").delete_item(TableName=aws.table, Key={"id": {"S": "x"}})
    assert problems(iam_calls.take()) == [
        f"deliver_webhook (DeliverRole) may not dynamodb:DeleteItem on {TABLE_ARN} [dynamodb.DeleteItem]: "
        "no statement allows it"]


def test_presigned_urls_count_for_their_signer(aws, iam_calls):
    s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
    with running_as("deliver_webhook", stage_environment(aws)):
        s3.generate_presigned_url("get_object", Params={"Bucket": aws.bucket, "Key": "thumbnails/a/1.jpg"})
        s3.generate_presigned_url("put_object", Params={"Bucket": aws.bucket, "Key": "uploads/a"}, HttpMethod="PUT")
    calls = iam_calls.take()
    assert [(c.function, str(c.request), c.operation) for c in calls] == [
        ("deliver_webhook", f"s3:GetObject on arn:aws:s3:::{aws.bucket}/thumbnails/a/1.jpg", "s3.GetObject (presigned)"),
        ("deliver_webhook", f"s3:PutObject on arn:aws:s3:::{aws.bucket}/uploads/a", "s3.PutObject (presigned)"),
    ]
    assert problems(calls) == [f"deliver_webhook (DeliverRole) may not s3:PutObject on arn:aws:s3:::{aws.bucket}/uploads/a "
                               "[s3.PutObject (presigned)]: no statement allows it"]


def test_a_resource_the_role_does_not_name_is_shown_beside_those_it_does(aws, iam_calls):
    with running_as("deliver_webhook", stage_environment(aws)):
        boto3.client("sqs").send_message(QueueUrl=aws.upload_queue_url, MessageBody="x")
    [found] = problems(iam_calls.take())
    assert found.endswith(f"no statement allows it; it allows sqs:SendMessage on "
                          f"{aws.webhook_queue_arn}, {aws.webhook_queue_arn}-dlq only")


def test_work_a_handler_hands_to_a_thread_pool_counts_for_it(aws, iam_calls):
    sqs = boto3.client("sqs")
    with ThreadPoolExecutor(max_workers=2) as pool:
        with running_as("resize_upload", stage_environment(aws)):
            pool.submit(sqs.send_message, QueueUrl=aws.upload_dlq_url, MessageBody="x").result()
        pool.submit(sqs.send_message, QueueUrl=aws.upload_dlq_url, MessageBody="y").result()  # the test's own
    calls = iam_calls.take()
    assert [(c.function, c.request.action) for c in calls] == [("resize_upload", "sqs:SendMessage")]
    [problem] = problems(calls)
    assert problem.startswith(f"resize_upload (ResizeRole) may not sqs:SendMessage on {aws.upload_dlq_arn} "
                              "[sqs.SendMessage]: no statement allows it")


def test_the_tests_own_calls_are_not_recorded(aws, iam_calls):
    boto3.client("dynamodb").get_item(TableName=aws.table, Key={"id": {"S": "x"}})
    assert iam_calls.calls == []


def test_the_test_client_names_the_function(client, aws, iam_calls):
    client.http.get("/images/00000000-0000-4000-8000-000000000000")
    task = {"image_id": "x", "webhook_id": "msg_x_completed", "round": 1, "attempt": 1}
    client.lambda_.invoke("deliver_webhook", {"Records": [{"body": json.dumps(task), "messageId": "1",
                                                           "receiptHandle": "r", "attributes": {}}]})
    seen = {(c.function, c.request.action, c.request.resource) for c in iam_calls.calls}
    assert ("api_handler", "dynamodb:GetItem", TABLE_ARN) in seen
    assert ("deliver_webhook", "dynamodb:GetItem", TABLE_ARN) in seen
    assert {c.environment for c in iam_calls.calls} == {tuple(sorted(stage_environment(aws).items()))}
