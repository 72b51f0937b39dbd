"""infra/thumbgen.yaml: cfn-lint clean, and what each resource must be, checked against the
code and the settings that rely on it (what the presigned PUT signs, which attribute the
records expire on, which settings the functions read, how long the consumers may run)."""
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

from chalicelib.images.record import ImageRecord
from chalicelib.platform.storage import ImageStorage
from infra.project import OUTPUT_ENV, OUTPUT_POST_DEPLOY, OUTPUT_ROLE, REPO, function_name, load_config
from tests.infra import cfn
from thumbgen.local import resources as local

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


def stage_env(stage):
    return Config(chalice_stage=stage, config_from_disk=load_config()).environment_variables


def bucket_name_sub(template):
    return props(template, "ImagesBucket")["BucketName"]["Fn::Sub"]


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
    assert sorted(cfn.resources(template, "AWS::DynamoDB::Table")) == ["ImagesTable", "RateLimitTable"]
    table = props(template, "ImagesTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    # The TTL attribute is the one the code writes on a pending item, as epoch seconds.
    from datetime import datetime, timezone
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    item = ImageRecord.new_pending("i", owner="o", quota_entry="0:i", filename="f", content_type="image/png",
                                   file_size=1, webhook_url=None, now=now, expires_at=now,
                                   ttl_epoch=1767312000).to_item()
    ttl = table["TimeToLiveSpecification"]
    assert ttl["Enabled"] is True and item[ttl["AttributeName"]] == 1767312000
    # Same key schema as the local stack's table.
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]


