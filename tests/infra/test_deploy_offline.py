"""infra/deploy.py against moto's in-memory AWS and botocore's Stubber (no network).

What this proves: the stack's outputs and the rendered stage fit together,
and the app imported with that stage's environment subscribes to this stack's queues,
stream and schedule; what deploy does after `chalice deploy` (API throttling, the stream
mapping's retries and failure queue, the sweep's failure queue) is exactly the calls AWS
expects; Chalice's record survives a fresh checkout through SSM; destroy empties and
removes what deploy made and may run twice.
What it cannot: moto's CloudFormation ignores several bucket and table properties
(public access block, CORS, lifecycle, bucket policy, notifications, TTL) and has no
alarms or queue policies, so those are checked in the template itself (test_template.py)
and, for real, only by a deploy to AWS. Its missing Cognito is supplied by moto_cognito.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest
from botocore.stub import Stubber
from chalice.config import Config

from infra import deploy
from infra.project import API_THROTTLING, FUNCTIONS, OUTPUT_ENV, OUTPUT_ROLE
from tests.infra import moto_cognito  # noqa: F401  (registers the Cognito models)

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")

WIRING = r"""
import json, app
sources = {}
for source in app.app.event_sources:
    sources[source.name] = {
        k: (v.to_string() if hasattr(v, "to_string") else v) for k, v in vars(source).items()
        if k in ("bucket", "prefix", "events", "stream_arn", "queue", "batch_size",
                 "schedule_expression")}
