"""resize_upload run under moto's own IAM enforcement, with exactly its role's policy.

moto checks IAM only once its count of unauthenticated requests is spent
(INITIAL_NO_AUTH_ACTION_COUNT); from then on a request must be signed with the keys of a
user or assumed role that moto's IAM knows, and its policies are evaluated. Of this
stack's services only S3 is checked per resource ARN: moto (5.0.28) rejects every signed
DynamoDB request (it parses the body before checking the signature, so the signature
never matches) and checks SQS actions against the resource "*" only, which a policy
scoped to a queue ARN never matches; presigned URLs fail with an error rather than a
decision. So here DynamoDB and SQS are left unchecked, and resize_upload's S3 reads and
writes are checked by moto itself; every call of every function is held to its role by
the recorder (tests/iam/plugin.py) in any case.
"""
from __future__ import annotations

import copy
import json
from datetime import timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import settings
from moto.core.responses import ActionAuthenticatorMixin
from moto.dynamodb.responses import DynamoHandler
from moto.sqs.responses import SQSResponse

from chalicelib.images import record
from chalicelib.images.record import ImageRecord
from tests.conftest import stage_environment, upload_event
from tests.iam.evaluate import as_list
from tests.iam.stack import Stack
from tests.imagegen import make_jpeg
from tests.infra import cfn

ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture
def enforced(aws, monkeypatch):
    """moto with IAM on; the test itself acts as an administrator. Returns a function that
    makes a role with the given statements and gives its credentials as Lambda does (env)."""
    iam = boto3.client("iam")
    iam.create_user(UserName="test-admin")
    iam.put_user_policy(UserName="test-admin", PolicyName="admin", PolicyDocument=json.dumps(ADMIN))
    key = iam.create_access_key(UserName="test-admin")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # the test's own clients: the admin's keys
    for unchecked in (DynamoHandler, SQSResponse):  # see the module docstring
        monkeypatch.setattr(unchecked, "_authenticate_and_authorize_normal_action", lambda self, resource="*": None)
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)

    def role_credentials(role: str, statements: list[dict]) -> dict[str, str]:
        arn = boto3.client("iam").create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]
        boto3.client("iam").put_role_policy(RoleName=role, PolicyName="policy", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
        credentials = boto3.client("sts").assume_role(RoleArn=arn, RoleSessionName=role)["Credentials"]
        return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
                "AWS_SESSION_TOKEN": credentials["SessionToken"]}
    return role_credentials


def role_statements(aws, function: str) -> tuple[str, list[dict]]:
    stack = Stack(cfn.load(), stage_environment(aws))
    role = stack.role_of(function)
    return role, stack.statements(role)


def without(statements: list[dict], action: str) -> list[dict]:
    """The statements with one action taken out (statements left with none dropped)."""
    out = []
    for statement in copy.deepcopy(statements):
        statement["Action"] = [a for a in as_list(statement["Action"]) if a != action]
        if statement["Action"]:
            out.append(statement)
    return out


def pending_upload(aws, image_id: str) -> None:
    now = record.utc_now()
    boto3.resource("dynamodb").Table(aws.table).put_item(Item=ImageRecord.new_pending(
        image_id, owner="alice-sub", quota_entry=f"0:{image_id}", filename="a.jpg",
        content_type="image/jpeg", file_size=1, webhook_url=None,
        now=now, expires_at=now + timedelta(minutes=10), ttl_epoch=0).to_item())
    boto3.client("s3").put_object(Bucket=aws.bucket, Key=f"uploads/{image_id}", Body=make_jpeg(640, 480))


def resize(make_client, aws, credentials: dict[str, str], image_id: str) -> None:
    client = make_client(**credentials)
    client.lambda_.invoke("resize_upload", upload_event(aws.bucket, f"uploads/{image_id}"))


def test_resize_upload_works_with_exactly_its_role(enforced, make_client, aws):
    role, statements = role_statements(aws, "resize_upload")
    image_id = "22222222-2222-4222-8222-222222222222"
    pending_upload(aws, image_id)
    resize(make_client, aws, enforced(role, statements), image_id)
    item = boto3.resource("dynamodb").Table(aws.table).get_item(Key={"id": image_id})["Item"]
    assert item["status"] == "completed"
    listed = boto3.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=f"thumbnails/{image_id}/")
    assert len(listed["Contents"]) == 3


@pytest.mark.parametrize("action, operation", [("s3:GetObject", "GetObject"), ("s3:PutObject", "PutObject")])
def test_resize_upload_is_denied_what_its_role_lacks(enforced, make_client, aws, action, operation):
    role, statements = role_statements(aws, "resize_upload")
    image_id = "33333333-3333-4333-8333-333333333333"
    pending_upload(aws, image_id)
    with pytest.raises(ClientError) as denied:
        resize(make_client, aws, enforced(role, without(statements, action)), image_id)
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert denied.value.operation_name == operation
    item = boto3.resource("dynamodb").Table(aws.table).get_item(Key={"id": image_id})["Item"]
    assert item["status"] == "pending_upload"  # released for the retry