def test_rate_limit_table_is_on_demand_without_a_stream_and_expires_what_the_limiter_writes(template):
    """Counter writes in a table with a stream would wake on_image_change for every request."""
    import boto3
    from moto import mock_aws

    from chalicelib.api.rate_limit import RateLimit, RateLimiter

    table = props(template, "RateLimitTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST" and "StreamSpecification" not in table
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(TableName="limits", KeySchema=table["KeySchema"],
                              AttributeDefinitions=table["AttributeDefinitions"], BillingMode="PAY_PER_REQUEST")
        RateLimiter(dynamodb, "limits", RateLimit(10, 50), clock=lambda: 1000.0).admit("someone")
        [item] = dynamodb.scan(TableName="limits")["Items"]
    ttl = table["TimeToLiveSpecification"]
    assert ttl["Enabled"] is True and int(item[ttl["AttributeName"]]["N"]) > 1000


def test_table_indexes_list_a_users_images_and_find_images_in_processing(template):
    table = props(template, "ImagesTable")
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert sorted(indexes) == ["owner-created", "processing-started"]
    assert indexes["owner-created"]["KeySchema"] == [
        {"AttributeName": "owner", "KeyType": "HASH"}, {"AttributeName": "createdAt", "KeyType": "RANGE"}]
    assert indexes["owner-created"]["Projection"] == {"ProjectionType": "ALL"}
    assert indexes["processing-started"]["KeySchema"] == [
        {"AttributeName": "activeState", "KeyType": "HASH"},
        {"AttributeName": "processingStartedAt", "KeyType": "RANGE"}]
    assert indexes["processing-started"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    # Every key attribute is declared, as a string, and nothing else is.
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == {
        "id": "S", "owner": "S", "createdAt": "S", "activeState": "S", "processingStartedAt": "S"}


def test_every_finished_upload_is_queued_for_the_resize(template):
    bucket = template["Resources"]["ImagesBucket"]
    notifications = bucket["Properties"]["NotificationConfiguration"]
    assert set(notifications) == {"QueueConfigurations"}  # no Lambda trigger on the bucket
    assert notifications["QueueConfigurations"] == [{
        "Event": "s3:ObjectCreated:*",
        "Queue": {"Fn::GetAtt": ["UploadQueue", "Arn"]},
        "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "uploads/"}]}},
    }]
    # S3 checks that it may send when the notification is set: the policy comes first.
    assert "UploadQueuePolicy" in cfn.as_list(bucket["DependsOn"])


def test_only_this_bucket_may_send_to_the_upload_queue(template):
    policy = only(cfn.resources(template, "AWS::SQS::QueuePolicy"))
    assert policy["Queues"] == [{"Ref": "UploadQueue"}]
    [statement] = cfn.as_list(policy["PolicyDocument"]["Statement"])
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": ["UploadQueue", "Arn"]}
    # The bucket's ARN, built from the very name the bucket has.
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:s3:::" + bucket_name_sub(template)}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


@pytest.mark.parametrize("stage", STAGES)
def test_upload_queue_lease_arithmetic(template, stage):
    """A dead try's claim expires before its message comes back; 4 receives, then failed."""
    queue = props(template, "UploadQueue")
    env = stage_env(stage)
    lease = int(env["PROCESSING_LEASE_SECONDS"])
    assert function_setting(stage, "resize_upload", "lambda_timeout") < lease < queue["VisibilityTimeout"]
    redrive = queue["RedrivePolicy"]
    assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": ["UploadDeadLetterQueue", "Arn"]},
                       "maxReceiveCount": 4}
    # The sweep only catches what the queue and its dead-letter path did not finish.
    assert int(env["STUCK_AFTER_SECONDS"]) > redrive["maxReceiveCount"] * queue["VisibilityTimeout"]
    dlq = props(template, "UploadDeadLetterQueue")
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dlq["VisibilityTimeout"] >= 6 * function_setting(stage, "fail_dead_uploads", "lambda_timeout")
    for q in (queue, dlq):
        assert q.get("SqsManagedSseEnabled") is True


def test_failures_queue_keeps_what_lambda_gave_up_on_for_14_days(template):
    queue = props(template, "FailuresQueue")
    assert queue["QueueName"] == {"Fn::Sub": "thumbgen-${Stage}-failures"}
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["SqsManagedSseEnabled"] is True


def test_user_pool_admits_only_users_an_administrator_creates(template):
    pool = only(cfn.resources(template, "AWS::Cognito::UserPool"))
    assert pool["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    # Username sign-in: no email or phone number stands in for it.
    assert "UsernameAttributes" not in pool and "AliasAttributes" not in pool
    password = pool["Policies"]["PasswordPolicy"]
    assert password["MinimumLength"] >= 12
    assert all(password[k] for k in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols"))


def test_app_client_is_public_with_password_sign_in_and_short_lived_tokens(template):
    client = only(cfn.resources(template, "AWS::Cognito::UserPoolClient"))
    assert client["UserPoolId"] == {"Ref": "UserPool"}
    assert client["GenerateSecret"] is False
    assert sorted(client["ExplicitAuthFlows"]) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"]
    # A signed-out or disabled user's access token works until it expires (the API checks it
    # offline): 15 minutes bounds that. Refresh tokens (revoked at sign-out) last 30 days.
    units = client["TokenValidityUnits"]
    assert (client["AccessTokenValidity"], units["AccessToken"]) == (15, "minutes")
    assert (client["IdTokenValidity"], units["IdToken"]) == (15, "minutes")
    assert (client["RefreshTokenValidity"], units["RefreshToken"]) == (30, "days")
    assert client["EnableTokenRevocation"] is True
    assert client["PreventUserExistenceErrors"] == "ENABLED"


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


def test_upload_queues_have_the_local_stacks_names_per_stage(template):
    for logical, local_name in (("UploadQueue", local.UPLOAD_QUEUE),
                                ("UploadDeadLetterQueue", local.UPLOAD_DLQ)):
        name = props(template, logical)["QueueName"]
        assert name == {"Fn::Sub": local_name.replace("thumbgen-", "thumbgen-${Stage}-", 1)}, logical


def _queue_name(logical):
    return {"QueueName": {"Fn::GetAtt": [logical, "QueueName"]}}


RESIZE = {"FunctionName": {"Fn::Sub": "thumbgen-${Stage}-resize_upload"}}
# alarm -> (namespace, metric, dimensions, comparison, threshold)
ALARMS = {
    "UploadsDeadLetteredAlarm": ("AWS/SQS", "NumberOfMessagesReceived", _queue_name("UploadDeadLetterQueue"),
                                 "GreaterThanThreshold", 0),
    "FailuresQueueDepthAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", _queue_name("FailuresQueue"),
                                "GreaterThanThreshold", 0),
    "WebhookDlqDepthAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                             _queue_name("WebhookDeadLetterQueue"), "GreaterThanOrEqualToThreshold",
                             {"Ref": "WebhookDlqAlarmThreshold"}),
    "ResizeErrorsAlarm": ("AWS/Lambda", "Errors", RESIZE, "GreaterThanThreshold", 0),
    "ResizeThrottlesAlarm": ("AWS/Lambda", "Throttles", RESIZE, "GreaterThanThreshold", 0),
    "UploadQueueAgeAlarm": ("AWS/SQS", "ApproximateAgeOfOldestMessage", _queue_name("UploadQueue"),
                            "GreaterThanThreshold", 300),
    "WebhookQueueAgeAlarm": ("AWS/SQS", "ApproximateAgeOfOldestMessage", _queue_name("WebhookQueue"),
                             "GreaterThanThreshold", {"Ref": "WebhookQueueAgeAlarmSeconds"}),
    "StuckImagesAlarm": ("thumbgen", "StuckImages", {"Stage": {"Ref": "Stage"}}, "GreaterThanThreshold", 0),
}


def test_alarms_watch_the_right_metrics_and_notify_the_topic(template):
    alarms = cfn.resources(template, "AWS::CloudWatch::Alarm")
    assert sorted(alarms) == sorted([*ALARMS, "UploadDlqDepthAlarm"])
    for name, alarm in alarms.items():
        p = alarm["Properties"]
        assert p["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert p["TreatMissingData"] == "notBreaching", name  # idle queues publish nothing
        if name in ALARMS:
            namespace, metric, dimensions, comparison, threshold = ALARMS[name]
            assert (p["Namespace"], p["MetricName"]) == (namespace, metric), name
            assert {d["Name"]: d["Value"] for d in p["Dimensions"]} == dimensions, name
            assert (p["ComparisonOperator"], p["Threshold"]) == (comparison, threshold), name
    # The uploads DLQ has a consumer: its depth is what waits plus what is in flight.
    depth = alarms["UploadDlqDepthAlarm"]["Properties"]
    metrics = {m["Id"]: m for m in depth["Metrics"]}
    for metric_id, metric in (("visible", "ApproximateNumberOfMessagesVisible"),
                              ("inflight", "ApproximateNumberOfMessagesNotVisible")):
        stat = metrics[metric_id]["MetricStat"]["Metric"]
        assert (stat["Namespace"], stat["MetricName"]) == ("AWS/SQS", metric)
        assert stat["Dimensions"] == [{"Name": "QueueName", "Value": _queue_name("UploadDeadLetterQueue")["QueueName"]}]
    [returned] = [m for m in depth["Metrics"] if m.get("ReturnData", True)]
    assert returned["Expression"].replace(" ", "") == "visible+inflight"
    assert (depth["ComparisonOperator"], depth["Threshold"]) == ("GreaterThanThreshold", 0)


@pytest.mark.parametrize("stage", STAGES)
def test_alarm_dimensions_name_what_the_stage_really_runs(template, stage):
    assert RESIZE["FunctionName"]["Fn::Sub"].replace("${Stage}", stage) == \
        function_name("thumbgen", stage, "resize_upload")
    # The sweep's metric carries the stage its environment names.
    assert stage_env(stage)["STAGE"] == stage
    # Webhook retries wait in the queue up to SQS's longest delay: that is no backlog.
    from chalicelib.webhooks.queue import SQS_MAX_DELAY
    parameter = template["Parameters"]["WebhookQueueAgeAlarmSeconds"]
    assert parameter["MinValue"] > SQS_MAX_DELAY and parameter["Default"] >= parameter["MinValue"]


def test_alarm_email_is_subscribed_only_when_given(template):
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    assert template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email",
                                          "Endpoint": {"Ref": "AlarmEmail"}}


def test_outputs_are_exactly_what_deploy_uses(template):
    outputs = template["Outputs"]
    assert set(outputs) == set(OUTPUT_ENV) | set(OUTPUT_ROLE) | set(OUTPUT_POST_DEPLOY)
    roles = cfn.resources(template, "AWS::IAM::Role")
    assert sorted(outputs[o]["Value"]["Fn::GetAtt"][0] for o in OUTPUT_ROLE) == sorted(roles)
    assert outputs["FailuresQueueArn"]["Value"] == {"Fn::GetAtt": ["FailuresQueue", "Arn"]}
    assert outputs["UserPoolId"]["Value"] == {"Ref": "UserPool"}
    assert outputs["UserPoolClientId"]["Value"] == {"Ref": "UserPoolClient"}


def test_every_variable_deploy_sets_is_one_the_code_reads():
    source = (REPO / "chalicelib" / "platform" / "config.py").read_text()
    read = set(re.findall(r'(?:e|os\.environ)\.get\("([A-Z_]+)"', source))
    assert set(OUTPUT_ENV.values()) <= read, set(OUTPUT_ENV.values()) - read


def test_every_role_that_signs_object_links_may_list_the_bucket(template):
    """A presigned GET is authorised as the role that signed it; without s3:ListBucket, S3
    answers a link to a deleted object 403 instead of 404."""
    for name, role in cfn.resources(template, "AWS::IAM::Role").items():
        statements = [s for policy in role["Properties"].get("Policies", [])
                      for s in cfn.as_list(policy["PolicyDocument"]["Statement"]) if s["Effect"] == "Allow"]
        actions = {a for s in statements for a in cfn.as_list(s["Action"])}
        if "s3:GetObject" in actions:
            assert "s3:ListBucket" in actions, name


def test_no_policy_allows_a_wildcard_action_or_resource(template):
    statements = list(cfn.all_policy_statements(template))
    allows = [(name, s) for name, s in statements if s["Effect"] == "Allow"]
    assert len(allows) >= 6
    for name, statement in allows:
        assert "NotAction" not in statement and "NotResource" not in statement, name
        assert statement.get("Principal", {}) != "*", name
        for action in cfn.as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), (name, action)
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
