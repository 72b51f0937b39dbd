"""infra/thumbgen.yaml: cfn-lint clean, and what the issue asks of each resource, checked
against the code that relies on it (what the presigned PUT signs, which attribute the
records expire on, which settings the functions read, how long the consumer may run)."""
from __future__ import annotations

import re
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig
from chalice.config import Config

from chalicelib import images
from chalicelib.storage import ImageStorage
from infra.project import OUTPUT_ENV, OUTPUT_ROLE, REPO, load_config
from tests.infra import cfn
from thumbgen import resources as local

STAGES = ("dev", "prod")


@pytest.fixture(scope="module")
def template():
    return cfn.load()


def props(template, name):
    return template["Resources"][name]["Properties"]


def only(mapping):
    assert len(mapping) == 1, sorted(mapping)
    return next(iter(mapping.values()))["Properties"]


def function_setting(stage, function, name):
    return getattr(Config(chalice_stage=stage, function_name=function,
                          config_from_disk=load_config()), name)


def test_cfn_lint_passes_on_every_template():
    assert cfn.TEMPLATES, "no template in infra/"
    lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(lint), *map(str, cfn.TEMPLATES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bucket_blocks_public_access_and_encrypts_by_default(template):
    bucket = only(cfn.resources(template, "AWS::S3::Bucket"))
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True,
        "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_bucket_policy_refuses_every_request_without_tls(template):
    policy = only(cfn.resources(template, "AWS::S3::BucketPolicy"))
    assert policy["Bucket"] == {"Ref": "ImagesBucket"}
    denies = [s for s in cfn.as_list(policy["PolicyDocument"]["Statement"])
              if s["Effect"] == "Deny" and s["Principal"] == "*" and s["Action"] == "s3:*"
              and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
    assert len(denies) == 1
    arns = {"ImagesBucket": "arn:aws:s3:::b"}
    covered = {cfn.resolve_arn(r, arns) for r in cfn.as_list(denies[0]["Resource"])}
    assert covered == {"arn:aws:s3:::b", "arn:aws:s3:::b/*"}  # the bucket and every object


def test_cors_lets_browsers_put_what_the_presigned_url_signs_and_get_thumbnails(template):
    [rule] = props(template, "ImagesBucket")["CorsConfiguration"]["CorsRules"]
    assert {"PUT", "GET"} <= set(rule["AllowedMethods"])
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="x", config=BotoConfig(signature_version="s3v4"))
    upload = ImageStorage(s3, "bucket").presign_upload("uploads/x", "image/png", 10, 60)
    # Browsers set Content-Length themselves; every other signed header is sent by the
    # page and so must pass the preflight.
    sent = [h for h in upload.headers if h.lower() != "content-length"]
    assert sent, upload.headers
    allowed = [h.lower() for h in rule["AllowedHeaders"]]
    for header in sent:
        assert any(fnmatch(header.lower(), pattern) for pattern in allowed), header
    assert "etag" in [h.lower() for h in rule.get("ExposedHeaders", [])]


def test_lifecycle_removes_abandoned_uploads(template):
    rules = props(template, "ImagesBucket")["LifecycleConfiguration"]["Rules"]
    aborts = [r for r in rules if r["Status"] == "Enabled" and "AbortIncompleteMultipartUpload" in r]
    assert aborts and aborts[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] <= 7


def test_table_is_on_demand_streams_both_images_and_expires_pending_items(template):
    table = only(cfn.resources(template, "AWS::DynamoDB::Table"))
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    # The TTL attribute is the one the code writes on a pending item, as epoch seconds.
    from datetime import datetime, timezone
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    item = images.new_item("i", owner="o", quota_entry="0:i", filename="f", content_type="image/png", file_size=1,
                           webhook_url=None, now=now, expires_at=now, ttl_epoch=1767312000)
    ttl = table["TimeToLiveSpecification"]
    assert ttl["Enabled"] is True and item[ttl["AttributeName"]] == 1767312000
    # Same key schema as the local stack's table.
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]