print(json.dumps(sources))
"""


@pytest.fixture
def moto_aws(monkeypatch):
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "CORS_ORIGINS", "LOG_RETENTION_DAYS", "ALARM_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.session.Session()


@pytest.fixture
def prepared(moto_aws, tmp_path):
    project, outputs = deploy.prepare(moto_aws, "dev", build_dir=tmp_path / "build",
                                      state_dir=tmp_path / "state", env={})
    config = json.loads((project / ".chalice" / "config.json").read_text())
    env = Config(chalice_stage="dev", config_from_disk=config).environment_variables
    return project, outputs, config, env


def test_prepare_makes_the_stack_and_a_stage_wired_to_it(moto_aws, prepared, tmp_path):
    project, outputs, config, env = prepared
    assert {variable: env[variable] for variable in OUTPUT_ENV.values()} == {
        variable: outputs[output] for output, variable in OUTPUT_ENV.items()}

    # Each function runs as the role made for it, and that role exists.
    iam = moto_aws.client("iam")
    for output, function in OUTPUT_ROLE.items():
        arn = Config(chalice_stage="dev", function_name=function, config_from_disk=config).iam_role_arn
        assert arn == outputs[output]
        assert iam.get_role(RoleName=arn.rsplit("/", 1)[1])["Role"]["Arn"] == arn

    # No stage-wide webhook secret: each user's is made by the API and kept in the table.
    assert "WEBHOOK_SECRET" not in env
    assert moto_aws.client("ssm").describe_parameters()["Parameters"] == []

    # The stage's pool and app client exist, and the client signs in with a password.
    cognito = moto_aws.client("cognito-idp")
    pool = cognito.describe_user_pool(UserPoolId=env["COGNITO_USER_POOL_ID"])["UserPool"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    client = cognito.describe_user_pool_client(UserPoolId=env["COGNITO_USER_POOL_ID"],
                                               ClientId=env["COGNITO_APP_CLIENT_ID"])["UserPoolClient"]
    assert "ALLOW_USER_PASSWORD_AUTH" in client["ExplicitAuthFlows"] and "ClientSecret" not in client

    # The queues and the stream the stage names are the stack's.
    sqs = moto_aws.client("sqs")
    for name, url in ((env["UPLOAD_QUEUE_NAME"], env["UPLOAD_QUEUE_URL"]),
                      (env["WEBHOOK_QUEUE_NAME"], env["WEBHOOK_QUEUE_URL"])):
        assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    redrive = json.loads(sqs.get_queue_attributes(QueueUrl=env["UPLOAD_QUEUE_URL"], AttributeNames=["All"])
                         ["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":" + env["UPLOAD_DLQ_NAME"])
    table = moto_aws.client("dynamodb").describe_table(TableName=outputs["TableName"])["Table"]
    assert table["LatestStreamArn"] == outputs["TableStreamArn"]
    assert sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == ["owner-created", "processing-started"]

    # A second deploy hands Chalice the very same project: the same config.
    again, _ = deploy.prepare(moto_aws, "dev", build_dir=tmp_path / "build",
                              state_dir=tmp_path / "state", env={})
    assert (again / ".chalice" / "config.json").read_text() == json.dumps(config, indent=2) + "\n"


def test_the_app_imported_with_the_stage_subscribes_to_the_stacks_sources(prepared):
    project, outputs, _, env = prepared
    wiring = subprocess.run([sys.executable, "-c", WIRING], cwd=project, capture_output=True, text=True,
                            env={**os.environ, **env, "PYTHONPATH": str(project)})
    assert wiring.returncode == 0, wiring.stderr
    sources = json.loads(wiring.stdout)
    assert sorted(sources) == sorted(set(FUNCTIONS) - {"api_handler"})
    assert sources["resize_upload"] == {"queue": outputs["UploadQueueName"], "batch_size": 1}
    assert sources["fail_dead_uploads"] == {"queue": outputs["UploadDlqName"], "batch_size": 1}
    assert sources["on_image_change"]["stream_arn"] == outputs["TableStreamArn"]
    assert sources["deliver_webhook"] == {"queue": outputs["WebhookQueueName"], "batch_size": 1}
    assert sources["sweep_stuck_images"] == {"schedule_expression": "rate(5 minutes)"}


def test_stack_parameters_pass_only_what_the_operator_set():
    assert deploy.stack_parameters("prod", {}) == [{"ParameterKey": "Stage", "ParameterValue": "prod"}]
    assert deploy.stack_parameters("prod", {"CORS_ORIGINS": "https://app.example.com"})[1] == {
        "ParameterKey": "CorsAllowedOrigins", "ParameterValue": "https://app.example.com"}
    assert deploy.stack_parameters("dev", {"ALARM_EMAIL": "ops@example.com"})[1] == {
        "ParameterKey": "AlarmEmail", "ParameterValue": "ops@example.com"}


def test_chalices_record_reaches_a_fresh_checkout_through_ssm(moto_aws, tmp_path):
    ssm = moto_aws.client("ssm")
    here, fresh = tmp_path / "here", tmp_path / "fresh"
    assert deploy.save_chalice_record(ssm, "dev", here) is False  # nothing deployed yet
    assert deploy.restore_chalice_record(ssm, "dev", fresh) is False
    record = {"resources": [{"name": "rest_api", "resource_type": "rest_api", "rest_api_id": "abc123",
                             "rest_api_url": "https://abc123.execute-api.us-east-1.amazonaws.com/api/"}],
              "schema_version": "2.0", "backend": "api"}
    (here / "deployed").mkdir(parents=True)
    (here / "deployed" / "dev.json").write_text(json.dumps(record, indent=2))
    assert deploy.save_chalice_record(ssm, "dev", here) is True
    assert deploy.restore_chalice_record(ssm, "dev", fresh) is True
    assert json.loads((fresh / "deployed" / "dev.json").read_text()) == record
    assert deploy.deployed_rest_api(fresh, "dev")["rest_api_id"] == "abc123"
    assert deploy.api_url(fresh, "dev") == record["resources"][0]["rest_api_url"]


class StubbedSession:
    """A session whose clients answer from botocore Stubbers: every call must be expected."""

    def __init__(self, *services):
        self.clients = {s: boto3.client(s, region_name="us-east-1", aws_access_key_id="x",
                                        aws_secret_access_key="x") for s in services}
        self.stubs = {s: Stubber(c) for s, c in self.clients.items()}

    def client(self, service):
        return self.clients[service]


UUID = "6f1c2a3e-0b4d-4c5e-8f9a-1b2c3d4e5f60"
OUTPUTS = {"TableStreamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/thumbgen-dev-images/stream/x",
           "FailuresQueueArn": "arn:aws:sqs:us-east-1:123456789012:thumbgen-dev-failures"}


def test_after_chalice_deploy_the_api_is_throttled_and_failures_reach_the_queue():
    session = StubbedSession("apigateway", "lambda")
    apigw, lam = session.stubs["apigateway"], session.stubs["lambda"]
    rate, burst = API_THROTTLING["dev"]
    apigw.add_response("update_stage", {}, {"restApiId": "abc123", "stageName": "api", "patchOperations": [
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(rate)},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(burst)}]})
    lam.add_response("list_event_source_mappings", {"EventSourceMappings": [{"UUID": UUID}]},
                     {"FunctionName": "thumbgen-dev-on_image_change", "EventSourceArn": OUTPUTS["TableStreamArn"]})
    on_failure = {"OnFailure": {"Destination": OUTPUTS["FailuresQueueArn"]}}
    update = {"UUID": UUID, "MaximumRetryAttempts": deploy.STREAM_MAX_RETRIES,
              "BisectBatchOnFunctionError": True, "DestinationConfig": on_failure}
    # Chalice has just created the mapping: Lambda refuses the change until it has settled.
    lam.add_client_error("update_event_source_mapping", "ResourceInUseException", expected_params=update)
    lam.add_response("update_event_source_mapping", {}, update)
    lam.add_response("put_function_event_invoke_config", {}, {
        "FunctionName": "thumbgen-dev-sweep_stuck_images", "MaximumRetryAttempts": deploy.SWEEP_MAX_RETRIES,
        "MaximumEventAgeInSeconds": deploy.SWEEP_MAX_EVENT_AGE, "DestinationConfig": on_failure})
    waits = []
    with apigw, lam:
        deploy.configure_stage(session, "dev", OUTPUTS, "abc123", sleep=waits.append)
        apigw.assert_no_pending_responses()
        lam.assert_no_pending_responses()
    assert len(waits) == 1


def test_a_missing_stream_mapping_stops_the_deploy_with_a_clear_error():
    session = StubbedSession("lambda")
    lam = session.stubs["lambda"]
    lam.add_response("list_event_source_mappings", {"EventSourceMappings": []})
    with lam, pytest.raises(SystemExit, match="expected one mapping"):
        deploy.route_stream_failures(session.client("lambda"), "thumbgen-dev-on_image_change",
                                     OUTPUTS["TableStreamArn"], OUTPUTS["FailuresQueueArn"])


def test_other_lambda_errors_are_not_retried():
    session = StubbedSession("lambda")
    lam = session.stubs["lambda"]
    lam.add_client_error("put_function_event_invoke_config", "AccessDeniedException")
    with lam, pytest.raises(deploy.ClientError, match="AccessDenied"):
        deploy.route_sweep_failures(session.client("lambda"), "f", OUTPUTS["FailuresQueueArn"],
                                    sleep=lambda _: pytest.fail("must not wait"))


def test_every_stage_has_its_throttling():
    assert sorted(API_THROTTLING) == sorted(deploy.load_config()["stages"])
    for rate, burst in API_THROTTLING.values():
        assert 0 < rate <= burst


def test_the_summary_says_how_to_make_a_user_and_call_the_api_with_its_token():
    outputs = {k: k.lower() for k in ("UserPoolId", "UserPoolClientId", "AlarmTopicArn", "BucketName",
                                      "TableName", "UploadQueueUrl", "WebhookQueueUrl", "WebhookDlqUrl")}
    text = deploy.summary("dev", outputs, "https://api.example/api/")
    assert "aws cognito-idp admin-create-user --user-pool-id userpoolid --username alice" in text
    assert "admin-set-user-password --user-pool-id userpoolid --username alice" in text
    assert "--permanent" in text
    assert "TOKEN=$(thumbgen token --api-url https://api.example/api/ --user alice)" in text
    assert "the access token lasts 15 minutes" in text  # the template's AccessTokenValidity
    assert 'curl -H "Authorization: Bearer $TOKEN" https://api.example/api/images' in text
    assert 'curl -H "Authorization: Bearer $TOKEN" https://api.example/api/webhook-secret' in text
    assert "set ALARM_EMAIL" in text
    assert "mailing ops@example.com" in deploy.summary("dev", outputs, "u", "ops@example.com")


def test_the_token_lifetime_said_is_the_templates():
    assert deploy.access_token_minutes() == 15
    assert deploy.access_token_minutes("AccessTokenValidity: 5\n  TokenValidityUnits:\n    AccessToken: minutes") == 5
    with pytest.raises(ValueError):
        deploy.access_token_minutes("AccessTokenValidity: 1\n  TokenValidityUnits:\n    AccessToken: hours")


def test_destroy_empties_the_bucket_removes_the_stack_and_may_run_twice(moto_aws, tmp_path, capsys):
    _, outputs = deploy.prepare(moto_aws, "dev", build_dir=tmp_path / "build",
                                state_dir=tmp_path / "state", env={})
    s3 = moto_aws.client("s3")
    for key in ("uploads/a", "thumbnails/a/400x300.jpg"):
        s3.put_object(Bucket=outputs["BucketName"], Key=key, Body=b"x")
    for _ in range(2):
        deploy.destroy("dev", build_dir=tmp_path / "build", state_dir=tmp_path / "state")
    said = capsys.readouterr().out
    assert "2 objects deleted" in said and "thumbgen-dev-infra: deleted" in said
    assert "thumbgen-dev-infra: no such stack" in said  # the second run
    cfn = moto_aws.client("cloudformation")
    assert deploy._stack_status(cfn, "thumbgen-dev-infra") is None
    assert s3.list_buckets()["Buckets"] == []
    assert moto_aws.client("dynamodb").list_tables()["TableNames"] == []
    assert not moto_aws.client("sqs").list_queues().get("QueueUrls")
    assert moto_aws.client("cognito-idp").list_user_pools(MaxResults=10)["UserPools"] == []
