""".chalice/config.json: the dev and prod stages, read the way Chalice reads them, and the
rendering `make deploy` does of them (infra/project.py)."""
from __future__ import annotations

import json
import os
import stat

import pytest
from chalice.config import Config

from chalicelib.platform.config import Settings
from infra.project import FUNCTIONS, OUTPUT_ENV, OUTPUT_ROLE, build_project, load_config, render_stage

STAGES = ("dev", "prod")
PLACEHOLDERS = ("000000000000", "set-by-make-deploy")


def chalice(stage, function="api_handler", config=None):
    return Config(chalice_stage=stage, function_name=function,
                  config_from_disk=config or load_config())


def fake_outputs(stage):
    acct, region = "210987654321", "eu-west-1"
    outputs = {
        "BucketName": f"thumbgen-{stage}-{acct}-{region}",
        "TableName": f"thumbgen-{stage}-images",
        "TableStreamArn": f"arn:aws:dynamodb:{region}:{acct}:table/thumbgen-{stage}-images/stream/2026-01-01T00:00:00.000",
        "RateLimitTableName": f"thumbgen-{stage}-rate-limits",
        "UploadQueueName": f"thumbgen-{stage}-uploads",
        "UploadQueueUrl": f"https://sqs.{region}.amazonaws.com/{acct}/thumbgen-{stage}-uploads",
        "UploadDlqName": f"thumbgen-{stage}-uploads-dlq",
        "WebhookQueueName": f"thumbgen-{stage}-webhooks",
        "WebhookQueueUrl": f"https://sqs.{region}.amazonaws.com/{acct}/thumbgen-{stage}-webhooks",
        "WebhookDlqUrl": f"https://sqs.{region}.amazonaws.com/{acct}/thumbgen-{stage}-webhooks-dlq",
        "UserPoolId": f"{region}_AbCdEfGhI",
        "UserPoolClientId": "1example23456789abcdefghij",
    }
    outputs.update({o: f"arn:aws:iam::{acct}:role/thumbgen-{stage}-infra-{f}-ABC" for o, f in OUTPUT_ROLE.items()})
    return outputs


def test_dev_and_prod_are_the_stages():
    assert sorted(load_config()["stages"]) == sorted(STAGES)


def rendered_settings(stage) -> Settings:
    """The stage's settings as the deployed functions read them (after `make deploy`
    rendered the stack's outputs in), through the app's own parser."""
    config = render_stage(load_config(), stage, fake_outputs(stage))
    return Settings.from_env(chalice(stage, config=config).environment_variables)


@pytest.mark.parametrize("stage", STAGES)
def test_deployed_stages_require_https_webhooks_and_refuse_private_networks(stage):
    # Read by the app's own parser: in Lambda, 127.0.0.1:9001 is the runtime API.
    settings = rendered_settings(stage)
    assert settings.webhook_require_https is True
    assert settings.webhook_allow_private_networks is False


@pytest.mark.parametrize("stage", STAGES)
def test_policies_are_hand_written_and_every_function_has_memory_timeout_and_role(stage):
    for function in FUNCTIONS:
        config = chalice(stage, function)
        assert config.autogen_policy is False
        assert config.manage_iam_role is False  # the roles come from infra/thumbgen.yaml
        assert config.iam_role_arn.startswith("arn:aws:iam::")
        assert 128 <= config.lambda_memory_size <= 10240
        assert 1 <= config.lambda_timeout <= 900


@pytest.mark.parametrize("stage", STAGES)
def test_timeouts_fit_together(stage):
    env = rendered_settings(stage)
    # API Gateway gives up on an integration after 29 s.
    assert chalice(stage, "api_handler").lambda_timeout <= 29
    # A processing claim goes stale only once the function holding it must be dead.
    assert env.processing_lease_seconds > chalice(stage, "resize_upload").lambda_timeout
    # One attempt (connect + read) fits in the delivery function's time, and in the resize's,
    # which makes the first attempt itself.
    attempt = env.webhook_connect_timeout + env.webhook_read_timeout
    assert attempt < chalice(stage, "deliver_webhook").lambda_timeout
    assert attempt < chalice(stage, "resize_upload").lambda_timeout
    # The sweep runs every 5 minutes: one run ends before the next starts.
    assert chalice(stage, "sweep_stuck_images").lambda_timeout < 300


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_sets_the_limits_the_lease_and_the_log_level(stage):
    env = chalice(stage).environment_variables
    for name in ("PROCESSING_LEASE_SECONDS", "STUCK_AFTER_SECONDS", "MAX_PENDING_UPLOADS", "MAX_REDELIVERIES"):
        assert int(env[name]) > 0, name
    assert int(env["STUCK_AFTER_SECONDS"]) > int(env["PROCESSING_LEASE_SECONDS"])
    assert env["LOG_LEVEL"] in ("DEBUG", "INFO", "WARNING", "ERROR")
    assert env["STAGE"] == stage  # the StuckImages metric's dimension


def test_no_stage_has_a_webhook_secret_of_its_own():
    """Every user has their own (GET /webhook-secret); a stage-wide one would let any user
    who can verify their webhooks forge everyone else's."""
    text = json.dumps(load_config())
    assert "whsec_" not in text and "WEBHOOK_SECRET\"" not in text
    for stage in STAGES:
        settings = rendered_settings(stage)
        assert not hasattr(settings, "webhook_secret")
        assert settings.webhook_secret_overlap_seconds == 86400


@pytest.mark.parametrize("stage", STAGES)
def test_render_fills_in_every_placeholder_from_the_stack(stage):
    outputs = fake_outputs(stage)
    rendered = render_stage(load_config(), stage, outputs)
    env = chalice(stage, config=rendered).environment_variables
    for output, variable in OUTPUT_ENV.items():
        assert env[variable] == outputs[output]
    for output, function in OUTPUT_ROLE.items():
        assert chalice(stage, function, rendered).iam_role_arn == outputs[output]
    stage_text = json.dumps(rendered["stages"][stage])
    for placeholder in PLACEHOLDERS:
        assert placeholder not in stage_text
    # Everything else is left as committed.
    assert rendered["environment_variables"] == load_config()["environment_variables"]


def test_render_refuses_a_missing_output_or_an_unknown_stage():
    outputs = fake_outputs("dev")
    del outputs["TableStreamArn"]
    with pytest.raises(KeyError, match="TableStreamArn"):
        render_stage(load_config(), "dev", outputs)
    with pytest.raises(KeyError):
        render_stage(load_config(), "staging", fake_outputs("dev"))


def test_the_built_project_holds_the_app_only_and_keeps_its_config_private(tmp_path):
    rendered = render_stage(load_config(), "dev", fake_outputs("dev"))
    project = build_project(tmp_path / "dev", rendered, state_dir=tmp_path / "state")
    shipped = {p.name for p in project.iterdir()}
    assert {".chalice", "app.py", "chalicelib", "requirements.txt"} <= shipped
    assert shipped <= {".chalice", "app.py", "chalicelib", "requirements.txt", "vendor"}
    assert not list(project.rglob("__pycache__")) and not list(project.rglob("*.pyc"))
    config = project / ".chalice" / "config.json"
    assert json.loads(config.read_text()) == rendered
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    # Chalice's record of the deployment outlives the build directory.
    assert (project / ".chalice" / "deployed").resolve() == (tmp_path / "state" / "deployed").resolve()
