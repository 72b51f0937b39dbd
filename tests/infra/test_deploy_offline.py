"""infra/deploy.py up to `chalice deploy`, against moto's in-memory AWS (no network).

What this proves: the stack's outputs, the secret and the rendered stage fit together,
and the app imported with that stage's environment subscribes to this stack's bucket,
stream and queue; destroy empties and removes what deploy made and may run twice.
What it cannot: moto's CloudFormation ignores several bucket and table properties
(public access block, CORS, lifecycle, bucket policy, TTL), so those are checked in the
template itself (test_template.py) and, for real, only by a deploy to AWS.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import boto3
import pytest
from chalice.config import Config

from infra import deploy

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")
from infra.project import FUNCTIONS, OUTPUT_ENV, OUTPUT_ROLE

WIRING = r"""
import json, app
sources = {}
for source in app.app.event_sources:
    sources[source.name] = {k: v for k, v in vars(source).items()
                            if k in ("bucket", "prefix", "events", "stream_arn", "queue", "batch_size")}
print(json.dumps(sources))
"""


@pytest.fixture
def moto_aws(monkeypatch):
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "CORS_ORIGINS", "LOG_RETENTION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.session.Session()


def test_prepare_makes_the_stack_and_a_stage_wired_to_it(moto_aws, tmp_path):
    project, outputs = deploy.prepare(moto_aws, "dev", build_dir=tmp_path / "build",
                                      state_dir=tmp_path / "state", env={})
    config = json.loads((project / ".chalice" / "config.json").read_text())
    env = Config(chalice_stage="dev", config_from_disk=config).environment_variables
    assert {variable: env[variable] for variable in OUTPUT_ENV.values()} == {
        variable: outputs[output] for output, variable in OUTPUT_ENV.items()}

    # Each function runs as the role made for it, and that role exists.
    iam = moto_aws.client("iam")
    for output, function in OUTPUT_ROLE.items():
        arn = Config(chalice_stage="dev", function_name=function, config_from_disk=config).iam_role_arn
        assert arn == outputs[output]
        assert iam.get_role(RoleName=arn.rsplit("/", 1)[1])["Role"]["Arn"] == arn

    # The secret is the stage's parameter, and a Standard Webhooks secret.
    stored = moto_aws.client("ssm").get_parameter(Name="/thumbgen/dev/webhook-secret", WithDecryption=True)
    assert stored["Parameter"]["Type"] == "SecureString"
    assert env["WEBHOOK_SECRET"] == stored["Parameter"]["Value"]
    assert len(base64.b64decode(env["WEBHOOK_SECRET"].removeprefix("whsec_"))) == 32

    # What `chalice deploy` will subscribe, read from the app as it imports with this stage.
    wiring = subprocess.run([sys.executable, "-c", WIRING], cwd=project, capture_output=True, text=True,
                            env={**os.environ, **env, "PYTHONPATH": str(project)})
    assert wiring.returncode == 0, wiring.stderr
    sources = json.loads(wiring.stdout)
    assert sorted(sources) == sorted(set(FUNCTIONS) - {"api_handler"})
    assert sources["resize_upload"] == {"bucket": outputs["BucketName"], "prefix": "uploads/",
                                        "events": ["s3:ObjectCreated:*"]}
    assert sources["on_image_change"]["stream_arn"] == outputs["TableStreamArn"]
    assert sources["deliver_webhook"] == {"queue": outputs["WebhookQueueName"], "batch_size": 1}
    table = moto_aws.client("dynamodb").describe_table(TableName=outputs["TableName"])["Table"]
    assert table["LatestStreamArn"] == outputs["TableStreamArn"]
    queue_url = moto_aws.client("sqs").get_queue_url(QueueName=outputs["WebhookQueueName"])["QueueUrl"]
    assert queue_url == outputs["WebhookQueueUrl"]

    # A second deploy hands Chalice the very same project: same config, same secret.
    again, _ = deploy.prepare(moto_aws, "dev", build_dir=tmp_path / "build",
                              state_dir=tmp_path / "state", env={})
    assert (again / ".chalice" / "config.json").read_text() == json.dumps(config, indent=2) + "\n"


def test_the_webhook_secret_is_made_once_and_then_kept(moto_aws):
    ssm = moto_aws.client("ssm")
    first = deploy.webhook_secret(ssm, "prod")
    assert first.startswith("whsec_")
    assert deploy.webhook_secret(ssm, "prod") == first
    assert deploy.webhook_secret(ssm, "dev") != first


def test_stack_parameters_pass_only_what_the_operator_set():
    assert deploy.stack_parameters("prod", {}) == [{"ParameterKey": "Stage", "ParameterValue": "prod"}]
    assert deploy.stack_parameters("prod", {"CORS_ORIGINS": "https://app.example.com"})[1] == {
        "ParameterKey": "CorsAllowedOrigins", "ParameterValue": "https://app.example.com"}


def test_destroy_empties_the_bucket_removes_stack_and_secret_and_may_run_twice(moto_aws, tmp_path, capsys):
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
    with pytest.raises(moto_aws.client("ssm").exceptions.ParameterNotFound):
        moto_aws.client("ssm").get_parameter(Name="/thumbgen/dev/webhook-secret")