@pytest.mark.parametrize("stage", STAGES)
def test_webhook_queue_outlasts_its_consumer_and_redrives_to_the_dead_letter_queue(template, stage):
    queue = props(template, "WebhookQueue")
    timeout = function_setting(stage, "deliver_webhook", "lambda_timeout")
    # AWS: the visibility timeout of a Lambda-consumed queue should be >= 6x the timeout.
    assert queue["VisibilityTimeout"] >= 6 * timeout
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]}
    assert 1 < redrive["maxReceiveCount"] <= 10
    dlq = props(template, "WebhookDeadLetterQueue")
    assert dlq["MessageRetentionPeriod"] > queue.get("MessageRetentionPeriod", 345600)
    for q in (queue, dlq):
        assert q.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in q


def test_queues_and_table_have_the_local_stacks_names_per_stage(template):
    names = {
        "ImagesTable": (props(template, "ImagesTable")["TableName"], local.TABLE),
        "WebhookQueue": (props(template, "WebhookQueue")["QueueName"], local.WEBHOOK_QUEUE),
        "WebhookDeadLetterQueue": (props(template, "WebhookDeadLetterQueue")["QueueName"], local.WEBHOOK_DLQ),
    }
    for logical, (name, local_name) in names.items():
        # thumbgen-webhooks locally is thumbgen-${Stage}-webhooks on AWS, and so on.
        assert name == {"Fn::Sub": local_name.replace("thumbgen-", "thumbgen-${Stage}-", 1)}, logical


def test_outputs_are_exactly_what_deploy_feeds_into_the_stage(template):
    outputs = template["Outputs"]
    assert set(outputs) == set(OUTPUT_ENV) | set(OUTPUT_ROLE)
    roles = cfn.resources(template, "AWS::IAM::Role")
    assert sorted(outputs[o]["Value"]["Fn::GetAtt"][0] for o in OUTPUT_ROLE) == sorted(roles)
    # Every variable deploy sets is one the code reads.
    source = (REPO / "chalicelib" / "config.py").read_text()
    read = set(re.findall(r'(?:e|os\.environ)\.get\("([A-Z_]+)"', source))
    assert set(OUTPUT_ENV.values()) <= read, set(OUTPUT_ENV.values()) - read


def test_no_policy_allows_a_wildcard_action_or_resource(template):
    statements = list(cfn.all_policy_statements(template))
    allows = [(name, s) for name, s in statements if s["Effect"] == "Allow"]
    assert len(allows) >= 4
    for name, statement in allows:
        assert "NotAction" not in statement and "NotResource" not in statement, name
        for action in cfn.as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), (name, action)
        if "Principal" in statement:  # a trust policy: its resource is the role itself
            continue
        for resource in cfn.as_list(statement["Resource"]):
            assert resource != "*", (name, statement.get("Sid"))
            # Every resource is (a path under) something this stack creates.
            assert cfn.referenced_resources(resource), (name, statement.get("Sid"), resource)


def test_each_function_has_its_own_role_trusted_by_lambda_only(template):
    roles = cfn.resources(template, "AWS::IAM::Role")
    assert len(roles) == len(OUTPUT_ROLE)
    for name, role in roles.items():
        p = role["Properties"]
        assert "ManagedPolicyArns" not in p, f"{name}: managed policies are not least privilege"
        [trust] = cfn.as_list(p["AssumeRolePolicyDocument"]["Statement"])
        assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert trust["Action"] == "sts:AssumeRole"


def test_each_role_may_log_only_to_its_own_log_group(template):
    groups = cfn.resources(template, "AWS::Logs::LogGroup")
    used = []
    for role in cfn.resources(template, "AWS::IAM::Role"):
        logs = [s for s in cfn.role_statements(template, role)
                if any(a.startswith("logs:") for a in cfn.as_list(s["Action"]))]
        [statement] = logs
        [group] = cfn.referenced_resources(statement["Resource"])
        assert group in groups
        used.append(group)
    assert sorted(used) == sorted(groups)
